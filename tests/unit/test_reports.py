"""Reports: the JSON document against its schema, the HTML page against the JSON, JUnit, the matrix."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance.checks import REGISTRY
from conformance.report.data import load_report
from conformance.report.html import render_html
from conformance.report.matrix import build_matrix, matrix_markdown
from conformance.resources import cassettes_dir, schemas_dir

pytest_plugins = ["pytester"]

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")
TEXT = str(cassettes_dir() / "usage" / "openai-text-include-usage.json")
FAULT = "R1-empty-completed-output"
SCHEMA = json.loads((schemas_dir() / "report.schema.json").read_text("utf-8"))


def validate(report: dict[str, Any]) -> None:
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(report), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cli_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean run and a run with a fault, written by `responses-conformance run`."""
    out = tmp_path_factory.mktemp("reports")
    assert cli("run", "--cassettes", TOOL, "--cassettes", TEXT, "--report-json", str(out / "clean.json")).returncode == 0
    proc = cli(
        "run", "--cassettes", TOOL, "--cassettes", TEXT, "--reference-fault", FAULT, "--api-key", "sk-secret-123",
        "--target-name", "faulty bridge", "--report-json", str(out / "fault.json"), "--report-html", str(out / "fault.html"),
    )
    assert proc.returncode == 1
    assert f"report written: {out / 'fault.json'}" in proc.stdout
    return out


def findings_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for c in report["cassettes"] for chk in c["checks"] for f in chk["findings"]]


# ------------------------------------------------------------------ JSON


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.slow
def test_cli_reports_validate_and_carry_everything(cli_reports: Path) -> None:
    clean, fault = load_report(cli_reports / "clean.json"), load_report(cli_reports / "fault.json")
    validate(clean)
    validate(fault)
    assert clean["summary"]["ok"] and not fault["summary"]["ok"]
    assert fault["target"]["name"] == "faulty bridge"
    assert fault["runner"] == "cli" and fault["profile"] == "openai"
    assert set(fault["versions"]) >= {"harness", "python", "openai"}
    assert fault["versions"]["openai"]
    tool = next(c for c in fault["cassettes"] if c["id"] == "openai-tool-call")
    first = tool["exchanges"][0]
    assert first["status"] == 200 and first["request"]["stream"] is True
    assert "".join(ch["data"] for ch in first["chunks"]).startswith("event: response.created")
    assert first["upstream_requests"][0]["body"]["messages"][-1]["content"].startswith("What's the weather in Lisbon")
    assert first["request_headers"]["Authorization"] == "[redacted]"
    assert "sk-secret-123" not in (cli_reports / "fault.json").read_text("utf-8")
    outcome = next(chk for chk in tool["checks"] if chk["id"] == "integrity.terminal_output")
    assert outcome["outcome"] == "fail"
    finding = outcome["findings"][0]
    assert finding["check_id"] == "integrity.terminal_output" and finding["severity"] == "error"
    assert finding["cassette_id"] == "openai-tool-call" and isinstance(finding["event_index"], int)
    assert finding["pointer"] == "/response/output" and (finding["expected"], finding["actual"]) == (1, 0)
    assert set(fault["checks"]) == {chk["id"] for chk in tool["checks"]}
    assert fault["checks"]["integrity.terminal_output"]["classes"] == list(REGISTRY["integrity.terminal_output"].classes)


