"""A replay server on 127.0.0.1: answers every request with one captured exchange, byte for byte.

The captured status, headers and body chunks are sent as they were (each chunk one HTTP chunk),
and a capture that ended in a transport error ends the same way (the connection is dropped
without the final chunk). Agent clients that run the tool and call again get a short clean text
stream (:data:`FOLLOW_UP`), so their loops end after one tool round.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["FOLLOW_UP", "Capture", "ReplayServer"]

_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
_STALL_SECONDS = 15.0


def _follow_up_body() -> bytes:
    resp: dict[str, Any] = {
        "id": "resp_f", "object": "response", "created_at": 1, "model": "m", "status": "in_progress",
        "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "usage": None,
    }
    msg: dict[str, Any] = {"type": "message", "id": "msg_f", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": "Done.", "annotations": [], "logprobs": []}]}
    usage = {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
             "output_tokens": 1, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": resp},
        {"type": "response.output_item.added", "output_index": 0,
         "item": dict(msg, status="in_progress", content=[])},
        {"type": "response.content_part.added", "item_id": "msg_f", "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}},
        {"type": "response.output_text.delta", "item_id": "msg_f", "output_index": 0, "content_index": 0,
         "delta": "Done.", "logprobs": []},
        {"type": "response.output_text.done", "item_id": "msg_f", "output_index": 0, "content_index": 0,
         "text": "Done.", "logprobs": []},
        {"type": "response.content_part.done", "item_id": "msg_f", "output_index": 0, "content_index": 0,
         "part": msg["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": msg},
        {"type": "response.completed", "response": dict(resp, status="completed", output=[msg], usage=usage)},
    ]
    return "".join(
        f"event: {e['type']}\ndata: {json.dumps(dict(e, sequence_number=i))}\n\n" for i, e in enumerate(events)
    ).encode()


FOLLOW_UP = _follow_up_body()


@dataclass
class Capture:
    """One captured answer: what the server sends back to every first-turn request."""

    status: int
    headers: dict[str, str]
    chunks: Sequence[bytes]
    cut: str | None = None  # None: ends cleanly; "drop": connection dropped; "stall": stops sending

    @classmethod
    def sse(cls, body: bytes, *, status: int = 200, content_type: str = "text/event-stream") -> Capture:
        return cls(status, {"content-type": content_type}, [body])


@dataclass
class _State:
    capture: Capture
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(min(length, 16 * 1024 * 1024)) if length else b""
        self._answer(body)

    def _answer(self, body: bytes) -> None:
        state = self.server.state
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with state.lock:
            state.requests.append({"path": self.path, "body": parsed})
        if b"function_call_output" in body:
            self._send(Capture.sse(FOLLOW_UP))
        else:
            self._send(state.capture)

    def _send(self, capture: Capture) -> None:
        self.close_connection = True
        self.send_response(capture.status)
        for key, value in capture.headers.items():
            if key.lower() not in _HOP:
                self.send_header(key, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for chunk in capture.chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            if capture.cut == "stall":
                threading.Event().wait(_STALL_SECONDS)
            if capture.cut is None:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            return  # the client went away: nothing to replay to


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class ReplayServer:
    """``with ReplayServer(capture) as server: client(base_url=server.base_url)``."""

    def __init__(self, capture: Capture, *, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.state = _State(capture)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL: clients POST ``{base_url}/responses``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._server.state.lock:
            return list(self._server.state.requests)

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
