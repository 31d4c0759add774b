"""What every HTTP server the harness runs shares: fast sockets, request bodies, stored errors.

The fake upstream, the reference bridge and the recorder are ``http.server`` servers on
127.0.0.1. They share three things here so that none of them can get one wrong on its own:

* **Speed.** ``TCP_NODELAY`` on every accepted socket and a buffered writer that sends a
  response's headers and body in one write (each streamed chunk is still flushed on its own):
  with Nagle's algorithm on and headers and body written apart, every request on a kept-alive
  connection waited for the client's delayed ACK (~40 ms). A listen backlog of 1024, not
  ``socketserver``'s 5, so a burst of connections is queued instead of refused.
* **Request bodies.** :meth:`HarnessHandler.read_body` reads ``Content-Length`` and
  ``Transfer-Encoding: chunked`` bodies, undoes ``Content-Encoding: gzip``/``deflate`` and
  answers ``Expect: 100-continue`` before the body is sent, with a size cap throughout.
* **Errors.** An exception in a server thread is a bug of the harness, not of the proxy under
  test. It is stored (its traceback appended to a log file) and :func:`raise_server_errors`
  raises it in the run as :class:`ServerThreadError`, the way pytest-httpserver does; a client
  that hangs up (any ``OSError`` on the socket) is normal and not stored.
"""

from __future__ import annotations

import email.parser
import os
import re
import sys
import tempfile
import threading
import time
import traceback
import weakref
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_BODY_BYTES",
    "BodyError",
    "HarnessHandler",
    "HarnessServer",
    "ServerThreadError",
    "StoredError",
    "error_log_path",
    "pending_errors",
    "plain_traceback",
    "raise_server_errors",
]

MAX_BODY_BYTES = 16 * 1024 * 1024
_MAX_LINE = 64 * 1024  # a chunk-size or trailer line longer than this is not HTTP
_LISTEN_BACKLOG = 1024
_WRITE_BUFFER = 64 * 1024
ENV_ERROR_LOG = "RESPONSES_CONFORMANCE_SERVER_ERROR_LOG"

_SERVERS: weakref.WeakSet[HarnessServer] = weakref.WeakSet()
_LOG_LOCK = threading.Lock()


