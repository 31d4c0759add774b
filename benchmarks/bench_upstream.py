"""Fake-upstream throughput: replays/s on fresh and kept-alive connections, and a burst of streams.

The fake upstream runs in this process, as it does in a real run; the load comes from a child
process (its own interpreter, so the client does not share the server's GIL) speaking raw
HTTP/1.1 over sockets, so what is measured is the server, not a client library.

    python benchmarks/bench_upstream.py [--seconds 3] [--burst 1000] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import sys
import time
from pathlib import Path
from typing import Any

from conformance.cassette import load_cassettes
from conformance.upstream import FakeUpstream

CASSETTE = "openai-text-include-usage"
END = b"0\r\n\r\n"


def _request(port: int, body: bytes) -> bytes:
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _read_answer(sock: socket.socket, buf: bytearray) -> bool:
    """Read one chunked 200 answer (the replay); True when it ended cleanly."""
    while END not in buf:
        data = sock.recv(65536)
        if not data:
            return False
        buf += data
    ok = buf.startswith(b"HTTP/1.1 200")
    del buf[: buf.index(END) + len(END)]
    return ok


def _kept_alive(port: int, body: bytes, seconds: float, out: Any) -> None:
    request = _request(port, body)
    done = errors = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(10)
        buf = bytearray()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            sock.sendall(request)
            if _read_answer(sock, buf):
                done += 1
            else:
                errors += 1
                break
    out.put((done, errors))


def _fresh(port: int, body: bytes, seconds: float, out: Any) -> None:
    request = _request(port, body)
    done = errors = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(request)
                if _read_answer(sock, bytearray()):
                    done += 1
                else:
                    errors += 1
        except OSError:
            errors += 1
    out.put((done, errors))


async def _one_stream(port: int, request: bytes, timeout: float, gate: asyncio.Event) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        await gate.wait()
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.readuntil(END), timeout)
        return data.startswith(b"HTTP/1.1 200")
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return False
    finally:
        writer.close()


async def _burst_async(port: int, body: bytes, count: int, timeout: float) -> tuple[int, int, float]:
    request = _request(port, body)
    gate = asyncio.Event()
    tasks = [asyncio.ensure_future(_one_stream(port, request, timeout, gate)) for _ in range(count)]
    await asyncio.sleep(0)  # every connect is under way before any request is written
    t0 = time.perf_counter()
    gate.set()
    results = await asyncio.gather(*tasks)
    ok = sum(results)
    return ok, count - ok, time.perf_counter() - t0


def _burst(port: int, body: bytes, count: int, timeout: float, out: Any) -> None:
    out.put(asyncio.run(_burst_async(port, body, count, timeout)))


def _in_child(target: Any, *args: Any) -> Any:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, out))
    proc.start()
    result = out.get(timeout=300)
    proc.join(timeout=30)
    return result


def _parallel(target: Any, n: int, *args: Any) -> tuple[int, int]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return sum(r[0] for r in results), sum(r[1] for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput run")
    parser.add_argument("--burst", type=int, default=1000, help="streams opened at once")
    parser.add_argument("--connections", type=int, default=2, help="client processes for the kept-alive run")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-stream timeout in the burst")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    cassettes, _ = load_cassettes()
    cassette = next(c for c in cassettes if c.id == CASSETTE)
    body = json.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": cassette.turns[0].match_key}]}
    ).encode()
    rows: dict[str, Any] = {}
    with FakeUpstream(cassettes) as upstream:
        port = upstream.port
        done, errors = _in_child(_kept_alive, port, body, args.seconds)
        rows["kept-alive, 1 connection (replays/s)"] = (done / args.seconds, errors)
        done, errors = _parallel(_kept_alive, args.connections, port, body, args.seconds)
        rows[f"kept-alive, {args.connections} connections (replays/s)"] = (done / args.seconds, errors)
        done, errors = _in_child(_fresh, port, body, args.seconds)
        rows["fresh connection per replay (replays/s)"] = (done / args.seconds, errors)
        ok, failed, wall = _in_child(_burst, port, body, args.burst, args.timeout)
        rows[f"burst of {args.burst} simultaneous streams (ok in {wall:.2f} s)"] = (ok, failed)
    width = max(len(k) for k in rows)
    print(f"{'fake upstream':<{width}}  {'value':>10}  errors")
    for name, (value, errs) in rows.items():
        print(f"{name:<{width}}  {value:>10.0f}  {errs}")
    if args.json:
        args.json.write_text(json.dumps({k: {"value": v, "errors": e} for k, (v, e) in rows.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
