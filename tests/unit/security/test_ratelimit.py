"""Rate limits: the sliding-window decision, and the hooks over a real SQLite counter store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from answerdesk.config import LimitSettings, RateSettings
from answerdesk.cost.sqlite import SqliteCounterStore
from answerdesk.errors import RateLimited
from answerdesk.security.ratelimit import RateLimitHooks, sliding_window
from answerdesk.serve.base import RequestInfo, RequestResult
from answerdesk.types import Answer, Principal, Usage

KEY = Principal(subject="ak_00000001", tenant="acme", roles=frozenset({"agent"}))
OTHER_KEY = Principal(subject="ak_00000002", tenant="acme", roles=frozenset({"agent"}))


def info(n: int = 0) -> RequestInfo:
    return RequestInfo(request_id=f"r{n}", endpoint="answers", method="POST", path="/v1/answers", stream=False)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_admits_up_to_the_limit_within_one_window() -> None:
    verdict = sliding_window(0, 9, cost=1, limit=10, elapsed=30)
    assert verdict.allowed and verdict.remaining == 0
    refused = sliding_window(0, 10, cost=1, limit=10, elapsed=30)
    assert not refused.allowed and refused.retry_after == pytest.approx(30 + 6, abs=0.01)


def test_previous_window_counts_by_the_part_still_inside_the_last_minute() -> None:
    # 15 s into the window, 75 % of the previous 8 requests still count: 6 + 4 = 10 = the limit.
    assert not sliding_window(8, 4, cost=1, limit=10, elapsed=15).allowed
    # Admitted once one more of the previous window has slid out: 8 * w + 4 + 1 <= 10 at w = 5/8.
    refused = sliding_window(8, 4, cost=1, limit=10, elapsed=15)
    assert sliding_window(8, 4, cost=1, limit=10, elapsed=15 + refused.retry_after + 1e-9).allowed
    assert not sliding_window(8, 4, cost=1, limit=10, elapsed=15 + refused.retry_after - 0.5).allowed


def test_a_cost_over_the_whole_limit_never_fits() -> None:
    verdict = sliding_window(0, 0, cost=11, limit=10, elapsed=0)
    assert not verdict.allowed and verdict.retry_after == 60


async def test_requests_per_minute_per_key_refuse_with_retry_after(tmp_path: Path) -> None:
    clock = Clock(6000.0)  # the start of a window
    store = SqliteCounterStore(tmp_path / "s.db")
    hooks = RateLimitHooks(LimitSettings(per_key=RateSettings(requests_per_minute=3)), store, clock=clock)
    remaining = [(await hooks.before(KEY, info(i))).headers["X-RateLimit-Remaining"] for i in range(3)]
    assert remaining == ["2", "1", "0"]
    with pytest.raises(RateLimited) as refused:
        await hooks.before(KEY, info(4))
    assert refused.value.limit == "key:requests_per_minute"
    assert refused.value.retry_after is not None and 60 < refused.value.retry_after <= 80
    await hooks.before(OTHER_KEY, info(5))  # another key has its own limit
    clock.now += refused.value.retry_after + 0.01
    await hooks.before(KEY, info(6))


async def test_tenant_limit_is_shared_by_its_keys_and_overridable(tmp_path: Path) -> None:
    store = SqliteCounterStore(tmp_path / "s.db")
    settings = LimitSettings(
        per_tenant=RateSettings(requests_per_minute=1), tenants={"acme": RateSettings(requests_per_minute=2)}
    )
    hooks = RateLimitHooks(settings, store, clock=Clock(6000.0))
    await hooks.before(KEY, info(1))
    await hooks.before(OTHER_KEY, info(2))
    with pytest.raises(RateLimited, match="tenant"):
        await hooks.before(KEY, info(3))
    globex = Principal(subject="ak_00000003", tenant="globex")
    await hooks.before(globex, info(4))
    with pytest.raises(RateLimited):
        await hooks.before(globex, info(5))


async def test_tokens_per_minute_charge_after_the_answer(tmp_path: Path, answer: Answer) -> None:
    store = SqliteCounterStore(tmp_path / "s.db")
    clock = Clock(6000.0)
    hooks = RateLimitHooks(LimitSettings(per_key=RateSettings(tokens_per_minute=100)), store, clock=clock)
    await hooks.before(KEY, info(1))
    await hooks.after(KEY, info(1), RequestResult("ok", 200, 0.1, answer=answer))  # 60 + 40 tokens
    with pytest.raises(RateLimited, match="tokens"):
        await hooks.before(KEY, info(2))
    clock.now += 59.5  # still the same minute ...
    with pytest.raises(RateLimited):
        await hooks.before(KEY, info(3))
    clock.now += 30  # ... half a minute later only half of those tokens still count
    await hooks.before(KEY, info(4))


async def test_a_request_refused_by_a_later_hook_is_given_back(tmp_path: Path) -> None:
    store = SqliteCounterStore(tmp_path / "s.db")
    hooks = RateLimitHooks(LimitSettings(per_key=RateSettings(requests_per_minute=1)), store, clock=Clock(6000.0))
    await hooks.before(KEY, info(1))
    await hooks.after(KEY, info(1), RequestResult("error", 0, 0.0, error=RateLimited("budget")))
    await hooks.before(KEY, info(2))


async def test_concurrent_requests_never_take_more_than_the_limit(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    settings = LimitSettings(per_key=RateSettings(requests_per_minute=25))
    # Two stores on one file stand for two worker processes.
    stores = [SqliteCounterStore(db), SqliteCounterStore(db)]
    hooks = [RateLimitHooks(settings, s, clock=Clock(6000.0)) for s in stores]

    async def one(i: int) -> bool:
        try:
            await asyncio.to_thread(asyncio.run, hooks[i % 2].before(KEY, info(i)))
        except RateLimited:
            return False
        return True

    admitted = await asyncio.gather(*(one(i) for i in range(60)))
    assert sum(admitted) == 25
    assert stores[0].counter("rate:key:ak_00000001:requests:100") == 25


@pytest.fixture
def answer() -> Answer:
    return Answer(
        request_id="r1", question="q", text="a", citations=(), confidence=0.9, refused=False, refusal_reason=None,
        prompt_name="answer", prompt_version=1, prompt_sha256="0" * 64, route="default", route_reason="",
        provider="fake", model="fake-model", usage=Usage(60, 40), cost_usd=0.25, retrieval_query="q",
    )  # fmt: skip
