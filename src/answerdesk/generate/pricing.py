"""What a model call costs, and token counts for when no tokenizer or provider report is at hand.

Pure functions over values; the usage ledger and the router's cost report build on them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from answerdesk.config import ModelSettings
from answerdesk.types import Message, Usage

#: The common rule of thumb for English with BPE tokenizers (the same one ``openai_compat`` uses).
CHARS_PER_TOKEN = 4
#: Chat templates wrap each message in role markers and separators: a few tokens each.
MESSAGE_OVERHEAD_TOKENS = 4


def cost_usd(usage: Usage, settings: ModelSettings) -> float:
    """USD for ``usage`` at the model's per-1,000-token input and output prices (0 for local models)."""
    return (
        usage.input_tokens / 1000 * settings.price_input_per_1k
        + usage.output_tokens / 1000 * settings.price_output_per_1k
    )


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` by :data:`CHARS_PER_TOKEN` characters each, rounded up; 0 for ""."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: Iterable[Message]) -> int:
    """Tokens a chat prompt takes: each message's text plus :data:`MESSAGE_OVERHEAD_TOKENS`."""
    return sum(estimate_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def estimate_usage(messages: Iterable[Message], output: str) -> Usage:
    """Usage of a call whose provider reported none (e.g. a stream that broke), marked ``estimated``."""
    return Usage(estimate_prompt_tokens(messages), estimate_tokens(output), estimated=True)
