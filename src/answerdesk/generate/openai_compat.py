"""OpenAI-compatible chat completions over HTTP: OpenAI, vLLM, Ollama, llama.cpp server, LiteLLM and the like.

One ``POST {base_url}/chat/completions`` per call, JSON or Server-Sent Events. Every failure becomes a
:class:`ProviderError`: the HTTP status and ``Retry-After`` when the upstream sent them, ``status=None`` for
timeouts and connection failures, and 502 when a 200 carried something unusable (not JSON, no text, a stream
cut short), so that the resilience wrappers treat it like the gateway error it is. Nothing is retried here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from answerdesk.config import ModelSettings
from answerdesk.errors import ConfigError, ProviderError
from answerdesk.generate._sse import LineSplitter, ServerSentEvent, SSEDecoder
from answerdesk.generate.base import Completion, CompletionRequest, FinishReason, StreamEvent
from answerdesk.types import Message, Usage

T = TypeVar("T")

#: Rough size of a token in English text, used only when the server reports no usage.
CHARS_PER_TOKEN = 4
# Chat templates wrap each message in role markers and separators; a few tokens each in common templates.
_MESSAGE_OVERHEAD_TOKENS = 4
#: Status given to a 200 whose body is unusable: the upstream answered, but not with a completion.
BAD_UPSTREAM_RESPONSE = 502
#: Seconds a stream may take after ``[DONE]`` to end its body, so that its connection can be reused.
DRAIN_GRACE_S = 0.5
_SNIPPET_CHARS = 300

# What the servers send for a finished answer; anything else (e.g. vLLM's "abort", "tool_calls") is not one.
_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length", "content_filter": "content_filter"}


class OpenAICompatLLM:
    """An :class:`~answerdesk.generate.base.LLM` that talks to any OpenAI-compatible chat completions server.

    ``base_url`` includes the API prefix, e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8080/v1``.
    One :class:`httpx.AsyncClient` is reused for every call so connections are pooled; pass your own
    ``client`` to share a pool (it is then yours to close), otherwise call :meth:`aclose` when done.
    ``complete`` and ``stream`` raise :class:`ProviderError` for every upstream failure (see the module doc).
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str | None = None,
        context_window: int = 8192,
        client: httpx.AsyncClient | None = None,
        provider_name: str = "openai_compat",
    ) -> None:
        self._model = model
        self._base_url = base_url.rstrip("/")
        self._url = f"{self._base_url}/chat/completions"
        self._context_window = context_window
        self._provider = provider_name
        self._label = f"{provider_name}/{model}"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> OpenAICompatLLM:
        """Build from one configured model. Raises :class:`ConfigError` without ``base_url`` or ``model``,
        or when ``options`` holds keys this provider does not use."""
        if not settings.base_url:
            raise ConfigError(
                f"model kind '{settings.kind}' needs base_url, the server's API root (e.g. http://127.0.0.1:8080/v1)"
            )
        if not settings.model:
            raise ConfigError(f"model kind '{settings.kind}' needs model, the id the server knows the model by")
        if settings.options:
            raise ConfigError(
                f"model kind '{settings.kind}' takes no options; got: {', '.join(sorted(settings.options))}"
            )
        return cls(
            model=settings.model,
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            context_window=settings.context_window,
            provider_name=settings.kind,
        )

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model(self) -> str:
        return self._model

    @property
    def context_window(self) -> int:
        return self._context_window

    async def aclose(self) -> None:
        """Close the connection pool, unless the client was passed in (its owner closes it)."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> OpenAICompatLLM:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def complete(self, request: CompletionRequest) -> Completion:
        """The whole answer, within ``request.remaining()`` seconds. Raises :class:`ProviderError`."""
        timeout = self._attempt_timeout(request)
        deadline = asyncio.get_running_loop().time() + timeout
        response = await self._bounded(
            self._client.post(
                self._url,
                json=self._body(request, stream=False),
                headers=self._headers,
                timeout=httpx.Timeout(timeout),
            ),
            deadline,
            timeout,
        )
        if not response.is_success:
            raise self._status_error(response)
        payload = self._json_body(response)
        choice = _first_choice(payload)
        message = choice.get("message") if choice is not None else None
        if choice is None or not isinstance(message, dict):
            raise self._bad_response(f"no choices[0].message in the response: {_snippet(response.text)}")
        text = message.get("content")
        reason = choice.get("finish_reason")
        if not isinstance(text, str) or not text:
            raise self._bad_response(f"empty completion (finish_reason={reason!r})")
        finish = self._finish_reason(reason)
        return Completion(text, _usage(payload.get("usage"), request, text), finish, self._provider, self._model)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Deltas as they arrive, then one ``finish`` event; the whole stream must end within
        ``request.remaining()`` seconds.

        Raises :class:`ProviderError` (possibly after some deltas) for HTTP errors, timeouts, an ``error``
        object in the stream, a malformed event, a stream that ends without a finish reason, and a
        stream that carried no text.
        """
        timeout = self._attempt_timeout(request)
        deadline = asyncio.get_running_loop().time() + timeout
        http_request = self._client.build_request(
            "POST",
            self._url,
            json=self._body(request, stream=True),
            headers={**self._headers, "Accept": "text/event-stream"},
            timeout=httpx.Timeout(timeout),
        )
        response = await self._bounded(self._client.send(http_request, stream=True), deadline, timeout)
        try:
            if not response.is_success:
                await self._bounded(response.aread(), deadline, timeout)
                raise self._status_error(response)
            state = _StreamState()
            async with contextlib.aclosing(self._events(response, deadline, timeout)) as events:
                async for event in events:
                    text = self._on_event(event, state)
                    if text:
                        state.add(text)
                        yield StreamEvent("delta", text, provider=self._provider, model=self._model)
            yield self._finish_event(state, request, response)
        finally:
            await response.aclose()

    # -- request ---------------------------------------------------------------------------------------------

    def _attempt_timeout(self, request: CompletionRequest) -> float:
        timeout = request.remaining()
        if timeout <= 0:
            raise ProviderError(f"{self._label}: the deadline has passed; request not sent (timeout)")
        return timeout

    def _body(self, request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": stream,
        }
        # Left out when empty: some servers reject an empty list.
        if request.stop:
            body["stop"] = list(request.stop)
        if stream:
            # Without it OpenAI and vLLM send no token counts in a stream.
            body["stream_options"] = {"include_usage": True}
        return body

    async def _bounded(self, awaitable: Awaitable[T], deadline: float, timeout: float) -> T:
        # httpx timeouts bound each network operation, not the whole exchange: a server that trickles bytes
        # would never trip them. The loop deadline bounds the attempt as a whole.
        try:
            async with asyncio.timeout_at(deadline):
                return await awaitable
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ProviderError(f"{self._label}: no complete answer within {timeout:.1f} s (timeout)") from exc
        except httpx.ConnectError as exc:
            raise ProviderError(f"{self._label}: cannot connect to {self._base_url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"{self._label}: connection to {self._base_url} failed: {type(exc).__name__}: {exc}"
            ) from exc

    async def _events(
        self, response: httpx.Response, deadline: float, timeout: float
    ) -> AsyncGenerator[ServerSentEvent, None]:
        decoder, splitter = SSEDecoder(), LineSplitter()
        # Bounded per piece read, not per line: a read usually carries a whole event (two lines or more),
        # and every bound is a timer set and cancelled on the event loop.
        pieces = response.aiter_text()
        while True:
            try:
                text = await self._bounded(anext(pieces), deadline, timeout)
            except StopAsyncIteration:
                break
            for line in splitter.feed(text):
                event = decoder.decode(line)
                if event is not None:
                    yield event
                    if _is_done(event):
                        await self._drain(pieces, deadline)
                        return
        for line in splitter.flush():
            event = decoder.decode(line)
            if event is not None:
                yield event
        last = decoder.flush()
        if last is not None:
            yield last

    async def _drain(self, pieces: AsyncIterator[str], deadline: float) -> None:
        # What follows [DONE] is normally only the end of the body, already on its way. Read, it lets the
        # connection go back to the pool; closed half-read, every request paid a new TCP (and TLS) handshake.
        # A server that keeps the body open past the grace only loses its connection.
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + DRAIN_GRACE_S)):
                async for _ in pieces:
                    pass
        except (TimeoutError, httpx.HTTPError):
            pass

    # -- response --------------------------------------------------------------------------------------------

    def _bad_response(self, detail: str) -> ProviderError:
        return ProviderError(f"{self._label}: {detail}", status=BAD_UPSTREAM_RESPONSE)

    def _status_error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        kind = "rate limited" if status == 429 else "upstream error" if status >= 500 else "request rejected"
        detail = _error_message(_loads(response.text)) or _snippet(response.text) or response.reason_phrase
        return ProviderError(
            f"{self._label}: HTTP {status} ({kind}): {detail}",
            status=status,
            retry_after=parse_retry_after(response.headers),
        )

    def _json_body(self, response: httpx.Response) -> dict[str, Any]:
        payload = _loads(response.text)
        if not isinstance(payload, dict):
            content_type = response.headers.get("content-type", "no content-type")
            raise self._bad_response(f"response is not a JSON object ({content_type}): {_snippet(response.text)}")
        return payload

    def _finish_reason(self, raw: object) -> FinishReason:
        reason = _FINISH_REASONS.get(raw) if isinstance(raw, str) else None
        if reason is None:
            raise self._bad_response(f"the model did not finish normally (finish_reason={raw!r})")
        return reason

    def _on_event(self, event: ServerSentEvent, state: _StreamState) -> str:
        """The text an event adds; records finish reason, usage and ``[DONE]`` in ``state``."""
        if _is_done(event):
            state.done = True
            return ""
        payload = _loads(event.data)
        if not isinstance(payload, dict):
            raise self._bad_response(f"malformed stream event after {state.chars} characters: {_snippet(event.data)}")
        if event.event == "error" or "error" in payload:
            message = _error_message(payload) or _snippet(event.data)
            code = _error_code(payload)
            raise ProviderError(
                f"{self._label}: error in the stream after {state.chars} characters: {message}",
                status=code if code is not None else BAD_UPSTREAM_RESPONSE,
            )
        if payload.get("usage") is not None:
            state.usage = payload["usage"]
        choice = _first_choice(payload)
        if choice is None:
            return ""
        if choice.get("finish_reason") is not None:
            state.finish_reason = self._finish_reason(choice["finish_reason"])
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        return text if isinstance(text, str) else ""

    def _finish_event(self, state: _StreamState, request: CompletionRequest, response: httpx.Response) -> StreamEvent:
        if state.finish_reason is None:
            ending = "[DONE] without a finish_reason" if state.done else "the connection closed before [DONE]"
            content_type = response.headers.get("content-type", "")
            # A server that ignored stream=true answers with plain JSON; say so rather than only "cut short".
            extra = "" if "event-stream" in content_type else f" (content-type {content_type or 'missing'})"
            raise self._bad_response(f"stream cut short: {ending} after {state.chars} characters{extra}")
        if not state.chars:
            raise self._bad_response(f"empty completion (finish_reason={state.finish_reason!r})")
        return StreamEvent(
            "finish",
            usage=_usage(state.usage, request, "".join(state.pieces)),
            finish_reason=state.finish_reason,
            provider=self._provider,
            model=self._model,
        )


