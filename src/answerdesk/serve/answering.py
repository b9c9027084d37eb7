"""One answering request from admission to its recorded outcome, shared by ``/v1/answers`` and the
OpenAI-compatible endpoint (which differ only in how events are encoded).

The request hooks' ``before`` runs first (a refusal there is the response); ``after`` runs exactly once,
with ``ok``, ``error`` or ``aborted`` (the client went away before the answer was sent, streamed or not;
the pipeline is cancelled and its resources freed). The time limit applies to each wait on the pipeline,
so a stream ends with an ``error`` event rather than hanging once ``serve.request_timeout_s`` has passed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response
from starlette.types import Receive

from answerdesk.observe.timing import note_provider_time
from answerdesk.pipeline import AnswerEvent, AnswerPipeline
from answerdesk.serve.base import ADMIT, Admission, RequestHooks, RequestInfo, RequestResult
from answerdesk.serve.problems import Problem, log, problem_for
from answerdesk.types import Answer, FilterClause, Message, Principal

#: The status recorded for a request whose client went away first (nginx's "client closed request").
CLIENT_CLOSED = 499


@dataclass(slots=True)
class AnswerCall:
    pipeline: AnswerPipeline
    hooks: RequestHooks
    principal: Principal
    info: RequestInfo
    timeout_s: float
    history: Sequence[Message] = ()
    filters: Sequence[FilterClause] = ()
    prompt_version: int | None = None
    admission: Admission = field(default=ADMIT)
    _recorded: bool = False
    _deferred: RequestResult | None = None

    async def admit(self) -> Admission:
        """Ask the hooks; raises their refusal (e.g. ``RateLimited``), which is then the response."""
        self.admission = await self.hooks.before(self.principal, self.info)
        return self.admission

    @property
    def route(self) -> str | None:
        return self.admission.route or self.info.route

    def _events(self) -> AsyncIterator[AnswerEvent]:
        return self.pipeline.stream(
            self.info.question,
            principal=self.principal,
            history=self.history,
            filters=self.filters,
            route=self.route,
            prompt_version=self.prompt_version,
            request_id=self.info.request_id,
            conversation_id=self.info.conversation_id,
        )

    async def answer(self) -> Answer:
        """The finished answer (non-streaming). Errors are recorded, then raised for problems.py; a good
        answer is recorded by :meth:`finish`, once the response went out."""
        try:
            with anyio.fail_after(self.timeout_s):
                answer = await self.pipeline.answer(
                    self.info.question,
                    principal=self.principal,
                    history=self.history,
                    filters=self.filters,
                    route=self.route,
                    prompt_version=self.prompt_version,
                    request_id=self.info.request_id,
                    conversation_id=self.info.conversation_id,
                )
        except Exception as exc:
            await self._record(RequestResult("error", problem_for(exc).status, self._elapsed(), error=exc))
            raise
        except BaseException:
            await self._record(RequestResult("aborted", CLIENT_CLOSED, self._elapsed()))
            raise
        note_provider_time(answer.timings.get("model"))  # for the overhead header, sent before the hooks run
        self._deferred = RequestResult("ok", 200, self._elapsed(), answer=answer, flags=self.admission.flags)
        return answer

    async def finish(self) -> None:
        """Record the outcome that :meth:`answer` deferred."""
        if self._deferred is not None:
            await self._record(self._deferred)

    async def json_response(self, receive: Receive, render: Callable[[Answer], Any]) -> Response:
        """The answer as ``render`` makes it into JSON, or an empty 499 when the client left first
        (:meth:`answer_unless_gone`). Like a stream's trailer, the answer goes out before its lineage, ledger
        and metrics are written: :meth:`finish` is the response's background task."""
        answer = await self.answer_unless_gone(receive)
        if answer is None:
            return Response(status_code=CLIENT_CLOSED)
        try:
            payload = render(answer)
        except BaseException:
            await self.finish()
            raise
        return JSONResponse(payload, headers=dict(self.admission.headers), background=BackgroundTask(self.finish))

    async def answer_unless_gone(self, receive: Receive) -> Answer | None:
        """:meth:`answer`, cancelled when the client disconnects first (``receive``, the request's ASGI
        channel, says ``http.disconnect``): the pipeline and its model call stop, the request is recorded
        as aborted, and ``None`` is returned (there is nobody to send a response to)."""
        answer: Answer | None = None
        failure: Exception | None = None
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                answer = await self.answer()
            except Exception as exc:  # raised after the group, not wrapped in an exception group
                failure = exc
            group.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return answer

    async def stream(
        self,
        encode: Callable[[AnswerEvent], bytes | None],
        encode_error: Callable[[Problem], bytes],
        *,
        trailer: bytes = b"",
    ) -> AsyncIterator[bytes]:
        """Encoded events, then ``trailer``; a failure becomes one encoded error and ends the stream."""
        deadline = self.info.started + self.timeout_s
        events = self._events()
        streamed: list[str] = []
        result: RequestResult | None = None
        answer: Answer | None = None
        try:
            try:
                while True:
                    try:
                        with anyio.fail_after(max(deadline - time.perf_counter(), 0.0)):
                            event = await anext(events)
                    except StopAsyncIteration:
                        break
                    if event.kind == "delta":
                        streamed.append(event.text)
                    answer = event.answer or answer
                    chunk = encode(event)
                    if chunk:
                        yield chunk
                result = RequestResult("ok", 200, self._elapsed(), answer=answer, flags=self.admission.flags)
            except Exception as exc:
                problem = problem_for(exc)
                result = RequestResult(
                    "error", problem.status, self._elapsed(), error=exc, partial_text="".join(streamed)
                )
                if problem.status >= 500:
                    log.warning("stream %s failed: %s: %s", self.info.request_id, type(exc).__name__, exc)
                yield encode_error(problem)
            # The trailer (``data: [DONE]``, which OpenAI clients wait for) goes out before the lineage, ledger
            # and metrics are written: that is the service's work, not something the client should wait on.
            if trailer:
                yield trailer
        finally:
            with anyio.CancelScope(shield=True):
                await events.aclose()  # type: ignore[attr-defined]
                await self._record(
                    result or RequestResult("aborted", CLIENT_CLOSED, self._elapsed(), partial_text="".join(streamed))
                )

    async def _record(self, result: RequestResult) -> None:
        if self._recorded:
            return
        self._recorded = True
        try:
            await self.hooks.after(self.principal, self.info, result)
        except Exception:
            log.exception("a request hook failed recording %s", self.info.request_id)

    def _elapsed(self) -> float:
        return time.perf_counter() - self.info.started
