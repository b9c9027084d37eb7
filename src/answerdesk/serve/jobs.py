"""Uploaded files ingested as a background job: one worker thread, progress written to the job row.

Uploads are saved to a private temporary folder, loaded with the same loaders as ``answerdesk ingest`` and
indexed with the same :class:`Ingestor`. A tenant's uploads always belong to that tenant: the tenant is set
over any metadata the files carry, and their ids and sources are put under ``<tenant>/`` so that two tenants
uploading ``refunds.md`` never replace each other's document.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from answerdesk.ingest.indexer import Ingestor, Progress
from answerdesk.ingest.loaders import SourceFile, load
from answerdesk.serve.schemas import to_plain
from answerdesk.serve.state import Job, ServiceState
from answerdesk.types import Document, DocumentMeta, IngestFailure, Principal

log = logging.getLogger("answerdesk.serve")
#: Sources of uploaded documents start with this (then the tenant, or ``shared``, then the file name).
UPLOAD_PREFIX = "uploads/"


def upload_source(principal: Principal, filename: str) -> str:
    return f"{UPLOAD_PREFIX}{principal.tenant or 'shared'}/{filename}"


def owned(document: Document, principal: Principal) -> Document:
    """``document`` as the uploader's tenant owns it (tenant forced; id namespaced for a tenant)."""
    if principal.tenant is None:
        return document
    meta: DocumentMeta = dataclasses.replace(document.meta, tenant=principal.tenant)
    return dataclasses.replace(document, id=f"{principal.tenant}/{document.id}", meta=meta)


class IngestJobs:
    """Runs ingestion jobs one at a time on a worker thread (embedding uses every core anyway)."""

    def __init__(self, state: ServiceState, ingestor: Ingestor, *, max_file_bytes: int) -> None:
        self._state = state
        self._ingestor = ingestor
        self._max_file_bytes = max_file_bytes
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._futures: dict[str, Future[None]] = {}

    def submit(self, principal: Principal, files: Sequence[tuple[str, bytes]], *, meta: Mapping[str, str]) -> Job:
        """Queue ``(file name, content)`` pairs for ingestion; returns the queued job."""
        folder = Path(tempfile.mkdtemp(prefix="answerdesk-upload-"))
        for i, (name, content) in enumerate(files):
            target = folder / f"{i:04d}" / Path(name).name
            target.parent.mkdir()
            target.write_bytes(content)
        job = self._state.create_job(tenant=principal.tenant, subject=principal.subject, files_total=len(files))
        with self._lock:
            # Made on first use: an app can be started and stopped (lifespan) more than once, e.g. in tests.
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="answerdesk-ingest")
            self._futures = {k: f for k, f in self._futures.items() if not f.done()}
            self._futures[job.id] = self._pool.submit(self._run, job.id, principal, folder, dict(meta))
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        """Block until the job has finished (for tests and shutdown)."""
        future = self._futures.get(job_id)
        if future is not None:
            future.result(timeout)

    def shutdown(self) -> None:
        """Finish the running job, drop queued ones (they are marked failed on the next start)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, job_id: str, principal: Principal, folder: Path, meta: dict[str, str]) -> None:
        try:
            self._state.update_job(job_id, status="running")
            documents, failures = self._load(principal, folder, meta, job_id)

            def on_progress(p: Progress) -> None:
                self._state.update_job(job_id, documents=p.documents, chunks=p.chunks)

            report = self._ingestor.index(documents, on_progress=on_progress)
            report = dataclasses.replace(report, failures=(*failures, *report.failures))
            self._state.update_job(
                job_id, status="done", documents=len(documents), chunks=report.chunks_written, report=to_plain(report)
            )
        except Exception as exc:  # the job records the failure; the worker thread lives on
            log.exception("ingestion job %s failed", job_id)
            self._state.update_job(job_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _load(
        self, principal: Principal, folder: Path, meta: dict[str, str], job_id: str
    ) -> tuple[list[Document], list[IngestFailure]]:
        documents: list[Document] = []
        failures: list[IngestFailure] = []
        for done, path in enumerate(sorted(p for p in folder.glob("*/*") if p.is_file()), start=1):
            source = SourceFile(path=path, root=path.parent, display=upload_source(principal, path.name))
            try:
                loaded, problems = load(source, cli_meta=meta, max_bytes=self._max_file_bytes)
            except Exception as exc:  # one hostile file must not stop the others
                reason = getattr(exc, "reason", None) or f"could not be read: {type(exc).__name__}: {exc}"
                loaded, problems = [], [IngestFailure(source.display, str(reason))]
            documents += [owned(d, principal) for d in loaded]
            failures += problems
            self._state.update_job(job_id, files_done=done)
        return documents, failures
