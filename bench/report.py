"""Targets and printed tables of the retrieval benchmark (pure functions of its results)."""

from __future__ import annotations

from typing import Any

from common import ALL_DATASETS, QUERY_KINDS, TARGET_NAME, fmt, print_section, table

HYBRID = "answerdesk hybrid-rrf"
PEER_HYBRID = "llamaindex hybrid"
LATENCY_P50_MS = 30.0
LATENCY_P95_MS = 60.0
MAX_OVERHEAD_PCT = 15.0
MIN_SPEEDUP = 20.0
PEER_MARGIN = 1.05
METRIC_LABELS = {"ndcg@10": "nDCG@10", "recall@6": "recall@6"}


def _check(name: str, value: float, threshold: float, *, at_most: bool = False, primary: bool = True) -> dict[str, Any]:
    passed = value <= threshold if at_most else value >= threshold
    return {"name": name, "value": value, "threshold": threshold, "pass": passed, "primary": primary}


def quality_checks(quality: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for kind in QUERY_KINDS:
        systems = quality.get(kind, {}).get(TARGET_NAME)
        if not systems:
            continue
        primary = kind == "rewritten"
        for metric, label in METRIC_LABELS.items():
            hybrid = systems[HYBRID][metric]
            best_single = max(systems["answerdesk bm25"][metric], systems["answerdesk vector"][metric])
            checks.append(
                _check(
                    f"hybrid {label} >= max(BM25-only, vector-only) on {TARGET_NAME} ({kind})",
                    hybrid,
                    best_single,
                    primary=primary,
                )
            )
        if PEER_HYBRID not in systems:
            continue
        for metric, label in METRIC_LABELS.items():
            ratio = systems[HYBRID][metric] / systems[PEER_HYBRID][metric]
            checks.append(
                _check(
                    f"hybrid {label} >= {PEER_MARGIN}x LlamaIndex hybrid on {TARGET_NAME} ({kind}); ratio",
                    ratio,
                    PEER_MARGIN,
                    primary=primary,
                )
            )
    return checks


def target_checks(quality: dict[str, Any], latency: dict[str, Any], ingest: dict[str, Any]) -> list[dict[str, Any]]:
    checks = quality_checks(quality)
    if latency:
        ours = latency["answerdesk"]["with_embedding"]
        size = f"{latency['answerdesk']['chunks']}-chunk index"
        checks.append(
            _check(
                f"hybrid latency p50 (ms, with query embedding, {size})", ours["p50_ms"], LATENCY_P50_MS, at_most=True
            )
        )
        checks.append(
            _check(
                f"hybrid latency p95 (ms, with query embedding, {size})", ours["p95_ms"], LATENCY_P95_MS, at_most=True
            )
        )
    if ingest:
        checks.append(
            _check(
                "ingest pipeline overhead over the raw embedder (%)",
                ingest["overhead_pct"],
                MAX_OVERHEAD_PCT,
                at_most=True,
            )
        )
        checks.append(_check("unchanged re-ingest speed-up (x)", ingest["unchanged_speedup"], MIN_SPEEDUP))
    return checks


# -- printing ---------------------------------------------------------------------------------


def _dataset_order(quality_kind: dict[str, Any]) -> list[str]:
    order = ["cloud", "govt", TARGET_NAME, *[d for d in ALL_DATASETS if d not in ("cloud", "govt")]]
    return [d for d in order if d in quality_kind]


def print_quality(output: dict[str, Any]) -> None:
    headers = ["dataset", "system", "R@1", "R@3", "R@6", "R@10", "MRR@10", "nDCG@10"]
    metrics = ("recall@1", "recall@3", "recall@6", "recall@10", "mrr@10", "ndcg@10")
    for kind in QUERY_KINDS:
        per_dataset = output["quality"].get(kind, {})
        rows = [
            [name, system, *(values[m] for m in metrics)]
            for name in _dataset_order(per_dataset)
            for system, values in per_dataset[name].items()
        ]
        what = "standalone rewrite" if kind == "rewritten" else "last user turn as asked"
        print_section(f"Retrieval quality, {kind} queries ({what}); document level", table(headers, rows))


def print_datasets(output: dict[str, Any]) -> None:
    rows = [
        [name, d["passages"], d["queries"], d.get("answerdesk_chunks", "-"), d.get("llamaindex_nodes", "-")]
        for name, d in output["datasets"].items()
    ]
    headers = ["dataset", "passages", "queries", "answerdesk chunks", "LlamaIndex nodes"]
    print_section("Datasets", table(headers, rows))


def print_latency(latency: dict[str, Any]) -> None:
    if not latency:
        return
    ours = latency["answerdesk"]
    rows = [
        [
            "answerdesk hybrid (RRF)",
            f"{ours['chunks']} chunks",
            ours["with_embedding"]["p50_ms"],
            ours["with_embedding"]["p95_ms"],
            ours["without_embedding"]["p50_ms"],
            ours["without_embedding"]["p95_ms"],
        ]
    ]
    peer = latency.get("llamaindex")
    if peer:
        rows.append(
            [
                "LlamaIndex hybrid (QueryFusionRetriever)",
                f"{peer['nodes']} nodes",
                peer["with_embedding"]["p50_ms"],
                peer["with_embedding"]["p95_ms"],
                peer["without_embedding"]["p50_ms"],
                peer["without_embedding"]["p95_ms"],
            ]
        )
    headers = ["system", "index", "p50 ms", "p95 ms", "p50 ms w/o embed", "p95 ms w/o embed"]
    title = (
        f"Query latency, all MTRAG domains in one index ({latency['passages']} passages), {latency['queries']} queries"
    )
    print_section(title, table(headers, rows, digits=1))
    stages = [[s, ours["stage_p50_ms"][s], ours["stage_p95_ms"][s]] for s in ours["stage_p50_ms"]]
    print_section("answerdesk hybrid: time per stage", table(["stage", "p50 ms", "p95 ms"], stages, digits=2))


def print_ingest(ingest: dict[str, Any]) -> None:
    if not ingest:
        return
    rows = [
        [
            "raw embed_passages, batches of 128 chunks (chunk texts only)",
            ingest["chunks"],
            ingest.get("raw_chunks_only_seconds", float("nan")),
            ingest["chunks"] / ingest["raw_chunks_only_seconds"]
            if "raw_chunks_only_seconds" in ingest
            else float("nan"),
        ],
        [
            "raw embed_passages, batches of 128 chunks with their sentences (what the Ingestor embeds)",
            ingest["chunks"],
            ingest["raw_embed_seconds"],
            ingest["raw_chunks_per_s"],
        ],
        ["answerdesk Ingestor.index", ingest["chunks"], ingest["ingest_seconds"], ingest["ingest_chunks_per_s"]],
        ["answerdesk re-ingest, unchanged", 0, ingest["unchanged_reingest_seconds"], float("nan")],
    ]
    peer = ingest.get("llamaindex")
    if peer:
        s = peer["seconds"]
        rows.append(
            [
                "LlamaIndex split + embed + VectorStoreIndex",
                peer["nodes"],
                s["split"] + s["embed_and_index"],
                peer["nodes_per_s"],
            ]
        )
        rows.append(["LlamaIndex ... + BM25Retriever", peer["nodes"], s["total"], peer["nodes"] / s["total"]])
    headers = ["what", "chunks", "seconds", "chunks/s"]
    title = f"Ingestion, {ingest['dataset']} ({ingest['documents']} passages), best of {ingest['repeats']}"
    body = table(headers, rows, digits=2)
    body += (
        f"\n\npipeline overhead: {ingest['overhead_pct']:.1f} % (Ingestor time / raw embedding time - 1); "
        f"unchanged re-ingest speed-up: {ingest['unchanged_speedup']:.0f}x"
    )
    if "sentence_vectors_extra_pct" in ingest:
        body += (
            f"\nsentence vectors ({ingest['sentences']} sentences) add {ingest['sentence_vectors_extra_pct']:.0f} % "
            "to the embedding work (ingest.sentence_vectors: false leaves them out)"
        )
    print_section(title, body)


def print_targets(targets: list[dict[str, Any]]) -> None:
    lines = []
    for t in targets:
        verdict = "PASS" if t["pass"] else "FAIL"
        note = "" if t["primary"] else "  (secondary)"
        lines.append(f"{verdict}  {t['name']}: {fmt(t['value'])} (target {fmt(t['threshold'])}){note}")
    print_section("Targets", "\n".join(lines))


def print_report(output: dict[str, Any]) -> None:
    print_datasets(output)
    print_quality(output)
    print_latency(output.get("latency", {}))
    print_ingest(output.get("ingest", {}))
    print_targets(output["targets"])