@pytest.mark.slow
def test_pytest_report_under_xdist_validates_and_matches_the_tests(pytester: pytest.Pytester) -> None:
    report_path, junit = pytester.path / "out" / "r.json", pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "--conformance-cassettes", TOOL, "--conformance-cassettes", TEXT, "-p", "no:cacheprovider", "-n", "2", "--conformance-reference-fault", FAULT,
        "--conformance-report-json", str(report_path), f"--junitxml={junit}",
    )
    assert result.ret == 1
    report = load_report(report_path)
    validate(report)
    assert report["runner"] == "pytest"
    failed = {(c["id"], chk["id"]) for c in report["cassettes"] for chk in c["checks"] if chk["outcome"] == "fail"}
    assert failed and result.parseoutcomes()["failed"] == len(failed)
    assert report["summary"]["failed"] == len(failed)
    assert all(c["exchanges"] for c in report["cassettes"]), "the controller found every exchange in the run directory"

    cases = list(ET.parse(junit).getroot().iter("testcase"))
    failing = {(tc.get("classname"), tc.get("name")) for tc in cases if tc.find("failure") is not None}
    assert {("conformance.openai-tool-call", "integrity.terminal_output")} <= failing
    props = {p.get("name"): p.get("value") for tc in cases if tc.get("name") == "integrity.terminal_output" for p in tc.iter("property")}
    assert props["check"] == "integrity.terminal_output" and props["outcome"] == "fail"
    assert props["classes"] == " ".join(REGISTRY["integrity.terminal_output"].classes)


def test_report_without_exchanges_of_deselected_checks(pytester: pytest.Pytester) -> None:
    path = pytester.path / "r.json"
    pytester.runpytest("--conformance", "--conformance-cassettes", TOOL, "--conformance-checks", "lifecycle", "-p", "no:cacheprovider", "--conformance-report-json", str(path))
    report = load_report(path)
    validate(report)
    ids = {chk["id"] for chk in report["cassettes"][0]["checks"]}
    assert ids == {c for c in REGISTRY if c.startswith("lifecycle.")}


# ------------------------------------------------------------------ HTML


class _Findings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.findings: list[dict[str, str]] = []
        self.external: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if "finding" in (a.get("class") or "").split():
            self.findings.append({k: v or "" for k, v in a.items()})
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(str(a[key]))


def test_html_report_parses_and_shows_the_same_findings(cli_reports: Path) -> None:
    report = load_report(cli_reports / "fault.json")
    page = (cli_reports / "fault.html").read_text("utf-8")
    parser = _Findings()
    parser.feed(page)
    parser.close()
    assert "script" not in parser.tags and not parser.external, "self-contained: no scripts, no links"
    from_html = sorted((f["data-cassette"], f["data-check"], f["data-severity"], f["data-event-index"]) for f in parser.findings)
    from_json = sorted(
        (f["cassette_id"], f["check_id"], f["severity"], "" if f["event_index"] is None else str(f["event_index"])) for f in findings_of(report)
    )
    assert from_html == from_json and from_json
    assert "the terminal output has 0 items; 1 were streamed" in page
    assert "faulty bridge" in page
    assert "event: response.created" in page, "the raw stream is there"
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", page), "no control characters (invalid in HTML)"
    assert page == render_html(report)


def test_html_escapes_what_the_proxy_sent() -> None:
    report = load_report_fixture()
    report["cassettes"][0]["checks"][0]["findings"][0]["message"] = "<script>alert(1)</script>"
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_html_decodes_compressed_bodies_and_shows_binary_safely() -> None:
    import gzip

    report = load_report_fixture()
    body = gzip.compress(b'{"id":"resp_1","status":"completed"}')
    exchange = {
        "cassette_id": "c", "turn": 0, "url": "u", "request": {}, "request_headers": {}, "status": 200,
        "headers": {"Content-Encoding": "gzip"}, "chunks": [{"t_ms": 1.0, "b64": __import__("base64").b64encode(body).decode()}],
        "transport_error": None, "upstream_requests": [],
    }
    report["cassettes"][0]["exchanges"] = [exchange]
    report["cassettes"][0]["checks"][0]["findings"][0]["actual"] = "\x1f\x8b\x08\x00 raw"
    validate(report)
    page = render_html(report)
    assert "(Content-Encoding: gzip; decoded for this page)" in page
    assert "&quot;status&quot;:&quot;completed&quot;" in page
    assert "\\x1f\\x8b\\x08\\x00 raw" in page and "\x00" not in page


