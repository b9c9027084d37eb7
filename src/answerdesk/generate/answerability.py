"""Answerability: do the retrieved sources answer the question, or only talk about its topic?

The relevance gate's best cosine tells an off-topic question from an on-topic one, but a knowledge base is
full of passages on the right topic that still do not hold the answer ("when does Rick die in the comic
book?" against a passage about Rick in the comic book). Those must be refused too. The answerability score
reads a few signals of the top sources, each cheap:

- ``best_cosine``: the best question-to-chunk cosine from retrieval;
- ``cosine_margin`` and ``other_margin``: how far the best chunk is ahead of the second, and of the best chunk
  of any other document (an answer tends to sit in one clear winner; a topic spreads over several);
- ``coverage``: the idf-weighted share of the question's words that the best-supported sentence holds (the
  extractive answerer's own score);
- ``detail_coverage``: the same over the question words that are *not* in the best chunk's title, i.e. what
  the question asks beyond naming its topic, best sentence of the best chunk;
- ``sentence_best`` and ``sentence_top2``: the best and the mean of the two best question-to-sentence cosines
  within the best chunk (the chunk's own vector averages its sentences; the answer is usually one of them);
- ``title_share`` and ``question_words``: the share of the question's words that only name the best chunk's
  topic (its title), and how many content words the question has: a question that is mostly its topic's
  name, or a long one with many particulars, is less often answered by a passage on that topic.

A logistic model over some of those features gives the probability that the question is *not* answered; at
or above its threshold the pipeline refuses with the template, without a model call. A model file names the
features it reads, with their scaling, weights, threshold and held-out figures. The packaged one
(``answerability.json``) reads :data:`GENERAL_FEATURES` only; a model calibrated to one knowledge base may
read them all. Both are written by ``python -m answerdesk.generate.train_answerability``; the same
:func:`features` serves training and inference, so the two cannot drift apart. The sentence vectors are
stored at ingest (:func:`question_sentence_cosines` reads them), so the gate costs a lookup and some dot
products per question.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from answerdesk.embed.base import Embedder, Vectors
from answerdesk.errors import ConfigError
from answerdesk.generate.extractive import rank_sentences
from answerdesk.generate.sentences import chunk_sentences, content_words
from answerdesk.types import ScoredChunk

FEATURES = (
    "best_cosine",
    "cosine_margin",
    "other_margin",
    "coverage",
    "detail_coverage",
    "sentence_best",
    "sentence_top2",
    "title_share",
    "question_words",
)
#: The features of the packaged model: those whose meaning does not depend on how a knowledge base is cut into
#: documents and chunks, or on how its users phrase questions (see the trainer's --features).
GENERAL_FEATURES = (
    "best_cosine",
    "other_margin",
    "coverage",
    "detail_coverage",
    "sentence_best",
    "sentence_top2",
)
PACKAGED_MODEL = Path(__file__).with_name("answerability.json")


def best_chunk(sources: Sequence[ScoredChunk]) -> ScoredChunk | None:
    """The source with the best question cosine (ties: the higher-ranked one)."""
    return max(sources, key=lambda c: c.signals.get("cosine", -1.0), default=None)


def features(question: str, sources: Sequence[ScoredChunk], sentence_cosines: Sequence[float]) -> dict[str, float]:
    """Every feature in :data:`FEATURES` of a question and its retrieved sources.
    ``sentence_cosines``: the question's cosine with each of :func:`chunk_sentences` of :func:`best_chunk`'s text."""
    wanted = set(content_words(question))
    top = best_chunk(sources)
    if top is None:
        return dict.fromkeys(FEATURES, 0.0) | {
            "best_cosine": -1.0, "sentence_best": -1.0, "sentence_top2": -1.0, "question_words": float(len(wanted))
        }  # fmt: skip
    cosines = sorted((c.signals.get("cosine", -1.0) for c in sources), reverse=True)
    best = cosines[0]
    others = [c.signals.get("cosine", -1.0) for c in sources if c.document_id != top.document_id]
    ranked = rank_sentences(
        question, [(n, c.text) for n, c in enumerate(sources, 1)], titles={n: c.title for n, c in enumerate(sources, 1)}
    )
    detail = wanted - set(content_words(top.title))
    detail_coverage = max(
        (len(detail & set(content_words(s))) / len(detail) for s in chunk_sentences(top.text)), default=0.0
    ) if detail else 0.0  # fmt: skip
    sims = sorted(sentence_cosines, reverse=True) or [-1.0]
    return {
        "best_cosine": best,
        "cosine_margin": best - cosines[1] if len(cosines) > 1 else best,
        "other_margin": best - max(others) if others else best,
        "coverage": ranked[0].score if ranked else 0.0,
        "detail_coverage": detail_coverage,
        "sentence_best": sims[0],
        "sentence_top2": float(np.mean(sims[:2])),
        "title_share": 1.0 - len(detail) / len(wanted) if wanted else 0.0,
        "question_words": float(len(wanted)),
    }


@dataclass(frozen=True, slots=True)
class AnswerabilityModel:
    """Logistic regression over standardised ``features`` (a subset of :data:`FEATURES`, in order);
    :meth:`score` is P(not answerable)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    #: How it was trained and what it measured on held-out data (for reports and the README).
    report: Mapping[str, Any] = field(default_factory=dict)

    def score(self, values: Mapping[str, float]) -> float:
        terms = zip(self.weights, self.features, self.mean, self.scale, strict=True)
        z = self.bias + sum(w * (values[name] - m) / s for w, name, m, s in terms)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def unanswerable(self, values: Mapping[str, float]) -> bool:
        return self.score(values) >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
            "threshold": self.threshold,
            "report": dict(self.report),
        }

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)


