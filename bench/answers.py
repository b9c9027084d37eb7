"""Answer benchmark: the extractive answerer and the local llama.cpp model on MTRAG (cloud, govt) and ClapNQ dev.

1. Quality and latency through the real answer pipeline (retrieval, relevance gate, prompt, model, citation
   checks), one index per dataset built with the default chunking: answer token-F1 and ROUGE-L against the
   reference answer (answerable questions), citation precision (cited passage ∈ gold passages), refusal
   precision/recall with UNANSWERABLE as the positive class and false refusals on answerable questions,
   time to first token and total latency p50/p95 (questions that reached the model), tokens and cost.
   MTRAG questions are asked in their rewritten (standalone) form; CONVERSATIONAL turns are left out.
   The extractive answerer answers every question; the local model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, see
   ``make local-model``) a fixed-seed sample, with fewer sources to keep its prompt short (``--local-k``).
2. The local model alone: time to first token cold (no prefix reuse) against a warm prefix, and against the
   number of sources in the prompt.
3. answerdesk's own overhead around a model call: the pipeline with a FakeLLM (reference answer as reply),
   minus the time spent inside the fake and minus retrieval.
4. Fallback: the primary fails (at once, or after streaming some text); time until the extractive
   answerer's first delta.
5. PASS/FAIL against the targets. Prints tables; writes ``bench/results/answers.json``.

    .venv/bin/python bench/answers.py                      # ~40 min on 2 busy cores (the local sample dominates)
    .venv/bin/python bench/answers.py --skip-local         # extractive, overhead, fallback only: a few minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import string
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rouge_score import rouge_scorer

from answerdesk.config import ChunkingSettings, GenerationSettings, Settings
from answerdesk.errors import ProviderError
from answerdesk.generate._llamacpp_model import DEFAULT_PATH
from answerdesk.generate.answerability import FEATURES, packaged_model
from answerdesk.generate.base import LLM, CallRecord, CompletionRequest, StreamEvent
from answerdesk.generate.extractive import ExtractiveLLM, rank_sentences
from answerdesk.generate.fake import FakeLLM
from answerdesk.generate.llamacpp import LlamaCppLLM
from answerdesk.generate.resilience import CircuitBreakerLLM, resilient_chain
from answerdesk.generate.sentences import split_sentences, strip_citations
from answerdesk.generate.train_answerability import examples, fold_models
from answerdesk.pipeline import AnswerPipeline, ModelChoice
from answerdesk.prompts.registry import TEMPLATES_DIR, PromptRegistry
from answerdesk.retrieve.factory import build_retriever
from answerdesk.retrieve.hybrid import HybridRetriever
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Message, Principal
from common import (
    CLAPNQ_DEV,
    DATA_DIR,
    PRINCIPAL,
    REPO_DIR,
    RESULTS_DIR,
    build_index,
    clean_nans,
    environment,
    latency_summary,
    load_datasets,
    log,
    print_section,
    remove_tree,
    scratch_dir,
    table,
    to_document,
    write_json,
)
from embed_cache import CachedEmbedder, EmbeddingCache, cached_local_embedder

DATASETS = ("cloud", "govt", CLAPNQ_DEV)
LOCAL_GGUF = REPO_DIR / DEFAULT_PATH
#: The false refusals a knowledge base's own calibration may spend (the target allows 0.15).
CALIBRATED_BUDGET = 0.14
TARGETS = {
    "overhead_p50_ms": 10.0,
    "refusal_recall": 0.8,
    "false_refusals": 0.15,
    "citation_precision": 0.9,
    "fallback_s": 1.0,
}
#: Refusals from the template without a model call: nothing relevant, or on the topic but not answered.
GATE_REASONS = ("no_relevant_sources", "not_in_sources")
#: Generous, so that the local model's latency is measured rather than cut off by the default 60 s deadline.
LOCAL_DEADLINE_S = 240.0


# -- questions ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    dataset: str
    question: str
    reference: str
    answerable: bool
    gold: frozenset[str]


def load_items(name: str, *, root: Path = DATA_DIR) -> list[Item]:
    """Every question of ``name`` with its reference answer and answerability (MTRAG: no CONVERSATIONAL)."""
    if name == CLAPNQ_DEV:
        rows = [json.loads(line) for line in (root / CLAPNQ_DEV / "questions.jsonl").read_text().splitlines()]
        return [
            Item(
                str(r["id"]),
                name,
                r["question"].strip(),
                r.get("answer") or "",
                bool(r["answerable"]),
                frozenset(r.get("gold_doc_ids") or ()),
            )
            for r in rows
        ]
    items = []
    for line in (root / "mtrag-human" / "questions.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["domain"] != name or r["answerability"] not in ("ANSWERABLE", "PARTIAL", "UNANSWERABLE"):
            continue
        question = (r.get("rewritten_question") or r["question"]).strip()
        answerable = r["answerability"] != "UNANSWERABLE"
        items.append(Item(r["id"], name, question, r.get("answer") or "", answerable, frozenset(r["gold_doc_ids"])))
    return items


def sample(items: Sequence[Item], per_group: int, seed: int) -> list[Item]:
    """``per_group`` answerable and ``per_group`` unanswerable questions, drawn with a fixed seed."""
    rng = random.Random(seed)
    out: list[Item] = []
    for answerable in (True, False):
        group = [i for i in items if i.answerable is answerable]
        out += rng.sample(group, min(per_group, len(group)))
    return out


# -- metrics (pure) -------------------------------------------------------------------------------------

_ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_tokens(text: str) -> list[str]:
    """SQuAD-style: citations dropped, lower case, punctuation and articles removed."""
    text = strip_citations(text).lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return _ARTICLES.sub(" ", text).split()


def token_f1(answer: str, reference: str) -> float:
    got, want = normalize_tokens(answer), normalize_tokens(reference)
    common = sum((Counter(got) & Counter(want)).values())
    if not got or not want or not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def rouge_l(answer: str, reference: str) -> float:
    return float(_ROUGE.score(reference, strip_citations(answer))["rougeL"].fmeasure)


# -- the model layer the pipeline sees ------------------------------------------------------------------


class TimedLLM:
    """Passes calls through, adding up the seconds spent inside the wrapped model (its first delta included)."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.failed_at: float | None = None

    @property
    def provider(self) -> str:
        return self.inner.provider

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def context_window(self) -> int:
        return self.inner.context_window

    async def complete(self, request: CompletionRequest) -> Any:
        started = time.perf_counter()
        try:
            return await self.inner.complete(request)
        finally:
            self.seconds += time.perf_counter() - started

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        events = aiter(self.inner.stream(request))
        while True:
            started = time.perf_counter()
            try:
                event = await anext(events)
            except StopAsyncIteration:
                self.seconds += time.perf_counter() - started
                return
            except ProviderError:
                self.failed_at = time.perf_counter()
                self.seconds += self.failed_at - started
                raise
            self.seconds += time.perf_counter() - started
            yield event


