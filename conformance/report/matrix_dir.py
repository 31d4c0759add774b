"""The matrix sink (``--report-matrix DIR``): each run adds or replaces its own column.

It saves this run's JSON report (the same document as ``--report-json``) as
``DIR/<target slug>.json``, then rebuilds ``DIR/matrix.md`` and ``DIR/matrix.html`` from every
``*.json`` report in ``DIR`` (in file-name order; other JSON files there are passed over) with :mod:`conformance.report.matrix`, as
``responses-conformance report matrix DIR/*.json -o DIR/matrix.md`` would, with one column per
target name: another file in ``DIR`` of this run's target is not a second column.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _reports_in(directory: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every report in ``directory``, by file name. Other JSON files (the ``.upstream.json`` beside a
    ``--report-json``, an expectation file) are not reports and are passed over; a report this
    version cannot read raises :class:`ReportError` naming the file."""
    for path in sorted(directory.glob("*.json")):
        try:
            yield path, load_report(path)
        except ReportError:
            if _claims_to_be_a_report(path):
                raise


def _claims_to_be_a_report(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "report_format" in doc


def write(report: RunReport, out: Output) -> list[Path]:
    """Sink: this run's report into ``--report-matrix DIR``, and the matrix of DIR rebuilt."""
    given = out.options.report_matrix
    if not given:
        return []
    directory = Path(given)
    if directory.exists() and not directory.is_dir():
        raise ReportError(f"--report-matrix {directory}: is a file, not a directory")
    saved = write_report(report_file(directory, report.target.name), report.to_json())
    reports = []
    for path, doc in _reports_in(directory):
        # one column per target: another file of this target (say, its --report-json in DIR) is
        # an older run of the same column, not a second one
        if path == saved or (doc.get("target") or {}).get("name") != report.target.name:
            reports.append(doc)
    return [saved, *write_matrix(build_matrix(reports), directory / MATRIX_FILE)]
