"""The matrix sink (``--report-matrix DIR``): each run adds or replaces its own column.

It saves this run's JSON report (the same document as ``--report-json``) as
``DIR/<target slug>.json``, then rebuilds ``DIR/matrix.md`` and ``DIR/matrix.html`` from every
``*.json`` report in ``DIR`` (in file-name order) with :mod:`conformance.report.matrix`, exactly as
``responses-conformance report matrix DIR/*.json -o DIR/matrix.md`` would.
"""

from __future__ import annotations

from pathlib import Path

from conformance.exceptions import ReportError
from conformance.report.data import load_report, write_report
from conformance.report.matrix import build_matrix, write_matrix
from conformance.report.sink import Output
from conformance.run_report import RunReport
from conformance.slugs import slug

__all__ = ["MATRIX_FILE", "report_file", "write"]

MATRIX_FILE = "matrix.md"


def report_file(directory: str | Path, target_name: str) -> Path:
    """Where a target's report goes in a matrix directory: ``DIR/<target slug>.json``."""
    return Path(directory) / f"{slug(target_name, limit=80)}.json"


def write(report: RunReport, out: Output) -> list[Path]:
    """Sink: this run's report into ``--report-matrix DIR``, and the matrix of DIR rebuilt."""
    given = out.options.report_matrix
    if not given:
        return []
    directory = Path(given)
    if directory.exists() and not directory.is_dir():
        raise ReportError(f"--report-matrix {directory}: is a file, not a directory")
    saved = write_report(report_file(directory, report.target.name), report.to_json())
    reports = [load_report(p) for p in sorted(directory.glob("*.json"))]
    return [saved, *write_matrix(build_matrix(reports), directory / MATRIX_FILE)]
