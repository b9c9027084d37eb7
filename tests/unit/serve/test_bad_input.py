"""Bad input gets a problem+json that says what to fix: malformed JSON, missing or wrong fields, oversized
bodies, unknown paths and methods."""

from __future__ import annotations

from pathlib import Path

import httpx

from answerdesk.config import ServeSettings
from tests.unit.serve.conftest import Service, build_service


async def test_malformed_json_is_422_naming_the_body(client: httpx.AsyncClient, service: Service) -> None:
    r = await client.post(
        "/v1/answers",
        content=b'{"question": "refund",,}',
        headers={**service.headers(), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["errors"][0]["field"] == "body" and "malformed JSON" in problem["errors"][0]["message"]


async def test_missing_and_wrong_fields_are_named(client: httpx.AsyncClient, service: Service) -> None:
    r = await client.post("/v1/answers", json={"stream": "maybe", "tags": []}, headers=service.headers())
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"question", "stream", "tags"} <= fields
    assert "question: Field required" in r.json()["detail"]


async def test_unknown_fields_are_refused_not_ignored(client: httpx.AsyncClient, service: Service) -> None:
    r = await client.post("/v1/answers", json={"question": "refund", "temprature": 0.2}, headers=service.headers())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "temprature"


async def test_feedback_needs_something_and_a_valid_score(client: httpx.AsyncClient, service: Service) -> None:
    empty = await client.post("/v1/feedback", json={"request_id": "r1"}, headers=service.headers())
    assert empty.status_code == 422 and "rating" in empty.json()["detail"]
    bad = await client.post("/v1/feedback", json={"request_id": "r1", "csat": 9}, headers=service.headers())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "csat"


async def test_oversized_body_is_413_before_it_is_read(tmp_path: Path) -> None:
    svc = build_service(tmp_path, serve=ServeSettings(max_body_kb=4))
    transport = httpx.ASGITransport(app=svc.app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/v1/answers", json={"question": "x" * 10_000}, headers=svc.headers())
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:answerdesk:problem:body-too-large"

        # Without a Content-Length the limit holds as the bytes arrive.
        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b"x" * 1024

        chunked = await c.post(
            "/v1/answers", content=chunks(), headers={**svc.headers(), "Content-Type": "application/json"}
        )
        assert chunked.status_code == 413 and chunked.json()["status"] == 413
        # Uploads have their own, larger limit.
        ok = await c.post("/v1/documents", files={"files": ("a.md", b"# A\n\n" + b"word " * 2000)},
                          headers=svc.headers("ingest"))  # fmt: skip
        assert ok.status_code == 202
    assert svc.hooks.before_calls == []  # nothing reached the pipeline


async def test_unknown_path_and_method_are_problems(client: httpx.AsyncClient, service: Service) -> None:
    missing = await client.get("/v1/nothing", headers=service.headers())
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    wrong = await client.put("/v1/answers", headers=service.headers())
    assert wrong.status_code == 405 and wrong.json()["status"] == 405


async def test_request_ids_are_made_when_missing_or_malformed(client: httpx.AsyncClient) -> None:
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    odd = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces"
