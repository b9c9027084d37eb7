"""The timed parts of the retrieval benchmark: query latency on the whole-corpus index, and ingestion.

Latency is measured on real query embeddings. Ingestion is measured uncached: a fresh model instance, the
real embedding of every chunk, the raw embedder on the very same texts for comparison.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from answerdesk.config import ChunkingSettings, RetrievalSettings
from answerdesk.embed.local import LocalEmbedder
from answerdesk.ingest.indexer import Ingestor
from answerdesk.types import Document
from common import (
    MAX_SEQ_LENGTH,
    MODEL,
    PRINCIPAL,
    Dataset,
    Passage,
    build_index,
    embed_texts_of,
    fresh_index,
    latency_summary,
    log,
    percentile,
    retriever_for,
    sentence_texts_of,
    to_document,
)
from embed_cache import CachedEmbedder

WARMUP = 10
SEARCH_K = 10
BATCH = 128


def latency_queries(datasets: dict[str, Dataset], n: int, *, seed: int = 0) -> list[str]:
    """``n`` rewritten questions drawn from every domain (fixed seed)."""
    pool = [q.rewritten for d in datasets.values() for q in d.queries]
    rng = random.Random(seed)
    return rng.sample(pool, min(n, len(pool)))


def run_latency(
    datasets: dict[str, Dataset], embedder: CachedEmbedder, embed_model: Any, workdir: Path, *, n_queries: int
) -> dict[str, Any]:
    passages = [p for d in datasets.values() for p in d.passages]
    queries = latency_queries(datasets, n_queries + WARMUP)
    warmup, timed = queries[:WARMUP], queries[WARMUP:]
    log(f"latency: indexing {len(passages)} passages of {', '.join(datasets)} in one index")
    out: dict[str, Any] = {"passages": len(passages), "queries": len(timed), "k": SEARCH_K}
    out["load_average_before"] = list(os.getloadavg())
    out["answerdesk"] = _answerdesk_latency(passages, embedder, workdir, warmup, timed)
    if embed_model is not None:
        out["llamaindex"] = _peer_latency(passages, embed_model, warmup, timed)
    out["load_average_after"] = list(os.getloadavg())
    return out


def _answerdesk_latency(
    passages: Sequence[Passage], embedder: CachedEmbedder, workdir: Path, warmup: list[str], timed: list[str]
) -> dict[str, Any]:
    chunking = ChunkingSettings()
    defaults = RetrievalSettings()
    documents = [to_document(p) for p in passages]
    embedder.prefill(embed_texts_of(documents, embedder, chunking), label="all domains")
    index, _ = build_index(workdir / "all.db", documents, embedder, chunking)
    retriever = retriever_for(index, embedder, fusion=defaults.fusion, rrf_k=defaults.rrf_k)
    for query in warmup:
        retriever.search(query, principal=PRINCIPAL, k=SEARCH_K)
    totals, without, stages = [], [], {}
    for query in timed:
        t0 = time.perf_counter()
        result = retriever.search(query, principal=PRINCIPAL, k=SEARCH_K)
        total = time.perf_counter() - t0
        totals.append(total)
        without.append(total - result.timings.get("embed", 0.0))
        for stage, seconds in result.timings.items():
            stages.setdefault(stage, []).append(seconds * 1000.0)
    counts = index.counts()
    index.close()
    return {
        "chunks": counts["chunks"],
        "documents": counts["documents"],
        "index_mb": round((workdir / "all.db").stat().st_size / 1e6, 1),
        "with_embedding": latency_summary(totals),
        "without_embedding": latency_summary(without),
        "stage_p50_ms": {s: percentile(v, 50) for s, v in stages.items()},
        "stage_p95_ms": {s: percentile(v, 95) for s, v in stages.items()},
        "settings": {"fusion": defaults.fusion, "rrf_k": defaults.rrf_k, "candidates": defaults.candidates},
    }


def _peer_latency(passages: Sequence[Passage], embed_model: Any, warmup: list[str], timed: list[str]) -> dict[str, Any]:
    import torch
    from llama_index.core.schema import QueryBundle

    import peer_llamaindex as peer

    # answerdesk's embedder sets torch's thread count per call; the peer runs with torch's default.
    torch.set_num_threads(os.cpu_count() or 1)
    nodes = peer.split(passages)
    embed_model.prefill(peer.embed_texts(nodes), label="all domains (LlamaIndex)")
    t0 = time.perf_counter()
    index = peer.build(nodes, embed_model)
    build_seconds = time.perf_counter() - t0
    for query in warmup:
        index.hybrid.retrieve(query)
    totals, without = [], []
    for query in timed:
        t0 = time.perf_counter()
        index.hybrid.retrieve(query)
        totals.append(time.perf_counter() - t0)
        bundle = QueryBundle(query, embedding=embed_model.get_query_embedding(query))
        t0 = time.perf_counter()
        index.hybrid.retrieve(bundle)
        without.append(time.perf_counter() - t0)
    return {
        "nodes": len(nodes),
        "build_seconds_cached_vectors": build_seconds,
        "with_embedding": latency_summary(totals),
        "without_embedding": latency_summary(without),
        "torch_threads": torch.get_num_threads(),
    }


# -- ingestion --------------------------------------------------------------------------------


def run_ingest(dataset: Dataset, workdir: Path, *, repeats: int, peer: bool) -> dict[str, Any]:
    """Best of ``repeats``: Ingestor.index vs raw embed_passages on the same texts, then the unchanged re-ingest."""
    chunking = ChunkingSettings()
    documents = [to_document(p) for p in dataset.passages]
    embedder = LocalEmbedder(MODEL, batch_size=32, max_seq_length=MAX_SEQ_LENGTH)
    embedder.load()
    embedder.embed_passages(["warm-up so that the first timed batch does not pay for lazy initialisation"])
    texts = embed_texts_of(documents, embedder, chunking)
    chunk_batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    # The Ingestor embeds each batch's chunks together with their sentences (for the answerability gate):
    # the raw baseline embeds exactly the same texts, in the same groups.
    sentences = sentence_texts_of(documents, embedder, chunking)
    batches = [
        batch + [s for group in sentences[i : i + BATCH] for s in group]
        for batch, i in zip(chunk_batches, range(0, len(texts), BATCH), strict=True)
    ]
    log(f"ingest: {len(documents)} {dataset.name} passages, {len(texts)} chunks, best of {repeats}")
    raw_runs, chunk_only_runs, ingest_runs, unchanged_runs = [], [], [], []
    chunks_written = 0
    for repeat in range(repeats):
        raw_runs.append(_time_raw(embedder, batches))
        chunk_only_runs.append(_time_raw(embedder, chunk_batches))
        seconds, unchanged, chunks_written = _time_ingestor(
            documents, embedder, chunking, workdir / f"ingest-{repeat}.db"
        )
        ingest_runs.append(seconds)
        unchanged_runs.append(unchanged)
        log(f"  run {repeat + 1}: raw {raw_runs[-1]:.1f}s, Ingestor {seconds:.1f}s, unchanged {unchanged * 1000:.0f}ms")
    raw, ingest, unchanged = min(raw_runs), min(ingest_runs), min(unchanged_runs)
    out: dict[str, Any] = {
        "dataset": dataset.name,
        "documents": len(documents),
        "chunks": chunks_written,
        "batch": BATCH,
        "repeats": repeats,
        "torch_threads_passages": os.cpu_count(),
        "sentences": sum(len(g) for g in sentences),
        "raw_embed_seconds": raw,
        "raw_chunks_only_seconds": min(chunk_only_runs),
        # What storing sentence vectors adds to the embedding work (ingest.sentence_vectors: false skips it).
        "sentence_vectors_extra_pct": (raw / min(chunk_only_runs) - 1.0) * 100.0,
        "raw_chunks_per_s": len(texts) / raw,
        "ingest_seconds": ingest,
        "ingest_chunks_per_s": chunks_written / ingest,
        "overhead_pct": (ingest / raw - 1.0) * 100.0,
        "unchanged_reingest_seconds": unchanged,
        "unchanged_speedup": ingest / unchanged,
        "runs": {"raw": raw_runs, "chunks_only": chunk_only_runs, "ingest": ingest_runs, "unchanged": unchanged_runs},
        "load_average_after": list(os.getloadavg()),
    }
    if peer:
        out["llamaindex"] = _peer_ingest(dataset.passages, repeats)
    return out


def _time_raw(embedder: LocalEmbedder, batches: list[list[str]]) -> float:
    spent = 0.0
    for batch in batches:
        t0 = time.perf_counter()
        embedder.embed_passages(batch)
        spent += time.perf_counter() - t0
    return spent


def _time_ingestor(
    documents: list[Document], embedder: LocalEmbedder, chunking: ChunkingSettings, path: Path
) -> tuple[float, float, int]:
    index = fresh_index(path)
    ingestor = Ingestor(index, embedder, chunking, batch_chunks=BATCH)
    t0 = time.perf_counter()
    first = ingestor.index(documents)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = ingestor.index(documents)
    unchanged = time.perf_counter() - t0
    index.close()
    if first.failures or again.unchanged != len(documents) or again.chunks_written:
        log(f"  unexpected ingest reports: first {first}, again {again}")
    return seconds, unchanged, first.chunks_written


def _peer_ingest(passages: Sequence[Passage], repeats: int) -> dict[str, Any]:
    """LlamaIndex out of the box: splitter, HuggingFaceEmbedding (default batch of 10), VectorStoreIndex."""
    import torch
    from llama_index.core import VectorStoreIndex
    from llama_index.retrievers.bm25 import BM25Retriever

    import peer_llamaindex as peer

    torch.set_num_threads(os.cpu_count() or 1)
    embed_model = peer.new_embedding()  # no cache attached: real embedding
    embed_model.get_text_embedding("warm-up")
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        nodes = peer.split(passages)
        t1 = time.perf_counter()
        VectorStoreIndex(nodes, embed_model=embed_model)
        t2 = time.perf_counter()
        BM25Retriever.from_defaults(nodes=nodes)
        t3 = time.perf_counter()
        runs.append({"split": t1 - t0, "embed_and_index": t2 - t1, "bm25": t3 - t2, "total": t3 - t0})
        log(f"  LlamaIndex ingest: {t3 - t0:.1f}s ({len(nodes)} nodes)")
    best = min(runs, key=lambda r: r["total"])
    return {
        "nodes": len(nodes),
        "embed_batch_size": embed_model.embed_batch_size,
        "seconds": best,
        "nodes_per_s": len(nodes) / (best["split"] + best["embed_and_index"]),
        "runs": runs,
    }
