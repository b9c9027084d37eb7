"""The SSE line splitter and decoder: the same events however the wire is cut into reads."""

from __future__ import annotations

import itertools

from answerdesk.generate._sse import LineSplitter, ServerSentEvent, SSEDecoder

WIRE = (
    ": keep-alive\r\n"
    'data: {"text": "a\u2028b"}\r\n\r\n'
    "event: error\rdata: first\rdata: second\r\r"
    "data: [DONE]\n\n"
    "data: no final blank line"
)
EVENTS = [
    ServerSentEvent('{"text": "a\u2028b"}'),
    ServerSentEvent("first\nsecond", "error"),
    ServerSentEvent("[DONE]"),
    ServerSentEvent("no final blank line"),
]


def decode(pieces: list[str]) -> list[ServerSentEvent]:
    splitter, decoder = LineSplitter(), SSEDecoder()
    lines = [line for piece in pieces for line in splitter.feed(piece)] + splitter.flush()
    events = [e for e in (decoder.decode(line) for line in lines) if e is not None]
    last = decoder.flush()
    return events + ([last] if last else [])


def test_lines_end_at_crlf_cr_or_lf_only() -> None:
    splitter = LineSplitter()
    assert splitter.feed("a\r\nb\rc\nd\u2028e\r") == ["a", "b", "c"]
    assert splitter.feed("\n") == ["d\u2028e"]  # the held \r and this \n are one line ending
    assert splitter.feed("tail") == []
    assert splitter.flush() == ["tail"]
    assert splitter.flush() == []


def test_a_lone_cr_at_the_end_of_the_stream_ends_its_line() -> None:
    splitter = LineSplitter()
    assert splitter.feed("data: x\r") == []
    assert splitter.flush() == ["data: x"]


def test_the_events_do_not_depend_on_where_the_reads_cut_the_wire() -> None:
    assert decode([WIRE]) == EVENTS
    for i, j in itertools.combinations(range(1, len(WIRE)), 2):
        assert decode([WIRE[:i], WIRE[i:j], WIRE[j:]]) == EVENTS, (i, j)
    assert decode(list(WIRE)) == EVENTS
