"""The FastAPI app, built by :func:`create_app` from settings and the collaborators it is given.

Nothing here is a module-level singleton: the CLI (``answerdesk serve``) and tests each build their own
:class:`Services` and app. Request hooks (rate limits, budgets, lineage) and the metrics registry are plugged
in through :class:`Services`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Info

from answerdesk.config import Settings
from answerdesk.ingest.indexer import Ingestor
from answerdesk.observe.metrics import ObservedHooks, ServiceMetrics
from answerdesk.observe.middleware import ObserveMiddleware
from answerdesk.pipeline import AnswerPipeline
from answerdesk.retrieve.hybrid import HybridRetriever
from answerdesk.security.auth import Authenticator
from answerdesk.serve import problems
from answerdesk.serve.auth import AuthGate
from answerdesk.serve.base import NoHooks, RequestHooks
from answerdesk.serve.jobs import IngestJobs
from answerdesk.serve.middleware import BodyLimitMiddleware, RequestIdMiddleware
from answerdesk.serve.state import ServiceState
from answerdesk.store.base import DocumentStore

VERSION = "0.1.0"


@dataclass
class Services:
    """What the app serves with. ``ready`` checks return problems (empty: ready)."""

    pipeline: AnswerPipeline
    retriever: HybridRetriever
    documents: DocumentStore
    ingestor: Ingestor
    state: ServiceState
    authenticator: Authenticator | None
    hooks: RequestHooks = field(default_factory=NoHooks)
    #: The registry ``/metrics`` exposes; default: one holding answerdesk's build info.
    metrics: CollectorRegistry | None = None
    ready: list[Callable[[], str | None]] = field(default_factory=list)
    #: Routes and models ``/v1/models`` lists and ``model`` may name.
    routes: tuple[str, ...] = ()


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def create_app(settings: Settings, *, services: Services) -> FastAPI:
    """The service app. Raises :class:`ConfigError` for inconsistent auth settings."""
    from answerdesk.serve import openai as routes_openai
    from answerdesk.serve import routes_answers, routes_documents, routes_feedback, routes_health, routes_search

    jobs = IngestJobs(services.state, services.ingestor, max_file_bytes=int(settings.ingest.max_file_mb * 1024 * 1024))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()

    app = FastAPI(
        title="answerdesk",
        version=VERSION,
        summary="Grounded, cited answer drafts for support teams.",
        docs_url="/docs",
        lifespan=lifespan,
        # HTTP server spans stay (the spine's stage spans hang under them); request metrics and logs are
        # answerdesk's own (Prometheus at /metrics, JSON logs), so FastAPI's OpenTelemetry copies are off.
        telemetry={"metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.services = services
    app.state.auth = AuthGate(settings.auth, services.authenticator)
    app.state.jobs = jobs
    if services.metrics is None:
        services.metrics = CollectorRegistry()
        Info("answerdesk_build", "answerdesk version", registry=services.metrics).info({"version": VERSION})
    # Metrics, request logs and the overhead header wrap whatever hooks the app was given.
    if not isinstance(services.hooks, ObservedHooks):
        services.hooks = ObservedHooks(services.hooks, ServiceMetrics(services.metrics))
    problems.install(app)
    for module in (routes_answers, routes_openai, routes_search, routes_feedback, routes_health):
        app.include_router(module.router)
    app.include_router(routes_documents.router)
    uploads = int(settings.serve.max_upload_mb * 1024 * 1024)
    app.add_middleware(BodyLimitMiddleware, default=settings.serve.max_body_kb * 1024,
                       limits={("POST", "/v1/documents"): uploads})  # fmt: skip
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(ObserveMiddleware, overhead=services.hooks.metrics.overhead_seconds)
    return app
