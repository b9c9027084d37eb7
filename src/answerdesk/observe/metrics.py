"""Prometheus metrics of the service, in a registry passed in (never the global one), and the request hooks
that feed them and write one JSON log line per request.

Label values come from a small, fixed vocabulary (endpoint, route, model, prompt version, outcome, guard
rule) so that series stay bounded; tenants and request ids are never labels.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Histogram

from answerdesk.errors import ProviderError, RateLimited
from answerdesk.lineage.records import outcome_of
from answerdesk.observe.logs import FIELDS
from answerdesk.observe.timing import note_provider_time
from answerdesk.observe.tracing import annotate_answer
from answerdesk.serve.base import ADMIT, Admission, CompositeHooks, Feedback, RequestHooks, RequestInfo, RequestResult
from answerdesk.types import Answer, Principal

log = logging.getLogger("answerdesk.requests")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)


class ServiceMetrics:
    """The metric families, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.request_seconds = Histogram(
            "answerdesk_request_seconds", "Answering requests end to end, by endpoint, route, prompt version, "
            "model and outcome", ["endpoint", "route", "prompt_version", "model", "outcome"],
            buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.first_token_seconds = Histogram(
            "answerdesk_time_to_first_token_seconds", "From the request to the model's first token",
            ["route", "model"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.overhead_seconds = Histogram(
            "answerdesk_overhead_seconds", "Request time minus model provider time", ["path"],
            buckets=_OVERHEAD_BUCKETS, registry=registry,
        )  # fmt: skip
        self.tokens = Counter("answerdesk_tokens", "Model tokens", ["kind", "model"], registry=registry)
        self.cost = Counter("answerdesk_cost_usd", "Model spend in USD", ["model"], registry=registry)
        self.refusals = Counter("answerdesk_refusals", "Refused answers by reason", ["reason"], registry=registry)
        self.guard_actions = Counter(
            "answerdesk_guard_actions", "Guard findings by guard, rule and action", ["guard", "rule", "action"],
            registry=registry,
        )  # fmt: skip
        self.retrievals = Counter("answerdesk_retrievals", "Questions that ran retrieval", registry=registry)
        self.retrieval_hits = Counter(
            "answerdesk_retrieval_hits", "Retrievals that found a passage above the relevance gate", registry=registry
        )
        self.cache_hits = Counter("answerdesk_cache_hits", "Answers served from the answer cache", registry=registry)
        self.provider_errors = Counter(
            "answerdesk_provider_errors", "Requests failed by the model provider", ["status"], registry=registry
        )
        self.provider_throttles = Counter(
            "answerdesk_provider_throttles", "Provider answers of 429/503 (throttled)", registry=registry
        )
        self.retries = Counter("answerdesk_provider_retries", "Provider call retries", ["route"], registry=registry)
        self.fallbacks = Counter(
            "answerdesk_provider_fallbacks", "Answers from a fallback model", ["route", "model"], registry=registry
        )
        self.rate_limited = Counter(
            "answerdesk_rate_limited", "Requests refused by a rate limit or budget", ["limit"], registry=registry
        )
        self.downgrades = Counter(
            "answerdesk_budget_downgrades", "Requests moved to a cheaper route by a budget", registry=registry
        )


class ObserveHooks:
    """Request hooks that record metrics and log one JSON line per request (ids, model, tokens, cost,
    latency, refusal, guard actions; never question or answer text). Put it first among the hooks, so it
    also sees the requests a later hook refused."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    async def before(self, principal: Principal, request: RequestInfo) -> Admission:
        return ADMIT

    async def after(self, principal: Principal, request: RequestInfo, result: RequestResult) -> None:
        m = self.metrics
        answer = result.answer
        fields: dict[str, object] = {
            "request_id": request.request_id,
            "tenant": principal.tenant,
            "key_id": principal.subject,
            "endpoint": request.endpoint,
            "stream": request.stream,
            "outcome": outcome_of(result) if result.status else "refused_by_limit",
            "status": result.status,
            "latency_ms": round(result.seconds * 1000, 2),
            "tags": dict(request.tags),
            "flags": list(result.flags),
        }
        if isinstance(result.error, RateLimited) and result.status == 0:
            m.rate_limited.labels(limit=result.error.limit or "unknown").inc()
        if isinstance(result.error, ProviderError):
            m.provider_errors.labels(status=str(result.error.status or "none")).inc()
            if result.error.status in (429, 503):
                m.provider_throttles.inc()
        if any(flag.startswith("budget_downgrade:") for flag in result.flags):
            m.downgrades.inc()
        if result.error is not None:
            fields["error"] = type(result.error).__name__
        if answer is not None:
            fields.update(self._answered(request, result, answer))
        elif result.hits is not None:
            fields["hits"] = result.hits
        log.info("request %s %s", request.request_id, fields["outcome"], extra={FIELDS: fields})

    def _answered(self, request: RequestInfo, result: RequestResult, answer: Answer) -> dict[str, object]:
        m = self.metrics
        annotate_answer(trace.get_current_span(), answer)
        provider_s = answer.timings.get("model")
        note_provider_time(provider_s)
        labels = {"route": answer.route, "model": answer.model}
        m.request_seconds.labels(endpoint=request.endpoint, prompt_version=str(answer.prompt_version),
                                 outcome=outcome_of(result), **labels).observe(result.seconds)  # fmt: skip
        if "first_token" in answer.timings:
            m.first_token_seconds.labels(**labels).observe(answer.timings["first_token"])
        m.tokens.labels(kind="input", model=answer.model).inc(answer.usage.input_tokens)
        m.tokens.labels(kind="output", model=answer.model).inc(answer.usage.output_tokens)
        m.cost.labels(model=answer.model).inc(answer.cost_usd)
        if answer.refused:
            m.refusals.labels(reason=answer.refusal_reason or "unknown").inc()
        for finding in answer.guard_findings:
            m.guard_actions.labels(guard=finding.guard, rule=finding.rule, action=finding.action).inc()
        if "retrieve" in answer.timings:
            m.retrievals.inc()
            if answer.refusal_reason != "no_relevant_sources":
                m.retrieval_hits.inc()
        if any(flag.startswith("cache:hit") for flag in answer.flags):
            m.cache_hits.inc()
        if answer.retries:
            m.retries.labels(route=answer.route).inc(answer.retries)
        if answer.fallbacks:
            m.fallbacks.labels(**labels).inc()
        return dict(
            prompt=answer.prompt_name, prompt_version=answer.prompt_version, route=answer.route,
            model=answer.model, provider=answer.provider, input_tokens=answer.usage.input_tokens,
            output_tokens=answer.usage.output_tokens, cost_usd=answer.cost_usd, refused=answer.refused,
            refusal_reason=answer.refusal_reason, confidence=answer.confidence, retries=answer.retries,
            fallbacks=list(answer.fallbacks), provider_ms=round((provider_s or 0.0) * 1000, 2),
            guard=[f"{f.guard}:{f.rule}:{f.action}" for f in answer.guard_findings],
        )  # fmt: skip

    async def feedback(self, principal: Principal, feedback: Feedback) -> None:
        log.info(
            "feedback for %s", feedback.request_id,
            extra={FIELDS: {"request_id": feedback.request_id, "tenant": feedback.tenant, "rating": feedback.rating,
                            "csat": feedback.csat}},
        )  # fmt: skip


class ObservedHooks:
    """``hooks`` with :class:`ObserveHooks` in front (so it sees refusals by any of them)."""

    def __init__(self, hooks: RequestHooks, metrics: ServiceMetrics) -> None:
        self.inner = hooks
        self.metrics = metrics
        self._all = CompositeHooks([ObserveHooks(metrics), hooks])

    async def before(self, principal: Principal, request: RequestInfo) -> Admission:
        return await self._all.before(principal, request)

    async def after(self, principal: Principal, request: RequestInfo, result: RequestResult) -> None:
        await self._all.after(principal, request, result)

    async def feedback(self, principal: Principal, feedback: Feedback) -> None:
        await self._all.feedback(principal, feedback)
