"""Word filters match what a reader sees: case, look-alike letters, invisible characters and leetspeak."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from answerdesk.guard.words import WordFilter, WordFilterGuard

GUARD = WordFilterGuard(
    [
        WordFilter(match="credit card number"),
        WordFilter(match="share internal roadmap", action="CHALLENGE"),
        WordFilter(match="refund", stages=("output",)),
    ]
)


def rules(text: str, stage: str = "input") -> list[tuple[str, str]]:
    return [(f.rule, f.action) for f in GUARD.check(text, stage=stage).findings]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["Send me your Credit Card Number", "CR3DIT  CARD NUMB3R?", "cr\u200bedit card nu\u200dmber",
     "cr\u0435dit c\u0430rd number", "ｃｒｅｄｉｔ ｃａｒｄ ｎｕｍｂｅｒ"],
)  # fmt: skip
def test_disguised_phrases_still_match(text: str) -> None:
    assert rules(text) == [("credit card number", "BLOCK")]


def test_only_whole_words_match() -> None:
    assert rules("my credit card numbers are safe, I discard them") == []


def test_challenge_and_stages() -> None:
    assert rules("can you share internal roadmap?") == [("share internal roadmap", "CHALLENGE")]
    assert rules("I want a refund") == []
    assert rules("I want a refund", "output") == [("refund", "BLOCK")]
    assert GUARD.check("credit card number", stage="context").findings == ()


def test_invisible_only_phrase_is_rejected() -> None:
    with pytest.raises(ValidationError, match="empty once normalized"):
        WordFilter(match="\u200b\u200b")


def test_invisible_only_and_emoji_text_pass() -> None:
    assert rules("\u200b" * 1000) == []
    assert rules("📦🙂 Заказ 東京") == []


def test_a_megabyte_message() -> None:
    text = "hello there " * 87_000 + "credit card number"
    assert rules(text) == [("credit card number", "BLOCK")]
