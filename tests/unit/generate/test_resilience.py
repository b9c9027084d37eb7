"""Retry, fallback and circuit breaker wrappers, driven by scripted FakeLLMs and a fake clock."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from answerdesk.config import ResilienceSettings
from answerdesk.errors import InputError, ProviderError
from answerdesk.generate.base import LLM, CallRecord, CompletionRequest, StreamEvent
from answerdesk.generate.fake import FakeLLM, Reply
from answerdesk.generate.pricing import estimate_usage
from answerdesk.generate.resilience import (
    RESTART_SEPARATOR,
    CircuitBreakerLLM,
    FallbackLLM,
    ProviderCoolingDown,
    RetryingLLM,
    backoff_wait,
    check_max_tokens,
    resilient_chain,
    splice,
)
from answerdesk.types import Message, Usage

ANSWER = "Refunds take 5 business days [1]. Annual plans are refunded pro rata [2]."


class FakeTime:
    """A clock and a sleep that advances it, so waits are exact and tests never wait for real."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def make_request(*, deadline: float | None = None, timeout_s: float = 60.0) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message("user", "How long do refunds take?"),), timeout_s=timeout_s, deadline=deadline
    )


def busy(retry_after: float | None = None) -> ProviderError:
    return ProviderError("busy", status=429, retry_after=retry_after)


def down(status: int | None = 503) -> ProviderError:
    return ProviderError("upstream down", status=status)


def retrying(
    inner: LLM, clock: FakeTime, *, attempts: int = 3, base: float = 1.0, cap: float = 8.0, rng: float = 0.5
) -> RetryingLLM:
    return RetryingLLM(
        inner,
        max_attempts=attempts,
        backoff_base_s=base,
        backoff_max_s=cap,
        record=CallRecord(),
        sleep=clock.sleep,
        rng=lambda: rng,
        clock=clock,
    )


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def text_of(events: Sequence[StreamEvent]) -> str:
    return "".join(e.text for e in events if e.kind == "delta")


# --- RetryingLLM -------------------------------------------------------------------------------------------


async def test_retries_until_an_answer_with_exponential_full_jitter_waits() -> None:
    clock = FakeTime()
    inner = FakeLLM([down(), down(), down(), "ok"])
    llm = retrying(inner, clock, attempts=4, base=1.0, cap=8.0, rng=0.5)

    result = await llm.complete(make_request())

    assert result.text == "ok"
    assert clock.waits == [0.5, 1.0, 2.0]  # rng * min(cap, base * 2**n)
    assert (llm.record.attempts, llm.record.retries, len(llm.record.errors)) == (4, 3, 3)
    assert "fake:fake: 503: upstream down" in llm.record.errors[0]


@given(retry=st.integers(0, 40), draw=st.floats(0.0, 1.0, exclude_max=True), base=st.floats(0.0, 5.0))
def test_full_jitter_stays_between_zero_and_the_capped_exponential(retry: int, draw: float, base: float) -> None:
    wait = backoff_wait(retry, base_s=base, max_s=8.0, rng=lambda: draw)
    assert 0.0 <= wait <= min(8.0, base * 2**retry)


async def test_the_cap_bounds_every_wait() -> None:
    clock = FakeTime()
    llm = retrying(FakeLLM([down()] * 6 + ["ok"]), clock, attempts=7, base=1.0, cap=8.0, rng=0.999)

    await llm.complete(make_request())

    assert [round(w, 2) for w in clock.waits] == [1.0, 2.0, 4.0, 7.99, 7.99, 7.99]


async def test_retry_after_is_a_floor_even_above_the_cap() -> None:
    clock = FakeTime()
    llm = retrying(FakeLLM([busy(retry_after=0.2), busy(retry_after=20.0), "ok"]), clock, rng=0.0, cap=8.0)

    assert (await llm.complete(make_request())).text == "ok"
    assert clock.waits == [0.2, 20.0]


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    clock = FakeTime()
    inner = FakeLLM([down(502), down(503), down(504), "never"])
    llm = retrying(inner, clock, attempts=3)

    with pytest.raises(ProviderError) as caught:
        await llm.complete(make_request())

    assert caught.value.status == 504
    assert len(inner.requests) == 3
    assert (llm.record.attempts, llm.record.retries) == (3, 2)


