"""The audit of guard decisions: every redaction, block, challenge and refusal, queryable afterwards.

An event holds the request id, tenant, stage, guard, rule, action, score and the SHA-256 of the matched text
(never the text: an audit log full of card numbers would be a second leak). Events live in the store's
SQLite file (migration 0003), appended in one transaction per request.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from answerdesk.errors import StoreError
from answerdesk.guard.base import Finding
from answerdesk.store import migrate

#: Actions worth an audit row; ALLOW findings (a guard that failed open says so in its detail) are kept too.
AUDITED = frozenset({"REDACT", "CHALLENGE", "REFUSE", "BLOCK"})


@dataclass(frozen=True, slots=True)
class AuditEvent:
    at: str
    request_id: str
    tenant: str | None
    stage: str
    guard: str
    rule: str
    action: str
    match_sha256: str | None
    score: float | None
    policy_version: str | None
    detail: str


class AuditSink(Protocol):
    def record(
        self, findings: Sequence[Finding], *, request_id: str, tenant: str | None, policy_version: str | None
    ) -> None:
        """Append one event per finding. Raises :class:`StoreError` when the store cannot be written."""
        ...


def events_for(
    findings: Sequence[Finding], *, request_id: str, tenant: str | None, policy_version: str | None, at: str
) -> list[AuditEvent]:
    """The audit events of ``findings``: those that acted, and guards that failed open."""
    return [
        AuditEvent(at, request_id, tenant, f.stage, f.guard, f.rule, f.action, f.match_sha256, f.score,
                   policy_version, f.detail)
        for f in findings
        if f.action in AUDITED or f.rule == "guard_error"
    ]  # fmt: skip


class MemoryAuditLog:
    """An :class:`AuditSink` in memory, for tests and for ``guard check``."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(
        self, findings: Sequence[Finding], *, request_id: str, tenant: str | None, policy_version: str | None
    ) -> None:
        self.events += events_for(
            findings, request_id=request_id, tenant=tenant, policy_version=policy_version, at=_now()
        )


class SqliteAuditLog:
    """The audit in the embedded store's SQLite file; brings the schema up to date on open."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = migrate.open_sqlite(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record(
        self, findings: Sequence[Finding], *, request_id: str, tenant: str | None, policy_version: str | None
    ) -> None:
        rows = events_for(findings, request_id=request_id, tenant=tenant, policy_version=policy_version, at=_now())
        if not rows:
            return
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(
                        "INSERT INTO guard_audit_events (at, request_id, tenant, stage, guard, rule, action, "
                        "match_sha256, score, policy_version, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [_row(e) for e in rows],
                    )
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write guard audit events to {self.path}: {exc}") from exc

    def query(self, *, since: str | None = None, limit: int = 1000) -> list[AuditEvent]:
        """Events at or after ``since`` (an ISO timestamp or date), newest first."""
        sql = (
            "SELECT at, request_id, tenant, stage, guard, rule, action, match_sha256, score, policy_version, detail "
            "FROM guard_audit_events"
        )
        params: tuple[object, ...] = ()
        if since is not None:
            sql += " WHERE at >= ?"
            params = (since,)
        sql += " ORDER BY id DESC LIMIT ?"
        try:
            with self._lock:
                rows = self._conn.execute(sql, (*params, limit)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read guard audit events from {self.path}: {exc}") from exc
        return [AuditEvent(*row) for row in rows]


def _row(e: AuditEvent) -> tuple[object, ...]:
    return (
        e.at, e.request_id, e.tenant, e.stage, e.guard, e.rule, e.action, e.match_sha256, e.score,
        e.policy_version, e.detail,
    )  # fmt: skip


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
