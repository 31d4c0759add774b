"""The command line, run as a user would: real servers, real exit codes, no tracebacks."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from conformance.checks import REGISTRY
from conformance.resources import cassettes_dir

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_run_against_the_reference_bridge_prints_the_report() -> None:
    proc = cli("run", "--cassettes", TOOL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Responses conformance — reference bridge" in proc.stdout
    assert "openai-tool-call" in proc.stdout
    assert "0 errors" in proc.stdout


@pytest.mark.slow
def test_run_with_a_fault_exits_1_and_shows_the_finding() -> None:
    proc = cli("run", "--cassettes", TOOL, "--reference-fault", "R1-empty-completed-output")
    assert proc.returncode == 1
    assert "[error] integrity.terminal_output: the terminal output has 0 items; 1 were streamed" in proc.stdout
    assert "curl -N" in proc.stdout


@pytest.mark.slow
def test_unreachable_proxy_is_one_clear_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = cli("run", "--proxy-url", f"http://127.0.0.1:{port}/v1")
    assert proc.returncode == 2
    assert proc.stdout.strip() == f"error: cannot connect to the proxy at http://127.0.0.1:{port}/v1: Connection refused"
    assert proc.stderr == ""


@pytest.mark.slow
def test_bad_option_values() -> None:
    assert cli("run", "--profile", "nope").returncode == 2
    proc = cli("run", "--proxy-url", "127.0.0.1:4000")
    assert proc.returncode == 2 and "is not an http(s) URL" in proc.stdout


@pytest.mark.slow
def test_checks_lists_every_check_with_its_doc() -> None:
    proc = cli("checks", "-v")
    assert proc.returncode == 0
    for check_id in REGISTRY:
        assert check_id in proc.stdout
    assert "Codex" in proc.stdout


@pytest.mark.slow
def test_faults_lists_the_fault_zoo() -> None:
    proc = cli("faults")
    assert proc.returncode == 0
    assert "S1-drop-terminal" in proc.stdout
