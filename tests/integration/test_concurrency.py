"""``--concurrency N`` (issue 15): cassettes run at once give exactly the results of a serial run.

Runs the real pipeline against the embedded reference bridge and its fake upstream on 127.0.0.1,
once with ``--concurrency 1`` and once with several cassettes at once, and compares the JSON
reports with what differs on every run (times, generated ids, ports) masked.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.cassette import load_cassettes
from conformance.options import Settings
from conformance.pipeline import Pipeline, run_concurrently
from conformance.resources import cassettes_dir
from conformance.run_report import CassetteResult

SHIPPED = cassettes_dir()
_IDS = re.compile(r"\b(resp|msg|fc|rs|call|item|chatcmpl|ws)_[0-9A-Za-z]{8,}\b")
_PORT = re.compile(r"127\.0\.0\.1:\d+")
_TIME = re.compile(r'((?:created_at|created|completed_at|started_at|generated_at|elapsed|duration|t_ms|t)\\?"): ?[0-9.e+-]+')


def _mask(text: str) -> str:
    return _TIME.sub(r"\1: 0", _PORT.sub("127.0.0.1:<port>", _IDS.sub(r"\1_<id>", text)))


def _events(exchange: dict[str, Any]) -> list[str]:
    """The SSE event types of an exchange's stream (chunk boundaries and ids vary run to run)."""
    body = "".join(str(c.get("data", "")) for c in exchange.get("chunks") or [])
    return re.findall(r'"type": ?"([a-z_.]+)"', body)


def normalised(report: dict[str, Any]) -> dict[str, Any]:
    """What a run decided: per cassette its checks' outcomes and findings, each exchange's status,
    the events it streamed and which recorded turn answered each upstream call; the problems."""
    cassettes = {}
    for cassette in report["cassettes"]:
        cassettes[cassette["id"]] = {
            "error": cassette["error"],
            "checks": json.loads(_mask(json.dumps(cassette["checks"], sort_keys=True))),
            "exchanges": [
                {
                    "turn": ex["turn"],
                    "mode": ex["mode"],
                    "status": ex["status"],
                    "events": _events(ex),
                    "upstream": [(u.get("cassette_id"), u.get("turn"), u.get("interaction"), u.get("match")) for u in ex["upstream_requests"]],
                    "unmatched": len(ex["upstream_unmatched"]),
                }
                for ex in cassette["exchanges"]
            ],
        }
    return {
        "cassettes": cassettes,
        "order": [c["id"] for c in report["cassettes"]],
        "summary": report["summary"],
        "problems": json.loads(_mask(json.dumps(report["problems"], sort_keys=True))),
    }


def run_cli(tmp: Path, name: str, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--report-json", str(out), *args],
        capture_output=True, text=True, timeout=600,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.returncode, normalised(json.loads(out.read_text("utf-8")))


@pytest.mark.slow
def test_the_shipped_suite_at_once_reports_exactly_what_a_serial_run_does(tmp_path: Path) -> None:
    serial_code, serial = run_cli(tmp_path, "serial", "--concurrency", "1")
    code, concurrent = run_cli(tmp_path, "concurrent", "--concurrency", "6")
    assert (code, serial_code) == (0, 0)
    assert len(serial["cassettes"]) >= 60 and serial["summary"]["ok"]
    assert concurrent == serial


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault",
    [
        "Q2-tool-result-dropped",  # the last message changes: the fake upstream matches by fit
        "R1-empty-completed-output",  # a stream defect: every exchange matches exactly
    ],
)
def test_a_faulty_bridge_at_once_reports_exactly_what_a_serial_run_does(tmp_path: Path, fault: str) -> None:
    args = ("--reference-fault", fault, "--cassettes", str(SHIPPED / "tools"), "--cassettes", str(SHIPPED / "multiturn"))
    serial_code, serial = run_cli(tmp_path, "serial", "--concurrency", "1", *args)
    code, concurrent = run_cli(tmp_path, "concurrent", "--concurrency", "8", *args)
    assert serial_code == code == 1
    assert not serial["summary"]["ok"]
    assert concurrent == serial


