"""Protocols of the store: what ingestion writes through and what retrieval reads through.

Every backend (SQLite embedded, Postgres + pgvector) implements both and passes
``tests/contract/test_search_index.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from answerdesk.embed.base import Vectors
from answerdesk.types import Chunk, Document, FilterClause, Principal, ScoredChunk, StoredDocument


@dataclass(frozen=True, slots=True)
class IndexedDocument:
    """A document ready to write: its chunks and one vector per chunk (same order).

    ``fingerprint`` covers the content hash and the chunking/embedding settings, so a settings change
    re-indexes even unchanged documents.
    """

    document: Document
    chunks: Sequence[Chunk]
    vectors: Vectors
    fingerprint: str
    #: Per chunk (same order), one vector per sentence that can hold an answer (``answerability.chunk_sentences``);
    #: ``None``: not computed (the answerability gate then embeds them on demand).
    sentence_vectors: Sequence[Vectors] | None = None


class DocumentStore(Protocol):
    def fingerprints(self, document_ids: Iterable[str]) -> dict[str, str]:
        """Stored fingerprints of those of ``document_ids`` that exist."""
        ...

    def write(self, items: Sequence[IndexedDocument]) -> None:
        """Insert or replace each document with its chunks, vectors and lexical entries, atomically:
        after a crash a reader sees the old version of every document or the new one, never a mix.
        Raises :class:`StoreError`.
        """
        ...

    def delete(self, *, ids: Sequence[str] = (), source_prefix: str | None = None) -> list[str]:
        """Delete documents by id and/or by source prefix, with their chunks, vectors and lexical
        entries, in one transaction. Returns the ids deleted."""
        ...

    def documents(self, *, source_prefix: str | None = None) -> list[StoredDocument]:
        """Every stored document (optionally under a source prefix), ordered by source then id."""
        ...


class SearchIndex(Protocol):
    """Search over chunks. ``principal`` is enforced on every call (see ``security/access.py``);
    ``filters`` are ANDed; an unknown field or operator raises :class:`InputError`."""

    def lexical(
        self, query: str, *, principal: Principal, filters: Sequence[FilterClause] = (), limit: int = 40
    ) -> list[ScoredChunk]:
        """BM25 over title, heading path and text; best first; ``signals['bm25']`` holds the score
        (higher is better)."""
        ...

    def vector(
        self,
        query_vector: Vectors,
        *,
        principal: Principal,
        filters: Sequence[FilterClause] = (),
        limit: int = 40,
    ) -> list[ScoredChunk]:
        """Exact cosine similarity against every readable chunk; best first; ``signals['cosine']``."""
        ...
