"""``fuzz`` end to end on real HTTP: the clean reference bridge gives nothing, each fault of the
tool-call, argument, text-integrity, usage and finish-reason classes is found within 300 examples
and shrunk to a cassette of at most 10 chunks, which then replays as a normal cassette."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.cassette import load_cassette
from conformance.cli import main
from conformance.commands.fuzz import assert_no_problems, run_fuzz
from conformance.reference import FAULTS

pytestmark = pytest.mark.slow

# fault -> the check its problem must be under. One fault per class runs in the suite (see
# REPRESENTATIVE); the sweep over all of them is `python benchmarks/bench_fuzz.py --faults`.
FAULT_CHECK = {
    "T2-first-name-fragment-only": "oracle.tool_calls",
    "T4-argument-fragment-lost": "oracle.tool_calls",
    "T4-cumulative-arguments": "integrity.arguments_concat",
    "I3-call-id-reminted": "oracle.tool_calls",
    "X2-upstream-text-lost": "oracle.text",
    "X2-strip-done-text": "integrity.text_concat",
    "X2-per-read-decoding": "oracle.text",
    "U1-usage-dropped": "oracle.usage",
    "F1-length-as-completed": "oracle.status",
}


def test_clean_reference_bridge_has_no_findings(tmp_path: Path) -> None:
    report = run_fuzz(examples=150, seed=7, out=tmp_path / "found", database=None)
    assert [p.message for p in report.problems] == []
    assert report.examples == 150
    assert report.exchanges >= 150
    assert not (tmp_path / "found").exists()


REPRESENTATIVE = (
    "T2-first-name-fragment-only",  # tool-call header
    "T4-argument-fragment-lost",  # arguments
    "X2-per-read-decoding",  # text integrity (no shipped cassette needed to find it)
    "U1-usage-dropped",  # usage
    "F1-length-as-completed",  # finish reason
)


@pytest.mark.parametrize("fault", REPRESENTATIVE)
def test_fault_is_found_and_shrunk(tmp_path: Path, fault: str) -> None:
    assert fault in FAULTS
    report = run_fuzz(faults=[fault], examples=300, seed=1, out=tmp_path, database=None)
    mine = [p for p in report.problems if p.check_id == FAULT_CHECK[fault]]
    assert mine, [p.message for p in report.problems]
    problem = min(mine, key=lambda p: p.first_seen)
    assert problem.first_seen <= 300
    assert problem.cassette is not None and problem.cassette.exists()
    assert problem.chunks <= 10, problem.cassette.read_text()
    assert problem.replayed is True
    cassette = load_cassette(problem.cassette)
    assert cassette.provenance["source"] == "generated"
    assert cassette.provenance["problem"]["check_id"] == FAULT_CHECK[fault]
    assert cassette.provenance["seed"] == 1


def test_cli_exit_codes_and_report(tmp_path: Path) -> None:
    out = tmp_path / "found"
    args = ["fuzz", "--examples", "40", "--seed", "3", "--out", str(out), "--no-database"]
    assert main([*args, "--json", str(tmp_path / "clean.json")]) == 0
    assert json.loads((tmp_path / "clean.json").read_text())["problems"] == []
    assert main([*args, "--reference-fault", "U1-usage-dropped", "--json", str(tmp_path / "r.json")]) == 1
    data = json.loads((tmp_path / "r.json").read_text())
    assert {p["check_id"] for p in data["problems"]} == {"oracle.usage"}
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p["cassette"]).name for p in data["problems"])


def test_cli_bad_target_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--examples", "1", "--proxy-url", "http://127.0.0.1:9", "--no-database"]) == 2
    assert main(["fuzz", "--examples", "1", "--reference-fault", "no-such-fault", "--no-database"]) == 2
    assert "Traceback" not in capsys.readouterr().out


def test_assert_no_problems_for_pytest(tmp_path: Path) -> None:
    report = assert_no_problems(examples=20, seed=5, out=tmp_path, database=None)
    assert report.examples == 20
    with pytest.raises(AssertionError, match=r"oracle\.status"):
        assert_no_problems(faults=["F1-length-as-completed"], examples=120, seed=1, out=tmp_path, database=None)


pytest_plugins = ["pytester"]


def test_pytest_option_adds_one_fuzz_item(pytester: pytest.Pytester) -> None:
    # In subprocesses: pytester's in-process runs drop and re-import modules between runs, which
    # leaves httpx mapping the exceptions of a stale httpcore.
    pytester.makeini("[pytest]\n")  # rootdir and the found cassettes stay in the test's directory
    (pytester.path / "text.json").write_text((Path(__file__).parents[2] / "cassettes" / "usage" / "openai-text-include-usage.json").read_text())
    clean = pytester.runpytest_subprocess("--conformance-fuzz", "20", "--conformance-fuzz-seed", "5", "-p", "no:cacheprovider")
    clean.assert_outcomes(passed=1)  # the fuzz item alone: fuzzing does not start the cassette suite
    clean.stdout.no_fnmatch_line("*Traceback*")
    faulty = pytester.runpytest_subprocess(
        "--conformance-fuzz", "120", "--conformance-fuzz-seed", "1",
        "--conformance-reference-fault", "F1-length-as-completed",
        "--conformance-cassettes", "text.json",
        "--conformance-checks", "oracle.status",
        "-p", "no:cacheprovider",
    )
    outcomes = faulty.parseoutcomes()
    assert outcomes["failed"] >= 1  # the fuzz item (the cassette's own oracle.status may fail too)
    faulty.stdout.fnmatch_lines(["*fuzz found * problem(s)*", "oracle.status-*cassettes/found/*", "*FAILED conformance/fuzz*"])
    assert list((pytester.path / "cassettes" / "found").glob("oracle.status-*.json"))
    bad = pytester.runpytest_subprocess("--conformance-fuzz", "many", "-p", "no:cacheprovider")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--conformance-fuzz*'many'*"])
