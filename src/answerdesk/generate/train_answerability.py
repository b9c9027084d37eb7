"""Train an answerability model: ``python -m answerdesk.generate.train_answerability [--dataset DIR ...]``.

A dataset is a folder with ``corpus.jsonl`` (``id``, ``title``, ``text`` per passage) and ``questions.jsonl``
(``id``, ``question``, ``answerable`` per question), the layout of ClapNQ dev (``rag/clapnq-dev`` of the
evaluation data: 300 questions answered by one of its 593 passages and 300 unanswerable ones whose topical
passage is in the corpus as a hard distractor). The passages are indexed as answerdesk indexes any knowledge
base (default chunking, embedder and hybrid retrieval, ``k`` sources); each question is retrieved and turned
into :func:`answerability.features`. The questions fall into five folds by a seeded hash of their id.

The model is logistic regression (scikit-learn, training only: ``pip install -e '.[bench]'``) on standardised
features, fitted on the questions that pass the relevance gate. Each question is also scored by the model
fitted on the other four folds; on those out-of-fold scores the threshold is chosen (the lowest P(not
answerable) at which the false refusals on answerable questions, the relevance gate's included, stay within
``--budget``) and the figures in the model file's ``report`` are measured, so no question is judged by a model
that saw it. The file holds numbers only, never text.

The packaged model (``--features general --budget 0.04``) reads only the features that mean the same in any
knowledge base, with a strict budget, so that it stays safe on knowledge bases it has never seen. A team with
labelled questions of its own (answerable or not) trains a model calibrated to its knowledge base with
``--features all`` and points ``generation.answerability_model`` at it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from answerdesk.config import Settings, load_settings
from answerdesk.embed.base import Embedder
from answerdesk.embed.factory import build_embedder
from answerdesk.errors import AnswerdeskError, ConfigError
from answerdesk.generate.answerability import (
    FEATURES,
    GENERAL_FEATURES,
    PACKAGED_MODEL,
    AnswerabilityModel,
    features,
    question_sentence_cosines,
)
from answerdesk.guard.train_injection import read_jsonl
from answerdesk.ingest.factory import build_ingestor
from answerdesk.retrieve.factory import build_retriever
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Document, DocumentMeta, Principal, Section

#: The packaged model's budget: strict, because it must hold on knowledge bases it was not trained on.
FALSE_REFUSAL_BUDGET = 0.04
SEED = "answerability-1"
FOLDS = 5
FEATURE_SETS = {"general": GENERAL_FEATURES, "all": FEATURES}


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    answerable: bool
    #: Refused by the relevance gate already (best cosine below ``generation.relevance_threshold``).
    gated: bool
    values: dict[str, float]

    @property
    def fold(self) -> int:
        return int(hashlib.sha256(f"{SEED}:{self.id}".encode()).hexdigest()[:8], 16) % FOLDS


def examples(folder: Path, settings: Settings, embedder: Embedder, *, log: Any = print) -> list[Example]:
    """Every question of the dataset in ``folder`` with its features, retrieved from an index of its passages."""
    if not (folder / "corpus.jsonl").exists() or not (folder / "questions.jsonl").exists():
        raise ConfigError(f"{folder} needs corpus.jsonl and questions.jsonl (see --help for their fields)")
    documents = [
        Document(
            id=str(p["id"]),
            source=f"{folder.name}/{p['id']}",
            sections=(Section(heading_path=(), text=p["text"]),),
            meta=DocumentMeta(title=p.get("title") or ""),
            sha256=hashlib.sha256(f"{p.get('title')}\n{p['text']}".encode()).hexdigest(),
        )
        for p in read_jsonl(folder / "corpus.jsonl")
    ]
    questions = read_jsonl(folder / "questions.jsonl")
    principal = Principal(subject="train-answerability")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        index = SqliteIndex(Path(tmp) / "corpus.db")
        try:
            started = time.perf_counter()
            build_ingestor(index, embedder, settings).index(documents)
            log(f"{folder.name}: indexed {len(documents)} passages in {time.perf_counter() - started:.0f}s")
            retriever = build_retriever(index, embedder, settings)
            for n, q in enumerate(questions, 1):
                question = q["question"].strip()
                found = retriever.search(question, principal=principal, k=settings.retrieval.k)
                cosines = question_sentence_cosines(question, found.query_vector, found.chunks, index, embedder)
                relevance = max((c.signals.get("cosine", -1.0) for c in found.chunks), default=-1.0)
                out.append(
                    Example(
                        f"{folder.name}:{q['id']}",
                        bool(q["answerable"]),
                        relevance < settings.generation.relevance_threshold,
                        features(question, found.chunks, cosines),
                    )
                )
                if n % 100 == 0:
                    log(f"  {n}/{len(questions)} questions")
        finally:
            index.close()
    return out


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise ConfigError("training needs scikit-learn: pip install -e '.[bench]'") from exc
    if len(set(y.tolist())) < 2:
        raise ConfigError(
            "the questions that pass the relevance gate (or a fold of them) are all answerable or all unanswerable; "
            "the model needs both: add questions, or lower generation.relevance_threshold"
        )
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = LogisticRegression(C=1.0, max_iter=1000, random_state=0)
    model.fit((x - mean) / scale, y)
    return mean, scale, model.coef_[0], float(model.intercept_[0])


def _model(
    rows: Sequence[Example], names: Sequence[str], threshold: float, report: dict[str, Any]
) -> AnswerabilityModel:
    x = np.array([[r.values[n] for n in names] for r in rows])
    y = np.array([0.0 if r.answerable else 1.0 for r in rows])
    mean, scale, weights, bias = _fit(x, y)
    return AnswerabilityModel(
        tuple(names),
        tuple(map(float, mean)),
        tuple(map(float, scale)),
        tuple(map(float, weights)),
        bias,
        threshold,
        report,
    )


def rates(scores: Sequence[float], rows: Sequence[Example], threshold: float) -> dict[str, Any]:
    """Refusal recall on unanswerable and false refusals on answerable questions, both gates together."""
    refused = [r.gated or s >= threshold for s, r in zip(scores, rows, strict=True)]
    unanswerable = [f for f, r in zip(refused, rows, strict=True) if not r.answerable]
    answerable = [f for f, r in zip(refused, rows, strict=True) if r.answerable]
    return {
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "refusal_recall": round(sum(unanswerable) / max(1, len(unanswerable)), 4),
        "false_refusals": round(sum(answerable) / max(1, len(answerable)), 4),
    }


def choose_threshold(scores: Sequence[float], rows: Sequence[Example], budget: float) -> float:
    """The lowest threshold whose false refusals (relevance gate included) stay within ``budget``."""
    for t in sorted({round(s, 4) for s in scores}):
        if rates(scores, rows, t)["false_refusals"] <= budget:
            return float(t)
    return 1.0


def out_of_fold_scores(rows: Sequence[Example], names: Sequence[str]) -> list[float]:
    """Each row scored by a model fitted on the other folds (1.0 for rows the relevance gate refuses)."""
    fit_rows = [r for r in rows if not r.gated]
    scores = {r.id: 1.0 for r in rows if r.gated}
    for fold in range(FOLDS):
        fold_model = _model([r for r in fit_rows if r.fold != fold], names, 0.5, {})
        scores.update({r.id: fold_model.score(r.values) for r in fit_rows if r.fold == fold})
    return [scores[r.id] for r in rows]


def train(
    rows: Sequence[Example], *, names: Sequence[str] = GENERAL_FEATURES, budget: float = FALSE_REFUSAL_BUDGET
) -> AnswerabilityModel:
    """Fit on every row that passes the relevance gate; the threshold and the report from out-of-fold scores."""
    scores = out_of_fold_scores(rows, names)
    threshold = choose_threshold(scores, rows, budget)
    per_fold = [
        rates(
            [s for s, r in zip(scores, rows, strict=True) if r.fold == f], [r for r in rows if r.fold == f], threshold
        )
        for f in range(FOLDS)
    ]
    report = {
        "data": sorted({r.id.split(":", 1)[0] for r in rows}),
        "folds": FOLDS,
        "false_refusal_budget": budget,
        "relevance_gate_refused": sum(r.gated for r in rows),
        "out_of_fold": rates(scores, rows, threshold),
        "out_of_fold_recall_by_fold": [f["refusal_recall"] for f in per_fold],
        "out_of_fold_false_refusals_by_fold": [f["false_refusals"] for f in per_fold],
    }
    return _model([r for r in rows if not r.gated], names, threshold, report)


def fold_models(
    rows: Sequence[Example], *, names: Sequence[str] = FEATURES, budget: float = FALSE_REFUSAL_BUDGET
) -> list[AnswerabilityModel]:
    """One model per fold, each trained (threshold included) without that fold's rows: answering a fold's
    questions with its own model measures the calibration on questions it never saw."""
    return [train([r for r in rows if r.fold != f], names=names, budget=budget) for f in range(FOLDS)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m answerdesk.generate.train_answerability",
        description="Train an answerability model on labelled questions over their passages; write it as JSON.",
        epilog='A dataset folder holds corpus.jsonl, one passage per line ({"id", "title", "text"}), and '
        'questions.jsonl, one question per line ({"id", "question", "answerable": true|false}). '
        "The packaged model: --features general --budget 0.04. A model calibrated to one knowledge base: "
        "--features all --budget 0.14 --out FILE, then set generation.answerability_model: FILE.",
    )
    parser.add_argument(
        "--dataset", type=Path, action="append", help="folder with corpus.jsonl and questions.jsonl (repeatable; "
        "default: ../shared/data/rag/clapnq-dev)"
    )  # fmt: skip
    parser.add_argument("--features", choices=sorted(FEATURE_SETS), default="general", help="which features to read")
    parser.add_argument("--budget", type=float, default=FALSE_REFUSAL_BUDGET, help="false refusals allowed")
    parser.add_argument("--out", type=Path, default=PACKAGED_MODEL, help="model file to write")
    parser.add_argument(
        "--config", type=Path, help="answerdesk settings (embedder, chunking, retrieval) to index and retrieve with; "
        "default: answerdesk.yaml here and ANSWERDESK_* variables, as the product reads them"
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not 0.0 <= args.budget < 1.0:
        parser.error(f"--budget must be in [0, 1), got {args.budget}")
    try:
        settings = load_settings(args.config)
        embedder = build_embedder(settings.embedder)
        rows = [
            r for d in args.dataset or [Path("../shared/data/rag/clapnq-dev")] for r in examples(d, settings, embedder)
        ]
        model = train(rows, names=FEATURE_SETS[args.features], budget=args.budget)
    except AnswerdeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model.save(args.out)
    print(json.dumps(model.report, indent=2))
    print(f"threshold {model.threshold:.4f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
