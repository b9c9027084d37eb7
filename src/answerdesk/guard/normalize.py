"""Text normalization for matching: the form word filters, topic keywords and injection detectors look at.

Attackers dodge filters with text that reads the same to a person but not to a regex: fullwidth or
mathematical letters (NFKC folds those), Cyrillic or Cherokee look-alikes ("іgnоrе"), zero-width characters
inside a word, bidi overrides, and leetspeak ("1gn0r3"). :func:`normalize_for_matching` folds all of them to
plain lower-case text. The result is for *matching only*: the text passed on stays as the user wrote it.

Homoglyph folding uses ``decancer`` (Rust, via ``decancer-py``): it carries the Unicode confusables table and
far more look-alike families than a hand-kept table would, at about 40 µs per KB here.
"""

from __future__ import annotations

import re
import unicodedata

import decancer_py

# Zero-width characters, joiners, bidi embeddings/overrides/isolates, soft hyphen, Hangul fillers and
# variation selectors: invisible, so they can split or reorder a word without a reader noticing. Stripped
# before homoglyph folding, which would otherwise turn some of them into spaces.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)
_SPACE = re.compile(r"\s+")
_LATIN = re.compile(r"[A-Za-z]")
# A run of letters, digits and leet symbols that holds at least one letter and one digit or symbol.
# ("!", "|" and "+" are left alone: at a word's end they are punctuation far more often than disguise.)
_LEET_TOKEN = re.compile(r"(?=[a-z0-9@$]*[a-z])(?=[a-z0-9@$]*[0-9@$])[a-z0-9@$]{3,}")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s"})
# Tokens that mix letters and digits on purpose; folding them would only blur what they mean.
_KEEP = re.compile(r"[0-9]+[a-z]{1,3}|[a-z]{1,10}[0-9]+")


def normalize_for_matching(text: str) -> str:
    """The matching form of ``text``: NFKC, invisible and bidi controls stripped, homoglyphs folded to Latin,
    lower-cased, common leetspeak folded, whitespace collapsed to single spaces.

    Text with no Latin letters after NFKC (a question written in Greek, Cyrillic or Chinese) keeps its script:
    folding it to Latin look-alikes would only invent words. Emoji are kept.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _SPACE.sub(" ", text).strip()
    if not text:
        return ""
    if _LATIN.search(text):
        text = str(decancer_py.parse(text, retain_emojis=True))
    text = text.casefold()
    return _LEET_TOKEN.sub(_fold_leet, text)


def _fold_leet(match: re.Match[str]) -> str:
    token = match.group(0)
    if _KEEP.fullmatch(token):  # "2fa", "4th", "mp3", "covid19": real words, not disguise
        return token
    return token.translate(_LEET)
