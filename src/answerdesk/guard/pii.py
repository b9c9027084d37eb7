"""The PII guard: find personal data, replace it with typed placeholders (``[EMAIL_1]``) or block.

Built-in pattern entities (:mod:`answerdesk.guard.pii_patterns`) need nothing but the core install; PERSON,
LOCATION and ADDRESS need a recognizer (:mod:`answerdesk.guard.ner`, the ``[ner]`` extra) and are only
looked for when the policy lists them. Custom entities are regexes from the policy, run by the ``regex``
package with a timeout, and probed with pathological input when the policy is loaded.

Detection runs on the segments of :mod:`answerdesk.guard.segments`, so batch and streaming redaction agree.
Placeholders come from a :class:`Placeholders` map kept per conversation: the same value gets the same
placeholder in every message of it.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from typing import Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from answerdesk.errors import ConfigError, GuardError
from answerdesk.guard.base import Finding, GuardResult, Stage
from answerdesk.guard.ner import NER_ENTITIES, EntityRecognizer
from answerdesk.guard.pii_patterns import DETECTORS, PATTERN_ENTITIES, PiiSpan, resolve_overlaps
from answerdesk.guard.segments import SegmentMode, split_segments

PiiAction = Literal["REDACT", "BLOCK"]
#: Names support teams use for the same entities (and Presidio's), accepted in a policy.
ENTITY_ALIASES = {
    "SSN": "US_SSN",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "IBAN_CODE": "IBAN",
    "IP": "IP_ADDRESS",
    "NAME": "PERSON",
}
BUILTIN_ENTITIES = PATTERN_ENTITIES + NER_ENTITIES
_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
#: Strings a custom pattern must get through within its timeout when the policy is loaded: long runs that
#: make a backtracking pattern like ``(a+)+b`` or ``(\d+)*x`` try every way of splitting them.
_PROBES = tuple(ch * 2000 + end for ch in ("a", "1", " ", "a1", "-", ".") for end in ("!", "\n"))


class PiiEntity(BaseModel):
    """One entity of ``piiEntities`` with its own action; a bare name takes the section's action."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    action: PiiAction | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        value = ENTITY_ALIASES.get(value.upper(), value.upper())
        if value not in BUILTIN_ENTITIES:
            raise ValueError(
                f"unknown PII entity '{value}'; known: {', '.join(BUILTIN_ENTITIES)} (or add it under 'regexes')"
            )
        return value


