"""Setup diagnosis: the fake upstream's URL is printed (and written for CI) at the start of a run,
and a proxy wired to another upstream stops the run with one setup error, not hundreds of findings."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cassette import load_cassettes
from conformance.reference import ReferenceBridge
from conformance.resources import cassettes_dir
from conformance.setup_check import probe_cassette, upstream_file
from conformance.upstream import FakeUpstream

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")
TEXT = str(cassettes_dir() / "text")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True, timeout=180)


def test_the_probe_is_a_cassette_that_must_call_the_upstream() -> None:
    cassettes, _ = load_cassettes(None)
    chosen = probe_cassette(cassettes)
    assert chosen is not None and chosen.turns[0].upstream and chosen.turns[0].expected_error is None
    refusing = [c for c in cassettes if not c.turns[0].upstream or c.turns[0].expected_error is not None]
    assert refusing and probe_cassette(refusing) is None  # never probes with a request the proxy must refuse
    assert upstream_file("out/report.json") == Path("out/report.upstream.json") and upstream_file(None) is None


@pytest.mark.slow
def test_every_run_prints_the_upstream_and_writes_it_beside_the_json_report(tmp_path: Path) -> None:
    proc = cli("run", "--cassettes", TOOL, "--report-json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("fake upstream: http://127.0.0.1:")
    written = json.loads((tmp_path / "r.upstream.json").read_text("utf-8"))
    assert first.startswith(f"fake upstream: {written['url']} (port {written['port']})")
    assert "1 cassette, 2 exchanges: no findings" in proc.stdout  # the probe's result is reused, not run twice


@pytest.mark.slow
def test_a_proxy_wired_to_another_upstream_is_one_setup_error() -> None:
    """The proxy keeps a stale upstream (a second fake upstream that answers it correctly)."""
    cassettes, _ = load_cassettes([TEXT])
    with FakeUpstream(cassettes) as stale:
        bridge = ReferenceBridge(stale.url)
        bridge.start()
        url = bridge.url
        try:
            proc = cli("run", "--cassettes", TEXT, "--proxy-url", url)
        finally:
            bridge.stop()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    assert lines[0].startswith(f"error: setup: the proxy at {url} answered the first request")
    assert re.search(r"point its OpenAI base URL at http://127\.0\.0\.1:\d+/v1 ", lines[0])
    assert stale.url not in lines[0]
    assert proc.stderr == ""  # one line in all
    assert "it answered: HTTP 200: event: response.created" in lines[0]
    assert "Traceback" not in proc.stderr and len(stale.log()) >= 1


@pytest.mark.slow
def test_a_proxy_whose_upstream_is_dead_says_what_it_answered() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    bridge = ReferenceBridge(f"http://127.0.0.1:{dead}/v1")
    bridge.start()
    try:
        proc = cli("run", "--cassettes", TOOL, "--proxy-url", bridge.url)
    finally:
        bridge.stop()
    assert proc.returncode == 2
    assert proc.stdout.startswith("error: setup: the proxy at") and "it answered: HTTP " in proc.stdout


@pytest.mark.slow
def test_pytest_prints_the_upstream_too(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--conformance-cassettes", TOOL, "-p", "no:cacheprovider", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["fake upstream: http://127.0.0.1:*/v1 (port *); the proxy's OpenAI base URL must be this"])


@pytest.mark.slow
def test_pytest_stops_with_the_same_setup_error(pytester: pytest.Pytester) -> None:
    """Under pytest the probe's SetupError is a usage error (exit 4) with the same one line."""
    cassettes, _ = load_cassettes([TEXT])
    with FakeUpstream(cassettes) as stale:
        bridge = ReferenceBridge(stale.url)
        bridge.start()
        url = bridge.url
        try:
            result = pytester.runpytest_subprocess(
                "--conformance-cassettes", TEXT, "--conformance-proxy-url", url, "-p", "no:cacheprovider", "-q"
            )
        finally:
            bridge.stop()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stdout.fnmatch_lines([f"*responses-conformance: setup: the proxy at {url} answered the first request*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
