"""Which words of a sentence the entity recognizer reads: candidates for a name or place, with context."""

from __future__ import annotations

from answerdesk.guard.ner_windows import candidate_windows

COMMON = frozenset({"the", "a", "i", "my", "was", "and", "want", "to", "at", "from", "it", "me", "he", "please"})


def pieces(text: str, **options: object) -> list[str]:
    return [text[a:b] for a, b in candidate_windows(text, common_words=COMMON, **options)]  # type: ignore[arg-type]


def test_a_capitalised_word_inside_a_sentence_is_read_with_two_words_before_and_one_after() -> None:
    assert pieces("yesterday i talked to Maria about my refund") == ["talked to Maria about"]


def test_a_name_opening_a_sentence_is_a_candidate_but_a_common_word_is_not() -> None:
    assert pieces("Tamara called about her card.") == ["Tamara called"]
    assert pieces("The card was declined and I want a refund.") == []


def test_windows_that_overlap_or_touch_are_merged_into_one() -> None:
    text = "please send it to Maria Lopez in Lisbon today, thanks"
    assert pieces(text) == ["it to Maria Lopez in Lisbon today,"]
    assert candidate_windows(text, common_words=COMMON) == [(12, 46)]
    assert pieces("Ana b c d Bob") == ["Ana b c d Bob"]  # "Ana b" and "c d Bob" leave no word between them
    assert pieces("Ana b c d e Bob") == ["Ana b", "d e Bob"]


def test_a_sentence_in_lower_case_is_read_wherever_a_word_is_not_common() -> None:
    # No capitals to go by: "bauru" and "bahrain" are names typed in lower case.
    assert pieces("the princess arrived at bauru from bahrain.") == ["the princess arrived at bauru from bahrain."]
    assert pieces("it was me and the") == []


def test_a_script_without_case_is_read() -> None:
    assert pieces("我叫李明，住在北京") == ["我叫李明，住在北京"]


def test_abbreviations_are_candidates_even_when_they_spell_a_common_word() -> None:
    assert pieces("He moved to the US last year") == ["to the US last"]


def test_the_pronoun_i_punctuation_and_numbers_are_no_candidates() -> None:
    assert pieces('I\'m sure I was at 4111 1111 1111 1111 -- "My" (the) ...') == []
    assert pieces("") == []


def test_a_capitalised_word_is_found_through_the_punctuation_around_it() -> None:
    assert pieces('he said: "Maria," and left') == ['he said: "Maria," and']


def test_words_inside_what_a_pattern_already_found_are_no_candidates() -> None:
    text = "send it to 42 Baker Street please"
    assert pieces(text, found=[(11, 26)]) == []
    assert pieces(text) == ["to 42 Baker Street please"]


def test_context_can_be_widened_or_dropped() -> None:
    text = "a b c Dana d e f"
    assert pieces(text, before=0, after=0) == ["Dana"]
    assert pieces(text, before=3, after=3) == ["a b c Dana d e f"]
