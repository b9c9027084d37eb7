"""Where PII redaction may cut text: the points a streaming redactor releases text at.

A cut falls only where no match can span it, and whether a position is a cut depends only on the text up to
the first character after it, so a streaming redactor that cuts a growing buffer finds exactly the cuts of
the whole text, and each piece it releases has exactly the matches the whole text has there. Names and
multi-word patterns are detected sentence by sentence (each ``sentence`` segment alone, in batch too), since
a recognizer's view of a sentence depends on all of it; pattern entities are detected on the whole text.

- ``word``: whitespace between two lower-case letters. No built-in pattern entity (email, phone, card, IBAN,
  SSN, IP address) can contain it, so text is held back only while a candidate is still open.
- ``sentence``: whitespace after ``!`` or ``?``, after a ``.`` that ends neither an initial nor a common
  abbreviation and is followed by a word not in lower case, or a line break. Used when names, places, addresses
  or multi-word custom patterns are detected, which may contain spaces between words.

Text with no cut (a single 1 MB token) is one segment: held back whole, never cut inside a match.
"""

from __future__ import annotations

import itertools
import re
from typing import Literal

SegmentMode = Literal["word", "sentence"]

_CUTS: dict[SegmentMode, re.Pattern[str]] = {
    "word": re.compile(r"(?<=[a-z])\s+(?=[a-z])"),
    # A full stop ends a sentence unless it ends an initial or a common abbreviation ("J.", "p.o.", "Apt.",
    # "St."), which addresses and names are full of, or the next word starts in lower case.
    "sentence": re.compile(
        r"(?:(?<=[!?])\s+"
        r"|(?<=\.)(?<!\b\w\.)(?<!\b(?:Mr|Ms|Dr|St|Jr|Sr|No|Rd|Co|vs|Mt|Ft|Fl)\.)"
        r"(?<!\b(?:Mrs|Apt|Ave|Ste|Inc|Ltd|etc|Bld|Dpt)\.)(?<!\b(?:Blvd|Dept|Corp|Univ)\.)\s+(?=[^\sa-z])"
        r"|\n\s*)(?=\S)"
    ),
}


def cut_positions(text: str, mode: SegmentMode) -> list[int]:
    """Offsets at which a new segment starts (each after the whitespace that ends the one before)."""
    return [m.end() for m in _CUTS[mode].finditer(text)]


def split_segments(text: str, mode: SegmentMode) -> list[str]:
    """``text`` split at its cuts; joining the segments gives ``text`` back."""
    bounds = [0, *cut_positions(text, mode), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def last_cut(text: str, mode: SegmentMode) -> int:
    """The offset of the last cut in ``text`` (0 when none): everything before it is complete segments."""
    cuts = cut_positions(text, mode)
    return cuts[-1] if cuts else 0
