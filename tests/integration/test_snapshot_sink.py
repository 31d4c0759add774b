"""The snapshot sink: ``responses-conformance run --snapshot-dir DIR`` keeps the same snapshots as
``pytest --conformance-snapshots``, in the same files, with syrupy's semantics (a missing or
different snapshot fails unless ``--snapshot-update``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import cli
from conformance.report.snapshot import diff_lines
from conformance.resources import cassettes_dir
from conformance.run_report import RunReport

pytest_plugins = ["pytester"]

TOOL = cassettes_dir() / "tools" / "openai-tool-call.json"
TEXT = cassettes_dir() / "usage" / "openai-text-include-usage.json"
# Changes every id of the stream (resp-… for resp_…) and fires only ids.prefixes: with the check
# left out, the snapshot is the only thing that sees the change.
RENAME = "I2-ids-without-prefixes"
QUIET = ["--checks", "lifecycle.terminal_present"]


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = cli.main(["run", *(str(a) for a in args)])
    return code, capsys.readouterr().out


def _diff_of(out: str, cassette: str) -> list[str]:
    """The diff lines the sink printed under its header for ``cassette``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"snapshot {cassette} differs from "))
    end = next(i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("-", "+", " ", "@", "…"))
    return lines[start + 1 : end]


def test_missing_fails_until_written_then_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snaps = tmp_path / "snaps"
    code, out = _run(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, *QUIET)
    assert code == 1, out
    assert f"no stored snapshot in {snaps} for 1 cassette (openai-tool-call): write it with --snapshot-update" in out
    assert "FAILED: 1 snapshot missing or different" in out
    assert f"conformance snapshots in {snaps}: 1 missing (accept with --snapshot-update)" in out
    assert not snaps.exists(), "like syrupy: nothing is written without --snapshot-update"

    code, out = _run(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, "--snapshot-update", *QUIET)
    assert code == 0, out
    assert f"conformance snapshots in {snaps}: 1 created" in out
    stored = json.loads((snaps / "openai-tool-call.json").read_text("utf-8"))
    assert stored["cassette"] == "openai-tool-call"
    assert any(e.startswith("event: response.completed data: ") for e in stored["turns"][0]["events"])

    code, out = _run(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, *QUIET)
    assert code == 0, out
    assert "PASSED" in out and f"conformance snapshots in {snaps}: 1 matched" in out
    assert "differs from" not in out


def test_a_changed_stream_fails_with_a_short_diff_until_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snaps = tmp_path / "snaps"
    report = tmp_path / "report.json"
    assert _run(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, "--snapshot-update", *QUIET)[0] == 0
    before = (snaps / "openai-tool-call.json").read_text("utf-8")

    code, out = _run(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, "--reference-fault", RENAME, *QUIET, "--report-json", report)
    assert code == 1, out  # no finding at all: the snapshot alone fails the run
    assert "no findings" in out and "FAILED: 1 snapshot missing or different" in out
    assert f"snapshot openai-tool-call differs from {snaps / 'openai-tool-call.json'} (accept with --snapshot-update):" in out
    diff = _diff_of(out, "openai-tool-call")
    assert diff[0].startswith("@@ -")
    assert 5 <= len(diff) <= 40 and all(len(line) <= 80 for line in diff), diff
    assert any(line.startswith("-") and '"id\\":\\"resp_<1>\\"' in line for line in diff), diff
    assert any(line.startswith("+") and '"id\\":\\"resp-<1>\\"' in line for line in diff), diff
    assert (snaps / "openai-tool-call.json").read_text("utf-8") == before, "not written without --snapshot-update"
    doc = json.loads(report.read_text("utf-8"))
    assert doc["summary"]["ok"] is False and doc["summary"]["failed"] == 0
    assert doc["snapshots"] == {"dir": str(snaps), "states": {"openai-tool-call": "different"}}
    assert RunReport.from_json(doc).snapshot_failures == ["openai-tool-call"]

    code, out = _run(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, "--reference-fault", RENAME, *QUIET, "--snapshot-update")
    assert code == 0, out
    assert f"conformance snapshots in {snaps}: 1 updated" in out
    assert "resp-<1>" not in before and "resp-<1>" in (snaps / "openai-tool-call.json").read_text("utf-8")


def _project(pytester: pytest.Pytester) -> list[str]:
    pytester.makeini("[pytest]\n")
    (pytester.path / "cassettes").mkdir()
    for path in (TOOL, TEXT):
        shutil.copy(path, pytester.path / "cassettes" / path.name)
    return ["--conformance-cassettes", "cassettes", "--conformance-checks", "lifecycle.terminal_present", "-p", "no:cacheprovider"]


