"""The embedded counter store: counters and the usage ledger in the store's SQLite file (migration 0005).

Each update is one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's write lock before reading, so the
read-decide-add of concurrent requests (threads of one worker, or several worker processes on one file)
never interleaves: no two requests can both take the last unit of a limit. The work is a few indexed rows
and runs inline on the event loop: a thread hop would cost more than the query.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from answerdesk.cost.base import Increment, LedgerEntry
from answerdesk.errors import StoreError
from answerdesk.security.keys import open_state_db

_UPSERT = (
    "INSERT INTO usage_counters (name, value, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value, "
    "expires_at = max(expires_at, excluded.expires_at)"
)
_LEDGER = (
    "INSERT OR REPLACE INTO usage_ledger (request_id, created_at, tenant, key_id, tags, endpoint, outcome, route, "
    "model, input_tokens, output_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class SqliteCounterStore:
    """:class:`~answerdesk.cost.base.CounterStore` in SQLite. Safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        self._conn = open_state_db(path)
        # In WAL mode, NORMAL syncs at checkpoints rather than on every commit: a power cut may lose the last
        # few counter updates, never corrupt the file, and a sync per request would cost milliseconds each.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def update(self, names: Sequence[str], decide: Callable[[Mapping[str, float]], Sequence[Increment]]) -> None:
        with self._lock, self._transaction() as conn:
            marks = ", ".join("?" * len(names))
            rows = conn.execute(f"SELECT name, value FROM usage_counters WHERE name IN ({marks})", list(names))
            found = dict(rows.fetchall()) if names else {}
            increments = decide({name: float(found.get(name, 0.0)) for name in names})
            conn.executemany(_UPSERT, [(i.name, i.amount, i.expires_at) for i in increments])

    async def record(self, increments: Sequence[Increment], entry: LedgerEntry | None = None) -> None:
        with self._lock, self._transaction() as conn:
            conn.executemany(_UPSERT, [(i.name, i.amount, i.expires_at) for i in increments if i.amount])
            if entry is not None:
                conn.execute(
                    _LEDGER,
                    (
                        entry.request_id, entry.created_at, entry.tenant, entry.key_id,
                        json.dumps(dict(entry.tags), sort_keys=True), entry.endpoint, entry.outcome, entry.route,
                        entry.model, entry.input_tokens, entry.output_tokens, entry.cost_usd,
                    ),
                )  # fmt: skip

    async def purge(self, now: float) -> int:
        with self._lock, self._transaction() as conn:
            return conn.execute("DELETE FROM usage_counters WHERE expires_at < ?", (now,)).rowcount

    def counter(self, name: str) -> float:
        """One counter's value (0 when absent); for reports and tests."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM usage_counters WHERE name = ?", (name,)).fetchone()
        return float(row[0]) if row else 0.0

    def ledger(self, *, tenant: str | None = None) -> list[LedgerEntry]:
        """The ledger rows, oldest first (of one tenant when given)."""
        query = (
            "SELECT request_id, created_at, tenant, key_id, endpoint, outcome, route, model, input_tokens, "
            "output_tokens, cost_usd, tags FROM usage_ledger"
        )
        args: tuple[str, ...] = ()
        if tenant is not None:
            query, args = query + " WHERE tenant = ?", (tenant,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY created_at, request_id", args).fetchall()
        return [_entry(r) for r in rows]

    def purge_ledger(self, before: str, *, tenant: str | None, dry_run: bool = False) -> int:
        """Delete (or with ``dry_run`` count) ledger rows of ``tenant`` created before the ISO time ``before``."""
        where = "WHERE tenant IS ? AND created_at < ?"
        with self._lock, self._transaction() as conn:
            if dry_run:
                return int(conn.execute(f"SELECT count(*) FROM usage_ledger {where}", (tenant, before)).fetchone()[0])
            return conn.execute(f"DELETE FROM usage_ledger {where}", (tenant, before)).rowcount

    def _transaction(self) -> _Immediate:
        return _Immediate(self._conn)


def _entry(r: tuple[Any, ...]) -> LedgerEntry:
    return LedgerEntry(
        request_id=r[0], created_at=r[1], tenant=r[2], key_id=r[3], endpoint=r[4], outcome=r[5], route=r[6],
        model=r[7], input_tokens=r[8], output_tokens=r[9], cost_usd=r[10], tags=json.loads(r[11]),
    )  # fmt: skip


class _Immediate:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception (the connection is in autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"usage counters: {exc}") from exc
        return self._conn

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is None:
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as error:
                self._conn.execute("ROLLBACK")
                raise StoreError(f"usage counters: {error}") from error
        else:
            self._conn.execute("ROLLBACK")
