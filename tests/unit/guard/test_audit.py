"""The audit of guard decisions in the SQLite store: what acted, when, and never the matched text."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from answerdesk.cli.guard import parse_since
from answerdesk.guard.audit import SqliteAuditLog
from answerdesk.guard.base import Finding
from answerdesk.guard.pii import PiiGuard


def test_events_are_recorded_and_queried(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    result = PiiGuard().check("card 4716 4245 2151 1864 and jo@example.com", stage="input")
    log = SqliteAuditLog(db)
    log.record(result.findings, request_id="req-1", tenant="acme", policy_version="7")
    log.record([Finding("words", "x", "ALLOW", "input")], request_id="req-2", tenant=None, policy_version="7")
    events = log.query()
    assert [(e.request_id, e.tenant, e.guard, e.rule, e.action) for e in events] == [
        ("req-1", "acme", "pii", "EMAIL", "REDACT"),
        ("req-1", "acme", "pii", "CREDIT_CARD", "REDACT"),
    ]
    assert all(e.match_sha256 and len(e.match_sha256) == 64 for e in events)
    assert log.query(since="2999-01-01") == []
    log.close()
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert "jo@example.com" not in dump and "4716" not in dump


def test_since_accepts_relative_and_iso_times() -> None:
    now = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert parse_since("2h", now=now) == "2026-05-01T10:00:00.000+00:00"
    assert parse_since("7d", now=now) == "2026-04-24T12:00:00.000+00:00"
    assert parse_since("2026-04-30") == "2026-04-30T00:00:00.000+00:00"
