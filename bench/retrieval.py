"""Retrieval benchmark: answerdesk against the LlamaIndex peer on MTRAG and ClapNQ dev; latency; ingestion.

1. Quality, per dataset (one index per MTRAG domain, so domains don't compete, and one for ClapNQ dev):
   document-level recall@1/3/6/10, MRR@10 and nDCG@10 for answerdesk BM25, vector, hybrid (RRF) and hybrid
   (weighted), and LlamaIndex vector, BM25 and hybrid, for rewritten and last-turn queries; plus cloud+govt
   (the target) micro-averaged over both domains' queries.
2. Latency of answerdesk hybrid with and without the query embedding on one index of the whole MTRAG corpus
   (~25k chunks), 200 queries; the same for the LlamaIndex hybrid on its index of the same corpus.
3. Ingestion on govt, uncached: Ingestor chunks/s against the raw embedder on the same texts, the re-ingest of
   the unchanged corpus, and LlamaIndex's ingest of the same passages.
4. PASS/FAIL against the targets.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/retrieval.py            # `make bench`; ~1 h cold, ~25 min warm
    .venv/bin/python bench/retrieval.py --quick                     # smoke run, about 3 minutes
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from answerdesk.config import ChunkingSettings, RetrievalSettings
from common import (
    ALL_DATASETS,
    CACHE_DIR,
    CHUNK_POOL,
    MTRAG_DOMAINS,
    QUERY_KINDS,
    RESULTS_DIR,
    TARGET,
    TARGET_NAME,
    Dataset,
    PerQuery,
    build_index,
    clean_nans,
    embed_texts_of,
    environment,
    evaluate,
    load_datasets,
    log,
    mean_metrics,
    ranker,
    remove_tree,
    retriever_for,
    scratch_dir,
    shrink,
    to_document,
    write_json,
)
from embed_cache import CachedEmbedder, EmbeddingCache, cached_local_embedder
from report import print_report, target_checks

ANSWERDESK_SYSTEMS = ("answerdesk bm25", "answerdesk vector", "answerdesk hybrid-rrf", "answerdesk hybrid-weighted")
PEER_SYSTEMS = ("llamaindex bm25", "llamaindex vector", "llamaindex hybrid")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--domains",
        default=",".join(ALL_DATASETS),
        help=f"comma-separated datasets for the quality tables (default {','.join(ALL_DATASETS)})",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: small slices, 20 latency queries")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default bench/results/retrieval.json)")
    parser.add_argument("--latency-queries", type=int, default=200, help="queries timed on the big index")
    parser.add_argument("--repeats", type=int, default=2, help="ingestion timings: best of this many runs")
    parser.add_argument("--skip-peer", action="store_true", help="leave out LlamaIndex")
    parser.add_argument("--skip-latency", action="store_true", help="leave out the latency run")
    parser.add_argument("--skip-ingest", action="store_true", help="leave out the ingestion run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a primary target fails")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS_DIR / ("retrieval-quick.json" if args.quick else "retrieval.json")
    if args.quick:
        args.latency_queries = min(args.latency_queries, 20)
        args.repeats = 1
    return args


# -- quality ----------------------------------------------------------------------------------

Scores = dict[str, dict[str, dict[str, PerQuery]]]  # kind -> dataset -> system -> per-query metrics


def quality_answerdesk(
    dataset: Dataset, embedder: CachedEmbedder, workdir: Path, scores: Scores, info: dict[str, Any]
) -> None:
    chunking = ChunkingSettings()
    defaults = RetrievalSettings()
    documents = [to_document(p) for p in dataset.passages]
    embedder.prefill(embed_texts_of(documents, embedder, chunking), label=dataset.name)
    index, report = build_index(workdir / f"{dataset.name}.db", documents, embedder, chunking)
    info["answerdesk_chunks"] = report.chunks_written
    rrf = retriever_for(index, embedder, fusion="rrf", rrf_k=defaults.rrf_k, vector_weight=defaults.vector_weight)
    weighted = retriever_for(index, embedder, fusion="weighted", vector_weight=defaults.vector_weight)
    systems = {
        "answerdesk bm25": ranker(rrf, "bm25"),
        "answerdesk vector": ranker(rrf, "vector"),
        "answerdesk hybrid-rrf": ranker(rrf, "hybrid"),
        "answerdesk hybrid-weighted": ranker(weighted, "hybrid"),
    }
    for kind in _kinds(dataset):
        for system, rank in systems.items():
            scores[kind].setdefault(dataset.name, {})[system] = evaluate(rank, dataset.queries, kind)
    _copy_single_form(dataset, scores, ANSWERDESK_SYSTEMS)
    index.close()


def quality_peer(dataset: Dataset, embed_model: Any, scores: Scores, info: dict[str, Any]) -> None:
    import peer_llamaindex as peer

    nodes = peer.split(dataset.passages)
    embed_model.prefill(peer.embed_texts(nodes), label=f"{dataset.name} (LlamaIndex)")
    index = peer.build(nodes, embed_model)
    info["llamaindex_nodes"] = len(nodes)
    for kind in _kinds(dataset):
        for system in PEER_SYSTEMS:
            retriever = index.retriever(system.split()[1])
            rank = _peer_ranker(peer, retriever)
            scores[kind].setdefault(dataset.name, {})[system] = evaluate(rank, dataset.queries, kind)
    _copy_single_form(dataset, scores, PEER_SYSTEMS)


def _peer_ranker(peer: Any, retriever: Any) -> Any:
    return lambda query: peer.ranking(retriever, query)


def _kinds(dataset: Dataset) -> tuple[Any, ...]:
    # ClapNQ dev has one question form: evaluate it once and report it under both kinds.
    return QUERY_KINDS if dataset.has_rewrites else QUERY_KINDS[:1]


def _copy_single_form(dataset: Dataset, scores: Scores, systems: Sequence[str]) -> None:
    if not dataset.has_rewrites:
        for system in systems:
            scores["lastturn"].setdefault(dataset.name, {})[system] = scores["rewritten"][dataset.name][system]


def summarise(scores: Scores) -> dict[str, Any]:
    """Mean metrics per kind, dataset and system, with the cloud+govt micro-average where both ran."""
    out: dict[str, Any] = {}
    for kind, per_dataset in scores.items():
        out[kind] = {name: {s: mean_metrics(v) for s, v in systems.items()} for name, systems in per_dataset.items()}
        if all(d in per_dataset for d in TARGET):
            merged = {s: [q for d in TARGET for q in per_dataset[d].get(s, [])] for s in per_dataset[TARGET[0]]}
            out[kind][TARGET_NAME] = {s: mean_metrics(v) for s, v in merged.items()}
    return out


def run_quality(
    datasets: dict[str, Dataset], embedder: CachedEmbedder, embed_model: Any, workdir: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    scores: Scores = {kind: {} for kind in QUERY_KINDS}
    info: dict[str, Any] = {}
    for name, dataset in datasets.items():
        entry = info.setdefault(name, {"passages": len(dataset.passages), "queries": len(dataset.queries)})
        log(f"quality: {name} ({len(dataset.passages)} passages, {len(dataset.queries)} queries)")
        quality_answerdesk(dataset, embedder, workdir, scores, entry)
        if embed_model is not None:
            quality_peer(dataset, embed_model, scores, entry)
    return summarise(scores), info


# -- entry point ------------------------------------------------------------------------------


def _select(args: argparse.Namespace) -> tuple[dict[str, Dataset], dict[str, Dataset]]:
    """The datasets of the quality tables, and the MTRAG domains (whole) for latency and ingestion."""
    names = [d.strip() for d in args.domains.split(",") if d.strip()]
    if args.quick and args.domains == ",".join(ALL_DATASETS):
        names = ["govt", "cloud"]
    needed = sorted(set(names) | set(MTRAG_DOMAINS), key=ALL_DATASETS.index)
    loaded = load_datasets(needed)
    if args.quick:
        loaded = {n: shrink(d, queries=15, distractors=150) for n, d in loaded.items()}
    return {n: loaded[n] for n in names}, {n: loaded[n] for n in MTRAG_DOMAINS}


def main(argv: Sequence[str] | None = None) -> int:
    from timing import run_ingest, run_latency

    args = parse_args(argv)
    started = time.perf_counter()
    env = environment()
    quality_sets, mtrag = _select(args)
    cache = EmbeddingCache()
    embedder = cached_local_embedder(cache)
    embed_model = None
    if not args.skip_peer:
        import peer_llamaindex as peer

        embed_model = peer.new_embedding(embed_batch_size=32)
        embed_model.attach_cache(cache)
    workdir = scratch_dir("retrieval")
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    quality, dataset_info = run_quality(quality_sets, embedder, embed_model, workdir)
    seconds["quality"] = time.perf_counter() - t0
    latency: dict[str, Any] = {}
    if not args.skip_latency:
        t0 = time.perf_counter()
        latency = run_latency(mtrag, embedder, embed_model, workdir, n_queries=args.latency_queries)
        seconds["latency"] = time.perf_counter() - t0
    ingest: dict[str, Any] = {}
    if not args.skip_ingest:
        t0 = time.perf_counter()
        ingest = run_ingest(mtrag["govt"], workdir, repeats=args.repeats, peer=not args.skip_peer)
        seconds["ingest"] = time.perf_counter() - t0
    remove_tree(workdir)
    seconds["total"] = time.perf_counter() - started

    targets = target_checks(quality, latency, ingest)
    output = {
        "benchmark": "retrieval",
        "quick": args.quick,
        "notes": NOTES,
        "environment": {**env, "load_average_end": list(os.getloadavg())},
        "datasets": dataset_info,
        "quality": quality,
        "latency": latency,
        "ingest": ingest,
        "targets": targets,
        "cache": {"hits": cache.hits, "misses": cache.misses, "file": str(cache.path.relative_to(CACHE_DIR.parent))},
        "seconds": seconds,
    }
    print_report(output)
    write_json(args.out, clean_nans(output))
    log(f"done in {seconds['total'] / 60:.1f} min")
    failed = [t["name"] for t in targets if t["primary"] and not t["pass"]]
    return 1 if args.strict and failed else 0


NOTES = [
    "Metrics are document-level with binary relevance: retrieved chunks (nodes) are mapped to their passage id "
    f"and deduped (first occurrence). answerdesk is asked for k={CHUNK_POOL} chunks (its candidate pool) and the "
    "first 10 distinct passages are kept; the LlamaIndex retrievers return their top 10 nodes (SentenceSplitter's "
    "1024-token nodes are ~1 per passage; see datasets.*.llamaindex_nodes).",
    "Questions: MTRAG answerable and partial turns with gold passages (unanswerable and conversational turns "
    "skipped); 'rewritten' is the standalone rewrite, 'lastturn' the user's last turn as asked. ClapNQ dev has "
    "one question form, reported under both.",
    "cloud+govt is micro-averaged over the two domains' questions (each domain searched in its own index).",
    "answerdesk: default settings (ChunkingSettings(), RetrievalSettings(): 40 candidates each side, RRF k=30, "
    "vector_weight 0.7; weighted fusion with the same 0.7); one Document per passage, title = the first line.",
    "LlamaIndex: SentenceSplitter() defaults, VectorStoreIndex + HuggingFaceEmbedding(model_name=<packaged "
    "model folder>), BM25Retriever.from_defaults(nodes=...), QueryFusionRetriever([vector, bm25], num_queries=1, "
    "mode='reciprocal_rerank', use_async=False, llm=MockLLM() (never called)), top 10 each. Documents carry the "
    "same title as metadata.",
    "Corpus vectors for the quality runs come from bench/.cache/embeddings.sqlite, keyed by sha256(model key + "
    "exact text); for LlamaIndex through a HuggingFaceEmbedding subclass that overrides only the text (corpus) "
    "embedding calls, keyed by the exact text LlamaIndex embeds (its metadata header included). Query vectors "
    "are always computed, never cached.",
    "Latency is wall time of one search call in this process, after 10 warm-up queries; the machine may be "
    "shared, see environment.load_average.",
]


if __name__ == "__main__":
    raise SystemExit(main())
