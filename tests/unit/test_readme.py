"""The README stays true: its commands are the ones CI runs, and every option is documented."""

from __future__ import annotations

from pathlib import Path

from conformance.checks import REGISTRY
from conformance.options import OPTIONS, markdown_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")


def test_options_table_is_current() -> None:
    assert markdown_table() in README, "regenerate it: python -m conformance.options"


def test_every_option_is_in_the_table() -> None:
    for opt in OPTIONS:
        if opt.cli_only:  # `run` only: no pytest flag, no ini key
            assert f"|  | `{opt.flag}` |" in README, opt.flag
            continue
        assert f"| `{opt.pytest_flag}" in README, opt.pytest_flag
        assert opt.pytest_only or f"| `{opt.flag}` |" in README, opt.flag
        assert f"`{opt.ini}`" in README, opt.ini


def test_ci_runs_the_readme_test_command() -> None:
    command = "python3 -m venv .venv && . .venv/bin/activate && pip install nox && nox -s tests-full"
    assert command in README
    assert command in (ROOT / ".ci" / "run").read_text("utf-8")


def test_check_count_in_the_introduction() -> None:
    assert f"against {len(REGISTRY)} documented rules" in README
