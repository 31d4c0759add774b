"""The fake upstream: a real HTTP/1.1 server on 127.0.0.1 that replays cassettes.

The proxy under test points its Chat Completions backend here. Each ``POST .../chat/completions``
is matched to a cassette turn by the text of its last message (every shipped cassette turn has a
unique one), and the recorded chunks are written back one by one, flushed, optionally with the
recorded timing. A request that does not ask for a stream gets the same content as one
``chat.completion`` body (assembled by :mod:`conformance.oracle`). Every request is logged; ``GET /__conformance/log?cassette=ID`` returns the log
entries of one cassette, so several pytest-xdist workers can share one server safely.

A request that matches nothing gets a ``500`` whose JSON body names the closest cassettes and why
each did not match (VCR's best idea); the exchange that caused it reports it.
"""

from __future__ import annotations

import difflib
import json
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from conformance.cassette import Cassette, Interaction, Turn, chat_message_text
from conformance.oracle import chat_completion_body, expect

__all__ = ["FakeUpstream", "UpstreamLogEntry"]

MAX_REQUEST_BYTES = 16 * 1024 * 1024
_CUT_GRACE = 0.2  # seconds between the last chunk and a cassette's connection cut
REDACTED_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"})


@dataclass
class UpstreamLogEntry:
    seq: int
    t: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    cassette_id: str | None = None
    turn: int | None = None
    interaction: int | None = None
    diagnosis: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "t": self.t,
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "cassette_id": self.cassette_id,
            "turn": self.turn,
            "interaction": self.interaction,
            "diagnosis": self.diagnosis,
        }


@dataclass
class _State:
    turns: dict[str, tuple[Cassette, Turn]] = field(default_factory=dict)
    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    log: list[UpstreamLogEntry] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    replay_timing: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)


