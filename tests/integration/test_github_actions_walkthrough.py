"""examples/github-actions.yml followed step by step in a scratch proxy project (issue 11 item 4).

The reference bridge, started as a real server, stands in for "your proxy"; every other command
is the example's own text (its `run:` blocks, read from the file so the two cannot drift) with the
ports and the secret filled in. PYTEST_ADDOPTS narrows the suite to one cassette directory to keep
the test short, and adds --conformance-update-expectations for the first run, as the example says.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.resources import cassettes_dir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "github-actions.yml"
pytestmark = pytest.mark.slow


def run_blocks(text: str) -> dict[str, str]:
    """Each step's `run: |` block by the step's name (plain text: the example is simple YAML)."""
    blocks: dict[str, str] = {}
    name = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        found = re.match(r"\s*- name: (.*)", line)
        if found:
            name = found.group(1).strip()
        if line.strip() == "run: |":
            indent = len(line) - len(line.lstrip()) + 2
            body: list[str] = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" " * indent)):
                body.append(lines[i][indent:])
                i += 1
            blocks[name] = "\n".join(body).strip() + "\n"
            continue
        i += 1
    return blocks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bridge:
    """The reference bridge as a separate server process: the proxy of the scratch project."""

    def __init__(self, port: int, upstream_port: int) -> None:
        self.port, self.upstream_port = port, upstream_port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *faults: str) -> None:
        self.stop()
        args = [sys.executable, "-m", "conformance.reference", "--port", str(self.port),
                "--upstream-url", f"http://127.0.0.1:{self.upstream_port}/v1"]
        for fault in faults:
            args += ["--fault", fault]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    b = Bridge(_free_port(), _free_port())
    yield b
    b.stop()


def test_the_readme_shows_the_example_verbatim() -> None:
    assert EXAMPLE.read_text() in (ROOT / "README.md").read_text()


def test_the_example_installs_from_source_and_runs_without_a_test_path() -> None:
    steps = run_blocks(EXAMPLE.read_text())
    install = steps["Install the proxy and the harness"]
    assert "pip install ./responses-conformance pytest-xdist" in install
    assert not re.search(r"pip install responses-conformance\b", install)  # not published
    suite = steps["Run the suite; only failures not in the expectation file fail the job"]
    assert re.search(r"^\s*pytest -p no:cacheprovider -n 2 \\$", suite, re.M)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the example waits with curl")
def test_first_run_writes_expectations_second_passes_regression_fails(
    tmp_path: Path, bridge: Bridge
) -> None:
    steps = run_blocks(EXAMPLE.read_text())
    start = steps["Start the proxy against the harness's fake upstream (fixed port 8911)"]
    suite = steps["Run the suite; only failures not in the expectation file fail the job"]

    def fill(block: str) -> str:
        return (block.replace("4000", str(bridge.port)).replace("8911", str(bridge.upstream_port))
                .replace("${{ secrets.PROXY_TEST_KEY }}", "sk-ci-secret"))

    wait = "\n".join(line for line in fill(start).splitlines() if "# your proxy" not in line)
    project = tmp_path / "my-proxy"  # an empty proxy repository: no tests, no pytest config
    project.mkdir()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    narrow = f"--conformance-cassettes {cassettes_dir() / 'tools'}"

    def sh(script: str, addopts: str = "") -> subprocess.CompletedProcess[str]:
        env = dict(base_env, PYTEST_ADDOPTS=addopts) if addopts else base_env
        return subprocess.run(["bash", "-ec", script], cwd=project, env=env, capture_output=True,
                              text=True, timeout=300, check=False)

    bridge.start()
    assert sh(wait).returncode == 0
    expectations = project / "conformance-expectations.json"
    first = sh(fill(suite), f"{narrow} --conformance-update-expectations")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert expectations.is_file() and '"known_failures"' in expectations.read_text()
    for report in ("conformance.json", "conformance.html", "conformance-junit.xml"):
        assert (project / "reports" / report).is_file(), report

    for written in [expectations, *sorted((project / "reports").iterdir())]:
        assert "sk-ci-secret" not in written.read_text(errors="replace"), written
    second = sh(fill(suite), narrow)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "0 new problems" in second.stdout

    bridge.start("H-status-500")  # a regression in the proxy: HTTP 500 for every stream
    assert sh(wait).returncode == 0
    serial = fill(suite).replace(" -n 2 ", " ")  # and without xdist
    assert "-n 2" not in serial
    third = sh(serial, narrow)
    assert third.returncode == 1, third.stdout[-3000:]
    assert re.search(r"^[1-9]\d* new problems?\b", third.stdout, re.M), third.stdout[-3000:]
    assert "http.status_ok" in third.stdout
