"""The plugin shares pytest with the plugins a proxy project already uses: no option clashes.

Every pytest option of ours starts with ``--conformance`` and every ini key with ``conformance_``.
The neighbours below register the options of pytest-recording, pytest-profiling, pytest-timeout,
pytest-html, pytest-cov and pytest-benchmark the way those plugins do (a conftest stands in for
them, so the test needs no network); before the prefix, ``--record-mode`` and ``--profile`` made
every pytest run in such an environment exit with ``conflicting option string``.
"""

from __future__ import annotations

import pytest

from conformance.options import OPTIONS
from conformance.resources import cassettes_dir

TOOL = str(cassettes_dir() / "tools" / "openai-tool-call.json")

NEIGHBOURS = '''
def pytest_addoption(parser):
    recording = parser.getgroup("recording")
    for flag in ("--record-mode", "--block-network", "--allowed-hosts", "--disable-recording"):
        recording.addoption(flag, action="store", default=None)
    profiling = parser.getgroup("Profiling")
    for flag in ("--profile", "--profile-svg", "--pstats-dir"):
        profiling.addoption(flag, action="store_true", default=False)
    parser.addoption("--timeout", action="store", default=None)
    parser.addoption("--html", action="store", default=None)
    parser.addoption("--cov", action="append", default=None)
    parser.addoption("--benchmark-disable", action="store_true", default=False)
    parser.addoption("--live", action="store_true", default=False)
    parser.addoption("--model", action="store", default=None)
    parser.addini("profile", "a neighbour's ini key", default=None)
    parser.addini("record_mode", "a neighbour's ini key", default=None)
'''


def test_every_pytest_option_and_ini_key_has_the_prefix() -> None:
    registered = [o for o in OPTIONS if not o.cli_only]  # --snapshot-dir/--snapshot-update: CLI only
    assert len(registered) < len(OPTIONS)
    assert all(o.pytest_flag.startswith("--conformance") for o in registered)
    assert all(o.ini.startswith("conformance_") for o in registered)
    assert len({o.pytest_flag for o in registered}) == len(registered)
    assert len({o.ini for o in registered}) == len(registered)


def test_help_and_a_suite_run_beside_the_neighbours(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(NEIGHBOURS)
    pytester.makepyfile(test_own="def test_own():\n    assert 1 + 1 == 2\n")
    help_text = pytester.runpytest("--help")
    assert help_text.ret == 0, help_text.stderr.str()
    text = help_text.stdout.str()
    for shown in ("--record-mode=RECORD_MODE", "--conformance-record-mode=MODE", "--profile-svg", "--conformance-profile=NAME"):
        assert shown in text, shown

    own = pytester.runpytest("-p", "no:cacheprovider", "--record-mode", "none", "--profile")
    own.assert_outcomes(passed=1)  # the project's own suite, the neighbours' options set

    both = pytester.runpytest(
        "-p", "no:cacheprovider", "--profile", "--conformance-profile", "lenient",
        f"--conformance-cassettes={TOOL}", "--conformance-checks", "lifecycle",
    )
    assert both.ret == 0, both.stdout.str()
    assert both.parseoutcomes()["passed"] > 1  # the project's test and the conformance items
