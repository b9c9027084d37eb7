"""Per-request timing shared between the request hooks and the ASGI layer, through a context variable.

The overhead middleware opens a :class:`RequestTiming` for each HTTP request; the metrics hook fills in how
long the model provider took once it knows, and a JSON answer does so before its response goes out (its
hooks run after that). Tasks started while serving the request (a streamed body)
inherit the context, so they see the same object.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestTiming:
    started: float = field(default_factory=time.perf_counter)
    #: Seconds spent waiting on the model provider(s); None until known.
    provider_s: float | None = None

    def overhead_s(self, now: float | None = None) -> float:
        """Time so far minus provider time: what answerdesk itself added."""
        total = (time.perf_counter() if now is None else now) - self.started
        return max(total - (self.provider_s or 0.0), 0.0)


current_timing: contextvars.ContextVar[RequestTiming | None] = contextvars.ContextVar(
    "answerdesk_request_timing", default=None
)


def note_provider_time(seconds: float | None) -> None:
    """Tell the current request's timing how long its model provider took (nothing outside a request)."""
    timing = current_timing.get()
    if timing is not None and seconds is not None:
        timing.provider_s = seconds
