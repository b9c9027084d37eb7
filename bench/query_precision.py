"""Questions embedded on the fp32 graph or on its int8 twin (``embedder.query_precision``): what retrieval and
latency each gives, side by side in one run.

- Retrieval, per dataset (MTRAG cloud and govt, rewritten questions; ClapNQ dev): document-level recall@1/3/6/10,
  MRR@10 and nDCG@10 of answerdesk's vector and hybrid retrieval over one index whose passage vectors are fp32
  (as ingestion stores them whatever the setting); only the question's vector differs between the two rows.
- Agreement: cosine between each question's fp32 and int8 vectors (worst, 5th percentile, median).
- Latency: one question at a time, uncached, the two graphs taking turns on each question; p50 and p95.

Prints tables; writes ``bench/results/query_precision.json``.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/query_precision.py     # ~5 min with a warm embedding cache
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from answerdesk.config import ChunkingSettings
from answerdesk.embed.local import LocalEmbedder
from answerdesk.embed.onnx import Precision
from common import (
    CLAPNQ_DEV,
    METRICS,
    RESULTS_DIR,
    build_index,
    environment,
    evaluate,
    latency_summary,
    load_datasets,
    log,
    mean_metrics,
    percentile,
    print_section,
    ranker,
    remove_tree,
    retriever_for,
    scratch_dir,
    table,
    to_document,
    write_json,
)
from embed_cache import CachedEmbedder, EmbeddingCache, cached_local_embedder

DATASETS = ("cloud", "govt", CLAPNQ_DEV)
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cosines = (a * b).sum(axis=1)
    return {"min": float(cosines.min()), "p5": percentile(list(cosines), 5), "median": float(np.median(cosines))}


def latency(embedders: dict[Precision, LocalEmbedder], questions: list[str]) -> dict[str, dict[str, float]]:
    """Each question embedded once per graph, in turns, after a warm-up; never a cached vector."""
    for embedder in embedders.values():
        embedder.embed_queries(questions[:5])
    seconds: dict[Precision, list[float]] = {p: [] for p in embedders}
    for question in questions:
        for precision, embedder in embedders.items():
            started = time.perf_counter()
            embedder.embed_queries([question])
            seconds[precision].append(time.perf_counter() - started)
    return {p: latency_summary(s) for p, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "query_precision.json")
    parser.add_argument("--latency-questions", type=int, default=300)
    args = parser.parse_args()
    cache = EmbeddingCache()
    embedders: dict[Precision, CachedEmbedder] = {
        p: cached_local_embedder(cache, query_precision=p) for p in PRECISIONS
    }
    workdir = scratch_dir("query-precision")
    chunking = ChunkingSettings()
    report: dict[str, Any] = {"environment": environment(), "retrieval": {}, "agreement": {}}
    rows: list[list[object]] = []
    all_questions: list[str] = []
    for name, dataset in load_datasets(DATASETS).items():
        log(f"{name}: indexing {len(dataset.passages)} passages")
        documents = [to_document(p) for p in dataset.passages]
        index, _ = build_index(workdir / f"{name}.db", documents, embedders["fp32"], chunking)
        questions = [q.text("rewritten") for q in dataset.queries]
        all_questions += questions
        report["agreement"][name] = agreement(
            embedders["fp32"].embed_queries(questions), embedders["int8"].embed_queries(questions)
        )
        report["retrieval"][name] = {}
        for precision, embedder in embedders.items():
            search = retriever_for(index, embedder)
            for mode in ("vector", "hybrid"):
                scores = mean_metrics(evaluate(ranker(search, mode), dataset.queries, "rewritten"))
                report["retrieval"][name][f"{mode} {precision}"] = scores
                rows.append([name, mode, precision, len(dataset.queries), *(scores[m] for m in METRICS)])
        index.close()
    log(f"latency: {args.latency_questions} questions, each on both graphs")
    inner = {p: LocalEmbedder(query_precision=p) for p in PRECISIONS}  # no vector cache in the way
    report["latency_ms"] = latency(inner, list(dict.fromkeys(all_questions))[: args.latency_questions])
    print_section("retrieval, rewritten questions", table(["dataset", "mode", "question graph", "n", *METRICS], rows))
    print_section(
        "question vectors, int8 against fp32 (cosine)",
        table(["dataset", "min", "p5", "median"], [[n, *a.values()] for n, a in report["agreement"].items()]),
    )
    print_section(
        "embedding one question, ms",
        table(["graph", "p50", "p95"], [[p, s["p50_ms"], s["p95_ms"]] for p, s in report["latency_ms"].items()]),
    )
    write_json(args.out, report)
    cache.close()
    remove_tree(workdir)


if __name__ == "__main__":
    main()
