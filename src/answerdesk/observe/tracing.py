"""OpenTelemetry spans: a tracer provider built from settings, and wrappers that trace the model layer.

Tracing wraps the Protocols instead of living in the providers: :class:`TracedModels` wraps the
:class:`~answerdesk.pipeline.ModelLayer` so that every chosen model chain comes back as a
:class:`TracedLLM` (one span per call, with the first token as an event); the HTTP request span comes from
:class:`~answerdesk.observe.middleware.ObserveMiddleware`, and the other stages' durations are attributes
of that span (``answerdesk.stage.<name>_ms``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Tracer

from answerdesk.config import ObserveSettings
from answerdesk.errors import ConfigError
from answerdesk.generate.base import LLM, Completion, CompletionRequest, StreamEvent
from answerdesk.pipeline import ModelChoice, ModelLayer
from answerdesk.types import Answer, Principal

TRACER_NAME = "answerdesk"


def build_tracer_provider(settings: ObserveSettings, *, exporter: SpanExporter | None = None) -> TracerProvider:
    """A provider exporting to ``exporter``, else over OTLP/HTTP when ``otlp_endpoint`` is set, else nowhere.
    Raises :class:`ConfigError` when OTLP is configured but its exporter is not installed."""
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    if exporter is None and settings.otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ConfigError("observe.otlp_endpoint needs the OTLP exporter: pip install 'answerdesk[otlp]'") from exc
        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def annotate_answer(span: Span, answer: Answer) -> None:
    """Put an answer's ids, model, usage and stage durations on ``span`` (no question or answer text)."""
    span.set_attribute("answerdesk.request_id", answer.request_id)
    span.set_attribute("answerdesk.prompt", f"{answer.prompt_name}@v{answer.prompt_version}")
    span.set_attribute("answerdesk.route", answer.route)
    span.set_attribute("gen_ai.request.model", answer.model)
    span.set_attribute("gen_ai.usage.input_tokens", answer.usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", answer.usage.output_tokens)
    span.set_attribute("answerdesk.cost_usd", answer.cost_usd)
    span.set_attribute("answerdesk.refused", answer.refused)
    for stage, seconds in answer.timings.items():
        span.set_attribute(f"answerdesk.stage.{stage}_ms", round(seconds * 1000, 3))


class TracedLLM:
    """An :class:`~answerdesk.generate.base.LLM` whose calls are spans (``gen_ai.*`` attributes)."""

    def __init__(self, inner: LLM, *, tracer: Tracer | None = None, route: str = "") -> None:
        self._inner = inner
        self._tracer = tracer or trace.get_tracer(TRACER_NAME)
        self._route = route

    @property
    def provider(self) -> str:
        return self._inner.provider

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def context_window(self) -> int:
        return self._inner.context_window

    def _start(self, operation: str) -> Span:
        span = self._tracer.start_span(f"llm.{operation}")
        span.set_attribute("gen_ai.system", self._inner.provider)
        span.set_attribute("gen_ai.request.model", self._inner.model)
        span.set_attribute("answerdesk.route", self._route)
        return span

    async def complete(self, request: CompletionRequest) -> Completion:
        with trace.use_span(self._start("complete"), end_on_exit=True) as span:
            completion = await self._inner.complete(request)
            span.set_attribute("gen_ai.response.model", completion.model)
            span.set_attribute("gen_ai.usage.input_tokens", completion.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", completion.usage.output_tokens)
            return completion

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        span = self._start("stream")
        started = time.perf_counter()
        first = True
        try:
            async for event in self._inner.stream(request):
                if event.kind == "delta" and first:
                    first = False
                    span.add_event("first_token", {"seconds": time.perf_counter() - started})
                elif event.kind == "switch":
                    span.add_event("model_switch", {"model": event.text})
                elif event.kind == "finish" and event.usage is not None:
                    span.set_attribute("gen_ai.usage.input_tokens", event.usage.input_tokens)
                    span.set_attribute("gen_ai.usage.output_tokens", event.usage.output_tokens)
                yield event
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            span.end()


class TracedModels:
    """A :class:`~answerdesk.pipeline.ModelLayer` whose chosen model chains are :class:`TracedLLM`."""

    def __init__(self, inner: ModelLayer, *, tracer: Tracer | None = None) -> None:
        self._inner = inner
        self._tracer = tracer

    def choose(self, question: str, *, principal: Principal, route: str | None = None) -> ModelChoice:
        choice = self._inner.choose(question, principal=principal, route=route)
        traced = TracedLLM(choice.llm, tracer=self._tracer, route=choice.route)
        return ModelChoice(choice.route, choice.reason, traced, choice.record, dict(choice.prices))
