"""Runs the store's Alembic migrations (the same numbered scripts for every SQL backend)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``; each migration runs in a transaction."""
    _run(url, command.upgrade, revision)


def downgrade(url: str, revision: str) -> None:
    """Step the database at ``url`` back to ``revision`` (``base`` removes every table)."""
    _run(url, command.downgrade, revision)


def _run(url: str, step: Callable[[Config, str], None], revision: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            config = _config()
            config.attributes["connection"] = conn
            step(config, revision)
    finally:
        engine.dispose()