class BenchModels:
    """A :class:`ModelLayer` over given providers: each breaker-wrapped once, a fresh resilient chain per call,
    exactly as ``ConfiguredModels`` builds them from settings."""

    def __init__(self, chain: Sequence[LLM], settings: GenerationSettings) -> None:
        self._settings = settings
        self._chain = [CircuitBreakerLLM(m, failures=5, cooldown_s=30.0) for m in chain]

    def choose(self, question: str, *, principal: Principal, route: str | None = None) -> ModelChoice:
        record = CallRecord()
        llm = resilient_chain(self._chain, self._settings.resilience, record=record)
        return ModelChoice(route="bench", reason="benchmark", llm=llm, record=record)


def retriever(index: SqliteIndex, embedder: CachedEmbedder, settings: Settings) -> HybridRetriever:
    return build_retriever(index, embedder, settings)


# -- one question through the pipeline ------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    id: str
    dataset: str
    answerable: bool
    refused: bool = False
    refusal_reason: str | None = None
    called_model: bool = False
    text: str = ""
    cited: list[str] = field(default_factory=list)
    gold: list[str] = field(default_factory=list)
    #: Passages retrieved (deduped, best first); the best cosine among them (what the relevance gate reads);
    #: the extractive answerer's best sentence coverage of the question over them (what it refuses on).
    sources: list[str] = field(default_factory=list)
    relevance: float = -1.0
    coverage: float = 0.0
    #: P(not answerable) from the answerability gate (None: not computed, e.g. refused on relevance first).
    answerability: float | None = None
    f1: float = 0.0
    rouge_l: float = 0.0
    ttft_s: float | None = None
    total_s: float = 0.0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    error: str | None = None


async def ask(pipeline: AnswerPipeline, item: Item) -> Row:
    row = Row(item.id, item.dataset, item.answerable, gold=sorted(item.gold))
    started = time.perf_counter()
    try:
        async for event in pipeline.stream(item.question, principal=PRINCIPAL):
            if event.kind == "delta" and row.ttft_s is None:
                row.ttft_s = time.perf_counter() - started
            answer = event.answer
            if answer is not None:
                row.refused, row.refusal_reason = answer.refused, answer.refusal_reason
                row.called_model = answer.refusal_reason not in GATE_REASONS
                row.answerability = next(
                    (float(f.split(":", 1)[1]) for f in answer.flags if f.startswith("answerability:")), None
                )
                row.text = answer.text
                row.cited = [c.document_id for c in answer.citations]
                row.sources = list(dict.fromkeys(c.document_id for c in answer.sources))
                row.relevance = max((c.signals.get("cosine", -1.0) for c in answer.sources), default=-1.0)
                ranked = rank_sentences(item.question, [(n, c.text) for n, c in enumerate(answer.sources, 1)])
                row.coverage = ranked[0].score if ranked else 0.0
                row.input_tokens, row.output_tokens = answer.usage.input_tokens, answer.usage.output_tokens
                row.cached_input_tokens = answer.usage.cached_input_tokens
                row.cost_usd = answer.cost_usd
    except ProviderError as exc:
        row.error, row.called_model = str(exc)[:300], True
    row.total_s = time.perf_counter() - started
    if item.answerable and row.error is None:
        row.f1, row.rouge_l = token_f1(row.text, item.reference), rouge_l(row.text, item.reference)
    return row