@pytest.mark.parametrize("status", [None, 408, 429, 500, 503, 599])
async def test_timeouts_throttling_and_server_errors_are_retried(status: int | None) -> None:
    inner = FakeLLM([ProviderError("x", status=status), "ok"])
    assert (await retrying(inner, FakeTime()).complete(make_request())).text == "ok"
    assert len(inner.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_fail_at_once(status: int) -> None:
    clock = FakeTime()
    inner = FakeLLM([ProviderError("bad request", status=status), "never"])
    llm = retrying(inner, clock)

    with pytest.raises(ProviderError) as caught:
        await llm.complete(make_request())

    assert caught.value.status == status
    assert len(inner.requests) == 1
    assert clock.waits == []
    assert llm.record.retries == 0


async def test_a_wait_that_would_pass_the_deadline_gives_up_at_once() -> None:
    clock = FakeTime(now=100.0)
    inner = FakeLLM([busy(retry_after=5.0), "too late"])
    llm = retrying(inner, clock)

    with pytest.raises(ProviderError) as caught:
        await llm.complete(make_request(deadline=101.0))

    assert caught.value.status == 429
    assert clock.waits == []
    assert clock.now == 100.0
    assert len(inner.requests) == 1


async def test_waits_never_sleep_past_the_deadline() -> None:
    clock = FakeTime(now=0.0)
    llm = retrying(FakeLLM([down()]), clock, attempts=10, base=0.4, cap=8.0, rng=1.0)

    with pytest.raises(ProviderError):
        await llm.complete(make_request(deadline=1.0))

    assert clock.waits == [0.4]  # the next wait (0.8) would end at 1.2, past the deadline
    assert clock.now < 1.0


async def test_each_attempt_gets_only_the_time_left_before_the_deadline() -> None:
    clock = FakeTime(now=0.0)
    inner = FakeLLM([down(), "ok"])
    llm = retrying(inner, clock, rng=0.5, base=1.0)

    await llm.complete(make_request(deadline=10.0, timeout_s=60.0))

    assert [r.timeout_s for r in inner.requests] == [10.0, 9.5]


async def test_a_hanging_provider_times_out_per_attempt() -> None:
    inner = FakeLLM(["late"], delay_s=30.0)
    llm = RetryingLLM(inner, max_attempts=2, backoff_base_s=0.0, backoff_max_s=0.0)
    started = time.monotonic()

    with pytest.raises(ProviderError, match="no answer within") as caught:
        await asyncio.wait_for(llm.complete(make_request(timeout_s=0.05)), timeout=5)

    assert caught.value.status is None
    assert time.monotonic() - started < 1.0
    assert llm.record.attempts == 2


async def test_a_hanging_provider_never_outlives_the_deadline() -> None:
    llm = RetryingLLM(FakeLLM(["late"], delay_s=30.0), max_attempts=5, backoff_base_s=0.0, backoff_max_s=0.0)
    started = time.monotonic()

    with pytest.raises(ProviderError):
        await asyncio.wait_for(llm.complete(make_request(deadline=started + 0.1, timeout_s=60.0)), timeout=5)

    assert time.monotonic() - started < 0.5


async def test_a_hanging_provider_with_a_deadline_fails_over_in_time() -> None:
    record = CallRecord()
    hanging = RetryingLLM(FakeLLM(["late"], model="slow", delay_s=30.0), max_attempts=2, record=record)
    fast = RetryingLLM(FakeLLM(["Refunds take 5 days."], model="fast"), record=record)
    chain = FallbackLLM([hanging, fast], record=record)
    started = time.monotonic()

    result = await asyncio.wait_for(chain.complete(make_request(deadline=started + 5.0, timeout_s=0.05)), timeout=5)

    assert (result.model, result.text) == ("fast", "Refunds take 5 days.")
    assert time.monotonic() - started < 2.0
    assert record.fallbacks == ["fast"]
    assert all("no answer within 0.05s" in e for e in record.errors) and len(record.errors) == 2


async def test_a_stream_is_retried_while_nothing_was_sent() -> None:
    clock = FakeTime()
    inner = FakeLLM([busy(retry_after=0.3), ANSWER])
    llm = retrying(inner, clock, rng=0.0)

    events = await collect(llm.stream(make_request()))

    assert text_of(events) == ANSWER
    assert events[-1].kind == "finish"
    assert clock.waits == [0.3]
    assert (llm.record.attempts, llm.record.retries) == (2, 1)


async def test_a_stream_that_broke_after_text_is_not_retried() -> None:
    clock = FakeTime()
    inner = FakeLLM([ANSWER], fail_after_chars=8)
    llm = retrying(inner, clock)
    received: list[StreamEvent] = []

    with pytest.raises(ProviderError, match="broke after 8"):
        async for event in llm.stream(make_request()):
            received.append(event)

    assert text_of(received) == ANSWER[:8]
    assert len(inner.requests) == 1
    assert (llm.record.attempts, llm.record.retries, len(llm.record.errors)) == (1, 0, 1)


# --- FallbackLLM -------------------------------------------------------------------------------------------


async def test_fallback_tries_the_chain_in_order() -> None:
    first, second, third = FakeLLM([down()], model="a"), FakeLLM([busy()], model="b"), FakeLLM(["ok"], model="c")
    chain = FallbackLLM([first, second, third])

    result = await chain.complete(make_request())

    assert (result.model, result.text) == ("c", "ok")
    assert [len(m.requests) for m in (first, second, third)] == [1, 1, 1]
    assert chain.record.fallbacks == ["b", "c"]
    assert chain.record.attempts == 3
    assert [e.split(":")[1] for e in chain.record.errors] == ["a", "b"]


async def test_fallback_stops_at_the_first_answer() -> None:
    second = FakeLLM(["unused"], model="b")
    chain = FallbackLLM([FakeLLM(["ok"], model="a"), second])

    assert (await chain.complete(make_request())).model == "a"
    assert second.requests == []
    assert chain.record.fallbacks == []


async def test_when_every_model_fails_the_error_names_each() -> None:
    chain = FallbackLLM([FakeLLM([down(502)], model="a"), FakeLLM([busy(retry_after=3.0)], model="b")])

    with pytest.raises(ProviderError) as caught:
        await chain.complete(make_request())

    assert "fake:a" in str(caught.value) and "fake:b" in str(caught.value)
    assert (caught.value.status, caught.value.retry_after) == (429, 3.0)


async def test_fallback_tries_nothing_more_once_the_deadline_passed() -> None:
    clock = FakeTime(now=50.0)
    second = FakeLLM(["too late"], model="b")
    chain = FallbackLLM([FakeLLM([down()], model="a"), second], clock=clock)

    with pytest.raises(ProviderError, match="deadline passed before trying fake:b"):
        await chain.complete(make_request(deadline=40.0))

    assert second.requests == []


async def test_shared_record_counts_each_attempt_and_error_once() -> None:
    clock = FakeTime()
    record = CallRecord()
    first = RetryingLLM(FakeLLM([down()], model="a"), max_attempts=2, record=record, sleep=clock.sleep, clock=clock)
    second = RetryingLLM(FakeLLM(["ok"], model="b"), max_attempts=2, record=record, sleep=clock.sleep, clock=clock)

    await FallbackLLM([first, second], record=record).complete(make_request())

    assert (record.attempts, record.retries, len(record.errors), record.fallbacks) == (3, 1, 2, ["b"])


async def test_a_stream_that_fails_before_any_text_falls_back_without_a_switch() -> None:
    events = await collect(
        FallbackLLM([FakeLLM([down()], model="a"), FakeLLM([ANSWER], model="b")]).stream(make_request())
    )

    assert text_of(events) == ANSWER
    assert [e.kind for e in events if e.kind != "delta"] == ["finish"]
    assert events[-1].model == "b"


async def test_mid_stream_fallback_continues_without_duplicating_or_dropping_text() -> None:
    first = FakeLLM([ANSWER], model="a", fail_after_chars=16)
    second = FakeLLM([ANSWER], model="b")
    chain = FallbackLLM([first, second])

    events = await collect(chain.stream(make_request()))

    kinds = [e.kind for e in events]
    switch = kinds.index("switch")
    assert text_of(events[:switch]) == ANSWER[:16]
    assert (events[switch].text, events[switch].provider, events[switch].model) == ("b", "fake", "b")
    assert text_of(events) == ANSWER
    assert kinds[-1] == "finish" and kinds.count("switch") == 1
    assert chain.record.fallbacks == ["b"]
    assert "broke after 16 characters" in chain.record.errors[0]


async def test_mid_stream_fallback_with_a_different_answer_marks_the_restart() -> None:
    other = "Refunds are processed within five business days [1]."
    first = FakeLLM([ANSWER], model="a", fail_after_chars=16)
    chain = FallbackLLM([first, FakeLLM([other], model="b")])

    events = await collect(chain.stream(make_request()))

    assert text_of(events) == ANSWER[:16] + RESTART_SEPARATOR + other
    after_switch = events[[e.kind for e in events].index("switch") + 1 :]
    assert text_of(after_switch) == RESTART_SEPARATOR + other


async def test_a_shorter_answer_that_only_repeats_part_of_the_sent_text_restarts() -> None:
    assert splice("Refunds take 5 busi", "Refunds take") == RESTART_SEPARATOR + "Refunds take"
    assert splice("Refunds take", "Refunds take 5 days.") == " 5 days."


async def test_mid_stream_fallback_sums_usage_and_marks_it_estimated() -> None:
    first = FakeLLM([ANSWER], model="a", fail_after_chars=16)
    second = FakeLLM([ANSWER], model="b")
    request = make_request()

    finish = (await collect(FallbackLLM([first, second]).stream(request)))[-1]

    reported = Usage(input_tokens=5, output_tokens=len(ANSWER.split()), estimated=True)  # FakeLLM counts words
    assert finish.usage == estimate_usage(request.messages, ANSWER[:16]) + reported
    assert finish.usage is not None and finish.usage.estimated


async def test_two_breaks_in_a_row_still_give_the_whole_answer() -> None:
    chain = FallbackLLM(
        [
            FakeLLM([ANSWER], model="a", fail_after_chars=8),
            FakeLLM([ANSWER], model="b", fail_after_chars=24),
            FakeLLM([ANSWER], model="c"),
        ]
    )

    events = await collect(chain.stream(make_request()))

    assert text_of(events) == ANSWER
    assert [e.text for e in events if e.kind == "switch"] == ["b", "c"]
    assert chain.record.fallbacks == ["b", "c"]


async def test_a_fallback_that_breaks_while_catching_up_sends_nothing() -> None:
    chain = FallbackLLM(
        [
            FakeLLM([ANSWER], model="a", fail_after_chars=24),
            FakeLLM([ANSWER], model="b", fail_after_chars=8),  # breaks before it re-reached the 24 sent chars
            FakeLLM([ANSWER], model="c"),
        ]
    )

    events = await collect(chain.stream(make_request()))

    assert text_of(events) == ANSWER


async def test_a_stream_that_stalls_mid_way_fails_over_in_time() -> None:
    record = CallRecord()
    stalling = RetryingLLM(FakeLLM([ANSWER], model="a", chunk_chars=8, delay_s=0.04), record=record)
    chain = FallbackLLM([stalling, RetryingLLM(FakeLLM([ANSWER], model="b"), record=record)], record=record)
    started = time.monotonic()

    events = await asyncio.wait_for(collect(chain.stream(make_request(timeout_s=0.1))), timeout=5)

    assert text_of(events) == ANSWER
    assert [e.text for e in events if e.kind == "switch"] == ["b"]
    assert time.monotonic() - started < 1.0
    assert "ran out of its attempt's time while streaming" in record.errors[0]


def _streamed(text: str, break_at: int, chunk: int, fallback_text: str, fallback_chunk: int) -> list[StreamEvent]:
    first = FakeLLM([text], model="a", chunk_chars=chunk, fail_after_chars=break_at)
    second = FakeLLM([fallback_text], model="b", chunk_chars=fallback_chunk)
    return asyncio.run(collect(FallbackLLM([first, second]).stream(make_request())))


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(min_size=1, max_size=80),
    break_at=st.integers(0, 100),
    chunk=st.integers(1, 9),
    fallback_kind=st.sampled_from(["same", "extends_prefix", "other"]),
    extra=st.text(min_size=1, max_size=40),
    fallback_chunk=st.integers(1, 9),
)
def test_mid_stream_fallback_text_is_what_the_policy_promises(
    text: str, break_at: int, chunk: int, fallback_kind: str, extra: str, fallback_chunk: int
) -> None:
    # FakeLLM sends whole chunks and breaks before the first chunk that would start at or after break_at.
    sent_len = min(len(text), math.ceil(break_at / chunk) * chunk)
    sent = text[:sent_len]
    fallback_text = {"same": text, "extends_prefix": sent + extra, "other": extra}[fallback_kind]

    events = _streamed(text, break_at, chunk, fallback_text, fallback_chunk)

    broke = sent_len < len(text)
    if not broke:
        expected = text
    elif fallback_text.startswith(sent):
        expected = fallback_text  # the client's text is exactly the fallback's answer
    else:
        expected = sent + RESTART_SEPARATOR + fallback_text  # both kept, the restart marked
    assert text_of(events) == expected
    assert [e.kind for e in events].count("switch") == (1 if broke and sent else 0)
    assert events[-1].kind == "finish"
    if fallback_kind == "same":
        assert text_of(events) == text  # a deterministic fallback reproduces the answer exactly