@dataclass(slots=True)
class _StreamState:
    pieces: list[str] = field(default_factory=list)
    chars: int = 0
    finish_reason: FinishReason | None = None
    #: The last ``usage`` object the stream carried, as sent.
    usage: object = None
    done: bool = False

    def add(self, text: str) -> None:
        self.pieces.append(text)
        self.chars += len(text)


def _is_done(event: ServerSentEvent) -> bool:
    """The stream's ``[DONE]`` sentinel: nothing more comes."""
    return event.data.strip() == "[DONE]"


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait according to ``Retry-After`` (delta-seconds or an HTTP-date), or None.

    ``retry-after-ms``, which OpenAI sends beside it, wins when present because it is finer. Header names
    are looked up in lower case (``httpx.Headers`` is case-insensitive). Unparseable values give None.
    """
    millis = _non_negative(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _non_negative(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` by the rule of thumb of :data:`CHARS_PER_TOKEN` characters each."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    return sum(estimate_tokens(m.content) + _MESSAGE_OVERHEAD_TOKENS for m in messages)


def _usage(raw: object, request: CompletionRequest, text: str) -> Usage:
    """Reported token counts; each missing one is estimated and the result marked ``estimated``."""
    reported = raw if isinstance(raw, dict) else {}
    prompt = _count(reported.get("prompt_tokens"))
    completion = _count(reported.get("completion_tokens"))
    if prompt is not None and completion is not None:
        return Usage(prompt, completion)
    return Usage(
        prompt if prompt is not None else _estimate_prompt_tokens(request.messages),
        completion if completion is not None else estimate_tokens(text),
        estimated=True,
    )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _non_negative(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _loads(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _first_choice(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def _error_message(payload: object) -> str | None:
    """The human message in an error body: OpenAI/vLLM/llama.cpp ``{"error": {"message"}}``, Ollama
    ``{"error": "..."}``, older vLLM ``{"message"}``, FastAPI ``{"detail"}``."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict):
        error = error.get("message") or error.get("type")
    for candidate in (error, payload.get("message"), payload.get("detail")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def _error_code(payload: Mapping[str, Any]) -> int | None:
    error = payload.get("error")
    source = error if isinstance(error, dict) else payload
    for key in ("code", "status"):
        value = source.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
            return value
    return None


def _snippet(text: str) -> str:
    text = text.strip()
    return repr(text[:_SNIPPET_CHARS] + ("…" if len(text) > _SNIPPET_CHARS else "")) if text else ""