def summarize(rows: Sequence[Row]) -> dict[str, Any]:
    answerable = [r for r in rows if r.answerable]
    unanswerable = [r for r in rows if not r.answerable]
    refused = [r for r in rows if r.refused]
    cited = [(d, r) for r in answerable if not r.refused for d in r.cited]
    called = [r for r in rows if r.called_model and r.error is None]
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return {
        "n": len(rows),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "n_model_calls": len(called),
        "errors": sum(r.error is not None for r in rows),
        "token_f1": mean([r.f1 for r in answerable]),
        "rouge_l": mean([r.rouge_l for r in answerable]),
        "citation_precision": mean([float(d in r.gold) for d, r in cited]),
        # The same, only where retrieval put a gold passage among the sources: what the answerer controls.
        "citation_precision_gold_retrieved": mean(
            [float(d in r.gold) for d, r in cited if set(r.sources) & set(r.gold)]
        ),
        "gold_retrieved": mean([float(bool(set(r.sources) & set(r.gold))) for r in answerable]),
        "answers_with_citation": mean([float(bool(r.cited)) for r in answerable if not r.refused]),
        "refusal_recall": mean([float(r.refused) for r in unanswerable]),
        "refusal_precision": mean([float(not r.answerable) for r in refused]),
        "false_refusals": mean([float(r.refused) for r in answerable]),
        "gate_refusals": sum(r.refusal_reason == "no_relevant_sources" for r in rows),
        "answerability_refusals": sum(r.refusal_reason == "not_in_sources" for r in rows),
        "ttft": latency_summary([r.ttft_s for r in called if r.ttft_s is not None]),
        "total": latency_summary([r.total_s for r in called]),
        "input_tokens": mean([r.input_tokens for r in called]),
        "cached_input_tokens": mean([r.cached_input_tokens for r in called]),
        "output_tokens": mean([r.output_tokens for r in called]),
        "cost_usd": mean([r.cost_usd for r in called]),
    }


def refusal_sweep(rows: dict[str, list[Row]], relevance_threshold: float) -> list[dict[str, float]]:
    """What other answerability thresholds would have given, predicted from each answer's recorded signals:
    refused on relevance as in the run, or P(not answerable) at or above the threshold, or refused by the
    answerer itself (as in the run; an answer the gate refused is assumed answered below its threshold)."""
    out = []
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):

        def refused(r: Row, t: float = threshold) -> bool:
            if r.relevance < relevance_threshold:
                return True
            if r.answerability is not None and r.answerability >= t:
                return True
            return r.refused and r.refusal_reason not in GATE_REASONS

        entry: dict[str, float] = {"answerability_threshold": threshold}
        for name, group in rows.items():
            answerable = [r for r in group if r.answerable]
            unanswerable = [r for r in group if not r.answerable]
            entry[f"{name} refusal recall"] = sum(map(refused, unanswerable)) / max(1, len(unanswerable))
            entry[f"{name} false refusals"] = sum(map(refused, answerable)) / max(1, len(answerable))
        out.append(entry)
    return out


# -- experiments ----------------------------------------------------------------------------------------


@dataclass
class Corpus:
    name: str
    index: SqliteIndex
    items: list[Item]


def build_corpora(embedder: CachedEmbedder, workdir: Path, names: Sequence[str]) -> list[Corpus]:
    datasets = load_datasets(names)
    out = []
    for name in names:
        started = time.perf_counter()
        documents = [to_document(p) for p in datasets[name].passages]
        index, report = build_index(
            workdir / f"{name}.db", documents, embedder, ChunkingSettings(), sentence_vectors=True
        )
        log(f"{name}: {report.chunks_written} chunks indexed in {time.perf_counter() - started:.0f}s")
        out.append(Corpus(name, index, load_items(name)))
    return out


def pipeline_for(
    corpus: Corpus, embedder: CachedEmbedder, llm: LLM, settings: Settings, *, k: int, deadline_s: float = 60.0
) -> AnswerPipeline:
    generation = settings.generation.model_copy(
        update={"resilience": settings.generation.resilience.model_copy(update={"deadline_s": deadline_s})}
    )
    return AnswerPipeline(
        retriever(corpus.index, embedder, settings),
        PromptRegistry(TEMPLATES_DIR),
        BenchModels([llm], generation),
        embedder,
        generation,
        k=k,
        vectors=corpus.index,
    )


