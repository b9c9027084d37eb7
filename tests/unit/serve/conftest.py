"""A service app over real components with fakes where a model would be: a real SQLite store, the
FakeEmbedder, the real prompt registry and pipeline, FakeLLM behind named routes, real API keys."""

from __future__ import annotations

import functools
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from answerdesk.config import AuthSettings, ChunkingSettings, GenerationSettings, ServeSettings, Settings, StoreSettings
from answerdesk.embed.fake import FakeEmbedder
from answerdesk.errors import InputError
from answerdesk.generate.base import CallRecord
from answerdesk.generate.fake import FakeLLM
from answerdesk.generate.resilience import FallbackLLM
from answerdesk.guard.guardrails import Guardrails
from answerdesk.guard.policy import PolicySource
from answerdesk.ingest.indexer import Ingestor
from answerdesk.pipeline import AnswerPipeline, ModelChoice
from answerdesk.prompts.registry import TEMPLATES_DIR, PromptRegistry
from answerdesk.retrieve.hybrid import HybridRetriever
from answerdesk.retrieve.rerank import IdentityReranker
from answerdesk.security.auth import ROLES, Authenticator
from answerdesk.security.keys import SqliteKeyStore
from answerdesk.serve.app import Services, create_app
from answerdesk.serve.base import ADMIT, Admission, Feedback, RequestHooks, RequestInfo, RequestResult
from answerdesk.serve.state import ServiceState
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Principal
from tests.conftest import make_document

REPLY = "Annual plans are refunded in full within 30 days of the charge [1]."


class FakeModels:
    """Named routes, each one FakeLLM (``slow`` streams a long reply in small, delayed pieces)."""

    def __init__(self, llms: Mapping[str, FakeLLM]) -> None:
        self.llms = dict(llms)

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(self.llms)

    def choose(self, question: str, *, principal: Principal, route: str | None = None) -> ModelChoice:
        name = route or "default"
        if name not in self.llms:
            raise InputError(f"unknown model or route '{name}'; known: {', '.join(self.llms)}")
        record = CallRecord()
        return ModelChoice(name, f"requested route {name}", FallbackLLM([self.llms[name]], record=record), record)


@dataclass
class RecordingHooks:
    """Records every call; ``refuse`` makes ``before`` raise it, ``admission`` is what ``before`` returns."""

    before_calls: list[tuple[Principal, RequestInfo]] = field(default_factory=list)
    after_calls: list[tuple[Principal, RequestInfo, RequestResult]] = field(default_factory=list)
    feedback_calls: list[Feedback] = field(default_factory=list)
    refuse: Exception | None = None
    admission: Admission = ADMIT

    async def before(self, principal: Principal, request: RequestInfo) -> Admission:
        self.before_calls.append((principal, request))
        if self.refuse is not None:
            raise self.refuse
        return self.admission

    async def after(self, principal: Principal, request: RequestInfo, result: RequestResult) -> None:
        self.after_calls.append((principal, request, result))

    async def feedback(self, principal: Principal, feedback: Feedback) -> None:
        self.feedback_calls.append(feedback)


@dataclass
class Service:
    app: object
    services: Services
    store: SqliteIndex
    keys: dict[str, str]
    key_store: SqliteKeyStore
    hooks: RecordingHooks
    models: FakeModels

    def headers(self, role: str = "agent") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@functools.cache
def _template() -> tuple[Path, dict[str, str]]:
    """A store with the sample documents and one key per role, built once and copied by each test."""
    db = Path(tempfile.mkdtemp(prefix="answerdesk-serve-test-")) / "kb.db"
    with SqliteIndex(db) as store:
        Ingestor(store, FakeEmbedder(), ChunkingSettings()).index(
            [
                make_document("refunds", "Annual plans are refunded in full within 30 days of the charge.",
                              title="Refunds"),
                make_document("labels", "Thermal printers print 4x6 shipping labels from the Orders page.",
                              title="Labels"),
                make_document("acme-sla", "Acme support answers priority tickets within 2 hours.",
                              title="Acme SLA", tenant="acme"),
            ]
        )  # fmt: skip
    key_store = SqliteKeyStore(db)
    keys = {role: key_store.create(f"test-{role}", tenant="acme", roles=[role])[1] for role in ROLES}
    keys["globex"] = key_store.create("globex-agent", tenant="globex", roles=["agent"])[1]
    keys["shared-ingest"] = key_store.create("operator", tenant=None, roles=["ingest"])[1]
    key_store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, keys


def build_service(
    tmp_path: Path,
    *,
    auth: AuthSettings | None = None,
    serve: ServeSettings | None = None,
    hooks: RequestHooks | None = None,
    llms: Mapping[str, FakeLLM] | None = None,
    authenticator: Callable[[SqliteKeyStore], Authenticator] | None = None,
    guards: bool = False,
) -> Service:
    template, keys = _template()
    db = tmp_path / "kb.db"
    shutil.copyfile(template, db)
    settings = Settings(store=StoreSettings(path=db), auth=auth or AuthSettings(), serve=serve or ServeSettings())
    store = SqliteIndex(db)
    embedder = FakeEmbedder()
    ingestor = Ingestor(store, embedder, ChunkingSettings())
    models = FakeModels(
        llms
        or {
            "default": FakeLLM([REPLY]),
            "cheap": FakeLLM([REPLY], model="cheap-model"),
            "slow": FakeLLM([REPLY * 20], delay_s=0.05, chunk_chars=4),
            "medium": FakeLLM([REPLY], delay_s=0.1, chunk_chars=8),
        }
    )
    retriever = HybridRetriever(store, embedder, IdentityReranker())
    pipeline = AnswerPipeline(
        retriever,
        PromptRegistry(TEMPLATES_DIR),
        models,  # type: ignore[arg-type]
        embedder,
        GenerationSettings(relevance_threshold=0.0, answerability=False),
        k=3,
        vectors=store,
        guards=Guardrails(PolicySource(None), embedder=embedder, audit=None) if guards else None,
    )
    key_store = SqliteKeyStore(db)
    recording = RecordingHooks()
    services = Services(
        pipeline=pipeline,
        retriever=retriever,
        documents=store,
        ingestor=ingestor,
        state=ServiceState(db),
        authenticator=authenticator(key_store) if authenticator else key_store,
        hooks=hooks or recording,
        routes=models.routes,
    )
    app = create_app(settings, services=services)
    return Service(app, services, store, dict(keys), key_store, recording, models)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = build_service(tmp_path)
    yield svc
    svc.store.close()


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def parse_sse(body: str) -> list[tuple[str, str]]:
    """``(event name, data)`` of each SSE frame in ``body``."""
    events = []
    for frame in body.split("\n\n"):
        name, data = "message", []
        for line in frame.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            events.append((name, "\n".join(data)))
    return events