def test_a_fault_that_changes_the_last_message_is_named_under_concurrency(tmp_path: Path) -> None:
    """The cassettes the fake upstream had to match by fit are run again alone: the finding that
    names the dropped tool result is there, and no request went unmatched."""
    pipeline = Pipeline(
        Settings(
            cassette_dirs=[str(SHIPPED / "tools"), str(SHIPPED / "multiturn")],
            reference_faults=["Q2-tool-result-dropped"],
            concurrency=8,
        )
    )
    pipeline.start()
    try:
        results = pipeline.run_all()
    finally:
        pipeline.stop()
    named = [r.cassette_id for r in results if r.outcomes.get("translation.tool_history") and r.outcomes["translation.tool_history"].findings]
    assert named, "translation.tool_history never fired"
    assert all(not ex.upstream_unmatched for r in results for ex in r.exchanges)
    fits = [u for r in results for ex in r.exchanges for u in ex.upstream_requests if u.get("match") == "in-flight"]
    assert fits, "no request was matched by fit: the fault did not change a last message"


def test_cassettes_sharing_a_last_message_never_run_at_the_same_time() -> None:
    """The fake upstream tells in-flight turns apart by their last message: two cassettes that
    share one must wait for each other. The loader refuses such a set, so the copies (three of
    one cassette under other ids) are made here, as a caller of the pipeline could."""
    cassettes, errors = load_cassettes([SHIPPED / "text", SHIPPED / "tools" / "openai-tool-call.json"])
    assert not errors
    tool = next(c for c in cassettes if c.id == "openai-tool-call")
    cassettes += [dataclasses.replace(tool, id=f"copy-{n}") for n in range(3)]
    copies = {f"copy-{n}" for n in range(3)} | {"openai-tool-call"}
    running: set[str] = set()
    seen_together: list[set[str]] = []
    lock = threading.Lock()

    def run(cassette: Any) -> CassetteResult:
        with lock:
            running.add(cassette.id)
            seen_together.append(set(running))
        time.sleep(0.01)
        with lock:
            running.discard(cassette.id)
        return CassetteResult(cassette.id, [], {})

    results, overlapped = run_concurrently(cassettes, run, 8)
    assert list(results) and set(results) == {c.id for c in cassettes}
    assert max(len(s) for s in seen_together) > 1  # it did run several at once
    assert all(len(s & copies) <= 1 for s in seen_together)
    for cid in copies:
        assert not overlapped[cid] & (copies - {cid})


def test_a_concurrency_out_of_range_is_one_line_and_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--concurrency", "-1"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines() == ["error: --concurrency: -1 is not between 1 and 64"]


@pytest.mark.slow
@pytest.mark.parametrize("how", [("--conformance-concurrency", "6"), ("-n", "2")], ids=["concurrency", "xdist"])
def test_under_pytest_cassettes_at_once_report_exactly_what_one_by_one_does(tmp_path: Path, how: tuple[str, str]) -> None:
    """Several cassettes at once in one process, or under xdist (the controller runs cassettes in
    the background while the workers start; a worker that needs one first runs it itself)."""
    reports = {}
    for n, extra in (("1", ()), ("many", how)):
        out = tmp_path / f"pytest-{n}.json"
        proc = subprocess.run(
            [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--conformance",
                "--conformance-cassettes", str(SHIPPED / "tools"), "--conformance-cassettes", str(SHIPPED / "multiturn"),
                "--conformance-reference-fault", "Q2-tool-result-dropped",
                "--conformance-concurrency", "1" if n == "1" else "4", *extra, "--conformance-report-json", str(out),
            ],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
        assert proc.returncode == 1, proc.stdout[-2000:]
        reports[n] = normalised(json.loads(out.read_text("utf-8")))
    assert reports["many"] == reports["1"]
    assert not reports["1"]["summary"]["ok"]