async def run_answers(
    corpora: Sequence[Corpus],
    embedder: CachedEmbedder,
    llm: LLM,
    settings: Settings,
    *,
    k: int,
    items: dict[str, list[Item]] | None = None,
    deadline_s: float = 60.0,
    label: str,
) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for corpus in corpora:
        pipeline = pipeline_for(corpus, embedder, llm, settings, k=k, deadline_s=deadline_s)
        chosen = items[corpus.name] if items is not None else corpus.items
        rows = []
        for n, item in enumerate(chosen, 1):
            rows.append(await ask(pipeline, item))
            if label.startswith("local"):
                r = rows[-1]
                log(
                    f"  {label} {corpus.name} {n}/{len(chosen)}: ttft {r.ttft_s or 0:.1f}s total {r.total_s:.1f}s "
                    f"refused={r.refused} cited={len(r.cited)} err={r.error is not None}"
                )
        out[corpus.name] = rows
        log(f"{label} {corpus.name}: {len(rows)} questions")
    return out


async def run_calibrated(
    corpus: Corpus, embedder: CachedEmbedder, llm: LLM, settings: Settings, workdir: Path
) -> tuple[dict[str, list[Row]], dict[str, Any]]:
    """ClapNQ dev answered with an answerability model calibrated to it: all features, the product's false
    refusal budget, and each question answered by the model of the fold it is not in (trained by
    ``train_answerability`` on the other four folds, its threshold included)."""
    rows = examples(DATA_DIR / CLAPNQ_DEV, settings, embedder, log=log)  # the embedding cache is not thread-safe
    models = fold_models(rows, names=FEATURES, budget=CALIBRATED_BUDGET)
    fold = {r.id.split(":", 1)[1]: r.fold for r in rows}
    answered: list[Row] = []
    for f, model in enumerate(models):
        path = workdir / f"answerability-fold{f}.json"
        model.save(path)
        generation = settings.generation.model_copy(update={"answerability_model": path})
        fold_settings = settings.model_copy(update={"generation": generation})
        items = [i for i in corpus.items if fold[i.id] == f]
        per_fold = await run_answers(
            [corpus],
            embedder,
            llm,
            fold_settings,
            k=settings.retrieval.k,
            items={corpus.name: items},
            label=f"fold {f}",
        )
        answered += per_fold[corpus.name]
    order = {item.id: n for n, item in enumerate(corpus.items)}
    answered.sort(key=lambda r: order[r.id])
    info = {
        "features": list(FEATURES),
        "false_refusal_budget": CALIBRATED_BUDGET,
        "fold_thresholds": [m.threshold for m in models],
        "fold_out_of_fold": [m.report["out_of_fold"] for m in models],
    }
    return {corpus.name: answered}, info


async def overhead(corpus: Corpus, embedder: CachedEmbedder, settings: Settings, n: int) -> dict[str, Any]:
    """Pipeline time minus retrieval minus the time inside a FakeLLM, over ``n`` answerable questions."""
    # Every question calls the model; the answerability gate still runs (its threshold is never reached).
    generation = settings.generation.model_copy(update={"relevance_threshold": -1.0, "answerability_threshold": 1.0})
    items = [i for i in corpus.items if i.answerable][:n]
    own, with_retrieval, inside = [], [], []
    parts: dict[str, list[float]] = {
        "answerability": [], "prompt": [], "model call minus the fake": [], "assemble": [], "rest": []
    }  # fmt: skip
    # Built once, as a server does; only the scripted model changes per question.
    search, registry = retriever(corpus.index, embedder, settings), PromptRegistry(TEMPLATES_DIR)
    await asyncio.to_thread(search.search, items[0].question, principal=PRINCIPAL, k=1)  # warm the index
    for item in items:
        reply = " ".join(f"{strip_citations(s)} [1]" for s in split_sentences(item.reference)[:3]) or "Yes [1]."
        fake = TimedLLM(FakeLLM([reply], chunk_chars=12))
        pipeline = AnswerPipeline(
            search,
            registry,
            BenchModels([fake], generation),
            embedder,
            generation,
            k=settings.retrieval.k,
            vectors=corpus.index,
        )
        answer = await pipeline.answer(item.question, principal=PRINCIPAL)
        total, retrieve = answer.timings["total"], answer.timings["retrieve"]
        own.append(total - retrieve - fake.seconds)
        t = answer.timings
        parts["answerability"].append(t["answerability"])
        parts["prompt"].append(t["prompt"])
        parts["model call minus the fake"].append(t["model"] - fake.seconds)
        parts["assemble"].append(t["assemble"])
        parts["rest"].append(total - retrieve - t["answerability"] - t["prompt"] - t["model"] - t["assemble"])
        with_retrieval.append(total - fake.seconds)
        inside.append(fake.seconds)
    return {
        "n": len(items),
        "own": latency_summary(own),
        "own_with_retrieval": latency_summary(with_retrieval),
        "inside_fake": latency_summary(inside),
        "parts": {name: latency_summary(values) for name, values in parts.items()},
    }


