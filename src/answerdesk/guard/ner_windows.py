"""Which parts of a sentence can hold a name or a place: the windows the entity recognizer is run on.

The recognizer costs about as much per token as everything else in the PII guard together, and most words of
a support message can be no name: lower-case words in a sentence that has capitals, or a capitalised common
word opening a sentence ("The", "Could"). :func:`candidate_windows` keeps the words that can, each with a
few words of context around it (the recognizer reads its neighbours to tell "Jordan" the man from Jordan
the country), and merges windows that touch. Case is the evidence, so a sentence written all in lower case,
or in a script without case, is looked at wherever it has a word that is not common.

The windows depend on the segment's text alone, so a segment streamed gets the windows it gets in batch.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

#: Words of context kept before and after a candidate word. The words before tell most ("from Lisbon",
#: "Dr. Jordan", "van der Voet"); one after is enough to see where a name ends.
CONTEXT_BEFORE = 2
CONTEXT_AFTER = 1

_WORD = re.compile(r"\S+")
# The word without the punctuation around it: '"Maria,' -> 'Maria'.
_CORE = re.compile(r"[^\W_](?:.*[^\W_])?", re.DOTALL)
# The word before an apostrophe, as a list of common words has it: "He's" -> "He".
_CLITIC = re.compile(r"['’]")
# "I" and its contractions are capitalised and never a name.
_PRONOUN_I = re.compile(r"I(?:['’](?:m|ll|ve|d))?")


def candidate_windows(
    text: str,
    *,
    common_words: Collection[str],
    found: Sequence[tuple[int, int]] = (),
    before: int = CONTEXT_BEFORE,
    after: int = CONTEXT_AFTER,
) -> list[tuple[int, int]]:
    """Character ranges ``(start, end)`` of ``text`` (one sentence) that may hold a name or a place, in order
    and not overlapping; empty when no word can. ``common_words`` are lower-case words that are no name even
    when capitalised; a word inside one of the ``found`` ranges (a street address the pattern matched) is no
    candidate either. ``before`` and ``after`` are the words of context kept around each candidate."""
    words = [(m.start(), m.end(), _core(m.group(0))) for m in _WORD.finditer(text)]
    cased = any(ch.isupper() for ch in text)
    hits = [
        i
        for i, (start, end, core) in enumerate(words)
        if _is_candidate(core, cased, common_words) and not any(a <= start and end <= b for a, b in found)
    ]
    windows: list[tuple[int, int]] = []
    reach = -1  # the first word after the last window: a window starting there or before joins it
    for i in hits:
        first, last = max(0, i - before), min(len(words) - 1, i + after)
        if windows and first <= reach:
            windows[-1] = (windows[-1][0], words[last][1])
        else:
            windows.append((words[first][0], words[last][1]))
        reach = last + 1
    return windows


def _core(word: str) -> str:
    match = _CORE.search(word)
    return match.group(0) if match else ""


def _is_candidate(core: str, cased: bool, common_words: Collection[str]) -> bool:
    if not core or not any(ch.isalpha() for ch in core):
        return False
    common = _CLITIC.split(core, maxsplit=1)[0].lower() in common_words
    if not cased:
        # No capitals to go by: any word that is not common may be a name typed in lower case.
        return not common
    if not any(ch.isupper() for ch in core) or _PRONOUN_I.fullmatch(core):
        return False
    if len(core) > 1 and core.isupper():
        return True  # an abbreviation may be a place even when it spells a common word: US, OR (Oregon)
    # A capitalised common word ("The", "My", "Please") is no name, at the start of a sentence or after a
    # cut the segmenter could not make; its neighbours that can be are candidates in their own right.
    return not common
