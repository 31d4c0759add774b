"""``--clients`` in the one pipeline: every exchange replayed into real clients, under the CLI
(``run``, ``check FILE``) and pytest; what they did lands in the report and in each finding."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance import cli
from conformance.exchange import Chunk, Exchange, Finding, FindingImpact, Outcome, Severity
from conformance.resources import cassettes_dir
from conformance.run_report import (
    CassetteResult,
    RunReport,
    Target,
    client_summary,
    impact_by_check,
)

pytest.importorskip("openai", reason="the clients extra is not installed")

pytest_plugins = ["pytester"]

LENGTH = str(cassettes_dir() / "finish" / "openai-length-max-output-tokens.json")
PYTHON = (
    "openai-python.raw",
    "openai-python.stream",
    "openai-python.raw-strict",
    "openai-python.stream-strict",
    "openai-python.nonstream",
    "openai-agents",
    "langchain",
)


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    out = tmp_path / "report.json"
    code = cli.main(["run", "--clients", "python", "--report-json", str(out), *options])
    return code, capsys.readouterr().out, json.loads(out.read_text("utf-8"))


@pytest.mark.slow
def test_reference_bridge_is_ok_for_every_python_client_on_every_cassette(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, report = _run(tmp_path, capsys)
    assert code == 0, text
    cassettes = len(report["cassettes"])
    assert cassettes >= 60
    summary = report["clients"]["summary"]
    assert report["clients"]["selected"] == list(PYTHON)
    for name in PYTHON:
        assert summary[name]["failed"] == 0, summary[name]["failures"]
        assert summary[name]["cassettes"] > 0
    # openai-python's raw iteration takes every exchange: it ran on every cassette
    assert summary["openai-python.raw"]["cassettes"] == cassettes
    for cassette in report["cassettes"]:
        for exchange in cassette["exchanges"]:
            verdicts = {v["client"]: v["verdict"] for v in exchange["clients"]}
            assert verdicts and set(verdicts) <= set(PYTHON)  # each client on the exchanges of its mode
            assert set(verdicts.values()) <= {"ok", "skipped"}, (cassette["id"], exchange["clients"])
    assert f"openai-python.stream: ok on all {summary['openai-python.stream']['cassettes']} cassettes" in text


def test_a_client_breaking_fault_names_the_clients_and_how(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finish reason length served as `completed`: each openai-python mode shows `completed` (LOSS)."""
    code, text, report = _run(tmp_path, capsys, "--cassettes", LENGTH, "--reference-fault", "F1-length-as-completed")
    assert code == 1, text
    failures = report["clients"]["summary"]["openai-python.stream"]["failures"]
    assert failures == [
        {
            "cassette_id": "openai-length-max-output-tokens",
            "verdict": "LOSS",
            "message": 'status: expected "incomplete", got "completed"',
        }
    ]
    assert report["clients"]["summary"]["openai-python.raw"]["failed"] == 1
    assert 'openai-python.stream: 1 of 1 cassettes fail: openai-length-max-output-tokens (LOSS: status: expected "incomplete"' in text
    findings = [f for c in report["cassettes"] for chk in c["checks"] for f in chk["findings"]]
    status = [f for f in findings if f["check_id"] == "oracle.status"]
    assert status
    for f in status:
        impact = f["impact"]
        assert impact["source"] == "live" and impact["level"] == "error"
        assert "openai-python.stream" in impact["clients"] and impact["verdicts"]["openai-python.stream"] == "LOSS"
        assert impact["summary"].startswith("breaks openai-python.")
    flat = " ".join(text.split())  # the verdict names the measured clients that break, and how
    assert "clients that break: " in flat and "openai-python.stream (LOSS)" in flat
    assert impact_by_check(RunReport.from_json(report))["oracle.status"]["openai-python.raw"] == "LOSS"
    # the report document still follows its schema, clients and impact included
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parents[2] / "schemas" / "report.schema.json").read_text("utf-8"))
    jsonschema.validate(report, schema)


