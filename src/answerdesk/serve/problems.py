"""The one place errors become HTTP responses: RFC 9457 ``application/problem+json``.

Every answerdesk error maps to a status by who has to act (see ``errors.py``); request validation names
each bad field; an unexpected exception is a 500 whose body says nothing about internals (it is logged with
the request id). Routes raise; they never build error bodies.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from answerdesk.errors import (
    AnswerdeskError,
    ConfigError,
    Forbidden,
    GuardError,
    GuardrailBlocked,
    InputError,
    NotFound,
    ProviderError,
    RateLimited,
    StoreError,
    Unauthorized,
)
from answerdesk.serve.schemas import to_plain

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("answerdesk.serve")


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    slug: str
    title: str
    detail: str
    extra: Mapping[str, Any]
    headers: Mapping[str, str]

    def body(self, *, instance: str, request_id: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:answerdesk:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if request_id:
            body["request_id"] = request_id
        return {**body, **self.extra}


#: (error class, status, slug, title), most specific first.
_MAPPING: tuple[tuple[type[BaseException], int, str, str], ...] = (
    (Unauthorized, 401, "unauthorized", "Authentication required"),
    (Forbidden, 403, "forbidden", "Not allowed"),
    (NotFound, 404, "not-found", "Not found"),
    (RateLimited, 429, "rate-limited", "Too many requests"),
    (GuardrailBlocked, 400, "guardrail-blocked", "Blocked by a guardrail"),
    (InputError, 422, "invalid-input", "Invalid input"),
    (GuardError, 503, "guard-unavailable", "A guardrail could not run"),
    (StoreError, 503, "store-unavailable", "The store is unavailable"),
    (ConfigError, 500, "misconfigured", "The service is misconfigured"),
    (TimeoutError, 504, "timeout", "The request took too long"),
)


def problem_for(exc: BaseException) -> Problem:
    """The problem an exception is sent as (also used for the SSE ``error`` event)."""
    if isinstance(exc, ProviderError):
        return _provider(exc)
    for kind, status, slug, title in _MAPPING:
        if isinstance(exc, kind):
            return Problem(status, slug, title, _detail(exc, title), _extra(exc), _headers(exc, status))
    if isinstance(exc, AnswerdeskError):
        return Problem(500, "internal", "Internal error", str(exc), {}, {})
    return Problem(500, "internal", "Internal error", "an unexpected error happened; see the server log", {}, {})


def _detail(exc: BaseException, title: str) -> str:
    if isinstance(exc, TimeoutError):
        return "the request passed serve.request_timeout_s"
    return str(exc) or title


def _extra(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, RateLimited):
        extra: dict[str, Any] = {"limit": exc.limit}
        if exc.retry_after is not None:
            extra["retry_after"] = _seconds(exc.retry_after)
        return extra
    if isinstance(exc, GuardrailBlocked):
        return {"findings": [to_plain(f) for f in exc.findings]}
    return {}


def _headers(exc: BaseException, status: int) -> dict[str, str]:
    if status == 401:
        return {"WWW-Authenticate": 'Bearer realm="answerdesk"'}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float):
        return {"Retry-After": str(_seconds(retry_after))}
    return {}


def _provider(exc: ProviderError) -> Problem:
    # An upstream that is throttling or down is temporary (503 + Retry-After); any other failure is a bad
    # gateway. Upstream details stay in the log: they can name internal hosts.
    temporary = exc.status in (429, 503, 529) or exc.retry_after is not None
    status = 503 if temporary else 502
    headers = {"Retry-After": str(_seconds(exc.retry_after or 1))} if temporary else {}
    extra = {"upstream_status": exc.status} if exc.status else {}
    return Problem(status, "upstream-unavailable" if temporary else "upstream-failed",
                   "The model provider failed", str(exc), extra, headers)  # fmt: skip


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def validation_problem(errors: Sequence[Any]) -> Problem:
    """422 naming every bad field (``question``, ``messages.0.content``, ``body`` for unreadable JSON)."""
    items = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        where = err.get("loc", ("body",))[0] if err.get("loc") else "body"
        if err.get("type") == "json_invalid":
            field = "body"
            message = f"malformed JSON: {err.get('ctx', {}).get('error', err.get('msg', 'cannot be parsed'))}"
        else:
            field = ".".join(loc) or str(where)
            message = str(err.get("msg", "is invalid"))
        items.append({"field": field, "in": str(where), "message": message})
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in items) or "the request is invalid"
    return Problem(422, "validation-failed", "The request is invalid", detail, {"errors": items}, {})


def http_problem(exc: HTTPException) -> Problem:
    titles = {404: "Not found", 405: "Method not allowed", 413: "Request body too large", 415: "Unsupported media"}
    title = titles.get(exc.status_code, "HTTP error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 413:
        detail = "the request body is larger than this endpoint accepts (serve.max_body_kb, serve.max_upload_mb)"
    slug = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}.get(exc.status_code, "http-error")
    return Problem(exc.status_code, slug, title, detail, {}, dict(exc.headers or {}))


#: Paths whose clients are OpenAI SDKs: their problems also carry OpenAI's ``error`` object, which the
#: SDKs read the message from.
_OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")


def problem_response(problem: Problem, request: Request) -> Response:
    request_id = getattr(request.state, "request_id", None)
    body = problem.body(instance=request.url.path, request_id=request_id)
    if request.url.path in _OPENAI_PATHS:
        body["error"] = {"message": problem.detail, "type": problem.slug, "code": problem.status}
    return Response(
        json.dumps(body, ensure_ascii=False),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=dict(problem.headers),
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``: the only code that writes an error response."""

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(validation_problem(exc.errors()), request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return problem_response(http_problem(exc), request)

    async def on_error(request: Request, exc: Exception) -> Response:
        problem = problem_for(exc)
        if problem.status >= 500:
            log.error(
                "request failed: %s: %s",
                type(exc).__name__,
                exc,
                exc_info=problem.slug in ("internal", "misconfigured"),
                extra={"request_id": getattr(request.state, "request_id", None)},
            )
        return problem_response(problem, request)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(AnswerdeskError, on_error)
    app.add_exception_handler(TimeoutError, on_error)
    app.add_exception_handler(Exception, on_error)
