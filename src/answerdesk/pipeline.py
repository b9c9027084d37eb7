"""The spine of one answer: question → retrieval → relevance gate → prompt → model → checked, cited answer.

Depends only on Protocols; the edges (CLI, service) wire concrete stores, embedders, prompts and models.
One implementation: :meth:`AnswerPipeline.stream` yields typed events; :meth:`AnswerPipeline.answer` drains
it. Blocking work (retrieval, embedding) runs in worker threads so a server's event loop stays free.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict

import anyio

from answerdesk.config import GenerationSettings
from answerdesk.embed.base import Embedder, Vectors
from answerdesk.errors import InputError
from answerdesk.generate.assembly import Assembled, assemble, sentences_needing_vectors
from answerdesk.generate.base import LLM, CallRecord, CompletionRequest
from answerdesk.generate.confidence import confidence
from answerdesk.generate.followup import standalone_query
from answerdesk.retrieve.hybrid import HybridRetriever
from answerdesk.types import Answer, Citation, FilterClause, Message, Principal, ScoredChunk, Usage

EventKind = Literal["meta", "delta", "model_changed", "citation", "done"]


class RenderedPrompt(Protocol):
    @property
    def system(self) -> str: ...
    @property
    def user(self) -> str: ...


class PromptTemplate(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    def render(self, **variables: Any) -> RenderedPrompt: ...


class PromptSource(Protocol):
    def resolve(self, name: str, *, version: int | None = None, label: str | None = None) -> PromptTemplate:
        """The template to use; raises :class:`NotFound` listing the known names/versions/labels."""
        ...


@dataclass(frozen=True, slots=True)
class ModelChoice:
    route: str
    reason: str
    llm: LLM
    record: CallRecord
    #: USD per 1,000 input and output tokens, by model id, for the cost of whichever model answered.
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)


class ModelLayer(Protocol):
    def choose(self, question: str, *, principal: Principal, route: str | None = None) -> ModelChoice:
        """Pick the route (``route`` overrides the router) and build its resilient model chain.
        Raises :class:`InputError` for an unknown route, listing the known ones."""
        ...


class ChunkVectors(Protocol):
    def chunk_vectors(self, chunk_ids: Sequence[str]) -> dict[str, Vectors]: ...


class _Header(TypedDict):
    request_id: str
    question: str
    prompt_name: str
    prompt_version: int
    prompt_sha256: str
    route: str
    route_reason: str
    retrieval_query: str


@dataclass(frozen=True, slots=True)
class AnswerEvent:
    kind: EventKind
    text: str = ""
    citation: Citation | None = None
    answer: Answer | None = None
    data: dict[str, Any] = field(default_factory=dict)


class AnswerPipeline:
    def __init__(
        self,
        retriever: HybridRetriever,
        prompts: PromptSource,
        models: ModelLayer,
        embedder: Embedder,
        settings: GenerationSettings,
        *,
        k: int = 6,
        vectors: ChunkVectors | None = None,
    ) -> None:
        self._retriever = retriever
        self._prompts = prompts
        self._models = models
        self._embedder = embedder
        self._settings = settings
        self._k = k
        self._vectors = vectors

    async def answer(
        self,
        question: str,
        *,
        principal: Principal,
        history: Sequence[Message] = (),
        filters: Sequence[FilterClause] = (),
        route: str | None = None,
        prompt_version: int | None = None,
        request_id: str | None = None,
    ) -> Answer:
        """The finished answer. Raises :class:`InputError` for a bad question, filter, route or prompt."""
        async for event in self.stream(
            question,
            principal=principal,
            history=history,
            filters=filters,
            route=route,
            prompt_version=prompt_version,
            request_id=request_id,
        ):
            if event.answer is not None:
                return event.answer
        raise AssertionError("the answer stream ended without a done event")  # pragma: no cover

    async def stream(
        self,
        question: str,
        *,
        principal: Principal,
        history: Sequence[Message] = (),
        filters: Sequence[FilterClause] = (),
        route: str | None = None,
        prompt_version: int | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[AnswerEvent]:
        """``meta``, then ``delta``s (and ``model_changed`` on fail-over), ``citation``s, and ``done``."""
        started = time.perf_counter()
        question = self._check_question(question)
        request_id = request_id or uuid.uuid4().hex
        template = self._prompts.resolve(
            self._settings.prompt, version=prompt_version, label=None if prompt_version else self._settings.prompt_label
        )
        choice = self._models.choose(question, principal=principal, route=route)
        query = standalone_query(question, history)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        retrieved = await anyio.to_thread.run_sync(
            lambda: self._retriever.search(query, principal=principal, filters=filters, k=self._k)
        )
        timings["retrieve"] = time.perf_counter() - t0
        sources = retrieved.chunks
        base = _Header(
            request_id=request_id,
            question=question,
            prompt_name=template.name,
            prompt_version=template.version,
            prompt_sha256=template.sha256,
            route=choice.route,
            route_reason=choice.reason,
            retrieval_query=query,
        )
        yield AnswerEvent("meta", data={**base, "sources": len(sources)})
        relevance = max((c.signals.get("cosine", -1.0) for c in sources), default=-1.0)
        if relevance < self._settings.relevance_threshold:
            # Nothing relevant: refuse from the template without spending a model call.
            text = self._settings.refusal
            yield AnswerEvent("delta", text)
            timings["total"] = time.perf_counter() - started
            answer = Answer(
                **base, text=text, citations=(), confidence=round(max(0.0, 1.0 - max(relevance, 0.0)), 3),
                refused=True, refusal_reason="no_relevant_sources", provider="none", model="none",
                usage=Usage(), cost_usd=0.0, sources=tuple(sources), flags=(f"relevance:{relevance:.3f}",),
                timings=timings,
            )  # fmt: skip
            yield AnswerEvent("done", answer=answer)
            return
        t0 = time.perf_counter()
        rendered = template.render(
            question=question,
            sources=[
                {"number": i, "title": c.title, "heading": " > ".join(c.heading_path[1:] if c.heading_path[:1] ==
                 (c.title,) else c.heading_path), "text": c.text}
                for i, c in enumerate(sources, start=1)
            ],
            history=[{"role": m.role, "content": m.content} for m in history],
            refusal=self._settings.refusal,
        )  # fmt: skip
        timings["prompt"] = time.perf_counter() - t0
        request = CompletionRequest(
            messages=(Message("system", rendered.system), Message("user", rendered.user)),
            max_tokens=self._settings.max_output_tokens,
            timeout_s=self._settings.resilience.deadline_s,
            deadline=time.monotonic() + self._settings.resilience.deadline_s,
        )
        parts: list[str] = []
        usage = Usage()
        provider, model = choice.llm.provider, choice.llm.model
        t0 = time.perf_counter()
        async for event in choice.llm.stream(request):
            if event.kind == "delta":
                if not parts:
                    timings["first_token"] = time.perf_counter() - started
                parts.append(event.text)
                yield AnswerEvent("delta", event.text)
            elif event.kind == "switch":
                provider, model = event.provider, event.model
                yield AnswerEvent("model_changed", event.text, data={"provider": provider, "model": model})
            elif event.kind == "finish":
                usage = event.usage or usage
                provider, model = event.provider or provider, event.model or model
        timings["model"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        assembled = await self._assemble("".join(parts), sources)
        timings["assemble"] = time.perf_counter() - t0
        for citation in assembled.citations:
            yield AnswerEvent("citation", citation=citation)
        refused = self._settings.refusal.rstrip(".").lower() in assembled.text.lower()
        flags = [f"dropped_citation:{n}" for n in assembled.dropped]
        flags += [f"unsupported_sentence:{i}" for i, s in enumerate(assembled.sentences, 1) if s.cited and not
                  s.supported]  # fmt: skip
        flags += [f"fallback:{name}" for name in choice.record.fallbacks]
        price_in, price_out = choice.prices.get(model, (0.0, 0.0))
        timings["total"] = time.perf_counter() - started
        answer = Answer(
            **base,
            text=assembled.text,
            citations=assembled.citations,
            confidence=confidence(relevance, assembled, refused=refused, threshold=self._settings.relevance_threshold),
            refused=refused,
            refusal_reason="model_refused" if refused else None,
            provider=provider,
            model=model,
            usage=usage,
            cost_usd=round(usage.input_tokens / 1000 * price_in + usage.output_tokens / 1000 * price_out, 6),
            sources=tuple(sources),
            flags=tuple(flags),
            retries=choice.record.retries,
            fallbacks=tuple(choice.record.fallbacks),
            timings=timings,
        )
        yield AnswerEvent("done", answer=answer)

    def _check_question(self, question: str) -> str:
        question = question.strip()
        if not question:
            raise InputError("the question is empty")
        try:  # lone surrogates: undecodable bytes from a terminal, or \udcxx escapes in JSON
            question.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"the question is not valid UTF-8 (at character {exc.start})") from exc
        limit = self._settings.max_question_chars
        if len(question) > limit:
            raise InputError(f"the question is {len(question)} characters; the limit is {limit}")
        return question

    async def _assemble(self, text: str, sources: Sequence[ScoredChunk]) -> Assembled:
        unsure = sentences_needing_vectors(text, sources)
        if not unsure or self._vectors is None:
            return assemble(text, sources)
        vectors = self._vectors
        chunk_vectors = await anyio.to_thread.run_sync(lambda: vectors.chunk_vectors([c.chunk_id for c in sources]))
        embedded = await anyio.to_thread.run_sync(lambda: self._embedder.embed_queries(unsure))
        return assemble(
            text,
            sources,
            sentence_vectors=dict(zip(unsure, embedded, strict=True)),
            chunk_vectors=chunk_vectors,
        )