# --- CircuitBreakerLLM -------------------------------------------------------------------------------------


async def _fail(llm: LLM, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ProviderError):
            await llm.complete(make_request())


async def test_the_circuit_opens_after_consecutive_failures_and_refuses_at_once() -> None:
    clock = FakeTime(now=0.0)
    inner = FakeLLM([down()])
    breaker = CircuitBreakerLLM(inner, failures=3, cooldown_s=30.0, clock=clock)

    await _fail(breaker, 3)
    with pytest.raises(ProviderCoolingDown, match="cooling down until") as caught:
        await breaker.complete(make_request())

    assert len(inner.requests) == 3
    assert breaker.state == "open"
    assert (caught.value.status, caught.value.retry_after) == (503, 30.0)


async def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = CircuitBreakerLLM(FakeLLM([down(), down(), "ok", down(), down()]), failures=3, cooldown_s=30.0)

    await _fail(breaker, 2)
    await breaker.complete(make_request())
    await _fail(breaker, 2)

    assert breaker.state == "closed"


async def test_client_errors_do_not_open_the_circuit() -> None:
    breaker = CircuitBreakerLLM(FakeLLM([ProviderError("bad", status=400)]), failures=2, cooldown_s=30.0)
    await _fail(breaker, 5)
    assert breaker.state == "closed"


