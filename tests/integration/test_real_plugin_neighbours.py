"""The plugin beside the REAL plugins a proxy project already uses (`nox -s plugin-neighbours`).

test_plugin_neighbours.py imitates their options with a conftest; this file runs with the ten
plugins installed in one environment, so a new option of theirs that clashes with ours shows up
here. Skipped where they are not all installed (the ordinary test environments).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.resources import cassettes_dir

NEIGHBOUR_MODULES = (
    "pytest_recording", "pytest_profiling", "xdist", "pytest_timeout", "pytest_html", "pytest_cov",
    "pytest_asyncio", "pytest_benchmark", "hypothesis", "syrupy",
)
MISSING = [m for m in NEIGHBOUR_MODULES if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"needs the real neighbour plugins (nox -s plugin-neighbours): {MISSING}"
)


def _pytest(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a scratch project of its own, as a user's CI would start it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert 1 + 1 == 2\n")
    return tmp_path


def test_help_lists_ours_and_theirs(project: Path) -> None:
    run = _pytest(project, "--help")
    assert run.returncode == 0, run.stderr
    assert "conflicting option" not in run.stdout + run.stderr
    for shown in (
        "--conformance-proxy-url", "--conformance-cassettes", "--conformance-record-mode",
        "--record-mode", "--profile", "--timeout", "--html", "--cov", "--benchmark-disable",
        "--hypothesis-seed", "--snapshot-update", "--numprocesses", "--asyncio-mode",
    ):
        assert shown in run.stdout, shown


def test_the_projects_own_suite_passes(project: Path) -> None:
    run = _pytest(project, "-q", "test_own.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_the_suite_runs_against_the_reference_bridge(project: Path) -> None:
    one_dir = cassettes_dir() / "tools"
    run = _pytest(project, "-q", "--conformance", "--conformance-cassettes", str(one_dir))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
