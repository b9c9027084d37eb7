"""``POST /v1/answers``: a drafted, cited answer as JSON, or as Server-Sent Events with ``stream: true``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from answerdesk.serve.answering import AnswerCall
from answerdesk.serve.app import services_of
from answerdesk.serve.auth import ASK
from answerdesk.serve.base import RequestInfo
from answerdesk.serve.problems import Problem
from answerdesk.serve.schemas import AnswerOut, AnswerRequest, answer_out
from answerdesk.serve.sse import format_event, sse
from answerdesk.serve.streaming import EventStream
from answerdesk.store.filters import parse_filter
from answerdesk.types import Message, Principal

router = APIRouter(tags=["answers"])

_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer (JSON), or with `stream: true` an event stream: `meta`, `delta`…, `citation`…, "
        "`guard`, `model_changed`, then `done` (the answer) or `error` (a problem).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def call_for(request: Request, principal: Principal, body: AnswerRequest) -> AnswerCall:
    services = services_of(request)
    info = RequestInfo(
        request_id=request.state.request_id,
        endpoint="answers",
        method=request.method,
        path=request.url.path,
        stream=body.stream,
        question=body.question,
        route=body.model,
        tags=dict(body.tags),
        client=request.client.host if request.client else None,
        conversation_id=body.conversation_id,
    )
    return AnswerCall(
        pipeline=services.pipeline,
        hooks=services.hooks,
        principal=principal,
        info=info,
        timeout_s=request.app.state.settings.serve.request_timeout_s,
        history=[Message(t.role, t.content) for t in body.history],
        filters=[parse_filter(f) for f in body.filters],
        prompt_version=body.prompt_version,
    )


@router.post("/v1/answers", response_model=AnswerOut, responses=_SSE_DOC, summary="Draft a cited answer")
async def create_answer(body: AnswerRequest, request: Request, principal: Principal = Depends(ASK)) -> Response:
    call = call_for(request, principal, body)
    admission = await call.admit()
    if body.stream:
        return EventStream(call.stream(sse, _error_event), headers=dict(admission.headers))
    return await call.json_response(request.receive, answer_out)


def _error_event(problem: Problem) -> bytes:
    return format_event("error", problem.body(instance="/v1/answers", request_id=None))
