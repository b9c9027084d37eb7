"""What the HTTP service hands to the collaborators that wrap each request: rate limits and budgets,
lineage, audit, metrics.

:class:`RequestHooks` is the one seam. The service calls ``before`` once the caller is known and before any
pipeline work, and ``after`` exactly once per admitted request, whatever happened: answered, failed, or the
client went away mid-stream (``outcome="aborted"``). Hooks are composed with :class:`CompositeHooks`;
:class:`NoHooks` is the default.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from answerdesk.types import Answer, Principal

#: The answering endpoints and the other calls that hooks see, by name.
Endpoint = Literal["answers", "chat_completions", "search"]
Outcome = Literal["ok", "error", "aborted"]


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """One request as the hooks see it; built by the service, never by a client.

    ``tags`` are the caller's cost tags (``cost_centre``, ``business_unit``, ``application`` …) from the
    request body's ``tags`` field; ``route`` is the route or model the caller asked for (None: the router's
    choice).
    """

    request_id: str
    endpoint: Endpoint
    method: str
    path: str
    stream: bool
    question: str = ""
    route: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    client: str | None = None
    conversation_id: str | None = None
    #: ``time.perf_counter()`` when the request reached the service.
    started: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True, slots=True)
class Admission:
    """What ``before`` may change about a request it lets through.

    ``route`` replaces the route the pipeline uses (a budget's downgrade to a cheaper route); ``headers`` are
    added to the response (e.g. ``X-RateLimit-Remaining``); ``flags`` are recorded on the outcome.
    """

    route: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()


ADMIT = Admission()


@dataclass(frozen=True, slots=True)
class RequestResult:
    """How an admitted request ended.

    ``answer`` is set for a finished answer (``outcome="ok"``); ``error`` for a failure (``outcome="error"``,
    with the HTTP ``status`` it was sent as); for ``outcome="aborted"`` the client disconnected and
    ``partial_text`` holds what had been streamed to it. ``hits`` is the number of passages a search returned.
    """

    outcome: Outcome
    status: int
    seconds: float
    answer: Answer | None = None
    error: BaseException | None = None
    partial_text: str = ""
    hits: int | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Feedback:
    """A rating of one answer, as stored."""

    request_id: str
    tenant: str | None
    subject: str
    rating: Literal["up", "down"] | None
    csat: int | None
    comment: str
    created_at: str


class RequestHooks(Protocol):
    """Runs around each answering request. Implementations must be safe to call concurrently."""

    async def before(self, principal: Principal, request: RequestInfo) -> Admission:
        """Admit the request (optionally changing its route) or refuse it by raising an answerdesk error,
        e.g. ``RateLimited``/``BudgetExceeded`` (sent as 429 with ``Retry-After``)."""
        ...

    async def after(self, principal: Principal, request: RequestInfo, result: RequestResult) -> None:
        """Record how an admitted request ended; called once per ``before`` that admitted it, also when the
        client disconnected. Errors raised here are logged, never sent to the client."""
        ...

    async def feedback(self, principal: Principal, feedback: Feedback) -> None:
        """A rating for an earlier answer was stored (lineage attaches it to that request's record)."""
        ...


class NoHooks:
    """Admits everything, records nothing."""

    async def before(self, principal: Principal, request: RequestInfo) -> Admission:
        return ADMIT

    async def after(self, principal: Principal, request: RequestInfo, result: RequestResult) -> None:
        return None

    async def feedback(self, principal: Principal, feedback: Feedback) -> None:
        return None


class CompositeHooks:
    """Several hooks as one: ``before`` in order (the last route override wins, headers and flags merge),
    ``after`` and ``feedback`` in reverse order, each of them called even when an earlier one raised.

    A hook whose ``before`` raised is not called ``after``; those admitted before it are, with the refusal
    as the result's error, so a rate limiter's reservation is released when a later budget refuses."""

    def __init__(self, hooks: Sequence[RequestHooks]) -> None:
        self._hooks = tuple(hooks)

    async def before(self, principal: Principal, request: RequestInfo) -> Admission:
        route, headers, flags = None, dict[str, str](), list[str]()
        admitted: list[RequestHooks] = []
        for hook in self._hooks:
            try:
                admission = await hook.before(principal, request)
            except Exception as exc:
                refused = RequestResult("error", status=0, seconds=time.perf_counter() - request.started, error=exc)
                await _after_all(reversed(admitted), principal, request, refused)
                raise
            admitted.append(hook)
            route = admission.route or route
            headers.update(admission.headers)
            flags.extend(admission.flags)
        return Admission(route=route, headers=headers, flags=tuple(flags))

    async def after(self, principal: Principal, request: RequestInfo, result: RequestResult) -> None:
        await _after_all(reversed(self._hooks), principal, request, result)

    async def feedback(self, principal: Principal, feedback: Feedback) -> None:
        errors: list[Exception] = []
        for hook in reversed(self._hooks):
            try:
                await hook.feedback(principal, feedback)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


async def _after_all(
    hooks: Iterable[RequestHooks], principal: Principal, request: RequestInfo, result: RequestResult
) -> None:
    errors: list[Exception] = []
    for hook in hooks:
        try:
            await hook.after(principal, request, result)
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
