"""The CLI as a new user meets it: --version, a --help that lists every command, the bug-class
catalog, and the fake upstream served alone (a real subprocess, a real request, SIGTERM)."""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from conformance.bug_classes import BUG_CLASSES, bug_class
from conformance.checks import REGISTRY
from conformance.cli import main
from conformance.commands.replay import find_cassette
from conformance.reference import FAULTS

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    proc = cli(flag)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"responses-conformance {version('responses-conformance')}"


def _subcommands() -> list[str]:
    """Every subcommand the parser knows, read from argparse itself (not from the help text)."""
    names: list[str] = []
    original = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *a: object, **k: object) -> argparse.Namespace:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                names.extend(action.choices)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(SystemExit):
            main([])
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    return names


def test_help_lists_every_subcommand_with_one_line() -> None:
    names = _subcommands()
    assert {"run", "checks", "faults", "replay", "serve-upstream", "classes", "check"} <= set(names)
    out = cli("--help").stdout
    listing = out.split("positional arguments:", 1)[1].split("options:", 1)[0]
    for name in names:
        match = re.search(rf"^    {re.escape(name)}(?:\s+(\S.*))?$", listing, re.M)
        assert match, f"{name} is not listed in --help"
        # its help is there, on its line or (a long name) on the next
        after = listing[match.end():].lstrip("\n").split("\n", 1)[0]
        assert match.group(1) or after.startswith(" " * 10), f"{name} has no help line"


def test_every_cited_class_is_in_the_catalog() -> None:
    cited = {c for spec in REGISTRY.values() for c in spec.classes} | {f.bug_class for f in FAULTS.values()}
    assert cited - set(BUG_CLASSES) == set()
    for entry in BUG_CLASSES.values():
        assert entry.title and len(entry.summary) > 60 and entry.clients
    assert bug_class(" s1 ") is BUG_CLASSES["S1"] and bug_class("nope") is None


def test_classes_command() -> None:
    one = cli("classes", "R1")
    assert one.returncode == 0
    assert one.stdout.startswith("R1: Terminal response with empty or partial output")
    assert "integrity.terminal_output" in one.stdout
    listing = cli("classes")
    assert listing.returncode == 0 and all(f" {cid} " in listing.stdout for cid in BUG_CLASSES)
    bad = cli("classes", "Z9")
    assert bad.returncode == 2 and bad.stdout.startswith("error: unknown bug class 'Z9'") and bad.stderr == ""


def test_readme_points_at_nothing_outside_the_project() -> None:
    for name in ("README.md", "CONTRIBUTING.md"):
        text = (ROOT / name).read_text("utf-8")
        assert "../" not in text and "/work/" not in text, name


@pytest.mark.slow
def test_serve_upstream_answers_a_real_request_and_stops_on_sigterm() -> None:
    cassette = find_cassette("openai-length-max-output-tokens", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", "serve-upstream", "openai-length-max-output-tokens"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.match(r"fake upstream: (http://127\.0\.0\.1:\d+/v1) \(1 cassettes, \d+ turns\)", first)
        assert match, first
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": cassette.turns[0].match_key}]}
        resp = httpx.post(match.group(1) + "/chat/completions", json=body, timeout=10, trust_env=False)
        assert resp.status_code == 200
        assert '"finish_reason":"length"' in resp.text.replace(" ", "")
        deadline = time.monotonic() + 10  # a bound, not a speed assertion
        lines: list[str] = []
        while time.monotonic() < deadline and not any("openai-length-max-output-tokens turn 0" in x for x in lines):
            lines.append(proc.stdout.readline())
        assert any(x.startswith("POST /v1/chat/completions -> openai-length-max-output-tokens turn 0") for x in lines)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "fake upstream stopped" in out and "Traceback" not in err
    with pytest.raises(httpx.ConnectError):
        httpx.get(match.group(1) + "/models", timeout=5, trust_env=False)


def test_serve_upstream_mistakes_are_one_line() -> None:
    unknown = cli("serve-upstream", "nope-cassette")
    assert unknown.returncode == 2 and unknown.stdout.startswith("error: no cassette with id 'nope-cassette'")
    empty = cli("serve-upstream", "--cassettes", str(ROOT / "schemas"))
    assert empty.returncode == 2 and empty.stdout.startswith("error: no cassette in"), empty.stdout
    port = cli("serve-upstream", "--port", "70000")
    assert port.returncode == 2 and "not a port number" in port.stdout
    assert "Traceback" not in unknown.stderr + empty.stderr + port.stderr


def test_serve_upstream_with_duration_serves_everything() -> None:
    proc = cli("serve-upstream", "--duration", "0.3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = int(re.search(r"\((\d+) cassettes", proc.stdout).group(1))  # type: ignore[union-attr]
    assert count > 10


@pytest.mark.parametrize("args", [("run", "--profil", "strict"), ("report", "matrix", "--outpu", "x.md", "a.json")])
def test_an_abbreviated_option_is_a_typo_not_the_option(args: tuple[str, ...]) -> None:
    proc = cli(*args)
    assert proc.returncode == 2
    assert "unrecognized arguments: " + args[-2 if args[0] == "run" else -3] in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # one line, no usage block
    assert "Traceback" not in proc.stderr


def test_the_fault_list_piped_into_head_ends_quietly() -> None:
    proc = subprocess.run(
        f"{sys.executable} -m conformance.reference --list-faults | head -1",
        shell=True, capture_output=True, text=True, timeout=60, executable="/bin/bash",
    )
    assert proc.stdout.count("\n") == 1 and proc.stdout.split()[0] in FAULTS
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