class BodyError(ValueError):
    """A request body the server cannot read; ``status`` is the HTTP answer to give."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ServerThreadError(RuntimeError):
    """A harness server thread raised: a harness bug, never a finding against the proxy."""


@dataclass(frozen=True)
class StoredError:
    """One exception of a server thread: where, what, and the log file with its traceback."""

    server: str
    summary: str
    log: str

    def line(self) -> str:
        return f"the {self.server} thread raised {self.summary} (traceback in {self.log})"


def error_log_path() -> Path:
    """Where server tracebacks go: ``$RESPONSES_CONFORMANCE_SERVER_ERROR_LOG`` or a temp file."""
    configured = os.environ.get(ENV_ERROR_LOG)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"responses-conformance-server-errors-{os.getpid()}.log"


class HarnessServer(ThreadingHTTPServer):
    """A threading HTTP server with a real backlog that stores its threads' exceptions."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = _LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, role: str) -> None:
        self.role = role
        self.errors: list[StoredError] = []
        self._errors_lock = threading.Lock()
        super().__init__(address, handler)
        _SERVERS.add(self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Called with the exception of a request thread being handled (socketserver's hook)."""
        exc = sys.exc_info()[1]
        if exc is None or isinstance(exc, OSError):
            return  # the client hung up or the socket closed under us: normal for a proxy under test
        self.store_error(exc)

    def store_error(self, exc: BaseException) -> StoredError:
        """Keep ``exc`` for :func:`raise_server_errors`; its traceback goes to the log file."""
        path = error_log_path()
        text = plain_traceback(exc)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        try:
            with _LOG_LOCK, open(path, "a", encoding="utf-8") as log:
                log.write(f"--- {stamp} {self.role} (port {self.server_address[1]})\n{text}\n")
            where = str(path)
        except OSError as err:
            where = f"<not written: {err.strerror or err}>"
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        stored = StoredError(self.role, summary, where)
        with self._errors_lock:
            self.errors.append(stored)
        return stored

    def take_errors(self) -> list[StoredError]:
        with self._errors_lock:
            taken, self.errors = self.errors, []
        return taken


def pending_errors() -> list[StoredError]:
    """Every stored, not yet raised error of every harness server in this process (taken)."""
    taken: list[StoredError] = []
    for server in list(_SERVERS):
        taken.extend(server.take_errors())
    return taken


def raise_server_errors(errors: list[StoredError] | None = None) -> None:
    """Raise :class:`ServerThreadError` for ``errors`` (default: :func:`pending_errors`)."""
    found = pending_errors() if errors is None else errors
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ServerThreadError(f"harness bug: {found[0].line()}{more}")


def plain_traceback(exc: BaseException) -> str:
    """``traceback.format_exception`` without the ``^^^^`` lines under each frame.

    Python 3.11 places those with ``ast.parse``, whose constructor state is shared between
    threads: when a harness thread formats a traceback while another thread parses (pytest's main
    thread does, to show a failure), one of them fails with ``SystemError: AST constructor
    recursion depth mismatch`` (CPython gh-106905; seen here as pytest's exit 3 under xdist). Every
    traceback a harness thread writes goes through this.
    """
    formatted = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    pending = [formatted]
    while pending:
        current = pending.pop()
        for frame in current.stack:
            frame.colno = frame.end_colno = None  # no columns: no caret line, no ast.parse
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += list(getattr(current, "exceptions", None) or [])
    return "".join(formatted.format())


class HarnessHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler base: no Nagle, one write per response, bodies read by :meth:`read_body`.

    ``wfile`` is buffered: whatever a handler writes goes out at its next ``flush()`` or when the
    request ends, so headers and a body leave in one segment. A streaming handler flushes each
    chunk (and its headers, before a wait) itself.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    raw_requestline: bytes  # set by handle_one_request before parse_request
    wbufsize = _WRITE_BUFFER

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the harness records exchanges itself."""

    def parse_request(self) -> bool:
        """The request line and headers, as ``BaseHTTPRequestHandler.parse_request`` reads them.

        The standard library parses headers with ``email.feedparser``: about 40% of a replay's CPU
        on a kept-alive connection. A well-formed ``METHOD PATH HTTP/1.x`` request whose header
        lines are all plain ``Name: value`` is read here line by line (same limits, same errors,
        the same ``HTTPMessage`` values); any other request line goes to the standard library
        whole, and header lines it would read differently (folded lines, odd names) go to
        ``email``'s parser, exactly as ``http.client.parse_headers`` does.
        """
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0") or words[1].startswith("//"):
            return super().parse_request()
        self.requestline = requestline
        self.command, self.path, self.request_version = words
        self.close_connection = words[2] != "HTTP/1.1"
        lines: list[bytes] = []
        rfile = self.rfile
        while True:
            line = rfile.readline(_HEADER_LINE + 1)
            if len(line) > _HEADER_LINE:
                self.send_error(431, "Line too long", "header line")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            lines.append(line)
            if len(lines) > _MAX_HEADERS:
                self.send_error(431, "Too many headers", f"got more than {_MAX_HEADERS} headers")
                return False
        self.headers = _headers(self.MessageClass, lines)
        conntype = self.headers.get("Connection", "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive":
            self.close_connection = False
        if self.headers.get("Expect", "").lower() == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, formatted once a second (``email.utils.formatdate`` per response
        was a tenth of a kept-alive replay's CPU)."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())
        second, text = _DATE[0]  # one tuple, swapped whole: threads never see half an update
        if second != now:
            text = super().date_time_string(now)
            _DATE[0] = (now, text)
        return text

    def handle_expect_100(self) -> bool:
        """Answer ``Expect: 100-continue`` at once: the client holds the body until it arrives."""
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def read_body(self, limit: int = MAX_BODY_BYTES) -> bytes:
        """The request body, de-chunked and decoded; :class:`BodyError` when it cannot be read."""
        encoding = self.headers.get("Transfer-Encoding", "")
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        if codings:
            if codings[-1] != "chunked":
                raise BodyError(501, f"unsupported Transfer-Encoding {encoding!r}")
            raw = decode_content(read_chunked(self.rfile, limit), ", ".join(codings[:-1]), limit)
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise BodyError(400, "Content-Length is not a number") from None
            if length < 0:
                raise BodyError(400, "Content-Length is negative")
            if length > limit:
                raise BodyError(413, f"request body of {length} bytes exceeds the {limit}-byte cap")
            raw = self.rfile.read(length) if length else b""
            if len(raw) < length:
                raise BodyError(400, f"the body ended after {len(raw)} of {length} bytes")
        return decode_content(raw, self.headers.get("Content-Encoding", ""), limit)


_DATE: list[tuple[int, str]] = [(0, "")]  # (second, its Date header), shared by every server thread
_HEADER_LINE = 65536  # http.client's _MAXLINE
_MAX_HEADERS = 100  # http.client's _MAXHEADERS
_PLAIN_HEADER = re.compile(r"[!-9;-~]+:[^\r\n]*\r?\n")


def _headers(message_class: Any, lines: list[bytes]) -> Any:
    """An ``HTTPMessage`` of raw header lines: plain ``Name: value`` lines stored as
    ``email.feedparser`` stores them (value without leading blanks or the line end); anything else
    through ``email``'s parser, as ``http.client.parse_headers`` does."""
    texts = [line.decode("iso-8859-1") for line in lines]
    if not all(_PLAIN_HEADER.fullmatch(t) for t in texts):
        return email.parser.Parser(_class=message_class).parsestr("".join(texts) + "\r\n")
    message = message_class()
    for text in texts:
        name, _, value = text.partition(":")
        message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    return message


def read_chunked(rfile: Any, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read a ``Transfer-Encoding: chunked`` body (extensions and trailers are skipped)."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if not line.endswith(b"\n"):
            raise BodyError(400, "the chunked body ended inside a chunk-size line")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BodyError(400, f"bad chunk-size line {line[:40]!r}") from None
        if size < 0:
            raise BodyError(400, f"bad chunk-size line {line[:40]!r}")
        if size == 0:
            break
        total += size
        if total > limit:
            raise BodyError(413, f"chunked request body exceeds the {limit}-byte cap")
        data = rfile.read(size)
        if len(data) < size or rfile.readline(_MAX_LINE + 1).strip():
            raise BodyError(400, "a chunk of the chunked body is cut or not followed by CRLF")
        parts.append(data)
    while True:  # trailer fields, up to the blank line
        line = rfile.readline(_MAX_LINE + 1)
        if not line.strip():
            return b"".join(parts)


def decode_content(raw: bytes, encoding: str, limit: int = MAX_BODY_BYTES) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, identity; applied last to first), capped."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            raw = _inflate(raw, zlib.MAX_WBITS | 16, coding, limit)
        elif coding == "deflate":
            try:
                raw = _inflate(raw, zlib.MAX_WBITS, coding, limit)
            except BodyError:
                raw = _inflate(raw, -zlib.MAX_WBITS, coding, limit)  # raw deflate, as some clients send
        else:
            raise BodyError(415, f"unsupported Content-Encoding {coding!r}")
    return raw


def _inflate(data: bytes, wbits: int, coding: str, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, f"the {coding} request body does not decode: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyError(413, f"the {coding} request body decodes to more than {limit} bytes")
    if not inflater.eof:
        raise BodyError(400, f"the {coding} request body is truncated")
    return out
