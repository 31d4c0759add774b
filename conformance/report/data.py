"""The JSON report sink (``--report-json``) and reading reports back (``report matrix``).

The document is :meth:`conformance.run_report.RunReport.to_json` (``schemas/report.schema.json``,
format 1): the target, the versions that produced it, the profile, every exchange as it happened
and every check of every cassette with its outcome and findings. The HTML report and the
compatibility matrix are built from this document alone, so all three always agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conformance.exceptions import ReportError
from conformance.report.sink import Output
from conformance.run_report import (
    REPORT_FORMAT,
    SCHEMA_ID,
    CassetteResult,
    RunReport,
    Target,
    versions,
)

__all__ = [
    "REPORT_FORMAT",
    "SCHEMA_ID",
    "ReportError",
    "Target",
    "load_report",
    "results_from_report",
    "versions",
    "write",
    "write_report",
]


def write(report: RunReport, out: Output) -> list[Path]:
    """Sink: the JSON document to ``--report-json``, when given."""
    path = out.options.report_json
    return [write_report(path, report.to_json())] if path else []


def write_report(path: str | Path, report: Mapping[str, Any]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", "utf-8")
    tmp.replace(p)
    return p


def load_report(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text("utf-8"))
    except OSError as exc:
        raise ReportError(f"cannot read {p}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{p}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict) or data.get("report_format") != REPORT_FORMAT:
        got = data.get("report_format") if isinstance(data, dict) else type(data).__name__
        raise ReportError(f"{p}: not a responses-conformance report of format {REPORT_FORMAT} (report_format {got!r})")
    return data


def results_from_report(report: Mapping[str, Any]) -> list[CassetteResult]:
    """The report's cassettes as :class:`CassetteResult` objects."""
    return RunReport.from_json(report).results
