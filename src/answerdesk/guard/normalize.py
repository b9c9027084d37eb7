"""Text normalization for matching: the form word filters, topic keywords and injection heuristics look at.

The result is for *matching only*; the text passed on stays as the user wrote it.
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width characters and bidi controls: invisible, so they can split a word ("ig\u200bnore") without a
# reader noticing.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
_SPACE = re.compile(r"\s+")


def normalize_for_matching(text: str) -> str:
    """NFKC, invisible controls stripped, lower-cased, whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    return _SPACE.sub(" ", text.casefold()).strip()
