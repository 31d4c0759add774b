"""The SSE parser is linear on any chunking and caps the length of one line.

Linearity is shown by structure and equivalence, never by timing: a line split over many chunks is
held as those pieces (nothing is rebuilt per chunk) and any chunking gives the same events as the
whole stream. The line cap is shown at three levels: the parser, the driver reading from a real
HTTP server on 127.0.0.1, and the ``sse.framing`` / ``transport.cap`` findings.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from dataclasses import replace

import pytest
from conftest import RawServer, Script, sse_head, stall
from sse_sample import STREAM

from conformance.checks import run_checks
from conformance.driver import Limits, drive
from conformance.exchange import Chunk, Exchange
from conformance.sse import MAX_LINE, SSEEvent, SSEParser, parse_sse


def _view(events: list[SSEEvent]) -> list[tuple[object, ...]]:
    return [(e.index, e.data, e.event, e.id, e.line_no, e.raw, e.terminated, e.comments) for e in events]


@pytest.mark.parametrize("seed", range(300))
def test_any_chunking_gives_the_events_of_the_whole_stream(seed: int) -> None:
    rng = random.Random(seed)
    points = sorted(set(rng.sample(range(1, len(STREAM)), rng.randint(1, 12))))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    whole, whole_parser = parse_sse([STREAM])
    split, split_parser = parse_sse(chunks)
    assert _view(split) == _view(whole)
    assert split_parser.issues == whole_parser.issues
    assert split_parser.lines_seen == whole_parser.lines_seen


def test_byte_by_byte_gives_the_events_of_the_whole_stream() -> None:
    split, _ = parse_sse([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert _view(split) == _view(parse_sse([STREAM])[0])


def test_a_long_line_is_held_as_its_pieces_not_rebuilt_per_chunk() -> None:
    parser = SSEParser()
    parser.feed(b"event: response.output_text.delta\ndata: ")
    piece = b"x" * 100
    for _ in range(2000):
        assert parser.feed(piece) == []
    # One piece per chunk, never a concatenation of what came before: O(total) work.
    assert len(parser._part) == 2001
    assert parser._part_len == 6 + 200_000
    (event,) = parser.feed(b"\n\n")
    assert event.data == "x" * 200_000
    assert parser._part == [] and parser._part_len == 0


def test_crlf_split_across_chunks_ends_the_line_at_the_cr() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    (event,) = parser.feed(b"\r")  # CR ends line one; this CR is the blank line
    assert event.data == "a"
    assert parser.feed(b"\n") == [], "an LF right after a CR is part of the same line end"
    (event,) = parser.feed(b"data: b\r\n\r\n")
    assert event.data == "b"
    assert parser.lines_seen == 4


def test_raw_is_rebuilt_for_plain_events_and_kept_for_the_others() -> None:
    events, _ = parse_sse([STREAM])
    assert events[0].raw_text is None and events[0].raw == 'event: response.created\ndata: {"a":1}'
    assert events[1].raw == ": a comment\nevent: x\nid: 7\ndata: line one\ndata:line two"
    assert events[2].raw == "retry: 100\ndata: é😀"
    assert events[3].raw == "data"
    assert events[4].raw_text is None and events[4].raw == "event: response.completed\ndata: {}"
    (only_data,), _ = parse_sse([b"data: 1\n\n"])
    assert only_data.raw_text is None and only_data.raw == "data: 1"
    (odd,), _ = parse_sse([b"data: 1\nevent: late\n\n"])
    assert odd.raw == "data: 1\nevent: late"


def test_a_line_over_the_cap_stops_the_parser_with_an_issue() -> None:
    parser = SSEParser(max_line=100)
    events = parser.feed(b"data: ok\n\ndata: " + b"y" * 90 + b"\n\n" + b"data: " + b"z" * 200 + b"\n\ndata: after\n\n")
    assert [e.data for e in events] == ["ok", "y" * 90]
    assert parser.overflowed
    assert [(i.kind, i.line_no, i.event_index) for i in parser.issues] == [("line_too_long", 5, 2)]
    assert parser.feed(b"data: more\n\n") == []
    assert parser.close() == []
    assert len(parser.issues) == 1, "no unterminated-event issue after the cap"


def test_a_trickled_line_stops_as_soon_as_it_passes_the_cap() -> None:
    parser = SSEParser(max_line=1000)
    fed = 0
    while not parser.overflowed:
        parser.feed(b"x" * 10)
        fed += 1
        assert fed < 10_000, "the parser never stopped"
    assert fed == 101, "stops at the first chunk past the cap, before any line end"
    assert parser._part == []
    assert [i.kind for i in parser.issues] == ["line_too_long"]


def test_a_line_at_the_cap_is_fine() -> None:
    events, parser = parse_sse([b"data: " + b"a" * 94 + b"\n\n"], max_line=100)
    assert [len(e.data) for e in events] == [94]
    assert not parser.overflowed and parser.issues == []


def test_the_cap_counts_a_line_split_over_chunks_and_a_long_final_piece() -> None:
    parser = SSEParser(max_line=100)
    parser.feed(b"data: " + b"a" * 60)
    assert not parser.overflowed
    parser.feed(b"a" * 60 + b"\n\n")
    assert parser.overflowed
    tail = SSEParser(max_line=100)
    assert tail.feed(b"data: 1\n\n" + b"b" * 150) != []
    assert tail.overflowed


def _exchange(body: bytes) -> Exchange:
    return Exchange(
        "crafted", 0, "http://127.0.0.1/v1/responses", {"model": "m", "input": "x"},
        status=200, headers={"content-type": "text/event-stream"}, chunks=[Chunk(0.0, body)],
    )


def test_sse_framing_reports_a_line_over_the_default_cap() -> None:
    body = b'data: {"type":"response.created"}\n\ndata: ' + b"x" * MAX_LINE + b"\n\n"
    results = run_checks(_exchange(body), profile="strict", select=["sse.framing"])
    (finding,) = results["sse.framing"].findings
    assert finding.message.startswith("line_too_long:")
    clean = run_checks(_exchange(b'data: {"type":"response.created"}\n\n'), select=["sse.framing"])
    assert clean["sse.framing"].findings == []


def test_the_driver_stops_reading_at_a_line_over_the_cap(
    raw_server: Callable[[Script], RawServer],
) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(sse_head() + b'data: {"type":"response.created"}\n\ndata: ')
        block = b"x" * 65536
        for _ in range(MAX_LINE // len(block) + 64):  # 4 MiB past the cap, then a stall
            conn.sendall(block)
        stall(conn, 10)

    # max_event_bytes (the driver's own cap on bytes without a completed event, 8 MiB by default)
    # raised past the line, so that this test reaches the parser's line cap.
    limits = Limits(connect_timeout=2, first_byte_timeout=2.0, idle_timeout=5.0, total_timeout=20.0,
                    max_bytes=64 * 1024 * 1024, max_events=50, max_event_bytes=64 * 1024 * 1024)
    ex = drive(raw_server(script).url, {"input": "x"}, limits=replace(limits))
    assert ex.transport_error is not None and ex.transport_error.kind == "cap"
    assert "SSE line longer than" in ex.transport_error.message
    assert len(ex.body) < MAX_LINE + 4 * 1024 * 1024
    results = run_checks(ex, profile="strict", select=["sse.framing", "transport.cap"])
    assert [f.message.split(":")[0] for f in results["sse.framing"].findings] == ["line_too_long"]
    assert len(results["transport.cap"].findings) == 1
