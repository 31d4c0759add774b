"""pytest --conformance-record-mode: the proxy's upstream leg goes through the recorder to a real upstream."""

from __future__ import annotations

from pathlib import Path

import pytest
from chat_upstream import ChatUpstream

from conformance.cassette import load_cassettes
from conformance.resources import cassettes_dir

pytest_plugins = ["pytester"]

TEXT = str(cassettes_dir() / "usage" / "openai-text-include-usage.json")


def test_record_mode_all_writes_a_cassette_and_judges_the_real_answer(pytester: pytest.Pytester, tmp_path: Path) -> None:
    out = tmp_path / "recorded"
    with ChatUpstream() as upstream:
        result = pytester.runpytest(
            "--conformance", "--conformance-cassettes", TEXT, "--conformance-stream-only",
            "--conformance-record-mode", "all", "--conformance-upstream-url", upstream.url, "--conformance-record-dir", str(out),
            "--conformance-checks", "oracle,lifecycle,upstream", "-p", "no:cacheprovider",
        )
        assert upstream.seen, "the real upstream was called"
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    cassettes, errors = load_cassettes([out])
    assert errors == [] and len(cassettes) == 1
    body = b"".join(cassettes[0].turns[0].upstream[0].body.split())
    assert b"Hello" in body and b"there," in body


@pytest.mark.slow
def test_record_mode_needs_an_upstream(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--conformance", "--conformance-cassettes", TEXT, "--conformance-record-mode", "once", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # a user error: pytest's usage exit
    result.stdout.fnmatch_lines(["*--record-mode needs --upstream-url*"])
