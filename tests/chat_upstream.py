"""A small real Chat Completions upstream for recorder tests: streams chat chunks on 127.0.0.1.

Each POST to ``…/chat/completions`` is answered with the chunks of ``script(body)`` (default: a
short text answer with usage), written one HTTP chunk at a time with a pause between them, and
logged with its headers, query and body so a test can see what reached the upstream. The send
time of every chunk is kept (monotonic clock) so a test can prove the recorder did not buffer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


def chat_chunks(text: str = "Hello there, friend.", *, model: str = "tiny-chat", usage: bool = True) -> list[bytes]:
    base = {"id": "chatcmpl-test1", "object": "chat.completion.chunk", "created": 1790000000, "model": model}

    def sse(obj: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps({**base, **obj}).encode() + b"\n\n"

    out = [sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})]
    for word in text.split(" "):
        piece = word if not out[1:] else " " + word
        out.append(sse({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}))
    out.append(sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if usage:
        out.append(sse({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}))
    out.append(b"data: [DONE]\n\n")
    return out


@dataclass
class Seen:
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    sent_at: list[float] = field(default_factory=list)


class ChatUpstream:
    def __init__(self, script: Callable[[Any], list[bytes]] | None = None, pause: float = 0.005) -> None:
        self.script = script or (lambda body: chat_chunks())
        self.pause = pause
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                seen = Seen(parts.path, parts.query, dict(self.headers.items()), body)
                owner.seen.append(seen)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Set-Cookie", "session=sk-canary-setcookie-0000000000000")
                self.end_headers()
                for i, data in enumerate(owner.script(body)):
                    if i and owner.pause:
                        time.sleep(owner.pause)
                    seen.sent_at.append(time.monotonic())
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> ChatUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
