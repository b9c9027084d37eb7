"""Spend budgets: UTC calendar windows across midnight and month ends, 429 or downgrade, the ledger."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from answerdesk.config import BudgetRule, BudgetSettings
from answerdesk.cost.budgets import BudgetHooks, seconds_to_reset, window_end, window_id
from answerdesk.cost.sqlite import SqliteCounterStore
from answerdesk.errors import BudgetExceeded
from answerdesk.serve.base import RequestInfo, RequestResult
from answerdesk.types import Answer, Principal, Usage

ACME = Principal(subject="ak_00000001", tenant="acme", roles=frozenset({"agent"}))


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


class Clock:
    def __init__(self, when: str) -> None:
        self.now = at(when).timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: str) -> None:
        self.now = at(when).timestamp()


def answer(cost: float, request_id: str = "r1") -> Answer:
    return Answer(
        request_id=request_id, question="q", text="a", citations=(), confidence=0.9, refused=False,
        refusal_reason=None, prompt_name="answer", prompt_version=1, prompt_sha256="0" * 64, route="default",
        route_reason="", provider="fake", model="big-model", usage=Usage(100, 20), cost_usd=cost, retrieval_query="q",
    )  # fmt: skip


def info(request_id: str = "r1", **tags: str) -> RequestInfo:
    return RequestInfo(
        request_id=request_id, endpoint="answers", method="POST", path="/v1/answers", stream=False, tags=tags
    )


def test_windows_are_utc_calendar_days_and_months() -> None:
    assert window_id(at("2026-12-31T23:59:59"), "day") == "2026-12-31"
    assert window_id(at("2027-01-01T00:00:00"), "day") == "2027-01-01"
    assert window_end(at("2026-12-31T10:00:00"), "month") == at("2027-01-01T00:00:00")
    assert window_end(at("2028-02-10T10:00:00"), "month") == at("2028-03-01T00:00:00")  # leap year
    assert seconds_to_reset(at("2026-12-02T23:59:30"), "day") == 30
    # A time in another zone is placed in its UTC window: 20:00 in New York on the 2nd is the 3rd in UTC.
    new_york = dt.datetime(2026, 12, 2, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert window_id(new_york, "day") == "2026-12-03"


async def test_daily_tenant_budget_refuses_until_midnight_utc(tmp_path: Path) -> None:
    clock = Clock("2026-12-02T23:00:00")
    hooks = BudgetHooks(
        BudgetSettings(tenants={"acme": BudgetRule(daily_usd=1.0)}), SqliteCounterStore(tmp_path / "s.db"), clock=clock
    )
    await hooks.before(ACME, info())
    await hooks.after(ACME, info(), RequestResult("ok", 200, 0.1, answer=answer(1.0)))
    with pytest.raises(BudgetExceeded) as refused:
        await hooks.before(ACME, info("r2"))
    assert refused.value.retry_after == 3600
    assert refused.value.limit == "budget:tenant:day"
    clock.set("2026-12-03T00:00:01")
    await hooks.before(ACME, info("r3"))


async def test_monthly_budget_spans_days_and_resets_on_the_first(tmp_path: Path) -> None:
    clock = Clock("2027-01-30T12:00:00")
    hooks = BudgetHooks(
        BudgetSettings(tenants={"*": BudgetRule(monthly_usd=2.0)}), SqliteCounterStore(tmp_path / "s.db"), clock=clock
    )
    for day, rid in (("2027-01-30T12:00:00", "r1"), ("2027-01-31T12:00:00", "r2")):
        clock.set(day)
        await hooks.before(ACME, info(rid))
        await hooks.after(ACME, info(rid), RequestResult("ok", 200, 0.1, answer=answer(1.0, rid)))
    with pytest.raises(BudgetExceeded) as refused:
        await hooks.before(ACME, info("r3"))
    assert refused.value.retry_after == 12 * 3600
    other = Principal(subject="ak_2", tenant="globex")
    await hooks.before(other, info("r4"))  # "*" gives each tenant its own budget
    clock.set("2027-02-01T00:00:00")
    await hooks.before(ACME, info("r5"))


async def test_cost_tag_budget_applies_to_its_value_only(tmp_path: Path) -> None:
    clock = Clock("2026-12-02T10:00:00")
    settings = BudgetSettings(tags={"cost_centre": {"cc-7": BudgetRule(daily_usd=0.5)}})
    hooks = BudgetHooks(settings, SqliteCounterStore(tmp_path / "s.db"), clock=clock)
    await hooks.before(ACME, info("r1", cost_centre="cc-7"))
    await hooks.after(ACME, info("r1", cost_centre="cc-7"), RequestResult("ok", 200, 0.1, answer=answer(0.6)))
    with pytest.raises(BudgetExceeded, match="tag"):
        await hooks.before(ACME, info("r2", cost_centre="cc-7"))
    await hooks.before(ACME, info("r3", cost_centre="cc-8"))
    await hooks.before(ACME, info("r4"))


async def test_over_budget_downgrades_to_the_cheaper_route_when_configured(tmp_path: Path) -> None:
    clock = Clock("2026-12-02T10:00:00")
    settings = BudgetSettings(tenants={"acme": BudgetRule(daily_usd=0.1)}, downgrade_route="cheap")
    hooks = BudgetHooks(settings, SqliteCounterStore(tmp_path / "s.db"), clock=clock)
    assert (await hooks.before(ACME, info())).route is None
    await hooks.after(ACME, info(), RequestResult("ok", 200, 0.1, answer=answer(0.2)))
    admission = await hooks.before(ACME, info("r2"))
    assert admission.route == "cheap" and admission.flags == ("budget_downgrade:cheap",)


async def test_every_admitted_request_gets_one_ledger_row(tmp_path: Path) -> None:
    store = SqliteCounterStore(tmp_path / "s.db")
    hooks = BudgetHooks(BudgetSettings(), store, clock=Clock("2026-12-02T10:00:00"))
    tagged = info("r1", application="helpdesk")
    await hooks.after(ACME, tagged, RequestResult("ok", 200, 0.1, answer=answer(0.02)))
    await hooks.after(ACME, info("r2"), RequestResult("aborted", 499, 0.1))
    await hooks.after(ACME, info("r3"), RequestResult("error", 0, 0.0))  # refused by another hook: not billed
    rows = store.ledger(tenant="acme")
    assert [(r.request_id, r.outcome, r.model, r.input_tokens, r.cost_usd) for r in rows] == [
        ("r1", "ok", "big-model", 100, 0.02),
        ("r2", "aborted", None, 0, 0.0),
    ]
    assert rows[0].tags == {"application": "helpdesk"} and rows[0].key_id == "ak_00000001"
