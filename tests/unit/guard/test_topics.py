from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import ValidationError

from answerdesk.embed.base import Vectors
from answerdesk.embed.fake import FakeEmbedder
from answerdesk.errors import GuardError, ProviderError
from answerdesk.guard.topics import KEYWORD_HINT, DeniedTopic, DeniedTopicsGuard

INVESTING = DeniedTopic(
    name="investment-advice",
    definition="Recommending stocks, shares, crypto coins or other investments to buy or sell.",
    examples=["Which stocks should I buy this year?", "Is bitcoin a good investment right now?"],
    keywords=["stock tips"],
)
LEGAL = DeniedTopic(
    name="legal-advice",
    definition="Telling a customer whether to sue, how to win a court case, or what a contract means legally.",
    examples=["Should I sue the courier for my lost parcel?"],
    threshold=0.95,
)


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder(dim=256)


def test_a_question_on_a_denied_topic_is_blocked(embedder: FakeEmbedder) -> None:
    guard = DeniedTopicsGuard([INVESTING, LEGAL], embedder, threshold=0.5)
    result = guard.check("Which stocks should I buy this year for my savings?", stage="input")
    assert result.action == "BLOCK"
    assert [f.rule for f in result.findings] == ["investment-advice"]


def test_a_support_question_passes(embedder: FakeEmbedder) -> None:
    guard = DeniedTopicsGuard([INVESTING, LEGAL], embedder, threshold=0.5)
    assert guard.check("Where is my parcel? It was due on Monday.", stage="input").findings == ()


def test_a_keyword_hint_tips_a_borderline_text_over(embedder: FakeEmbedder) -> None:
    guard = DeniedTopicsGuard([INVESTING], embedder, threshold=0.5)
    plain, hinted = "Any good tips for this month?", "Any good stock tips for this month?"
    (without,) = guard.scores(plain)
    (with_hint,) = guard.scores(hinted)
    assert without.keyword is None and with_hint.keyword == "stock tips"
    assert with_hint.score == pytest.approx(with_hint.similarity + KEYWORD_HINT)
    # ... also when the keyword is disguised with look-alike letters
    (disguised,) = guard.scores("Any good ѕtосk tірѕ for this month?")
    assert disguised.keyword == "stock tips"


def test_a_topics_own_threshold_overrides_the_guards(embedder: FakeEmbedder) -> None:
    text = "Can I sue the courier?"
    assert DeniedTopicsGuard([LEGAL], embedder, threshold=0.1).check(text, stage="input").findings == ()
    default = LEGAL.model_copy(update={"threshold": None})
    assert DeniedTopicsGuard([default], embedder, threshold=0.1).check(text, stage="input").action == "BLOCK"


def test_topic_vectors_are_computed_once_and_a_given_query_vector_is_not_embedded_again(
    embedder: FakeEmbedder,
) -> None:
    guard = DeniedTopicsGuard([INVESTING, LEGAL], embedder)
    question = "Is bitcoin a good investment right now?"
    vector = embedder.embed_queries([question])[0]
    before = embedder.calls
    for _ in range(3):
        guard.check(question, stage="input", query_vector=vector)
    assert embedder.calls == before + 1  # the topics, once; never the question


def test_context_is_not_checked_and_answers_are(embedder: FakeEmbedder) -> None:
    guard = DeniedTopicsGuard([INVESTING], embedder, threshold=0.5)
    text = "Which stocks should I buy this year?"
    assert guard.check(text, stage="context").findings == ()
    assert guard.check(text, stage="output").action == "BLOCK"


class _BrokenEmbedder(FakeEmbedder):
    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        raise ProviderError("model offline")


def test_an_embedder_failure_is_a_guard_error() -> None:
    guard = DeniedTopicsGuard([INVESTING], _BrokenEmbedder())
    with pytest.raises(GuardError, match="topics"):
        guard.check("Which stocks should I buy?", stage="input")


def test_a_vector_of_the_wrong_size_is_a_guard_error(embedder: FakeEmbedder) -> None:
    guard = DeniedTopicsGuard([INVESTING], embedder)
    with pytest.raises(GuardError, match="shape"):
        guard.check("Which stocks?", stage="input", query_vector=np.ones(3, dtype=np.float32))


def test_no_topics_means_nothing_is_blocked(embedder: FakeEmbedder) -> None:
    assert DeniedTopicsGuard([], embedder).check("anything", stage="input").findings == ()
    assert embedder.calls == 0


def test_denied_topic_rejects_a_misspelled_field() -> None:
    with pytest.raises(ValidationError, match="exampels"):
        DeniedTopic.model_validate({"name": "x", "definition": "y", "exampels": []})
