"""The driver never hangs and never raises for the proxy's behaviour: every failure is reported."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from conftest import RawServer, Script, sse_head, stall

from conformance.driver import Limits, drive

FAST = Limits(connect_timeout=2, first_byte_timeout=1.0, idle_timeout=0.6, total_timeout=3.0, max_bytes=10_000, max_events=50)


def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ex = drive(f"http://127.0.0.1:{port}/v1/responses", {"input": "x"}, limits=FAST)
    assert ex.transport_error is not None
    assert ex.transport_error.kind == "connect"
    assert f"127.0.0.1:{port}" in ex.transport_error.message
    assert ex.status is None


def test_no_first_byte(raw_server: Callable[[Script], RawServer]) -> None:
    server = raw_server(lambda conn: stall(conn, 10))
    t0 = time.monotonic()
    ex = drive(server.url, {"input": "x"}, limits=FAST)
    assert time.monotonic() - t0 < FAST.first_byte_timeout + 1.0
    assert ex.transport_error is not None and ex.transport_error.kind == "first_byte_timeout"


def test_stall_mid_stream_is_an_idle_timeout(raw_server: Callable[[Script], RawServer]) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(sse_head() + b'data: {"type":"response.created"}\n\n')
        stall(conn, 10)

    ex = drive(raw_server(script).url, {"input": "x"}, limits=FAST)
    assert ex.status == 200
    assert ex.body == b'data: {"type":"response.created"}\n\n'
    assert ex.transport_error is not None and ex.transport_error.kind == "idle_timeout"
    assert "stalled" in ex.transport_error.message


@pytest.mark.slow
def test_slow_trickle_hits_the_total_timeout(raw_server: Callable[[Script], RawServer]) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(sse_head())
        for _ in range(200):
            conn.sendall(b": ping\n\n")
            time.sleep(0.2)

    t0 = time.monotonic()
    ex = drive(raw_server(script).url, {"input": "x"}, limits=FAST)
    assert time.monotonic() - t0 < FAST.total_timeout + 1.0
    assert ex.transport_error is not None and ex.transport_error.kind == "total_timeout"


def test_endless_stream_hits_the_event_cap(raw_server: Callable[[Script], RawServer]) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(sse_head())
        for _ in range(100_000):
            conn.sendall(b'data: {"type":"response.output_text.delta"}\n\n')

    ex = drive(raw_server(script).url, {"input": "x"}, limits=replace(FAST, max_bytes=50_000_000))
    assert ex.transport_error is not None and ex.transport_error.kind == "cap"
    assert "events" in ex.transport_error.message


def test_garbage_bytes_hit_the_byte_cap(raw_server: Callable[[Script], RawServer]) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(sse_head())
        for _ in range(1000):
            conn.sendall(bytes(range(256)) * 4)

    ex = drive(raw_server(script).url, {"input": "x"}, limits=FAST)
    assert ex.transport_error is not None and ex.transport_error.kind == "cap"
    assert "bytes" in ex.transport_error.message


def test_not_http_at_all(raw_server: Callable[[Script], RawServer]) -> None:
    ex = drive(raw_server(lambda conn: conn.sendall(b"\x00\xffgarbage\r\n\r\n")).url, {"input": "x"}, limits=FAST)
    assert ex.transport_error is not None and ex.transport_error.kind == "protocol"


def test_clean_stream_records_chunks_with_times(raw_server: Callable[[Script], RawServer]) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(sse_head() + b"data: 1\n\n")
        time.sleep(0.05)
        conn.sendall(b"data: 2\n\n")

    ex = drive(raw_server(script).url, {"input": "x"}, limits=FAST, headers={"Authorization": "Bearer k"})
    assert ex.transport_error is None
    assert ex.body == b"data: 1\n\ndata: 2\n\n"
    assert ex.chunks[-1].t_ms >= ex.chunks[0].t_ms
    assert ex.header("CONTENT-TYPE") == "text/event-stream"
    assert ex.request_headers["Authorization"] == "Bearer k"
