"""Runs the store's Alembic migrations (the same numbered scripts for every SQL backend)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from answerdesk.errors import StoreError

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


def open_sqlite(path: Path) -> sqlite3.Connection:
    """A connection to the embedded store's SQLite file (created with its folder), migrated to head, in WAL
    mode with autocommit (callers open their own transactions). Every part of answerdesk that keeps state in
    the store's file opens it here. Raises :class:`StoreError` naming the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
        if not path.exists() or current_revision(url) != head_revision():
            upgrade(url)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=10000")
    except (sqlite3.Error, OSError, sa.exc.SQLAlchemyError, CommandError) as exc:
        raise StoreError(f"cannot open store {path}: {exc}") from exc
    return conn