async def test_after_the_cool_down_one_trial_call_closes_the_circuit() -> None:
    clock = FakeTime(now=0.0)
    inner = FakeLLM([down(), down(), "recovered"])
    breaker = CircuitBreakerLLM(inner, failures=2, cooldown_s=30.0, clock=clock)
    await _fail(breaker, 2)

    clock.now = 29.9
    before = breaker.state
    clock.now = 30.0
    during = breaker.state
    answer = await breaker.complete(make_request())

    assert (before, during, breaker.state) == ("open", "half_open", "closed")
    assert answer.text == "recovered"


async def test_a_failed_trial_opens_the_circuit_for_another_cool_down() -> None:
    clock = FakeTime(now=0.0)
    inner = FakeLLM([down()])
    breaker = CircuitBreakerLLM(inner, failures=2, cooldown_s=30.0, clock=clock)
    await _fail(breaker, 2)

    clock.now = 31.0
    await _fail(breaker, 1)

    assert breaker.state == "open"
    with pytest.raises(ProviderCoolingDown, match=r"until t=61\.0"):
        await breaker.complete(make_request())
    assert len(inner.requests) == 3


async def test_only_one_trial_call_runs_while_half_open() -> None:
    clock = FakeTime(now=0.0)
    script: list[Reply] = [down(), "trial answer"]
    breaker = CircuitBreakerLLM(FakeLLM(script, delay_s=0.05), failures=1, cooldown_s=10.0, clock=clock)
    await _fail(breaker, 1)
    clock.now = 10.0

    trial = asyncio.create_task(breaker.complete(make_request()))
    await asyncio.sleep(0)
    with pytest.raises(ProviderCoolingDown, match="trial call is in flight"):
        await breaker.complete(make_request())

    assert (await trial).text == "trial answer"
    assert breaker.state == "closed"


