"""The pytest plugin, driven through pytester as a proxy maintainer would run it."""

from __future__ import annotations

import json
import re
import socket
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.checks import REGISTRY
from conformance.resources import cassettes_dir

pytest_plugins = ["pytester"]

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")
TEXT = str(cassettes_dir() / "usage" / "openai-text-include-usage.json")
N_CHECKS = len(REGISTRY)
# Under the default openai profile the open-responses-only checks are skipped (pytest "skipped").
N_SKIPPED = sum(1 for spec in REGISTRY.values() if spec.severity("openai") is None)
N_RUN = N_CHECKS - N_SKIPPED


def test_reference_bridge_passes_every_check(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--conformance", "--conformance-cassettes", TOOL, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=N_RUN, skipped=N_SKIPPED)
    result.stdout.fnmatch_lines(["Responses conformance: reference bridge · profile openai", "1 cassette, 2 exchanges: no findings*", "*PASSED*"])


def test_fault_fails_exactly_one_test_with_a_readable_finding(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--conformance-reference-fault", "S1-drop-terminal", "--conformance-cassettes", TOOL, "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1  # checks that need the terminal event skip, they do not fail
    assert outcomes["passed"] + outcomes.get("skipped", 0) == N_CHECKS - 1
    result.stdout.fnmatch_lines(
        [
            "*[[]error[]] lifecycle.terminal_present: the stream ended without response.completed*",
            "problem p-*: its example and repro are in the conformance summary",
            "*1 finding in 1 problem (1 error, 0 warnings, 0 notes)*",
            "*1 ✗ lifecycle.terminal_present · 1 cassette · p-*",
            "*repro:*responses-conformance replay openai-tool-call --reference*",
            "*FAILED *conformance/openai-tool-call::lifecycle.terminal_present*",
        ]
    )
    # pytest itself repeats a failure's whole text in the short summary when $CI is set
    # (running_on_ci): count what the plugin prints, above that section
    out = result.stdout.str().split("short test summary info")[0]
    assert out.count("[error] lifecycle.terminal_present:") == 1  # each finding printed once
    assert out.count("curl -N") == 1 and " -d @" in out  # the repro once, short
    assert "--reference-fault S1-drop-terminal" in " ".join(out.split())
    assert result.ret == 1


def test_select_with_k_and_checks_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--conformance", "--conformance-cassettes", TOOL, "-k", "lifecycle", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=sum(1 for c in REGISTRY if c.startswith("lifecycle.")))
    result = pytester.runpytest("--conformance", "--conformance-cassettes", TOOL, "--conformance-checks", "seq,ids.call_id", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_junit_names_carry_check_ids(pytester: pytest.Pytester) -> None:
    junit = pytester.path / "junit.xml"
    pytester.runpytest("--conformance", "--conformance-cassettes", TOOL, f"--junitxml={junit}", "-p", "no:cacheprovider")
    names = {case.get("name") for case in ET.parse(junit).getroot().iter("testcase")}
    assert "lifecycle.terminal_present" in names
    assert len(names) == N_CHECKS


@pytest.mark.slow
def test_xdist_workers_share_one_upstream(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--conformance", "--conformance-cassettes", TOOL, "--conformance-cassettes", TEXT, "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2 * N_RUN, skipped=2 * N_SKIPPED)
    result.stdout.fnmatch_lines(["2 cassettes, 4 exchanges: no findings*"])


def test_bad_cassette_is_one_clear_failure_and_the_rest_runs(pytester: pytest.Pytester) -> None:
    bad = pytester.path / "cassettes"
    bad.mkdir()
    (bad / "broken.json").write_text('{"format": 1, "id": ', "utf-8")
    (bad / "tool.json").write_text(Path(TOOL).read_text("utf-8"), "utf-8")
    result = pytester.runpytest("--conformance", "--conformance-cassettes", str(bad), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=N_RUN, failed=1, skipped=N_SKIPPED)
    result.stdout.fnmatch_lines(["*cassette error: *broken.json: invalid JSON at line 1 column 21*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.slow
def test_unreachable_proxy_is_one_line_not_a_traceback(pytester: pytest.Pytester) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = pytester.runpytest_subprocess("--conformance-proxy-url", f"http://127.0.0.1:{port}/v1", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert f"cannot connect to the proxy at http://127.0.0.1:{port}/v1" in out
    assert "Traceback" not in out


def test_proxy_cmd_launches_and_stops_the_proxy(pytester: pytest.Pytester) -> None:
    cmd = f"{sys.executable} -m conformance.reference --upstream-url {{upstream_url}} --port {{port}}"
    result = pytester.runpytest("--conformance-proxy-cmd", cmd, "--conformance-cassettes", TEXT, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=N_RUN, skipped=N_SKIPPED)


@pytest.mark.slow
def test_proxy_cmd_that_dies_is_reported(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--conformance-proxy-cmd", f"{sys.executable} -c 'import sys; sys.exit(3)'", "--conformance-cassettes", TEXT, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*the proxy command exited with code 3*"])


def test_options_from_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\nconformance_conformance = true\nconformance_cassettes =\n    {TOOL}\nconformance_checks = lifecycle.terminal_present\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_plugin_is_inert_without_its_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_a_known_problem_xfails_its_test_as_the_gate_judges_and_the_grid_shows(pytester: pytest.Pytester) -> None:
    """issue 10 under pytest: an expectation file listing a problem by id makes its tests known
    failures (the summary's gate agrees), and --conformance-grid adds the grid."""
    args = ("--conformance-reference-fault", "S1-drop-terminal", "--conformance-cassettes", TOOL, "-p", "no:cacheprovider")
    first = pytester.runpytest(*args)
    assert first.ret == 1
    found = re.search(r"lifecycle\.terminal_present · 1 cassette · (p-[0-9a-f]{8})", first.stdout.str())
    assert found, first.stdout.str()
    exp = pytester.path / "expectations.json"
    known = [{"id": found.group(1), "reason": "drops the terminal event"}]
    exp.write_text(json.dumps({"version": 1, "target": "t", "known_failures": [], "known_problems": known}), "utf-8")
    result = pytester.runpytest(*args, "--conformance-expectations", str(exp), "--conformance-grid")
    outcomes = result.parseoutcomes()
    assert outcomes.get("xfailed") == 1 and "failed" not in outcomes, outcomes
    result.stdout.fnmatch_lines(["0 new problems; 1 known", "*cassettes × check groups*"])
    assert result.ret == 0
