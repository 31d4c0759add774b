"""The reference bridge as a real HTTP server: stdlib ``http.server`` in, ``httpx`` upstream.

Plain on purpose: HTTP/1.1 with chunked encoding written by hand and a flush after every SSE
event, so that what the harness measures is the translation, not a framework. Every request
either completes or fails cleanly (an OpenAI error envelope before the stream, ``response.failed``
inside it); only the ``X-stall`` fault leaves a client waiting, and only until ``stop()``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..http_server import BodyError, HarnessHandler, HarnessServer
from ._faults import DONE, FAULTS, HOOKS, Frame, Hooks, Raw
from ._machine import Machine, is_terminal, new_id, response_base
from ._sse import SSEReader
from ._translate import RequestError, to_chat

__all__ = ["ReferenceBridge"]

_LOOPBACK = ("127.0.0.1", "localhost")


class ReferenceBridge:
    """A correct Responses -> Chat Completions bridge, optionally with named faults switched on."""

    def __init__(
        self,
        upstream_url: str,
        *,
        faults: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
    ) -> None:
        faults = (faults,) if isinstance(faults, str) else faults
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(
                f"unknown fault(s) {unknown}; valid names: {', '.join(sorted(FAULTS))}"
            )
        if host not in _LOOPBACK:
            raise ValueError(f"the reference bridge binds loopback only, not {host!r}")
        self.upstream_url = upstream_url.rstrip("/")
        self.faults = tuple(faults)
        self.hooks: list[Hooks] = [HOOKS[f] for f in faults]
        self.api_key = api_key
        self.stopping = threading.Event()
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.client = self._client()

    def _client(self) -> httpx.Client:
        # No TLS context for a plain-http upstream (the fake upstream): building one costs ~30 ms.
        verify = self.upstream_url.lower().startswith("https:")
        return httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), verify=verify)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the bridge is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> None:
        if self._server is not None:
            return
        self.stopping.clear()
        if self.client.is_closed:
            self.client = self._client()
        server = _Server((self._host, self._port), _Handler, role="reference bridge")
        server.bridge = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"reference-bridge-{server.server_address[1]}",
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop promptly: wake stalled handlers first, then stop accepting, then close upstream."""
        self.stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self.client.close()

    def __enter__(self) -> ReferenceBridge:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Server(HarnessServer):
    bridge: ReferenceBridge