@pytest.mark.slow
def test_snapshots_round_trip_between_pytest_and_the_cli(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """Accepted by pytest, matched by the CLI; accepted by the CLI, matched by pytest: one format."""
    args = _project(pytester)
    snaps = pytester.path / "__snapshots__" / "responses-conformance"
    cassettes = str(pytester.path / "cassettes")

    written = pytester.runpytest("--conformance", *args, "--conformance-snapshots", "--snapshot-update")
    written.assert_outcomes(passed=4)
    assert sorted(p.name for p in snaps.iterdir()) == ["openai-text-include-usage.json", "openai-tool-call.json"]

    code, out = _run(capsys, "--cassettes", cassettes, "--snapshot-dir", snaps, *QUIET)
    assert code == 0, out
    assert f"conformance snapshots in {snaps}: 2 matched" in out

    code, out = _run(capsys, "--cassettes", cassettes, "--snapshot-dir", snaps, "--reference-fault", RENAME, *QUIET, "--snapshot-update")
    assert code == 0, out
    assert f"conformance snapshots in {snaps}: 2 updated" in out

    faulty = pytester.runpytest("--conformance-reference-fault", RENAME, *args, "--conformance-snapshots")
    faulty.assert_outcomes(passed=4)
    faulty.stdout.fnmatch_lines([f"*conformance snapshots in {snaps}: 2 matched*"])

    clean = pytester.runpytest("--conformance", *args, "--conformance-snapshots")
    clean.assert_outcomes(passed=2, failed=2)
    out = clean.stdout.str()
    # under pytest the sink stays quiet: the failing items are the report, each snapshot once
    assert out.count("conformance snapshots in ") == 1 and "2 different (accept with --snapshot-update)" in out
    assert "FAILED: 2 snapshots missing or different" in out
    assert f"snapshot openai-tool-call differs from {snaps}" not in out


def test_snapshot_update_without_a_dir_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "--cassettes", TOOL, "--snapshot-update")
    assert code == 2
    assert out.strip() == "error: --snapshot-update needs --snapshot-dir DIR (where the snapshots are)"


def test_unusable_snapshot_files_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", "utf-8")
    code, out = _run(capsys, "--cassettes", TOOL, "--snapshot-dir", blocker / "snaps", "--snapshot-update", *QUIET)
    assert code == 2, out
    assert "error: the snapshot sink could not write: " in out and "Traceback" not in out

    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "openai-tool-call.json").write_bytes(b"\xff\xfe not text")
    code, out = _run(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, *QUIET)
    assert code == 2, out
    assert f"error: the snapshot sink could not write: --snapshot-dir: {snaps / 'openai-tool-call.json'} is not UTF-8 text" in out


def test_the_cli_loads_syrupy_only_for_snapshots() -> None:
    code = (
        "import sys; from conformance import cli\n"
        f"code = cli.main(['run', '--cassettes', {str(TOOL)!r}, '--checks', 'lifecycle.terminal_present'])\n"
        "print(code, sorted(m for m in ('syrupy', 'pytest', 'conformance.snapshots') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.splitlines()[-1] == "0 []", out


def test_the_sink_leaves_pytest_runs_to_the_snapshot_items(tmp_path: Path) -> None:
    """Under pytest the items compare (and fail with syrupy's diff); the sink must not do it twice."""
    import io

    from rich.console import Console

    from conformance.exchange import Chunk, Exchange
    from conformance.options import OutputSettings
    from conformance.report import snapshot
    from conformance.report.sink import Output
    from conformance.run_report import CassetteResult, Target

    exchange = Exchange(cassette_id="c", turn=0, url="http://127.0.0.1:1/v1/responses", request={"input": "hi"}, status=200,
                        headers={"content-type": "application/json"}, chunks=[Chunk(1.0, b'{"id":"resp_1"}')])
    out = Output(Console(file=io.StringIO(), width=80), OutputSettings(snapshot_dir=str(tmp_path / "s")))
    for runner, states in (("pytest", {}), ("cli", {"c": "missing"})):
        report = RunReport(target=Target("t", None, None), profile="openai", results=[CassetteResult("c", [exchange], {})], runner=runner)
        assert snapshot.write(report, out) == []
        assert report.snapshots == states
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------ the diff, bounded


def _snapshot(events: list[str]) -> str:
    return json.dumps({"cassette": "c", "turns": [{"events": events}]}, indent=2) + "\n"


def test_the_diff_is_bounded_and_cut_around_the_change() -> None:
    head = '{"type":"response.output_text.delta","sequence_number":7,"item_id":"msg_<2>","output_index":0,"content_index":0,'
    old = _snapshot([f"event: e{n} data: {head}\"delta\":\"word {n}\"}}" for n in range(200)])
    new = old.replace('"word 3\\"', '"WORD 3\\"')
    diff = diff_lines(old, new)
    assert diff[0].startswith("@@ ")
    removed = next(line for line in diff if line.startswith("-"))
    added = next(line for line in diff if line.startswith("+"))
    assert "word 3" in removed and "WORD 3" in added, "the window shows the change, not the line's start"
    assert removed.startswith("-…") and added.startswith("+…") and removed.index("word") == added.index("WORD")
    assert all(len(line) <= 80 for line in diff)

    everything = diff_lines(old, old.replace("word", "WORD"))
    assert len(everything) == 40 and everything[-1].startswith("… ") and everything[-1].endswith(" more diff lines")
    assert diff_lines(old, old) == []
