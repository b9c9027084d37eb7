from __future__ import annotations

from answerdesk.guard.normalize import normalize_for_matching


def test_zero_width_and_case_do_not_hide_a_word() -> None:
    assert normalize_for_matching("IG\u200bNORE   previous") == "ignore previous"


def test_all_invisible_text_normalizes_to_empty() -> None:
    assert normalize_for_matching("\u200b\u200d\u2060\ufeff\u202e") == ""