async def fallback(corpus: Corpus, embedder: CachedEmbedder, settings: Settings, runs: int) -> dict[str, Any]:
    """Seconds from the primary's failure to the extractive answerer's first delta, per scenario."""
    registry = PromptRegistry(TEMPLATES_DIR)
    template = registry.resolve(settings.generation.prompt)
    item = next(i for i in corpus.items if i.answerable)
    chunks = retriever(corpus.index, embedder, settings).search(item.question, principal=PRINCIPAL, k=6).chunks
    rendered = template.render(
        question=item.question,
        history=[],
        refusal=settings.generation.refusal,
        sources=[{"number": n, "title": c.title, "heading": "", "text": c.text} for n, c in enumerate(chunks, 1)],
    )
    messages = (Message("system", rendered.system), Message("user", rendered.user))
    scenarios = {
        "fails before any text (503, retried)": lambda: FakeLLM([ProviderError("overloaded", status=503)]),
        "breaks mid-stream": lambda: FakeLLM(["Partial answer that stops half way " * 3], fail_after_chars=40),
    }
    out: dict[str, Any] = {}
    for name, make in scenarios.items():
        first_failure, last_failure = [], []
        for _ in range(runs):
            primary = TimedLLM(make())
            record = CallRecord()
            chain = resilient_chain(
                [primary, ExtractiveLLM(refusal=settings.generation.refusal)],
                settings.generation.resilience,
                record=record,
            )
            request = CompletionRequest(messages, deadline=time.monotonic() + 60.0, timeout_s=60.0)
            started = time.perf_counter()
            switched = False
            async for event in chain.stream(request):
                if event.kind == "switch":
                    switched = True
                if event.kind == "delta" and (switched or record.fallbacks) and primary.failed_at is not None:
                    now = time.perf_counter()
                    first_failure.append(now - started)
                    last_failure.append(now - primary.failed_at)
                    break
        out[name] = {
            "from_call_start": latency_summary(first_failure),
            "from_last_primary_failure": latency_summary(last_failure),
            "max_from_call_start_ms": max(first_failure) * 1000 if first_failure else float("nan"),
        }
    return out


async def local_model_experiments(
    llm: LlamaCppLLM,
    corpus: Corpus,
    embedder: CachedEmbedder,
    settings: Settings,
    *,
    questions: int,
    sources_questions: int,
) -> dict[str, Any]:
    """TTFT with no prefix reuse vs a warm prefix, and TTFT (nothing reused) by number of sources; the model alone."""
    template = PromptRegistry(TEMPLATES_DIR).resolve(settings.generation.prompt)
    search = retriever(corpus.index, embedder, settings)
    items = [i for i in corpus.items if i.answerable][:questions]

    def messages(item: Item, k: int) -> tuple[Message, Message]:
        chunks = search.search(item.question, principal=PRINCIPAL, k=k).chunks
        rendered = template.render(
            question=item.question,
            history=[],
            refusal=settings.generation.refusal,
            sources=[{"number": n, "title": c.title, "heading": "", "text": c.text} for n, c in enumerate(chunks, 1)],
        )
        return Message("system", rendered.system), Message("user", rendered.user)

    async def ttft(model: LlamaCppLLM, msgs: Sequence[Message]) -> dict[str, float]:
        started = time.perf_counter()
        first = None
        usage = None
        async for event in model.stream(CompletionRequest(msgs, max_tokens=4, timeout_s=LOCAL_DEADLINE_S)):
            if event.kind == "delta" and first is None:
                first = time.perf_counter() - started
            if event.kind == "finish":
                usage = event.usage
        assert usage is not None
        evaluated = usage.input_tokens - usage.cached_input_tokens
        return {
            "ttft_s": first or float("nan"),
            "prompt_tokens": usage.input_tokens,
            "cached_tokens": usage.cached_input_tokens,
            "ms_per_evaluated_token": (first or float("nan")) * 1000 / max(1, evaluated),
        }

    started = time.perf_counter()
    await llm.load()
    load_s = time.perf_counter() - started
    no_reuse = LlamaCppLLM(gguf_path=LOCAL_GGUF, context_window=llm.context_window, cache_prompt=False)
    await no_reuse.load()
    # The first call after loading is cold by definition; a later question then finds the prefix warm.
    prime = await ttft(llm, messages(corpus.items[-1], 1))
    log(f"  first call after load: {prime}")
    # Pairs on the same prompt, the order alternating so that a drift in the machine's load hits both modes.
    prefix: dict[str, list[dict[str, float]]] = {"no prefix reuse": [], "warm prefix": []}
    for n, item in enumerate(items):
        msgs = messages(item, 2)
        runs = [("no prefix reuse", no_reuse), ("warm prefix", llm)]
        for mode, model in runs if n % 2 == 0 else runs[::-1]:
            prefix[mode].append(await ttft(model, msgs))
        log(f"  prefix: {prefix['no prefix reuse'][-1]} vs {prefix['warm prefix'][-1]}")
    # Context size: a fresh question per size, with nothing reused, so the prompt is evaluated in full.
    by_k: dict[int, list[dict[str, float]]] = {}
    others = [i for i in corpus.items if i.answerable][questions:]
    for n, k in enumerate((1, 2, 3, 6)):
        by_k[k] = [await ttft(no_reuse, messages(item, k)) for item in others[n::4][:sources_questions]]
        log(f"  k={k}: {by_k[k]}")
    del no_reuse
    return {"load_s": load_s, "first_call": prime, "prefix": prefix, "by_sources": by_k}


