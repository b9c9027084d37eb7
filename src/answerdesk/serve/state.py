"""What the service keeps besides the index: feedback on answers and ingestion jobs (migration 0004).

Both live in the store's SQLite file, so every worker process of one service sees the same jobs.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from answerdesk.errors import NotFound
from answerdesk.security.keys import open_state_db
from answerdesk.serve.base import Feedback

JobStatus = Literal["queued", "running", "done", "failed"]
_JOB_COLUMNS = (
    "id, tenant, subject, status, files_total, files_done, documents, chunks, report, error, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    tenant: str | None
    subject: str
    status: JobStatus
    files_total: int
    files_done: int
    documents: int
    chunks: int
    report: Mapping[str, Any] | None
    error: str | None
    created_at: str
    updated_at: str


class ServiceState:
    """Feedback and jobs in the store's SQLite file. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self._conn = open_state_db(path)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def ping(self) -> None:
        """Raises :class:`sqlite3.Error` when the file cannot be read."""
        with self._lock:
            self._conn.execute("SELECT 1 FROM ingest_jobs LIMIT 1").fetchall()

    # -- feedback --------------------------------------------------------------------------------------------

    def add_feedback(
        self,
        *,
        request_id: str,
        tenant: str | None,
        subject: str,
        rating: Literal["up", "down"] | None,
        csat: int | None,
        comment: str,
    ) -> Feedback:
        feedback = Feedback(request_id, tenant, subject, rating, csat, comment, _now())
        with self._lock:
            self._conn.execute(
                "INSERT INTO feedback (request_id, tenant, subject, rating, csat, comment, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (request_id, tenant, subject, rating, csat, comment, feedback.created_at),
            )
        return feedback

    def feedback_for(self, request_id: str, *, tenant: str | None) -> list[Feedback]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT request_id, tenant, subject, rating, csat, comment, created_at FROM feedback "
                "WHERE request_id = ? AND tenant IS ? ORDER BY id",
                (request_id, tenant),
            ).fetchall()
        return [Feedback(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    # -- jobs ------------------------------------------------------------------------------------------------

    def create_job(self, *, tenant: str | None, subject: str, files_total: int) -> Job:
        now = _now()
        job_id = "job_" + uuid.uuid4().hex[:16]
        with self._lock:
            self._conn.execute(
                f"INSERT INTO ingest_jobs ({_JOB_COLUMNS}) VALUES (?, ?, ?, 'queued', ?, 0, 0, 0, NULL, NULL, ?, ?)",
                (job_id, tenant, subject, files_total, now, now),
            )
        return self.job(job_id, tenant=tenant)

    def update_job(
        self,
        job_id: str,
        *,
        status: JobStatus | None = None,
        files_done: int | None = None,
        documents: int | None = None,
        chunks: int | None = None,
        report: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        sets = ["updated_at = ?"]
        values: list[Any] = [_now()]
        for column, value in (
            ("status", status),
            ("files_done", files_done),
            ("documents", documents),
            ("chunks", chunks),
            ("error", error),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(value)
        if report is not None:
            sets.append("report = ?")
            values.append(json.dumps(report, sort_keys=True))
        with self._lock:
            self._conn.execute(f"UPDATE ingest_jobs SET {', '.join(sets)} WHERE id = ?", [*values, job_id])

    def job(self, job_id: str, *, tenant: str | None) -> Job:
        """The job, if it belongs to ``tenant``; raises :class:`NotFound` (also for another tenant's job)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM ingest_jobs WHERE id = ? AND tenant IS ?", (job_id, tenant)
            ).fetchone()
        if row is None:
            raise NotFound(f"no ingestion job '{job_id}'")
        return Job(
            id=row[0], tenant=row[1], subject=row[2], status=row[3], files_total=row[4], files_done=row[5],
            documents=row[6], chunks=row[7], report=json.loads(row[8]) if row[8] else None, error=row[9],
            created_at=row[10], updated_at=row[11],
        )  # fmt: skip

    def fail_unfinished_jobs(self, reason: str) -> int:
        """Mark jobs a previous process left queued or running as failed (their files are gone)."""
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE ingest_jobs SET status = 'failed', error = ?, updated_at = ? "
                "WHERE status IN ('queued', 'running')",
                (reason, _now()),
            )
        return cursor.rowcount


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
