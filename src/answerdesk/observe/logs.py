"""JSON logs: one object per line, with the request's fields under their own keys.

The formatter is stdlib ``logging`` rather than a library: it is one small class, and it keeps answerdesk's
rule in one place that log records carry the fields they are given (ids, model, tokens, cost, latency,
guard actions) and never the question or answer text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

#: Key of ``logging``'s ``extra`` under which answerdesk passes structured fields.
FIELDS = "answerdesk_fields"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", **fields}``; an exception adds ``exc_type`` and ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, Mapping):
            out.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(*, json_logs: bool, level: str) -> None:
    """Send answerdesk's (and uvicorn's) logs to stderr, as JSON lines when ``json_logs``."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s:     %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