def test_without_clients_a_finding_carries_the_lab_tables_impact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code = cli.main(["run", "--cassettes", LENGTH, "--reference-fault", "S2-no-output-item-added", "--report-json", str(out)])
    text = capsys.readouterr().out
    assert code == 1, text
    report = json.loads(out.read_text("utf-8"))
    assert report["clients"] is None
    impacts = [
        f["impact"] for c in report["cassettes"] for chk in c["checks"] for f in chk["findings"]
        if f["check_id"] == "items.event_targets_open_item"
    ]
    assert impacts and all(i["source"] == "table" and i["level"] in ("error", "warning", "note") for i in impacts)
    # the verdict names the clients the lab table says break on this defect
    assert "clients that break: " in text and "openai-python.stream (ERR)" in " ".join(text.split())


def test_check_file_with_clients(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check FILE --clients`: a saved stream whose text delta names no open item."""
    events = [
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "object": "response", "created_at": 1, "status": "in_progress", "model": "m", "output": []}},
        {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "hi"},
        {"type": "response.completed", "sequence_number": 2, "response": {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "m", "output": []}},
    ]
    sse = tmp_path / "stream.sse"
    sse.write_text("".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events), "utf-8")
    out = tmp_path / "result.json"
    code = cli.main(["check", str(sse), "--clients", "openai-python.raw,openai-python.stream", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 1, text
    verdicts = json.loads(out.read_text("utf-8"))["exchanges"][0]["clients"]
    assert [v["client"] for v in verdicts] == ["openai-python.raw", "openai-python.stream"]
    assert "── clients" in text or "clients" in text
    assert "openai-python.raw:" in text and "openai-python.stream:" in text
    assert cli.main(["check", str(sse), "--clients", "nosuch"]) == 2
    line = capsys.readouterr().out
    assert line.startswith("error: --clients: unknown client 'nosuch'") and line.count("\n") == 1


def test_pytest_junit_carries_the_measured_impact(pytester: pytest.Pytester) -> None:
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "--conformance-clients", "openai-python.stream",
        "--conformance-cassettes", LENGTH,
        "--conformance-reference-fault", "F1-length-as-completed",
        "--conformance-checks", "oracle.status",
        f"--junitxml={junit}", "-p", "no:cacheprovider",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*impact:   error (measured): breaks openai-python.stream (LOSS: status*"])
    result.stdout.fnmatch_lines(["openai-python.stream: 1 of 1 cassettes fail: openai-length-max-output-tokens (LOSS*"])
    cases = ET.parse(junit).getroot().iter("testcase")
    props = {p.get("name"): p.get("value") for case in cases for p in case.iter("property") if case.find("failure") is not None}
    assert props["impact"].startswith("error (measured): breaks openai-python.stream (LOSS: status")


def test_summary_and_impact_mapping_from_a_report() -> None:
    def ex(turn: int) -> Exchange:
        return Exchange(cassette_id="c", turn=turn, url="u", request={}, request_headers={}, status=200, headers={}, chunks=[Chunk(0.0, b"")])

    live = FindingImpact("error", ("a",), "breaks a", "live", {"a": "ERR", "b": "ok"})
    table = FindingImpact("warning", ("b",), "breaks only", "table", {"a": "ok", "b": "LOSS"})
    findings = [Finding("x.one", Severity.ERROR, "m", "c", 0, impact=live), Finding("x.one", Severity.ERROR, "m", "c", 1, impact=table)]
    result = CassetteResult("c", [ex(0), ex(1)], {"x.one": Outcome(findings), "x.two": Outcome([])})
    result.clients = {0: [{"client": "a", "verdict": "ERR", "message": "boom"}, {"client": "b", "verdict": "ok", "message": ""}],
                      1: [{"client": "a", "verdict": "LOSS", "message": "lost"}, {"client": "b", "verdict": "skipped", "message": "n/a"}]}
    report = RunReport(Target("t"), "openai", [result], clients=["a", "b"])
    assert impact_by_check(report) == {"x.one": {"a": "ERR", "b": "LOSS"}}
    assert client_summary(report.results) == {
        "a": {"cassettes": 1, "failed": 1, "failures": [{"cassette_id": "c", "verdict": "ERR", "message": "boom"}]},
        "b": {"cassettes": 1, "failed": 0, "failures": []},
    }
    back = RunReport.from_json(json.loads(json.dumps(report.to_json())))
    assert back.clients == ["a", "b"] and back.results[0].clients == result.clients
    assert back.results[0].outcomes["x.one"].findings[0].impact == live
