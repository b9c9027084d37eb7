"""Choose the default chunking and fusion by measurement.

Sweep 1: chunk size/overlap (embed window = min(size, 256), the model reads 256 tokens) on the dev domains
govt and cloud, rewritten queries: hybrid, vector and BM25 nDCG@10 and recall@6, and chunk counts.
Sweep 2: fusion at the current default chunking: RRF with rrf_k x vector_weight, and weighted fusion.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/chunking.py            # ~1.5 h the first time (embedding), minutes after
    .venv/bin/python bench/chunking.py --quick                      # smoke run on a slice
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from answerdesk.config import ChunkingSettings
from answerdesk.retrieve.hybrid import Mode
from common import (
    QUERY_KINDS,
    RESULTS_DIR,
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
    print_section,
    ranker,
    remove_tree,
    retriever_for,
    scratch_dir,
    shrink,
    table,
    to_document,
    write_json,
)
from embed_cache import CachedEmbedder, EmbeddingCache, cached_local_embedder

CONFIGS: tuple[tuple[int, int], ...] = ((128, 16), (192, 32), (256, 32), (256, 64), (384, 64), (512, 64), (650, 100))
MODES: tuple[Mode, ...] = ("hybrid", "vector", "bm25")
RRF_KS = (10, 30, 60)
WEIGHTS = (0.3, 0.5, 0.7)
DEFAULT = ChunkingSettings()


@dataclass(frozen=True, slots=True)
class FusionSetting:
    fusion: Literal["rrf", "weighted"]
    vector_weight: float
    rrf_k: int = 60

    @property
    def label(self) -> str:
        if self.fusion == "rrf":
            return f"rrf k={self.rrf_k} vw={self.vector_weight}"
        return f"weighted vw={self.vector_weight}"


FUSIONS = tuple(FusionSetting("rrf", w, k) for k in RRF_KS for w in WEIGHTS) + tuple(
    FusionSetting("weighted", w) for w in WEIGHTS
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", default="govt,cloud", help="comma-separated dev domains (default govt,cloud)")
    parser.add_argument(
        "--configs",
        default=",".join(f"{s}:{o}" for s, o in CONFIGS),
        help="comma-separated size:overlap pairs in tokens (default: the seven of the sweep)",
    )
    parser.add_argument("--skip-fusion", action="store_true", help="skip the fusion sweep")
    parser.add_argument("--quick", action="store_true", help="smoke run: govt only, 15 queries, 200 distractors")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default bench/results/chunking.json)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS_DIR / ("chunking-quick.json" if args.quick else "chunking.json")
    return args


def chunking_for(size: int, overlap: int) -> ChunkingSettings:
    return ChunkingSettings(size_tokens=size, overlap_tokens=overlap, embed_tokens=min(size, 256))


def label_of(chunking: ChunkingSettings) -> str:
    return f"{chunking.size_tokens}/{chunking.overlap_tokens}/{chunking.embed_tokens}"


def run_config(
    datasets: dict[str, Dataset], embedder: CachedEmbedder, chunking: ChunkingSettings, workdir: Path
) -> dict[str, Any]:
    """Per domain and combined: metrics of each mode (rewritten queries) and chunk counts."""
    per_mode: dict[Mode, PerQuery] = {m: [] for m in MODES}
    domains: dict[str, Any] = {}
    for name, dataset in datasets.items():
        documents = [to_document(p) for p in dataset.passages]
        embedder.prefill(embed_texts_of(documents, embedder, chunking), label=f"{name} {label_of(chunking)}")
        index, report = build_index(workdir / f"{name}.db", documents, embedder, chunking)
        retriever = retriever_for(index, embedder)
        entry: dict[str, Any] = {"chunks": report.chunks_written, "documents": len(documents)}
        for mode in MODES:
            scores = evaluate(ranker(retriever, mode), dataset.queries, "rewritten")
            per_mode[mode].extend(scores)
            entry[mode] = mean_metrics(scores)
        domains[name] = entry
        index.close()
    combined: dict[str, Any] = {"chunks": sum(d["chunks"] for d in domains.values())}
    combined.update({mode: mean_metrics(scores) for mode, scores in per_mode.items()})
    return {"chunking": chunking.model_dump(), "domains": domains, "combined": combined}


def run_fusion(datasets: dict[str, Dataset], embedder: CachedEmbedder, workdir: Path) -> list[dict[str, Any]]:
    """Hybrid metrics of every fusion setting at the default chunking, rewritten and last-turn queries."""
    indexes = {}
    for name, dataset in datasets.items():
        documents = [to_document(p) for p in dataset.passages]
        embedder.prefill(embed_texts_of(documents, embedder, DEFAULT), label=f"{name} default")
        indexes[name] = build_index(workdir / f"fusion-{name}.db", documents, embedder, DEFAULT)[0]
    results = []
    for setting in FUSIONS:
        row: dict[str, Any] = {"fusion": setting.fusion, "vector_weight": setting.vector_weight}
        if setting.fusion == "rrf":
            row["rrf_k"] = setting.rrf_k
        for kind in QUERY_KINDS:
            scores: PerQuery = []
            for name, dataset in datasets.items():
                retriever = retriever_for(
                    indexes[name],
                    embedder,
                    fusion=setting.fusion,
                    rrf_k=setting.rrf_k,
                    vector_weight=setting.vector_weight,
                )
                scores.extend(evaluate(ranker(retriever, "hybrid"), dataset.queries, kind))
            row[kind] = mean_metrics(scores)
        results.append(row)
        log(f"  {setting.label}: nDCG@10 {row['rewritten']['ndcg@10']:.3f}")
    for index in indexes.values():
        index.close()
    return results


def fusion_label(row: dict[str, Any]) -> str:
    return FusionSetting(row["fusion"], row["vector_weight"], row.get("rrf_k", 60)).label


def best_by_ndcg(rows: Sequence[dict[str, Any]], metrics: Any) -> dict[str, Any]:
    """Highest nDCG@10, then recall@6."""
    return max(rows, key=lambda r: (round(metrics(r)["ndcg@10"], 4), round(metrics(r)["recall@6"], 4)))


def print_configs(configs: Sequence[dict[str, Any]], domain_names: Sequence[str]) -> None:
    headers = ["size/overlap/embed", "chunks", "hybrid nDCG@10", "hybrid R@6", "vector nDCG@10", "vector R@6"]
    headers += ["bm25 nDCG@10", "bm25 R@6"]
    rows = []
    for c in configs:
        s = c["combined"]
        rows.append([_config_label(c), s["chunks"]] + [s[m][k] for m in MODES for k in ("ndcg@10", "recall@6")])
    scope = TARGET_NAME if set(domain_names) == {"cloud", "govt"} else "+".join(domain_names)
    print_section(f"Chunking sweep: {scope}, rewritten queries (micro-averaged)", table(headers, rows))
    per_domain = []
    for c in configs:
        for name in domain_names:
            d = c["domains"][name]
            per_domain.append(
                [_config_label(c), name, d["chunks"]] + [d[m][k] for m in MODES for k in ("ndcg@10", "recall@6")]
            )
    print_section("Chunking sweep per domain", table(["size/overlap/embed", "domain", *headers[1:]], per_domain))


def _config_label(config: dict[str, Any]) -> str:
    c = config["chunking"]
    return f"{c['size_tokens']}/{c['overlap_tokens']}/{c['embed_tokens']}"


def print_fusion(rows: Sequence[dict[str, Any]]) -> None:
    headers = ["fusion", "nDCG@10", "R@6", "R@10", "MRR@10", "last-turn nDCG@10", "last-turn R@6"]
    body = [
        [
            fusion_label(r),
            r["rewritten"]["ndcg@10"],
            r["rewritten"]["recall@6"],
            r["rewritten"]["recall@10"],
            r["rewritten"]["mrr@10"],
            r["lastturn"]["ndcg@10"],
            r["lastturn"]["recall@6"],
        ]
        for r in rows
    ]
    print_section(f"Fusion sweep at chunking {label_of(DEFAULT)}: hybrid, rewritten queries", table(headers, body))


NOTES = [
    "Document-level metrics: answerdesk returns 40 chunks, mapped to document ids and deduped "
    "(first occurrence), cut at 10.",
    "Combined rows are micro-averaged over the domains' queries.",
    "Passage vectors come from bench/.cache/embeddings.sqlite (same model, same exact text); "
    "query vectors are computed per query.",
    "govt and cloud are the dev domains: these numbers choose the defaults, so they are tuned on.",
]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    names = ["govt"] if args.quick else [d.strip() for d in args.domains.split(",") if d.strip()]
    datasets = load_datasets(names)
    if args.quick:
        datasets = {n: shrink(d, queries=15, distractors=200) for n, d in datasets.items()}
    configs = [tuple(int(x) for x in pair.split(":")) for pair in args.configs.split(",") if pair.strip()]
    cache = EmbeddingCache()
    embedder = cached_local_embedder(cache)
    workdir = scratch_dir("chunking")
    timings: dict[str, float] = {}
    output: dict[str, Any] = {
        "benchmark": "chunking",
        "complete": False,
        "quick": args.quick,
        "domains": list(datasets),
        "queries": {n: len(d.queries) for n, d in datasets.items()},
        "query_kind": "rewritten (fusion sweep: rewritten and last-turn)",
        "notes": NOTES,
        "environment": environment(),
        "configs": [],
        "fusion": [],
        "seconds": timings,
    }
    for size, overlap in configs[:2] if args.quick else configs:
        chunking = chunking_for(size, overlap)
        log(f"chunking {label_of(chunking)}")
        t0 = time.perf_counter()
        output["configs"].append(run_config(datasets, embedder, chunking, workdir))
        timings[label_of(chunking)] = time.perf_counter() - t0
        for db in workdir.iterdir():
            db.unlink()
        write_json(args.out, clean_nans(output))  # partial results survive an interrupted run
    if output["configs"]:
        print_configs(output["configs"], list(datasets))
        best = best_by_ndcg(output["configs"], lambda r: r["combined"]["hybrid"])
        output["best_chunking"] = best["chunking"]
        print(f"\nBest chunking by hybrid nDCG@10: {_config_label(best)}")
    if not args.skip_fusion:
        log("fusion sweep")
        t0 = time.perf_counter()
        output["fusion"] = run_fusion(datasets, embedder, workdir)
        timings["fusion"] = time.perf_counter() - t0
        print_fusion(output["fusion"])
        output["best_fusion"] = best_by_ndcg(output["fusion"], lambda r: r["rewritten"])
        print(f"\nBest fusion by hybrid nDCG@10 (rewritten): {fusion_label(output['best_fusion'])}")
    remove_tree(workdir)
    timings["total"] = time.perf_counter() - started
    output.update(complete=True, cache={"hits": cache.hits, "misses": cache.misses})
    write_json(args.out, clean_nans(output))
    log(f"done in {timings['total'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
