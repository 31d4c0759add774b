"""Bounds on what one exchange may hold before it is analysed: JSON nesting depth, decoded size.

The checks parse every event and body with Python's recursive tools, so a document nested
100,000 levels deep would end the run with ``RecursionError``. :func:`bound_exchange` finds the
first line of the body that nests deeper than :data:`~conformance._safety.MAX_DEPTH` and cuts the
exchange there, as the driver cuts at the byte cap: the checks judge what came before, and
``transport.cap`` says why the rest is missing.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from conformance._safety import MAX_DEPTH, json_depth
from conformance.exchange import Chunk, Exchange, TransportError

__all__ = ["BoundedDecoder", "DecodeError", "bound_exchange", "first_too_deep"]


def first_too_deep(body: bytes, limit: int = MAX_DEPTH) -> int:
    """Byte offset of the first line nesting deeper than ``limit``, or -1 (linear; no recursion)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return -1
    start = 0
    for line in body.split(b"\n"):
        if line.count(b"[") + line.count(b"{") > limit and json_depth(line, limit)[1] >= 0:
            return start
        start += len(line) + 1
    # One JSON document over several lines (a non-stream body pretty-printed).
    text = body.decode("utf-8", "replace")
    _, offset = json_depth(text, limit)
    return len(text[:offset].encode("utf-8")) if offset >= 0 else -1


def bound_exchange(exchange: Exchange, limit: int = MAX_DEPTH) -> bool:
    """Cut ``exchange`` before its first too-deeply nested line; True when it was cut."""
    body = b"".join(c.data for c in exchange.chunks)
    offset = first_too_deep(body, limit)
    if offset < 0:
        return False
    kept: list[Chunk] = []
    used = 0
    for chunk in exchange.chunks:
        if used + len(chunk.data) <= offset:
            kept.append(chunk)
            used += len(chunk.data)
            continue
        if offset > used:
            kept.append(Chunk(chunk.t_ms, chunk.data[: offset - used]))
        break
    exchange.chunks = kept
    earlier = f" (before that: {exchange.transport_error.message})" if exchange.transport_error else ""
    exchange.transport_error = TransportError(
        "cap",
        f"the JSON at byte {offset} nests more than {limit} levels deep (the nesting cap); the "
        f"response was cut there and only the {offset} bytes before it are checked{earlier}",
    )
    return True


class DecodeError(ValueError):
    """The body does not decode under its Content-Encoding."""


class BoundedDecoder:
    """Content-Encoding decoding that never produces more than ``limit`` + 1 bytes in total.

    httpx inflates a whole network read at once, so a 64 KiB gzip bomb read becomes gigabytes
    before any cap is checked. Here each step inflates with ``max_length``: memory stays within
    the byte cap whatever the compression ratio. Encodings other than gzip and deflate pass
    through undecoded (as httpx does without the optional decoders installed).
    """

    def __init__(self, content_encoding: str, limit: int) -> None:
        self.limit = limit
        self.produced = 0
        self.over = False
        self.names: list[str] = []
        self._steps: list[zlib._Decompress] = []
        self._deflate_raw_tried: list[bool] = []
        for name in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
            if name in ("gzip", "x-gzip"):
                self._steps.append(zlib.decompressobj(zlib.MAX_WBITS | 16))
            elif name == "deflate":
                self._steps.append(zlib.decompressobj())
            else:
                continue
            self.names.append(name)
            self._deflate_raw_tried.append(name != "deflate")

    @property
    def active(self) -> bool:
        return bool(self._steps)

    def pieces(self, data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
        """Decode ``data`` into pieces of at most about ``size`` bytes (a 64 KiB read of a bomb
        would otherwise become one piece as large as the cap)."""
        if len(self._steps) != 1:
            out = self.decode(data)
            for i in range(0, len(out), size):
                yield out[i : i + size]
            return
        step = self._steps[0]
        while not self.over:
            budget = min(size, self.limit + 1 - self.produced)
            if budget <= 0:
                self.over = True
                return
            try:
                out = step.decompress(data, budget)
            except zlib.error as exc:
                if self._deflate_raw_tried[0] or self.produced:
                    raise DecodeError(f"the body is not valid {self.names[0]} ({exc})") from None
                self._deflate_raw_tried[0] = True
                self._steps[0] = step = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._deflate_raw_tried[0] = True
            self.produced += len(out)
            if self.produced > self.limit:
                self.over = True
            if out:
                yield out
            data = step.unconsumed_tail
            if not data:
                return

    def decode(self, data: bytes) -> bytes:
        budget = self.limit + 1 - self.produced
        if budget <= 0:
            self.over = True
            return b""
        for i, step in enumerate(self._steps):
            if not data:
                break
            try:
                out = step.decompress(data, budget)
            except zlib.error as exc:
                if self._deflate_raw_tried[i] or self.produced:
                    raise DecodeError(f"the body is not valid {self.names[i]} ({exc})") from None
                # Some servers send raw deflate without the zlib header (httpx tolerates it too).
                self._deflate_raw_tried[i] = True
                self._steps[i] = step = zlib.decompressobj(-zlib.MAX_WBITS)
                try:
                    out = step.decompress(data, budget)
                except zlib.error as exc2:
                    raise DecodeError(f"the body is not valid {self.names[i]} ({exc2})") from None
            self._deflate_raw_tried[i] = True
            if step.unconsumed_tail:
                self.over = True
            data = out
        self.produced += len(data)
        if self.produced > self.limit:
            self.over = True
        return data

    def flush(self) -> bytes:
        if self.over:
            return b""
        out = b""
        for step in self._steps:
            out = step.decompress(out, self.limit + 1 - self.produced) if out else step.flush(self.limit + 1 - self.produced)
        self.produced += len(out)
        return out
