"""The matrix sink (``--report-matrix DIR``): each run adds or replaces its own column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import cli
from conformance.report.data import load_report
from conformance.resources import cassettes_dir

pytest_plugins = ["pytester"]

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")
FAULT = "R1-empty-completed-output"  # fires integrity.terminal_output, and nothing else
CHECK = "integrity.terminal_output"


def rows(md: str) -> dict[str, list[str]]:
    """``{check id: its cells, one per target}`` of the matrix's Markdown table."""
    out = {}
    for line in md.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0].strip("`")] = cells[2:]
    return out


def failing_in(md: str, column: int) -> set[str]:
    return {check for check, cells in rows(md).items() if cells[column].startswith("✗")}


def test_two_runs_into_one_dir_make_two_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "matrix"
    assert cli.main(["run", "--cassettes", TOOL, "--target-name", "clean bridge", "--report-matrix", str(d)]) == 0
    out = capsys.readouterr().out
    assert f"report written: {d / 'clean-bridge.json'}" in out and f"report written: {d / 'matrix.md'}" in out
    assert cli.main(["run", "--cassettes", TOOL, "--reference-fault", FAULT, "--target-name", "Faulty Bridge", "--report-matrix", str(d)]) == 1
    assert f"report written: {d / 'matrix.html'}" in capsys.readouterr().out
    assert sorted(p.name for p in d.iterdir()) == ["clean-bridge.json", "faulty-bridge.json", "matrix.html", "matrix.md"]

    md = (d / "matrix.md").read_text("utf-8")
    assert "| check | classes | clean bridge | Faulty Bridge |" in md
    assert failing_in(md, 0) == set() and failing_in(md, 1) == {CHECK}
    assert rows(md)[CHECK] == ["✓", "✗ 1/1"]
    page = (d / "matrix.html").read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<th>Faulty Bridge</th>" in page

    # the saved report is the --report-json document, readable by `report matrix`
    saved = load_report(d / "faulty-bridge.json")
    assert saved["target"]["name"] == "Faulty Bridge" and not saved["summary"]["ok"]

    # a run of a target already in DIR replaces its column: the fault is gone from it
    assert cli.main(["run", "--cassettes", TOOL, "--target-name", "Faulty Bridge", "--report-matrix", str(d)]) == 0
    md = (d / "matrix.md").read_text("utf-8")
    assert "| check | classes | clean bridge | Faulty Bridge |" in md
    assert failing_in(md, 1) == set()


def test_the_command_and_the_sink_write_the_same_matrix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "m"
    assert cli.main(["run", "--cassettes", TOOL, "--report-matrix", str(d)]) == 0
    assert cli.main(["run", "--cassettes", TOOL, "--reference-fault", FAULT, "--report-matrix", str(d)]) == 1
    by_sink = (d / "matrix.md").read_text("utf-8")
    reports = sorted(str(p) for p in d.glob("*.json"))
    out = tmp_path / "cmd" / "matrix.md"
    assert cli.main(["report", "matrix", *reports, "-o", str(out)]) == 0
    assert out.read_text("utf-8") == by_sink
    assert out.with_suffix(".html").read_text("utf-8") == (d / "matrix.html").read_text("utf-8")


@pytest.mark.slow
def test_under_pytest_the_run_adds_its_column(tmp_path: Path, pytester: pytest.Pytester) -> None:
    d = tmp_path / "matrix"
    assert cli.main(["run", "--cassettes", TOOL, "--target-name", "clean", "--report-matrix", str(d)]) == 0
    result = pytester.runpytest(
        "--conformance-cassettes", TOOL, "--conformance-reference-fault", FAULT, "-p", "no:cacheprovider",
        "--conformance-target-name", "faulty", "--conformance-report-matrix", str(d),
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*report written: {d / 'matrix.md'}*"])
    md = (d / "matrix.md").read_text("utf-8")
    assert "| check | classes | clean | faulty |" in md
    assert failing_in(md, 0) == set() and failing_in(md, 1) == {CHECK}
    assert json.loads((d / "faulty.json").read_text("utf-8"))["runner"] == "pytest"

    # a DIR that is a file: the same one line under pytest, and a usage exit (4) as the CLI's 2
    f = tmp_path / "a-file"
    f.write_text("a file", "utf-8")
    result = pytester.runpytest("--conformance-cassettes", TOOL, "-p", "no:cacheprovider", "--conformance", "--conformance-report-matrix", str(f))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"error: the matrix_dir sink could not write: --report-matrix {f}: is a file, not a directory"])
    assert "Traceback" not in result.stdout.str() and f.read_text("utf-8") == "a file"


def test_one_column_per_target_even_with_its_report_json_in_dir(tmp_path: Path) -> None:
    d = tmp_path / "m"
    argv = ["run", "--cassettes", TOOL, "--target-name", "bridge", "--report-matrix", str(d)]
    assert cli.main([*argv, "--report-json", str(d / "bridge-ci-run.json")]) == 0
    # the --report-json, the fake upstream's address beside it (no report: passed over), this sink's
    assert sorted(p.name for p in d.glob("*.json")) == ["bridge-ci-run.json", "bridge-ci-run.upstream.json", "bridge.json"]
    assert "| check | classes | bridge |" in (d / "matrix.md").read_text("utf-8")


def test_a_dir_that_is_a_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "matrix"
    f.write_text("a file", "utf-8")
    assert cli.main(["run", "--cassettes", TOOL, "--report-matrix", str(f)]) == 2
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if "error" in line.lower()]
    assert errors == [f"error: the matrix_dir sink could not write: --report-matrix {f}: is a file, not a directory"]
    assert "Traceback" not in out and f.read_text("utf-8") == "a file"


def test_other_json_in_dir_is_passed_over_and_an_unreadable_report_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "expectations.json").write_text('{"version": 1, "known_failures": []}', "utf-8")
    assert cli.main(["run", "--cassettes", TOOL, "--report-matrix", str(d)]) == 0
    assert "| check | classes | reference bridge |" in (d / "matrix.md").read_text("utf-8")
    capsys.readouterr()
    (d / "future.json").write_text('{"report_format": 99}', "utf-8")
    assert cli.main(["run", "--cassettes", TOOL, "--report-matrix", str(d)]) == 2
    out = capsys.readouterr().out
    assert f"{d / 'future.json'}: not a responses-conformance report of format 1 (report_format 99)" in out
    assert "Traceback" not in out
