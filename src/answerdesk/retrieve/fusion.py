"""Fusion of ranked lists. Pure functions: they return new ScoredChunks and never change their inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from answerdesk.types import ScoredChunk


def dedupe(chunks: Sequence[ScoredChunk]) -> list[ScoredChunk]:
    """Keep the first (best) occurrence of each chunk id."""
    seen: set[str] = set()
    out = []
    for chunk in chunks:
        if chunk.chunk_id not in seen:
            seen.add(chunk.chunk_id)
            out.append(chunk)
    return out


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[ScoredChunk]], *, k: int = 60, weights: Mapping[str, float] | None = None
) -> list[ScoredChunk]:
    """RRF: each list adds ``weight / (k + rank)`` for every chunk it holds (rank from 1).

    ``rankings`` maps a retriever name (``bm25``, ``vector``) to its best-first list. The result's
    ``signals`` keep each retriever's rank and score; ties keep the order of first appearance.
    """

    def contribution(name: str, rank: int, chunk: ScoredChunk, unique: list[ScoredChunk]) -> float:
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        return weight / (k + rank)

    return _combine(rankings, contribution)


def weighted_fusion(
    rankings: Mapping[str, Sequence[ScoredChunk]], *, weights: Mapping[str, float]
) -> list[ScoredChunk]:
    """Convex combination of min-max normalised scores; a chunk missing from a list gets 0 from it."""

    def contribution(name: str, rank: int, chunk: ScoredChunk, unique: list[ScoredChunk]) -> float:
        low = min(c.score for c in unique)
        span = max(c.score for c in unique) - low
        norm = 1.0 if span == 0 else (chunk.score - low) / span
        return weights.get(name, 0.0) * norm

    return _combine(rankings, contribution)


def _combine(
    rankings: Mapping[str, Sequence[ScoredChunk]],
    contribution: Callable[[str, int, ScoredChunk, list[ScoredChunk]], float],
) -> list[ScoredChunk]:
    """Sum each list's contribution per chunk; keep the first copy of each chunk and all lists' signals."""
    totals: dict[str, float] = {}
    first: dict[str, ScoredChunk] = {}
    signals: dict[str, dict[str, float]] = {}
    for name, ranked in rankings.items():
        unique = dedupe(ranked)
        for rank, chunk in enumerate(unique, start=1):
            totals[chunk.chunk_id] = totals.get(chunk.chunk_id, 0.0) + contribution(name, rank, chunk, unique)
            first.setdefault(chunk.chunk_id, chunk)
            merged = signals.setdefault(chunk.chunk_id, {})
            merged.update(chunk.signals)
            merged[f"{name}_rank"] = float(rank)
    order = sorted(totals, key=lambda cid: -totals[cid])
    return [replace(first[cid], score=totals[cid], signals=signals[cid]) for cid in order]
