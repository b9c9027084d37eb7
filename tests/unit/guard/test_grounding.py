from __future__ import annotations

import numpy as np
import pytest

from answerdesk.guard.grounding import (
    ContextualGroundingPolicy,
    grounding_findings,
    grounding_score,
    plain_sentences,
    relevance_score,
)

CONTEXT = [
    "Refunds are issued to the original payment method within 5 business days after the returned item arrives.",
    "Returns are accepted within 30 days of delivery if the item is unused.",
]


def test_a_supported_answer_scores_high_and_an_invented_one_low() -> None:
    supported = (
        "Refunds go to the original payment method within 5 business days [1]. Returns are accepted for 30 days."
    )
    invented = "You will receive store credit immediately. Shipping labels cost ten dollars at the post office."
    assert grounding_score(supported, CONTEXT) > 0.8
    assert grounding_score(invented, CONTEXT) < 0.3


def test_an_embedding_check_rescues_a_paraphrase_the_words_leave_unsure() -> None:
    answer = "Refunds reach your card within a week after the parcel is received."
    lexical = grounding_score(answer, CONTEXT)
    vec = np.ones(4, dtype=np.float32) / 2.0
    (sentence,) = [answer]
    with_vectors = grounding_score(answer, CONTEXT, sentence_vectors={sentence: vec}, context_vectors=[vec, -vec])
    assert 0.3 <= lexical < 0.6
    assert with_vectors == pytest.approx(1.0)


def test_relevance_lexical_and_with_vectors() -> None:
    question = "How long do refunds take?"
    assert relevance_score("Refunds take 5 business days, not long.", question) == 1.0
    assert relevance_score("Our office is closed on Sundays.", question) == 0.0
    a, q = np.array([0.6, 0.8], dtype=np.float32), np.array([0.8, 0.6], dtype=np.float32)
    vectors = {"Our office is closed on Sundays.": a}
    scored = relevance_score("Our office is closed on Sundays.", question, sentence_vectors=vectors, question_vector=q)
    assert scored == pytest.approx(0.96)


def test_relevance_is_the_best_sentence_and_skips_sentences_without_vectors() -> None:
    question = "How long do refunds take?"
    q = np.array([1.0, 0.0], dtype=np.float32)
    off, on = np.array([0.0, 1.0], dtype=np.float32), np.array([0.6, 0.8], dtype=np.float32)
    answer = "Our office is closed on Sundays [1]. The **money** is back in a week [2]."
    assert plain_sentences(answer) == ["Our office is closed on Sundays.", "The money is back in a week."]
    both = {"Our office is closed on Sundays.": off, "The money is back in a week.": on}
    assert relevance_score(answer, question, sentence_vectors=both, question_vector=q) == pytest.approx(0.6)
    first = {"Our office is closed on Sundays.": off}
    assert relevance_score(answer, question, sentence_vectors=first, question_vector=q) == 0.0


def test_empty_answers_have_nothing_unsupported() -> None:
    assert grounding_score("", CONTEXT) == 1.0
    assert grounding_score("[1].", []) == 1.0


def test_findings_below_the_thresholds_carry_the_response_action() -> None:
    policy = ContextualGroundingPolicy(groundingThreshold=0.6, relevanceThreshold=0.4)
    (finding,) = grounding_findings(0.2, 0.9, policy)
    assert (finding.rule, finding.action, finding.guard) == ("grounding", "REFUSE", "grounding")
    challenge = ContextualGroundingPolicy(responseAction="CHALLENGE")
    assert {f.action for f in grounding_findings(0.0, 0.0, challenge)} == {"CHALLENGE"}
    assert grounding_findings(0.9, 0.9, policy) == ()


def test_policy_reads_the_file_spelling() -> None:
    policy = ContextualGroundingPolicy.model_validate({"groundingThreshold": 0.7, "responseAction": "CHALLENGE"})
    assert policy.grounding_threshold == 0.7
    assert policy.response_action == "CHALLENGE"