# -- report ---------------------------------------------------------------------------------------------


def quality_rows(results: dict[str, dict[str, Any]]) -> list[list[object]]:
    rows = []
    for system, per in results.items():
        for name, s in per.items():
            rows.append(
                [
                    system,
                    name,
                    s["n"],
                    s["token_f1"],
                    s["rouge_l"],
                    s["citation_precision"],
                    s["citation_precision_gold_retrieved"],
                    s["refusal_recall"],
                    s["refusal_precision"],
                    s["false_refusals"],
                    s["ttft"]["p50_ms"],
                    s["ttft"]["p95_ms"],
                    s["total"]["p50_ms"],
                    s["total"]["p95_ms"],
                    s["input_tokens"],
                    s["output_tokens"],
                    s["cost_usd"],
                ]
            )
    return rows


QUALITY_HEADERS = (
    "system",
    "dataset",
    "n",
    "token F1",
    "ROUGE-L",
    "citation prec.",
    "cit. prec. if gold retrieved",
    "refusal recall",
    "refusal prec.",
    "false refusals",
    "TTFT p50 ms",
    "TTFT p95 ms",
    "total p50 ms",
    "total p95 ms",
    "in tok",
    "out tok",
    "USD",
)


def checks(report: dict[str, Any]) -> list[list[object]]:
    ext = report["systems"]["extractive k=6"]
    over = report["overhead"]["own"]["p50_ms"]
    calibrated = next(v for k, v in report["systems"].items() if "calibrated" in k)[CLAPNQ_DEV]
    packaged = ext[CLAPNQ_DEV]
    cited = {name: s["citation_precision"] for name, s in ext.items()}
    worst = min(cited, key=lambda name: cited[name])
    fb = max(v["from_call_start"]["p95_ms"] for v in report["fallback"].values()) / 1000
    rows: list[list[object]] = [
        ["overhead around a model call p50 (ms)", over, f"≤ {TARGETS['overhead_p50_ms']}",
         over <= TARGETS["overhead_p50_ms"]],
        ["refusal recall, clapnq-dev, answerability calibrated on it (5-fold)", calibrated["refusal_recall"],
         f"≥ {TARGETS['refusal_recall']}", calibrated["refusal_recall"] >= TARGETS["refusal_recall"]],
        ["false refusals, clapnq-dev, answerability calibrated on it (5-fold)", calibrated["false_refusals"],
         f"≤ {TARGETS['false_refusals']}", calibrated["false_refusals"] <= TARGETS["false_refusals"]],
        ["refusal recall, clapnq-dev, packaged answerability", packaged["refusal_recall"], "(reference)", None],
        ["false refusals, clapnq-dev, packaged answerability", packaged["false_refusals"], "(reference)", None],
        ["citation precision, extractive, clapnq-dev", cited[CLAPNQ_DEV], f"≥ {TARGETS['citation_precision']}",
         cited[CLAPNQ_DEV] >= TARGETS["citation_precision"]],
        [f"citation precision, extractive, worst dataset ({worst})", cited[worst],
         f"≥ {TARGETS['citation_precision']}", cited[worst] >= TARGETS["citation_precision"]],
        ["fallback to extractive, p95 of the worst scenario (s)", fb, f"≤ {TARGETS['fallback_s']}",
         fb <= TARGETS["fallback_s"]],
    ]  # fmt: skip
    local = report["systems"].get("local k=3") or report["systems"].get("local k=3 [earlier run]")
    if local and CLAPNQ_DEV in local:
        lc = local[CLAPNQ_DEV]
        rows.append(
            [
                "refusal recall, clapnq-dev, local (sample)",
                lc["refusal_recall"],
                "≥ 0.8",
                lc["refusal_recall"] >= TARGETS["refusal_recall"],
            ]
        )
        rows.append(
            [
                "false refusals, clapnq-dev, local (sample)",
                lc["false_refusals"],
                "≤ 0.15",
                lc["false_refusals"] <= TARGETS["false_refusals"],
            ]
        )
        cp = min(s["citation_precision"] for s in local.values())
        rows.append(["citation precision, local (worst dataset)", cp, "≥ 0.9", cp >= 0.9])
    return [[*r[:3], "—" if r[3] is None else "PASS" if r[3] else "FAIL"] for r in rows]


