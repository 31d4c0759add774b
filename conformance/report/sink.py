"""What a sink is: ``write(report, out) -> files written``; the registered list is :data:`SINKS`.

A sink reads one :class:`~conformance.run_report.RunReport` and writes it somewhere: the terminal
(``out.console``), a file named by an option (``out.options``), anything else. Every front end
(``run``, ``check FILE``, the pytest plugin) calls every sink in :data:`conformance.report.SINKS`
through :func:`conformance.pipeline.write_report`; to add one, write a module with a ``write``
function and append it there (see CONTRIBUTING.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from conformance.options import OutputSettings
    from conformance.run_report import RunReport

__all__ = ["Output", "Sink"]


@dataclass
class Output:
    """Where sinks write: the console of this front end and the run's output options."""

    console: Console
    options: OutputSettings


Sink = Callable[["RunReport", Output], list[Path]]
