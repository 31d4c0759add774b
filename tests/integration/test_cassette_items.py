"""``--conformance-items cassette``: one test per cassette, judged exactly as the per-check tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.resources import cassettes_dir

pytest_plugins = ["pytester"]

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")
TEXT = str(cassettes_dir() / "text")


def test_a_clean_bridge_passes_one_test_per_cassette(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--conformance", "--conformance-items", "cassette", "--conformance-cassettes", TEXT, "-p", "no:cacheprovider")
    n = len(list(Path(TEXT).glob("*.json")))
    result.assert_outcomes(passed=n)
    result.stdout.fnmatch_lines(["*no findings*", "*PASSED*"])


def test_a_fault_fails_its_cassette_with_the_check_and_the_same_report(pytester: pytest.Pytester, tmp_path: Path) -> None:
    args = ("--conformance-reference-fault", "S1-drop-terminal", "--conformance-cassettes", TOOL, "-p", "no:cacheprovider")
    per_check = tmp_path / "check.json"
    per_cassette = tmp_path / "cassette.json"
    checks = pytester.runpytest(*args, "--conformance-report-json", str(per_check))
    one = pytester.runpytest(*args, "--conformance-items", "cassette", "--conformance-report-json", str(per_cassette), "-rf")
    one.assert_outcomes(failed=1)
    one.stdout.fnmatch_lines(
        [
            "*── lifecycle.terminal_present:*",
            "*[[]error[]] lifecycle.terminal_present: the stream ended without response.completed*",
            "*FAILED *conformance/openai-tool-call::checks*",
        ]
    )
    assert one.ret == checks.ret == 1

    def outcomes(path: Path) -> dict[str, str]:
        report = json.loads(path.read_text("utf-8"))
        return {f"{c['id']}::{k['id']}": k["outcome"] for c in report["cassettes"] for k in c["checks"]}

    assert outcomes(per_cassette) == outcomes(per_check)
    assert outcomes(per_cassette)["openai-tool-call::lifecycle.terminal_present"] == "fail"


def test_a_known_failure_makes_the_cassette_xfail(pytester: pytest.Pytester, tmp_path: Path) -> None:
    exp = tmp_path / "known.json"
    args = ("--conformance-reference-fault", "S1-drop-terminal", "--conformance-cassettes", TOOL, "-p", "no:cacheprovider",
            "--conformance-items", "cassette", "--conformance-expectations", str(exp))
    first = pytester.runpytest(*args, "--conformance-update-expectations")
    first.assert_outcomes(xfailed=1)
    again = pytester.runpytest(*args)
    again.assert_outcomes(xfailed=1)
    assert again.ret == 0
    again.stdout.fnmatch_lines(["*0 new problems*"])


def test_an_unknown_item_kind_is_one_usage_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--conformance", "--conformance-items", "checkz", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "checkz" in result.stderr.str()
