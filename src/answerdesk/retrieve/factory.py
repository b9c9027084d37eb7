"""The configured retriever: hybrid search over an index with the settings' fusion and reranker."""

from __future__ import annotations

from answerdesk.config import Settings
from answerdesk.embed.base import Embedder
from answerdesk.retrieve.hybrid import HybridRetriever
from answerdesk.retrieve.rerank import build_reranker
from answerdesk.store.base import SearchIndex


def build_retriever(index: SearchIndex, embedder: Embedder, settings: Settings) -> HybridRetriever:
    r = settings.retrieval
    return HybridRetriever(
        index,
        embedder,
        build_reranker(settings.rerank.kind),
        fusion=r.fusion,
        rrf_k=r.rrf_k,
        vector_weight=r.vector_weight,
        candidates=r.candidates,
    )
