"""Spend budgets per tenant and per cost tag over UTC calendar days and months, and the usage ledger.

A request is admitted while every budget that applies to it has money left; its cost is added once it has
been answered (the price is only known then), together with its ledger row, in one transaction. So a budget
can be overrun by the requests in flight when it runs out, never by more.

Windows are UTC calendar windows, so "daily" resets at 00:00 UTC and "monthly" on the 1st, whatever the
length of the month; ``Retry-After`` is the number of seconds until that reset.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from answerdesk.config import BudgetRule, BudgetSettings
from answerdesk.cost.base import CounterStore, Increment, LedgerEntry
from answerdesk.errors import BudgetExceeded
from answerdesk.serve.base import ADMIT, Admission, Feedback, RequestInfo, RequestResult
from answerdesk.types import Principal

Period = Literal["day", "month"]
WILDCARD = "*"


def window_id(now: dt.datetime, period: Period) -> str:
    """The UTC calendar window ``now`` falls in: ``2026-12-31`` (day) or ``2026-12`` (month)."""
    now = now.astimezone(dt.UTC)
    return now.strftime("%Y-%m-%d") if period == "day" else now.strftime("%Y-%m")


def window_end(now: dt.datetime, period: Period) -> dt.datetime:
    """When the UTC calendar window of ``now`` ends (the next midnight, or the 1st of next month)."""
    now = now.astimezone(dt.UTC)
    day = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
    if period == "day":
        return day + dt.timedelta(days=1)
    return dt.datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=dt.UTC)


def seconds_to_reset(now: dt.datetime, period: Period) -> float:
    return (window_end(now, period) - now.astimezone(dt.UTC)).total_seconds()


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget window that applies to a request: ``owner`` is ``tenant:acme`` or ``tag:cost_centre=cc-7``."""

    owner: str
    period: Period
    limit_usd: float

    def counter(self, now: dt.datetime) -> str:
        return f"budget:{self.owner}:{self.period}:{window_id(now, self.period)}"

    def expires_at(self, now: dt.datetime) -> float:
        # Kept a day past its end, so reports of the last window still see it.
        return (window_end(now, self.period) + dt.timedelta(days=1)).timestamp()


def budgets_for(settings: BudgetSettings, tenant: str | None, tags: Mapping[str, str]) -> list[Budget]:
    """The budgets one request counts against: its tenant's, and each of its cost tags'."""
    owners: list[tuple[str, BudgetRule]] = []
    tenant_name = tenant or "-"
    rule = settings.tenants.get(tenant_name, settings.tenants.get(WILDCARD))
    if rule is not None:
        owners.append((f"tenant:{tenant_name}", rule))
    for tag, value in sorted(tags.items()):
        rules = settings.tags.get(tag, {})
        rule = rules.get(value, rules.get(WILDCARD))
        if rule is not None:
            # Tag budgets are per tenant: two tenants may use the same cost-centre names.
            owners.append((f"tag:{tenant_name}:{tag}={value}", rule))
    out = []
    for owner, rule in owners:
        if rule.daily_usd is not None:
            out.append(Budget(owner, "day", rule.daily_usd))
        if rule.monthly_usd is not None:
            out.append(Budget(owner, "month", rule.monthly_usd))
    return out


def over_budget(spent: Mapping[str, float], budgets: Sequence[Budget], now: dt.datetime) -> list[Budget]:
    """The budgets with nothing left at ``now`` (``spent`` maps counter names to USD)."""
    return [b for b in budgets if spent.get(b.counter(now), 0.0) >= b.limit_usd]


class BudgetHooks:
    """Request hooks that enforce spend budgets and write one ledger row per admitted request.

    Over budget: :class:`BudgetExceeded` (429, ``Retry-After`` = seconds to the latest reset among the
    exhausted windows), or with ``downgrade_route`` the request is admitted on that route and flagged
    ``budget_downgrade:<route>``.
    """

    def __init__(
        self,
        settings: BudgetSettings,
        counters: CounterStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._counters = counters
        self._clock = clock

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    async def before(self, principal: Principal, request: RequestInfo) -> Admission:
        budgets = budgets_for(self._settings, principal.tenant, request.tags)
        if not budgets:
            return ADMIT
        now = self._now()
        exhausted: list[Budget] = []

        def decide(spent: Mapping[str, float]) -> Sequence[Increment]:
            exhausted.extend(over_budget(spent, budgets, now))
            return ()

        await self._counters.update([b.counter(now) for b in budgets], decide)
        if not exhausted:
            return ADMIT
        route = self._settings.downgrade_route
        if route is not None:
            return Admission(route=route, flags=(f"budget_downgrade:{route}",))
        worst = max(exhausted, key=lambda b: seconds_to_reset(now, b.period))
        raise BudgetExceeded(
            f"the {'daily' if worst.period == 'day' else 'monthly'} budget of {worst.limit_usd:g} USD for "
            f"{worst.owner.split(':', 1)[0]} is used up",
            limit=f"budget:{worst.owner.split(':', 1)[0]}:{worst.period}",
            retry_after=seconds_to_reset(now, worst.period),
        )

    async def after(self, principal: Principal, request: RequestInfo, result: RequestResult) -> None:
        if result.status == 0:
            return  # refused before it ran
        now = self._now()
        answer = result.answer
        cost = answer.cost_usd if answer is not None else 0.0
        increments = [
            Increment(b.counter(now), cost, b.expires_at(now))
            for b in budgets_for(self._settings, principal.tenant, request.tags)
        ]
        entry = LedgerEntry(
            request_id=request.request_id,
            created_at=now.isoformat(timespec="milliseconds"),
            tenant=principal.tenant,
            key_id=principal.subject,
            endpoint=request.endpoint,
            outcome=result.outcome,
            route=answer.route if answer is not None else request.route,
            model=answer.model if answer is not None else None,
            input_tokens=answer.usage.input_tokens if answer is not None else 0,
            output_tokens=answer.usage.output_tokens if answer is not None else 0,
            cost_usd=cost,
            tags=dict(request.tags),
        )
        await self._counters.record(increments if cost else [], entry)

    async def feedback(self, principal: Principal, feedback: Feedback) -> None:
        return None
