"""Limits, budgets, lineage, metrics and headers through the service app (ASGI, fakes for the model)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from answerdesk.config import BudgetRule, BudgetSettings, LimitSettings, LineageSettings, RateSettings
from answerdesk.cost.budgets import BudgetHooks
from answerdesk.cost.sqlite import SqliteCounterStore
from answerdesk.generate.fake import FakeLLM
from answerdesk.lineage.hooks import LineageHooks
from answerdesk.lineage.local import LocalBlobStore
from answerdesk.observe.logs import FIELDS, JsonFormatter
from answerdesk.security.ratelimit import RateLimitHooks
from answerdesk.serve.base import CompositeHooks
from tests.unit.serve.conftest import REPLY, Service, build_service, parse_sse


class Stack:
    def __init__(self, tmp_path: Path, *, limits: LimitSettings, budgets: BudgetSettings) -> None:
        self.counters = SqliteCounterStore(tmp_path / "counters.db")
        self.blobs = LocalBlobStore(tmp_path / "lineage")
        hooks = CompositeHooks([
            RateLimitHooks(limits, self.counters),
            BudgetHooks(budgets, self.counters),
            LineageHooks(LineageSettings(), self.blobs),
        ])  # fmt: skip
        self.service: Service = build_service(tmp_path, hooks=hooks)

    def records(self, prefix: str) -> dict[str, dict[str, object]]:
        """Lineage records under ``prefix`` by request id."""
        out = {}
        for key in self.blobs.names(prefix):
            if ".feedback-" not in key:
                out[key.rsplit("/", 1)[-1].removesuffix(".json")] = json.loads(self.blobs.get(key))
        return out


async def client_for(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=stack.service.app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack(
        tmp_path,
        limits=LimitSettings(per_key=RateSettings(requests_per_minute=3)),
        budgets=BudgetSettings(tags={"cost_centre": {"cc-over": BudgetRule(daily_usd=0.0)}}),
    )


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(stack):
        yield c


QUESTION = {"question": "How are annual plans refunded?"}


async def test_over_the_rate_limit_is_429_with_retry_after_and_no_lineage(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    headers = stack.service.headers()
    for _ in range(3):
        assert (await client.post("/v1/answers", json=QUESTION, headers=headers)).status_code == 200
    refused = await client.post("/v1/answers", json=QUESTION, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 0 < int(refused.headers["retry-after"]) <= 120
    assert len(stack.records("responses/")) == 3  # every accepted request, and only those
    assert len(stack.counters.ledger(tenant="acme")) == 3


async def test_spent_cost_tag_budget_is_429_until_midnight(stack: Stack, client: httpx.AsyncClient) -> None:
    body = {**QUESTION, "tags": {"cost_centre": "cc-over"}}
    refused = await client.post("/v1/answers", json=body, headers=stack.service.headers())
    assert refused.status_code == 429 and refused.json()["type"].endswith("rate-limited")
    assert 0 < int(refused.headers["retry-after"]) <= 86400
    ok = await client.post("/v1/answers", json={**QUESTION, "tags": {"cost_centre": "cc-ok"}},
                           headers=stack.service.headers())  # fmt: skip
    assert ok.status_code == 200
    [row] = stack.counters.ledger(tenant="acme")
    assert row.tags == {"cost_centre": "cc-ok"} and row.model == "fake"


async def test_budget_downgrade_answers_from_the_cheaper_route_and_records_it(tmp_path: Path) -> None:
    stack = Stack(
        tmp_path, limits=LimitSettings(),
        budgets=BudgetSettings(tenants={"acme": BudgetRule(daily_usd=0.0)}, downgrade_route="cheap"),
    )  # fmt: skip
    async for client in client_for(stack):
        response = await client.post("/v1/answers", json=QUESTION, headers={**stack.service.headers(),
                                                                             "X-Request-ID": "req-down-1"})  # fmt: skip
        assert response.status_code == 200 and response.json()["model"] == "cheap-model"
    record = stack.records("responses/")["req-down-1"]
    assert record["flags"] == ["budget_downgrade:cheap"] and record["route"] == "cheap"


async def test_request_id_echoed_and_names_the_lineage_records(stack: Stack, client: httpx.AsyncClient) -> None:
    headers = {**stack.service.headers(), "X-Request-ID": "support-ticket-42"}
    response = await client.post("/v1/answers", json=QUESTION, headers=headers)
    assert response.headers["x-request-id"] == "support-ticket-42"
    for prefix in ("prompts/", "responses/", "fixtures/"):
        assert "support-ticket-42" in stack.records(prefix)
    response_record = stack.records("responses/")["support-ticket-42"]
    assert response_record["outcome"] == "ok" and response_record["model"] == "fake"
    prompt = stack.records("prompts/")["support-ticket-42"]["prompt"]
    assert isinstance(prompt, dict) and prompt["name"] and len(prompt["sha256"]) == 64
    chunks = stack.records("fixtures/")["support-ticket-42"]["chunks"]
    assert isinstance(chunks, list) and chunks and all(len(c["content_sha256"]) == 64 for c in chunks)


async def test_streamed_and_openai_requests_leave_lineage_records(stack: Stack, client: httpx.AsyncClient) -> None:
    headers = stack.service.headers()
    streamed = await client.post("/v1/answers", json={**QUESTION, "stream": True},
                                 headers={**headers, "X-Request-ID": "s1"})  # fmt: skip
    assert parse_sse(streamed.text)[-1][0] == "done"
    chat = await client.post(
        "/v1/chat/completions", json={"model": "default", "messages": [{"role": "user", "content": "refund?"}]},
        headers={**headers, "X-Request-ID": "c1"},
    )  # fmt: skip
    assert chat.status_code == 200
    records = stack.records("responses/")
    assert records["s1"]["outcome"] == "ok" and records["c1"]["endpoint"] == "chat_completions"


async def test_overhead_header_and_metrics_series(stack: Stack, client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/answers", json=QUESTION, headers=stack.service.headers())
    overhead = float(response.headers["x-answerdesk-overhead-ms"])
    assert 0 <= overhead < 5000
    metrics = await client.get("/metrics", headers=stack.service.headers("admin"))
    text = metrics.text
    for series in (
        'answerdesk_request_seconds_count{endpoint="answers",model="fake",outcome="ok",prompt_version=',
        'answerdesk_tokens_total{kind="output",model="fake"}',
        'answerdesk_cost_usd_total{model="fake"}',
        'answerdesk_overhead_seconds_count{path="/v1/answers"} 1.0',
        "answerdesk_time_to_first_token_seconds_count",
        "answerdesk_retrievals_total 1.0",
        "answerdesk_retrieval_hits_total 1.0",
    ):
        assert series in text, series


async def test_rate_limited_requests_are_counted(stack: Stack, client: httpx.AsyncClient) -> None:
    for _ in range(4):
        await client.post("/v1/answers", json=QUESTION, headers=stack.service.headers())
    text = (await client.get("/metrics", headers=stack.service.headers("admin"))).text
    assert 'answerdesk_rate_limited_total{limit="key:requests_per_minute"} 1.0' in text


async def test_request_log_line_is_json_without_question_text(
    stack: Stack, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="answerdesk.requests")
    await client.post("/v1/answers", json={"question": "Refund to jane.doe@example.com please, annual plan"},
                      headers={**stack.service.headers(), "X-Request-ID": "log-1"})  # fmt: skip
    [record] = [r for r in caplog.records if r.name == "answerdesk.requests"]
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["request_id"] == "log-1" and data["model"] == "fake" and data["outcome"] == "ok"
    assert data["input_tokens"] > 0 and "latency_ms" in data and "cost_usd" in data
    assert "jane.doe" not in line and "Refund" not in line
    assert getattr(record, FIELDS)["prompt_version"] >= 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/answers", QUESTION),
        ("/v1/chat/completions", {"model": "default", "messages": [{"role": "user", "content": "refund?"}]}),
    ],
)
async def test_the_overhead_header_of_a_json_answer_leaves_out_the_model_time(
    tmp_path: Path, path: str, body: dict[str, object]
) -> None:
    # The model takes 0.5 s (one delayed piece); the answer goes out before the hooks record it.
    slow = build_service(tmp_path, llms={"default": FakeLLM([REPLY], delay_s=0.5, chunk_chars=1000)})
    transport = httpx.ASGITransport(app=slow.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(path, json=body, headers=slow.headers())
    assert response.status_code == 200, response.text
    assert float(response.headers["x-answerdesk-overhead-ms"]) < 400
