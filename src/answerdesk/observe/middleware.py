"""ASGI middleware: the ``x-answerdesk-overhead-ms`` header, the overhead histogram, and the request span.

Overhead is the request's time in answerdesk minus the time its model provider took (``timings["model"]``
of the answer). For a JSON answer the header is exact. A streamed answer sends its headers before the model
has answered, so there the header covers what happened before the first byte (auth, limits, routing) and
the full figure is observed in ``answerdesk_overhead_seconds`` once the stream ends.
"""

from __future__ import annotations

import time

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from answerdesk.observe.timing import RequestTiming, current_timing

OVERHEAD_HEADER = b"x-answerdesk-overhead-ms"
#: The paths whose overhead is observed (fixed, so that ids in other paths never become label values).
OBSERVED_PATHS = frozenset({"/v1/answers", "/v1/chat/completions", "/v1/search"})


class ObserveMiddleware:
    """Times every HTTP request under a server span; ``overhead`` observes answerdesk's share per path."""

    def __init__(self, app: ASGIApp, *, overhead: Histogram, tracer: Tracer | None = None) -> None:
        self.app = app
        self._overhead = overhead
        self._tracer = tracer or trace.get_tracer("answerdesk")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timing = RequestTiming()
        token = current_timing.set(timing)
        method, path = scope["method"], scope["path"]

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = f"{timing.overhead_s() * 1000:.2f}".encode()
                message["headers"] = [*message.get("headers", []), (OVERHEAD_HEADER, ms)]
            await send(message)

        try:
            with self._tracer.start_as_current_span(f"{method} {path}", kind=SpanKind.SERVER) as span:
                span.set_attribute("http.request.method", method)
                span.set_attribute("url.path", path)
                await self.app(scope, receive, send_timed)
                request_id = scope.get("state", {}).get("request_id")
                if request_id:
                    span.set_attribute("answerdesk.request_id", request_id)
                span.set_attribute("answerdesk.overhead_ms", timing.overhead_s() * 1000)
        finally:
            current_timing.reset(token)
            if path in OBSERVED_PATHS:
                self._overhead.labels(path=path).observe(timing.overhead_s(time.perf_counter()))
