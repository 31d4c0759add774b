"""`nox -s bench`: every speed figure of issue 15 in one table, each next to its target.

Rows:

* checking: ``run_checks`` (SSE parse, JSON, state machine, schema, all 64 checks; profile strict)
  on synthetic valid streams of ~1k/10k/100k/1M events in 1400-byte chunks, in CPU µs per event,
  next to bare ``json.loads`` over the same ``data:`` payloads, and their ratio;
* memory: the peak Python allocation of ``run_checks`` (tracemalloc) per event, on top of the
  stream bytes, which exist before it starts;
* SSE: one 64 MiB line parsed in 64 KiB and in 1 KiB chunks (linear: the same rate);
* suite: ``responses-conformance run`` against the embedded reference bridge, wall and CPU, with
  ``--concurrency 1`` and 4;
* xdist: ``pytest --conformance`` against the reference bridge, serially and with ``-n 2``;
* codex-relay: the suite through codex-relay 0.5.8 (``--codex-relay PATH`` or on $PATH; the nox
  session installs it), ms of wall per exchange;
* fake upstream: ``benchmarks/bench_upstream.py`` when it exists (it prints its own rows).

Times are CPU time of this process (``time.process_time``), best of ``--repeat``, so a busy
machine slows them less than wall time would; the json.loads column is measured the same way,
interleaved, which keeps the ratio honest. Nothing here asserts: it reports.

    python benchmarks/bench.py [--sizes 1000,10000,100000,1000000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_checks import build_stream  # noqa: E402

from conformance.checks import run_checks  # noqa: E402
from conformance.exchange import Chunk, Exchange  # noqa: E402
from conformance.schema import load_schemas  # noqa: E402
from conformance.sse import SSEParser  # noqa: E402

Row = tuple[str, str, str]
ROWS: list[Row] = []


def row(measure: str, value: str, target: str = "") -> None:
    ROWS.append((measure, value, target))
    print(f"  {measure:<44} {value:<58} {target}", file=sys.stderr, flush=True)


def _exchange(chunks: list[Chunk]) -> Exchange:
    return Exchange(
        "bench", 0, "http://127.0.0.1/v1/responses", {"model": "m", "input": "x"},
        status=200, headers={"content-type": "text/event-stream"}, chunks=chunks,
    )


def _best(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t0)
        del result
    return best


def _stream(size: int) -> tuple[bytes, int, list[Chunk], list[str]]:
    body, n_events = build_stream(max(round((size - 13) / 1.1), 1))
    chunks = [Chunk(0.0, body[i : i + 1400]) for i in range(0, len(body), 1400)]
    payloads = [
        line[6:].decode()
        for line in body.split(b"\n")
        if line.startswith(b"data: ")
    ]
    return body, n_events, chunks, payloads


def _check(chunks: list[Chunk]) -> Any:
    return run_checks(_exchange(chunks), profile="strict")


def _loads_all(loads: Callable[[str], Any], payloads: list[str]) -> None:
    """The floor: parse every payload and drop it (no GC pressure from keeping them)."""
    for p in payloads:
        loads(p)


def checking(sizes: list[int], repeat: int) -> None:
    load_schemas()
    run_checks(_exchange(_stream(300)[2]), profile="strict")  # warm validators and imports
    per_event: list[float] = []
    loads = json.loads
    for size in sizes:
        body, n, chunks, payloads = _stream(size)
        # Short streams get more tries (about 300k events in all), so one preemption cannot decide.
        reps = max(repeat, 300_000 // n) if n <= 200_000 else max(1, repeat - 1)
        findings = [f for o in run_checks(_exchange(chunks), profile="strict").values() for f in o.findings]
        if findings:
            raise SystemExit(f"the synthetic stream has findings: {findings[:3]}")
        check_s = _best(functools.partial(_check, chunks), reps)
        json_s = _best(functools.partial(_loads_all, loads, payloads), reps)
        us, json_us = check_s / n * 1e6, json_s / n * 1e6
        per_event.append(us)
        row(
            f"checking {n:,} events ({len(body) / 1e6:.1f} MB)",
            f"{us:5.2f} µs/ev = {n / check_s / 1e3:4.0f}k ev/s; json.loads {json_us:.2f} µs/ev;"
            f" ratio {us / json_us:.2f}x",
            "≥ 200k ev/s, ratio ≤ 3x",
        )
        del body, chunks, payloads
    if len(per_event) > 1:
        row(
            "checking cost per event, largest / smallest",
            f"{max(per_event) / min(per_event):.2f}x (max/min µs per event over the sizes)",
            "≤ 1.2x",
        )


def memory(size: int) -> None:
    body, n, chunks, _ = _stream(size)
    run_checks(_exchange(chunks), profile="strict")
    gc.collect()
    tracemalloc.start()
    run_checks(_exchange(chunks), profile="strict")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row(
        f"memory, {n:,} events ({len(body) / n:.0f} B/event on the wire)",
        f"{peak / n:,.0f} B/event peak beyond the stream bytes",
        "≤ 1,024 B/event",
    )


def long_line(mib: int) -> None:
    line = b"data: " + b"x" * (mib * 1024 * 1024) + b"\n\n"
    for piece in (65536, 1024):
        try:
            parser = SSEParser(max_line=1 << 40)
        except TypeError:  # a parser without a line cap (before the fix)
            parser = SSEParser()
        view = memoryview(line)
        t0 = time.process_time()
        events = []
        for i in range(0, len(line), piece):
            events += parser.feed(bytes(view[i : i + piece]))
            if piece == 1024 and time.process_time() - t0 > 120:
                row(f"SSE: one {mib} MiB line in {piece // 1024} KiB chunks", "gave up after 120 s", "linear")
                return
        events += parser.close()
        secs = time.process_time() - t0
        assert len(events) == 1 and len(events[0].data) == mib * 1024 * 1024
        row(
            f"SSE: one {mib} MiB line in {piece // 1024} KiB chunks",
            f"{secs:.2f} s ({len(line) / secs / 1e6:,.0f} MB/s)",
            "linear in the length",
        )


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_suite(extra: list[str], label: str, target: str, per_exchange: bool) -> None:
    exe = shutil.which("responses-conformance")
    if exe is None:
        row(label, "skipped: responses-conformance is not installed", target)
        return
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cpu0, t0 = _cpu_children(), time.perf_counter()
        proc = subprocess.run(
            [exe, "run", "--report-json", str(report), *extra],
            capture_output=True, text=True, timeout=900, check=False,
        )
        wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
        if proc.returncode not in (0, 1) or not report.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            row(label, f"failed (exit {proc.returncode}): {tail[0][:80]}", target)
            return
        exchanges = _count_exchanges(json.loads(report.read_text()))
    if per_exchange and exchanges:
        row(label, f"{wall / exchanges * 1e3:.1f} ms wall per exchange ({exchanges} exchanges, "
            f"{wall:.1f} s wall, harness CPU {cpu:.1f} s)", target)
    else:
        row(label, f"{wall:.2f} s wall, {cpu:.2f} s CPU (harness; {exchanges} exchanges)", target)


def _count_exchanges(report: Any) -> int:
    """Exchanges in a JSON report, whatever its exact layout: objects carrying a ``mode``."""
    count = 0
    stack = [report]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("mode") in ("stream", "nonstream") and ("status" in node or "turn" in node):
                count += 1
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def suite() -> None:
    for n in ("1", "4"):
        _run_suite(["--concurrency", n], f"suite vs the reference bridge, --concurrency {n}", "≤ 2 s wall, ≤ 2 s CPU",
                   per_exchange=False)


def pytest_xdist() -> None:
    """``pytest --conformance`` against the reference bridge: one process, then ``-n 2``."""
    target = "-n 2 faster than serial"
    try:
        import xdist  # noqa: F401
    except ImportError:
        row("pytest --conformance", "skipped: pytest-xdist is not installed", target)
        return
    walls = {}
    for label, extra in (("serial", []), ("-n 2", ["-n", "2"])):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--conformance", *extra],
                capture_output=True, text=True, timeout=900, check=False, cwd=tmp,
            )
            walls[label] = time.perf_counter() - t0
        if proc.returncode != 0:
            row(f"pytest --conformance, {label}", f"failed (exit {proc.returncode})", target)
            return
    row("pytest --conformance, serial / -n 2", f"{walls['serial']:.1f} s / {walls['-n 2']:.1f} s wall "
        f"({walls['serial'] / walls['-n 2']:.2f}x)", target)


def codex_relay(path: str | None) -> None:
    exe = path or shutil.which("codex-relay")
    label = "codex-relay 0.5.8, per exchange"
    if exe is None:
        row(label, "skipped: codex-relay not found (nox -s bench installs it)", "≤ 5 ms")
        return
    cmd = f"{exe} --port {{port}} --bind 127.0.0.1 --upstream {{upstream_url}} --api-key sk-x"
    for n in ("1", "4"):
        _run_suite(["--proxy-cmd", cmd, "--target-name", "codex-relay", "--concurrency", n],
                   f"{label}, --concurrency {n}", "≤ 5 ms", per_exchange=True)


def upstream() -> None:
    script = HERE / "bench_upstream.py"
    label = "fake upstream replays/s"
    if not script.exists():
        row(label, "hook: benchmarks/bench_upstream.py not present", "≥ 5,000/s kept-alive")
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "upstream.json"
        proc = subprocess.run([sys.executable, str(script), "--json", str(out)], capture_output=True, text=True,
                              timeout=600, check=False)
        if proc.returncode != 0 or not out.exists():
            row(label, f"bench_upstream.py failed (exit {proc.returncode})", "≥ 5,000/s kept-alive")
            return
        rows = json.loads(out.read_text())
    for name, got in rows.items():
        what, _, unit = name.partition(" (")
        burst = what.startswith("burst")
        value = f"{got['value']:,.0f} {'ok' if burst else unit.rstrip(')')}, {got['errors']} errors"
        if burst:
            value += f" ({unit.rstrip(')')})"
        goal = "0 errors" if burst else ("≥ 5,000/s" if "kept-alive" in what else "")
        row(f"fake upstream: {what}", value, goal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-size", type=int, default=100_000)
    parser.add_argument("--line-mib", type=int, default=64)
    parser.add_argument("--codex-relay", default=None, help="path of the codex-relay binary")
    parser.add_argument("--skip", default="", help="comma-separated: checking,memory,line,suite,xdist,codex,upstream")
    parser.add_argument("--quick", action="store_true", help="sizes 1k,10k,100k; 8 MiB line")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.line_mib = "1000,10000,100000", 8
    skip = set(filter(None, args.skip.split(",")))
    load = os.getloadavg()[0]
    print(f"responses-conformance bench · Python {platform.python_version()} · {os.cpu_count()} CPUs · "
          f"load average {load:.1f} at start · CPU time, best of {args.repeat}"
          f"{' · bytecode caching OFF (PYTHONDONTWRITEBYTECODE)' if sys.dont_write_bytecode else ''}", file=sys.stderr)
    if "checking" not in skip:
        checking([int(s) for s in args.sizes.split(",")], args.repeat)
    if "memory" not in skip:
        memory(args.memory_size)
    if "line" not in skip:
        long_line(args.line_mib)
    if "suite" not in skip:
        suite()
    if "xdist" not in skip:
        pytest_xdist()
    if "codex" not in skip:
        codex_relay(args.codex_relay)
    if "upstream" not in skip:
        upstream()
    width = max(len(r[0]) for r in ROWS)
    vwidth = max(len(r[1]) for r in ROWS)
    print()
    print(f"| {'measure':<{width}} | {'value':<{vwidth}} | target |")
    print(f"|{'-' * (width + 2)}|{'-' * (vwidth + 2)}|--------|")
    for measure, value, target in ROWS:
        print(f"| {measure:<{width}} | {value:<{vwidth}} | {target} |")


if __name__ == "__main__":
    main()
