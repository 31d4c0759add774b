"""The reference bridge's own SSE reader for the upstream's chat stream.

Deliberately separate from the checker's parser (:mod:`conformance.sse`): the bridge is the
known-good proxy the checks are proven against, so a parser bug shared by both would hide itself.
It needs little: the ``data`` of each event, and any ``error:`` line (an upstream that reports a
failure in a field SSE does not define).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["SSEReader", "UpstreamEvent"]


@dataclass(frozen=True)
class UpstreamEvent:
    """One event's data, or (``error`` set) the raw ``error:`` line the upstream sent."""

    data: str = ""
    error: str | None = None


class SSEReader:
    """Incremental: ``feed`` bytes as they arrive, ``close`` at the end of the stream."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""
        self._data: list[str] = []
        self._first = True

    def feed(self, chunk: bytes) -> list[UpstreamEvent]:
        text = self._buf + self._decoder.decode(chunk)
        if self._first and text:
            self._first = False
            text = text.removeprefix("\ufeff")
        hold = ""
        if text.endswith("\r"):  # maybe the first half of a CRLF
            hold, text = "\r", text[:-1]
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buf = lines.pop() + hold
        return [e for line in lines for e in self._line(line)]

    def close(self) -> list[UpstreamEvent]:
        """The stream ended: lines without a final newline, and an event without its blank line."""
        rest = (self._buf + self._decoder.decode(b"", final=True)).replace("\r\n", "\n").replace("\r", "\n")
        self._buf = ""
        out = [e for line in rest.split("\n") if line for e in self._line(line)]
        if self._data:
            out.append(UpstreamEvent("\n".join(self._data)))
            self._data = []
        return out

    def _line(self, line: str) -> list[UpstreamEvent]:
        if not line:
            if not self._data:
                return []
            event = UpstreamEvent("\n".join(self._data))
            self._data = []
            return [event]
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        elif name == "error":
            return [UpstreamEvent(error=line[:200])]
        return []
