"""Resilience as wrappers that implement the LLM Protocol themselves: retry, fallback, circuit breaker.

Providers stay free of ``if``s for any of this; wrappers compose. Breakers live as long as the process (their
state is the provider's health); the rest is built per request around one :class:`CallRecord`::

    breakers = [CircuitBreakerLLM(p, failures=5, cooldown_s=30.0) for p in providers]  # once
    record = CallRecord()                                                               # per request
    llm = resilient_chain(breakers, settings.generation.resilience, record=record)

Bookkeeping, so that nothing is counted twice when wrappers share a record: a :class:`RetryingLLM` counts
the attempts, retries, errors and cool-down skips of what it wraps; a :class:`FallbackLLM` records each
fallback (the model id it moved to) and counts attempts, errors and skips only for chain members that are
not a ``RetryingLLM`` writing to the same record.

Mid-stream fallback policy (see :func:`splice`): text already sent stays. The next model is asked for the
whole answer; a ``switch`` event naming it comes first, and its text is held back while it may still repeat
what was sent. If its answer starts with the sent text, only the remainder is emitted (the client's text is
exactly the new answer). Otherwise :data:`RESTART_SEPARATOR` and the new full answer are emitted, so the
client sees where one answer stops and the other begins. The ``finish`` usage adds an estimate for each model
that broke after producing text to the usage of the model that finished.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from answerdesk.config import ResilienceSettings
from answerdesk.errors import ConfigError, InputError, ProviderError
from answerdesk.generate.base import LLM, CallRecord, Completion, CompletionRequest, StreamEvent
from answerdesk.generate.pricing import estimate_usage
from answerdesk.types import Message, Usage

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

#: Emitted before a fallback model's full answer when that answer does not continue the text already sent.
RESTART_SEPARATOR = "\n\n---\n\n"


class ProviderCoolingDown(ProviderError):
    """A circuit breaker refused the call without trying it (status 503, ``retry_after`` = seconds left)."""


def is_retryable(exc: ProviderError) -> bool:
    """Timeouts and lost connections (no status), 408, 429 and 5xx; never a breaker's cool-down refusal."""
    if isinstance(exc, ProviderCoolingDown):
        return False
    return exc.status is None or exc.status in (408, 429) or 500 <= exc.status <= 599


