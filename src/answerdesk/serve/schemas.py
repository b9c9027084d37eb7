"""Request and response bodies of the service (pydantic; they are the OpenAPI schema at ``/docs``).

Answers are turned into response bodies here, field by field from the :class:`Answer` value object, so the
wire format is stated once for JSON responses and SSE ``done`` events alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from answerdesk.types import Answer, Citation, ScoredChunk


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Turn(_Body):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class AnswerRequest(_Body):
    question: str = Field(min_length=1, max_length=20_000, description="The customer's or agent's question.")
    history: list[Turn] = Field(default_factory=list, max_length=50, description="Earlier turns, oldest first.")
    filters: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Metadata filters, e.g. 'region=eu', 'updated_at:gte=2026-01-01'.",
    )
    model: str | None = Field(default=None, max_length=200, description="A route or model name; default: the router.")
    prompt_version: int | None = Field(default=None, ge=1, le=100_000)
    stream: bool = Field(default=False, description="Answer as Server-Sent Events.")
    conversation_id: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Ties the turns of one conversation together (redaction placeholders stay the same in it).",
    )
    tags: dict[str, str] = Field(
        default_factory=dict, max_length=20, description="Cost tags, e.g. {'cost_centre': 'support-eu'}."
    )


class CitationOut(BaseModel):
    number: int
    document_id: str
    chunk_id: str
    title: str
    source: str
    url: str | None
    snippet: str


class UsageOut(BaseModel):
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    estimated: bool


class FindingOut(BaseModel):
    """What a guardrail found and did; never the matched text (only its hash)."""

    model_config = ConfigDict(extra="allow")

    guard: str
    rule: str
    action: str
    stage: str
    score: float | None = None
    match_sha256: str | None = None


class AnswerOut(BaseModel):
    """A drafted answer: every field of answerdesk's answer record except the internal ones."""

    model_config = ConfigDict(extra="allow")

    request_id: str
    text: str
    citations: list[CitationOut]
    confidence: float
    refused: bool
    refusal_reason: str | None
    guard_findings: list[FindingOut] = Field(default_factory=list)
    #: A guard challenged the question or the answer: a person should check it before it is sent.
    review_required: bool = False
    prompt_name: str
    prompt_version: int
    prompt_sha256: str
    route: str
    route_reason: str
    provider: str
    model: str
    usage: UsageOut
    cost_usd: float
    flags: list[str]
    retries: int
    fallbacks: list[str]
    timings_ms: dict[str, float]


class Passage(BaseModel):
    rank: int
    chunk_id: str
    document_id: str
    title: str
    source: str
    url: str | None
    heading_path: list[str]
    score: float
    text: str


class SearchOut(BaseModel):
    query: str
    results: list[Passage]
    timings_ms: dict[str, float]


class FeedbackRequest(_Body):
    request_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    rating: Literal["up", "down"] | None = None
    csat: int | None = Field(default=None, ge=1, le=5, description="Customer satisfaction, 1 (worst) to 5.")
    comment: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _something_rated(self) -> FeedbackRequest:
        if self.rating is None and self.csat is None and not self.comment.strip():
            raise ValueError("give a rating ('up'/'down'), a csat score (1-5) or a comment")
        return self


class FeedbackOut(BaseModel):
    request_id: str
    rating: str | None
    csat: int | None
    comment: str
    created_at: str


class DocumentOut(BaseModel):
    id: str
    source: str
    title: str
    sha256: str
    chunk_count: int
    ingested_at: str
    meta: dict[str, Any]


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class DeletedOut(BaseModel):
    deleted: list[str]


class JobOut(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    files_total: int
    files_done: int
    documents: int
    chunks: int
    report: dict[str, Any] | None
    error: str | None
    created_at: str
    updated_at: str


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


def citation_out(c: Citation) -> dict[str, Any]:
    return {
        "number": c.number,
        "document_id": c.document_id,
        "chunk_id": c.chunk_id,
        "title": c.title,
        "source": c.source,
        "url": c.url,
        "snippet": c.snippet,
    }


#: Answer fields that are internal, or sent under another shape.
_NOT_SENT = {"question", "citations", "usage", "timings", "sources", "retrieval_query"}


def answer_out(answer: Answer) -> dict[str, Any]:
    """The wire form of an answer: every field of :class:`Answer` except the internal ones, so a field added
    to answers later reaches clients without a change here."""
    body: dict[str, Any] = {
        f.name: to_plain(getattr(answer, f.name)) for f in dataclasses.fields(answer) if f.name not in _NOT_SENT
    }
    body["citations"] = [citation_out(c) for c in answer.citations]
    body["usage"] = to_plain(answer.usage)
    body["timings_ms"] = {k: round(v * 1000, 2) for k, v in answer.timings.items()}
    return body


def passage_out(rank: int, c: ScoredChunk) -> dict[str, Any]:
    return {
        "rank": rank,
        "chunk_id": c.chunk_id,
        "document_id": c.document_id,
        "title": c.title,
        "source": c.source,
        "url": c.url,
        "heading_path": list(c.heading_path),
        "score": c.score,
        "text": c.text,
    }


def to_plain(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
