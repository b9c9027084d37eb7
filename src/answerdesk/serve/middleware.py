"""ASGI middleware of the service: request ids, and request body limits that answer with problem+json.

The body limit is done here rather than with FastAPI's ``max_body_size`` because that one answers a
declared oversized body with a plain-text 413 from outside the app, where no exception handler can turn it
into a problem.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from answerdesk.serve.problems import http_problem, problem_response

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` when well-formed) and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413: at once when ``Content-Length`` says so, else as soon as the
    bytes read pass it (raised inside the app, so the problem handler answers). ``limits`` overrides the
    default for ``(method, path)`` pairs, e.g. document uploads."""

    def __init__(self, app: ASGIApp, *, default: int, limits: Mapping[tuple[str, str], int]) -> None:
        self.app = app
        self._default = default
        self._limits = dict(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limits.get((scope["method"], scope["path"]), self._default)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = problem_response(http_problem(HTTPException(413)), Request(scope))
            await response(scope, receive, send)
            return
        read = 0

        async def limited() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > limit:
                    raise HTTPException(413)
            return message

        await self.app(scope, limited, send)