class CustomEntity(BaseModel):
    """A custom entity: ``name`` (upper case, e.g. ``ORDER_ID``) found by ``pattern``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    pattern: str
    action: PiiAction | None = None
    #: The pattern can match several words ("Project Blue Falcon"): detect it within sentences rather than
    #: between words, which makes streaming hold back a sentence instead of a word.
    multi_word: bool = Field(default=False, alias="multiWord")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value) or value in BUILTIN_ENTITIES:
            raise ValueError(f"'{value}' must be UPPER_SNAKE_CASE and not a built-in entity name")
        return value


class SensitiveInformationPolicy(BaseModel):
    """``sensitiveInformationPolicy`` in the policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    pii_entities: tuple[PiiEntity, ...] = Field(
        default=tuple(PiiEntity(type=e) for e in PATTERN_ENTITIES), alias="piiEntities"
    )
    action: PiiAction = "REDACT"
    regexes: tuple[CustomEntity, ...] = ()
    #: Milliseconds one custom pattern may run on one segment; past it the guard fails (closed by default).
    regex_timeout_ms: int = Field(default=50, ge=1, le=5000, alias="regexTimeoutMs")

    @field_validator("pii_entities", mode="before")
    @classmethod
    def _bare_names(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return [{"type": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _check_patterns(self) -> SensitiveInformationPolicy:
        for i, custom in enumerate(self.regexes):
            try:
                compiled = regex.compile(custom.pattern)
            except regex.error as exc:
                raise ValueError(f"regexes.{i} ({custom.name}): not a valid regex: {exc}") from exc
            for probe in _PROBES:
                try:
                    compiled.search(probe, timeout=self.regex_timeout_ms / 1000)
                except TimeoutError:
                    raise ValueError(
                        f"regexes.{i} ({custom.name}): the pattern backtracks catastrophically (it ran past "
                        f"{self.regex_timeout_ms} ms on {len(probe)} characters); remove nested quantifiers "
                        "such as (a+)+"
                    ) from None
        return self

    def actions(self) -> dict[str, PiiAction]:
        """The action of every entity the policy detects, custom ones included."""
        out: dict[str, PiiAction] = {e.type: e.action or self.action for e in self.pii_entities}
        out.update({c.name: c.action or self.action for c in self.regexes})
        return out

    @property
    def needs_ner(self) -> bool:
        return any(e.type in NER_ENTITIES for e in self.pii_entities)

    @property
    def segment_mode(self) -> SegmentMode:
        # Names, addresses and multi-word patterns may span spaces between words: cut only between sentences.
        return "sentence" if self.needs_ner or any(c.multi_word for c in self.regexes) else "word"


class Placeholders:
    """Typed placeholders for one conversation: the same value always gets the same ``[ENTITY_n]``."""

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def label(self, entity: str, value: str) -> str:
        # Spacing, dashes and case vary between mentions of one card or phone number; they are one value.
        key = (entity, re.sub(r"[\s().-]", "", value).casefold())
        with self._lock:
            found = self._by_value.get(key)
            if found is None:
                self._counts[entity] = self._counts.get(entity, 0) + 1
                found = self._by_value[key] = f"[{entity}_{self._counts[entity]}]"
            return found

    def __len__(self) -> int:
        return len(self._by_value)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PiiGuard:
    """Redacts (or blocks on) the PII its policy lists, at every stage."""

    def __init__(
        self, policy: SensitiveInformationPolicy | None = None, *, recognizer: EntityRecognizer | None = None
    ) -> None:
        self._policy = policy or SensitiveInformationPolicy()
        self._actions = self._policy.actions()
        self._patterns = tuple(e for e in PATTERN_ENTITIES if e in self._actions)
        self._ner = frozenset(e for e in NER_ENTITIES if e in self._actions)
        self._custom = tuple((c.name, regex.compile(c.pattern)) for c in self._policy.regexes)
        self._recognizer = recognizer
        self._timeout = self._policy.regex_timeout_ms / 1000

    @property
    def name(self) -> str:
        return "pii"

    @property
    def policy(self) -> SensitiveInformationPolicy:
        return self._policy

    @property
    def segment_mode(self) -> SegmentMode:
        return self._policy.segment_mode

    def without_ner(self) -> PiiGuard:
        """This guard with names, places and addresses left out: the fallback when the recognizer fails."""
        kept = tuple(e for e in self._policy.pii_entities if e.type not in NER_ENTITIES)
        return PiiGuard(self._policy.model_copy(update={"pii_entities": kept}))

    def check(self, text: str, *, stage: Stage, tenant: str | None = None) -> GuardResult:
        return self.redact(text, stage=stage, placeholders=Placeholders())

    def redact(self, text: str, *, stage: Stage, placeholders: Placeholders) -> GuardResult:
        """``text`` with every detected entity replaced by its placeholder, and one finding per entity found.
        Raises ``GuardError`` when a detector fails, ``ConfigError`` when the NER extra is missing."""
        # Names and multi-word patterns are detected sentence by sentence, so that a streamed prefix sees exactly
        # the sentences the whole text has. Pattern entities never span a word cut (see segments.py), so the
        # whole text gives the matches its cut-up pieces would, in one pass instead of one per word.
        mode = self.segment_mode
        segments = split_segments(text, mode) if mode == "sentence" else [text] if text else []
        return self.redact_segments(segments, stage=stage, placeholders=placeholders)

    def redact_segments(self, segments: Sequence[str], *, stage: Stage, placeholders: Placeholders) -> GuardResult:
        """Redact text already split into segments, each detected on its own."""
        if not segments:
            return GuardResult("")
        spans_per_segment = self._detect(segments)
        parts: list[str] = []
        findings: list[Finding] = []
        offset = 0
        for segment, spans in zip(segments, spans_per_segment, strict=True):
            cursor = 0
            for span in spans:
                parts.append(segment[cursor : span.start])
                parts.append(placeholders.label(span.entity, span.value))
                cursor = span.end
                findings.append(
                    Finding(
                        guard=self.name,
                        rule=span.entity,
                        action=self._actions.get(span.entity, self._policy.action),
                        stage=stage,
                        match_sha256=sha256(span.value),
                        span=(offset + span.start, offset + span.end),
                    )
                )
            parts.append(segment[cursor:])
            offset += len(segment)
        return GuardResult("".join(parts), tuple(findings))

    def _detect(self, segments: Sequence[str]) -> list[list[PiiSpan]]:
        try:
            found = [[s for e in self._patterns for s in DETECTORS[e](seg)] for seg in segments]
            for name, pattern in self._custom:
                for i, seg in enumerate(segments):
                    found[i] += [
                        PiiSpan(m.start(), m.end(), name, m.group(0))
                        # concurrent=False keeps the GIL: a match on a few words takes microseconds, while
                        # releasing and taking back the GIL on a busy server took 0.5 ms each time, and the
                        # streaming redactor runs this on the event loop for every chunk.
                        for m in pattern.finditer(seg, timeout=self._timeout, concurrent=False)
                        if m.end() > m.start()
                    ]
        except TimeoutError as exc:
            raise GuardError(self.name, f"a custom pattern ran past {self._policy.regex_timeout_ms} ms") from exc
        except Exception as exc:  # a detector bug must not let raw PII through: the caller fails closed
            raise GuardError(self.name, f"detector failed: {exc}") from exc
        if self._ner:
            found = self._add_ner(segments, found)
        priority = (*(c.name for c in self._policy.regexes), *self._patterns, *NER_ENTITIES)
        return [resolve_overlaps(spans, priority=priority) for spans in found]

    def _add_ner(self, segments: Sequence[str], found: list[list[PiiSpan]]) -> list[list[PiiSpan]]:
        if self._recognizer is None:
            raise ConfigError(
                "the guard policy lists " + ", ".join(sorted(self._ner)) + " but no recognizer is configured"
            )
        try:
            named = self._recognizer.find(segments, self._ner)
        except ConfigError:
            raise
        except Exception as exc:
            raise GuardError(self.name, f"entity recognizer failed: {exc}") from exc
        return [a + b for a, b in zip(found, named, strict=True)]
