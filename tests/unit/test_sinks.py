"""A sink added in one place works under ``responses-conformance run`` and under pytest alike."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import conformance.report
from conformance import cli
from conformance.report.sink import Output, Sink
from conformance.resources import cassettes_dir
from conformance.run_report import RunReport

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")
FAULT = "R1-empty-completed-output"  # fires integrity.terminal_output


def csv_sink(path: Path) -> Sink:
    """A whole sink: one row per cassette × check, with its verdict and number of findings."""

    def write(report: RunReport, out: Output) -> list[Path]:
        with path.open("w", newline="", encoding="utf-8") as f:
            rows = csv.writer(f)
            rows.writerow(["target", "cassette", "check", "verdict", "findings"])
            for result in report.results:
                for check_id, outcome in sorted(result.outcomes.items()):
                    verdict = report.verdict(result.cassette_id, check_id, outcome).value
                    rows.writerow([report.target.name, result.cassette_id, check_id, verdict, len(outcome.findings)])
        return [path]

    return write


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.open(encoding="utf-8")))


@pytest.fixture
def csv_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "out.csv"
    monkeypatch.setattr(conformance.report, "SINKS", [*conformance.report.SINKS, csv_sink(path)])  # the one line
    return path


def test_new_sink_runs_under_the_cli_and_under_pytest(
    csv_path: Path, pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", "--cassettes", TOOL, "--reference-fault", FAULT]) == 1
    assert f"report written: {csv_path}" in capsys.readouterr().out
    from_cli = _rows(csv_path)
    csv_path.unlink()

    result = pytester.runpytest("--conformance-cassettes", TOOL, "--conformance-reference-fault", FAULT, "-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*report written: {csv_path}*"])
    from_pytest = _rows(csv_path)

    assert from_cli == from_pytest  # one pipeline: the same rows whoever ran it
    assert from_cli[0] == ["target", "cassette", "check", "verdict", "findings"]
    fired = next(r for r in from_cli if r[2] == "integrity.terminal_output")
    assert fired[:4] == ["reference bridge with faults " + FAULT, "openai-tool-call", "integrity.terminal_output", "fail"]
    assert len(from_cli) == 1 + len(conformance.REGISTRY)


def test_sinks_run_under_pytest_without_report_options(csv_path: Path, pytester: pytest.Pytester) -> None:
    """No --report-json/--report-html: the sinks still run (there used to be an early return)."""
    result = pytester.runpytest("--conformance-cassettes", TOOL, "--conformance", "-p", "no:cacheprovider", "-k", "lifecycle")
    assert result.ret == 0
    rows = _rows(csv_path)
    assert rows[1:] and all(r[3] == "pass" or r[3] == "skip" for r in rows[1:])
    assert {r[2].split(".")[0] for r in rows[1:]} == {"lifecycle"}  # only what ran as tests
