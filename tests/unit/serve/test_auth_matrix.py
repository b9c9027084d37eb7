"""Who may call what: every endpoint declares one rule, and each role gets exactly what its rule allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from answerdesk.config import AuthSettings
from answerdesk.security.auth import ROLES
from answerdesk.serve.auth import ASK, DOCUMENTS, METRICS, PUBLIC, Rule
from tests.unit.serve.conftest import Service, build_service

ASKERS = {"agent", "reviewer", "admin"}
MANAGERS = {"ingest", "admin"}

#: (method, path, request kwargs, rule, status when allowed)
ENDPOINTS: list[tuple[str, str, dict[str, Any], Rule, int]] = [
    ("POST", "/v1/answers", {"json": {"question": "annual refund"}}, ASK, 200),
    (
        "POST",
        "/v1/chat/completions",
        {"json": {"model": "answerdesk", "messages": [{"role": "user", "content": "refund"}]}},
        ASK,
        200,
    ),
    ("GET", "/v1/models", {}, ASK, 200),
    ("GET", "/v1/search", {"params": {"q": "refund"}}, ASK, 200),
    ("POST", "/v1/feedback", {"json": {"request_id": "r1", "rating": "up"}}, ASK, 201),
    ("GET", "/v1/documents", {}, DOCUMENTS, 200),
    ("POST", "/v1/documents", {"files": {"files": ("faq.md", b"# FAQ\n\nWe ship worldwide.")}}, DOCUMENTS, 202),
    ("DELETE", "/v1/documents", {"params": {"id": "nothing-here"}}, DOCUMENTS, 200),
    ("GET", "/v1/documents/jobs/job_0000", {}, DOCUMENTS, 404),
    ("GET", "/metrics", {}, METRICS, 200),
    ("GET", "/healthz", {}, PUBLIC, 200),
    ("GET", "/readyz", {}, PUBLIC, 200),
]
ALLOWED = {ASK.name: ASKERS, DOCUMENTS.name: MANAGERS, METRICS.name: {"admin"}, PUBLIC.name: set(ROLES)}


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every path operation, also those of included routers."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += api_routes(route.original_router.routes)
    return found


def test_every_route_declares_exactly_one_rule(service: Service) -> None:
    declared = {}
    for route in api_routes(service.app.routes):  # type: ignore[attr-defined]
        rules = [d.call for d in route.dependant.dependencies if isinstance(d.call, Rule)]
        assert len(rules) == 1, f"{route.path} declares {len(rules)} access rules"
        for method in route.methods:
            declared[(method, route.path)] = rules[0]
    tested = {(m, p.replace("/job_0000", "/{job_id}")): rule for m, p, _, rule, _ in ENDPOINTS}
    assert tested == declared  # the matrix below covers every endpoint, with the rule it declares


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "kwargs", "rule", "ok"), ENDPOINTS, ids=[f"{m} {p}" for m, p, *_ in ENDPOINTS]
)
async def test_role_endpoint_matrix(
    client: httpx.AsyncClient, service: Service, role: str, method: str, path: str, kwargs: dict[str, Any],
    rule: Rule, ok: int,
) -> None:  # fmt: skip
    r = await client.request(method, path, headers=service.headers(role), **kwargs)
    if role in ALLOWED[rule.name]:
        assert r.status_code == ok, r.text
    else:
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "needs one of the roles" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path", "kwargs", "rule", "ok"), [e for e in ENDPOINTS if e[3] is not PUBLIC])
async def test_no_or_bad_credential_is_401(
    client: httpx.AsyncClient, service: Service, method: str, path: str, kwargs: dict[str, Any], rule: Rule, ok: int
) -> None:
    anonymous = await client.request(method, path, **kwargs)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    forged = "ak_00000000_" + "x" * 43
    bad = await client.request(method, path, headers={"Authorization": f"Bearer {forged}"}, **kwargs)
    assert bad.status_code == 401 and bad.json()["type"] == "urn:answerdesk:problem:unauthorized"


async def test_revoked_key_stops_working_at_once(client: httpx.AsyncClient, service: Service) -> None:
    key = service.keys["agent"]
    assert (await client.get("/v1/search", params={"q": "refund"}, headers={"X-API-Key": key})).status_code == 200
    service.key_store.revoke(key.split("_")[0] + "_" + key.split("_")[1])
    r = await client.get("/v1/search", params={"q": "refund"}, headers={"X-API-Key": key})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


async def test_local_mode_admits_loopback_callers_only(tmp_path: Path) -> None:
    svc = build_service(tmp_path, auth=AuthSettings(mode="local", local_tenant="acme"))

    async def ask(client_host: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=svc.app, client=(client_host, 5000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/v1/search", params={"q": "priority tickets"})

    local = await ask("127.0.0.1")
    assert local.status_code == 200 and "acme-sla" in local.text  # acts as the configured tenant
    remote = await ask("203.0.113.7")
    assert remote.status_code == 401 and "loopback" in remote.json()["detail"]


async def test_public_metrics_setting_opens_metrics_only(tmp_path: Path) -> None:
    svc = build_service(tmp_path, auth=AuthSettings(public_metrics=True))
    transport = httpx.ASGITransport(app=svc.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        metrics = await c.get("/metrics")
        assert metrics.status_code == 200 and "answerdesk_build_info" in metrics.text
        assert (await c.get("/v1/search", params={"q": "refund"})).status_code == 401
