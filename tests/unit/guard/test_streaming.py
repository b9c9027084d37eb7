"""Streaming redaction equals batch redaction for every split of the text, so nothing leaks across chunks."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from answerdesk.guard.ner import FakeRecognizer
from answerdesk.guard.pii import PiiGuard, Placeholders, SensitiveInformationPolicy
from answerdesk.guard.streaming import StreamRedactor, redact_stream

VALUES = [
    "jo.doe@example.com",
    "415-555-2671",
    "+44 20 7946 0958",
    "4716 4245 2151 1864",
    "308-63-0237",
    "GB82 WEST 1234 5698 7654 32",
    "86.231.85.193",
    "fe80::1ff:fe23:4567:890a",
]
WORDS = [
    "call",
    "me",
    "at",
    "or",
    "card",
    "thanks.",
    "Hi,",
    "ok\n",
    "ip",
    "x",
    "42",
    "(",
    ")",
    "-",
    "ext.",
    "-Office",
    "Apt.",
    "+1",
    "GB82",
]
PATTERNS = PiiGuard()
WITH_NAMES = PiiGuard(
    SensitiveInformationPolicy.model_validate({"piiEntities": ["EMAIL", "PHONE", "PERSON"]}),
    recognizer=FakeRecognizer({"Ana Lima": "PERSON"}),
)

texts = st.lists(st.sampled_from(VALUES + WORDS + ["Ana Lima"]), min_size=1, max_size=14).map(" ".join)


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_split_streams_to_the_batch_redaction(text: str, cuts: list[int]) -> None:
    for guard in (PATTERNS, WITH_NAMES):
        batch = guard.redact(text, stage="output", placeholders=Placeholders()).text
        streamed = redact_stream(guard, split(text, cuts))
        assert "".join(streamed) == batch
        # No released piece ever holds a value the batch redaction hides.
        for value in [*VALUES, "Ana Lima"]:
            if value not in batch:
                assert all(value not in piece for piece in streamed)


def test_hold_back_is_short_for_patterns() -> None:
    redactor = StreamRedactor(PiiGuard())
    # Released up to the last gap between two words; a number stays held until a word gap follows it.
    assert redactor.push("Your parcel is on its way and ") == "Your parcel is on its way "
    assert redactor.push("call 415-") == "and "
    assert redactor.push("555-2671 today") == ""
    assert redactor.push(" please") == "call [PHONE_1] today "
    assert redactor.flush() == "please"


def test_findings_have_spans_in_the_whole_stream() -> None:
    redactor = StreamRedactor(PiiGuard())
    text = "".join(redactor.push(c) for c in ["mail ", "me at jo", "@example.com now"]) + redactor.flush()
    assert text == "mail me at [EMAIL_1] now"
    (finding,) = redactor.findings
    assert finding.span == (11, 25)
