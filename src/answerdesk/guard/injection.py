"""Prompt-injection and jailbreak defence for questions and for retrieved chunks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from answerdesk.guard.base import GuardResult, Stage


class PromptAttackPolicy(BaseModel):
    """``promptAttack`` in the policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: Attack score at or above which a text is an attack.
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    action: Literal["BLOCK", "CHALLENGE"] = "BLOCK"
    #: Also score retrieved chunks (indirect injection); a poisoned chunk is dropped from the context.
    apply_to_context: bool = Field(default=True, alias="applyToContext")


class PromptAttackGuard:
    """Scores a text for prompt injection and jailbreak attempts."""

    @property
    def name(self) -> str:
        return "injection"

    def check(self, text: str, *, stage: Stage, tenant: str | None = None) -> GuardResult:
        raise NotImplementedError
