"""Pattern detectors for PII with a checksum or validity rule: pure functions from text to spans.

Each detector finds candidates with a linear-time regex and keeps only those its rule accepts, so precision
comes from the rule (Luhn, mod-97, SSN allocation, ``ipaddress``, ``phonenumbers``), not from a tight regex.

Every pattern is delimited by look-arounds that treat the start and end of the text like a space or a
letter-free neighbour, and no match spans whitespace between two lower-case letters. That is what lets the
streaming redactor cut text at such whitespace and find exactly the matches the whole text has
(:mod:`answerdesk.guard.streaming`).
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import phonenumbers

#: The built-in pattern entities, in the order their matches win an overlap (stricter rules first).
PATTERN_ENTITIES = ("EMAIL", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS", "PHONE")


@dataclass(frozen=True, slots=True, order=True)
class PiiSpan:
    start: int
    end: int
    entity: str
    value: str


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
# 13-19 digits, optionally in groups split by single spaces or dashes.
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
# Compact (any case) or in groups of four split by single spaces (upper case only: see the module docstring).
_IBAN = re.compile(
    r"(?<!\w)(?:[A-Za-z]{2}\d{2}[A-Za-z0-9]{11,30}|[A-Z]{2}\d{2}(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)(?!\w)"
)
_SSN = re.compile(r"(?<![\w-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\w-])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
# A phone-number candidate: digits with the separators people write, optional + and extension. The digit
# groups are possessive so that a long run of digits cannot make the regex try every way of splitting it.
_PHONE = re.compile(
    r"(?<![\w+.-])(?:\+|00)?\(?\d{1,4}+\)?(?:[ .-]{0,2}\(?\d{1,4}+\)?){1,5}(?:\s?(?:x|ext\.?)\s?\d{1,6})?(?!\w|-\d)"
)
# Dates and times are digit groups with separators too; a candidate shaped like one is not a phone number.
_DATE_LIKE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}|\d{1,2}[:.]\d{2}(?:[:.]\d{2})?")
# A North American number written as one (3-3-4 digits with separators, optional +1 / 001 and extension)
# is a phone number to whoever reads it, whether or not its area code is assigned: redact it.
_NANP_SHAPE = re.compile(
    r"(?:\+1[-. ]?|001[-. ]|1[-. ])?(?:\(\d{3}\) ?|\d{3}[-.])\d{3}[-.]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,6})?"
)
_EXTENSION = re.compile(r"\s?(?:x|ext\.?)\s?\d{1,6}$")
#: Regions whose numbering plans a number without a ``+`` prefix is tried against, most likely first.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU", "NL", "IT", "ES", "BR")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check: move the first four characters to the end, letters to numbers, remainder 1."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """SSA allocation rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _cards(text: str) -> Iterator[PiiSpan]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            yield PiiSpan(m.start(), m.end(), "CREDIT_CARD", m.group(0))


def _ibans(text: str) -> Iterator[PiiSpan]:
    for m in _IBAN.finditer(text):
        if iban_valid(m.group(0)):
            yield PiiSpan(m.start(), m.end(), "IBAN", m.group(0))


def _ssns(text: str) -> Iterator[PiiSpan]:
    for m in _SSN.finditer(text):
        # Nine bare digits are far more often an order or account number than an SSN: a separator is required.
        if m.group(2) and ssn_valid(m.group(1), m.group(3), m.group(4)):
            yield PiiSpan(m.start(), m.end(), "US_SSN", m.group(0))


def _ips(text: str) -> Iterator[PiiSpan]:
    for pattern in (_IPV4, _IPV6):
        for m in pattern.finditer(text):
            value = m.group(0)
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                continue
            # "::" or "1::" alone are more often text (C++ scopes, times) than an address worth hiding.
            if address.version == 6 and value.count(":") < 3 and not address.ipv4_mapped:
                continue
            yield PiiSpan(m.start(), m.end(), "IP_ADDRESS", value)


def _emails(text: str) -> Iterator[PiiSpan]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        yield PiiSpan(m.start(), m.end(), "EMAIL", m.group(0))


def phone_valid(candidate: str) -> bool:
    """Whether ``candidate`` is a valid number in an international form or in one of :data:`PHONE_REGIONS`."""
    if _NANP_SHAPE.fullmatch(candidate):
        return True
    number = _EXTENSION.sub("", candidate)
    digits = sum(ch.isdigit() for ch in number)
    if not 7 <= digits <= 15:
        return False
    regions: tuple[str | None, ...] = (None,) if number.startswith("+") else PHONE_REGIONS
    for region in regions:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return True
    return False


def _phones(text: str) -> Iterator[PiiSpan]:
    for m in _PHONE.finditer(text):
        value = m.group(0).strip()
        # A bare run of digits is an order, tracking or account number far more often than a phone number.
        if (value.isdigit() and len(value) != 10) or _DATE_LIKE.fullmatch(value):
            continue
        if phone_valid(value):
            start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
            yield PiiSpan(start, start + len(value), "PHONE", value)


DETECTORS: dict[str, Callable[[str], Iterator[PiiSpan]]] = {
    "EMAIL": _emails,
    "CREDIT_CARD": _cards,
    "IBAN": _ibans,
    "US_SSN": _ssns,
    "IP_ADDRESS": _ips,
    "PHONE": _phones,
}


def find_patterns(text: str, entities: tuple[str, ...] = PATTERN_ENTITIES) -> list[PiiSpan]:
    """Every valid match of the given pattern entities, overlaps resolved by :func:`resolve_overlaps`."""
    spans = [span for entity in entities for span in DETECTORS[entity](text)]
    return resolve_overlaps(spans, priority=entities)


def resolve_overlaps(spans: list[PiiSpan], *, priority: tuple[str, ...] = ()) -> list[PiiSpan]:
    """Non-overlapping spans in text order: of two that overlap, the longer wins, then the earlier entity in
    ``priority``, then the earlier start."""
    rank = {entity: i for i, entity in enumerate(priority)}
    ordered = sorted(spans, key=lambda s: (-(s.end - s.start), rank.get(s.entity, len(rank)), s.start))
    # Kept spans are disjoint, so sorted by start they are sorted by end too: a new span only has to be checked
    # against its neighbours (a long text can hold tens of thousands of matches).
    starts: list[int] = []
    kept: list[PiiSpan] = []
    for span in ordered:
        i = bisect.bisect_left(starts, span.start)
        if i < len(kept) and kept[i].start < span.end:
            continue
        if i > 0 and kept[i - 1].end > span.start:
            continue
        starts.insert(i, span.start)
        kept.insert(i, span)
    return kept
