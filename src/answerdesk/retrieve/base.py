"""The Reranker Protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from answerdesk.types import ScoredChunk


class Reranker(Protocol):
    def rerank(self, query: str, chunks: Sequence[ScoredChunk]) -> list[ScoredChunk]:
        """Reorder (and rescore) ``chunks`` for ``query``, best first; never adds chunks."""
        ...