def load_report_fixture() -> dict[str, Any]:
    finding = {
        "check_id": "lifecycle.terminal_present", "severity": "error", "message": "m", "cassette_id": "c", "turn": 0,
        "event_index": 3, "raw": None, "pointer": None, "expected": None, "actual": None, "repro": None,
    }
    return {
        "report_format": 1, "runner": "cli", "started_at": None, "generated_at": "2026-01-01T00:00:00Z",
        "target": {"name": "t", "url": None, "command": None},
        "versions": {"harness": "0", "python": "3", "openai": "1"}, "profile": "openai", "fail_on": "error",
        "summary": {"ok": False, "cassettes": 1, "checks_run": 1, "passed": 0, "failed": 1, "xfailed": 0, "fixed": 0, "skipped": 0, "errors": 1, "warnings": 0, "notes": 0},
        "expectations": None, "load_errors": [],
        "checks": {"lifecycle.terminal_present": {"group": "lifecycle", "summary": "s", "classes": ["S1"], "severity": "error"}},
        "cassettes": [{"id": "c", "error": None, "exchanges": [], "checks": [{"id": "lifecycle.terminal_present", "outcome": "fail", "skipped": None, "findings": [finding]}]}],
    }


def test_fixture_report_is_valid() -> None:
    validate(load_report_fixture())


# ------------------------------------------------------------------ matrix


@pytest.mark.slow
def test_matrix_command_prints_and_writes_markdown(cli_reports: Path, tmp_path: Path) -> None:
    out = tmp_path / "matrix.md"
    proc = cli("report", "matrix", str(cli_reports / "clean.json"), str(cli_reports / "fault.json"), "-o", str(out))
    assert proc.returncode == 0, proc.stdout
    assert "faulty bridge" in proc.stdout and "integrity.terminal_output" in proc.stdout
    md = out.read_text("utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| `integrity.terminal_output`"))
    assert row.endswith("| ✓ | ✗ 2/2 |")
    assert "| check | classes | reference bridge | faulty bridge |" in md
    ran = {chk["id"] for c in load_report(cli_reports / "clean.json")["cassettes"] for chk in c["checks"] if chk["outcome"] != "skip"}
    n = len(ran)
    assert md.splitlines()[-1] == f"| **checks passed** | | **{n}/{n}** | **{n - 1}/{n}** |"


@pytest.mark.slow
def test_matrix_default_output_and_bad_input(cli_reports: Path, tmp_path: Path) -> None:
    proc = cli("report", "matrix", str(cli_reports / "clean.json"))
    assert proc.returncode == 0
    assert (cli_reports / "matrix.md").exists()
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}', "utf-8")
    proc = cli("report", "matrix", str(bad))
    assert proc.returncode == 2
    assert proc.stdout.strip() == f"error: {bad}: not a responses-conformance report of format 1 (report_format None)"


def test_matrix_cells() -> None:
    r = load_report_fixture()
    r2 = json.loads(json.dumps(r))
    r2["target"]["name"] = "t"
    r2["cassettes"][0]["checks"][0]["outcome"] = "skip"
    m = build_matrix([r, r2])
    assert m.targets == ["t", "t (2)"]
    assert m.rows == [("lifecycle.terminal_present", "S1", ["✗ 1/1", "–"])]
    assert m.passed == [(0, 1), (0, 0)]
    assert "| `lifecycle.terminal_present` | S1 | ✗ 1/1 | – |" in matrix_markdown(m)


# ------------------------------------------------------------------ the CI example


ROOT = Path(__file__).resolve().parents[2]


def test_readme_shows_the_github_actions_example_verbatim() -> None:
    example = (ROOT / "examples" / "github-actions.yml").read_text("utf-8")
    assert f"```yaml\n{example}```" in (ROOT / "README.md").read_text("utf-8")


def test_github_actions_example_uses_real_options() -> None:
    from conformance.options import OPTIONS

    example = (ROOT / "examples" / "github-actions.yml").read_text("utf-8")
    known = {o.pytest_flag for o in OPTIONS} | {"--junitxml"}  # the example runs pytest
    used = {word.split("=")[0] for line in example.splitlines() for word in line.split() if word.startswith("--") and "pytest" not in word}
    harness_flags = {w for w in used if w.startswith(("--conformance-", "--junit"))}
    assert harness_flags and harness_flags <= known
