"""Prompt labels: named pointers (``production``, ``canary``, any name) from a prompt to one template version.

Labels live in the store (migration 0002) so that every process serving from the same file sees the same
version, and every move is appended to ``prompt_label_events`` (who, when, from → to) so it can be audited.
The store does not know which template files exist: :meth:`PromptRegistry.set_label
<answerdesk.prompts.registry.PromptRegistry.set_label>` checks the version and supplies its hash, and is the
way to move a label.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from answerdesk.errors import InputError, StoreError
from answerdesk.store import migrate

#: Label names: a letter or digit, then letters, digits, ``_ . -`` (64 at most).
LABEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class LabelEntry:
    """Where a label points now: the version and the hash its file had when the label was set."""

    label: str
    version: int
    sha256: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class LabelEvent:
    """One move of a label. ``from_version`` is ``None`` when the label was first set."""

    name: str
    label: str
    from_version: int | None
    to_version: int
    from_sha256: str | None
    to_sha256: str
    actor: str
    at: str


class LabelStore(Protocol):
    """Where labels are kept. Implementations raise :class:`StoreError` when the store fails."""

    def get(self, name: str, label: str) -> int | None:
        """The version ``label`` of prompt ``name`` points to, or ``None`` when the label is not set."""
        ...

    def labels(self, name: str) -> dict[str, int]:
        """Every label of prompt ``name`` and the version it points to."""
        ...

    def entries(self, name: str) -> dict[str, LabelEntry]:
        """Every label of prompt ``name`` with its version and recorded hash, by label."""
        ...

    def set(self, name: str, label: str, version: int, sha256: str, actor: str) -> LabelEvent:
        """Point ``label`` at ``version`` and record the move; raises :class:`InputError` for a bad value."""
        ...

    def history(self, name: str) -> list[LabelEvent]:
        """Every recorded move of the labels of ``name``, oldest first."""
        ...


class PromptLabelStore:
    """:class:`LabelStore` on the SQLite file of the embedded store; brings its schema up to date on open."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn = migrate.open_sqlite(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PromptLabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, name: str, label: str) -> int | None:
        entry = self._entry(name, label)
        return None if entry is None else entry.version

    def labels(self, name: str) -> dict[str, int]:
        """Every label of prompt ``name`` and the version it points to."""
        return {label: entry.version for label, entry in self.entries(name).items()}

    def entries(self, name: str) -> dict[str, LabelEntry]:
        rows = self._read(
            "SELECT label, version, sha256, updated_at FROM prompt_labels WHERE name = ? ORDER BY label", (name,)
        )
        return {row[0]: LabelEntry(row[0], int(row[1]), row[2], row[3]) for row in rows}

    def set(self, name: str, label: str, version: int, sha256: str, actor: str) -> LabelEvent:
        _check_label(label)
        if version < 1:
            raise InputError(f"prompt versions start at 1, got {version}")
        if not _SHA256.fullmatch(sha256):
            raise InputError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")
        if not actor.strip():
            raise InputError("a label move needs an actor (who moved it)")
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            with self._transaction() as conn:
                before = conn.execute(
                    "SELECT version, sha256 FROM prompt_labels WHERE name = ? AND label = ?", (name, label)
                ).fetchone()
                conn.execute(
                    "INSERT INTO prompt_labels (name, label, version, sha256, updated_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (name, label) DO UPDATE SET version = excluded.version, "
                    "sha256 = excluded.sha256, updated_at = excluded.updated_at",
                    (name, label, version, sha256, now),
                )
                event = LabelEvent(
                    name,
                    label,
                    None if before is None else int(before[0]),
                    version,
                    None if before is None else before[1],
                    sha256,
                    actor,
                    now,
                )
                conn.execute(
                    "INSERT INTO prompt_label_events "
                    "(name, label, from_version, to_version, from_sha256, to_sha256, actor, at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, label, event.from_version, version, event.from_sha256, sha256, actor, now),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot set label {label!r} of prompt {name!r} in {self.path}: {exc}") from exc
        return event

    def history(self, name: str) -> list[LabelEvent]:
        rows = self._read(
            "SELECT name, label, from_version, to_version, from_sha256, to_sha256, actor, at "
            "FROM prompt_label_events WHERE name = ? ORDER BY id",
            (name,),
        )
        return [
            LabelEvent(r[0], r[1], None if r[2] is None else int(r[2]), int(r[3]), r[4], r[5], r[6], r[7]) for r in rows
        ]

    def _entry(self, name: str, label: str) -> LabelEntry | None:
        rows = self._read(
            "SELECT label, version, sha256, updated_at FROM prompt_labels WHERE name = ? AND label = ?",
            (name, label),
        )
        return LabelEntry(rows[0][0], int(rows[0][1]), rows[0][2], rows[0][3]) if rows else None

    def _read(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read prompt labels from {self.path}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise


def _check_label(label: str) -> None:
    if not LABEL_NAME.fullmatch(label):
        raise InputError(
            f"label {label!r} is not a valid name: use letters, digits, '_', '.' or '-' (64 at most), "
            "starting with a letter or digit"
        )
