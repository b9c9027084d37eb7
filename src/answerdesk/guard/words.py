"""Word filters: phrases a tenant does not want in questions or answers, matched the way a person reads them.

Phrases and text are both put into their matching form (:func:`answerdesk.guard.normalize.normalize_for_matching`:
NFKC, homoglyphs folded, invisible and bidi controls stripped, leetspeak folded, lower case, single spaces),
and a phrase matches only as whole words, so "card" does not fire inside "discard" but "Cr3dit  C\u0430rd"
(a Cyrillic a, a doubled space) is "credit card". BLOCK refuses; CHALLENGE lets the answer through marked
for an agent to confirm or a reviewer to check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from answerdesk.errors import GuardError
from answerdesk.guard.base import Finding, GuardResult, Stage
from answerdesk.guard.normalize import normalize_for_matching
from answerdesk.guard.pii import sha256


class WordFilter(BaseModel):
    """One entry of ``wordFilters``: a word or phrase and what a match does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = Field(min_length=1, max_length=200)
    action: Literal["BLOCK", "CHALLENGE"] = "BLOCK"
    #: Stages the filter applies to; both by default.
    stages: tuple[Literal["input", "output"], ...] = ("input", "output")

    @field_validator("match")
    @classmethod
    def _visible(cls, value: str) -> str:
        if not normalize_for_matching(value):
            raise ValueError("the phrase is empty once normalized (only spaces or invisible characters)")
        return value


class WordFilterGuard:
    """Matches every filter in one pass over the matching form of the text."""

    def __init__(self, filters: Sequence[WordFilter]) -> None:
        self._filters = tuple(filters)
        self._phrases = tuple(normalize_for_matching(f.match) for f in self._filters)
        # One alternation, longest phrase first, so "credit card number" wins over "credit card".
        order = sorted(range(len(self._phrases)), key=lambda i: -len(self._phrases[i]))
        self._index = {self._phrases[i]: i for i in reversed(order)}
        self._pattern = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(self._phrases[i]) for i in order) + r")(?!\w)")
            if self._filters
            else None
        )

    @property
    def name(self) -> str:
        return "words"

    def check(self, text: str, *, stage: Stage, tenant: str | None = None) -> GuardResult:
        if self._pattern is None or stage == "context":
            return GuardResult(text)
        try:
            normalized = normalize_for_matching(text)
            findings = []
            seen: set[int] = set()
            for m in self._pattern.finditer(normalized):
                i = self._index[m.group(0)]
                f = self._filters[i]
                if i in seen or stage not in f.stages:
                    continue
                seen.add(i)
                findings.append(
                    Finding(
                        guard=self.name,
                        rule=f.match,
                        action=f.action,
                        stage=stage,
                        match_sha256=sha256(m.group(0)),
                        detail="matched after normalization" if m.group(0) not in text.casefold() else "",
                    )
                )
        except Exception as exc:  # normalization failing must not let a filtered phrase through
            raise GuardError(self.name, str(exc)) from exc
        return GuardResult(text, tuple(findings))
