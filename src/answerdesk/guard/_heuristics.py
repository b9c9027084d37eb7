# ruff: noqa: E501  (each rule reads best as one pattern on one line)
"""Hand-written prompt-attack rules and encoded-payload decoding, over the matching form of a text.

The rules catch the phrasings that every attack family shares (override the instructions, take on an
unrestricted persona, reveal the system prompt) with few words and no training; the classifier catches the
rest. A rule fires with a fixed score (:data:`RULE_SCORE`), above any sensible threshold: the rules are kept
narrow so that support questions ("ignore my last order", "disregard the above message", "tell me the
password requirements", "show me the instructions for the router") do not match. Encoded payloads (base64, hex, rot13) are decoded so that both the rules and the classifier can look at
what they hide.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass

RULE_SCORE = 0.99
_PREV = r"(?:all |any |the |your |these |those )*(?:previous|prior|preceding|above|earlier|former|original|initial|system|developer|safety|existing)"
_RULES_WORD = r"(?:instructions?|rules?|prompts?|directions?|directives?|guidelines?|commands?|constraints?|restrictions?|guardrails?|polic(?:y|ies)|programming)"
_REVEAL = r"(?:reveal|print|show|display|repeat|output|leak|dump|tell me|give me|write out|spell out|recite|disclose|paste|echo|share)"
_SECRET = r"(?:system prompt|initial prompt|hidden prompt|original prompt|pre-?prompt|system message|initial instructions|hidden instructions|secret instructions|original instructions|developer message)"

#: (rule id, pattern) over the normalized text. Rule ids are stable: they land in findings and the audit log.
RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("override", rf"\b(?:ignore|disregard|forget|bypass|override|skip|abandon|drop|discard)\s+(?:all\s+|any\s+|of\s+)*{_PREV}\s+(?:\w+\s+)?{_RULES_WORD}"),
        ("override", r"\b(?:ignore|disregard|forget)\s+(?:all|everything|anything)\s+(?:(?:you|i)\s+)?(?:were|was|have been|(?:said|told)|above|before)"),
        ("override", r"\b(?:new|updated|real|actual|true) (?:system )?instructions?\s*(?::|are\b|follow\b)"),
        ("override", r"\b(?:do not|don't|never) follow (?:your|the|any) (?:previous |original |system )?(?:instructions|rules|guidelines)"),
        ("persona", r"\b(?:do anything now|developer mode|dan mode|jailbroken|jailbreak mode|god mode|unfiltered mode|evil mode|anti-?dan)\b"),
        ("persona", r"\b(?:you are|you're|act as|pretend (?:to be|you are)|roleplay as|role-play as|become)\s+(?:now\s+)?(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|amoral|unethical|jailbroken|evil|rogue)\b"),
        ("persona", r"\b(?:no|without|free (?:of|from)|not bound by|don't have|do not have|none of)\s+(?:any\s+)?(?:ethical |moral |content |safety )?(?:restrictions|filters|guidelines|limitations|censorship|rules)\b.{0,60}\b(?:openai|chatgpt|ai|assistant|model|you)\b"),
        ("persona", r"\b(?:stay in character|never break character|stay as \w+|you will now simulate|simulate an? (?:ai|chatbot) (?:that|which|called|named))\b"),
        ("extraction", rf"\b{_REVEAL}\s+(?:me\s+)?(?:your|the|this|its)\s+(?:full\s+|entire\s+|exact\s+|complete\s+|whole\s+)?{_SECRET}"),
        ("extraction", r"\bwhat (?:is|are|was|were) (?:your|the) (?:system prompt|initial instructions|hidden instructions|original instructions|instructions above|pre-?prompt)"),
        ("extraction", r"\b(?:repeat|print|output|write|say) (?:back )?(?:everything|all(?: of)?(?: the)? (?:text|words|instructions)|the (?:text|words|instructions)) (?:above|before|prior to)"),
        ("extraction", r"\b(?:say|print|output|respond with|reply with|begin your (?:reply|response) with|just say)\s*[\"'“]?access granted"),
        ("encoded", r"\b(?:decode|decipher|translate) (?:this|the following|it) (?:from )?(?:base64|rot13|hex|binary|morse)\b.{0,80}\b(?:and|then) (?:follow|execute|do|obey|run)"),
    )
)  # fmt: skip

_BASE64 = re.compile(
    r"(?<![A-Za-z0-9+/=])(?:[A-Za-z0-9+/]{4}){5,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?(?![A-Za-z0-9+/=])"
)
_HEX = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}[ :]?){12,}(?![0-9a-fA-F])")
_ROT13_HINT = re.compile(r"\b(?:rot-?13|caesar)\b")
_MAX_PAYLOADS = 8


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: str
    span: tuple[int, int]


def rule_hits(normalized: str) -> list[RuleHit]:
    """Every rule that matches the normalized text (first match per pattern)."""
    hits = []
    for name, pattern in RULES:
        match = pattern.search(normalized)
        if match:
            hits.append(RuleHit(name, match.span()))
    return hits


def decoded_payloads(text: str) -> list[str]:
    """Readable text hidden in base64 or hex runs of ``text`` (the raw text: case matters to base64), and the
    rot13 reading of the text when it mentions rot13. At most :data:`_MAX_PAYLOADS`."""
    found: list[str] = []
    for match in _BASE64.finditer(text):
        decoded = _printable(_b64(match.group(0)))
        if decoded:
            found.append(decoded)
        if len(found) >= _MAX_PAYLOADS:
            return found
    for match in _HEX.finditer(text):
        decoded = _printable(_unhex(match.group(0)))
        if decoded:
            found.append(decoded)
        if len(found) >= _MAX_PAYLOADS:
            return found
    if _ROT13_HINT.search(text.lower()):
        found.append(codecs.decode(text, "rot13"))
    return found


def _b64(run: str) -> bytes:
    try:
        return base64.b64decode(run + "=" * (-len(run) % 4), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _unhex(run: str) -> bytes:
    try:
        return bytes.fromhex(re.sub(r"[ :]", "", run))
    except ValueError:
        return b""


def _printable(data: bytes) -> str:
    """The decoded bytes as text if they read as words (mostly letters and spaces), else ``""``: a random
    base64 token (an id, a hash, an image) decodes to noise and is not worth scoring."""
    if len(data) < 12:
        return ""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    letters = sum(c.isalpha() or c == " " for c in text)
    return text if letters / len(text) >= 0.8 and " " in text else ""
