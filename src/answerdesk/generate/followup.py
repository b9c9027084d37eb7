"""Follow-up questions to standalone retrieval queries.

"What about the annual plan?" retrieves nothing useful on its own; the turn before it carries the topic. A
question that already names its topic (enough content words, no pronoun pointing back) is used as is;
otherwise the previous user turn is prepended. Pure function; no model call, so it costs nothing per request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from answerdesk.generate.sentences import content_words
from answerdesk.types import Message

_BACK_REFERENCE = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|he|she|him|her|there|one|ones|same|such|above|"
    r"what about|how about|and if|also|else|instead|too)\b",
    re.IGNORECASE,
)
SELF_CONTAINED_WORDS = 4


def standalone_query(question: str, history: Sequence[Message]) -> str:
    """The text to retrieve with for ``question`` asked after ``history`` (oldest turn first)."""
    previous = [m.content for m in history if m.role == "user" and m.content.strip()]
    if not previous:
        return question
    enough_words = len(content_words(question)) >= SELF_CONTAINED_WORDS
    if enough_words and not _BACK_REFERENCE.search(question):
        return question
    return f"{previous[-1].strip()} {question.strip()}"
