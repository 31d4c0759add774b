"""Run the harness CLI against hostile behaviours, in a process of its own, and write what happened.

``python tests/hostile/worker.py OUT.json CAPS NAME...`` (CAPS: ``small`` or ``default``): for each
behaviour, ``responses-conformance run`` (in-process, its real code path: driver, checks, the
terminal, JSON and HTML reports) against the hostile server, with a canary API key. Records the exit
code, wall time, the process's peak RSS after it, the terminal text and the failing check ids.
Peak memory comes from ``resource``/``VmHWM`` (see :func:`peak_mb`), which is why this is a separate process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: no package lookup
from server import HostileServer

ROOT = Path(__file__).resolve().parents[2]
CASSETTE = ROOT / "cassettes" / "text" / "openai-refusal.json"
CANARY = "sk-canaryHOSTILE0123456789abcdef"
SMALL_CAPS = [
    "--connect-timeout", "1", "--first-byte-timeout", "1", "--idle-timeout", "1", "--total-timeout", "2",
    "--max-bytes", str(1 << 20), "--max-events", "5000",
]


def peak_mb() -> float:
    """This process's peak resident memory in MB.

    ``resource``'s ``ru_maxrss`` survives ``execve``: a worker started by a large pytest process
    reports the parent's size at spawn time. Linux's ``VmHWM`` is the peak of this process's own
    address space, so it is used where it exists, ``ru_maxrss`` elsewhere.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def valid_stream() -> bytes:
    """The reference bridge's (correct) answer to the cassette: what the behaviours corrupt."""
    from conformance.harness import Harness, Settings

    with Harness(Settings(cassette_dirs=[str(CASSETTE)], stream_only=True)) as h:
        result = h.run(h.cassettes[0])
    return result.exchanges[0].body


def strict_json(path: Path) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(path.read_bytes().decode("utf-8"), parse_constant=refuse)


def run_one(server: HostileServer, name: str, caps: list[str], out_dir: Path) -> dict[str, Any]:
    from conformance.cli import main

    report, html = out_dir / f"{name}.json", out_dir / f"{name}.html"
    argv = [
        "run", "--proxy-url", server.url(name), "--cassettes", str(CASSETTE), "--stream-only",
        "--no-setup-probe",  # the hostile server answers without an upstream: judge its streams
        "--api-key", CANARY, "--report-json", str(report), "--report-html", str(html), *caps,
    ]
    buf = io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            rc = main(argv)
        except BaseException as exc:  # recorded, the test fails on it
            rc = -1
            buf.write(f"\nescaped: {type(exc).__name__}: {exc}")
    elapsed = time.monotonic() - t0
    failing: list[str] = []
    report_ok = ""
    try:
        data = strict_json(report)
        for c in data["cassettes"]:
            for chk in c["checks"]:
                if any(f["severity"] == "error" for f in chk["findings"]):
                    failing.append(chk["id"])
    except Exception as exc:
        report_ok = f"{type(exc).__name__}: {exc}"
    return {
        "name": name,
        "rc": rc,
        "seconds": round(elapsed, 3),
        "peak_mb": round(peak_mb(), 1),
        "output": buf.getvalue()[-20_000:],
        "output_len": len(buf.getvalue()),
        "failing": sorted(set(failing)),
        "report_error": report_ok,
        "html": html.exists(),
    }


def main(argv: list[str]) -> int:
    out, caps_name, *names = argv
    caps = {"small": SMALL_CAPS, "default": ["--total-timeout", "20"], "trickle": ["--total-timeout", "5"]}[caps_name]
    out_dir = Path(out).parent
    server = HostileServer(valid_stream(), tuple(names))
    results = []
    try:
        for name in names:
            results.append(run_one(server, name, caps, out_dir))
    finally:
        server.close()
    Path(out).write_text(json.dumps({"results": results, "peak_mb": peak_mb(), "pid": os.getpid()}), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