def load_model(path: Path | None = None) -> AnswerabilityModel:
    """The model in ``path`` (default: the packaged one); a file that does not fit raises :class:`ConfigError`."""
    path = path or PACKAGED_MODEL
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the answerability model {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON (line {exc.lineno}): {exc.msg}") from exc
    names = data.get("features") if isinstance(data, dict) else None
    if not isinstance(names, list) or not names or any(n not in FEATURES for n in names):
        raise ConfigError(f"{path}: 'features' must be a list of known features: {', '.join(FEATURES)}")
    try:
        vectors = [tuple(float(x) for x in data[key]) for key in ("mean", "scale", "weights")]
        bias, threshold = float(data["bias"]), float(data["threshold"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: missing or non-numeric field ({exc})") from exc
    if any(len(v) != len(names) for v in vectors) or any(s <= 0 for s in vectors[1]):
        raise ConfigError(f"{path}: 'mean', 'scale' and 'weights' need one value per feature, scales > 0")
    mean, scale, weights = vectors
    return AnswerabilityModel(tuple(names), mean, scale, weights, bias, threshold, data.get("report") or {})


class SentenceVectors(Protocol):
    def sentence_vectors(self, chunk_ids: Sequence[str]) -> dict[str, Vectors]:
        """Sentence vectors stored at ingest, by chunk id (chunks without them left out)."""
        ...


def question_sentence_cosines(
    question: str,
    query_vector: Vectors | None,
    sources: Sequence[ScoredChunk],
    stored: SentenceVectors | None,
    embedder: Embedder,
) -> list[float]:
    """The question's cosine with each sentence of the best source: against the vector retrieval used for the
    question (embedded now when there is none) and the sentence vectors stored at ingest (embedded now only
    for a chunk indexed without them)."""
    top = best_chunk(sources)
    if top is None:
        return []
    vectors = stored.sentence_vectors([top.chunk_id]).get(top.chunk_id) if stored is not None else None
    if vectors is None:
        sentences = chunk_sentences(top.text)
        if not sentences:
            return []
        vectors = embedder.embed_passages(sentences)
    if query_vector is None:
        query_vector = embedder.embed_queries([question])[0]
    return [float(x) for x in np.asarray(vectors, dtype=np.float32) @ np.asarray(query_vector, dtype=np.float32)]


@cache
def packaged_model() -> AnswerabilityModel:
    return load_model(PACKAGED_MODEL)
