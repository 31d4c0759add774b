"""The SSE parser against the WHATWG rules, at every possible chunk boundary."""

from __future__ import annotations

import pytest
from sse_sample import DATAS, STREAM

from conformance.sse import SSEParser, parse_sse


def _datas(chunks: list[bytes]) -> list[str]:
    events, _ = parse_sse(chunks)
    return [e.data for e in events]


def test_whole_stream() -> None:
    events, parser = parse_sse([STREAM])
    assert [e.data for e in events] == DATAS
    assert events[0].event == "response.created" and events[1].event == "x"
    assert events[1].id == "7"
    assert events[1].comments == 1
    assert events[2].id == "7", "the last event id persists across events"
    assert parser.issues == []
    assert all(e.terminated for e in events)


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_any_two_chunk_split_gives_the_same_events(cut: int) -> None:
    assert _datas([STREAM[:cut], STREAM[cut:]]) == _datas([STREAM])


def test_byte_by_byte() -> None:
    assert _datas([bytes([b]) for b in STREAM]) == _datas([STREAM])


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    events, _ = parse_sse([b"data: x\r", b"\n\r", b"\ndata: y\r\n\r\n"])
    assert [e.data for e in events] == ["x", "y"]


def test_unterminated_final_event_is_reported_and_kept() -> None:
    events, parser = parse_sse([b"data: a\n\ndata: [DONE]"])
    assert [e.data for e in events] == ["a", "[DONE]"]
    assert events[-1].terminated is False
    assert [i.kind for i in parser.issues] == ["unterminated_final_event"]


def test_final_event_with_single_newline_is_unterminated() -> None:
    events, parser = parse_sse([b"data: a\n"])
    assert [e.data for e in events] == ["a"]
    assert [i.kind for i in parser.issues] == ["unterminated_final_event"]


def test_unknown_field_and_event_without_data() -> None:
    events, parser = parse_sse([b'error: {"code":400}\n\nevent: x\n\ndata: ok\n\n'])
    assert [e.data for e in events] == ["ok"]
    assert [i.kind for i in parser.issues] == ["unknown_field", "dropped_event"]


def test_invalid_utf8_is_replaced_and_reported() -> None:
    events, parser = parse_sse([b"data: \xff\xfeok\n\n", b"data: fine\n\n"])
    assert events[0].data == "\ufffd\ufffdok"
    assert events[1].data == "fine"
    assert [i.kind for i in parser.issues] == ["invalid_utf8"]


def test_utf8_character_split_across_chunks() -> None:
    raw = "data: 漢字\n\n".encode()
    assert _datas([raw[:7], raw[7:]]) == ["漢字"]


def test_counts() -> None:
    parser = SSEParser()
    parser.feed(b": ping\n\ndata: 1\n\n")
    parser.close()
    assert parser.events_seen == 1
    assert parser.comments_seen == 1
