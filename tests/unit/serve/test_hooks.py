"""Composed request hooks: order, route overrides, and release of earlier reservations on a refusal."""

from __future__ import annotations

import pytest

from answerdesk.errors import RateLimited
from answerdesk.serve.base import Admission, CompositeHooks, Feedback, RequestInfo, RequestResult
from answerdesk.types import Principal

WHO = Principal(subject="k1", tenant="acme", roles=frozenset({"agent"}))
INFO = RequestInfo(request_id="r1", endpoint="answers", method="POST", path="/v1/answers", stream=False)


class Recorder:
    def __init__(self, name: str, log: list[str], *, admission: Admission | None = None, refuse: bool = False):
        self.name, self.log, self.admission, self.refuse = name, log, admission or Admission(), refuse

    async def before(self, principal: Principal, request: RequestInfo) -> Admission:
        self.log.append(f"before:{self.name}")
        if self.refuse:
            raise RateLimited("over", limit="key:rpm", retry_after=3)
        return self.admission

    async def after(self, principal: Principal, request: RequestInfo, result: RequestResult) -> None:
        self.log.append(f"after:{self.name}:{result.outcome}")

    async def feedback(self, principal: Principal, feedback: Feedback) -> None:
        self.log.append(f"feedback:{self.name}")


async def test_before_in_order_after_in_reverse_and_overrides_merge() -> None:
    log: list[str] = []
    hooks = CompositeHooks(
        [
            Recorder("limits", log, admission=Admission(headers={"X-RateLimit-Remaining": "9"})),
            Recorder("budget", log, admission=Admission(route="cheap", flags=("downgraded:cheap",))),
        ]
    )
    admission = await hooks.before(WHO, INFO)
    assert admission.route == "cheap" and admission.flags == ("downgraded:cheap",)
    assert admission.headers == {"X-RateLimit-Remaining": "9"}
    await hooks.after(WHO, INFO, RequestResult("aborted", status=200, seconds=0.1))
    assert log == ["before:limits", "before:budget", "after:budget:aborted", "after:limits:aborted"]


async def test_a_refusal_releases_the_hooks_admitted_before_it() -> None:
    log: list[str] = []
    hooks = CompositeHooks([Recorder("limits", log), Recorder("budget", log, refuse=True), Recorder("x", log)])
    with pytest.raises(RateLimited):
        await hooks.before(WHO, INFO)
    assert log == ["before:limits", "before:budget", "after:limits:error"]
