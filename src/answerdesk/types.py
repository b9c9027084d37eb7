"""Value objects that stages pass to each other. Frozen, so no stage can change another's data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from answerdesk.guard.base import Finding

#: Metadata keys every document may carry; anything else goes to ``tags`` or ``extra``.
KNOWN_META_KEYS = (
    "owner",
    "region",
    "product",
    "plan",
    "retention",
    "compliance_scope",
    "tenant",
    "doc_type",
    "title",
    "url",
    "updated_at",
)


@dataclass(frozen=True, slots=True)
class DocumentMeta:
    """What is known about a document besides its text.

    ``tenant`` None means the document is shared by every tenant; ``compliance_scope`` None means
    no scope is needed to read it.
    """

    title: str = ""
    url: str | None = None
    owner: str | None = None
    region: str | None = None
    product: str | None = None
    plan: str | None = None
    retention: str | None = None
    compliance_scope: str | None = None
    tenant: str | None = None
    doc_type: str | None = None
    updated_at: dt.date | None = None
    tags: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Section:
    """A run of cleaned text under one heading path (e.g. ``("Refunds", "Annual plans")``)."""

    heading_path: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Document:
    """A cleaned source document, ready to chunk.

    ``id`` is stable across re-ingests (front matter ``id``, sidecar ``id``, ticket id, or the path
    relative to the ingest root); ``source`` is where it came from and what ``kb delete --prefix`` matches.
    ``sha256`` is over the cleaned text and metadata, so an unchanged document is skipped.
    """

    id: str
    source: str
    sections: tuple[Section, ...]
    meta: DocumentMeta
    sha256: str

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A stored piece of a document.

    ``text`` is what is shown and cited; ``embed_text`` is the (possibly shorter) window the embedder
    reads, prefixed with the title and heading path so that a chunk keeps its context.
    """

    id: str
    document_id: str
    ordinal: int
    text: str
    embed_text: str
    heading_path: tuple[str, ...]
    token_count: int


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    """A chunk found by retrieval, with the document fields a caller needs to cite it."""

    chunk_id: str
    document_id: str
    text: str
    score: float
    title: str = ""
    source: str = ""
    url: str | None = None
    heading_path: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: Per-retriever scores and ranks, e.g. ``{"bm25_rank": 2, "vector_score": 0.61}``.
    signals: Mapping[str, float] = field(default_factory=dict)

    @property
    def breadcrumb(self) -> str:
        """``Title > Heading > Subheading`` for display, without a heading that repeats the title."""
        return " > ".join(heading_trail(self.title, self.heading_path))


def heading_trail(title: str, heading_path: tuple[str, ...]) -> list[str]:
    """Title then headings, dropping empty parts and any part that merely repeats the one before it."""
    parts = [p for p in (title, *heading_path) if p]
    return [p for i, p in enumerate(parts) if i == 0 or p.casefold() != parts[i - 1].casefold()]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking. Tenant and compliance scopes come from here, never from request parameters.

    ``tenant`` None is the operator's view of the shared knowledge base only; it never sees
    tenant-owned documents.
    """

    subject: str
    tenant: str | None = None
    roles: frozenset[str] = frozenset()
    compliance_scopes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FilterClause:
    """One metadata condition: ``field op value``. Built by :func:`answerdesk.retrieve.filters.parse_filter`."""

    field: str
    op: str
    value: str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IngestFailure:
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What an ingest run did; ``failures`` lists each source that could not be ingested and why."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks_written: int = 0
    failures: tuple[IngestFailure, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document as the store holds it (for listings and deletes)."""

    id: str
    source: str
    title: str
    sha256: str
    chunk_count: int
    ingested_at: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a model call consumed; ``estimated`` when counted by a tokenizer rather than reported.
    ``cached_input_tokens`` is the part of ``input_tokens`` served from a prompt cache (when the provider says)."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False
    cached_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.estimated or other.estimated,
            self.cached_input_tokens + other.cached_input_tokens,
        )


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source of an answer: ``[n]`` in the text points at ``chunk_id``."""

    number: int
    chunk_id: str
    document_id: str
    title: str
    source: str
    url: str | None
    snippet: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A drafted answer and everything needed to trust, bill and trace it."""

    request_id: str
    question: str
    text: str
    citations: tuple[Citation, ...]
    confidence: float
    refused: bool
    #: Why the answer is a refusal: ``no_relevant_sources`` (relevance gate, no model call), ``not_in_sources``
    #: (the sources are on the topic but do not answer it: answerability gate, no model call), ``model_refused``,
    #: ``guard_blocked`` (a guard blocked the question or the answer) or ``guard_grounding`` (the answer was
    #: not grounded in, or relevant to, what was asked: replaced by the refusal template).
    refusal_reason: str | None
    prompt_name: str
    prompt_version: int
    prompt_sha256: str
    route: str
    route_reason: str
    provider: str
    model: str
    usage: Usage
    cost_usd: float
    retrieval_query: str
    sources: tuple[ScoredChunk, ...] = ()
    #: Problems found and handled, e.g. ``dropped_citation:7``, ``unsupported_sentence:2``, ``fallback:extractive``.
    flags: tuple[str, ...] = ()
    retries: int = 0
    fallbacks: tuple[str, ...] = ()
    #: Seconds per stage: ``retrieve``, ``prompt``, ``model``, ``first_token``, ``assemble``, ``total``.
    timings: Mapping[str, float] = field(default_factory=dict)
    #: What the guardrails found and did (redactions, blocks, challenges), never the matched text.
    guard_findings: tuple[Finding, ...] = ()
    #: A guard challenged the question or the answer: an agent must confirm it, or a reviewer check it.
    review_required: bool = False
