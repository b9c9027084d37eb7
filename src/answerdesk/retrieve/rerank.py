"""Rerankers. Only the identity reranker ships until a packaged cross-encoder beats fusion on our dev sets."""

from __future__ import annotations

from collections.abc import Sequence

from answerdesk.errors import ConfigError
from answerdesk.retrieve.base import Reranker
from answerdesk.types import ScoredChunk

KNOWN_KINDS = ("identity",)


class IdentityReranker:
    def rerank(self, query: str, chunks: Sequence[ScoredChunk]) -> list[ScoredChunk]:
        return list(chunks)


def build_reranker(kind: str) -> Reranker:
    if kind == "identity":
        return IdentityReranker()
    raise ConfigError(f"rerank.kind '{kind}' is unknown; known kinds: {', '.join(KNOWN_KINDS)}")
