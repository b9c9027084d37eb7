"""Reading a Converse event stream: which events add text, which end it, and which are errors.

boto3 yields one dict per event (``messageStart``, ``contentBlockStart``, ``contentBlockDelta``,
``contentBlockStop``, ``messageStop``, ``metadata``). An exception event (``throttlingException``,
``modelStreamErrorException`` …) is raised by boto3 as ``EventStreamError``; it may also arrive as a dict
keyed by its name, as the API model allows, and both become the same :class:`ProviderError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from answerdesk._bedrock import service_error
from answerdesk.errors import ProviderError
from answerdesk.generate._bedrock_convert import BAD_UPSTREAM_RESPONSE, finish_reason, usage
from answerdesk.generate.base import StreamEvent
from answerdesk.types import Message

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import ConverseStreamOutputTypeDef, TokenUsageTypeDef

EXCEPTION_EVENTS = (
    "throttlingException",
    "modelStreamErrorException",
    "internalServerException",
    "serviceUnavailableException",
    "validationException",
)


@dataclass(slots=True)
class ConverseStreamState:
    """What a Converse stream has said so far."""

    label: str
    pieces: list[str] = field(default_factory=list)
    chars: int = 0
    stop_reason: str | None = None
    usage: TokenUsageTypeDef | None = None

    def read(self, event: ConverseStreamOutputTypeDef) -> str:
        """The text ``event`` adds (often ""); records the stop reason and usage.

        Raises :class:`ProviderError` for an exception event.
        """
        raw: Mapping[str, object] = event
        for name in EXCEPTION_EVENTS:
            body = raw.get(name)
            if isinstance(body, Mapping):
                raise self._exception_event(name, body)
        delta = event.get("contentBlockDelta")
        if delta is not None:
            text = delta.get("delta", {}).get("text") or ""
            if text:
                self.pieces.append(text)
                self.chars += len(text)
            return text
        stop = event.get("messageStop")
        if stop is not None:
            self.stop_reason = stop.get("stopReason")
        metadata = event.get("metadata")
        if metadata is not None:
            self.usage = metadata.get("usage")
        return ""

    def finish(self, messages: Sequence[Message], *, provider: str, model: str) -> StreamEvent:
        """The closing ``finish`` event. Raises :class:`ProviderError` (502) when the stream ended without
        ``messageStop``, carried no text, or stopped for a reason that does not end an answer."""
        if self.stop_reason is None:
            raise ProviderError(
                f"{self.label}: stream cut short: it ended without messageStop after {self.chars} characters",
                status=BAD_UPSTREAM_RESPONSE,
            )
        reason = finish_reason(self.stop_reason, label=self.label)
        if not self.chars:
            raise ProviderError(
                f"{self.label}: empty completion (stopReason={self.stop_reason!r})", status=BAD_UPSTREAM_RESPONSE
            )
        return StreamEvent(
            "finish",
            usage=usage(self.usage, messages, "".join(self.pieces)),
            finish_reason=reason,
            provider=provider,
            model=model,
        )

    def failed(self, error: ProviderError) -> ProviderError:
        """``error`` with how far the stream got, so a log tells a broken stream from a refused request."""
        return ProviderError(
            f"{error} (stream broke after {self.chars} characters)", status=error.status, retry_after=error.retry_after
        )

    def _exception_event(self, name: str, body: Mapping[str, object]) -> ProviderError:
        message = str(body.get("message") or "")
        original = body.get("originalStatusCode")
        if original is not None:
            message = f"{message} (model status {original}: {body.get('originalMessage') or 'no message'})"
        return self.failed(service_error(name, message, label=self.label))
