"""HybridRetriever: BM25 and vector candidates from a SearchIndex, fused, reranked, cut to k."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from answerdesk.embed.base import Embedder, Vectors
from answerdesk.errors import InputError
from answerdesk.retrieve.base import Reranker
from answerdesk.retrieve.fusion import reciprocal_rank_fusion, weighted_fusion
from answerdesk.store.base import SearchIndex
from answerdesk.store.filters import validate_all
from answerdesk.types import FilterClause, Principal, ScoredChunk

Mode = Literal["hybrid", "bm25", "vector"]
MAX_QUERY_CHARS = 4000


@dataclass(frozen=True, slots=True)
class RetrievalResult:
    chunks: list[ScoredChunk]
    #: Seconds per stage: ``embed``, ``bm25``, ``vector``, ``fuse``, ``rerank``.
    timings: dict[str, float]
    #: The query's vector (``None`` for a BM25-only search), for later stages that compare against it.
    query_vector: Vectors | None = None


class HybridRetriever:
    def __init__(
        self,
        index: SearchIndex,
        embedder: Embedder,
        reranker: Reranker,
        *,
        fusion: Literal["rrf", "weighted"] = "rrf",
        rrf_k: int = 30,
        vector_weight: float = 0.7,
        candidates: int = 40,
    ) -> None:
        self._index = index
        self._embedder = embedder
        self._reranker = reranker
        self._fusion = fusion
        self._rrf_k = rrf_k
        self._weights = {"bm25": 1.0 - vector_weight, "vector": vector_weight}
        self._candidates = candidates

    def search(
        self,
        query: str,
        *,
        principal: Principal,
        filters: Sequence[FilterClause] = (),
        k: int = 6,
        mode: Mode = "hybrid",
    ) -> RetrievalResult:
        """The ``k`` best chunks ``principal`` may read. Raises :class:`InputError` for an empty or
        oversized query, a bad filter or a bad ``k``."""
        query = query.strip()
        if not query:
            raise InputError("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InputError(f"the query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        clauses = validate_all(filters)
        pool = max(self._candidates, k)
        timings: dict[str, float] = {}
        rankings: dict[str, list[ScoredChunk]] = {}
        vector: Vectors | None = None
        if mode in ("hybrid", "bm25"):
            t0 = time.perf_counter()
            rankings["bm25"] = self._index.lexical(query, principal=principal, filters=clauses, limit=pool)
            timings["bm25"] = time.perf_counter() - t0
        if mode in ("hybrid", "vector"):
            t0 = time.perf_counter()
            vector = self._embedder.embed_queries([query])[0]
            timings["embed"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            rankings["vector"] = self._index.vector(vector, principal=principal, filters=clauses, limit=pool)
            timings["vector"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if mode != "hybrid":
            fused = reciprocal_rank_fusion(rankings, k=self._rrf_k)
        elif self._fusion == "rrf":
            fused = reciprocal_rank_fusion(rankings, k=self._rrf_k, weights=self._weights_for_rrf())
        else:
            fused = weighted_fusion(rankings, weights=self._weights)
        timings["fuse"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        reranked = self._reranker.rerank(query, fused)
        timings["rerank"] = time.perf_counter() - t0
        return RetrievalResult(chunks=reranked[:k], timings=timings, query_vector=vector)

    def _weights_for_rrf(self) -> dict[str, float]:
        # Equal weights are plain RRF; scaled so that 0.5/0.5 gives the textbook 1/(k + rank).
        return {name: 2.0 * w for name, w in self._weights.items()}
