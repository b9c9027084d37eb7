"""Retrieval on the bundled Parcelwise help centre against its 60-question gold set.

Ingests ``examples/kb`` into a throwaway store with the real embedder, then reports, per intent and overall,
the hit rate@k (a gold document among the top k), recall@k and MRR for BM25-only, vector-only and hybrid
retrieval. Questions the knowledge base cannot answer are listed with their best fused score, which is what a
relevance gate will have to separate. Prints a table; writes ``bench/results/kb_gold.json``.

    .venv/bin/python bench/kb_gold.py [--k 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from answerdesk.config import ChunkingSettings, RetrievalSettings
from answerdesk.embed.local import LocalEmbedder
from answerdesk.ingest.indexer import Ingestor
from answerdesk.retrieve.hybrid import HybridRetriever, Mode
from answerdesk.retrieve.rerank import IdentityReranker
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Principal

ROOT = Path(__file__).resolve().parents[1]
MODES: tuple[Mode, ...] = ("bm25", "vector", "hybrid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=RetrievalSettings().k)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kb_gold.json")
    args = parser.parse_args()
    gold = [json.loads(line) for line in (ROOT / "examples" / "gold.jsonl").read_text().splitlines() if line.strip()]
    embedder = LocalEmbedder()
    retrieval = RetrievalSettings()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteIndex(Path(tmp) / "kb.db")
        os.chdir(ROOT)
        report = Ingestor(store, embedder, ChunkingSettings()).run(["examples/kb"])
        assert not report.failures, report.failures
        retriever = HybridRetriever(
            store, embedder, IdentityReranker(), rrf_k=retrieval.rrf_k, candidates=retrieval.candidates
        )
        principal = Principal(subject="bench")
        rows: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in MODES}
        refusals = []
        latencies = []
        for item in gold:
            for mode in MODES:
                t0 = time.perf_counter()
                found = retriever.search(item["question"], principal=principal, k=args.k, mode=mode).chunks
                if mode == "hybrid":
                    latencies.append((time.perf_counter() - t0) * 1000)
                docs = list(dict.fromkeys(c.document_id for c in found))
                if item["should_refuse"]:
                    if mode == "hybrid":
                        refusals.append({"id": item["id"], "question": item["question"], "top": docs[:1]})
                    continue
                wanted = set(item["gold_doc_ids"])
                hit = next((i for i, d in enumerate(docs, 1) if d in wanted), None)
                for key in (item["intent"], "ALL"):
                    rows[mode][key].append(
                        [1.0 if hit else 0.0, len(wanted & set(docs)) / len(wanted), 1.0 / hit if hit else 0.0]
                    )
        store.close()
    table = _table(rows, args.k)
    print(table)
    print(f"\nhybrid query latency incl. embedding: p50 {statistics.median(latencies):.1f} ms over {len(latencies)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        mode: {
            intent: {
                f"hit@{args.k}": statistics.fmean(v[0] for v in vals),
                f"recall@{args.k}": statistics.fmean(v[1] for v in vals),
                "mrr": statistics.fmean(v[2] for v in vals),
                "n": len(vals),
            }
            for intent, vals in by_intent.items()
        }
        for mode, by_intent in rows.items()
    }
    args.out.write_text(json.dumps({"k": args.k, "modes": summary, "unanswerable": refusals}, indent=2))
    print(f"wrote {args.out.relative_to(ROOT)}")


def _table(rows: dict[str, dict[str, list[float]]], k: int) -> str:
    intents = [*sorted(k2 for k2 in rows["hybrid"] if k2 != "ALL"), "ALL"]
    head = "| intent | n | " + " | ".join(f"{m} hit@{k} | {m} MRR" for m in MODES) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(MODES))]
    for intent in intents:
        cells = []
        for mode in MODES:
            vals = rows[mode][intent]
            cells += [f"{statistics.fmean(v[0] for v in vals):.3f}", f"{statistics.fmean(v[2] for v in vals):.3f}"]
        lines.append(f"| {intent} | {len(rows['hybrid'][intent])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
