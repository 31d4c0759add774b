"""``report matrix REPORT.json…``: the compatibility matrix of several targets, printed and written.

Exit codes: 0 written; 2 an input is not a report (one line naming the file).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from conformance.report.data import ReportError, load_report
from conformance.report.matrix import build_matrix, matrix_table, write_matrix

__all__ = ["register"]


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace, Console], int]]:
    report = sub.add_parser("report", help="work with JSON reports: `report matrix reports/*.json`")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    m = report_sub.add_parser(
        "matrix",
        help="print and write (Markdown) a table of checks × targets from JSON reports (--report-json)",
        description="One column per report (its target name), one row per check.",
    )
    m.add_argument("reports", nargs="+", metavar="REPORT", help="JSON reports written with --report-json")
    m.add_argument("-o", "--output", metavar="PATH", help="Markdown file to write (default: matrix.md beside the first report)")
    return {"report": _matrix}


def _matrix(args: argparse.Namespace, console: Console) -> int:
    try:
        reports = [load_report(p) for p in args.reports]
    except ReportError as exc:
        console.print(f"error: {exc}", style="bold red", highlight=False, soft_wrap=True)
        return 2
    matrix = build_matrix(reports)
    console.print(matrix_table(matrix))
    out = Path(args.output) if args.output else Path(args.reports[0]).parent / "matrix.md"
    try:
        written = write_matrix(matrix, out)  # issue 10: the HTML version beside the Markdown
    except OSError as exc:
        console.print(f"error: cannot write {exc.filename or out}: {exc.strerror or exc}", style="bold red", highlight=False, soft_wrap=True)
        return 2
    for path in written:
        console.print(f"written: {path}", highlight=False, soft_wrap=True)
    return 0
