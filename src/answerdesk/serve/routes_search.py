"""``GET /v1/search``: the passages retrieval would hand the answerer, as the caller may read them."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request

from answerdesk.serve.app import services_of
from answerdesk.serve.auth import ASK
from answerdesk.serve.base import RequestInfo, RequestResult
from answerdesk.serve.problems import problem_for
from answerdesk.serve.schemas import SearchOut, passage_out
from answerdesk.store.filters import parse_filter
from answerdesk.types import Principal

router = APIRouter(tags=["search"])


@router.get("/v1/search", response_model=SearchOut, summary="Search the knowledge base")
async def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=4000, description="The question or keywords.")],
    k: Annotated[int, Query(ge=1, le=100)] = 6,
    mode: Literal["hybrid", "bm25", "vector"] = "hybrid",
    filter: Annotated[list[str], Query(max_length=20, description="e.g. region=eu (repeatable)")] = [],  # noqa: B006
    principal: Principal = Depends(ASK),
) -> dict[str, Any]:
    services = services_of(request)
    info = RequestInfo(
        request_id=request.state.request_id, endpoint="search", method="GET", path=request.url.path,
        stream=False, question=q, client=request.client.host if request.client else None,
    )  # fmt: skip
    clauses = [parse_filter(f) for f in filter]
    await services.hooks.before(principal, info)
    try:
        result = await anyio.to_thread.run_sync(
            lambda: services.retriever.search(q, principal=principal, filters=clauses, k=k, mode=mode)
        )
    except Exception as exc:
        elapsed = time.perf_counter() - info.started
        await services.hooks.after(principal, info, RequestResult("error", problem_for(exc).status, elapsed, error=exc))
        raise
    elapsed = time.perf_counter() - info.started
    await services.hooks.after(principal, info, RequestResult("ok", 200, elapsed, hits=len(result.chunks)))
    return {
        "query": q,
        "results": [passage_out(i, c) for i, c in enumerate(result.chunks, start=1)],
        "timings_ms": {name: round(s * 1000, 2) for name, s in result.timings.items()},
    }
