"""BedrockLLM built by from_settings, with a real boto3 client talking to a loopback server that speaks Bedrock's
wire format: JSON errors with their headers, and binary event streams (the AWS event stream encoding)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from answerdesk.config import ModelSettings
from answerdesk.errors import ProviderError
from answerdesk.generate.bedrock import BedrockLLM
from tests.unit.generate.test_bedrock import ANSWER, EVENTS, MODEL, REQUEST, collect


def event_message(headers: dict[str, str], payload: dict[str, Any]) -> bytes:
    """One message of the AWS event stream encoding: prelude, CRC, string headers, JSON payload, CRC."""
    encoded = b"".join(
        bytes([len(k)]) + k.encode() + b"\x07" + len(v).to_bytes(2, "big") + v.encode() for k, v in headers.items()
    )
    body = json.dumps(payload).encode()
    prelude = (12 + len(encoded) + len(body) + 4).to_bytes(4, "big") + len(encoded).to_bytes(4, "big")
    message = prelude + zlib.crc32(prelude).to_bytes(4, "big") + encoded + body
    return message + zlib.crc32(message).to_bytes(4, "big")


def wire_event(event: dict[str, Any]) -> bytes:
    ((name, payload),) = event.items()
    kind = "exception" if name.endswith("Exception") else "event"
    type_header = ":exception-type" if kind == "exception" else ":event-type"
    return event_message({type_header: name, ":content-type": "application/json", ":message-type": kind}, payload)


class Loopback:
    """Bedrock on 127.0.0.1: answers each request with the next scripted reply and records what it got."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, str], bytes, float]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                loopback.requests.append((self.path, dict(self.headers)))
                status, headers, body, delay = loopback.replies.pop(0)
                time.sleep(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                # A client that gave up (the timeout test) has closed the socket already.
                with contextlib.suppress(ConnectionError):
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.server.block_on_close = False  # a handler still sleeping (the timeout test) must not hold teardown
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def llm(self, *, timeout_s: float = 5.0) -> BedrockLLM:
        settings = ModelSettings(
            kind="bedrock", model=MODEL, base_url=self.url, timeout_s=timeout_s, options={"region": "eu-west-3"}
        )
        return BedrockLLM.from_settings(settings)


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loopback]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    server = Loopback()
    yield server
    server.server.shutdown()
    server.server.server_close()


async def test_real_client_streams_the_wire_format(loopback: Loopback) -> None:
    body = b"".join(wire_event(e) for e in EVENTS)
    loopback.replies.append((200, {"Content-Type": "application/vnd.amazon.eventstream"}, body, 0.0))
    out, error = await collect(loopback.llm())
    assert error is None
    assert "".join(e.text for e in out) == ANSWER
    assert out[-1].usage is not None and out[-1].usage.output_tokens == 9
    path, headers = loopback.requests[0]
    assert path == f"/model/{MODEL.replace(':', '%3A')}/converse-stream"
    assert "/eu-west-3/bedrock/aws4_request" in headers["Authorization"]


async def test_real_client_raises_a_throttling_event_after_the_deltas(loopback: Loopback) -> None:
    body = b"".join(wire_event(e) for e in EVENTS[:2]) + wire_event({"throttlingException": {"message": "Slow down"}})
    loopback.replies.append((200, {"Content-Type": "application/vnd.amazon.eventstream"}, body, 0.0))
    out, error = await collect(loopback.llm())
    assert [e.text for e in out] == ["Refunds take"]
    assert isinstance(error, ProviderError) and error.status == 429 and "Slow down" in str(error)


async def test_real_client_does_not_retry_and_reads_retry_after(loopback: Loopback) -> None:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "ThrottlingException", "Retry-After": "3"}
    reply = (429, headers, b'{"message": "Too many requests"}', 0.0)
    loopback.replies.extend([reply, reply])
    with pytest.raises(ProviderError) as info:
        await loopback.llm().complete(REQUEST)
    assert (info.value.status, info.value.retry_after) == (429, 3.0)
    assert len(loopback.requests) == 1  # retries are the wrappers' job, so botocore must not make any


async def test_real_client_read_timeout_comes_from_timeout_s(loopback: Loopback) -> None:
    # The server answers only after 6 s; a 0.3 s read timeout ends the call long before (the margin absorbs
    # building the boto client on a busy machine).
    loopback.replies.append((200, {"Content-Type": "application/json"}, b"{}", 6.0))
    started = time.monotonic()
    with pytest.raises(ProviderError, match="timeout") as info:
        await loopback.llm(timeout_s=0.3).complete(REQUEST)
    assert info.value.status is None
    assert time.monotonic() - started < 4.0


async def test_missing_credentials_fail_over_instead_of_retrying(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ProviderError, match="no usable AWS credentials") as info:
        await loopback.llm().complete(REQUEST)
    assert info.value.status == 401  # not retryable: asking again cannot sign the request
    assert loopback.requests == []
