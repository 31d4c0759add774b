"""A hostile "proxy": a stdlib TCP server on 127.0.0.1 that answers each request with one misbehaviour.

The behaviour is chosen by the URL: ``POST /b/<name>/v1/responses``. Each behaviour writes raw
bytes to the socket (so it can break HTTP itself, not only the stream), is deterministic for its
name (fuzzed ones use a seeded RNG), and stops when the server stops. ``VALID`` is a correct
Responses stream (the reference bridge's answer) that several behaviours corrupt.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["BEHAVIOURS", "HostileServer", "Request"]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    valid: bytes  # a correct Responses stream to corrupt
    stop: threading.Event = field(default_factory=threading.Event)


Behaviour = Callable[[socket.socket, Request], None]
BEHAVIOURS: dict[str, Behaviour] = {}


def behaviour(name: str) -> Callable[[Behaviour], Behaviour]:
    def register(fn: Behaviour) -> Behaviour:
        BEHAVIOURS[name] = fn
        return fn

    return register


def head(status: int = 200, content_type: str = "text/event-stream", extra: str = "", chunked: bool = False, close: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}"]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    if close:
        lines.append("Connection: close")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def sized(body: bytes, status: int = 200, content_type: str = "text/event-stream", extra: str = "") -> bytes:
    more = f"Content-Length: {len(body)}" + (f"\r\n{extra}" if extra else "")
    return head(status, content_type, more) + body


def wait(req: Request, seconds: float) -> bool:
    """Sleep, or return True at once when the server is stopping."""
    return req.stop.wait(seconds)


def forever(sock: socket.socket, req: Request, piece: bytes, every: float) -> None:
    while not req.stop.is_set():
        sock.sendall(piece)
        if every:
            wait(req, every)


def event(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


_BOMBS: dict[str, bytes] = {}
BOMB_SIZE = 256 << 20  # 256 MiB of zeros, about 260 KB on the wire


_EVENT = b'data: {"type":"response.output_text.delta","delta":"' + b"z" * 400 + b'"}\n\n'


def bomb(kind: str, size: int, unit: bytes = b"\0") -> bytes:
    """``size`` bytes of ``unit`` repeated, compressed (cached): ~1000:1."""
    key = f"{kind}:{size}:{unit[:20]!r}"
    if key not in _BOMBS:
        co = zlib.compressobj(6, zlib.DEFLATED, 31 if kind == "gzip" else 15)
        block = (unit * ((1 << 20) // len(unit) + 1))[: (1 << 20) // len(unit) * len(unit)]
        size = size // len(block) * len(block) or len(block)
        block = block if size >= len(block) else block[:size]
        parts = [co.compress(block) for _ in range(size // len(block))]
        parts.append(co.flush())
        _BOMBS[key] = b"".join(parts)
    return _BOMBS[key]


# -- HTTP-level breakage ----------------------------------------------------------------------
@behaviour("empty_reply")
def _empty(sock: socket.socket, req: Request) -> None:
    sock.close()


@behaviour("reset_at_once")
def _reset_now(sock: socket.socket, req: Request) -> None:
    reset(sock)


@behaviour("not_http")
def _not_http(sock: socket.socket, req: Request) -> None:
    sock.sendall(bytes(random.Random(1).getrandbits(8) for _ in range(4096)))


@behaviour("http09_body")
def _http09(sock: socket.socket, req: Request) -> None:
    sock.sendall(req.valid)


@behaviour("bad_status_line")
def _bad_status(sock: socket.socket, req: Request) -> None:
    sock.sendall(b"HTTP/1.1 99999999999 \x1b[31mOK\r\n\r\n" + req.valid)


@behaviour("bad_chunk_size")
def _bad_chunk(sock: socket.socket, req: Request) -> None:
    sock.sendall(head(chunked=True) + b"zz\r\n" + req.valid[:50] + b"\r\n")


@behaviour("content_length_lies")
def _cl_lies(sock: socket.socket, req: Request) -> None:
    sock.sendall(head(extra=f"Content-Length: {len(req.valid) * 3}") + req.valid)


@behaviour("header_flood")
def _header_flood(sock: socket.socket, req: Request) -> None:
    sock.sendall(head(extra="\r\n".join(f"X-H{i}: {'v' * 60}" for i in range(20_000))) + req.valid)


@behaviour("huge_header_value")
def _huge_header(sock: socket.socket, req: Request) -> None:
    sock.sendall(head(extra="X-Big: " + "a" * (2 << 20)) + req.valid)


@behaviour("slowloris_head")
def _slowloris(sock: socket.socket, req: Request) -> None:
    for b in b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Slow: " + b"a" * 10_000:
        if wait(req, 0.05):
            return
        sock.sendall(bytes([b]))


@behaviour("informational_forever")
def _100_forever(sock: socket.socket, req: Request) -> None:
    forever(sock, req, b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n", 0.05)


@behaviour("redirect_to_self")
def _redirect(sock: socket.socket, req: Request) -> None:
    sock.sendall(sized(b"", 302, "text/plain", f"Location: {req.path}"))


@behaviour("status_500_html")
def _500(sock: socket.socket, req: Request) -> None:
    sock.sendall(sized(b"<html><body><h1>502 Bad Gateway</h1>\x1b[2J</body></html>", 500, "text/html"))


@behaviour("status_200_json_garbage")
def _json_garbage(sock: socket.socket, req: Request) -> None:
    sock.sendall(sized(b'{"id": "resp_1", "output": [1, 2, ', 200, "application/json"))


@behaviour("reset_mid_stream")
def _reset_mid(sock: socket.socket, req: Request) -> None:
    sock.sendall(head() + req.valid[: len(req.valid) // 2])
    wait(req, 0.05)
    reset(sock)


# -- stalls and endless streams --------------------------------------------------------------
@behaviour("stall_before_head")
def _stall0(sock: socket.socket, req: Request) -> None:
    wait(req, 3600)


@behaviour("stall_after_head")
def _stall1(sock: socket.socket, req: Request) -> None:
    sock.sendall(head())
    wait(req, 3600)


@behaviour("stall_mid_event")
def _stall2(sock: socket.socket, req: Request) -> None:
    sock.sendall(head() + req.valid[:300])
    wait(req, 3600)


@behaviour("endless_fast_events")
def _endless_fast(sock: socket.socket, req: Request) -> None:
    ev = event({"type": "response.output_text.delta", "delta": "x" * 50, "item_id": "msg_1", "output_index": 0, "content_index": 0, "sequence_number": 5})
    forever(sock, req, head() + ev * 200, 0)


@behaviour("endless_slow_events")
def _endless_slow(sock: socket.socket, req: Request) -> None:
    sock.sendall(head() + req.valid.split(b"\n\n")[0] + b"\n\n")
    ev = event({"type": "response.output_text.delta", "delta": "tick", "item_id": "msg_1", "output_index": 0, "content_index": 0, "sequence_number": 9})
    forever(sock, req, ev, 0.2)


@behaviour("endless_keepalive_comments")
def _endless_comments(sock: socket.socket, req: Request) -> None:
    sock.sendall(head())
    forever(sock, req, b": keep-alive\n\n", 0.1)


@behaviour("endless_one_event_lines")
def _endless_lines(sock: socket.socket, req: Request) -> None:
    sock.sendall(head())
    forever(sock, req, b"data: x\n" * 4096, 0)


@behaviour("many_tiny_events")
def _tiny(sock: socket.socket, req: Request) -> None:
    sock.sendall(head() + b"data: {}\n\n" * 300_000)


# -- size -------------------------------------------------------------------------------------
@behaviour("line_10mb_fast")
def _line_fast(sock: socket.socket, req: Request) -> None:
    sock.sendall(head() + b'data: {"type":"response.output_text.delta","delta":"' + b"A" * (10 << 20) + b'"}\n\n')


@behaviour("line_10mb_trickle_1k")
def _line_trickle(sock: socket.socket, req: Request) -> None:
    sock.sendall(head() + b'data: {"delta":"')
    piece = b"B" * 1024
    for _ in range(10 * 1024):
        if req.stop.is_set():
            return
        sock.sendall(piece)
        time.sleep(0.004)  # ~250 KB/s: slower than any cap in the suite is reached within its timeout


@behaviour("gzip_bomb")
def _gzip_bomb(sock: socket.socket, req: Request) -> None:
    body = bomb("gzip", BOMB_SIZE)
    sock.sendall(sized(body, extra="Content-Encoding: gzip"))


@behaviour("deflate_bomb")
def _deflate_bomb(sock: socket.socket, req: Request) -> None:
    body = bomb("deflate", BOMB_SIZE)
    sock.sendall(sized(body, extra="Content-Encoding: deflate"))


@behaviour("gzip_bomb_of_events")
def _gzip_events(sock: socket.socket, req: Request) -> None:
    sock.sendall(sized(bomb("gzip", 64 << 20, _EVENT), extra="Content-Encoding: gzip"))


@behaviour("gzip_of_garbage")
def _bad_gzip(sock: socket.socket, req: Request) -> None:
    sock.sendall(sized(b"\x1f\x8b\x08\x00garbage-not-deflate" + req.valid, extra="Content-Encoding: gzip"))


@behaviour("unknown_encoding")
def _unknown_enc(sock: socket.socket, req: Request) -> None:
    sock.sendall(sized(gzip.compress(req.valid), extra="Content-Encoding: x-hostile, br"))


# -- content ----------------------------------------------------------------------------------
@behaviour("binary_garbage")
def _garbage(sock: socket.socket, req: Request) -> None:
    rng = random.Random(7)
    sock.sendall(sized(bytes(rng.getrandbits(8) for _ in range(64 * 1024))))


@behaviour("deep_nesting_100k")
def _deep(sock: socket.socket, req: Request) -> None:
    n = 100_000
    sock.sendall(sized(b'data: {"type":"response.created","response":' + b"[" * n + b"]" * n + b"}\n\n" + req.valid))


@behaviour("deep_nesting_json_body")
def _deep_body(sock: socket.socket, req: Request) -> None:
    n = 100_000
    sock.sendall(sized(b'{"output":' + b"[" * n + b"]" * n + b"}", 200, "application/json"))


@behaviour("deep_objects_in_terminal")
def _deep_objects(sock: socket.socket, req: Request) -> None:
    n = 5_000
    deep = b'{"a":' * n + b"1" + b"}" * n
    sock.sendall(sized(req.valid.replace(b'"metadata":{}', b'"metadata":' + deep, 1) + event({"type": "x", "v": 1})))


@behaviour("ansi_and_osc_escapes")
def _ansi(sock: socket.socket, req: Request) -> None:
    nasty = "\x1b[2J\x1b[31mRED\x1b[0m \x1b]0;pwned-title\x07 \x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\ \x9b31m \u202eevil"
    body = req.valid.replace(b'"delta":"', b'"delta":"' + json.dumps(nasty)[1:-1].encode(), 1)
    sock.sendall(sized(body + b"event: \x1b[5mblink\ndata: \x1b]52;c;Y2xpcGJvYXJk\x07\n\n"))


@behaviour("rich_markup_text")
def _markup(sock: socket.socket, req: Request) -> None:
    err = {"type": "error", "code": "[bold red]x[/]", "message": "[link=http://evil]click[/link] [blink]", "sequence_number": 1}
    sock.sendall(sized(event(err) + b"data: [red]not json[/red]\n\n"))


@behaviour("lone_surrogate_escaped")
def _surrogate_json(sock: socket.socket, req: Request) -> None:
    body = req.valid.replace(b'"delta":"', b'"delta":"\\ud800\\udfff\\udc00', 1)
    sock.sendall(sized(body))


@behaviour("lone_surrogate_raw_bytes")
def _surrogate_raw(sock: socket.socket, req: Request) -> None:
    body = req.valid.replace(b'"delta":"', b'"delta":"\xed\xa0\x80', 1)
    sock.sendall(sized(body))


@behaviour("nan_and_infinity")
def _nan(sock: socket.socket, req: Request) -> None:
    body = req.valid.replace(b'"sequence_number":1', b'"sequence_number":NaN', 1)
    body = body.replace(b'"output_index":0', b'"output_index":Infinity', 1)
    sock.sendall(sized(body + b'data: {"type":"response.output_text.delta","sequence_number":-Infinity}\n\n'))


@behaviour("huge_numbers")
def _huge_numbers(sock: socket.socket, req: Request) -> None:
    body = req.valid.replace(b'"sequence_number":2', b'"sequence_number":' + b"9" * 5000, 1)
    body = body.replace(b'"output_index":0', b'"output_index":1e400', 1)
    sock.sendall(sized(body))


@behaviour("invalid_utf8")
def _bad_utf8(sock: socket.socket, req: Request) -> None:
    sock.sendall(sized(req.valid.replace(b'"delta":"', b'"delta":"\xff\xfe\xc3(\xe2\x82', 1)))


@behaviour("utf16_body")
def _utf16(sock: socket.socket, req: Request) -> None:
    sock.sendall(sized(req.valid.decode("utf-8").encode("utf-16")))


@behaviour("nul_bytes")
def _nul(sock: socket.socket, req: Request) -> None:
    sock.sendall(sized(req.valid.replace(b"\n\n", b"\x00\n\n")))


@behaviour("line_ending_chaos")
def _crlf(sock: socket.socket, req: Request) -> None:
    rng = random.Random(3)
    out = bytearray()
    for b in req.valid:
        if b == 10:
            out += rng.choice([b"\r", b"\r\n", b"\n", b"\n\r"])
        else:
            out.append(b)
    sock.sendall(sized(bytes(out)))


@behaviour("no_blank_lines")
def _no_blank(sock: socket.socket, req: Request) -> None:
    sock.sendall(sized(req.valid.replace(b"\n\n", b"\n")))


@behaviour("type_confusion")
def _types(sock: socket.socket, req: Request) -> None:
    evs = [
        {"type": 5, "sequence_number": "1"},
        {"type": "response.created", "response": [], "sequence_number": 0},
        {"type": "response.output_item.added", "item": "x", "output_index": "0", "sequence_number": 1.5},
        {"type": "response.output_text.delta", "delta": {"a": 1}, "item_id": 7, "output_index": None, "content_index": [], "sequence_number": 2},
        {"type": "response.output_item.done", "item": {"type": "message", "content": "x", "id": None}, "output_index": -1, "sequence_number": True},
        {"type": "response.completed", "response": {"output": "x", "usage": [], "status": 3, "id": {}}, "sequence_number": 4},
        {"type": "response.completed", "response": {"output": [None, 1, "a", {"type": None}], "usage": {"input_tokens": "x"}}},
        [1, 2, 3],
        "a string",
        None,
    ]
    sock.sendall(sized(b"".join(event(e) for e in evs)))


@behaviour("duplicate_and_shuffled")
def _shuffle(sock: socket.socket, req: Request) -> None:
    evs = [e for e in req.valid.split(b"\n\n") if e]
    rng = random.Random(11)
    evs = evs + evs[:3]
    rng.shuffle(evs)
    sock.sendall(sized(b"\n\n".join(evs) + b"\n\n"))


@behaviour("echo_credentials")
def _echo(sock: socket.socket, req: Request) -> None:
    auth = req.headers.get("authorization", "")
    err = {"type": "error", "code": "auth", "message": f"bad key {auth} for {req.path}", "sequence_number": 0}
    sock.sendall(sized(event(err) + req.valid.replace(b'"delta":"', f'"delta":"{auth} '.encode(), 1), extra=f"X-Echo: {auth}"))


def _fuzzed(seed: int) -> Behaviour:
    def run(sock: socket.socket, req: Request) -> None:
        rng = random.Random(seed)
        data = bytearray(req.valid)
        for _ in range(rng.randint(5, 60)):
            op = rng.random()
            i = rng.randrange(len(data))
            if op < 0.4:
                data[i] = rng.getrandbits(8)
            elif op < 0.6:
                del data[i : i + rng.randint(1, 40)]
            elif op < 0.8:
                j = rng.randrange(len(data))
                data[i:i] = data[j : j + rng.randint(1, 80)]
            else:
                data[i:i] = rng.choice([b"\n\n", b"\r", b"{", b"[", b'"', b"\\", b"data: ", b"\x1b[", b"\xed\xa0\x80", b"NaN"])
        sock.sendall(sized(bytes(data)))

    return run


for _seed in range(1, 7):
    BEHAVIOURS[f"fuzzed_stream_{_seed}"] = _fuzzed(_seed)


def _baseline(sock: socket.socket, req: Request) -> None:
    """Not hostile: the correct stream, to measure what a normal exchange costs right now."""
    sock.sendall(sized(req.valid))


class HostileServer:
    """Serves BEHAVIOURS on 127.0.0.1; ``valid`` is the correct stream behaviours corrupt."""

    def __init__(self, valid: bytes, names: tuple[str, ...] = ()) -> None:
        self.valid = valid
        for name in names:  # built before any request, so a slow build is not a stall
            if name.endswith("_bomb"):
                bomb(name.split("_")[0], BOMB_SIZE)
            elif name == "gzip_bomb_of_events":
                bomb("gzip", 64 << 20, _EVENT)
        self.stop_event = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/b/{name}/v1"

    def _serve(self) -> None:
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> Request | None:
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return None
            data += more
        head_raw, _, body = data.partition(b"\r\n\r\n")
        lines = head_raw.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        length = int(headers.get("content-length", "0") or 0)
        while len(body) < length:
            more = conn.recv(65536)
            if not more:
                break
            body += more
        return Request(path, headers, body, self.valid, self.stop_event)

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            req = self._read_request(conn)
            if req is None:
                return
            name = req.path.split("/")[2] if req.path.startswith("/b/") else ""
            fn = BEHAVIOURS.get(name) or (_baseline if name == "baseline" else None)
            if fn is None:
                conn.sendall(sized(b"unknown behaviour", 404, "text/plain"))
            else:
                conn.settimeout(30)
                fn(conn, req)
        with contextlib.suppress(OSError):
            conn.close()

    def close(self) -> None:
        self.stop_event.set()
        self.sock.close()
        self.thread.join(timeout=2)
