"""BedrockLLM against botocore's Stubber and a fake streaming client that plays recorded events.

test_bedrock_wire.py runs the same events through a real boto3 client over loopback."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from typing import Any, cast

import anyio
import boto3
import pytest
from botocore.exceptions import EventStreamError
from botocore.stub import Stubber

from answerdesk.config import ModelSettings
from answerdesk.errors import ConfigError, ProviderError
from answerdesk.generate.base import CompletionRequest, StreamEvent
from answerdesk.generate.bedrock import BedrockLLM
from answerdesk.types import Message

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
REQUEST = CompletionRequest(
    messages=[
        Message("system", "Answer from the sources only."),
        Message("user", '<source id="1">Refunds take 5 business days.</source>'),
        Message("user", "How long do refunds take?"),
    ],
    max_tokens=200,
    temperature=0.2,
    stop=["</answer>"],
)
#: What converse and converse_stream must receive for REQUEST: system apart, the two user turns merged.
EXPECTED_ARGS = {
    "modelId": MODEL,
    "messages": [
        {
            "role": "user",
            "content": [
                {"text": '<source id="1">Refunds take 5 business days.</source>'},
                {"text": "How long do refunds take?"},
            ],
        }
    ],
    "system": [{"text": "Answer from the sources only."}],
    "inferenceConfig": {"maxTokens": 200, "temperature": 0.2, "stopSequences": ["</answer>"]},
}

# Events as boto3 yields them from converse_stream (recorded from a Claude model, padding fields dropped).
EVENTS: list[dict[str, Any]] = [
    {"messageStart": {"role": "assistant"}},
    {"contentBlockDelta": {"delta": {"text": "Refunds take"}, "contentBlockIndex": 0}},
    {"contentBlockDelta": {"delta": {"text": " 5 business days [1]."}, "contentBlockIndex": 0}},
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {"messageStop": {"stopReason": "end_turn"}},
    {"metadata": {"usage": {"inputTokens": 42, "outputTokens": 9, "totalTokens": 51}, "metrics": {"latencyMs": 812}}},
]
ANSWER = "Refunds take 5 business days [1]."


def real_client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def converse_response(text: str, stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}] if text else []}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": 42, "outputTokens": 9, "totalTokens": 51},
        "metrics": {"latencyMs": 640},
    }


class RecordedStream:
    """An event stream as boto3 hands it over: iterated once, closable; can fail or stall like a real one."""

    def __init__(self, events: list[dict[str, Any]], *, error: Exception | None = None, pause_s: float = 0.0):
        self._events = events
        self._error = error
        self._pause_s = pause_s
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for event in self._events:
            time.sleep(self._pause_s)
            if self.closed:
                return
            yield event
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self.closed = True


class FakeStreamClient:
    """The part of a bedrock-runtime client that stream() uses."""

    def __init__(self, stream: RecordedStream) -> None:
        self.stream = stream
        self.calls: list[dict[str, Any]] = []

    def converse_stream(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"stream": self.stream, "ResponseMetadata": {"HTTPStatusCode": 200}}


def llm_with(client: object) -> BedrockLLM:
    return BedrockLLM(model=MODEL, client=cast(Any, client))


async def collect(llm: BedrockLLM, request: CompletionRequest = REQUEST) -> tuple[list[StreamEvent], Exception | None]:
    events: list[StreamEvent] = []
    try:
        async for event in llm.stream(request):
            events.append(event)
    except ProviderError as exc:
        return events, exc
    return events, None


# -- complete ----------------------------------------------------------------------------------------------------


async def test_complete_sends_system_prompt_and_settings_and_returns_text_and_usage() -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_response("converse", converse_response(ANSWER), expected_params=EXPECTED_ARGS)
        completion = await llm_with(client).complete(REQUEST)
        stub.assert_no_pending_responses()
    assert completion.text == ANSWER
    assert (completion.usage.input_tokens, completion.usage.output_tokens, completion.usage.estimated) == (42, 9, False)
    assert completion.finish_reason == "stop"
    assert (completion.provider, completion.model) == ("bedrock", MODEL)


async def test_complete_leaves_out_empty_system_and_stop_sequences() -> None:
    client = real_client()
    request = CompletionRequest(messages=[Message("user", "Hi")], max_tokens=5)
    expected = {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "inferenceConfig": {"maxTokens": 5, "temperature": 0.0},
    }
    with Stubber(client) as stub:
        stub.add_response("converse", converse_response("Hello."), expected_params=expected)
        assert (await llm_with(client).complete(request)).text == "Hello."


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
async def test_complete_maps_stop_reasons(stop_reason: str, finish: str) -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_response("converse", converse_response("Some text.", stop_reason))
        assert (await llm_with(client).complete(REQUEST)).finish_reason == finish


async def test_a_stop_reason_that_ends_no_answer_is_an_error() -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_response("converse", converse_response("Let me call a tool", "tool_use"))
        with pytest.raises(ProviderError, match="tool_use") as info:
            await llm_with(client).complete(REQUEST)
    assert info.value.status == 502


async def test_empty_text_is_an_error() -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_response("converse", converse_response(""))
        with pytest.raises(ProviderError, match="empty completion") as info:
            await llm_with(client).complete(REQUEST)
    assert info.value.status == 502


@pytest.mark.parametrize(
    ("code", "http_status", "status"),
    [
        ("ThrottlingException", 429, 429),
        ("ModelTimeoutException", 408, 408),
        ("ServiceUnavailableException", 503, 503),
        ("InternalServerException", 500, 500),
        ("ValidationException", 400, 400),
        ("AccessDeniedException", 403, 403),
        ("ResourceNotFoundException", 404, 404),
    ],
)
async def test_service_errors_keep_their_status_and_message(code: str, http_status: int, status: int) -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_client_error("converse", code, f"{code} says no", http_status)
        with pytest.raises(ProviderError) as info:
            await llm_with(client).complete(REQUEST)
    assert info.value.status == status
    assert f"{code} says no" in str(info.value)
    assert info.value.retry_after is None


async def test_throttling_carries_retry_after_from_the_response_headers() -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "converse",
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
            429,
            response_meta={"HTTPHeaders": {"retry-after": "3"}},
        )
        with pytest.raises(ProviderError, match="rate limited") as info:
            await llm_with(client).complete(REQUEST)
    assert (info.value.status, info.value.retry_after) == (429, 3.0)


async def test_an_unknown_role_is_refused_before_sending() -> None:
    client = real_client()
    with Stubber(client), pytest.raises(ProviderError, match="role 'tool'") as info:
        await llm_with(client).complete(CompletionRequest([Message("tool", "{}")]))
    assert info.value.status == 400


async def test_a_passed_deadline_sends_nothing() -> None:
    client = real_client()
    request = CompletionRequest(REQUEST.messages, deadline=time.monotonic() - 1)
    with Stubber(client), pytest.raises(ProviderError, match="deadline has passed"):
        await llm_with(client).complete(request)


class StuckClient:
    def __init__(self) -> None:
        self.release = threading.Event()

    def converse(self, **kwargs: Any) -> dict[str, Any]:
        self.release.wait(10)
        return converse_response("too late")


async def test_a_stuck_call_times_out_at_the_request_timeout() -> None:
    client = StuckClient()
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError, match="timeout") as info:
            await llm_with(client).complete(CompletionRequest(REQUEST.messages, timeout_s=0.2))
    finally:
        client.release.set()
    assert time.monotonic() - started < 2
    assert info.value.status is None


# -- stream ------------------------------------------------------------------------------------------------------


async def test_stream_yields_deltas_then_one_finish_with_usage() -> None:
    client = FakeStreamClient(RecordedStream(EVENTS))
    events, error = await collect(llm_with(client))
    assert error is None
    assert [e.kind for e in events] == ["delta", "delta", "finish"]
    assert "".join(e.text for e in events) == ANSWER
    finish = events[-1]
    assert finish.finish_reason == "stop"
    assert finish.usage is not None and (finish.usage.input_tokens, finish.usage.output_tokens) == (42, 9)
    assert client.calls == [EXPECTED_ARGS]


async def test_stream_maps_the_stop_reason() -> None:
    events = [*EVENTS[:4], {"messageStop": {"stopReason": "max_tokens"}}, EVENTS[5]]
    out, error = await collect(llm_with(FakeStreamClient(RecordedStream(events))))
    assert error is None and out[-1].finish_reason == "length"


async def test_a_throttling_event_mid_stream_fails_after_the_deltas_already_sent() -> None:
    events = [*EVENTS[:2], {"throttlingException": {"message": "Too many tokens, please wait before trying again."}}]
    stream = RecordedStream(events)
    out, error = await collect(llm_with(FakeStreamClient(stream)))
    assert [e.text for e in out] == ["Refunds take"]
    assert isinstance(error, ProviderError) and error.status == 429
    assert "Too many tokens" in str(error) and "after 12 characters" in str(error)
    assert stream.closed


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("throttlingException", 429),
        ("modelStreamErrorException", 502),
        ("internalServerException", 500),
        ("serviceUnavailableException", 503),
        ("validationException", 400),
    ],
)
async def test_exception_events_raised_by_boto3_become_provider_errors(code: str, status: int) -> None:
    # A real EventStream raises EventStreamError for an exception event rather than yielding it.
    raised = EventStreamError({"Error": {"Code": code, "Message": f"{code} mid-stream"}}, "ConverseStream")
    out, error = await collect(llm_with(FakeStreamClient(RecordedStream(EVENTS[:3], error=raised))))
    assert "".join(e.text for e in out) == ANSWER
    assert isinstance(error, ProviderError) and error.status == status
    assert f"{code[0].upper()}{code[1:]}" in str(error) and "mid-stream" in str(error)


async def test_a_model_stream_error_event_names_the_model_status() -> None:
    event = {"modelStreamErrorException": {"message": "stream failed", "originalStatusCode": 500}}
    _, error = await collect(llm_with(FakeStreamClient(RecordedStream([EVENTS[0], event]))))
    assert isinstance(error, ProviderError) and error.status == 502 and "model status 500" in str(error)


async def test_a_stream_that_ends_without_message_stop_is_truncated() -> None:
    out, error = await collect(llm_with(FakeStreamClient(RecordedStream(EVENTS[:3]))))
    assert "".join(e.text for e in out) == ANSWER
    assert all(e.kind == "delta" for e in out)
    assert isinstance(error, ProviderError) and error.status == 502 and "cut short" in str(error)


async def test_a_stream_without_text_is_an_error() -> None:
    events = [EVENTS[0], EVENTS[4], EVENTS[5]]
    out, error = await collect(llm_with(FakeStreamClient(RecordedStream(events))))
    assert out == []
    assert isinstance(error, ProviderError) and "empty completion" in str(error)


async def test_a_stream_without_usage_metadata_estimates_and_says_so() -> None:
    out, error = await collect(llm_with(FakeStreamClient(RecordedStream(EVENTS[:5]))))
    assert error is None
    usage = out[-1].usage
    assert usage is not None and usage.estimated and usage.output_tokens > 0


async def test_an_error_before_the_stream_starts_yields_nothing() -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "converse_stream",
            "ThrottlingException",
            "slow down",
            429,
            response_meta={"HTTPHeaders": {"retry-after": "2"}},
        )
        out, error = await collect(llm_with(client))
    assert out == []
    assert isinstance(error, ProviderError) and (error.status, error.retry_after) == (429, 2.0)


async def test_stopping_early_closes_the_stream() -> None:
    stream = RecordedStream(EVENTS)
    agen = cast(AsyncGenerator[StreamEvent, None], llm_with(FakeStreamClient(stream)).stream(REQUEST))
    first = await agen.__anext__()
    await agen.aclose()
    assert first.text == "Refunds take"
    assert stream.closed


async def test_a_slow_stream_does_not_block_the_event_loop() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    llm = llm_with(FakeStreamClient(RecordedStream(EVENTS, pause_s=0.05)))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tick)
        out, error = await collect(llm)
        tasks.cancel_scope.cancel()
    assert error is None and out[-1].kind == "finish"
    # Six events 50 ms apart: a blocked loop would not have ticked at all.
    assert ticks >= 10


async def test_a_stalled_stream_times_out_and_is_closed() -> None:
    stream = RecordedStream(EVENTS, pause_s=0.5)
    started = time.monotonic()
    out, error = await collect(llm_with(FakeStreamClient(stream)), CompletionRequest(REQUEST.messages, timeout_s=0.2))
    assert out == []
    assert isinstance(error, ProviderError) and "timeout" in str(error) and error.status is None
    assert time.monotonic() - started < 0.5
    assert stream.closed


# -- from_settings -------------------------------------------------------------


def test_from_settings_rejects_unknown_options_and_api_keys() -> None:
    with pytest.raises(ConfigError, match="known options: region, profile"):
        BedrockLLM.from_settings(ModelSettings(kind="bedrock", model=MODEL, options={"regoin": "us-east-1"}))
    with pytest.raises(ConfigError, match="AWS_BEARER_TOKEN_BEDROCK"):
        BedrockLLM.from_settings(ModelSettings(kind="bedrock", model=MODEL, api_key="k"))
    with pytest.raises(ConfigError, match="needs model"):
        BedrockLLM.from_settings(ModelSettings(kind="bedrock", options={"region": "us-east-1"}))


def test_without_boto3_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ConfigError) as info:
        BedrockLLM.from_settings(ModelSettings(kind="bedrock", model=MODEL, options={"region": "us-east-1"}))
    assert "pip install 'answerdesk[bedrock]'" in str(info.value)
