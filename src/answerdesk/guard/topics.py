"""Denied topics: questions about subjects a tenant does not want answered, by similarity to a definition."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from answerdesk.guard.base import GuardResult, Stage


class DeniedTopic(BaseModel):
    """One topic the assistant must not engage with: a definition, a few example questions, keyword hints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    examples: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    #: Cosine similarity at or above which a text is on this topic; ``None`` takes the guard's default.
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)


class DeniedTopicsGuard:
    """Blocks texts close to a denied topic."""

    @property
    def name(self) -> str:
        return "topics"

    def check(self, text: str, *, stage: Stage, tenant: str | None = None) -> GuardResult:
        raise NotImplementedError
