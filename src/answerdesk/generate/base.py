"""The LLM Protocol and the values that cross it.

A provider turns a :class:`CompletionRequest` into a :class:`Completion` (``complete``) or into a stream of
:class:`StreamEvent` ending with exactly one ``finish`` event (``stream``). Both are async. A provider raises
:class:`answerdesk.errors.ProviderError` (with ``status`` and ``retry_after`` when the upstream gave them) for
every upstream failure, including timeouts, empty output and malformed or truncated streams, so that the
resilience wrappers can retry or fail over; it never returns partial output as if it were complete.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from answerdesk.types import Message, Usage

FinishReason = Literal["stop", "length", "content_filter", "error"]


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    messages: Sequence[Message]
    max_tokens: int = 512
    temperature: float = 0.0
    stop: Sequence[str] = ()
    #: Seconds one attempt may take.
    timeout_s: float = 60.0
    #: ``time.monotonic()`` by which the whole call, retries and fallbacks included, must end.
    deadline: float | None = None

    def remaining(self) -> float:
        """Seconds left before the deadline (``timeout_s`` when there is none); never negative."""
        if self.deadline is None:
            return self.timeout_s
        return max(0.0, min(self.timeout_s, self.deadline - time.monotonic()))


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    usage: Usage
    finish_reason: FinishReason
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """``delta`` carries new text; ``finish`` closes the stream with usage and the finish reason; ``switch``
    says that a wrapper moved to another model mid-stream (``text`` names it) — text already sent stays valid."""

    kind: Literal["delta", "finish", "switch"]
    text: str = ""
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    provider: str = ""
    model: str = ""


@dataclass(slots=True)
class CallRecord:
    """What happened around a model call: retries, fallbacks, cool-downs. Wrappers append; answers carry it."""

    attempts: int = 0
    retries: int = 0
    fallbacks: list[str] = field(default_factory=list)
    skipped_cooling: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class LLM(Protocol):
    @property
    def provider(self) -> str:
        """Provider id, e.g. ``openai_compat``, ``bedrock``, ``llamacpp``, ``extractive``."""
        ...

    @property
    def model(self) -> str:
        """Model id as the provider knows it."""
        ...

    @property
    def context_window(self) -> int:
        """Tokens of prompt plus output the model accepts."""
        ...

    async def complete(self, request: CompletionRequest) -> Completion:
        """The whole answer. Raises :class:`ProviderError`."""
        ...

    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Deltas, then one ``finish`` event. Raises :class:`ProviderError`, possibly after some deltas."""
        ...
