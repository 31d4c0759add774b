"""Every mistake a user can make is one line and a usage exit: 2 from the CLI, 4 from pytest."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import cli
from conformance.options import OPTIONS
from conformance.resources import cassettes_dir

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")
PYTEST_FLAG = {o.flag: o.pytest_flag for o in OPTIONS}


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def _mistakes(tmp_path: Path, busy: int) -> dict[str, tuple[list[str], str]]:
    """name -> (options, the line the user must see)."""
    empty = tmp_path / "empty"
    if tmp_path.exists():
        empty.mkdir(exist_ok=True)
    return {
        "unknown check": (["--checks", "nosuch.check"], "--checks: 'nosuch.check' matches no check id, group or prefix"),
        "typo in a list": (["--checks", "seq.presnt,lifecycle"], "did you mean seq.present"),
        "pattern matching nothing": (["--exclude-checks", "zzz*"], "--exclude-checks: 'zzz*' matches no check"),
        "missing cassette path": (["--cassettes", str(tmp_path / "nope")], f"--cassettes: no such file or directory: {tmp_path / 'nope'}"),
        "no cassette in the path": (["--cassettes", str(empty)], f"--cassettes: no cassette (*.json) in {empty}"),
        "unknown fault": (["--reference-fault", "R1-empty-completed-outpt"], "did you mean R1-empty-completed-output"),
        "fault with an external target": (
            ["--reference-fault", "R1-empty-completed-output", "--proxy-url", "http://127.0.0.1:9/v1"],
            "--reference-fault applies to the embedded reference bridge",
        ),
        "missing expectation file": (["--expectations", str(tmp_path / "e.json")], "does not exist"),
        "busy upstream port": (["--upstream-port", str(busy)], f"cannot start the fake upstream on 127.0.0.1:{busy}"),
        "unknown client": (["--clients", "python,pythn"], "--clients: unknown client 'pythn'; choose from: all, python"),
    }


NAMES = sorted(_mistakes(Path("/x"), 1))


@pytest.mark.parametrize("name", NAMES)
def test_cli_mistake_is_one_line_and_exit_2(
    name: str, tmp_path: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    options, line = _mistakes(tmp_path, busy_port)[name]
    assert cli.main(["run", "--cassettes", TOOL, *options]) == 2
    out = capsys.readouterr().out
    assert out.startswith("error: ") and out.count("\n") == 1, out
    assert line in out, out
    assert "Traceback" not in out


@pytest.mark.parametrize("name", NAMES)
def test_pytest_mistake_is_the_same_line_and_a_usage_error(
    name: str, tmp_path: Path, busy_port: int, pytester: pytest.Pytester
) -> None:
    options, line = _mistakes(tmp_path, busy_port)[name]
    under_pytest = [PYTEST_FLAG.get(o, o) for o in options]  # every pytest option has the prefix
    result = pytester.runpytest("--conformance-cassettes", TOOL, *under_pytest, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert line in text, text
    assert "Traceback" not in text and "INTERNALERROR" not in text


@pytest.mark.parametrize(
    ("ini", "line"),
    [
        ("conformance_profile = bogus", "--profile (ini conformance_profile): unknown value 'bogus'; choose one of"),
        ("conformance_upstream_port = abc", "--upstream-port (ini conformance_upstream_port): 'abc' is not a whole number"),
        ("conformance_total_timeout = soon", "--total-timeout (ini conformance_total_timeout): 'soon' is not a number"),
    ],
)
def test_bad_ini_value_is_a_usage_error(ini: str, line: str, pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("--conformance", f"--conformance-cassettes={TOOL}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert line in result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
