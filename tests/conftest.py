"""Shared fixtures: a scriptable raw HTTP server on 127.0.0.1 for driver and transport tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

Script = Callable[[socket.socket], None]


class RawServer:
    """Accepts connections on 127.0.0.1 and hands each socket to ``script`` (bytes, stalls, cuts)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1/responses"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(rest) < length:
                rest += conn.recv(65536)
            self.script(conn)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()


def sse_head(content_type: bytes = b"text/event-stream") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nConnection: close\r\n\r\n"


@pytest.fixture
def raw_server() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def make(script: Script) -> RawServer:
        server = RawServer(script)
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


def stall(conn: socket.socket, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)


# pytester's in-process runs restore sys.modules afterwards, so every module first imported inside a
# run is imported (and, being part of a pytest11 plugin's distribution, assertion-rewritten) again
# in the next run. Import once here what a run would: the plugin's lazily loaded machinery and, when
# installed, hypothesis (its plugin imports the package in every terminal summary).
import contextlib as _contextlib  # noqa: E402
import importlib as _importlib  # noqa: E402

for _name in ("conformance._pytest_items", "conformance.reference", "conformance.cli", "conformance.snapshots", "hypothesis"):
    with _contextlib.suppress(ImportError):
        _importlib.import_module(_name)