async def test_a_broken_stream_counts_as_a_failure() -> None:
    breaker = CircuitBreakerLLM(FakeLLM([ANSWER], fail_after_chars=8), failures=1, cooldown_s=30.0)
    with pytest.raises(ProviderError):
        await collect(breaker.stream(make_request()))
    assert breaker.state == "open"


async def test_fallback_skips_a_cooling_provider_fast_and_records_it() -> None:
    clock = FakeTime(now=0.0)
    first = FakeLLM([down()], model="a")
    breaker = CircuitBreakerLLM(first, failures=1, cooldown_s=30.0, clock=clock)
    await _fail(breaker, 1)
    chain = FallbackLLM([breaker, FakeLLM(["ok"], model="b")])

    result = await chain.complete(make_request())

    assert result.model == "b"
    assert len(first.requests) == 1
    assert chain.record.skipped_cooling == ["fake:a"]
    assert chain.record.errors == []


async def test_retrying_does_not_retry_a_cool_down_and_records_it_once() -> None:
    clock = FakeTime(now=0.0)
    breaker = CircuitBreakerLLM(FakeLLM([down()], model="a"), failures=1, cooldown_s=30.0, clock=clock)
    await _fail(breaker, 1)
    record = CallRecord()
    members: list[LLM] = [
        RetryingLLM(breaker, record=record, sleep=clock.sleep, clock=clock),
        RetryingLLM(FakeLLM([ANSWER], model="b"), record=record, sleep=clock.sleep, clock=clock),
    ]

    events = await collect(FallbackLLM(members, record=record).stream(make_request()))

    assert text_of(events) == ANSWER
    assert clock.waits == []
    assert record.skipped_cooling == ["fake:a"]
    assert (record.attempts, record.retries, record.errors) == (1, 0, [])


