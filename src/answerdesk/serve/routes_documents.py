"""``/v1/documents``: upload files to ingest (a job with progress), list and delete documents.

A caller manages only its own tenant's documents (a principal without a tenant: the shared knowledge base);
another tenant's documents are invisible here, as they are to search.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from answerdesk.errors import InputError
from answerdesk.ingest.metadata import parse_cli_meta
from answerdesk.serve.app import services_of
from answerdesk.serve.auth import DOCUMENTS
from answerdesk.serve.jobs import IngestJobs
from answerdesk.serve.schemas import DeletedOut, DocumentList, JobOut
from answerdesk.serve.state import Job
from answerdesk.types import Principal, StoredDocument

router = APIRouter(tags=["documents"])


def _mine(doc: StoredDocument, principal: Principal) -> bool:
    return doc.meta.get("tenant") == principal.tenant


def _job_out(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status,
        "files_total": job.files_total,
        "files_done": job.files_done,
        "documents": job.documents,
        "chunks": job.chunks,
        "report": dict(job.report) if job.report is not None else None,
        "error": job.error,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


@router.post("/v1/documents", response_model=JobOut, status_code=202, summary="Upload documents to ingest")
async def upload(
    request: Request,
    files: Annotated[list[UploadFile], File(description="Markdown, HTML, text, PDF, CSV or JSONL files.")],
    meta: Annotated[list[str], Form(description="key=value metadata for every file (repeatable).")] = [],  # noqa: B006
    principal: Principal = Depends(DOCUMENTS),
) -> Response:
    if not files:
        raise InputError("files: upload at least one file")
    try:
        extra = parse_cli_meta(meta)
    except InputError as exc:
        raise InputError(f"meta: {exc}") from exc
    payload = [(f.filename or f"upload-{i}.txt", await f.read()) for i, f in enumerate(files)]
    jobs: IngestJobs = request.app.state.jobs
    job = await anyio.to_thread.run_sync(lambda: jobs.submit(principal, payload, meta=extra))
    return JSONResponse(_job_out(job), status_code=202, headers={"Location": f"/v1/documents/jobs/{job.id}"})


@router.get("/v1/documents/jobs/{job_id}", response_model=JobOut, summary="Progress of an ingestion job")
async def job_status(job_id: str, request: Request, principal: Principal = Depends(DOCUMENTS)) -> dict[str, Any]:
    state = services_of(request).state
    job = await anyio.to_thread.run_sync(lambda: state.job(job_id, tenant=principal.tenant))
    return _job_out(job)


@router.get("/v1/documents", response_model=DocumentList, summary="List documents")
async def list_documents(
    request: Request,
    prefix: Annotated[str | None, Query(max_length=1000, description="Only sources starting with this.")] = None,
    principal: Principal = Depends(DOCUMENTS),
) -> dict[str, Any]:
    store = services_of(request).documents
    docs = await anyio.to_thread.run_sync(lambda: store.documents(source_prefix=prefix or None))
    return {
        "documents": [
            {"id": d.id, "source": d.source, "title": d.title, "sha256": d.sha256, "chunk_count": d.chunk_count,
             "ingested_at": d.ingested_at, "meta": dict(d.meta)}
            for d in docs if _mine(d, principal)
        ]
    }  # fmt: skip


@router.delete("/v1/documents", response_model=DeletedOut, summary="Delete documents by id or source prefix")
async def delete_documents(
    request: Request,
    id: Annotated[list[str], Query(max_length=500, description="A document id (repeatable).")] = [],  # noqa: B006
    prefix: Annotated[str | None, Query(min_length=1, max_length=1000, description="A source prefix.")] = None,
    principal: Principal = Depends(DOCUMENTS),
) -> dict[str, Any]:
    if not id and prefix is None:
        raise InputError("give id=<document id> (repeatable) or prefix=<source prefix>")
    store = services_of(request).documents

    def delete() -> list[str]:
        wanted = set(id)
        doomed = [
            d.id
            for d in store.documents(source_prefix=prefix)
            if _mine(d, principal) and (prefix is not None or d.id in wanted)
        ]
        if prefix is not None and wanted:
            doomed += [d.id for d in store.documents() if d.id in wanted and _mine(d, principal)]
        return store.delete(ids=sorted(set(doomed))) if doomed else []

    return {"deleted": await anyio.to_thread.run_sync(delete)}
