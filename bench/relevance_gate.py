"""Calibrates the relevance gate: the best cosine similarity retrieval finds, for questions the knowledge
base answers and for questions it does not.

Datasets: ClapNQ dev (300 answerable, 300 unanswerable questions over its 593 passages) and the Parcelwise gold
set (48 answerable, 12 to refuse). For each threshold it reports refusal recall on unanswerable questions and
the false-refusal rate on answerable ones; the chosen threshold maximises recall with false refusals ≤ 0.15.
Then both gates at the shipped settings: the relevance gate, then the packaged answerability model. Prints a
table; writes ``bench/results/relevance_gate.json``.

    .venv/bin/python bench/relevance_gate.py
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from answerdesk.config import ChunkingSettings, Settings
from answerdesk.embed.local import LocalEmbedder
from answerdesk.generate.answerability import features, packaged_model, question_sentence_cosines
from answerdesk.ingest.indexer import Ingestor
from answerdesk.retrieve.hybrid import HybridRetriever
from answerdesk.retrieve.rerank import IdentityReranker
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Document, DocumentMeta, Principal, Section

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ANSWERDESK_BENCH_DATA", ROOT.parent / "shared" / "data")) / "rag" / "clapnq-dev"
MAX_FALSE_REFUSALS = 0.15


def best_cosines(
    retriever: HybridRetriever, questions: list[str], store: SqliteIndex, embedder: LocalEmbedder
) -> list[tuple[float, float]]:
    """Per question: the best cosine (what the relevance gate reads) and the packaged answerability model's
    P(not answerable)."""
    who, model = Principal(subject="bench"), packaged_model()
    out = []
    for q in questions:
        found = retriever.search(q, principal=who, k=6)
        cosines = question_sentence_cosines(q, found.query_vector, found.chunks, store, embedder)
        best = max((c.signals.get("cosine", -1.0) for c in found.chunks), default=-1.0)
        out.append((best, model.score(features(q, found.chunks, cosines))))
    return out


def both_gates(answerable: list[tuple[float, float]], unanswerable: list[tuple[float, float]]) -> dict[str, float]:
    """Refusal recall and false refusals of the shipped settings: relevance gate, then answerability."""
    relevance, model = Settings().generation.relevance_threshold, packaged_model()

    def refused(pair: tuple[float, float]) -> bool:
        return pair[0] < relevance or pair[1] >= model.threshold

    return {
        "relevance_threshold": relevance,
        "answerability_threshold": model.threshold,
        "refusal_recall": sum(map(refused, unanswerable)) / len(unanswerable),
        "false_refusals": sum(map(refused, answerable)) / len(answerable),
    }


def sweep(answerable: list[float], unanswerable: list[float]) -> list[dict[str, float]]:
    rows = []
    for step in range(10, 71):
        t = step / 100
        rows.append(
            {
                "threshold": t,
                "refusal_recall": sum(s < t for s in unanswerable) / len(unanswerable),
                "false_refusals": sum(s < t for s in answerable) / len(answerable),
            }
        )
    return rows


def choose(rows: list[dict[str, float]]) -> dict[str, float]:
    ok = [r for r in rows if r["false_refusals"] <= MAX_FALSE_REFUSALS]
    return max(ok, key=lambda r: (r["refusal_recall"], -r["threshold"]))


def main() -> None:
    embedder = LocalEmbedder()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteIndex(Path(tmp) / "clapnq.db")
        docs = []
        for line in (DATA / "corpus.jsonl").read_text().splitlines():
            p = json.loads(line)
            docs.append(Document(p["id"], f"clapnq/{p['id']}", (Section((), p["text"]),),
                                 DocumentMeta(title=p.get("title", "")), p["id"]))  # fmt: skip
        Ingestor(store, embedder, ChunkingSettings()).index(docs)
        retriever = HybridRetriever(store, embedder, IdentityReranker())
        qs = [json.loads(line) for line in (DATA / "questions.jsonl").read_text().splitlines()]
        results["clapnq-dev"] = (
            best_cosines(retriever, [q["question"] for q in qs if q["answerable"]], store, embedder),
            best_cosines(retriever, [q["question"] for q in qs if not q["answerable"]], store, embedder),
        )
        store.close()
        kb = SqliteIndex(Path(tmp) / "kb.db")
        os.chdir(ROOT)
        Ingestor(kb, embedder, ChunkingSettings()).run(["examples/kb"])
        gold = [json.loads(line) for line in (ROOT / "examples" / "gold.jsonl").read_text().splitlines()]
        retriever = HybridRetriever(kb, embedder, IdentityReranker())
        results["parcelwise-gold"] = (
            best_cosines(retriever, [g["question"] for g in gold if not g["should_refuse"]], kb, embedder),
            best_cosines(retriever, [g["question"] for g in gold if g["should_refuse"]], kb, embedder),
        )
        kb.close()
    report = {}
    print("| dataset | answerable n | unanswerable n | threshold | refusal recall | false refusals |")
    print("|---|---|---|---|---|---|")
    for name, (ans, unans) in results.items():
        rows = sweep([a for a, _ in ans], [u for u, _ in unans])
        best = choose(rows)
        report[name] = {"chosen": best, "sweep": rows, "n_answerable": len(ans), "n_unanswerable": len(unans),
                        "both_gates": both_gates(ans, unans)}  # fmt: skip
        print(f"| {name} | {len(ans)} | {len(unans)} | {best['threshold']:.2f} | {best['refusal_recall']:.3f} | "
              f"{best['false_refusals']:.3f} |")  # fmt: skip
    for t in (0.3, 0.35, 0.4, 0.45, 0.5):
        cells = []
        for name in results:
            row = next(r for r in report[name]["sweep"] if abs(r["threshold"] - t) < 1e-9)
            cells.append(f"{name}: recall {row['refusal_recall']:.3f} / false {row['false_refusals']:.3f}")
        print(f"threshold {t:.2f}: " + "; ".join(cells))
    print("\nShipped settings, both gates (relevance, then the packaged answerability model):")
    for name in results:
        g = report[name]["both_gates"]
        print(f"  {name}: refusal recall {g['refusal_recall']:.3f}, false refusals {g['false_refusals']:.3f}")
    out = ROOT / "bench" / "results" / "relevance_gate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
