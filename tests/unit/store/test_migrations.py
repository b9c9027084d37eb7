from __future__ import annotations

import sqlite3
from pathlib import Path

from answerdesk.store import migrate
from answerdesk.store.sqlite import SqliteIndex


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}


def test_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    url = f"sqlite:///{db}"
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    assert {"documents", "chunks", "chunks_fts", "chunks_fts_insert", "chunks_fts_delete"} <= tables(db)
    migrate.downgrade(url, "base")
    assert not {"documents", "chunks"} & tables(db)
    migrate.upgrade(url)
    assert "documents" in tables(db)


def test_opening_a_store_migrates_it_and_uses_wal(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "kb.db"
    with SqliteIndex(db) as store:
        assert store.counts() == {"documents": 0, "chunks": 0, "fts_rows": 0}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert migrate.current_revision(f"sqlite:///{db}") == migrate.head_revision()
