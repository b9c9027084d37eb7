"""Names and places through the real packaged spaCy model (the ``[ner]`` extra, installed by ``make``)."""

from __future__ import annotations

import pytest

from answerdesk.guard.ner import SpacyRecognizer
from answerdesk.guard.pii import PiiGuard, Placeholders, SensitiveInformationPolicy
from answerdesk.guard.streaming import redact_stream

pytestmark = pytest.mark.slow

GUARD = PiiGuard(
    SensitiveInformationPolicy.model_validate({"piiEntities": ["EMAIL", "PERSON", "LOCATION", "ADDRESS"]}),
    recognizer=SpacyRecognizer(),
)


def test_names_places_and_streets_are_redacted() -> None:
    text = "Hi, this is Maria Gonzalez from Barcelona. Ship it to 42 Baker Street, or mail maria@example.com."
    out = GUARD.check(text, stage="input")
    assert "Maria Gonzalez" not in out.text and "Barcelona" not in out.text and "42 Baker Street" not in out.text
    assert {f.rule for f in out.findings} >= {"PERSON", "LOCATION", "ADDRESS", "EMAIL"}
    assert "[PERSON_1]" in out.text and "[EMAIL_1]" in out.text


def test_streaming_with_the_model_equals_batch() -> None:
    text = "Maria Gonzalez called again. She lives in Lisbon now! Please update Maria Gonzalez's record."
    batch = GUARD.redact(text, stage="output", placeholders=Placeholders()).text
    for size in (1, 3, 7, 20):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert "".join(redact_stream(GUARD, chunks)) == batch
    assert "Maria" not in batch


def test_unit_and_box_parts_of_an_address() -> None:
    out = GUARD.check("Deliver to Apt. 566, or to p.o. box 15, or Via Capo le Case 143.", stage="input")
    assert "566" not in out.text and "box 15" not in out.text and "143" not in out.text


def test_names_opening_a_sentence_and_inside_a_lower_case_one_are_redacted() -> None:
    text = "Judy called twice about the refund. yesterday my husband spoke to Maria Gonzalez in Madrid."
    out = GUARD.check(text, stage="input")
    expected = "[PERSON_1] called twice about the refund. yesterday my husband spoke to [PERSON_2] in [LOCATION_1]."
    assert out.text == expected


def test_a_text_with_no_candidate_word_is_left_alone() -> None:
    out = GUARD.check("The card was declined and I want a refund.", stage="input")
    assert out.text == "The card was declined and I want a refund." and out.findings == ()
