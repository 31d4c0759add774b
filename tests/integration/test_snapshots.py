"""Snapshots of normalised exchanges (syrupy), as a proxy project uses them: through pytester,
and through ``responses-conformance run --snapshot-dir`` (the snapshot sink), in the same files."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from conformance import cli
from conformance.exchange import Chunk, Exchange, TransportError
from conformance.options import OutputSettings
from conformance.report import snapshot
from conformance.report.sink import Output
from conformance.report.snapshot import diff_lines
from conformance.resources import cassettes_dir
from conformance.run_report import CassetteResult, RunReport, Target
from conformance.snapshots import normalise_exchanges

pytest_plugins = ["pytester"]

TOOL = cassettes_dir() / "tools" / "openai-tool-call.json"
TEXT = cassettes_dir() / "usage" / "openai-text-include-usage.json"


# ------------------------------------------------------------------ normalising


def _exchange(body: str, **kw: object) -> Exchange:
    ex = Exchange(
        cassette_id="c",
        turn=0,
        url="http://127.0.0.1:1/v1/responses",
        request={"model": "m", "input": "hi", "stream": True},
        status=200,
        headers={"Content-Type": "text/event-stream", "Date": "Sat, 21 Nov 2026", "x-request-id": "req_9", "Content-Length": "12"},
        chunks=[Chunk(3.5, body.encode()[:10]), Chunk(9.25, body.encode()[10:])],
    )
    for k, v in kw.items():
        setattr(ex, k, v)
    return ex


def test_ids_become_placeholders_that_keep_prefix_and_identity() -> None:
    body = (
        'event: response.created\ndata: {"type":"response.created","response":{"id":"resp_abc","created_at":1795297608,"output":[]}}\n\n'
        'data: {"type":"response.output_item.added","item":{"id":"msg_x1","type":"message"},"obfuscation":"Zq9"}\n\n'
        'data: {"type":"response.output_text.delta","item_id":"msg_x1","delta":"hi 0b3f6e7a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}\n\n'
        'data: {"type":"response.completed","response":{"id":"resp_abc","completed_at":1795297609,"previous_response_id":null}}\n\n'
        "data: [DONE]\n\n"
    )
    snap = normalise_exchanges([_exchange(body, upstream_requests=[{"method": "POST", "path": "/v1/chat/completions", "t": 17.5, "body": {"user": "resp_abc"}}])])
    turn = snap["turns"][0]
    assert turn["headers"] == {"content-type": "text/event-stream"}, "date, ids and lengths are not kept"
    events = turn["events"]
    assert events[0].startswith('event: response.created data: {"type":"response.created","response":{"id":"resp_<1>","created_at":"<timestamp>"')
    assert '"item":{"id":"msg_<2>","type":"message"},"obfuscation":"<obfuscation>"' in events[1]
    assert '"item_id":"msg_<2>","delta":"hi <3>"' in events[2], "same id, same placeholder; UUIDs in text too"
    assert '"id":"resp_<1>","completed_at":"<timestamp>","previous_response_id":null' in events[3]
    assert events[4] == "data: [DONE]"
    assert turn["upstream_requests"] == [{"method": "POST", "path": "/v1/chat/completions", "body": {"user": "resp_<1>"}}]
    assert "t_ms" not in json.dumps(snap)


def test_chunking_and_timing_do_not_matter_but_content_does() -> None:
    body = 'data: {"type":"response.created","response":{"id":"resp_1"}}\n\ndata: {"type":"response.completed","response":{"id":"resp_1"}}\n\n'
    a = _exchange(body)
    b = _exchange(body, chunks=[Chunk(100.0, body.encode())])
    c = _exchange(body.replace("resp_1", "resp_2"))
    assert normalise_exchanges([a]) == normalise_exchanges([b]) == normalise_exchanges([c])
    d = _exchange(body.replace("completed", "incomplete"))
    assert normalise_exchanges([a]) != normalise_exchanges([d])


def test_json_bodies_errors_and_transport_failures() -> None:
    ok = _exchange("", headers={"content-type": "application/json"}, chunks=[Chunk(1, b'{"id":"resp_9","status":"completed","created_at":5}')], mode="nonstream")
    assert normalise_exchanges([ok])["turns"][0]["body"] == {"id": "resp_<1>", "status": "completed", "created_at": "<timestamp>"}
    import gzip

    zipped = _exchange("", headers={"content-type": "application/json", "content-encoding": "gzip"}, chunks=[Chunk(1, gzip.compress(b'{"id":"resp_9"}', mtime=7))], mode="nonstream")
    assert normalise_exchanges([zipped])["turns"][0]["body"] == {"id": "resp_<1>"}
    cut = _exchange("", status=None, chunks=[], transport_error=TransportError("connect", "refused after 3 ms"))
    turn = normalise_exchanges([cut])["turns"][0]
    assert turn["transport_error"] == "connect" and "events" not in turn


# ------------------------------------------------------------------ the plugin


def _project(pytester: pytest.Pytester) -> list[str]:
    """A proxy project: its own ini and cassettes, so the rootdir (and the snapshots) are its own."""
    pytester.makeini("[pytest]\n")
    (pytester.path / "cassettes").mkdir()
    for path in (TOOL, TEXT):
        shutil.copy(path, pytester.path / "cassettes" / path.name)
    return ["--conformance-cassettes", "cassettes", "--conformance-checks", "lifecycle.terminal_present", "-p", "no:cacheprovider", "--conformance-snapshots"]


@pytest.mark.slow
def test_snapshot_lifecycle_missing_written_matched_changed(pytester: pytest.Pytester) -> None:
    args = _project(pytester)
    snap_dir = pytester.path / "__conformance_snapshots__"

    first = pytester.runpytest("--conformance", *args)
    first.assert_outcomes(passed=2, failed=2)
    first.stdout.fnmatch_lines(["*there is no stored snapshot yet: write it with --snapshot-update*", "*2 missing*"])

    update = pytester.runpytest("--conformance", *args, "--snapshot-update")
    update.assert_outcomes(passed=4)
    update.stdout.fnmatch_lines([f"*conformance snapshots in {snap_dir}: 2 created*"])
    stored = json.loads((snap_dir / "openai-tool-call.json").read_text("utf-8"))
    assert stored["cassette"] == "openai-tool-call"
    assert any("response.completed" in e for e in stored["turns"][0]["events"])
    assert not (Path(__file__).resolve().parents[2] / "__conformance_snapshots__").exists(), "never in the harness"

    again = pytester.runpytest("--conformance", *args)
    again.assert_outcomes(passed=4)
    again.stdout.fnmatch_lines(["*2 matched*"])

    faulty = pytester.runpytest("--conformance-reference-fault", "S1-drop-terminal", *args)
    assert faulty.ret == 1
    out = faulty.stdout.str()
    assert "FAILED conformance/openai-tool-call::snapshot" in out
    assert f"the normalised exchange of cassette openai-tool-call differs from {snap_dir / 'openai-tool-call.json'}" in out
    assert '-         "event: response.completed data: {' in out, "the diff names the event that went missing"

    accept = pytester.runpytest("--conformance-reference-fault", "S1-drop-terminal", *args, "--snapshot-update")
    accept.stdout.fnmatch_lines(["*2 updated*"])
    stored = json.loads((snap_dir / "openai-tool-call.json").read_text("utf-8"))
    assert not any("response.completed" in e for e in stored["turns"][0]["events"])


@pytest.mark.slow
def test_snapshots_under_xdist_and_a_custom_dir(pytester: pytest.Pytester) -> None:
    args = [*_project(pytester), "--conformance-snapshot-dir", "tests/snaps"]
    result = pytester.runpytest_subprocess("--conformance", *args, "--snapshot-update", "-n", "2")
    assert result.ret == 0
    assert sorted(p.name for p in (pytester.path / "tests" / "snaps").iterdir()) == ["openai-text-include-usage.json", "openai-tool-call.json"]
    result = pytester.runpytest_subprocess("--conformance", *args, "-n", "2")
    result.assert_outcomes(passed=4)


def test_no_snapshot_items_unless_asked(pytester: pytest.Pytester) -> None:
    args = [a for a in _project(pytester) if a != "--conformance-snapshots"]
    result = pytester.runpytest("--conformance", *args, "--snapshot-update")
    result.assert_outcomes(passed=2)
    assert not (pytester.path / "__conformance_snapshots__").exists()


def test_user_syrupy_snapshots_are_left_alone(pytester: pytest.Pytester) -> None:
    """A project's own syrupy tests next to ours: neither deletes nor reports the other's files."""
    args = _project(pytester)
    pytester.makepyfile(test_own="def test_own(snapshot):\n    assert snapshot == {'a': 1}\n")
    assert pytester.runpytest("--conformance", *args, "--snapshot-update").ret == 0
    result = pytester.runpytest("--conformance", *args)
    result.assert_outcomes(passed=5)
    assert (pytester.path / "__snapshots__" / "test_own.ambr").exists()
    assert (pytester.path / "__conformance_snapshots__" / "openai-tool-call.json").exists()


# ------------------------------------------------------------------ the CLI: the snapshot sink


# Changes every id of the stream (resp-… for resp_…) and fires only ids.prefixes: with the check
# left out, the snapshot is the only thing that sees the change.
RENAME = "I2-ids-without-prefixes"
QUIET = ["--checks", "lifecycle.terminal_present"]


def _cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
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
    code, out = _cli(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, *QUIET)
    assert code == 1, out
    assert f"no stored snapshot in {snaps} for 1 cassette (openai-tool-call): write it with --snapshot-update" in out
    assert "FAILED: 1 snapshot missing or different" in out
    assert f"conformance snapshots in {snaps}: 1 missing (accept with --snapshot-update)" in out
    assert not snaps.exists(), "like syrupy: nothing is written without --snapshot-update"

    code, out = _cli(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, "--snapshot-update", *QUIET)
    assert code == 0, out
    assert f"conformance snapshots in {snaps}: 1 created" in out
    stored = json.loads((snaps / "openai-tool-call.json").read_text("utf-8"))
    assert stored["cassette"] == "openai-tool-call"
    assert any(e.startswith("event: response.completed data: ") for e in stored["turns"][0]["events"])

    code, out = _cli(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, *QUIET)
    assert code == 0, out
    assert "PASSED" in out and f"conformance snapshots in {snaps}: 1 matched" in out
    assert "differs from" not in out


def test_a_changed_stream_fails_with_a_short_diff_until_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snaps = tmp_path / "snaps"
    report = tmp_path / "report.json"
    assert _cli(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, "--snapshot-update", *QUIET)[0] == 0
    before = (snaps / "openai-tool-call.json").read_text("utf-8")

    code, out = _cli(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, "--reference-fault", RENAME, *QUIET, "--report-json", report)
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

    code, out = _cli(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, "--reference-fault", RENAME, *QUIET, "--snapshot-update")
    assert code == 0, out
    assert f"conformance snapshots in {snaps}: 1 updated" in out
    assert "resp-<1>" not in before and "resp-<1>" in (snaps / "openai-tool-call.json").read_text("utf-8")


def test_snapshot_update_without_a_dir_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _cli(capsys, "--cassettes", TOOL, "--snapshot-update")
    assert code == 2
    assert out.strip() == "error: --snapshot-update needs --snapshot-dir DIR (where the snapshots are)"


def test_unusable_snapshot_files_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", "utf-8")
    code, out = _cli(capsys, "--cassettes", TOOL, "--snapshot-dir", blocker / "snaps", "--snapshot-update", *QUIET)
    assert code == 2, out
    assert "error: the snapshot sink could not write: " in out and "Traceback" not in out

    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "openai-tool-call.json").write_bytes(b"\xff\xfe not text")
    code, out = _cli(capsys, "--cassettes", TOOL, "--snapshot-dir", snaps, *QUIET)
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
    exchange = _exchange('data: {"type":"response.created"}\n\n')
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


@pytest.mark.slow
def test_snapshots_round_trip_between_pytest_and_the_cli(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """Accepted by pytest, matched by the CLI; accepted by the CLI, matched by pytest: one format."""
    args = [a for a in _project(pytester) if a != "--conformance-snapshots"]
    snaps = pytester.path / "__conformance_snapshots__"
    cassettes = str(pytester.path / "cassettes")

    written = pytester.runpytest("--conformance", *args, "--conformance-snapshots", "--snapshot-update")
    written.assert_outcomes(passed=4)
    assert sorted(p.name for p in snaps.iterdir()) == ["openai-text-include-usage.json", "openai-tool-call.json"]

    code, out = _cli(capsys, "--cassettes", cassettes, "--snapshot-dir", snaps, *QUIET)
    assert code == 0, out
    assert f"conformance snapshots in {snaps}: 2 matched" in out

    code, out = _cli(capsys, "--cassettes", cassettes, "--snapshot-dir", snaps, "--reference-fault", RENAME, *QUIET, "--snapshot-update")
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
