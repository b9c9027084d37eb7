"""``answerdesk serve``: the HTTP service under uvicorn, wired from the same settings as the command line."""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from answerdesk.cli.context import AppContext
from answerdesk.cli.output import stderr
from answerdesk.errors import ConfigError

if TYPE_CHECKING:  # the web stack loads only for ``serve``, not for every command
    from fastapi import FastAPI

    from answerdesk.serve.app import Services
    from answerdesk.serve.base import RequestHooks

HELP = """Serve the HTTP API: answers (JSON and SSE), the OpenAI-compatible endpoint, documents, search,
feedback, health and metrics. OpenAPI docs at /docs.

Callers authenticate with an API key (answerdesk keys create) or an OIDC token (auth.jwt). With
auth.mode: local, loopback callers need no key; that mode only binds to a loopback address.
"""

log = logging.getLogger("answerdesk.serve")


def build_hooks(app: AppContext) -> RequestHooks:
    """The request hooks of this process: rate limits, budgets and the usage ledger, lineage (metrics and
    request logs are added by the app itself)."""
    from answerdesk.cost.hooks import service_hooks

    return service_hooks(app.settings)


def build_services(app: AppContext) -> Services:
    from answerdesk.ingest.factory import build_ingestor
    from answerdesk.security.auth import Authenticator, ChainAuthenticator
    from answerdesk.security.jwt import JwtAuthenticator
    from answerdesk.security.keys import SqliteKeyStore
    from answerdesk.serve.app import Services
    from answerdesk.serve.state import ServiceState

    settings = app.settings
    authenticators: list[Authenticator] = [SqliteKeyStore(settings.store.path)]
    if settings.auth.jwt is not None:
        authenticators.append(JwtAuthenticator(settings.auth.jwt))
    ingestor = build_ingestor(app.store, app.embedder, settings)
    models = [m for m in settings.generation.models if m not in settings.generation.routes]
    return Services(
        pipeline=app.pipeline,
        retriever=app.retriever,
        documents=app.store,
        ingestor=ingestor,
        state=ServiceState(settings.store.path),
        authenticator=ChainAuthenticator(authenticators),
        hooks=build_hooks(app),
        routes=(*settings.generation.routes, *models),
    )


def make_app() -> FastAPI:
    """The app of one worker process (uvicorn's factory): settings from ``$ANSWERDESK_CONFIG`` and the env."""
    from opentelemetry import trace

    from answerdesk.observe.logs import configure_logging
    from answerdesk.observe.tracing import build_tracer_provider
    from answerdesk.serve.app import create_app

    app = AppContext(None)
    sys.setswitchinterval(app.settings.serve.gil_switch_interval_ms / 1000)
    observe = app.settings.observe
    configure_logging(json_logs=observe.json_logs, level=observe.log_level)
    # A worker is a new process: the parent's quieting of the migration runner's chatter does not reach it.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # One provider per worker process, set once here at the edge (the model wrappers look it up).
    trace.set_tracer_provider(build_tracer_provider(observe))
    # Load the embedding model now, not on the first caller's request.
    app.embedder.embed_queries(["warm up"])
    built = create_app(app.settings, services=build_services(app))
    freeze_startup_heap()
    return built


def freeze_startup_heap() -> None:
    """Move everything the worker built at startup (models, tokenizers, policies, the app) out of the
    garbage collector's reach: a full collection then only walks what requests made since.

    Measured in ``bench/load.py`` (32 streams, 2 workers): a worker's full collections during the load took
    80-95 ms each, about two per 20 s, and stalled every stream in flight on that worker; after the freeze
    they took 3-15 ms. Frozen objects are still freed by reference counting; only a reference cycle among them
    (part of a policy replaced by a reload, say) is never collected, which costs memory once per reload."""
    gc.collect()
    gc.freeze()


def serve_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind (default: serve.host).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (default: serve.port).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes (default: serve.workers); on Linux each listens on its own socket "
            "(serve.reuse_port), so connections spread across them.",
        ),
    ] = None,
) -> None:
    import uvicorn

    from answerdesk.serve.auth import is_loopback
    from answerdesk.serve.state import ServiceState
    from answerdesk.serve.workers import WorkerPool, WorkerSpec, reuse_port_supported

    app: AppContext = ctx.obj
    settings = app.settings
    host = host or settings.serve.host
    port = settings.serve.port if port is None else port
    workers = workers or settings.serve.workers
    if settings.auth.mode == "local" and not is_loopback(host):
        raise ConfigError(
            f"auth.mode local lets callers in without a key and only binds to a loopback address, not '{host}'; "
            "create keys with 'answerdesk keys create' and set auth.mode: required"
        )
    config_file = ctx.find_root().params.get("config")
    if config_file is not None:
        # Worker processes build their own app from the same file.
        os.environ["ANSWERDESK_CONFIG"] = str(Path(config_file).resolve())
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    stale = ServiceState(settings.store.path).fail_unfinished_jobs("the service stopped before the job finished")
    if stale:
        log.warning("%d ingestion job(s) left unfinished by an earlier run were marked failed", stale)
    stderr.print(f"answerdesk serving on http://{host}:{port} (docs at /docs, auth {settings.auth.mode})")
    if workers > 1 and settings.serve.reuse_port and reuse_port_supported():
        spec = WorkerSpec("answerdesk.cli.serve:make_app", host, port, int(settings.serve.shutdown_grace_s))
        status = WorkerPool(spec, workers).run()
        if status:
            raise typer.Exit(status)
        return
    uvicorn.run(
        "answerdesk.cli.serve:make_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=int(settings.serve.shutdown_grace_s),
        log_level="info",
        access_log=False,
    )
