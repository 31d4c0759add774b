"""Report sinks: each is ``write(report, out) -> files written``, and :data:`SINKS` lists them all.

Every front end (``run``, ``check FILE``, the pytest plugin) hands its
:class:`~conformance.run_report.RunReport` to every sink here, in order. Adding a sink is one
module with a ``write`` function plus one line in :data:`SINKS`.
"""

from __future__ import annotations

from conformance.report import data, html, junit, matrix_dir, snapshot, verdict
from conformance.report.sink import Output, Sink
from conformance.report.terminal import format_finding, render_report

__all__ = ["SINKS", "Output", "Sink", "format_finding", "render_report"]

SINKS: list[Sink] = [
    snapshot.write,  # --snapshot-dir: the snapshots of the CLI (their states: before the verdict prints them)
    verdict.write,  # the console: the verdict, the problems most harmful first, the gate, snapshot states
    data.write,  # --report-json
    html.write,  # --report-html
    junit.write,  # --report-junit
    matrix_dir.write,  # --report-matrix
]
