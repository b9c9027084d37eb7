"""OpenAICompatLLM against a real HTTP server on loopback that plays scripted upstream behaviour.

Each scenario is the first path segment of ``base_url``; the server records what it was sent, so the tests
can check the wire request as well as what a caller gets back.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from answerdesk.config import ModelSettings
from answerdesk.errors import ConfigError, ProviderError
from answerdesk.generate._sse import ServerSentEvent, SSEDecoder
from answerdesk.generate.base import CompletionRequest, StreamEvent
from answerdesk.generate.openai_compat import OpenAICompatLLM, parse_retry_after
from answerdesk.types import Message, Usage

ANSWER = "Refunds take 5 business days [1]."
PIECES = ["Refunds", " take", " 5 business", " days [1]."]
HANG_S = 10.0


def completion_body(content: str | None = ANSWER, *, finish: str = "stop", usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "support-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 42, "completion_tokens": 9, "total_tokens": 51}
    return body


def chunk(content: str | None = None, *, finish: str | None = None, role: bool = False) -> str:
    delta: dict[str, Any] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]})


USAGE_CHUNK = json.dumps({"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 7}})
HAPPY_STREAM = [chunk(role=True), *(chunk(p) for p in PIECES), chunk(finish="stop"), USAGE_CHUNK, "[DONE]"]


# -- the scripted upstream ---------------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    client_port: int


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
    server: Upstream

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.received.append(Received(self.path, headers, body, self.client_address[1]))
        SCENARIOS[self.path.split("/")[1]](self)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_json(self, status: int, payload: object, **headers: str) -> None:
        self.send_body(status, json.dumps(payload), "application/json", **headers)

    def send_body(self, status: int, text: str, content_type: str, **headers: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self) -> None:
        # No length and Connection: close, as streaming servers do: the body ends when the socket closes.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def send_events(self, events: list[str], *, newline: str = "\n") -> None:
        for data in events:
            self.wfile.write(f"data: {data}{newline}{newline}".encode())
            self.wfile.flush()

    def hang(self) -> None:
        self.server.release.wait(HANG_S)


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.received: list[Received] = []
        self.release = threading.Event()

    def url(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{scenario}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The client hanging up on a hung or cut stream is the point of those tests, not a failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _stream_with_comments(h: Handler) -> None:
    h.start_sse()
    h.wfile.write(b": keep-alive\n\n")
    h.send_events(HAPPY_STREAM[:3], newline="\r\n")
    h.send_events(HAPPY_STREAM[3:])


def _stream_then_hang(h: Handler) -> None:
    h.start_sse()
    h.send_events([chunk(role=True), chunk(PIECES[0])])
    h.hang()


def _trickle(h: Handler) -> None:
    # Bytes keep coming, so no single read ever times out, but the answer never completes.
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "100000")
    h.end_headers()
    for _ in range(int(HANG_S / 0.1)):
        if h.server.release.wait(0.1):
            return
        h.wfile.write(b" ")
        h.wfile.flush()


def _stream_pings_forever(h: Handler) -> None:
    # A stuck model behind a proxy that sends SSE keep-alive comments.
    h.start_sse()
    h.send_events([chunk(PIECES[0])])
    for _ in range(int(HANG_S / 0.1)):
        if h.server.release.wait(0.1):
            return
        h.wfile.write(b": ping\n\n")
        h.wfile.flush()


def _stream_cut_mid_chunk(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    data = f"data: {chunk(PIECES[0])}\n\n".encode()
    h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    h.wfile.write(b'400\r\ndata: {"choi')  # a chunk announced at 1024 bytes, then the socket closes
    h.wfile.flush()
    h.close_connection = True


def _stream_keep_alive(h: Handler) -> None:
    # Chunked and keep-alive, as OpenAI, vLLM and llama.cpp's server stream: the body ends with its last chunk.
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    for data in HAPPY_STREAM:
        event = f"data: {data}\n\n".encode()
        h.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        h.wfile.flush()
    h.wfile.write(b"0\r\n\r\n")
    h.wfile.flush()


def _stream_done_then_hang(h: Handler) -> None:
    h.start_sse()
    h.send_events(HAPPY_STREAM)
    h.hang()


def sse(*events: str) -> Callable[[Handler], None]:
    """A scenario that streams ``events`` (the ``data`` of each) and closes the connection."""

    def play(h: Handler) -> None:
        h.start_sse()
        h.send_events(list(events))

    return play


SCENARIOS: dict[str, Callable[[Handler], None]] = {
    "ok": lambda h: h.send_json(200, completion_body()),
    "no-usage": lambda h: h.send_json(200, completion_body(usage=False)),
    "length": lambda h: h.send_json(200, completion_body("Refunds take 5", finish="length")),
    "empty": lambda h: h.send_json(200, completion_body("")),
    "null-content": lambda h: h.send_json(200, completion_body(None)),
    "not-json": lambda h: h.send_body(200, "<html><body>502 Bad Gateway</body></html>", "text/html"),
    "rate-limited": lambda h: h.send_json(
        429, {"error": {"message": "Rate limit reached for requests", "code": "rate_limit_exceeded"}}, Retry_After="2"
    ),
    "rate-limited-date": lambda h: h.send_json(
        429, {"error": {"message": "slow down"}}, Retry_After=formatdate(time.time() + 30, usegmt=True)
    ),
    "e500": lambda h: h.send_json(500, {"error": {"message": "internal boom", "type": "server_error"}}),
    "e503": lambda h: h.send_body(503, "upstream overloaded", "text/plain"),
    "e400": lambda h: h.send_json(
        400, {"error": {"message": "maximum context length is 8192 tokens", "code": "context_length_exceeded"}}
    ),
    "ollama-404": lambda h: h.send_json(404, {"error": 'model "llama9" not found, try pulling it first'}),
    "hang": lambda h: h.hang(),
    "trickle": _trickle,
    "stream": sse(*HAPPY_STREAM),
    "stream-comments": _stream_with_comments,
    "stream-keep-alive": _stream_keep_alive,
    "stream-done-then-hang": _stream_done_then_hang,
    "stream-no-usage": sse(*HAPPY_STREAM[:-2], "[DONE]"),
    "stream-rate-limited": lambda h: h.send_json(429, {"error": {"message": "slow down"}}, Retry_After="7"),
    "stream-hang": _stream_then_hang,
    "stream-pings-forever": _stream_pings_forever,
    "stream-malformed": sse(chunk(PIECES[0]), chunk(PIECES[1]), '{"choices": [{"delta": {"content": "x', *HAPPY_STREAM),
    "stream-truncated": sse(chunk(PIECES[0]), chunk(PIECES[1])),
    "stream-cut-mid-chunk": _stream_cut_mid_chunk,
    "stream-error": sse(chunk(PIECES[0]), json.dumps({"error": {"message": "model overloaded", "code": 503}})),
    "stream-error-no-code": sse(json.dumps({"error": "backend crashed"})),
    "stream-empty": sse(chunk(role=True), chunk(finish="stop"), "[DONE]"),
    "stream-abort": sse(chunk(PIECES[0]), chunk(finish="abort"), "[DONE]"),
    "stream-ignored": lambda h: h.send_json(200, completion_body()),
}


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


LLMFactory = Callable[..., OpenAICompatLLM]


@pytest.fixture
async def make_llm(upstream: Upstream) -> AsyncIterator[LLMFactory]:
    made: list[OpenAICompatLLM] = []

    def make(scenario: str, **options: Any) -> OpenAICompatLLM:
        llm = OpenAICompatLLM(model="support-model", base_url=upstream.url(scenario), **options)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        await llm.aclose()


def ask(**options: Any) -> CompletionRequest:
    messages = [Message("system", "Answer from the sources."), Message("user", "How long do refunds take?")]
    return CompletionRequest(messages, **options)


async def collect(llm: OpenAICompatLLM, request: CompletionRequest) -> tuple[list[StreamEvent], ProviderError | None]:
    events: list[StreamEvent] = []
    try:
        async for event in llm.stream(request):
            events.append(event)
    except ProviderError as exc:
        return events, exc
    return events, None


def deltas(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if e.kind == "delta")


# -- complete ---------------------------------------------------------------------------------------------------


async def test_complete_returns_text_usage_and_finish_reason(make_llm: LLMFactory, upstream: Upstream) -> None:
    llm = make_llm("ok", api_key="sk-test")
    result = await llm.complete(ask(max_tokens=64, temperature=0.2, stop=["\n\nQ:"]))

    assert result.text == ANSWER
    assert result.usage == Usage(42, 9, estimated=False)
    assert (result.finish_reason, result.provider, result.model) == ("stop", "openai_compat", "support-model")
    sent = upstream.received[0]
    assert sent.path == "/ok/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body == {
        "model": "support-model",
        "messages": [
            {"role": "system", "content": "Answer from the sources."},
            {"role": "user", "content": "How long do refunds take?"},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
        "stop": ["\n\nQ:"],
        "stream": False,
    }


async def test_no_api_key_sends_no_authorization(make_llm: LLMFactory, upstream: Upstream) -> None:
    await make_llm("ok").complete(ask())
    assert "authorization" not in upstream.received[0].headers
    assert "stop" not in upstream.received[0].body


async def test_missing_usage_is_estimated_and_marked(make_llm: LLMFactory) -> None:
    result = await make_llm("no-usage").complete(ask())
    assert result.usage.estimated
    assert result.usage.output_tokens == 9  # 33 characters at ~4 per token
    assert result.usage.input_tokens > 10


async def test_length_finish_reason_is_reported(make_llm: LLMFactory) -> None:
    result = await make_llm("length").complete(ask())
    assert (result.text, result.finish_reason) == ("Refunds take 5", "length")


async def test_connections_are_reused(make_llm: LLMFactory, upstream: Upstream) -> None:
    llm = make_llm("ok")
    await llm.complete(ask())
    await llm.complete(ask())
    assert upstream.received[0].client_port == upstream.received[1].client_port


@pytest.mark.parametrize("scenario", ["empty", "null-content"])
async def test_empty_content_is_an_error(make_llm: LLMFactory, scenario: str) -> None:
    with pytest.raises(ProviderError, match="empty completion") as info:
        await make_llm(scenario).complete(ask())
    assert info.value.status == 502


async def test_non_json_body_is_an_error(make_llm: LLMFactory) -> None:
    with pytest.raises(ProviderError, match="not a JSON object") as info:
        await make_llm("not-json").complete(ask())
    assert "502 Bad Gateway" in str(info.value)


# -- HTTP errors ------------------------------------------------------------------------------------------------


async def test_429_carries_retry_after_seconds(make_llm: LLMFactory) -> None:
    with pytest.raises(ProviderError, match="Rate limit reached") as info:
        await make_llm("rate-limited").complete(ask())
    assert (info.value.status, info.value.retry_after) == (429, 2.0)


async def test_429_with_http_date_retry_after(make_llm: LLMFactory) -> None:
    with pytest.raises(ProviderError) as info:
        await make_llm("rate-limited-date").complete(ask())
    assert info.value.status == 429
    assert info.value.retry_after is not None
    assert 28.0 <= info.value.retry_after <= 30.0  # HTTP-dates have whole seconds


@pytest.mark.parametrize(
    ("scenario", "status", "message"),
    [
        ("e500", 500, "internal boom"),
        ("e503", 503, "upstream overloaded"),
        ("e400", 400, "maximum context length is 8192 tokens"),
        ("ollama-404", 404, 'model "llama9" not found'),
    ],
)
async def test_http_errors_carry_status_and_upstream_message(
    make_llm: LLMFactory, scenario: str, status: int, message: str
) -> None:
    with pytest.raises(ProviderError) as info:
        await make_llm(scenario).complete(ask())
    assert info.value.status == status
    assert info.value.retry_after is None
    assert message in str(info.value)


async def test_a_hung_server_fails_within_the_timeout(make_llm: LLMFactory) -> None:
    started = time.monotonic()
    with pytest.raises(ProviderError, match="timeout") as info:
        await make_llm("hang").complete(ask(timeout_s=0.5))
    assert time.monotonic() - started < 1.5
    assert info.value.status is None
    assert isinstance(info.value.__cause__, (TimeoutError, httpx.TimeoutException))


async def test_a_trickling_body_still_fails_within_the_timeout(make_llm: LLMFactory) -> None:
    started = time.monotonic()
    with pytest.raises(ProviderError, match="timeout") as info:
        await make_llm("trickle").complete(ask(timeout_s=0.5))
    assert time.monotonic() - started < 1.5
    assert info.value.status is None


async def test_the_deadline_bounds_the_attempt(make_llm: LLMFactory) -> None:
    started = time.monotonic()
    with pytest.raises(ProviderError, match="timeout"):
        await make_llm("hang").complete(ask(timeout_s=30, deadline=time.monotonic() + 0.5))
    assert time.monotonic() - started < 1.5


async def test_a_passed_deadline_sends_nothing(make_llm: LLMFactory, upstream: Upstream) -> None:
    with pytest.raises(ProviderError, match="deadline has passed") as info:
        await make_llm("ok").complete(ask(deadline=time.monotonic() - 1))
    assert info.value.status is None
    assert upstream.received == []


async def test_connection_refused_is_a_provider_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed, so nothing listens there
    async with OpenAICompatLLM(model="m", base_url=f"http://127.0.0.1:{port}/v1") as llm:
        with pytest.raises(ProviderError, match="cannot connect") as info:
            await llm.complete(ask(timeout_s=2))
    assert info.value.status is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


# -- stream -----------------------------------------------------------------------------------------------------


async def test_stream_yields_deltas_then_one_finish(make_llm: LLMFactory, upstream: Upstream) -> None:
    events, error = await collect(make_llm("stream", api_key="sk-test"), ask())

    assert error is None
    assert [e.text for e in events if e.kind == "delta"] == PIECES
    assert [e.kind for e in events].count("finish") == 1
    finish = events[-1]
    assert (finish.kind, finish.finish_reason, finish.usage) == ("finish", "stop", Usage(42, 7))
    assert (finish.provider, finish.model) == ("openai_compat", "support-model")
    sent = upstream.received[0]
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.headers["authorization"] == "Bearer sk-test"


async def test_streams_reuse_their_connection(make_llm: LLMFactory, upstream: Upstream) -> None:
    llm = make_llm("stream-keep-alive")
    for _ in range(3):
        events, error = await collect(llm, ask())
        assert error is None
        assert "".join(e.text for e in events if e.kind == "delta") == ANSWER
    assert len({r.client_port for r in upstream.received}) == 1


async def test_a_body_left_open_after_done_still_finishes_the_answer_at_once(make_llm: LLMFactory) -> None:
    started = time.monotonic()
    events, error = await collect(make_llm("stream-done-then-hang"), ask())
    assert error is None
    assert events[-1].kind == "finish"
    assert time.monotonic() - started < 2.0  # the drain grace (0.5 s), not the 30 s deadline


async def test_stream_ignores_comments_and_crlf(make_llm: LLMFactory) -> None:
    events, error = await collect(make_llm("stream-comments"), ask())
    assert error is None
    assert deltas(events) == ANSWER
    assert events[-1].usage == Usage(42, 7)


async def test_stream_without_usage_estimates_it(make_llm: LLMFactory) -> None:
    events, error = await collect(make_llm("stream-no-usage"), ask())
    assert error is None
    assert deltas(events) == ANSWER
    usage = events[-1].usage
    assert usage is not None
    assert usage.estimated
    assert usage.output_tokens == 9


async def test_stream_429_before_any_text(make_llm: LLMFactory) -> None:
    events, error = await collect(make_llm("stream-rate-limited"), ask())
    assert events == []
    assert error is not None
    assert (error.status, error.retry_after) == (429, 7.0)


async def test_stream_that_hangs_fails_within_the_timeout(make_llm: LLMFactory) -> None:
    started = time.monotonic()
    events, error = await collect(make_llm("stream-hang"), ask(timeout_s=0.5))
    assert time.monotonic() - started < 1.5
    assert deltas(events) == PIECES[0]
    assert error is not None
    assert error.status is None
    assert "timeout" in str(error)


async def test_stream_of_keepalives_fails_within_the_timeout(make_llm: LLMFactory) -> None:
    started = time.monotonic()
    events, error = await collect(make_llm("stream-pings-forever"), ask(timeout_s=0.5))
    assert time.monotonic() - started < 1.5
    assert deltas(events) == PIECES[0]
    assert error is not None
    assert "timeout" in str(error)


async def test_stream_malformed_event_fails_after_the_good_deltas(make_llm: LLMFactory) -> None:
    events, error = await collect(make_llm("stream-malformed"), ask())
    assert deltas(events) == PIECES[0] + PIECES[1]
    assert all(e.kind == "delta" for e in events)
    assert error is not None
    assert "malformed stream event" in str(error)


@pytest.mark.parametrize("scenario", ["stream-truncated", "stream-cut-mid-chunk"])
async def test_stream_cut_short_is_never_a_finished_answer(make_llm: LLMFactory, scenario: str) -> None:
    events, error = await collect(make_llm(scenario), ask())
    assert deltas(events).startswith(PIECES[0])
    assert all(e.kind == "delta" for e in events)
    assert error is not None


async def test_stream_cut_short_says_so(make_llm: LLMFactory) -> None:
    _, error = await collect(make_llm("stream-truncated"), ask())
    assert error is not None
    assert error.status == 502
    assert "closed before [DONE]" in str(error)


async def test_stream_error_event_raises_with_its_status(make_llm: LLMFactory) -> None:
    events, error = await collect(make_llm("stream-error"), ask())
    assert deltas(events) == PIECES[0]
    assert error is not None
    assert error.status == 503
    assert "model overloaded" in str(error)


async def test_stream_error_without_code(make_llm: LLMFactory) -> None:
    _, error = await collect(make_llm("stream-error-no-code"), ask())
    assert error is not None
    assert (error.status, "backend crashed" in str(error)) == (502, True)


async def test_stream_without_text_is_an_error(make_llm: LLMFactory) -> None:
    events, error = await collect(make_llm("stream-empty"), ask())
    assert events == []
    assert error is not None
    assert "empty completion" in str(error)


async def test_stream_aborted_by_the_server_is_an_error(make_llm: LLMFactory) -> None:
    events, error = await collect(make_llm("stream-abort"), ask())
    assert deltas(events) == PIECES[0]
    assert error is not None
    assert "abort" in str(error)


async def test_server_that_ignores_stream_true_is_reported(make_llm: LLMFactory) -> None:
    _, error = await collect(make_llm("stream-ignored"), ask())
    assert error is not None
    assert "application/json" in str(error)


async def test_abandoning_a_stream_releases_the_connection(make_llm: LLMFactory) -> None:
    llm = make_llm("stream-hang")
    stream = cast(AsyncGenerator[StreamEvent, None], llm.stream(ask(timeout_s=5)))
    first = await anext(stream)
    assert first.text == PIECES[0]
    started = time.monotonic()
    await stream.aclose()
    assert time.monotonic() - started < 1.0


# -- construction -----------------------------------------------------------------------------------------------


async def test_from_settings(upstream: Upstream) -> None:
    settings = ModelSettings(
        kind="vllm", model="support-model", base_url=upstream.url("ok"), api_key="sk-set", context_window=4096
    )
    async with OpenAICompatLLM.from_settings(settings) as llm:
        result = await llm.complete(ask())
    assert (llm.provider, llm.model, llm.context_window) == ("vllm", "support-model", 4096)
    assert result.provider == "vllm"
    assert upstream.received[0].headers["authorization"] == "Bearer sk-set"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ModelSettings(kind="openai_compat", model="m"), "needs base_url"),
        (ModelSettings(kind="openai_compat", base_url="http://127.0.0.1:1/v1"), "needs model"),
        (ModelSettings(kind="openai_compat", model="m", base_url="http://x/v1", options={"n_threads": 2}), "n_threads"),
    ],
)
def test_from_settings_rejects_incomplete_config(settings: ModelSettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OpenAICompatLLM.from_settings(settings)


async def test_a_shared_client_stays_open(upstream: Upstream) -> None:
    async with httpx.AsyncClient() as client:
        llm = OpenAICompatLLM(model="m", base_url=upstream.url("ok"), client=client)
        await llm.aclose()
        assert (await llm.complete(ask())).text == ANSWER


# -- pure helpers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": " 0 "}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "120", "retry-after-ms": "250"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),  # already past
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(httpx.Headers(headers), now=now) == expected


def test_sse_decoder_joins_data_lines_and_names_events() -> None:
    decoder = SSEDecoder()
    lines = [": ping", "event: error", "data: a", "data:b", "id: 7", "", "", "data: c"]
    events = [e for e in map(decoder.decode, lines) if e is not None]
    assert events == [ServerSentEvent("a\nb", "error")]
    assert decoder.flush() == ServerSentEvent("c")


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n"), min_size=1), max_size=8))
def test_sse_decoder_round_trips_single_line_payloads(payloads: list[str]) -> None:
    decoder = SSEDecoder()
    lines = [line for p in payloads for line in (f"data: {p}", "")]
    decoded = [e.data for e in map(decoder.decode, lines) if e is not None]
    assert decoded == payloads
