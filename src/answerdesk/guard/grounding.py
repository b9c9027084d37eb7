"""Grounding and relevance of an answer: is it supported by the context, does it address the question.

Two pure scores in [0, 1], both lexical first with an embedding check where vectors are given:

- :func:`grounding_score`: the mean, over the answer's sentences, of how well each is supported by the context
  — the share of its content words found in the context (the same words and stemming the citation support
  check in :mod:`answerdesk.generate.assembly` uses), or, for a sentence the words leave unsure, its best
  cosine similarity to a context passage when that is higher. Unlike the citation check it looks at the whole
  context, so an answer that cites nothing is still scored.
- :func:`relevance_score`: the share of the question's content words the answer takes up, or the best cosine
  similarity of one of its sentences to the question when that is higher. An answer addresses the question
  when one of its sentences does, so the sentences can be embedded while the answer streams and the check
  stops at the first that passes (:mod:`answerdesk.guard.relevance`).

:func:`grounding_findings` turns them into findings with the policy's thresholds and response action.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from answerdesk.generate.assembly import LEXICAL_SUPPORTED, LEXICAL_UNSURE
from answerdesk.generate.sentences import content_words, split_sentences, strip_citations
from answerdesk.guard.base import Action, Finding, Stage

Vector = npt.NDArray[np.float32]

#: Defaults calibrated by ``bench/guard_attacks.py`` on ClapNQ dev: 300 reference answers scored against their own
#: passage and question and against a mismatched one; each threshold is the midpoint between the matched pairs'
#: 5th percentile and the mismatched pairs' 95th (grounding 0.83 / 0.10; relevance, the best sentence's MiniLM
#: cosine, 0.367 / 0.223). Relevance needs the vectors: by words alone a good answer often shares no word with the
#: question (paraphrase), and lexical relevance under 0.3 refuses 22 % of the reference answers (8 % even under
#: 0.1). Scored by its best sentence rather than as one vector, an answer separates as well (2.7 % of the matched
#: refused, 99 % of the mismatched, the same as one vector of the whole answer at its own threshold, 0.279).
DEFAULT_GROUNDING_THRESHOLD = 0.465
DEFAULT_RELEVANCE_THRESHOLD = 0.295


class ContextualGroundingPolicy(BaseModel):
    """``contextualGrounding`` in the policy file; below either threshold the response action applies."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    grounding_threshold: float = Field(default=DEFAULT_GROUNDING_THRESHOLD, ge=0.0, le=1.0, alias="groundingThreshold")
    relevance_threshold: float = Field(default=DEFAULT_RELEVANCE_THRESHOLD, ge=0.0, le=1.0, alias="relevanceThreshold")
    response_action: Literal["REFUSE_WITH_TEMPLATE", "CHALLENGE"] = Field(
        default="REFUSE_WITH_TEMPLATE", alias="responseAction"
    )

    @property
    def action(self) -> Action:
        """The guard action the response action stands for."""
        return "REFUSE" if self.response_action == "REFUSE_WITH_TEMPLATE" else "CHALLENGE"


def answer_sentences(answer: str) -> list[str]:
    """The answer's sentences, citations removed, those without content words dropped."""
    return [s for s in (strip_citations(x) for x in split_sentences(answer)) if content_words(s)]


def grounding_score(
    answer: str,
    context: Sequence[str],
    *,
    sentence_vectors: Mapping[str, Vector] | None = None,
    context_vectors: Sequence[Vector] | None = None,
) -> float:
    """How well ``context`` supports ``answer``, in [0, 1]. ``sentence_vectors`` (keyed by the sentences of
    :func:`answer_sentences`) and ``context_vectors`` (one per context text) enable the embedding check; only
    sentences whose lexical support lies between the assembly's unsure and supported marks need vectors.
    An answer with no content words scores 1.0: there is nothing in it to be unsupported."""
    sentences = answer_sentences(answer)
    if not sentences:
        return 1.0
    pool = set(content_words(" ".join(context)))
    matrix = np.stack(list(context_vectors)) if context_vectors else None
    total = 0.0
    for sentence in sentences:
        words = set(content_words(sentence))
        support = len(words & pool) / len(words)
        if LEXICAL_UNSURE <= support < LEXICAL_SUPPORTED and matrix is not None and sentence_vectors:
            vector = sentence_vectors.get(sentence)
            if vector is not None:
                support = max(support, float(np.max(matrix @ vector)))
        total += min(support, 1.0)
    return total / len(sentences)


def plain_sentences(answer: str) -> list[str]:
    """What the relevance check embeds: :func:`answer_sentences` without emphasis markers (citations and
    emphasis are not what the answer says; embedded, they pull it away from the question). An answer without
    such sentences is one unit."""
    sentences = [plain(s) for s in answer_sentences(answer)]
    return sentences or ([answer.strip()] if answer.strip() else [])


def plain(sentence: str) -> str:
    """``sentence`` without bold or italic markers."""
    return sentence.replace("**", "").replace("__", "")


def relevance_score(
    answer: str,
    question: str,
    *,
    sentence_vectors: Mapping[str, Vector] | None = None,
    question_vector: Vector | None = None,
) -> float:
    """How much ``answer`` addresses ``question``, in [0, 1]: the share of the question's content words it
    takes up, or the best cosine of one of its :func:`plain_sentences` to the question (those missing from
    ``sentence_vectors`` are not scored). A question with no content words scores 1.0."""
    asked = set(content_words(question))
    lexical = len(asked & set(content_words(answer))) / len(asked) if asked else 1.0
    if not sentence_vectors or question_vector is None:
        return lexical
    cosines = [float(sentence_vectors[s] @ question_vector) for s in plain_sentences(answer) if s in sentence_vectors]
    return max(lexical, min(1.0, max(cosines, default=0.0)))


def grounding_findings(
    grounding: float, relevance: float, policy: ContextualGroundingPolicy, *, stage: Stage = "output"
) -> tuple[Finding, ...]:
    """A finding for each score under its threshold, with the policy's response action."""
    findings = []
    for rule, score, threshold in (
        ("grounding", grounding, policy.grounding_threshold),
        ("relevance", relevance, policy.relevance_threshold),
    ):
        if score < threshold:
            findings.append(
                Finding(
                    guard="grounding",
                    rule=rule,
                    action=policy.action,
                    stage=stage,
                    score=round(score, 4),
                    detail=f"{rule} score {score:.3f} < {threshold:.3f}",
                )
            )
    return tuple(findings)
