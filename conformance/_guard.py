"""Run-level guards: one cassette that trips a harness bug does not end the run; exit 3 at the end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from conformance._crash import (
    EXIT_HARNESS,
    EXIT_USAGE,
    HARNESS_ERROR,
    crash_line,
    harness_error_finding,
    has_harness_error,
)
from conformance.checks import Outcome
from conformance.harness import CassetteResult, Harness

__all__ = ["harness_exit", "run_guarded"]


def run_guarded(harness: Harness, cassette: Any) -> CassetteResult:
    """``harness.run(cassette)``; a harness bug becomes a ``harness.error`` finding on that cassette."""
    try:
        return harness.run(cassette)
    except Exception as exc:
        finding = harness_error_finding(exc, cassette.id, 0)
        return CassetteResult(cassette.id, [], {HARNESS_ERROR: Outcome([finding])}, error=finding.message)


def harness_exit(
    console: Console, code: int, results: Sequence[Any], sink_errors: Sequence[tuple[str, BaseException]] = ()
) -> int:
    """The run's exit code, raised to 3 when the harness itself failed (with the reason printed)."""
    broken = [(name, exc) for name, exc in sink_errors if not isinstance(exc, OSError)]
    for name, exc in broken:
        console.print(Text(f"the {name} failed: " + crash_line(exc, name), style="bold red"), soft_wrap=True)
    if broken or has_harness_error(results):
        if has_harness_error(results):
            console.print(
                Text("internal error: the harness failed on some exchanges (see the harness.error findings); exit 3", style="bold red"),
                soft_wrap=True,
            )
        return EXIT_HARNESS
    if sink_errors:
        return max(code, EXIT_USAGE)
    return code
