"""Sessions: tests, lint, types, bench. `nox -s tests` is what CI runs."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "types"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, on both cores; exit code 5 (no tests collected) fails the session."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "2", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "conformance", "tests", "benchmarks", "noxfile.py")


@nox.session
def types(session: nox.Session) -> None:
    session.install("-e", ".", "mypy", "types-jsonschema")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Checking throughput in events/s over growing synthetic streams (one core)."""
    session.install("-e", ".")
    session.run("python", "benchmarks/bench_checks.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: the suite against the embedded reference bridge, with the report."""
    session.install("-e", ".")
    session.run("responses-conformance", "run", *session.posargs)