def backoff_wait(retry: int, *, base_s: float, max_s: float, rng: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in ``[0, min(max_s, base_s * 2**retry))`` for the ``retry``-th retry (from 0)."""
    return rng() * min(max_s, base_s * 2.0**retry)


def splice(sent: str, answer: str) -> str:
    """What the client is sent of a fallback model's full ``answer`` after it already has ``sent``."""
    return answer[len(sent) :] if answer.startswith(sent) else RESTART_SEPARATOR + answer


def check_max_tokens(
    request: CompletionRequest, llm: LLM, count_prompt_tokens: Callable[[Sequence[Message]], int]
) -> int:
    """The prompt's token count; raises :class:`InputError` when it plus ``max_tokens`` exceeds the context window."""
    prompt = count_prompt_tokens(request.messages)
    if prompt + request.max_tokens > llm.context_window:
        raise InputError(
            f"the prompt is {prompt} tokens and up to {request.max_tokens} may be generated: "
            f"{prompt + request.max_tokens} > the context window of {_name(llm)} ({llm.context_window} tokens); "
            "shorten the question or history, retrieve fewer chunks, or lower max_tokens"
        )
    return prompt


def resilient_chain(llms: Sequence[LLM], settings: ResilienceSettings, *, record: CallRecord) -> FallbackLLM:
    """Each model retried per ``settings``, then the next one, all recorded into ``record``."""
    retrying: list[LLM] = [
        RetryingLLM(
            llm,
            max_attempts=settings.max_attempts,
            backoff_base_s=settings.backoff_base_s,
            backoff_max_s=settings.backoff_max_s,
            record=record,
        )
        for llm in llms
    ]
    return FallbackLLM(retrying, record=record, reserve_s=settings.fallback_reserve_s)


class _Wrapper:
    """Passes the wrapped model's identity through."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner

    @property
    def provider(self) -> str:
        return self.inner.provider

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def context_window(self) -> int:
        return self.inner.context_window


class RetryingLLM(_Wrapper):
    """Retries retryable :class:`ProviderError`\\ s with full-jitter backoff, at least ``retry_after``, within
    ``max_attempts`` and the request's ``deadline``; bounds each attempt by ``timeout_s`` and the deadline.

    A stream is retried only while no delta has been sent; a later failure is re-raised (for a
    :class:`FallbackLLM` to continue). Raises the last :class:`ProviderError` when it gives up.
    """

    # Written by hand rather than with tenacity (read: 9.2.1 source): tenacity is no dependency of answerdesk
    # (it only arrives through llama-index-core in the bench extra); its ``after`` hook skips failures it does
    # not retry, so errors would still be recorded here; and the jitter with an injected rng, the Retry-After
    # floor and the deadline test on the coming sleep would each be a custom callback, leaving it only the loop.

    def __init__(
        self,
        inner: LLM,
        *,
        max_attempts: int = 3,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 8.0,
        record: CallRecord | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
        super().__init__(inner)
        self.record = record if record is not None else CallRecord()
        self._max_attempts = max_attempts
        self._base_s = backoff_base_s
        self._max_s = backoff_max_s
        self._sleep = sleep
        self._rng = rng
        self._clock = clock

    async def complete(self, request: CompletionRequest) -> Completion:
        async def attempt(req: CompletionRequest) -> Completion:
            try:
                async with asyncio.timeout(req.timeout_s):
                    return await self.inner.complete(req)
            except TimeoutError as exc:
                raise ProviderError(f"{_name(self.inner)} gave no answer within {req.timeout_s:.2f}s") from exc

        return await self._with_retries(request, attempt)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        events, head, until = await self._with_retries(request, self._open_stream)
        try:
            for first in head:
                yield first
            while (event := await self._next_event(events, until)) is not None:
                yield event
        except ProviderError as exc:
            self.record.errors.append(_describe(self.inner, exc))
            raise
        finally:
            await _aclose(events)

    async def _open_stream(
        self, request: CompletionRequest
    ) -> tuple[AsyncIterator[StreamEvent], list[StreamEvent], float]:
        """The stream, its events up to the first delta (or finish) and the loop time the attempt must end by.

        Reading ahead to the first delta is what makes a failure so far retryable."""
        events = aiter(self.inner.stream(request))
        until = asyncio.get_running_loop().time() + request.timeout_s
        head: list[StreamEvent] = []
        try:
            while (event := await self._next_event(events, until)) is not None:
                head.append(event)
                if event.kind in ("delta", "finish"):
                    break
        except BaseException:
            await _aclose(events)
            raise
        return events, head, until

    async def _next_event(self, events: AsyncIterator[StreamEvent], until: float) -> StreamEvent | None:
        try:
            async with asyncio.timeout_at(until):
                return await anext(events)
        except StopAsyncIteration:
            return None
        except TimeoutError as exc:
            raise ProviderError(f"{_name(self.inner)} ran out of its attempt's time while streaming") from exc

    async def _with_retries(
        self, request: CompletionRequest, attempt: Callable[[CompletionRequest], Awaitable[T]]
    ) -> T:
        retry = 0
        while True:
            attempt_request = self._attempt_request(request)
            try:
                result = await attempt(attempt_request)
            except ProviderCoolingDown:
                self.record.skipped_cooling.append(_name(self.inner))
                raise
            except ProviderError as exc:
                self.record.attempts += 1
                self.record.errors.append(_describe(self.inner, exc))
                wait = self._wait_before_retry(exc, retry, request.deadline)
                if wait is None:
                    raise
                self.record.retries += 1
                await self._sleep(wait)
                retry += 1
            else:
                self.record.attempts += 1
                return result

    def _attempt_request(self, request: CompletionRequest) -> CompletionRequest:
        """The request with ``timeout_s`` cut to what is left before the deadline."""
        if request.deadline is None:
            return request
        left = request.deadline - self._clock()
        if left <= 0:
            exc = ProviderError(f"the deadline passed {-left:.2f}s before the attempt")
            self.record.errors.append(_describe(self.inner, exc))
            raise exc
        return replace(request, timeout_s=min(request.timeout_s, left))

    def _wait_before_retry(self, exc: ProviderError, retry: int, deadline: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if not is_retryable(exc) or retry + 1 >= self._max_attempts:
            return None
        wait = backoff_wait(retry, base_s=self._base_s, max_s=self._max_s, rng=self._rng)
        if exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        if deadline is not None and self._clock() + wait >= deadline:
            return None
        return wait


class FallbackLLM:
    """Tries each model of ``chain`` in order until one answers; stops early once the request's deadline passes.

    Every model but the last must finish ``reserve_s`` before the deadline (at most half the time left), so
    that one that hangs leaves the last link time to answer. A stream that breaks after sending text
    continues with the next model by the policy in the module docstring. Raises a :class:`ProviderError`
    naming every failure (status and ``retry_after`` of the last) when no model answers.
    """

    def __init__(
        self,
        chain: Sequence[LLM],
        *,
        record: CallRecord | None = None,
        reserve_s: float = 0.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if not chain:
            raise ConfigError("a fallback chain needs at least one model")
        self.chain = tuple(chain)
        self._reserve_s = reserve_s
        self.record = record if record is not None else CallRecord()
        self._clock = clock
        # Members that already write attempts and errors into our record.
        self._self_recording = tuple(isinstance(m, RetryingLLM) and m.record is self.record for m in self.chain)

    @property
    def provider(self) -> str:
        return self.chain[0].provider

    @property
    def model(self) -> str:
        return self.chain[0].model

    @property
    def context_window(self) -> int:
        """The smallest of the chain: a request must fit whichever model ends up answering."""
        return min(m.context_window for m in self.chain)

    async def complete(self, request: CompletionRequest) -> Completion:
        failures: list[tuple[LLM, ProviderError]] = []
        for index, llm in enumerate(self.chain):
            if index and not self._move_on(request, llm):
                break
            try:
                result = await llm.complete(self._for_member(request, index))
            except ProviderError as exc:
                self._note_failure(index, exc)
                failures.append((llm, exc))
                continue
            self._note_success(index)
            return result
        raise self._exhausted(failures)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        state = _StreamState()
        for index, llm in enumerate(self.chain):
            if index and not self._move_on(request, llm):
                break
            try:
                async for event in self._stream_member(index, request, state):
                    yield event
                return
            except ProviderError as exc:
                self._note_failure(index, exc)
                state.failures.append((llm, exc))
        raise self._exhausted(state.failures)

    async def _stream_member(
        self, index: int, request: CompletionRequest, state: _StreamState
    ) -> AsyncIterator[StreamEvent]:
        """One member's stream as the client should see it after ``state.answer`` was sent."""
        llm = self.chain[index]
        held = _Splicer(state.answer)
        produced = ""
        announce = bool(state.answer)
        events = aiter(llm.stream(self._for_member(request, index)))
        try:
            async for event in events:
                if announce:  # once the model streams, so that one skipped at once is never announced
                    announce = False
                    yield StreamEvent("switch", text=llm.model, provider=llm.provider, model=llm.model)
                if event.kind == "delta":
                    produced += event.text
                    new = held.feed(event.text)
                elif event.kind == "finish":
                    new = held.finish()
                else:  # a nested wrapper's switch
                    yield event
                    continue
                if new:
                    yield StreamEvent("delta", new, provider=event.provider, model=event.model)
                if event.kind == "finish":
                    self._note_success(index)
                    yield replace(event, usage=sum(state.spent, event.usage or Usage()) if state.spent else event.usage)
                    return
            raise ProviderError(f"{_name(llm)}: the stream ended without a finish event", status=502)
        except ProviderError:
            if produced:
                state.spent.append(estimate_usage(request.messages, produced))
            if held.decided:
                state.answer = produced
            raise
        finally:
            await _aclose(events)

    def _for_member(self, request: CompletionRequest, index: int) -> CompletionRequest:
        """The request as chain member ``index`` gets it: all but the last end ``reserve_s`` early."""
        if request.deadline is None or not self._reserve_s or index == len(self.chain) - 1:
            return request
        left = request.deadline - self._clock()
        return replace(request, deadline=request.deadline - min(self._reserve_s, max(left, 0.0) / 2))

    def _move_on(self, request: CompletionRequest, llm: LLM) -> bool:
        """Whether there is time to try ``llm``; records the fallback when there is."""
        if request.deadline is not None and self._clock() >= request.deadline:
            return False
        self.record.fallbacks.append(llm.model)
        return True

    def _note_success(self, index: int) -> None:
        if not self._self_recording[index]:
            self.record.attempts += 1

    def _note_failure(self, index: int, exc: ProviderError) -> None:
        if self._self_recording[index]:
            return
        if isinstance(exc, ProviderCoolingDown):
            self.record.skipped_cooling.append(_name(self.chain[index]))
        else:
            self.record.attempts += 1
            self.record.errors.append(_describe(self.chain[index], exc))

    def _exhausted(self, failures: Sequence[tuple[LLM, ProviderError]]) -> ProviderError:
        tried = "; ".join(f"{_name(llm)}: {exc}" for llm, exc in failures)
        untried = [_name(m) for m in self.chain[len(failures) :]]
        message = f"no model answered ({tried})"
        if untried:
            message += f"; the deadline passed before trying {', '.join(untried)}"
        last = failures[-1][1]  # the first model is always tried
        error = ProviderError(message, status=last.status, retry_after=last.retry_after)
        error.__cause__ = last
        return error


@dataclass(slots=True)
class _StreamState:
    #: The answer text the client has (since the last restart separator).
    answer: str = ""
    #: Estimated usage of members that broke after producing text.
    spent: list[Usage] = field(default_factory=list)
    failures: list[tuple[LLM, ProviderError]] = field(default_factory=list)


class _Splicer:
    """Holds a fallback model's text back while it may still repeat ``sent``; then passes it by :func:`splice`."""

    def __init__(self, sent: str) -> None:
        self._sent = sent
        self._held = ""
        self.decided = False

    def feed(self, text: str) -> str:
        """The part of ``text`` to emit now."""
        if self.decided:
            return text
        self._held += text
        if len(self._held) >= len(self._sent) or not self._sent.startswith(self._held):
            return self._decide()
        return ""

    def finish(self) -> str:
        """What is still held when the model finishes: an answer shorter than ``sent`` is a restart."""
        return "" if self.decided else self._decide()

    def _decide(self) -> str:
        self.decided = True
        return splice(self._sent, self._held)


class CircuitBreakerLLM(_Wrapper):
    """Refuses calls for ``cooldown_s`` after ``failures`` consecutive retryable failures.

    A refusal is an immediate :class:`ProviderCoolingDown` (status 503), so a :class:`FallbackLLM` moves on at
    once. After the cool-down one trial call goes through (half-open): success closes the circuit, failure opens
    it for another cool-down. Non-retryable errors (a 400, a 401) show the upstream is up, so they count as
    successes here. Keep one breaker per provider for the life of the process.
    """

    def __init__(self, inner: LLM, *, failures: int, cooldown_s: float, clock: Clock = time.monotonic) -> None:
        if failures < 1:
            raise ConfigError(f"breaker failures must be at least 1, got {failures}")
        super().__init__(inner)
        self._threshold = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None
        self._trial_running = False

    @property
    def state(self) -> Literal["closed", "open", "half_open"]:
        if self._open_until is None:
            return "closed"
        return "open" if self._clock() < self._open_until else "half_open"

    async def complete(self, request: CompletionRequest) -> Completion:
        trial = self._admit()
        try:
            result = await self.inner.complete(request)
        except ProviderError as exc:
            self._on_result(exc)
            raise
        finally:
            if trial:
                self._trial_running = False
        self._on_result(None)
        return result

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        trial = self._admit()
        events = aiter(self.inner.stream(request))
        try:
            async for event in events:
                if event.kind == "finish":
                    self._on_result(None)
                yield event
        except ProviderError as exc:
            self._on_result(exc)
            raise
        finally:
            if trial:  # an abandoned stream proves nothing either way; it only frees the trial slot
                self._trial_running = False
            await _aclose(events)

    def _admit(self) -> bool:
        """Whether this call is the half-open trial; raises :class:`ProviderCoolingDown` while refusing."""
        if self._open_until is None:
            return False
        now = self._clock()
        if now < self._open_until or self._trial_running:
            left = max(0.0, self._open_until - now)
            why = "a trial call is in flight" if now >= self._open_until else f"{left:.1f}s left"
            raise ProviderCoolingDown(
                f"{_name(self.inner)} failed {self._failures} times in a row; cooling down until "
                f"t={self._open_until:.1f} ({why})",
                status=503,
                retry_after=left or None,
            )
        self._trial_running = True
        return True

    def _on_result(self, exc: ProviderError | None) -> None:
        if exc is None or not is_retryable(exc):
            self._failures = 0
            self._open_until = None
            return
        self._failures += 1
        if self._open_until is not None or self._failures >= self._threshold:
            self._open_until = self._clock() + self._cooldown_s


def _name(llm: LLM) -> str:
    return f"{llm.provider}:{llm.model}"


def _describe(llm: LLM, exc: ProviderError) -> str:
    status = "no status" if exc.status is None else str(exc.status)
    return f"{_name(llm)}: {status}: {exc}"


async def _aclose(events: AsyncIterator[StreamEvent]) -> None:
    """Closes an async generator (a plain async iterator has nothing to close)."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
