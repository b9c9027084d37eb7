"""Server-Sent Events for answers: one typed event per pipeline event, named after its kind.

``meta`` (request id, prompt, route), ``delta`` (text), ``citation``, ``guard`` (a guard's finding),
``model_changed`` (fail-over), ``done`` (the whole answer, as the JSON response would carry it) and ``error``
(a problem+json body; the stream then ends). The mapping is generic: a pipeline event of a kind added later
is sent under its own name with its text and data, so clients see it without a change here.
"""

from __future__ import annotations

import json
from typing import Any

from answerdesk.pipeline import AnswerEvent
from answerdesk.serve.schemas import answer_out, citation_out, to_plain


def event_payload(event: AnswerEvent) -> dict[str, Any]:
    if event.answer is not None:
        return answer_out(event.answer)
    if event.citation is not None:
        return citation_out(event.citation)
    payload: dict[str, Any] = {"text": event.text} if event.text or event.kind == "delta" else {}
    payload.update({str(k): to_plain(v) for k, v in event.data.items()})
    return payload


def format_event(name: str, payload: dict[str, Any], *, event_id: int | None = None) -> bytes:
    """One SSE frame. JSON never contains a raw newline, so ``data`` is always one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def sse(event: AnswerEvent, *, event_id: int | None = None) -> bytes:
    return format_event(str(event.kind), event_payload(event), event_id=event_id)
