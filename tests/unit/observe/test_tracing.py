"""Trace spans: the model-layer wrapper and the HTTP request span, captured with the SDK's in-memory exporter."""

from __future__ import annotations

from pathlib import Path

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, Histogram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from answerdesk.generate.base import CompletionRequest
from answerdesk.generate.fake import FakeLLM
from answerdesk.observe.middleware import ObserveMiddleware
from answerdesk.observe.timing import current_timing
from answerdesk.observe.tracing import TracedLLM
from answerdesk.types import Message


def tracer_and_spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def test_a_streamed_model_call_is_one_span_with_first_token_and_usage() -> None:
    provider, exporter = tracer_and_spans()
    llm = TracedLLM(FakeLLM(["Annual plans are refunded [1]."]), tracer=provider.get_tracer("t"), route="default")
    request = CompletionRequest(messages=[Message("user", "refund?")])
    text = "".join([e.text async for e in llm.stream(request) if e.kind == "delta"])
    assert text == "Annual plans are refunded [1]."
    [span] = exporter.get_finished_spans()
    assert span.name == "llm.stream"
    assert span.attributes is not None and span.attributes["gen_ai.request.model"] == "fake"
    assert span.attributes["answerdesk.route"] == "default"
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert [e.name for e in span.events] == ["first_token"]


async def test_request_span_wraps_model_spans_and_overhead_excludes_provider_time(tmp_path: Path) -> None:
    provider, exporter = tracer_and_spans()
    tracer = provider.get_tracer("t")
    llm = TracedLLM(FakeLLM(["ok"], delay_s=0.2), tracer=tracer)

    async def answer(request: Request) -> PlainTextResponse:
        completion = await llm.complete(CompletionRequest(messages=[Message("user", "q")]))
        timing = current_timing.get()
        assert timing is not None
        timing.provider_s = 0.2  # what the metrics hook sets from the answer's timings
        return PlainTextResponse(completion.text)

    overhead = Histogram("overhead", "o", ["path"], registry=CollectorRegistry())
    app = ObserveMiddleware(Starlette(routes=[Route("/v1/answers", answer, methods=["POST"])]),
                            overhead=overhead, tracer=tracer)  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post("/v1/answers")
    assert response.text == "ok"
    assert float(response.headers["x-answerdesk-overhead-ms"]) < 150  # the 200 ms model wait is not overhead
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"llm.complete", "POST /v1/answers"}
    assert spans["llm.complete"].parent is not None
    assert spans["llm.complete"].parent.span_id == spans["POST /v1/answers"].context.span_id