def print_report(report: dict[str, Any]) -> None:
    print_section("Answers (through the pipeline)", table(QUALITY_HEADERS, quality_rows(report["systems"])))
    o = report["overhead"]
    print_section(
        "answerdesk's own time around a model call (FakeLLM)",
        table(
            ("measure", "n", "p50 ms", "p95 ms", "mean ms"),
            [
                [name, o[key]["n"], o[key]["p50_ms"], o[key]["p95_ms"], o[key]["mean_ms"]]
                for name, key in (
                    ("own (no retrieval)", "own"),
                    ("own incl. retrieval", "own_with_retrieval"),
                    ("inside the fake", "inside_fake"),
                )
            ]
            + [
                [f"  of which {name}", v["n"], v["p50_ms"], v["p95_ms"], v["mean_ms"]] for name, v in o["parts"].items()
            ],
        ),
    )
    print_section(
        "Fallback to extractive",
        table(
            (
                "primary failure",
                "runs",
                "first delta p50 ms (from call)",
                "p95 ms",
                "max ms",
                "p50 ms (from last failure)",
            ),
            [
                [
                    name,
                    v["from_call_start"]["n"],
                    v["from_call_start"]["p50_ms"],
                    v["from_call_start"]["p95_ms"],
                    v["max_from_call_start_ms"],
                    v["from_last_primary_failure"]["p50_ms"],
                ]
                for name, v in report["fallback"].items()
            ],
        ),
    )
    local = report.get("local_model")
    if local:
        rows = []
        for mode, runs in local["prefix"].items():
            for r in runs:
                rows.append(
                    [mode, r["prompt_tokens"], r["cached_tokens"], r["ttft_s"] * 1000, r["ms_per_evaluated_token"]]
                )
        for mode, runs in local["prefix"].items():
            ttfts = sorted(r["ttft_s"] * 1000 for r in runs)
            rows.append([f"{mode}: median", "", "", (ttfts[(len(ttfts) - 1) // 2] + ttfts[len(ttfts) // 2]) / 2, ""])
        print_section(
            f"Local model: prefix reuse (load {local['load_s']:.1f}s; first call after load: "
            f"{local['first_call']['prompt_tokens']} prompt tokens, TTFT {local['first_call']['ttft_s']:.1f}s)",
            table(("mode", "prompt tokens", "cached tokens", "TTFT ms", "ms per evaluated token"), rows),
        )
        rows = []
        for k, runs in local["by_sources"].items():
            for r in runs:
                rows.append([k, r["prompt_tokens"], r["ttft_s"] * 1000, r["ms_per_evaluated_token"]])
        print_section(
            "Local model: time to first token by sources in the prompt (nothing reused)",
            table(("sources", "prompt tokens", "TTFT ms", "ms per token"), rows),
        )
    sweep = report["refusal_sweep"]
    cols = [k for k in sweep[0] if k.endswith("refusal recall") or k.endswith("false refusals")]
    print_section(
        "Refusal settings (extractive, predicted from recorded signals; "
        f"{report['refusal_sweep_agreement']:.1%} agree with the run)",
        table(
            ("answerability threshold", *cols),
            [[e["answerability_threshold"], *(e[c] for c in cols)] for e in sweep],
        ),
    )
    print_section("Targets", table(("target", "measured", "wanted", "result"), checks(report)))


# -- main -----------------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> None:
    # Read first: this run writes its results (possibly to the same file) before it is done.
    earlier = json.loads(args.local_from.read_text()) if args.skip_local and args.local_from else None
    settings = Settings()
    if args.query_precision:
        settings = settings.model_copy(
            update={"embedder": settings.embedder.model_copy(update={"query_precision": args.query_precision})}
        )
    cache = EmbeddingCache()
    embedder = cached_local_embedder(cache, query_precision=settings.embedder.query_precision)
    workdir = scratch_dir("answers")
    names = list(DATASETS)
    corpora = build_corpora(embedder, workdir, names)
    if args.quick:
        for c in corpora:
            c.items = sample(c.items, 20, args.seed)
    out_path = args.out or RESULTS_DIR / ("answers-quick.json" if args.quick else "answers.json")
    report: dict[str, Any] = {
        "environment": environment(),
        "settings": {
            "relevance_threshold": settings.generation.relevance_threshold,
            "k": settings.retrieval.k,
            "max_output_tokens": settings.generation.max_output_tokens,
            "seed": args.seed,
            "query_precision": settings.embedder.query_precision,
            "local_sample_per_group": args.local_sample,
            "local_k": args.local_k,
        },
        "systems": {},
    }
    raw: dict[str, dict[str, list[Row]]] = {}
    extractive = ExtractiveLLM(refusal=settings.generation.refusal)
    for k in (settings.retrieval.k, args.local_k):
        name = f"extractive k={k}"
        raw[name] = await run_answers(corpora, embedder, extractive, settings, k=k, label=name)
        report["systems"][name] = {d: summarize(rows) for d, rows in raw[name].items()}
    default_rows = raw[f"extractive k={settings.retrieval.k}"]
    gate = settings.generation.relevance_threshold
    report["refusal_sweep"] = refusal_sweep(default_rows, gate)
    shipped = packaged_model().threshold
    agree = [
        (
            r.relevance < gate
            or (r.answerability is not None and r.answerability >= shipped)
            or (r.refused and r.refusal_reason not in GATE_REASONS)
        )
        == r.refused
        for group in default_rows.values()
        for r in group
    ]
    report["refusal_sweep_agreement"] = sum(agree) / len(agree)
    name = f"extractive k={settings.retrieval.k}, answerability calibrated on clapnq-dev (5-fold)"
    clap = next(c for c in corpora if c.name == CLAPNQ_DEV)
    raw[name], report["calibration"] = await run_calibrated(clap, embedder, extractive, settings, workdir)
    report["systems"][name] = {CLAPNQ_DEV: summarize(raw[name][CLAPNQ_DEV])}
    report["overhead"] = await overhead(clap, embedder, settings, n=args.overhead_n)
    report["fallback"] = await fallback(clap, embedder, settings, runs=args.fallback_runs)
    report["cache"] = {"hits": cache.hits, "misses": cache.misses}
    write_json(
        out_path,
        clean_nans(
            {**report, "rows": {k: {d: [asdict(r) for r in v] for d, v in per.items()} for k, per in raw.items()}}
        ),
    )
    if not args.skip_local:
        llm = LlamaCppLLM(gguf_path=LOCAL_GGUF, model="qwen2.5-coder-1.5b-instruct-q4_k_m", context_window=4096)
        report["local_model"] = await local_model_experiments(
            llm, clap, embedder, settings, questions=2, sources_questions=1
        )
        chosen = {c.name: sample(c.items, args.local_sample, args.seed) for c in corpora}
        name = f"local k={args.local_k}"
        raw[name] = await run_answers(
            corpora, embedder, llm, settings, k=args.local_k, items=chosen, deadline_s=LOCAL_DEADLINE_S, label=name
        )
        report["systems"][name] = {d: summarize(rows) for d, rows in raw[name].items()}
        # The extractive answerer on exactly the local model's sample, for a like-for-like comparison.
        name = f"extractive k={args.local_k} (local sample)"
        raw[name] = await run_answers(corpora, embedder, extractive, settings, k=args.local_k, items=chosen, label=name)
        report["systems"][name] = {d: summarize(rows) for d, rows in raw[name].items()}
    elif earlier is not None:
        carry_local(report, earlier, args.local_from)
    report["targets"] = checks(report)
    print_report(report)
    write_json(
        out_path,
        clean_nans(
            {**report, "rows": {k: {d: [asdict(r) for r in v] for d, v in per.items()} for k, per in raw.items()}}
        ),
    )
    for corpus in corpora:
        corpus.index.close()
    cache.close()
    remove_tree(workdir)


def carry_local(report: dict[str, Any], old: dict[str, Any], path: Path) -> None:
    """The local model's figures from an earlier results file (its run is ~40 min), marked as carried over;
    from a file that carried them over itself, with their original provenance."""
    mark = " [earlier run]"
    carried = [
        name
        for name in old["systems"]
        if name.startswith("local") or name.removesuffix(mark).endswith("(local sample)")
    ]
    for name in carried:
        report["systems"][name.removesuffix(mark) + mark] = old["systems"][name]
    if "local_model" in old:
        report["local_model"] = old["local_model"]
    report["local_from"] = old.get("local_from") or {
        "file": str(path),
        "started": old["environment"]["started"],
        "systems": carried,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20+20 questions per dataset; answers-quick.json")
    parser.add_argument("--skip-local", action="store_true", help="leave the local llama.cpp model out")
    parser.add_argument("--local-sample", type=int, default=5, help="answerable and unanswerable per dataset")
    parser.add_argument("--local-k", type=int, default=3, help="sources in the local model's prompt")
    parser.add_argument(
        "--local-from", type=Path, help="with --skip-local: carry the local model's figures over from this results file"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--query-precision",
        choices=["fp32", "int8"],
        help="graph that embeds questions (default: embedder.query_precision)",
    )
    parser.add_argument("--out", type=Path, help="results file (default: results/answers.json)")
    parser.add_argument("--overhead-n", type=int, default=200)
    parser.add_argument("--fallback-runs", type=int, default=30)
    args = parser.parse_args()
    if not args.skip_local and not LOCAL_GGUF.is_file():
        raise SystemExit(f"{LOCAL_GGUF} is missing: run `make local-model`, or pass --skip-local")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
