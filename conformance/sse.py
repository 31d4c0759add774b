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

Bounded: linear in the input on any chunking, and one line may hold at most ``MAX_LINE``
characters (configurable per parser); past that the parser stops with a ``line_too_long`` issue.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["MAX_LINE", "FramingIssue", "SSEEvent", "SSEParser", "parse_sse"]


@dataclass(slots=True)
class SSEEvent:
    index: int
    data: str
    event: str | None = None
    id: str | None = None
    line_no: int = 0
    terminated: bool = True
    comments: int = 0
    raw_text: str | None = None
    """The event's lines as sent; None when they were exactly ``event: …`` then ``data: …``
    (or ``data: …`` alone), which :attr:`raw` rebuilds: most events, and one copy fewer each."""

    @property
    def raw(self) -> str:
        """The event's lines as sent (without the blank line), joined with LF."""
        if self.raw_text is not None:
            return self.raw_text
        if self.event is None:
            return "data: " + self.data
        return "event: " + self.event + "\ndata: " + self.data


@dataclass(slots=True)
class FramingIssue:
    kind: str  # invalid_utf8 | unterminated_final_event | unknown_field | dropped_event | line_too_long
    message: str
    line_no: int = 0
    event_index: int | None = None


# A run of canonical events, and one of them: the event name (never empty, so that an absent name
# and ``event: `` stay apart) and the data. Lines never hold a newline (CR is already LF here).
_RUN = re.compile(r"(?:(?:event: [^\n]+\n)?data: [^\n]*\n\n)+")
_EVENTS = re.compile(r"(?:event: ([^\n]+)\n)?data: ([^\n]*)\n\n")

MAX_LINE = 16 * 1024 * 1024
"""Default cap on one SSE line, in characters (16 MiB of ASCII): room for a ``response.completed``
line carrying a million tokens of text (about 4 MB) several times over, and a quarter of the
driver's default byte cap (64 MiB), so a runaway line ends long before the byte cap would."""


