"""Streaming PII redaction: text goes out as soon as no PII match can still grow into it.

:class:`StreamRedactor` keeps a buffer of what the model has sent and releases, redacted, everything up to
the buffer's last cut (:mod:`answerdesk.guard.segments`). While only pattern entities are on, that holds back
the current word, or a number, card or address with what follows it until the next gap between two
lower-case words; with names, places or multi-word patterns, the current sentence. Because the cuts of a
prefix are the cuts of the whole text, and no match spans a cut, the concatenated output equals
:meth:`PiiGuard.redact <answerdesk.guard.pii.PiiGuard.redact>` of the whole text for any split into chunks,
so a value split across chunks is never released half-redacted.
"""

from __future__ import annotations

from dataclasses import replace

from answerdesk.guard.base import Finding, Stage
from answerdesk.guard.pii import PiiGuard, Placeholders
from answerdesk.guard.segments import last_cut


class StreamRedactor:
    """Feed chunks to :meth:`push`, then call :meth:`flush` once; each returns the text safe to send now.
    ``findings`` accumulates what was redacted, with spans into the whole streamed text."""

    def __init__(self, guard: PiiGuard, placeholders: Placeholders | None = None, *, stage: Stage = "output") -> None:
        self._guard = guard
        self._placeholders = placeholders or Placeholders()
        self._stage: Stage = stage
        self._buffer = ""
        self._offset = 0
        self._findings: list[Finding] = []
        self._closed = False

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(self._findings)

    @property
    def held(self) -> int:
        """Characters received and not yet released."""
        return len(self._buffer)

    def push(self, chunk: str) -> str:
        """Add ``chunk``; return the redacted text of the segments it completed (often empty).
        Raises ``GuardError`` when detection fails: the caller must then stop the stream."""
        if self._closed:
            raise RuntimeError("push after flush")
        self._buffer += chunk
        # Only the tail can hold a new cut; the scan still starts at the buffer's start, which is a cut.
        cut = last_cut(self._buffer, self._guard.segment_mode)
        if cut == 0:
            return ""
        return self._release(self._buffer[:cut], rest=self._buffer[cut:])

    def flush(self) -> str:
        """The rest of the text, redacted; the stream is over."""
        self._closed = True
        return self._release(self._buffer, rest="")

    def _release(self, text: str, *, rest: str) -> str:
        result = self._guard.redact(text, stage=self._stage, placeholders=self._placeholders)
        self._findings += [_shift(f, self._offset) for f in result.findings]
        self._offset += len(text)
        self._buffer = rest
        return result.text


def _shift(finding: Finding, offset: int) -> Finding:
    if finding.span is None:
        return finding
    return replace(finding, span=(finding.span[0] + offset, finding.span[1] + offset))


def redact_stream(guard: PiiGuard, chunks: list[str], placeholders: Placeholders | None = None) -> list[str]:
    """Every piece :class:`StreamRedactor` releases for ``chunks``, the final flush included."""
    redactor = StreamRedactor(guard, placeholders)
    out = [redactor.push(c) for c in chunks]
    out.append(redactor.flush())
    return out
