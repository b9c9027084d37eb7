"""Which status each answerdesk error is sent as, and how pipeline events become SSE frames."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from answerdesk.errors import (
    BudgetExceeded,
    ConfigError,
    Forbidden,
    GuardError,
    GuardrailBlocked,
    InputError,
    NotFound,
    ProviderError,
    RateLimited,
    StoreError,
    Unauthorized,
)
from answerdesk.pipeline import AnswerEvent
from answerdesk.serve.problems import problem_for
from answerdesk.serve.sse import sse


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (InputError("bad filter"), 422, "invalid-input"),
        (NotFound("no such job"), 404, "not-found"),
        (Unauthorized("no key"), 401, "unauthorized"),
        (Forbidden("needs ingest"), 403, "forbidden"),
        (RateLimited("slow down", limit="key:rpm", retry_after=0.2), 429, "rate-limited"),
        (BudgetExceeded("spent", limit="tag:cost_centre=eu:monthly", retry_after=3600), 429, "rate-limited"),
        (GuardrailBlocked("blocked", findings=()), 400, "guardrail-blocked"),
        (GuardError("pii", "regex timed out"), 503, "guard-unavailable"),
        (StoreError("disk full"), 503, "store-unavailable"),
        (ConfigError("bad route"), 500, "misconfigured"),
        (ProviderError("bad request upstream", status=400), 502, "upstream-failed"),
        (ProviderError("throttled", status=429, retry_after=2.5), 503, "upstream-unavailable"),
        (TimeoutError(), 504, "timeout"),
        (RuntimeError("secret internal detail"), 500, "internal"),
    ],
)
def test_each_error_has_its_status(error: Exception, status: int, slug: str) -> None:
    problem = problem_for(error)
    assert (problem.status, problem.slug) == (status, slug)
    if status in (429, 503) and getattr(error, "retry_after", None):
        assert int(problem.headers["Retry-After"]) >= 1
    if status == 401:
        assert problem.headers["WWW-Authenticate"].startswith("Bearer")
    assert "secret internal detail" not in problem.detail  # internals never reach the wire


def test_guard_findings_are_listed_without_the_matched_text() -> None:
    @dataclass(frozen=True)
    class Finding:
        guard: str
        rule: str
        match_sha256: str

    problem = problem_for(GuardrailBlocked("blocked by policy", findings=(Finding("topics", "crypto", "ab12"),)))
    assert problem.extra["findings"] == [{"guard": "topics", "rule": "crypto", "match_sha256": "ab12"}]


def test_event_kinds_map_to_sse_names_generically() -> None:
    @dataclass(frozen=True)
    class Finding:
        guard: str
        action: str

    guard = sse(AnswerEvent("guard", data={"findings": (Finding("pii", "REDACT"),)}))  # type: ignore[arg-type]
    assert guard.startswith(b"event: guard\ndata: ") and guard.endswith(b"\n\n")
    assert json.loads(guard.split(b"data: ", 1)[1]) == {"findings": [{"guard": "pii", "action": "REDACT"}]}
    delta = sse(AnswerEvent("delta", "two\nlines"))
    assert delta.count(b"\n") == 3 and json.loads(delta.split(b"data: ", 1)[1]) == {"text": "two\nlines"}
    later = sse(AnswerEvent("review_hold", "held", data={"queue": "leads"}))  # type: ignore[arg-type]
    assert later.startswith(b"event: review_hold\n") and b'"queue":"leads"' in later
