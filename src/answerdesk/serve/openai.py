"""``POST /v1/chat/completions`` and ``GET /v1/models``: the OpenAI Chat Completions wire format, so existing
clients and SDKs can ask answerdesk.

``model`` names a route or configured model (``answerdesk`` lets the router choose); ``<route>@v<N>`` also pins
version N of the answer prompt. The last user message is the question and earlier user/assistant turns are
history; system messages are ignored (answerdesk's versioned prompt is the system prompt). Citations ride
along in an extra ``citations`` field, and answerdesk's own fields (confidence, request id, prompt version)
under ``answerdesk``: on the response, and on the last chunk of a stream.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from answerdesk.errors import InputError
from answerdesk.pipeline import AnswerEvent
from answerdesk.serve.answering import AnswerCall
from answerdesk.serve.app import services_of
from answerdesk.serve.auth import ASK
from answerdesk.serve.base import RequestInfo
from answerdesk.serve.problems import Problem
from answerdesk.serve.schemas import answer_out, citation_out
from answerdesk.serve.streaming import EventStream
from answerdesk.types import Answer, Message, Principal

router = APIRouter(tags=["openai-compatible"])
#: The model name that lets the router choose the route.
ROUTER_MODEL = "answerdesk"
_MODEL = re.compile(r"^(?P<route>[^@]+?)(?:@v(?P<version>\d{1,6}))?$")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str = ""


class ChatMessage(BaseModel):
    # OpenAI clients send fields answerdesk does not use (name, tool_calls …); they are ignored, not refused.
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False
    user: str | None = Field(default=None, max_length=256)
    #: Cost tags, as in ``/v1/answers`` (OpenAI's ``metadata`` field carries them too).
    metadata: dict[str, str] | None = Field(default=None, max_length=20)


def parse_model(model: str) -> tuple[str | None, int | None]:
    """``(route or None for the router, prompt version or None)``; raises :class:`InputError`."""
    match = _MODEL.match(model.strip())
    if match is None:
        raise InputError(f"model '{model}' is not '<route>' or '<route>@v<N>'")
    route = match.group("route")
    version = int(match.group("version")) if match.group("version") else None
    return (None if route == ROUTER_MODEL else route), version


def _conversation(request: Request) -> str | None:
    # OpenAI's request body has no conversation id; clients that keep one send it as a header.
    value = request.headers.get("x-conversation-id", "").strip()
    return value if re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", value) else None


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[Message]]:
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text.strip():
        raise InputError("messages: the last user/assistant message must be a non-empty user message")
    return turns[-1].text, [Message(m.role, m.text) for m in turns[:-1]]


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat completion")
async def chat_completions(body: ChatRequest, request: Request, principal: Principal = Depends(ASK)) -> Response:
    route, version = parse_model(body.model)
    question, history = split_messages(body.messages)
    services = services_of(request)
    info = RequestInfo(
        request_id=request.state.request_id,
        endpoint="chat_completions",
        method=request.method,
        path=request.url.path,
        stream=body.stream,
        question=question,
        route=route,
        tags=dict(body.metadata or {}),
        client=request.client.host if request.client else None,
        conversation_id=_conversation(request),
    )
    call = AnswerCall(
        pipeline=services.pipeline,
        hooks=services.hooks,
        principal=principal,
        info=info,
        timeout_s=request.app.state.settings.serve.request_timeout_s,
        history=history,
        prompt_version=version,
    )
    admission = await call.admit()
    if body.stream:
        encoder = _ChunkEncoder(f"chatcmpl-{info.request_id}", body.model)
        return EventStream(
            call.stream(encoder.encode, encoder.error, trailer=b"data: [DONE]\n\n"), headers=dict(admission.headers)
        )
    return await call.json_response(request.receive, lambda answer: completion(answer, body.model))


@router.get("/v1/models", summary="Routes and models a chat completion may name")
async def list_models(request: Request, principal: Principal = Depends(ASK)) -> dict[str, Any]:
    names = [ROUTER_MODEL, *services_of(request).routes]
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": 0, "owned_by": "answerdesk"} for n in names],
    }


def _extras(answer: Answer) -> dict[str, Any]:
    body = answer_out(answer)
    body.pop("text", None)
    body.pop("citations", None)
    return body


def completion(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{answer.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(answer),
        "citations": [citation_out(c) for c in answer.citations],
        "answerdesk": _extras(answer),
    }


def _usage(answer: Answer) -> dict[str, int]:
    u = answer.usage
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
            "total_tokens": u.input_tokens + u.output_tokens}  # fmt: skip


class _ChunkEncoder:
    """Pipeline events as ``chat.completion.chunk`` frames: text deltas, then one final chunk with the
    finish reason, usage, citations and answerdesk's fields. Other event kinds are answerdesk-only."""

    def __init__(self, completion_id: str, model: str) -> None:
        self._id = completion_id
        self._model = model
        self._created = int(time.time())
        self._started = False

    def _frame(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(chunk, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()

    def encode(self, event: AnswerEvent) -> bytes | None:
        if event.kind == "delta" and event.text:
            delta: dict[str, Any] = {"content": event.text}
            if not self._started:
                delta["role"] = "assistant"
                self._started = True
            return self._frame(delta)
        if event.answer is not None:
            a = event.answer
            return self._frame({}, "stop", usage=_usage(a), citations=[citation_out(c) for c in a.citations],
                               answerdesk=_extras(a))  # fmt: skip
        return None

    def error(self, problem: Problem) -> bytes:
        # OpenAI streams report a failure as a data frame with an ``error`` object.
        body = {"error": {"message": problem.detail, "type": problem.slug, "code": problem.status}}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()
