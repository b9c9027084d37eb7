"""Rate limits per API key and per tenant: requests and tokens per sliding minute.

The algorithm is the sliding-window counter: two fixed one-minute counters (this minute, the previous one),
the previous weighted by how much of it still lies inside the last 60 seconds. It needs one counter per
window, which an atomic UPSERT (SQLite) or INCRBY (Redis) keeps exact under concurrency, and it never lets
a burst at a window edge through twice the way a fixed window does.

Requests are charged when admitted. Tokens are only known once the model has answered, so they are charged
after the request, and a request is admitted while the window still has at least one token left.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from answerdesk.config import LimitSettings, RateSettings
from answerdesk.cost.base import CounterStore, Increment
from answerdesk.errors import RateLimited
from answerdesk.serve.base import ADMIT, Admission, Feedback, RequestInfo, RequestResult
from answerdesk.types import Principal

WINDOW_S = 60.0
Metric = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    """Whether ``cost`` more units fit; ``remaining`` after taking them, else ``retry_after`` seconds to wait."""

    allowed: bool
    remaining: float
    retry_after: float


def sliding_window(
    previous: float, current: float, *, cost: float, limit: float, elapsed: float, window: float = WINDOW_S
) -> WindowVerdict:
    """Decide one request against a sliding-window counter.

    ``previous``/``current`` are the previous and the current fixed window's counts; ``elapsed`` is how far
    (seconds) into the current window we are. A cost above the limit can never fit: ``retry_after`` is then
    one window (the caller should not keep retrying quickly).
    """
    weight = max(0.0, 1.0 - elapsed / window)
    used = previous * weight + current
    if used + cost <= limit:
        return WindowVerdict(True, limit - used - cost, 0.0)
    if cost > limit:
        return WindowVerdict(False, 0.0, window)
    if current + cost <= limit:
        # Within this window: wait until enough of the previous window has slid out.
        return WindowVerdict(False, 0.0, min((used + cost - limit) * window / previous, window - elapsed))
    # Not before the next window, where this window's count becomes the weighted ``previous``.
    wait_next = (current + cost - limit) * window / current if current else 0.0
    return WindowVerdict(False, 0.0, (window - elapsed) + min(wait_next, window))


@dataclass(frozen=True, slots=True)
class _Limit:
    scope: str  # "key" | "tenant"
    owner: str
    metric: Metric
    limit: int

    def names(self, index: int) -> tuple[str, str]:
        base = f"rate:{self.scope}:{self.owner}:{self.metric}:"
        return base + str(index - 1), base + str(index)

    @property
    def label(self) -> str:
        return f"{self.scope}:{self.metric}_per_minute"


def limits_for(settings: LimitSettings, principal: Principal) -> list[_Limit]:
    """The limits that apply to one caller."""
    tenant = principal.tenant or "-"
    per_tenant = settings.tenants.get(tenant, settings.per_tenant)
    out: list[_Limit] = []
    for scope, owner, rates in (("key", principal.subject, settings.per_key), ("tenant", tenant, per_tenant)):
        out.extend(_limits(scope, owner, rates))
    return out


def _limits(scope: str, owner: str, rates: RateSettings) -> list[_Limit]:
    out = []
    if rates.requests_per_minute:
        out.append(_Limit(scope, owner, "requests", rates.requests_per_minute))
    if rates.tokens_per_minute:
        out.append(_Limit(scope, owner, "tokens", rates.tokens_per_minute))
    return out


class RateLimitHooks:
    """Request hooks that admit a request within its key's and tenant's limits, else raise
    :class:`RateLimited` (429 with ``Retry-After``). Adds ``X-RateLimit-Remaining`` (requests, the tightest
    limit) to admitted responses."""

    def __init__(
        self, settings: LimitSettings, counters: CounterStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._counters = counters
        self._clock = clock

    async def before(self, principal: Principal, request: RequestInfo) -> Admission:
        limits = limits_for(self._settings, principal)
        if not limits:
            return ADMIT
        now = self._clock()
        index, elapsed = divmod(now, WINDOW_S)
        names = [name for limit in limits for name in limit.names(int(index))]
        remaining: list[float] = []

        def decide(counts: Mapping[str, float]) -> Sequence[Increment]:
            increments = []
            for limit in limits:
                previous, current = limit.names(int(index))
                cost = 1.0  # a request, or for tokens: at least one left
                verdict = sliding_window(
                    counts[previous], counts[current], cost=cost, limit=limit.limit, elapsed=elapsed
                )
                if not verdict.allowed:
                    raise RateLimited(
                        f"over the {limit.label.replace('_', ' ')} limit of {limit.limit}",
                        limit=limit.label,
                        retry_after=verdict.retry_after,
                    )
                if limit.metric == "requests":
                    remaining.append(verdict.remaining)
                    increments.append(Increment(current, 1.0, _expiry(index)))
            return increments

        await self._counters.update(names, decide)
        if not remaining:
            return ADMIT
        return Admission(headers={"X-RateLimit-Remaining": str(math.floor(min(remaining)))})

    async def after(self, principal: Principal, request: RequestInfo, result: RequestResult) -> None:
        if result.status == 0:
            # A later hook (a budget) refused the request after this one counted it: give the request back.
            await self._release(principal)
            return
        if result.answer is None:
            return
        tokens = result.answer.usage.input_tokens + result.answer.usage.output_tokens
        limits = [limit for limit in limits_for(self._settings, principal) if limit.metric == "tokens"]
        if not tokens or not limits:
            return
        index = int(self._clock() // WINDOW_S)
        await self._counters.record(
            [Increment(limit.names(index)[1], float(tokens), _expiry(index)) for limit in limits]
        )

    async def feedback(self, principal: Principal, feedback: Feedback) -> None:
        return None

    async def _release(self, principal: Principal) -> None:
        index = int(self._clock() // WINDOW_S)
        limits = [limit for limit in limits_for(self._settings, principal) if limit.metric == "requests"]
        await self._counters.record([Increment(limit.names(index)[1], -1.0, _expiry(index)) for limit in limits])


def _expiry(index: float) -> float:
    # A window is read as "previous" during the next one, so it matters until two windows after its start.
    return (int(index) + 2) * WINDOW_S