def _envelope(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _upstream_error(status: int, content: bytes) -> tuple[int, dict[str, Any]]:
    """Map an upstream non-2xx answer to the same class of error, as an OpenAI envelope (S7)."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    err = (
        data.get("error")
        if isinstance(data, dict) and isinstance(data.get("error"), dict)
        else data
    )
    err = err if isinstance(err, dict) else {}
    message = (
        err.get("message")
        if isinstance(err.get("message"), str)
        else content[:500].decode(errors="replace")
    )
    client_error = 400 <= status < 500

    def text(key: str) -> str | None:
        value = err.get(key)
        return value if isinstance(value, str) else None

    kind = text("type") or ("invalid_request_error" if client_error else "server_error")
    body = _envelope(
        f"upstream returned HTTP {status}: {message}", kind, text("param"), text("code")
    )
    return (status if client_error else 502), body


ChunkEdit = Callable[[dict[str, Any]], None]


def _edited(data: str, edits: Sequence[ChunkEdit]) -> str:
    """Apply fault editors to one upstream ``data:`` payload (only JSON objects are edited)."""
    if not edits:
        return data
    try:
        chunk = json.loads(data)
    except ValueError:
        return data
    if not isinstance(chunk, dict):
        return data
    for edit in edits:
        edit(chunk)
    return json.dumps(chunk)


def _pump(
    machine: Machine, response: httpx.Response, edits: Sequence[ChunkEdit] = ()
) -> Iterator[list[dict[str, Any]]]:
    """Feed upstream SSE into the machine; yields event batches, ending with the terminal one."""
    reader = SSEReader()
    try:
        if response.headers.get("content-type", "").startswith("application/json"):
            yield from _whole_completion(machine, response.read(), edits)
            return
        for raw in response.iter_bytes():
            for event in reader.feed(raw):
                if event.error is not None:
                    yield machine.fail(f"upstream error (in an SSE `error:` field): {event.error!r}")
                    return
                done = event.data.strip() == "[DONE]"
                yield machine.end() if done else machine.feed(_edited(event.data, edits))
                if machine.terminal is not None:
                    return
        for event in reader.close():
            if event.error is not None:
                yield machine.fail(f"upstream error (in an SSE `error:` field): {event.error!r}")
                return
            done = event.data.strip() == "[DONE]"
            yield machine.end() if done else machine.feed(_edited(event.data, edits))
    except httpx.HTTPError as exc:
        yield machine.fail(f"upstream connection failed mid-stream: {type(exc).__name__}: {exc}")
        return
    yield machine.end()


def _whole_completion(
    machine: Machine, body: bytes, edits: Sequence[ChunkEdit] = ()
) -> Iterator[list[dict[str, Any]]]:
    """An upstream that ignored ``stream: true``: replay its one chat.completion as one chunk."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    choices = data.get("choices") if isinstance(data, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = {**choices[0], "delta": choices[0].get("message") or {}}
        usage = data.get("usage") if isinstance(data, dict) else None
        chunk = json.dumps({"choices": [choice], "usage": usage})
        yield machine.feed(_edited(chunk, edits))
    else:
        yield machine.feed(body.decode(errors="replace"))
    yield machine.end()


class _Wire:
    """Numbers events and writes them as SSE in hand-made HTTP chunks, applying wire faults."""

    def __init__(self, handler: _Handler, hooks: list[Hooks], stopping: threading.Event) -> None:
        self.handler, self.hooks, self.stopping = handler, hooks, stopping
        self.wire = {h.wire for h in hooks if h.wire}
        self.buffered = (
            any(h.events or h.numbered for h in hooks) or "no-final-blank-line" in self.wire
        )
        self.pending: list[Frame] = []
        self.seq = 0
        self.written = 0
        self.alive = True
        self.terminal_sent = False

    def begin(self) -> None:
        content_type = next(
            (h.content_type for h in self.hooks if h.content_type), "text/event-stream"
        )
        h = self.handler
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.flush()

    def send(self, events: list[dict[str, Any]]) -> bool:
        if self.buffered:
            self.pending.extend(events)
        else:
            for event in events:
                self.terminal_sent |= is_terminal(event)
                self._write(self._frame(self._number(event)))
        return self.alive

    def finish(self) -> None:
        """Write what is buffered, then ``data: [DONE]`` if a terminal event went out, then the end."""
        done = "no-done" not in self.wire
        if self.buffered:
            frames = self.pending
            for hook in self.hooks:
                frames = hook.events(frames) if hook.events else frames
            frames = [self._number(f) if isinstance(f, dict) else f for f in frames]
            for hook in self.hooks:
                frames = hook.numbered(frames) if hook.numbered else frames
            if done and any(is_terminal(f) for f in frames):
                frames = [*frames, DONE]
            for i, frame in enumerate(frames):
                data = self._frame(frame)
                if i == len(frames) - 1 and "no-final-blank-line" in self.wire:
                    data = data[:-1]
                self._write(data)
        elif done and self.terminal_sent:
            self._write(self._frame(DONE))
        if self.alive:
            self._chunk(b"")

    def _number(self, event: dict[str, Any]) -> dict[str, Any]:
        numbered = {"type": event.get("type"), "sequence_number": self.seq}
        numbered.update((k, v) for k, v in event.items() if k != "type")
        self.seq += 1
        return numbered

    @staticmethod
    def _frame(frame: Frame) -> bytes:
        if isinstance(frame, Raw):
            return frame.text.encode()
        data = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
        return f"event: {frame.get('type')}\ndata: {data}\n\n".encode()

    def _chunk(self, data: bytes) -> None:
        wfile = self.handler.wfile
        wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        wfile.flush()

    def _write(self, data: bytes) -> None:
        if not self.alive:
            return
        try:
            self._chunk(data)
        except OSError:
            self._kill()
            return
        self.written += 1
        if self.written == 2 and "stall" in self.wire:
            self.stopping.wait()
            self._kill()
        elif self.written == 2 and "endless" in self.wire:
            self._endless()
        elif self.written == 4 and "cut" in self.wire:
            self._kill()

    def _endless(self) -> None:
        item_id = new_id("msg")
        where = {"item_id": item_id, "output_index": 0}
        item = {
            "type": "message",
            "id": item_id,
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        opening = [
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {"type": "response.content_part.added", **where, "content_index": 0, "part": part},
        ]
        try:
            for event in opening:
                self._chunk(self._frame(self._number(event)))
            while not self.stopping.wait(0.005):
                delta = {
                    "type": "response.output_text.delta",
                    **where,
                    "content_index": 0,
                    "delta": "x",
                    "logprobs": [],
                }
                self._chunk(self._frame(self._number(delta)))
        except OSError:
            pass
        self._kill()

    def _kill(self) -> None:
        """Drop the connection without the terminating chunk: the client sees a cut body."""
        self.alive = False
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)


class _Handler(HarnessHandler):
    server: _Server
    answered = False  # set once a status line is sent, so a late bug cannot send a second one

    def send_response(self, code: int, message: str | None = None) -> None:
        self.answered = True
        super().send_response(code, message)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path in ("/health", "/v1/health"):
            self._json(200, {"status": "ok"})
        elif path in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": []})
        else:
            self._json(
                404,
                _envelope(f"no route for GET {path}", "invalid_request_error", None, "not_found"),
            )

    def do_POST(self) -> None:
        self.answered = False  # one handler serves every request on a kept-alive connection
        path = urlsplit(self.path).path.rstrip("/")
        try:
            body = self.read_body()
        except BodyError as exc:
            self.close_connection = True
            self._json(exc.status, _envelope(exc.message, "invalid_request_error"))
            return
        if path not in ("/v1/responses", "/responses"):
            self._json(
                404,
                _envelope(f"no route for POST {path}", "invalid_request_error", None, "not_found"),
            )
            return
        try:
            request = json.loads(body)
        except ValueError as exc:
            self._json(
                400, _envelope(f"the body is not valid JSON: {exc}", "invalid_request_error")
            )
            return
        try:
            self._respond(request)
        except Exception as exc:  # a bug in the bridge must still end the exchange cleanly
            # ... and is a harness bug, raised in the run (not a finding against the proxy);
            # a socket error is the client hanging up, which is not
            if not isinstance(exc, OSError):
                self.server.store_error(exc)
            if not self.answered:
                self._json(500, _envelope(f"reference bridge bug: {exc}", "server_error"))
            self.close_connection = True

    def _respond(self, request: Any) -> None:
        bridge = self.server.bridge
        try:
            if isinstance(request, dict):
                for hook in bridge.hooks:
                    if hook.responses_request:
                        hook.responses_request(request)
            chat = to_chat(request)
        except RequestError as exc:
            self._json(400, _envelope(exc.message, "invalid_request_error", exc.param, exc.code))
            return
        for hook in bridge.hooks:
            if hook.request:
                hook.request(chat)
        headers = {"Accept": "text/event-stream"}
        auth = f"Bearer {bridge.api_key}" if bridge.api_key else self.headers.get("Authorization")
        if auth:
            headers["Authorization"] = auth
        url = f"{bridge.upstream_url}/chat/completions"
        options: dict[str, Any] = {}
        for hook in bridge.hooks:
            options.update(hook.machine or {})
        edits = [hook.upstream() for hook in bridge.hooks if hook.upstream]
        try:
            with bridge.client.stream("POST", url, json=chat, headers=headers) as upstream:
                machine = Machine(response_base(request, new_id("resp")), **options)
                if not 200 <= upstream.status_code < 300:
                    code, body = _upstream_error(upstream.status_code, upstream.read())
                    if request.get("stream") is True and any(h.upstream_error_as_stream for h in bridge.hooks):
                        wire = _Wire(self, [], bridge.stopping)
                        wire.begin()
                        wire.send(machine.start())
                        wire.send(machine.fail(body["error"]["message"]))
                        wire.finish()
                        return
                    self._json(code, body)
                    return
                status = next((h.status for h in bridge.hooks if h.status), None)
                if status is not None:
                    self._json(
                        status,
                        _envelope(
                            "injected fault: server error", "server_error", None, "server_error"
                        ),
                    )
                    return
                if request.get("stream") is True:
                    self._stream(machine, upstream, bridge, edits)
                else:
                    self._collect(machine, upstream, bridge, edits)
        except httpx.HTTPError as exc:
            message = f"upstream request failed: {type(exc).__name__}: {exc}"
            self._json(502, _envelope(message, "server_error", None, "upstream_error"))

    def _stream(
        self,
        machine: Machine,
        upstream: httpx.Response,
        bridge: ReferenceBridge,
        edits: Sequence[ChunkEdit],
    ) -> None:
        wire = _Wire(self, bridge.hooks, bridge.stopping)
        wire.begin()
        if wire.send(machine.start()):
            for events in _pump(machine, upstream, edits):
                if not wire.send(events):
                    break
        wire.finish()

    def _collect(
        self,
        machine: Machine,
        upstream: httpx.Response,
        bridge: ReferenceBridge,
        edits: Sequence[ChunkEdit],
    ) -> None:
        """A ``stream: false`` answer: the terminal response as one JSON body, or an error."""
        machine.start()
        for _ in _pump(machine, upstream, edits):
            pass
        terminal = machine.terminal
        if terminal is None:
            self._json(502, _envelope("the stream produced no terminal response", "server_error"))
        elif terminal["type"] == "response.failed":
            message = terminal["response"]["error"]["message"]
            self._json(502, _envelope(message, "server_error", None, "upstream_error"))
        else:
            body = terminal["response"]
            for hook in bridge.hooks:
                if hook.body:
                    hook.body(body)
            self._json(200, body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        payload: Any = body
        if status >= 400:
            for hook in self.server.bridge.hooks:
                if hook.error_body:
                    status, payload = hook.error_body(status, payload)
        data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