@dataclass
class SSEParser:
    """Incremental SSE parser. ``feed`` bytes, then ``close`` once at end of stream.

    Linear in the input on any chunking: a line split over many chunks is kept as a list of
    pieces and joined once, when its end arrives. A line longer than ``max_line`` characters
    stops the parser: it records a ``line_too_long`` issue, sets ``overflowed``, drops what it
    held and ignores the rest of the stream (the driver then stops reading).
    """

    events_seen: int = 0
    lines_seen: int = 0
    comments_seen: int = 0
    bytes_seen: int = 0
    issues: list[FramingIssue] = field(default_factory=list)
    max_line: int = MAX_LINE
    overflowed: bool = False
    _first: bool = True
    _skip_lf: bool = False
    _part: list[str] = field(default_factory=list)
    _part_len: int = 0
    _data: list[str] = field(default_factory=list)
    _event: str | None = None
    _id: str | None = None
    _lines: list[str] = field(default_factory=list)
    _start_line: int = 0
    _comments: int = 0
    _canon: bool = True
    _names: dict[str, str] = field(default_factory=dict)
    _consumed: int = 0

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
        if self.overflowed:
            self.bytes_seen += len(data)
            return []
        text = self._decode(data)
        self.bytes_seen += len(data)
        return self._text(text) if text else []

    def _text(self, text: str) -> list[SSEEvent]:
        """Split decoded text into lines (CRLF, LF and CR, even split across calls) and parse them."""
        if self._first:
            self._first = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text[:1] == "\n":
                text = text[1:]
        if "\r" in text:
            # A CR ends its line now; an LF right after it (maybe in the next chunk) is skipped.
            if text[-1] == "\r":
                self._skip_lf = True
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not text:
            return []
        out: list[SSEEvent] = []
        if self._part or self._lines:
            # Inside a line or an event: line by line up to the blank line that ends the event.
            if not self._part and text[0] == "\n":
                cut = 1
            else:
                cut = text.find("\n\n") + 2
                if cut == 1:
                    return self._split(text)
            out = self._split(text[:cut])
            if self.overflowed or cut == len(text):
                return out
            text = text[cut:]
        if len(text) <= self.max_line:
            events = self._canonical(text)
            if events:
                out += events
                if self._consumed == len(text):
                    return out
                text = text[self._consumed :]
        out += self._split(text)
        return out

    def _split(self, text: str) -> list[SSEEvent]:
        """Split normalised text into lines and parse them (the general path)."""
        if "\n" not in text:
            if text:
                self._part.append(text)
                self._part_len += len(text)
                if self._part_len > self.max_line:
                    self._overflow(self.lines_seen + 1)
            return []
        lines = text.split("\n")
        tail = lines.pop()
        too_long = -1
        if self._part_len + len(text) > self.max_line:
            head = self._part_len + len(lines[0])
            if head > self.max_line:
                too_long = 0
            else:
                too_long = next(
                    (i for i, line in enumerate(lines) if len(line) > self.max_line), -1
                )
            if too_long < 0 and len(tail) > self.max_line:
                too_long = len(lines)
            if too_long >= 0:
                del lines[too_long:]
                tail = ""
        if self._part:
            if lines:
                self._part.append(lines[0])
                lines[0] = "".join(self._part)
            self._part = []
            self._part_len = 0
        out = self._lines_in(lines) if lines else []
        if too_long >= 0:
            self._overflow(self.lines_seen + 1)
        elif tail:
            self._part.append(tail)
            self._part_len = len(tail)
        return out

    def _canonical(self, text: str) -> list[SSEEvent]:
        """The run of whole canonical events (``event: NAME`` then ``data: …`` then a blank line,
        or the data line alone) at the start of ``text``, parsed by two regular-expression calls
        instead of line by line; sets ``_consumed`` to the characters they took. Called only with
        no line pending and ``text`` no longer than the line cap (so no line in it is too long)."""
        run = _RUN.match(text)
        end = run.end() if run is not None else 0
        self._consumed = end
        if not end:
            return []
        out: list[SSEEvent] = []
        append = out.append
        names, event_id = self._names, self._id
        n, index = self.lines_seen, self.events_seen
        for name, data in _EVENTS.findall(text, 0, end):
            if name:
                event = names.get(name) or (names.setdefault(name, name) if len(names) < 256 else name)
                append(SSEEvent(index, data, event, event_id, n + 1))
                n += 3
            else:
                append(SSEEvent(index, data, None, event_id, n + 1))
                n += 2
            index += 1
        self.lines_seen, self.events_seen = n, index
        return out

    def _lines_in(self, lines: list[str]) -> list[SSEEvent]:
        """Parse whole lines. The two lines that make up nearly every event (``event: …`` and
        ``data: …``) and the blank line after them are handled here with the parser state in
        locals; every other line goes through :meth:`_line` with the state written back."""
        out: list[SSEEvent] = []
        pending, raw, names = self._data, self._lines, self._names
        n, index = self.lines_seen, self.events_seen
        event, start, canon = self._event, self._start_line, self._canon
        for line in lines:
            n += 1
            if line[:6] == "data: ":
                if not raw:
                    start = n
                elif pending:
                    canon = False
                raw.append(line)
                pending.append(line[6:])
            elif not line and pending:
                out.append(
                    SSEEvent(
                        index,
                        pending[0] if len(pending) == 1 else "\n".join(pending),
                        event,
                        self._id,
                        start,
                        True,
                        self._comments,
                        None if canon else "\n".join(raw),
                    )
                )
                index += 1
                pending.clear()
                raw.clear()
                event, canon = None, True
                if self._comments:
                    self._comments = 0
            elif line[:7] == "event: " and not raw:
                # The event name, once per name: a stream repeats a few dozen names.
                start = n
                raw.append(line)
                name = line[7:]
                event = names.get(name) or (
                    names.setdefault(name, name) if len(names) < 256 else name
                )
            else:
                self.lines_seen, self.events_seen = n - 1, index
                self._event, self._start_line, self._canon = event, start, canon
                self._line(line, out)
                index = self.events_seen
                event, start, canon = self._event, self._start_line, self._canon
        self.lines_seen, self.events_seen = n, index
        self._event, self._start_line, self._canon = event, start, canon
        return out

    def _overflow(self, line_no: int) -> None:
        self.overflowed = True
        self.issues.append(
            FramingIssue(
                "line_too_long",
                f"a line longer than {self.max_line} characters (the parser's cap): parsing "
                "stopped there and the rest of the stream was not read",
                line_no,
                self.events_seen,
            )
        )
        self._part = []
        self._part_len = 0
        self._reset()

    def close(self) -> list[SSEEvent]:
        """End of stream: report and return any event that lacked its blank line."""
        if self.overflowed:
            return []
        rest = self._decode(b"", final=True)
        out = self._text(rest) if rest else []
        if self.overflowed:
            return out
        tail = "".join(self._part)
        self._part = []
        self._part_len = 0
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
            if line[:7] != "event: ":
                self._canon = False
        else:
            self._canon = False
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
        data = self._data
        ev = SSEEvent(
            self.events_seen,
            data[0] if len(data) == 1 else "\n".join(data),
            self._event,
            self._id,
            self._start_line,
            terminated,
            self._comments,
            None if self._canon else "\n".join(self._lines),
        )
        self.events_seen += 1
        self._reset()
        return ev

    def _reset(self) -> None:
        self._data.clear()
        self._event = None
        self._lines.clear()
        self._comments = 0
        self._canon = True


def parse_sse(
    chunks: Iterable[bytes], max_line: int = MAX_LINE
) -> tuple[list[SSEEvent], SSEParser]:
    """Parse a whole stream; returns the events and the parser (for its ``issues``)."""
    parser = SSEParser(max_line=max_line)
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events, parser
