"""Prompt labels on a real SQLite file: moves, their audit trail, and migration 0002 on an existing store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from answerdesk.errors import InputError
from answerdesk.prompts import PromptLabelStore
from answerdesk.store import migrate
from answerdesk.store.sqlite import SqliteIndex

SHA_A = "a" * 64
SHA_B = "b" * 64


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_set_get_labels_and_history(tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    with PromptLabelStore(db) as store:
        assert store.get("answer", "production") is None
        first = store.set("answer", "production", 1, SHA_A, "alice")
        assert (first.from_version, first.to_version, first.actor) == (None, 1, "alice")
        store.set("answer", "canary", 2, SHA_B, "bob")
        moved = store.set("answer", "production", 2, SHA_B, "carol")
        assert (moved.from_version, moved.to_version, moved.from_sha256, moved.to_sha256) == (1, 2, SHA_A, SHA_B)
        assert store.get("answer", "production") == 2
        assert store.labels("answer") == {"canary": 2, "production": 2}
        assert store.labels("other") == {}
    with PromptLabelStore(db) as reopened:  # labels live in the file, not in the process
        assert reopened.entries("answer")["production"].sha256 == SHA_B
        history = reopened.history("answer")
    assert [(e.label, e.from_version, e.to_version, e.actor) for e in history] == [
        ("production", None, 1, "alice"),
        ("canary", None, 2, "bob"),
        ("production", 1, 2, "carol"),
    ]
    assert all(e.at.endswith("+00:00") for e in history)


def test_two_processes_share_labels(tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    with PromptLabelStore(db) as writer, PromptLabelStore(db) as reader:
        writer.set("answer", "production", 3, SHA_A, "alice")
        assert reader.get("answer", "production") == 3


@pytest.mark.parametrize(
    ("label", "version", "sha256", "actor", "message"),
    [
        ("prod uction", 1, SHA_A, "a", "not a valid name"),
        ("", 1, SHA_A, "a", "not a valid name"),
        ("production", 0, SHA_A, "a", "versions start at 1"),
        ("production", 1, "abc", "a", "64 lowercase hex"),
        ("production", 1, SHA_A, " ", "needs an actor"),
    ],
)
def test_bad_moves_are_refused_and_not_recorded(
    tmp_path: Path, label: str, version: int, sha256: str, actor: str, message: str
) -> None:
    with PromptLabelStore(tmp_path / "kb.db") as store:
        with pytest.raises(InputError, match=message):
            store.set("answer", label, version, sha256, actor)
        assert store.history("answer") == []


def test_migration_0002_upgrades_a_store_created_at_0001(tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    url = f"sqlite:///{db}"
    migrate.upgrade(url, "0001")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO documents (id, source, sha256, fingerprint, ingested_at) "
            "VALUES ('d1', 'kb/d1.md', 'x', 'y', 'now')"
        )
    assert migrate.current_revision(url) == "0001"
    assert "prompt_labels" not in tables(db)

    with PromptLabelStore(db) as store:
        store.set("answer", "production", 1, SHA_A, "alice")
    assert migrate.current_revision(url) == migrate.head_revision()
    assert {"prompt_labels", "prompt_label_events", "documents"} <= tables(db)
    with SqliteIndex(db) as index:
        assert [d.id for d in index.documents()] == ["d1"]

    migrate.downgrade(url, "0001")
    assert not {"prompt_labels", "prompt_label_events"} & tables(db)
    assert "documents" in tables(db)


def test_label_store_beside_an_open_index(tmp_path: Path) -> None:
    db = tmp_path / "store" / "kb.db"
    with SqliteIndex(db) as index, PromptLabelStore(db) as store:
        store.set("answer", "production", 1, SHA_A, "alice")
        assert index.counts() == {"documents": 0, "chunks": 0, "fts_rows": 0}
        assert index.check() == []
        assert store.get("answer", "production") == 1
