"""The harness against a hostile proxy: every behaviour ends in time, with a clear finding, bounded.

Each behaviour of :mod:`tests.hostile.server` runs through ``responses-conformance run`` (driver,
checks, terminal, JSON and HTML reports) in worker processes with small caps. Two workers run the
whole set at once, so each result is also checked for being reproducible. Peak memory is read with
``resource`` in the worker. Then the two large cases run with the default caps: a gzip bomb and a
10 MB line trickled in 1 KiB writes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.server import BEHAVIOURS
from tests.hostile.worker import CANARY

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 2.0  # --total-timeout of the small caps
SLACK = 2.0

# The finding that names each behaviour (among others it may cause). A behaviour whose effect
# depends on the bytes (fuzzed streams) names the sse/lifecycle/items/seq/schema group instead.
EXPECT: dict[str, str] = {
    "empty_reply": "transport.clean_close",
    "reset_at_once": "transport.clean_close",
    "not_http": "transport.clean_close",
    "http09_body": "transport.clean_close",
    "bad_status_line": "transport.clean_close",
    "bad_chunk_size": "transport.clean_close",
    "content_length_lies": "transport.clean_close",
    "header_flood": "transport.clean_close",
    "huge_header_value": "transport.clean_close",
    "slowloris_head": "transport.timeout",
    "informational_forever": "transport.timeout",
    "redirect_to_self": "http.status_ok",
    "status_500_html": "http.status_ok",
    "status_200_json_garbage": "lifecycle.created_first",  # http.content_type is a note: every client parses it
    "reset_mid_stream": "transport.clean_close",
    "stall_before_head": "transport.timeout",
    "stall_after_head": "transport.timeout",
    "stall_mid_event": "transport.timeout",
    "endless_fast_events": "transport.cap",
    "endless_slow_events": "transport.timeout",
    "endless_keepalive_comments": "transport.timeout",
    "endless_one_event_lines": "transport.cap",
    "many_tiny_events": "transport.cap",
    "line_10mb_fast": "transport.cap",
    "line_10mb_trickle_1k": "transport.timeout",
    "gzip_bomb": "transport.cap",
    "deflate_bomb": "transport.cap",
    "gzip_bomb_of_events": "transport.cap",
    "gzip_of_garbage": "transport.clean_close",
    "unknown_encoding": "sse.framing",
    "binary_garbage": "sse.framing",
    "deep_nesting_100k": "transport.cap",
    "deep_nesting_json_body": "transport.cap",
    "deep_objects_in_terminal": "transport.cap",
    "ansi_and_osc_escapes": "sse.data_json",
    "rich_markup_text": "sse.data_json",
    "lone_surrogate_escaped": "integrity.text_concat",
    "lone_surrogate_raw_bytes": "sse.framing",
    "nan_and_infinity": "schema.event",
    "huge_numbers": "sse.data_json",
    "invalid_utf8": "sse.framing",
    "utf16_body": "sse.framing",
    "nul_bytes": "sse.data_json",
    "line_ending_chaos": "sse.framing",
    "no_blank_lines": "sse.framing",
    "type_confusion": "schema.event",  # lifecycle.initial_status is a note since the client lab
    "duplicate_and_shuffled": "lifecycle.created_first",
    "echo_credentials": "lifecycle.created_first",
}
for _name in BEHAVIOURS:
    if _name.startswith("fuzzed_stream_"):
        EXPECT[_name] = "lifecycle.created_first"
# The exact set of failing checks depends on how many bytes arrived before the clock ran out.
TIMING = {"endless_fast_events", "endless_slow_events", "line_10mb_trickle_1k", "endless_one_event_lines"}
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _worker(out: Path, caps: str, names: list[str], tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT), "COLUMNS": "1000"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "hostile" / "worker.py"), str(out), caps, *names],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _finish(proc: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    output, _ = proc.communicate(timeout=170)
    assert proc.returncode == 0, output.decode("utf-8", "replace")[-3000:]
    data: dict[str, Any] = json.loads(out.read_text("utf-8"))
    return data


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], Path]:
    base = tmp_path_factory.mktemp("hostile")
    names = sorted(BEHAVIOURS)
    half = len(names) // 2
    # "baseline" (a correct stream) measures what a normal exchange costs on this machine now.
    names = ["baseline", *names[:half], "baseline", *names[half:], "baseline"]
    dirs = [base / "a", base / "b"]
    procs = []
    for d in dirs:
        (d / "tmp").mkdir(parents=True)
        procs.append(_worker(d / "out.json", "small", names, d / "tmp"))
    a, b = (_finish(p, d / "out.json") for p, d in zip(procs, dirs, strict=True))
    return a, b, base


def test_there_are_at_least_forty_behaviours() -> None:
    assert len(BEHAVIOURS) >= 40
    assert set(EXPECT) == set(BEHAVIOURS)


def test_every_behaviour_ends_in_time_with_its_finding_and_no_traceback(runs: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    a, _, _ = runs
    problems = []
    # On a loaded machine every exchange costs more; allow what the correct stream cost beyond 0.5 s,
    # twice over (a flood's checks and reports do more CPU work than the correct stream's, and
    # scale with the load: 6.3 s seen for deflate_bomb under the full suite). The bound catches an
    # exchange that outlives its total timeout (the server holds those for an hour), not speed.
    overhead = max(r["seconds"] for r in a["results"] if r["name"] == "baseline")
    allowed = TOTAL + 3 * SLACK + 2 * max(0.0, overhead - 0.5)
    for r in a["results"]:
        name = r["name"]
        if name == "baseline":
            continue
        if r["rc"] != 1:
            problems.append(f"{name}: exit {r['rc']} (want 1: findings)")
        if r["seconds"] > allowed:
            problems.append(f"{name}: took {r['seconds']} s (allowed {allowed:.2f} s)")
        if "Traceback" in r["output"] or "escaped:" in r["output"] or "internal error" in r["output"]:
            problems.append(f"{name}: {r['output'][-500:]}")
        if r["report_error"] or not r["html"]:
            problems.append(f"{name}: report: {r['report_error'] or 'no HTML'}")
        if EXPECT[name] not in r["failing"]:
            problems.append(f"{name}: {EXPECT[name]} not among {r['failing']}")
        if _UNSAFE.search(r["output"]):
            problems.append(f"{name}: a raw control character reached the terminal")
        if r["output_len"] > 200_000:
            problems.append(f"{name}: {r['output_len']} characters of terminal output")
    assert not problems, "\n".join(problems)


def test_memory_stays_bounded_with_small_caps(runs: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    a, b, _ = runs
    # Interpreter, rich, httpx, jsonschema and the compiled schemas take ~80 MB of this.
    assert a["peak_mb"] < 250, a["peak_mb"]
    assert b["peak_mb"] < 250, b["peak_mb"]


def test_results_are_reproducible(runs: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    a, b, _ = runs
    first = {r["name"]: r for r in a["results"]}
    for r in b["results"]:
        if r["name"] == "baseline":
            continue
        if r["name"] in TIMING:
            assert EXPECT[r["name"]] in r["failing"]
            continue
        assert r["failing"] == first[r["name"]]["failing"], r["name"]
        assert r["rc"] == first[r["name"]]["rc"], r["name"]


def test_the_canary_key_reaches_no_file(runs: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    _, _, base = runs
    assert _files_holding(base, CANARY.encode()) == []
    echoed = next(r for r in runs[0]["results"] if r["name"] == "echo_credentials")
    assert "[redacted]" in echoed["output"] and CANARY not in echoed["output"]


def test_decoded_bytes_count_against_the_byte_cap(runs: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    r = next(r for r in runs[0]["results"] if r["name"] == "gzip_bomb_of_events")
    assert f"bytes after Content-Encoding gzip (cap {1 << 20})" in r["output"], r["output"][-2000:]


def test_escapes_from_the_proxy_are_shown_escaped(runs: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    r = next(r for r in runs[0]["results"] if r["name"] == "ansi_and_osc_escapes")
    assert "\\x1b]0;pwned-title\\x07" in r["output"] and "\\u202e" in r["output"]
    markup = next(r for r in runs[0]["results"] if r["name"] == "rich_markup_text")
    assert "[link=http://evil]click[/link]" in markup["output"]  # printed as text, not interpreted


def test_default_caps_gzip_bomb_and_trickled_10mb_line(tmp_path: Path) -> None:
    """Default caps (64 MiB): a 256 MiB gzip bomb peaks under 200 MB; the trickle ends at the total timeout."""
    procs = {}
    for name in ("gzip_bomb", "line_10mb_trickle_1k"):  # at once: each worker measures its own peak
        d = tmp_path / name
        (d / "tmp").mkdir(parents=True)
        caps = "default" if name == "gzip_bomb" else "trickle"
        procs[name] = (_worker(d / "out.json", caps, [name], d / "tmp"), d / "out.json")
    results = {name: _finish(proc, out) for name, (proc, out) in procs.items()}
    bomb = results["gzip_bomb"]["results"][0]
    assert bomb["rc"] == 1 and "transport.cap" in bomb["failing"], bomb["output"][-1500:]
    assert "(after Content-Encoding gzip)" in bomb["output"]
    assert results["gzip_bomb"]["peak_mb"] < 200, results["gzip_bomb"]["peak_mb"]
    trickle = results["line_10mb_trickle_1k"]["results"][0]
    assert "transport.timeout" in trickle["failing"], trickle["output"][-1500:]
    assert "total timeout of 5 s" in trickle["output"]
    # The exchange ends at the total timeout (asserted in test_trickled_line_ends_at_the_total_timeout
    # and, under the small caps, for every behaviour). The whole command adds the analysis, which
    # re-parses the line three times with an SSE parser still quadratic in the pieces of one line
    # (issue 15 makes it linear); on a loaded machine that alone can take seconds, so not timed here.
    assert results["line_10mb_trickle_1k"]["peak_mb"] < 200


def test_trickled_line_ends_at_the_total_timeout() -> None:
    """The driver alone: a 10 MB line in 1 KiB writes, default caps, total timeout 3 s."""
    import time

    from conformance.driver import Limits, drive
    from tests.hostile.server import HostileServer

    server = HostileServer(b"data: {}\n\n")
    try:
        t0 = time.monotonic()
        ex = drive(server.url("line_10mb_trickle_1k") + "/responses", {"model": "m", "input": "x"}, limits=Limits(total_timeout=3))
        elapsed = time.monotonic() - t0
    finally:
        server.close()
    assert ex.transport_error is not None and ex.transport_error.kind == "total_timeout"
    assert 3 <= elapsed < 3.5, elapsed
