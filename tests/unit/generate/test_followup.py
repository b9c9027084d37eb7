from __future__ import annotations

from answerdesk.generate.followup import standalone_query
from answerdesk.types import Message

HISTORY = [Message("user", "How do refunds work for annual plans?"), Message("assistant", "Within 30 days [1].")]


def test_first_question_is_used_as_is() -> None:
    assert standalone_query("What about monthly?", []) == "What about monthly?"


def test_follow_up_gets_the_previous_user_turn() -> None:
    assert standalone_query("And what about monthly ones?", HISTORY) == (
        "How do refunds work for annual plans? And what about monthly ones?"
    )


def test_self_contained_question_stands_alone() -> None:
    q = "How do I print return labels on a thermal printer?"
    assert standalone_query(q, HISTORY) == q
