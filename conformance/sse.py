"""Server-sent events, parsed the way the WHATWG HTML standard says a browser parses them.

The parser is incremental: feed it network chunks as they arrive, in any split (an event, a line,
a CRLF pair or a UTF-8 character may straddle two chunks), and it hands back whole events. It
never raises on bad input; what a browser would silently skip is recorded in ``issues`` so a
check can report it.

Rules followed (https://html.spec.whatwg.org/multipage/server-sent-events.html):
lines end with CRLF, LF or CR; a line starting with ``:`` is a comment; ``field: value`` drops one
leading space from the value; a line without a colon is a field with an empty value; ``data``
lines are joined with LF; a blank line dispatches the event; an event with no data is dropped; a
leading BOM is ignored; at end of stream a pending, unterminated event is discarded by browsers,
which we report and still hand back, marked, so the checks can see what the server meant.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["FramingIssue", "SSEEvent", "SSEParser", "parse_sse"]


@dataclass(slots=True)
class SSEEvent:
    index: int
    data: str
    event: str | None = None
    id: str | None = None
    line_no: int = 0
    raw: str = ""
    terminated: bool = True
    comments: int = 0


@dataclass(slots=True)
class FramingIssue:
    kind: str  # invalid_utf8 | unterminated_final_event | unknown_field | dropped_event | bom
    message: str
    line_no: int = 0
    event_index: int | None = None


@dataclass
class SSEParser:
    """Incremental SSE parser. ``feed`` bytes, then ``close`` once at end of stream."""

    events_seen: int = 0
    lines_seen: int = 0
    comments_seen: int = 0
    bytes_seen: int = 0
    issues: list[FramingIssue] = field(default_factory=list)
    _buf: str = ""
    _first: bool = True
    _data: list[str] = field(default_factory=list)
    _event: str | None = None
    _id: str | None = None
    _lines: list[str] = field(default_factory=list)
    _start_line: int = 0
    _comments: int = 0

    def __post_init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def _decode(self, data: bytes, final: bool = False) -> str:
        state = self._decoder.getstate()
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            self.issues.append(
                FramingIssue(
                    "invalid_utf8",
                    f"invalid UTF-8 near byte {self.bytes_seen + max(exc.start - len(state[0]), 0)}: "
                    f"{exc.reason}; decoded with U+FFFD replacement",
                    self.lines_seen + 1,
                )
            )
            self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
            self._decoder.setstate(state)
            return self._decoder.decode(data, final)

    def feed(self, data: bytes) -> list[SSEEvent]:
        text = self._decode(data)
        self.bytes_seen += len(data)
        if self._first and text:
            self._first = False
            if text[0] == "\ufeff":
                text = text[1:]
        buf = self._buf + text if self._buf else text
        if "\r" in buf:
            hold = ""
            if buf.endswith("\r"):
                hold, buf = "\r", buf[:-1]
            buf = buf.replace("\r\n", "\n").replace("\r", "\n")
            lines = buf.split("\n")
            self._buf = lines.pop() + hold
        else:
            lines = buf.split("\n")
            self._buf = lines.pop()
        out: list[SSEEvent] = []
        pending, raw = self._data, self._lines
        for line in lines:
            # Fast path for the two lines that make up nearly every stream; the rest take _line.
            if line[:6] == "data: ":
                self.lines_seen += 1
                if not raw:
                    self._start_line = self.lines_seen
                raw.append(line)
                pending.append(line[6:])
            elif not line and pending:
                self.lines_seen += 1
                out.append(self._dispatch())
            else:
                self._line(line, out)
        return out

    def close(self) -> list[SSEEvent]:
        """End of stream: report and return any event that lacked its blank line."""
        rest = self._decode(b"", final=True)
        buf = (self._buf + rest).replace("\r\n", "\n").replace("\r", "\n")
        self._buf = ""
        out: list[SSEEvent] = []
        lines = buf.split("\n")
        tail = lines.pop()
        for line in lines:
            self._line(line, out)
        if tail:
            self._line(tail, out, terminated=False)
        if self._data:
            self.issues.append(
                FramingIssue(
                    "unterminated_final_event",
                    "the stream ended inside an event: its blank line never came, so a "
                    "browser-compatible parser (and several SDKs) drops it",
                    self._start_line,
                    self.events_seen,
                )
            )
            out.append(self._dispatch(terminated=False))
        elif self._event is not None or self._lines:
            self._reset()
        return out

    def _line(self, line: str, out: list[SSEEvent], terminated: bool = True) -> None:
        self.lines_seen += 1
        if not line:
            if self._data:
                out.append(self._dispatch())
            else:
                if self._event is not None:
                    self.issues.append(
                        FramingIssue(
                            "dropped_event",
                            f"`event: {self._event}` with no data line: the event is dropped",
                            self._start_line,
                        )
                    )
                self._reset()
            return
        if not self._lines:
            self._start_line = self.lines_seen
        self._lines.append(line)
        if line[0] == ":":
            self._comments += 1
            self.comments_seen += 1
            return
        colon = line.find(":")
        if colon < 0:
            name, value = line, ""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == " ":
                value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id = value
        elif name == "retry":
            pass
        else:
            self.issues.append(
                FramingIssue(
                    "unknown_field",
                    f"unknown SSE field `{name}` (the line is ignored by SSE parsers): {line[:200]!r}",
                    self.lines_seen,
                    self.events_seen,
                )
            )

    def _dispatch(self, terminated: bool = True) -> SSEEvent:
        ev = SSEEvent(
            index=self.events_seen,
            data="\n".join(self._data),
            event=self._event,
            id=self._id,
            line_no=self._start_line,
            raw="\n".join(self._lines),
            terminated=terminated,
            comments=self._comments,
        )
        self.events_seen += 1
        self._reset()
        return ev

    def _reset(self) -> None:
        self._data.clear()
        self._event = None
        self._lines.clear()
        self._comments = 0


def parse_sse(chunks: Iterable[bytes]) -> tuple[list[SSEEvent], SSEParser]:
    """Parse a whole stream; returns the events and the parser (for its ``issues``)."""
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events, parser
