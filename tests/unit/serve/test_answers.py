"""``POST /v1/answers``: JSON and SSE answers, hooks around them, and errors as problem+json."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from answerdesk.errors import BudgetExceeded, ProviderError
from answerdesk.generate.fake import FakeLLM
from answerdesk.serve.base import Admission
from tests.unit.serve.conftest import Service, build_service, parse_sse


async def test_json_answer_carries_citations_and_provenance(client: httpx.AsyncClient, service: Service) -> None:
    r = await client.post(
        "/v1/answers",
        json={"question": "how are annual plans refunded?", "tags": {"cost_centre": "eu"}},
        headers={**service.headers("agent"), "X-Request-ID": "req-123"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["x-request-id"] == "req-123" and body["request_id"] == "req-123"
    assert "30 days" in body["text"] and not body["refused"]
    assert body["citations"][0]["document_id"] == "refunds"
    assert {"title", "source", "url", "snippet", "chunk_id", "number"} <= set(body["citations"][0])
    assert body["prompt_name"] == "answer" and body["prompt_version"] == 1
    assert body["route"] == "default" and body["model"] == "fake"
    assert body["usage"]["output_tokens"] > 0 and "cost_usd" in body
    assert "question" not in body and "sources" not in body
    principal, info, result = service.hooks.after_calls[-1]
    assert principal.tenant == "acme" and info.tags == {"cost_centre": "eu"} and info.endpoint == "answers"
    assert result.outcome == "ok" and result.answer is not None and result.answer.request_id == "req-123"


async def test_sse_stream_sends_typed_events_in_order(client: httpx.AsyncClient, service: Service) -> None:
    r = await client.post(
        "/v1/answers", json={"question": "annual plan refund", "stream": True}, headers=service.headers()
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-1] == "done" and "delta" in names and "citation" in names
    streamed = "".join(json.loads(d)["text"] for n, d in events if n == "delta")
    done = json.loads(events[-1][1])
    assert streamed.startswith("Annual plans") and done["text"] == streamed
    assert json.loads(events[0][1])["request_id"] == done["request_id"]
    assert service.hooks.after_calls[-1][2].outcome == "ok"


async def test_tenant_documents_reach_only_their_tenant(client: httpx.AsyncClient, service: Service) -> None:
    acme = await client.get("/v1/search", params={"q": "priority tickets hours"}, headers=service.headers())
    globex = await client.get("/v1/search", params={"q": "priority tickets hours"}, headers=service.headers("globex"))
    assert "acme-sla" in [p["document_id"] for p in acme.json()["results"]]
    assert "acme-sla" not in [p["document_id"] for p in globex.json()["results"]]


async def test_a_tenant_filter_cannot_widen_access(client: httpx.AsyncClient, service: Service) -> None:
    r = await client.post(
        "/v1/answers", json={"question": "refund", "filters": ["tenant=acme"]}, headers=service.headers("globex")
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "tenant" in r.json()["detail"]


async def test_unknown_route_is_a_problem_listing_the_known_ones(client: httpx.AsyncClient, service: Service) -> None:
    r = await client.post("/v1/answers", json={"question": "refund", "model": "gpt-9"}, headers=service.headers())
    assert r.status_code == 422
    problem = r.json()
    assert problem["type"] == "urn:answerdesk:problem:invalid-input" and "known: default" in problem["detail"]
    assert problem["status"] == 422 and problem["instance"] == "/v1/answers" and problem["request_id"]
    assert service.hooks.after_calls[-1][2].outcome == "error"


async def test_a_budget_refusal_is_429_with_retry_after(client: httpx.AsyncClient, service: Service) -> None:
    service.hooks.refuse = BudgetExceeded("tenant acme spent its daily budget", limit="tenant:daily", retry_after=61.2)
    r = await client.post("/v1/answers", json={"question": "refund"}, headers=service.headers())
    assert r.status_code == 429 and r.headers["retry-after"] == "62"
    assert r.json()["limit"] == "tenant:daily" and r.json()["retry_after"] == 62
    assert service.hooks.after_calls == []  # refused before admission: nothing to record


async def test_a_hook_can_downgrade_the_route(client: httpx.AsyncClient, service: Service) -> None:
    service.hooks.admission = Admission(route="cheap", headers={"X-Budget-Downgrade": "cheap"}, flags=("downgrade",))
    r = await client.post("/v1/answers", json={"question": "refund annual"}, headers=service.headers())
    assert r.json()["route"] == "cheap" and r.json()["model"] == "cheap-model"
    assert r.headers["x-budget-downgrade"] == "cheap"
    assert service.hooks.after_calls[-1][2].flags == ("downgrade",)


async def test_an_upstream_outage_is_503_with_retry_after(tmp_path: object) -> None:
    dead = FakeLLM([ProviderError("upstream overloaded", status=529, retry_after=4)])
    svc = build_service(tmp_path, llms={"default": dead})  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=svc.app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/v1/answers", json={"question": "annual refund"}, headers=svc.headers())
        assert r.status_code == 503 and r.headers["retry-after"] == "4"
        s = await c.post("/v1/answers", json={"question": "annual refund", "stream": True}, headers=svc.headers())
    events = parse_sse(s.text)
    assert events[0][0] == "meta" and events[-1][0] == "error"
    assert json.loads(events[-1][1])["status"] == 503
    assert svc.hooks.after_calls[-1][2].outcome == "error"


async def test_the_request_time_limit_ends_answers_and_streams(tmp_path: object) -> None:
    from answerdesk.config import ServeSettings

    svc = build_service(tmp_path, serve=ServeSettings(request_timeout_s=0.3))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=svc.app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/v1/answers", json={"question": "annual refund", "model": "slow"}, headers=svc.headers())
        assert r.status_code == 504 and r.json()["type"] == "urn:answerdesk:problem:timeout"
        s = await c.post(
            "/v1/answers", json={"question": "annual refund", "model": "slow", "stream": True}, headers=svc.headers()
        )
    events = parse_sse(s.text)
    assert "delta" in [n for n, _ in events] and events[-1][0] == "error"
    assert json.loads(events[-1][1])["status"] == 504
    assert [c[2].outcome for c in svc.hooks.after_calls] == ["error", "error"]
    assert svc.hooks.after_calls[-1][2].partial_text


async def test_openapi_docs_are_served(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {"/v1/answers", "/v1/chat/completions", "/v1/documents", "/v1/search", "/v1/feedback"} <= set(
        schema["paths"]
    )
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_a_failing_recorder_does_not_fail_the_answer(tmp_path: object) -> None:
    from tests.unit.serve.conftest import RecordingHooks

    class Broken(RecordingHooks):
        async def after(self, *args: object) -> None:  # type: ignore[override]
            raise RuntimeError("lineage store down")

        async def feedback(self, *args: object) -> None:  # type: ignore[override]
            raise RuntimeError("lineage store down")

    svc = build_service(tmp_path, hooks=Broken())  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=svc.app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/v1/answers", json={"question": "annual refund"}, headers=svc.headers())
        assert r.status_code == 200 and r.json()["citations"]
        f = await c.post("/v1/feedback", json={"request_id": r.json()["request_id"], "rating": "up"},
                         headers=svc.headers())  # fmt: skip
        assert f.status_code == 201


async def test_guardrails_reach_the_client_as_guard_events_and_findings(tmp_path: object) -> None:
    svc = build_service(tmp_path, guards=True)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=svc.app, raise_app_exceptions=False)  # type: ignore[arg-type]
    question = "I am jo@example.com, how are annual plans refunded?"
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        s = await c.post(
            "/v1/answers",
            json={"question": question, "stream": True, "conversation_id": "conv-1"},
            headers=svc.headers(),
        )
        j = await c.post("/v1/answers", json={"question": question}, headers=svc.headers())
    events = parse_sse(s.text)
    guard = [json.loads(d) for n, d in events if n == "guard"]
    assert guard and "jo@example.com" not in s.text  # redacted before anything else saw it
    assert any(f["action"] == "REDACT" for f in guard[0]["findings"])
    body = j.json()
    assert any(f["guard"] == "pii" for f in body["guard_findings"]) and "review_required" in body
    assert svc.hooks.after_calls[0][1].conversation_id == "conv-1"


async def asgi_post(service: Service, path: str, body: dict[str, object]) -> list[tuple[str, int]]:
    """POST ``body`` straight to the ASGI app; each message sent, with how many requests were recorded then."""
    raw = json.dumps(body).encode()
    headers = [(k.lower().encode(), v.encode()) for k, v in service.headers("agent").items()]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [*headers, (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    incoming = [{"type": "http.request", "body": raw, "more_body": False}]
    sent: list[tuple[str, int]] = []

    async def receive() -> dict[str, object]:
        if incoming:
            return incoming.pop()
        await anyio.sleep_forever()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, object]) -> None:
        sent.append((str(message["type"]), len(service.hooks.after_calls)))

    await service.app(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/answers", {"question": "how are annual plans refunded?"}),
        ("/v1/chat/completions", {"model": "default", "messages": [{"role": "user", "content": "annual refunds?"}]}),
    ],
)
async def test_a_json_answer_is_sent_before_its_records_are_written(
    service: Service, path: str, body: dict[str, object]
) -> None:
    sent = await asgi_post(service, path, body)
    assert sent == [("http.response.start", 0), ("http.response.body", 0)]
    assert [c[2].outcome for c in service.hooks.after_calls] == ["ok"]  # and then recorded, once
