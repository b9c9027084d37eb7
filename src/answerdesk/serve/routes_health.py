"""``/healthz`` (the process answers), ``/readyz`` (it can serve: store readable, checks pass), ``/metrics``."""

from __future__ import annotations

import sqlite3

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from answerdesk.serve.app import services_of
from answerdesk.serve.auth import METRICS, PUBLIC
from answerdesk.serve.schemas import Health
from answerdesk.types import Principal

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz(principal: Principal = Depends(PUBLIC)) -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}}, summary="Readiness")
async def readyz(request: Request, principal: Principal = Depends(PUBLIC)) -> Response:
    services = services_of(request)

    def check() -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            services.state.ping()
            checks["store"] = "ok"
        except sqlite3.Error as exc:
            checks["store"] = f"unreadable: {exc}"
        for i, probe in enumerate(services.ready):
            problem = probe()
            checks[getattr(probe, "__name__", f"check_{i}")] = problem or "ok"
        return checks

    checks = await anyio.to_thread.run_sync(check)
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics",
)
async def metrics(request: Request, principal: Principal = Depends(METRICS)) -> Response:
    registry = services_of(request).metrics
    assert registry is not None
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
