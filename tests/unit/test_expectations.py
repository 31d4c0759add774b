"""Expectation files: the logic on its own, then the gate as a proxy project runs it (pytester, CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.expectations import (
    Expectations,
    ExpectationsError,
    Verdict,
    judge,
    judge_all,
    updated,
)
from conformance.resources import cassettes_dir

pytest_plugins = ["pytester"]

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")
TEXT = str(cassettes_dir() / "usage" / "openai-text-include-usage.json")
FAULT = "R1-empty-completed-output"  # fires integrity.terminal_output


# ------------------------------------------------------------------ the logic


@pytest.mark.parametrize(
    ("known", "failing", "skipped", "verdict"),
    [
        (False, False, False, Verdict.PASS),
        (False, True, False, Verdict.FAIL),
        (True, True, False, Verdict.XFAIL),
        (True, False, False, Verdict.FIXED),
        (True, True, True, Verdict.SKIP),
        (False, False, True, Verdict.SKIP),
    ],
)
def test_verdicts(known: bool, failing: bool, skipped: bool, verdict: Verdict) -> None:
    assert judge(known=known, failing=failing, skipped=skipped) is verdict


def test_judge_all_names_new_fixed_and_stale_pairs() -> None:
    exp = Expectations(known={("a", "x.one"): "r1", ("a", "x.two"): "", ("gone", "x.one"): "", ("a", "x.removed"): ""})
    outcomes = {("a", "x.one"): (True, False), ("a", "x.two"): (False, False), ("b", "x.one"): (True, False)}
    j = judge_all(exp, outcomes, cassettes=["a", "b"], checks=["x.one", "x.two"])
    assert j.xfailed == [("a", "x.one")]
    assert j.fixed == [("a", "x.two")]
    assert j.new == [("b", "x.one")]
    assert j.stale == [("a", "x.removed"), ("gone", "x.one")]
    assert j.failed
    lines = "\n".join(j.lines())
    assert "new failure (not a known failure): cassette b, check x.one" in lines
    assert "fixed (known failure that now passes" in lines and "cassette a, check x.two" in lines

    only_fixed = judge_all(exp, {("a", "x.two"): (False, False)}, cassettes=["a", "gone"], checks=["x.one", "x.two", "x.removed"])
    assert not only_fixed.failed
    strict = judge_all(exp, {("a", "x.two"): (False, False)}, cassettes=["a", "gone"], checks=["x.one", "x.two", "x.removed"], strict=True)
    assert strict.failed


def test_update_keeps_reasons_drops_passes_and_keeps_what_did_not_run() -> None:
    exp = Expectations(target="t", known={("a", "x.one"): "human reason", ("a", "x.two"): "", ("c", "x.one"): "not run"})
    outcomes = {("a", "x.one"): (True, False), ("a", "x.two"): (False, False), ("b", "x.one"): (True, False), ("a", "x.skip"): (False, True)}
    new = updated(exp, outcomes, reasons={("a", "x.one"): "machine", ("b", "x.one"): "first finding"})
    assert new.known == {("a", "x.one"): "human reason", ("b", "x.one"): "first finding", ("c", "x.one"): "not run"}
    assert new.target == "t"


def test_file_is_sorted_one_entry_per_line_and_round_trips(tmp_path: Path) -> None:
    exp = Expectations(target="litellm 1", known={("b", "x.one"): "", ("a", "x.two"): "why", ("a", "x.one"): ""})
    path = exp.save(tmp_path / "sub" / "e.json")
    text = path.read_text("utf-8")
    lines = [line for line in text.splitlines() if '"cassette"' in line]
    assert [json.loads(line.rstrip(","))["cassette"] + json.loads(line.rstrip(","))["check"] for line in lines] == ["ax.one", "ax.two", "bx.one"]
    again = Expectations.load(path)
    assert again.known == exp.known and again.target == "litellm 1"
    assert again.dumps() == text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "invalid JSON at line 1"),
        ('{"version": 2, "known_failures": []}', "version must be 1"),
        ('{"version": 1}', "known_failures must be a list"),
        ('{"version": 1, "known_failures": [{"cassette": "a"}]}', "known_failures[0] needs non-empty string fields cassette and check"),
        ('{"version": 1, "known_failures": [{"cassette": "a", "check": "b", "why": 1}]}', "unknown field(s) why"),
        (
            '{"version": 1, "known_failures": [{"cassette": "a", "check": "b"}, {"cassette": "a", "check": "b"}]}',
            "known_failures[1] lists a b a second time",
        ),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "e.json"
    path.write_text(content, "utf-8")
    with pytest.raises(ExpectationsError) as info:
        Expectations.load(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_file_is_an_error_unless_it_is_to_be_written(tmp_path: Path) -> None:
    with pytest.raises(ExpectationsError, match="does not exist"):
        Expectations.load(tmp_path / "nope.json")
    assert Expectations.load(tmp_path / "nope.json", missing_ok=True).known == {}


# ------------------------------------------------------------------ the gate, through pytest


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--conformance-cassettes", TOOL, "--conformance-cassettes", TEXT, "-p", "no:cacheprovider", *args)


def _entries(path: Path) -> set[tuple[str, str]]:
    return {(e["cassette"], e["check"]) for e in json.loads(path.read_text("utf-8"))["known_failures"]}


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> Path:
    """An expectation file written by --update-expectations from a run with a fault."""
    path = pytester.path / "expectations" / "bridge.json"
    result = _run(pytester, "--conformance-reference-fault", FAULT, "--conformance-expectations", str(path), "--conformance-update-expectations")
    assert result.ret == 0, result.stdout.str()
    assert path.exists()
    return path


def test_update_writes_every_failure_and_the_run_passes(pytester: pytest.Pytester, recorded: Path) -> None:
    entries = _entries(recorded)
    assert ("openai-tool-call", "integrity.terminal_output") in entries
    assert ("openai-text-include-usage", "integrity.terminal_output") in entries
    data = json.loads(recorded.read_text("utf-8"))
    assert data["version"] == 1
    assert data["target"] == f"reference bridge with faults {FAULT}"
    assert all(e["reason"] for e in data["known_failures"]), "new entries say what failed"


def test_known_failures_are_xfail_and_do_not_fail_the_run(pytester: pytest.Pytester, recorded: Path) -> None:
    result = _run(pytester, "--conformance-reference-fault", FAULT, "--conformance-expectations", str(recorded))
    assert result.ret == 0
    outcomes = result.parseoutcomes()
    assert outcomes["xfailed"] == len(_entries(recorded))
    assert "failed" not in outcomes
    result.stdout.fnmatch_lines([f"*expectations in {recorded}: {len(_entries(recorded))} known failures, 0 new failures, 0 fixed*"])


def test_removing_one_line_fails_the_run_naming_cassette_and_check(pytester: pytest.Pytester, recorded: Path) -> None:
    lines = recorded.read_text("utf-8").splitlines()
    victim = next(i for i, line in enumerate(lines) if '"openai-tool-call"' in line and "integrity.terminal_output" in line)
    removed = lines.pop(victim)
    if removed.rstrip().endswith(",") is False and lines[victim - 1].rstrip().endswith(","):
        lines[victim - 1] = lines[victim - 1].rstrip()[:-1]  # it was the last entry
    recorded.write_text("\n".join(lines) + "\n", "utf-8")

    result = _run(pytester, "--conformance-reference-fault", FAULT, "--conformance-expectations", str(recorded))
    assert result.ret == 1
    result.assert_outcomes(failed=1, xfailed=len(_entries(recorded)), passed=result.parseoutcomes()["passed"], skipped=result.parseoutcomes().get("skipped", 0))
    result.stdout.fnmatch_lines(
        [
            f"*conformance/openai-tool-call::integrity.terminal_output is not a known failure in {recorded}*",
            f"*new problem (not known in {recorded}): p-* integrity.terminal_output on openai-tool-call: *",
            "*FAILED*conformance/openai-tool-call::integrity.terminal_output*",
        ]
    )


def test_fixed_is_reported_and_fails_only_when_strict(pytester: pytest.Pytester, recorded: Path) -> None:
    n = len(_entries(recorded))
    result = _run(pytester, "--conformance", "--conformance-expectations", str(recorded))  # no fault: all pass
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            f"*0 known failures, 0 new failures, {n} fixed*",
            "*fixed (known failure that now passes; remove it from the file (fails with --strict-expectations)): cassette openai-tool-call, check integrity.terminal_output*",
        ]
    )
    strict = _run(pytester, "--conformance", "--conformance-expectations", str(recorded), "--conformance-strict-expectations")
    assert strict.ret == 1
    assert strict.parseoutcomes()["failed"] == n
    strict.stdout.fnmatch_lines(["*fixed: cassette openai-tool-call, check integrity.terminal_output is listed as a known failure*"])


def test_update_removes_fixed_entries(pytester: pytest.Pytester, recorded: Path) -> None:
    result = _run(pytester, "--conformance", "--conformance-expectations", str(recorded), "--conformance-update-expectations")
    assert result.ret == 0
    assert _entries(recorded) == set()


def test_stale_entry_is_reported_and_fails_when_strict(pytester: pytest.Pytester, recorded: Path) -> None:
    data = json.loads(recorded.read_text("utf-8"))
    data["known_failures"].append({"cassette": "no-such-cassette", "check": "lifecycle.terminal_present", "reason": ""})
    recorded.write_text(json.dumps(data), "utf-8")
    result = _run(pytester, "--conformance-reference-fault", FAULT, "--conformance-expectations", str(recorded))
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*stale entry (no such cassette or check in this run): cassette no-such-cassette*"])
    assert _run(pytester, "--conformance-reference-fault", FAULT, "--conformance-expectations", str(recorded), "--conformance-strict-expectations").ret == 1


def test_bad_expectation_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    bad = pytester.path / "bad.json"
    bad.write_text('{"version": 3, "known_failures": []}', "utf-8")
    result = _run(pytester, "--conformance", "--conformance-expectations", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "version must be 1" in result.stderr.str()
    result = _run(pytester, "--conformance", "--conformance-update-expectations")
    assert "--update-expectations needs --expectations FILE" in result.stderr.str()


@pytest.mark.slow
def test_xdist_controller_judges_and_updates(pytester: pytest.Pytester, recorded: Path) -> None:
    n = len(_entries(recorded))
    result = pytester.runpytest_subprocess(
        "--conformance-cassettes", TOOL, "--conformance-cassettes", TEXT, "-p", "no:cacheprovider", "-n", "2", "--conformance-reference-fault", FAULT, "--conformance-expectations", str(recorded)
    )
    assert result.ret == 0
    assert result.parseoutcomes()["xfailed"] == n
    result.stdout.fnmatch_lines([f"*{n} known failures, 0 new failures, 0 fixed*"])


# ------------------------------------------------------------------ the gate, through the CLI


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_run_with_expectations(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    proc = cli("run", "--cassettes", TOOL, "--reference-fault", FAULT, "--expectations", str(path), "--update-expectations")
    assert proc.returncode == 0, proc.stdout
    assert f"expectations written: {path}" in proc.stdout
    assert ("openai-tool-call", "integrity.terminal_output") in _entries(path)

    assert cli("run", "--cassettes", TOOL, "--reference-fault", FAULT, "--expectations", str(path)).returncode == 0

    data = json.loads(path.read_text("utf-8"))
    data["known_failures"] = [e for e in data["known_failures"] if e["check"] != "integrity.terminal_output"]
    path.write_text(json.dumps(data), "utf-8")
    proc = cli("run", "--cassettes", TOOL, "--reference-fault", FAULT, "--expectations", str(path))
    assert proc.returncode == 1
    assert "1 new problem; " in proc.stdout
    assert "new problem (not known in" in proc.stdout and "integrity.terminal_output on openai-tool-call" in proc.stdout


@pytest.mark.slow
def test_cli_strict_and_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"version": 1, "target": "x", "known_failures": [{"cassette": "openai-tool-call", "check": "integrity.terminal_output"}]}), "utf-8")
    proc = cli("run", "--cassettes", TOOL, "--expectations", str(path))
    assert proc.returncode == 0 and "1 fixed" in proc.stdout
    assert cli("run", "--cassettes", TOOL, "--expectations", str(path), "--strict-expectations").returncode == 1
    path.write_text("[", "utf-8")
    proc = cli("run", "--cassettes", TOOL, "--expectations", str(path))
    assert proc.returncode == 2
    assert proc.stdout.strip() == f"error: {path}: invalid JSON at line 1 column 2: Expecting value"


def test_a_deeply_nested_expectation_file_is_one_error_line(tmp_path: Path) -> None:
    """The expectation file goes through the same bounded JSON reader as cassettes."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ExpectationsError, match=r"deep\.json: .*nest"):
        Expectations.load(path)
