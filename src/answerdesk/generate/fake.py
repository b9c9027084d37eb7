"""FakeLLM: a scripted LLM for tests, shipped with the package.

Give it replies (text, or an exception to raise) and it plays them in order, one per call, streaming each
reply in small pieces. ``fail_after_chars`` makes a stream break part way through, as a real upstream does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from answerdesk.errors import ProviderError
from answerdesk.generate.base import Completion, CompletionRequest, StreamEvent
from answerdesk.types import Usage

Reply = str | BaseException


class FakeLLM:
    def __init__(
        self,
        replies: Sequence[Reply] = ("Refunds take 5 business days [1].",),
        *,
        model: str = "fake",
        context_window: int = 4096,
        delay_s: float = 0.0,
        chunk_chars: int = 8,
        fail_after_chars: int | None = None,
    ) -> None:
        self._replies = list(replies)
        self._model = model
        self._context_window = context_window
        self._delay_s = delay_s
        self._chunk_chars = chunk_chars
        self._fail_after_chars = fail_after_chars
        self.requests: list[CompletionRequest] = []

    @property
    def provider(self) -> str:
        return "fake"

    @property
    def model(self) -> str:
        return self._model

    @property
    def context_window(self) -> int:
        return self._context_window

    def _next(self, request: CompletionRequest) -> str:
        self.requests.append(request)
        reply = self._replies[min(len(self.requests) - 1, len(self._replies) - 1)]
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _usage(self, request: CompletionRequest, text: str) -> Usage:
        prompt_words = sum(len(m.content.split()) for m in request.messages)
        return Usage(input_tokens=prompt_words, output_tokens=len(text.split()), estimated=True)

    async def complete(self, request: CompletionRequest) -> Completion:
        text = self._next(request)
        if self._delay_s:
            await asyncio.sleep(self._delay_s)
        return Completion(text, self._usage(request, text), "stop", self.provider, self._model)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        text = self._next(request)
        sent = 0
        for start in range(0, len(text), self._chunk_chars):
            if self._fail_after_chars is not None and sent >= self._fail_after_chars:
                raise ProviderError(f"fake stream broke after {sent} characters", status=502)
            if self._delay_s:
                await asyncio.sleep(self._delay_s)
            piece = text[start : start + self._chunk_chars]
            sent += len(piece)
            yield StreamEvent("delta", piece, provider=self.provider, model=self._model)
        yield StreamEvent(
            "finish", usage=self._usage(request, text), finish_reason="stop", provider=self.provider, model=self._model
        )