def _last_message_text(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    return chat_message_text(messages[-1])


def _diagnose(state: _State, body: Any, key: str | None) -> str:
    if not isinstance(body, dict):
        return "the request body is not a JSON object, so no cassette can match it"
    if key is None:
        return "the request has no `messages` array (is this a Chat Completions request?)"
    scored = sorted(
        ((difflib.SequenceMatcher(None, key, k).ratio(), k, cid) for k, (c, _) in state.turns.items() for cid in [c.id]),
        reverse=True,
    )[:3]
    if not scored:
        return "no cassettes are loaded"
    lines = [f"no cassette turn has last message {key[:120]!r}; closest:"]
    for ratio, k, cid in scored:
        lines.append(f"  - {cid}: expected last message {k[:120]!r} (similarity {ratio:.0%})")
    return "\n".join(lines)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # each chunk leaves at once, not after the peer's delayed ACK
    server_version = "responses-conformance-upstream/1"
    state: _State

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/__conformance/health":
            self._json(200, {"ok": True, "cassettes": sorted({c.id for c, _ in self.state.turns.values()})})
        elif url.path == "/__conformance/log":
            cid = parse_qs(url.query).get("cassette", [None])[0]
            since = float(parse_qs(url.query).get("since", ["0"])[0])
            with self.state.lock:
                entries = [
                    e.to_json()
                    for e in self.state.log
                    if e.t >= since and (cid is None or e.cassette_id == cid or (e.cassette_id is None and cid == "__unmatched__"))
                ]
            self._json(200, entries)
        elif url.path.endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "conformance-model", "object": "model", "owned_by": "conformance"}]})
        else:
            self._json(404, {"error": {"message": f"no route {url.path}", "type": "not_found", "param": None, "code": None}})

    def do_POST(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._json(413, {"error": {"message": "request too large", "type": "invalid_request_error", "param": None, "code": None}})
            return
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = raw.decode("utf-8", "replace")
        if url.path == "/__conformance/reset":
            only = parse_qs(url.query).get("cassette", [None])[0]
            with self.state.lock:
                for k in [k for k in self.state.counts if only is None or k[0] == only]:
                    del self.state.counts[k]
            self._json(200, {"ok": True})
            return
        headers = {k: ("[redacted]" if k.lower() in REDACTED_HEADERS else v) for k, v in self.headers.items()}
        entry = UpstreamLogEntry(0, time.time(), "POST", url.path, headers, body)
        if not url.path.endswith("/chat/completions"):
            entry.diagnosis = f"the fake upstream only answers POST .../chat/completions, not {url.path}"
            self._log(entry)
            self._json(404, {"error": {"message": entry.diagnosis, "type": "not_found", "param": None, "code": None}})
            return
        key = _last_message_text(body)
        found = self.state.turns.get(key) if key is not None else None
        if found is None:
            entry.diagnosis = _diagnose(self.state, body, key)
            self._log(entry)
            self._json(
                500,
                {
                    "error": {
                        "message": "responses-conformance fake upstream: no cassette matches this request.\n" + entry.diagnosis,
                        "type": "cassette_not_found",
                        "param": "messages",
                        "code": "cassette_not_found",
                    }
                },
            )
            return
        cassette, turn = found
        with self.state.lock:
            n = self.state.counts.get((cassette.id, turn.index), 0)
            self.state.counts[(cassette.id, turn.index)] = n + 1
        entry.cassette_id, entry.turn, entry.interaction = cassette.id, turn.index, min(n, len(turn.upstream) - 1)
        self._log(entry)
        interaction = turn.upstream[entry.interaction]
        if isinstance(body, dict) and body.get("stream") is not True and interaction.status == 200 and interaction.end == "clean":
            self._whole(interaction)
        else:
            self._replay(interaction)

    def _whole(self, interaction: Interaction) -> None:
        """A non-streaming chat request: the same content as one ``chat.completion`` JSON body."""
        expected = expect(interaction)
        if expected.outcome == "failed":
            message = expected.error_message or "the upstream stream ended before a finish_reason"
            self._json(500, {"error": {"message": message, "type": "server_error", "param": None, "code": None}})
            return
        self._json(200, chat_completion_body(expected))

    def _log(self, entry: UpstreamLogEntry) -> None:
        with self.state.lock:
            entry.seq = len(self.state.log)
            self.state.log.append(entry)

    def _replay(self, interaction: Interaction) -> None:
        self.send_response(interaction.status)
        for k, v in interaction.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        if interaction.end == "cut":
            self.send_header("Connection", "close")
        self.end_headers()
        start = time.monotonic()
        try:
            for t_ms, data in interaction.chunks:
                if self.state.replay_timing:
                    delay = t_ms / 1000 - (time.monotonic() - start)
                    if delay > 0 and self.state.stopping.wait(delay):
                        break
                if data:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
            if interaction.end == "cut":
                # Let the proxy read what was sent before the connection drops, as on a real
                # network: a cut in the same instant as the last chunk makes the proxy's view of
                # the stream (chunks first, or only the failure) a matter of scheduling luck.
                self.state.stopping.wait(_CUT_GRACE)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-replay is normal for a proxy under test; say nothing."""


class FakeUpstream:
    """Replays cassettes over HTTP on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(
        self,
        cassettes: Iterable[Cassette] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        replay_timing: bool = False,
    ) -> None:
        self._state = _State(replay_timing=replay_timing)
        self.add(cassettes)
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = _QuietServer((host, port), handler)
        self._thread: threading.Thread | None = None

    def add(self, cassettes: Iterable[Cassette]) -> None:
        with self._state.lock:
            for cassette in cassettes:
                for turn in cassette.turns:
                    if turn.upstream and turn.match_key:
                        self._state.turns[turn.match_key] = (cassette, turn)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL a proxy uses as its OpenAI-compatible ``api_base``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def log(self, cassette_id: str | None = None) -> list[UpstreamLogEntry]:
        with self._state.lock:
            return [e for e in self._state.log if cassette_id is None or e.cassette_id == cassette_id]

    def start(self) -> FakeUpstream:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
