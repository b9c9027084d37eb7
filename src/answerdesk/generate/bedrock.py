"""BedrockLLM: chat models on Amazon Bedrock through the Converse API (boto3's ``bedrock-runtime`` client).

``complete`` is one ``converse`` call, ``stream`` one ``converse_stream`` call. boto3 is synchronous, so every
call, and every read of the event stream, runs in a worker thread: the event loop never waits on the network.
Each attempt is bounded by ``request.remaining()`` as a whole, on top of botocore's per-read timeout.

Every failure is a :class:`ProviderError` (see :mod:`answerdesk._bedrock` for the statuses); a 200 whose content
is unusable (no text, a stream without ``messageStop``, a stop reason such as ``tool_use``) is a 502.
Nothing is retried here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread

from answerdesk._bedrock import provider_error, runtime_client
from answerdesk.config import ModelSettings
from answerdesk.errors import ConfigError, ProviderError
from answerdesk.generate._bedrock_convert import (
    BAD_UPSTREAM_RESPONSE,
    converse_args,
    finish_reason,
    output_text,
    usage,
)
from answerdesk.generate._bedrock_stream import ConverseStreamState
from answerdesk.generate.base import Completion, CompletionRequest, StreamEvent

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

T = TypeVar("T")

#: Keys of ``ModelSettings.options`` this provider reads.
OPTIONS = ("region", "profile")


class BedrockLLM:
    """An :class:`~answerdesk.generate.base.LLM` backed by a Bedrock model through the Converse API.

    ``model`` is a model id or inference profile, e.g. ``anthropic.claude-3-5-haiku-20241022-v1:0`` or
    ``us.amazon.nova-lite-v1:0``. ``client`` is a boto3 ``bedrock-runtime`` client; :meth:`from_settings`
    builds one without botocore retries. ``complete`` and ``stream`` raise :class:`ProviderError`.
    """

    def __init__(
        self,
        *,
        model: str,
        client: BedrockRuntimeClient,
        context_window: int = 8192,
        provider_name: str = "bedrock",
    ) -> None:
        self._model = model
        self._client = client
        self._context_window = context_window
        self._provider = provider_name

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> BedrockLLM:
        """Build from one configured model: ``model``, ``options.region`` (else the AWS environment's region),
        ``options.profile`` (an AWS profile), ``base_url`` (an endpoint URL, e.g. a VPC endpoint) and
        ``timeout_s`` (botocore's connect and read timeouts).

        Raises :class:`ConfigError` without ``model``, for unknown options or an ``api_key`` (Bedrock takes the
        AWS credential chain), and when boto3 is not installed (``pip install 'answerdesk[bedrock]'``).
        """
        if not settings.model:
            raise ConfigError(f"model kind '{settings.kind}' needs model, the Bedrock model id or inference profile")
        unknown = sorted(set(settings.options) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"model kind '{settings.kind}' does not know option(s) {', '.join(unknown)}; "
                f"known options: {', '.join(OPTIONS)}"
            )
        if settings.api_key is not None:
            raise ConfigError(
                f"model kind '{settings.kind}' takes no api_key: it uses the AWS credential chain "
                "(environment, AWS_PROFILE or options.profile, an instance role); "
                "for a Bedrock API key set AWS_BEARER_TOKEN_BEDROCK in the environment"
            )
        client = runtime_client(
            region=_str_option(settings, "region"),
            endpoint_url=settings.base_url,
            timeout_s=settings.timeout_s,
            profile=_str_option(settings, "profile"),
        )
        return cls(
            model=settings.model, client=client, context_window=settings.context_window, provider_name=settings.kind
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

    @property
    def _label(self) -> str:
        return f"{self._provider}/{self._model}"

    async def complete(self, request: CompletionRequest) -> Completion:
        """The whole answer, within ``request.remaining()`` seconds. Raises :class:`ProviderError`."""
        timeout = self._attempt_timeout(request)
        deadline = anyio.current_time() + timeout
        args = converse_args(self._model, request, label=self._label)
        response = await self._in_thread(lambda: self._client.converse(**args), deadline, timeout)
        stop_reason = response.get("stopReason")
        reason = finish_reason(stop_reason, label=self._label)
        text = output_text(response.get("output", {}).get("message", {}).get("content", []))
        if not text:
            raise ProviderError(
                f"{self._label}: empty completion (stopReason={stop_reason!r})", status=BAD_UPSTREAM_RESPONSE
            )
        return Completion(
            text, usage(response.get("usage"), request.messages, text), reason, self._provider, self._model
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Deltas as they arrive, then one ``finish`` event; the whole stream must end within
        ``request.remaining()`` seconds.

        Raises :class:`ProviderError` (possibly after some deltas) for a refused request, an exception event
        in the stream, a timeout, a stream that ends without ``messageStop``, and a stream without text.
        """
        timeout = self._attempt_timeout(request)
        deadline = anyio.current_time() + timeout
        args = converse_args(self._model, request, label=self._label)
        response = await self._in_thread(lambda: self._client.converse_stream(**args), deadline, timeout)
        events = response["stream"]
        state = ConverseStreamState(self._label)
        try:
            iterator = iter(events)
            while True:
                try:
                    event = await self._in_thread(lambda: next(iterator, None), deadline, timeout)
                except ProviderError as exc:
                    raise state.failed(exc) from exc.__cause__
                if event is None:
                    break
                text = state.read(event)
                if text:
                    yield StreamEvent("delta", text, provider=self._provider, model=self._model)
        finally:
            # Frees the connection when the stream failed or the caller stopped reading; this also ends a
            # read still blocked in an abandoned worker thread.
            _close_quietly(events)
        yield state.finish(request.messages, provider=self._provider, model=self._model)

    def _attempt_timeout(self, request: CompletionRequest) -> float:
        timeout = request.remaining()
        if timeout <= 0:
            raise ProviderError(f"{self._label}: the deadline has passed; request not sent (timeout)")
        return timeout

    async def _in_thread(self, call: Callable[[], T], deadline: float, timeout: float) -> T:
        """``call()`` in a worker thread, abandoned (and a timeout) at ``deadline``; boto3 errors mapped."""
        try:
            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except Exception as exc:
            raise provider_error(exc, label=self._label, timeout_s=timeout) from exc


def _str_option(settings: ModelSettings, key: str) -> str | None:
    value = settings.options.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"model kind '{settings.kind}': options.{key} must be a non-empty string, got {value!r}")
    return value


def _close_quietly(stream: object) -> None:
    close = getattr(stream, "close", None)
    if callable(close):
        # Best effort: the outcome of the stream is already decided and must not be masked.
        with contextlib.suppress(Exception):
            close()
