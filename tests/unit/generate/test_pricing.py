"""Cost from per-1k prices, and the token estimate used when nothing better is known."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from answerdesk.config import ModelSettings
from answerdesk.generate.pricing import (
    CHARS_PER_TOKEN,
    MESSAGE_OVERHEAD_TOKENS,
    cost_usd,
    estimate_prompt_tokens,
    estimate_tokens,
    estimate_usage,
)
from answerdesk.types import Message, Usage

HOSTED = ModelSettings(kind="openai_compat", model="big", price_input_per_1k=0.5, price_output_per_1k=1.5)


def test_cost_adds_input_and_output_at_their_own_prices() -> None:
    assert cost_usd(Usage(input_tokens=1500, output_tokens=200), HOSTED) == pytest.approx(0.75 + 0.3)


def test_a_local_model_costs_nothing() -> None:
    assert cost_usd(Usage(100_000, 5_000), ModelSettings(kind="llamacpp")) == 0.0


@given(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**7))
def test_cost_is_linear_in_tokens(a: int, b: int, out: int) -> None:
    together = cost_usd(Usage(a + b, out), HOSTED)
    assert together == pytest.approx(cost_usd(Usage(a, out), HOSTED) + cost_usd(Usage(b, 0), HOSTED))


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)])
def test_estimate_rounds_characters_up_to_whole_tokens(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


@given(st.text(max_size=500))
def test_estimate_is_within_one_token_of_the_rule_of_thumb(text: str) -> None:
    assert 0 <= estimate_tokens(text) * CHARS_PER_TOKEN - len(text) < CHARS_PER_TOKEN


def test_prompt_estimate_counts_each_message_overhead() -> None:
    messages = [Message("system", "abcd" * 10), Message("user", "abcd")]
    assert estimate_prompt_tokens(messages) == 10 + 1 + 2 * MESSAGE_OVERHEAD_TOKENS


def test_estimated_usage_is_marked_estimated() -> None:
    usage = estimate_usage([Message("user", "abcd")], "abcdabcd")
    assert usage == Usage(1 + MESSAGE_OVERHEAD_TOKENS, 2, estimated=True)