# --- check_max_tokens --------------------------------------------------------------------------------------


def test_a_prompt_that_leaves_no_room_for_the_answer_is_refused_with_the_numbers() -> None:
    request = CompletionRequest(messages=(Message("user", "x"),), max_tokens=30)
    llm = FakeLLM(context_window=100)

    with pytest.raises(InputError) as caught:
        check_max_tokens(request, llm, lambda messages: 80)

    message = str(caught.value)
    assert all(number in message for number in ("80", "30", "110", "100"))
    assert check_max_tokens(request, llm, lambda messages: 70) == 70


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_hanging_model_leaves_the_last_link_time_to_answer(streaming: bool) -> None:
    record = CallRecord()
    hanging = FakeLLM([ANSWER], delay_s=30.0)
    backup = FakeLLM(["Refunds take 5 days [1]."], model="backup")
    chain = resilient_chain([hanging, backup], ResilienceSettings(fallback_reserve_s=5.0), record=record)
    request = make_request(deadline=time.monotonic() + 1.0, timeout_s=1.0)
    started = time.monotonic()
    if streaming:
        text = "".join([e.text async for e in chain.stream(request) if e.kind == "delta"])
    else:
        text = (await chain.complete(request)).text
    assert text == "Refunds take 5 days [1]."
    # The hanging model got half of the second (less than the 5 s reserve was left); the backup the rest.
    assert 0.45 < time.monotonic() - started < 1.0
    assert record.fallbacks == ["backup"]
    assert record.errors and record.errors[0].startswith("fake:fake: no status:")  # the time-out, recorded
