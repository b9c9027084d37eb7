"""Coalescer: concurrent small embedding calls run as one batch.

Under concurrent requests each one embeds its own question. One forward pass over 8 questions costs about
as much as 4 single ones (MiniLM on one core: 9.6 ms for one, 36.5 ms for eight), so calls that arrive
while a batch is running wait for it to finish and then go together in the next one (group commit). A
call that finds nothing running goes at once: when the service is idle nothing waits.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from answerdesk.embed.base import Vectors


@dataclass(slots=True)
class _Call:
    texts: list[str]
    result: Vectors | None = None
    error: BaseException | None = None
    finished: bool = False


class Coalescer:
    """Runs ``encode`` over the texts of every call waiting, ``max_texts`` at most per batch (a single call
    with more texts still runs whole). Thread-safe; an error in a batch is raised by every call in it."""

    def __init__(self, encode: Callable[[list[str]], Vectors], *, max_texts: int = 32) -> None:
        self._encode = encode
        self._max_texts = max_texts
        self._cond = threading.Condition()
        self._queue: deque[_Call] = deque()
        self._running = False
        #: Batches run, and calls they served (``calls / batches`` is the mean batch size).
        self.batches = 0
        self.calls = 0

    def __call__(self, texts: Sequence[str]) -> Vectors:
        call = _Call(list(texts))
        with self._cond:
            self._queue.append(call)
            while not call.finished:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                batch = self._take()
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._running = False
                    self._cond.notify_all()
        if call.error is not None:
            raise call.error
        assert call.result is not None
        return call.result

    def _take(self) -> list[_Call]:
        batch = [self._queue.popleft()]
        size = len(batch[0].texts)
        while self._queue and size + len(self._queue[0].texts) <= self._max_texts:
            size += len(self._queue[0].texts)
            batch.append(self._queue.popleft())
        return batch

    def _run(self, batch: list[_Call]) -> None:
        try:
            vectors = self._encode([t for call in batch for t in call.texts])
        except BaseException as exc:  # every caller of the batch gets the failure, none waits forever
            for call in batch:
                call.error, call.finished = exc, True
            return
        start = 0
        for call in batch:
            call.result = np.ascontiguousarray(vectors[start : start + len(call.texts)])
            call.finished = True
            start += len(call.texts)
        self.batches += 1
        self.calls += len(batch)
