"""Pure conversions between answerdesk's values and the Bedrock Converse API's dicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Required, TypedDict

from answerdesk.errors import ProviderError
from answerdesk.generate.base import CompletionRequest, FinishReason
from answerdesk.types import Message, Usage

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        ContentBlockOutputTypeDef,
        InferenceConfigurationTypeDef,
        MessageTypeDef,
        SystemContentBlockTypeDef,
        TokenUsageTypeDef,
    )

    class ConverseArgs(TypedDict, total=False):
        """The arguments ``converse`` and ``converse_stream`` share."""

        modelId: Required[str]
        messages: Required[list[MessageTypeDef]]
        system: list[SystemContentBlockTypeDef]
        inferenceConfig: InferenceConfigurationTypeDef


#: Status given to a 200 whose content is unusable (no text, a stream cut short, an odd stop reason).
BAD_UPSTREAM_RESPONSE = 502
#: Rough size of a token in English text, used only when Bedrock reports no usage.
CHARS_PER_TOKEN = 4

# Anything else (tool_use, malformed_model_output …) means the text is not a finished answer.
_FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_ROLES = ("user", "assistant")


def converse_args(model: str, request: CompletionRequest, *, label: str) -> ConverseArgs:
    """``converse``/``converse_stream`` keyword arguments for ``request``.

    System messages become the ``system`` blocks; consecutive messages of one role are merged into one turn,
    because Converse requires user and assistant turns to alternate. Raises :class:`ProviderError` (400) for a
    role Converse does not know.
    """
    system: list[SystemContentBlockTypeDef] = []
    turns: list[tuple[str, list[str]]] = []
    for message in request.messages:
        # Converse rejects blank text blocks; a blank message carries nothing to the model anyway.
        if not message.content.strip():
            continue
        if message.role == "system":
            system.append({"text": message.content})
        elif message.role not in _ROLES:
            raise ProviderError(
                f"{label}: message role '{message.role}' is not one of system, user, assistant", status=400
            )
        elif turns and turns[-1][0] == message.role:
            turns[-1][1].append(message.content)
        else:
            turns.append((message.role, [message.content]))
    inference: InferenceConfigurationTypeDef = {"maxTokens": request.max_tokens, "temperature": request.temperature}
    # Left out when empty: not every model accepts the field.
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    args: ConverseArgs = {
        "modelId": model,
        "messages": [_turn(role, texts) for role, texts in turns],
        "inferenceConfig": inference,
    }
    # Left out when empty: some models (e.g. Mistral 7B) reject any system field.
    if system:
        args["system"] = system
    return args


def _turn(role: str, texts: list[str]) -> MessageTypeDef:
    return {"role": "user" if role == "user" else "assistant", "content": [{"text": text} for text in texts]}


def output_text(content: Sequence[ContentBlockOutputTypeDef]) -> str:
    """The text blocks of a Converse output message, joined; other blocks (reasoning, images) are not the answer."""
    return "".join(block.get("text", "") for block in content)


def finish_reason(stop_reason: str | None, *, label: str) -> FinishReason:
    """answerdesk's finish reason for a Converse ``stopReason``. Raises :class:`ProviderError` (502) for one
    that does not end an answer."""
    reason = _FINISH_REASONS.get(stop_reason or "")
    if reason is None:
        raise ProviderError(
            f"{label}: the model did not finish normally (stopReason={stop_reason!r})", status=BAD_UPSTREAM_RESPONSE
        )
    return reason


def usage(reported: TokenUsageTypeDef | None, messages: Sequence[Message], text: str) -> Usage:
    """Reported token counts; when Bedrock sent none, an estimate marked ``estimated``."""
    if reported is not None:
        counts: dict[str, Any] = dict(reported)
        prompt, completion = counts.get("inputTokens"), counts.get("outputTokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            return Usage(prompt, completion)
    prompt_chars = sum(len(m.content) for m in messages)
    return Usage(math.ceil(prompt_chars / CHARS_PER_TOKEN), math.ceil(len(text) / CHARS_PER_TOKEN), estimated=True)
