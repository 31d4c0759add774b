"""The JUnit sink (``--report-junit``): parsed back with xml.etree, from the CLI and from pytest."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import conformance
from conformance import _secrets, cli
from conformance.exchange import Finding, Outcome, Severity
from conformance.report.junit import render_junit
from conformance.resources import cassettes_dir
from conformance.run_report import CassetteResult, RunReport, Target

pytest_plugins = ["pytester"]

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")
FAULT = "R1-empty-completed-output"  # fires integrity.terminal_output, and nothing else
FIRES = ("openai-tool-call", "integrity.terminal_output")


def cases(path: Path) -> dict[tuple[str, str], ET.Element]:
    root = ET.parse(path).getroot()
    return {(str(tc.get("classname")), str(tc.get("name"))): tc for tc in root.iter("testcase")}


def props(element: ET.Element) -> dict[str, str]:
    node = element.find("properties")
    assert node is not None
    return {str(p.get("name")): str(p.get("value")) for p in node.iter("property")}


def suite_of(path: Path) -> ET.Element:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return suite


def with_(tc: ET.Element, tag: str) -> bool:
    return tc.find(tag) is not None


def test_clean_run_has_no_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "junit.xml"
    assert cli.main(["run", "--cassettes", TOOL, "--report-junit", str(path)]) == 0
    assert f"report written: {path}" in capsys.readouterr().out
    suite = suite_of(path)
    assert suite.get("name") == "responses-conformance: reference bridge"
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")
    tcs = cases(path)
    assert len(tcs) == len(conformance.REGISTRY) == int(suite.get("tests") or 0)
    assert {c for c, _ in tcs} == {"openai-tool-call"}
    assert not [k for k, tc in tcs.items() if with_(tc, "failure") or with_(tc, "error")]
    skipped = [tc for tc in tcs.values() if with_(tc, "skipped")]
    assert len(skipped) == int(suite.get("skipped") or 0) > 0
    assert all(props(tc)["outcome"] == "skip" for tc in skipped)
    meta = props(suite)
    assert meta["target"] == "reference bridge" and meta["profile"] == "openai"
    assert meta["verdict"] == "passed" and meta["problems"] == "0"
    assert meta["version"] == conformance.__version__


def test_fault_fails_exactly_its_check_with_its_problem(tmp_path: Path) -> None:
    path, report = tmp_path / "junit.xml", tmp_path / "r.json"
    argv = ["run", "--cassettes", TOOL, "--reference-fault", FAULT, "--report-junit", str(path), "--report-json", str(report)]
    assert cli.main(argv) == 1
    tcs = cases(path)
    assert [k for k, tc in tcs.items() if with_(tc, "failure")] == [FIRES]
    assert suite_of(path).get("failures") == "1"
    failure = tcs[FIRES].find("failure")
    assert failure is not None and failure.text
    doc = json.loads(report.read_text("utf-8"))
    check = next(c for c in doc["cassettes"][0]["checks"] if c["id"] == FIRES[1])
    first = check["findings"][0]
    assert failure.get("message") == f"[error] {first['message']}"
    assert f"integrity.terminal_output: {first['message']}" in failure.text  # the findings, in full
    p = props(tcs[FIRES])
    problem = next(pr for pr in doc["problems"] if pr["check"] == FIRES[1])
    assert p["problem"] == problem["id"]  # ties the testcase to the JSON report's problem
    assert p["outcome"] == "fail" and p["classes"] == " ".join(conformance.REGISTRY[FIRES[1]].classes)
    assert p["impact"].startswith("error (lab table): breaks ")
    assert json.loads(p["conformance"])["failing"] is True
    meta = props(suite_of(path))
    assert meta["verdict"] == "failed" and meta["problems"] == str(len(doc["problems"])) == "1"
    assert meta["target"] == f"reference bridge with faults {FAULT}"


def test_known_failures_are_skipped_with_their_reason(tmp_path: Path) -> None:
    exp = tmp_path / "expected.json"
    entry = {"cassette": FIRES[0], "check": FIRES[1], "reason": "drops the output"}
    exp.write_text(json.dumps({"version": 1, "target": "t", "known_failures": [entry]}), "utf-8")
    path = tmp_path / "junit.xml"
    argv = ["run", "--cassettes", TOOL, "--reference-fault", FAULT, "--expectations", str(exp), "--report-junit", str(path)]
    assert cli.main(argv) == 0
    tcs = cases(path)
    assert not [k for k, tc in tcs.items() if with_(tc, "failure")]
    skipped = tcs[FIRES].find("skipped")
    assert skipped is not None and skipped.get("message") == "known failure: drops the output"
    assert props(tcs[FIRES])["outcome"] == "xfail"
    assert suite_of(path).get("failures") == "0"


@pytest.mark.slow
def test_written_under_pytest_with_the_same_properties_as_junitxml(tmp_path: Path, pytester: pytest.Pytester) -> None:
    ours, theirs = tmp_path / "ours.xml", tmp_path / "theirs.xml"
    result = pytester.runpytest(
        "--conformance-cassettes", TOOL, "--conformance-reference-fault", FAULT, "-p", "no:cacheprovider",
        "--conformance-report-junit", str(ours), f"--junitxml={theirs}",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*report written: {ours}*"])
    mine = cases(ours)
    assert [k for k, tc in mine.items() if with_(tc, "failure")] == [FIRES]
    assert props(suite_of(ours))["runner"] == "pytest"
    # pytest's own --junitxml gets each test's properties from the same function
    pytests = {name: tc for (classname, name), tc in cases(theirs).items() if classname == "conformance.openai-tool-call"}
    assert len(pytests) == len(mine) == len(conformance.REGISTRY)
    for (_, check), tc in mine.items():
        assert props(pytests[check]) == props(tc), check


def test_an_unwritable_path_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("not a directory", "utf-8")
    assert cli.main(["run", "--cassettes", TOOL, "--report-junit", str(tmp_path / "file" / "j.xml")]) == 2
    out = capsys.readouterr().out
    assert "error: the junit sink could not write:" in out and "Traceback" not in out


def test_hostile_text_is_valid_xml_and_secrets_are_hidden(tmp_path: Path) -> None:
    secret = "sk-junit-secret-0123456789"
    _secrets.remember(secret)
    try:
        message = f"bad \x1b[31m\x00\x07 \ufffe \ud800 key {secret} <tag> & \"q\""
        finding = Finding("lifecycle.terminal_present", Severity.ERROR, message, cassette_id="c<1>", raw=f"Authorization: Bearer {secret}")
        result = CassetteResult("c<1>", [], {"lifecycle.terminal_present": Outcome([finding])})
        report = RunReport(Target("t & <u>", url=f"http://user:{secret}@127.0.0.1:1/v1"), "openai", [result])
        text = render_junit(report)
    finally:
        _secrets.forget_all()
    assert secret not in text
    path = tmp_path / "j.xml"
    path.write_text(text, "utf-8")
    tcs = cases(path)  # parses: every character is one XML 1.0 may hold
    failure = tcs[("c<1>", "lifecycle.terminal_present")].find("failure")
    assert failure is not None
    assert failure.get("message") == '[error] bad \\x1b[31m\\x00\\x07 \\ufffe \\ud800 key [redacted] <tag> & "q"'
    assert props(suite_of(path))["target"] == "t & <u>"
