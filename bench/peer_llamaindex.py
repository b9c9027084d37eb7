"""The LlamaIndex peer, set up the way its documentation shows, with the same packaged model and no LLM.

``SentenceSplitter()`` with its defaults; ``VectorStoreIndex`` (in-memory ``SimpleVectorStore``) over
``HuggingFaceEmbedding(model_name=<the packaged model folder>)``; ``BM25Retriever.from_defaults(nodes=...)``;
and as its hybrid ``QueryFusionRetriever([vector, bm25], num_queries=1, mode="reciprocal_rerank",
use_async=False)``. Every retriever returns its top 10. With ``num_queries=1`` the fusion retriever never calls
an LLM; it is given a ``MockLLM`` only so that it does not try to build the default OpenAI one.

For the quality runs, corpus vectors may come from the bench cache through :class:`CachedHuggingFaceEmbedding`,
keyed by the exact text LlamaIndex embeds (metadata included); query vectors are always computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core import Document as LlamaDocument
from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever
from llama_index.core.schema import BaseNode, MetadataMode, QueryBundle
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from llama_index.retrievers.bm25 import BM25Retriever
from pydantic import PrivateAttr

from answerdesk.embed.base import Vectors
from answerdesk.embed.local import resolve_model_dir
from common import DEPTH, MODEL, Passage, dedupe_ids, title_of
from embed_cache import EmbeddingCache

TOP_K = 10


def model_dir() -> Path:
    return resolve_model_dir(MODEL)


class CachedHuggingFaceEmbedding(HuggingFaceEmbedding):
    """``HuggingFaceEmbedding`` whose text (corpus) vectors are served from the bench cache when attached."""

    _cache: EmbeddingCache | None = PrivateAttr(default=None)
    _cache_key: str = PrivateAttr(default="")

    def attach_cache(self, cache: EmbeddingCache) -> None:
        self._cache = cache
        self._cache_key = f"llamaindex:{MODEL}:max_length={self.max_length}:normalize={self.normalize}"

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        if self._cache is None:
            return super()._get_text_embeddings(texts)
        vectors: list[list[float]] = self._cache.embed(self._cache_key, texts, self.compute).tolist()
        return vectors

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def compute(self, texts: list[str]) -> Vectors:
        """The model's own text embedding, bypassing the cache."""
        return np.asarray(HuggingFaceEmbedding._get_text_embeddings(self, texts), dtype=np.float32)

    def prefill(self, texts: Sequence[str], *, label: str = "") -> None:
        if self._cache is not None and texts:
            self._cache.embed(self._cache_key, texts, self.compute, label=label)


def documents(passages: Sequence[Passage]) -> list[LlamaDocument]:
    """One LlamaIndex Document per passage, with the same title answerdesk gets (as metadata)."""
    return [LlamaDocument(id_=p.id, text=p.text, metadata={"title": title_of(p)}) for p in passages]


def split(passages: Sequence[Passage]) -> list[BaseNode]:
    return SentenceSplitter().get_nodes_from_documents(documents(passages))


def embed_texts(nodes: Sequence[BaseNode]) -> list[str]:
    """What ``VectorStoreIndex`` embeds for each node."""
    return [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]


@dataclass(frozen=True, slots=True)
class PeerIndex:
    nodes: list[BaseNode]
    vector: BaseRetriever
    bm25: BaseRetriever
    hybrid: BaseRetriever

    def retriever(self, system: str) -> BaseRetriever:
        return {"vector": self.vector, "bm25": self.bm25, "hybrid": self.hybrid}[system]


def build(nodes: list[BaseNode], embed_model: HuggingFaceEmbedding) -> PeerIndex:
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    vector = index.as_retriever(similarity_top_k=TOP_K)
    bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=TOP_K)
    hybrid = QueryFusionRetriever(
        [vector, bm25],
        llm=MockLLM(),
        similarity_top_k=TOP_K,
        num_queries=1,
        mode="reciprocal_rerank",
        use_async=False,
    )
    return PeerIndex(nodes, vector, bm25, hybrid)


def ranking(retriever: BaseRetriever, query: str | QueryBundle) -> list[str]:
    """Document ids, best first (nodes mapped to their source passage, deduped), cut at ``DEPTH``."""
    found = retriever.retrieve(query)
    return dedupe_ids(str(n.node.ref_doc_id) for n in found)[:DEPTH]


def new_embedding(**options: Any) -> CachedHuggingFaceEmbedding:
    """The packaged model through LlamaIndex's own wrapper (from its folder: nothing is fetched)."""
    return CachedHuggingFaceEmbedding(model_name=str(model_dir()), device="cpu", **options)
