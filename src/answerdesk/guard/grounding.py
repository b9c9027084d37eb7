"""Grounding and relevance of an answer: is it supported by the context, does it answer the question."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ContextualGroundingPolicy(BaseModel):
    """``contextualGrounding`` in the policy file; below either threshold the response action applies."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    grounding_threshold: float = Field(default=0.5, ge=0.0, le=1.0, alias="groundingThreshold")
    relevance_threshold: float = Field(default=0.3, ge=0.0, le=1.0, alias="relevanceThreshold")
    response_action: Literal["REFUSE_WITH_TEMPLATE", "CHALLENGE"] = Field(
        default="REFUSE_WITH_TEMPLATE", alias="responseAction"
    )


def grounding_score(answer: str, context: list[str]) -> float:
    raise NotImplementedError


def relevance_score(answer: str, question: str) -> float:
    raise NotImplementedError
