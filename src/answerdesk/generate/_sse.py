"""Server-Sent Events decoding, the part of the WHATWG format that model servers use.

An event is a run of ``field: value`` lines ended by a blank line; ``data`` lines are joined with ``\\n``,
lines starting with ``:`` are comments (keep-alives), and ``id``/``retry`` do not matter for a single
completion. This module only splits the wire into events; what the data means is the provider's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    #: The ``event:`` field; ``message`` when the server named none, as the standard says.
    event: str = "message"


class LineSplitter:
    """Splits text that arrives in pieces into lines, at ``\\r\\n``, ``\\r`` or ``\\n`` as the standard says (and no
    other line breaks: a JSON payload may hold a raw U+2028). A line may span pieces, and so may a ``\\r\\n``."""

    def __init__(self) -> None:
        self._rest = ""

    def feed(self, text: str) -> list[str]:
        """The lines ``text`` completes, without their endings."""
        text = self._rest + text
        # A trailing \r may be the first half of a \r\n: it ends its line only once the next piece shows.
        hold = "\r" if text.endswith("\r") else ""
        *lines, rest = _LINE_END.split(text[: len(text) - len(hold)])
        self._rest = rest + hold
        return lines

    def flush(self) -> list[str]:
        """The last line, when the stream ended without a line ending (or on a lone ``\\r``)."""
        rest, self._rest = self._rest, ""
        return [rest.removesuffix("\r")] if rest else []


class SSEDecoder:
    """Turns lines (without their line endings) into events, one at each blank line."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""

    def decode(self, line: str) -> ServerSentEvent | None:
        """Feed one line; returns the event it completes, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        # One space after the colon belongs to the syntax, not to the value.
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def flush(self) -> ServerSentEvent | None:
        """The event still open when the stream ended.

        The standard drops it; servers that omit the final blank line exist, and whether the stream was
        complete is judged from the events' content (finish reason, ``[DONE]``), not from the framing.
        """
        return self._dispatch()

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent("\n".join(self._data), self._event or "message")
        self._data = []
        self._event = ""
        return event
