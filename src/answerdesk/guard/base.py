"""The Guard Protocol and the values guards return.

A guard looks at one text at one stage of the spine and returns a :class:`GuardResult`: the text to pass on
(unchanged, or redacted) and the :class:`Finding`\\ s that explain what it saw. A guard never raises for what
it finds; a guard that *fails* (a detector crashed) raises :class:`answerdesk.errors.GuardError`, and the caller
decides to fail closed (the default) or open, and records that it did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

Stage = Literal["input", "context", "output"]
#: What a finding asks for, from mildest to strictest. REFUSE answers with the refusal template.
Action = Literal["ALLOW", "REDACT", "CHALLENGE", "REFUSE", "BLOCK"]
ACTION_ORDER: tuple[Action, ...] = ("ALLOW", "REDACT", "CHALLENGE", "REFUSE", "BLOCK")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a guard saw. ``match_sha256`` is the hash of the matched text; the text itself is never kept."""

    guard: str
    rule: str
    action: Action
    stage: Stage
    score: float | None = None
    match_sha256: str | None = None
    #: Character span in the text the guard was given, when the finding has one.
    span: tuple[int, int] | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class GuardResult:
    text: str
    findings: tuple[Finding, ...] = ()

    @property
    def action(self) -> Action:
        """The strictest action among the findings (``ALLOW`` when there are none)."""
        return strictest(f.action for f in self.findings)


def strictest(actions: Iterable[Action]) -> Action:
    """The strictest of ``actions`` by :data:`ACTION_ORDER`; ``ALLOW`` for none."""
    return max(actions, key=ACTION_ORDER.index, default="ALLOW")


class Guard(Protocol):
    @property
    def name(self) -> str:
        """Stable id used in findings, audit events and metrics, e.g. ``pii``, ``words``, ``topics``."""
        ...

    def check(self, text: str, *, stage: Stage, tenant: str | None = None) -> GuardResult:
        """Inspect ``text``; return the text to pass on and what was found. Raises ``GuardError`` only when the
        guard itself failed."""
        ...


@dataclass(frozen=True, slots=True)
class GuardOutcome:
    """What all the guards of one stage decided: the text to pass on and every finding, in guard order."""

    text: str
    findings: tuple[Finding, ...] = ()
    #: The reply to give instead of an answer when the outcome blocks (the policy's ``blockedMessage``).
    message: str = ""

    @property
    def action(self) -> Action:
        return strictest(f.action for f in self.findings)

    @property
    def blocked(self) -> bool:
        return self.action == "BLOCK"

    @property
    def review_required(self) -> bool:
        """A guard challenged the text: it goes on, marked for an agent to confirm or a reviewer to check."""
        return any(f.action == "CHALLENGE" for f in self.findings)


@dataclass(frozen=True, slots=True)
class ContextOutcome:
    """The retrieved chunks the context guards kept (their positions) and what they found in the rest."""

    kept: tuple[int, ...]
    findings: tuple[Finding, ...] = ()
