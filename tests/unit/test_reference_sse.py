"""The reference bridge's own SSE reader: split anywhere, any line ending, error lines kept."""

from __future__ import annotations

import pytest

from conformance.reference._sse import SSEReader, UpstreamEvent

STREAM = b'\xef\xbb\xbfdata: {"a": 1}\r\n\r\n: comment\nevent: x\ndata: line1\ndata:line2\n\n' + "data: é\r\r".encode()


def _read(parts: list[bytes]) -> list[UpstreamEvent]:
    reader = SSEReader()
    out = [e for p in parts for e in reader.feed(p)]
    return out + reader.close()


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAM)])
def test_events_are_the_same_however_the_bytes_are_split(size: int) -> None:
    parts = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert _read(parts) == [UpstreamEvent('{"a": 1}'), UpstreamEvent("line1\nline2"), UpstreamEvent("é")]


def test_error_line_and_unterminated_last_event() -> None:
    events = _read([b'data: {"x": 1}\n\nerror: {"message": "boom"}\n', b"data: [DONE]"])
    assert events == [UpstreamEvent('{"x": 1}'), UpstreamEvent(error='error: {"message": "boom"}'), UpstreamEvent("[DONE]")]
