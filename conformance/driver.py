"""The driver: POST one Responses request to the proxy and keep every byte, with arrival times.

Reading happens in a worker thread; the calling thread waits on it with deadlines (connect,
first byte, idle gap, total) and caps (bytes, SSE events). Whatever the proxy does — refuse the
connection, stall, stream forever, send garbage — :func:`drive` returns an :class:`Exchange`
within the configured time, with ``transport_error`` saying what went wrong. It never raises for
the proxy's behaviour.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from conformance.exchange import Chunk, Exchange, TransportError
from conformance.sse import SSEParser

__all__ = ["Limits", "drive"]


@dataclass(frozen=True)
class Limits:
    """Timeouts in seconds and size caps for one exchange."""

    connect_timeout: float = 10.0
    first_byte_timeout: float = 60.0
    idle_timeout: float = 30.0
    total_timeout: float = 300.0
    max_bytes: int = 64 * 1024 * 1024
    max_events: int = 200_000


_DONE = object()


def _shutdown(response: httpx.Response | None) -> None:
    """Wake a reader blocked in recv() on this response's socket."""
    if response is None:
        return
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _describe(exc: BaseException, url: str) -> TransportError:
    if isinstance(exc, httpx.ConnectTimeout):
        return TransportError("connect", f"connecting to {url} timed out")
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc) or type(exc).__name__
        return TransportError("connect", f"cannot connect to {url}: {reason}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return TransportError("protocol", f"the connection broke mid-response: {exc}")
    if isinstance(exc, httpx.ReadError):
        return TransportError("protocol", f"reading the response failed: {exc or type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return TransportError("idle_timeout", f"the socket read timed out: {exc or type(exc).__name__}")
    return TransportError("protocol", f"{type(exc).__name__}: {exc}")


def drive(
    url: str,
    request: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    limits: Limits = Limits(),
    cassette_id: str = "",
    turn: int = 0,
    content: bytes | None = None,
) -> Exchange:
    """Send ``request`` as JSON (or ``content``, raw bytes, when given) to ``url`` and capture the raw response."""
    exchange = Exchange(cassette_id=cassette_id, turn=turn, url=url, request=request)
    send_headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
    send_headers.update(headers or {})
    exchange.request_headers = dict(send_headers)
    inbox: queue.Queue[Any] = queue.Queue()
    abort = threading.Event()
    holder: dict[str, httpx.Response] = {}
    read_timeout = max(limits.first_byte_timeout, limits.idle_timeout) + 1.0
    t0 = time.monotonic()

    def reader() -> None:
        timeout = httpx.Timeout(connect=limits.connect_timeout, read=read_timeout, write=30.0, pool=5.0)
        try:
            # No TLS context for plain http: building one costs ~30 ms per exchange.
            verify = url.lower().startswith("https:")
            with httpx.Client(timeout=timeout, trust_env=False, verify=verify) as client, client.stream(
                "POST", url, **({"content": content} if content is not None else {"json": request}), headers=send_headers
            ) as response:
                holder["response"] = response
                inbox.put(("head", response.status_code, dict(response.headers)))
                # Decoded as a client decodes it (gzip/deflate per Content-Encoding), chunk by chunk.
                for data in response.iter_bytes():
                    if abort.is_set():
                        return
                    if data:
                        inbox.put(("data", time.monotonic(), data))
        except BaseException as exc:  # reported to the caller, whatever it is
            if not abort.is_set():
                inbox.put(("error", exc))
            return
        inbox.put(_DONE)

    thread = threading.Thread(target=reader, name=f"driver-{cassette_id}", daemon=True)
    thread.start()
    parser = SSEParser()
    got_head = False
    last = t0
    nbytes = 0
    while True:
        now = time.monotonic()
        total_left = t0 + limits.total_timeout - now
        if got_head and exchange.chunks:
            gap_left = last + limits.idle_timeout - now
            gap_kind, gap_limit = "idle_timeout", limits.idle_timeout
        else:
            gap_left = t0 + limits.first_byte_timeout - now
            gap_kind, gap_limit = "first_byte_timeout", limits.first_byte_timeout
        wait = min(total_left, gap_left)
        try:
            item = inbox.get(timeout=max(wait, 0.0)) if wait > 0 else inbox.get_nowait()
        except queue.Empty:
            abort.set()
            _shutdown(holder.get("response"))
            if total_left <= gap_left:
                exchange.transport_error = TransportError(
                    "total_timeout",
                    f"the response was still open after the total timeout of {limits.total_timeout:g} s "
                    f"({nbytes} bytes, {parser.events_seen} events so far)",
                )
            elif gap_kind == "first_byte_timeout":
                exchange.transport_error = TransportError(
                    gap_kind, f"no response byte arrived within {gap_limit:g} s (first-byte timeout)"
                )
            else:
                exchange.transport_error = TransportError(
                    gap_kind,
                    f"the stream stalled: no byte for {gap_limit:g} s (idle timeout) after "
                    f"{nbytes} bytes and {parser.events_seen} events",
                )
            break
        if item is _DONE:
            break
        kind = item[0]
        if kind == "head":
            got_head = True
            exchange.status, exchange.headers = item[1], item[2]
            last = time.monotonic()
        elif kind == "data":
            _, at, data = item
            last = at
            exchange.chunks.append(Chunk((at - t0) * 1000.0, data))
            nbytes += len(data)
            parser.feed(data)
            # parser.overflowed: one SSE line passed the parser's line cap (sse.MAX_LINE).
            if nbytes > limits.max_bytes or parser.events_seen > limits.max_events or parser.overflowed:
                abort.set()
                _shutdown(holder.get("response"))
                what = (
                    f"{nbytes} bytes (cap {limits.max_bytes})"
                    if nbytes > limits.max_bytes
                    else f"{parser.events_seen} events (cap {limits.max_events})"
                    if not parser.overflowed
                    else f"one SSE line longer than {parser.max_line} characters"
                )
                exchange.transport_error = TransportError(
                    "cap", f"the response exceeded the size cap: {what}; reading stopped"
                )
                break
        else:
            exchange.transport_error = _describe(item[1], url)
            break
    return exchange
