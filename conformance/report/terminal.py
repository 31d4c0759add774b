"""Findings as text: :func:`format_finding`, and :func:`render_report` (a table of cassettes ×
check groups, then every failure in detail; public API for callers that want the classic view).

:func:`format_finding` is the one place a finding becomes text; the pytest failure output and
the HTML report use it. The terminal sink is the verdict (:mod:`conformance.report.verdict`):
problems, not findings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from conformance._safety import terminal_text
from conformance._secrets import redact_text
from conformance.checks import REGISTRY
from conformance.exchange import Finding, Severity
from conformance.run_report import RunReport, client_summary

__all__ = ["format_finding", "render_report", "safe"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def format_finding(f: Finding, *, repro: bool = True) -> str:
    """Plain text of one finding: what, where, expected vs actual, how to reproduce."""
    where = [f"cassette {f.cassette_id}"] if f.cassette_id else []
    if f.turn:
        where.append(f"turn {f.turn}")
    if f.event_index is not None:
        where.append(f"event #{f.event_index}")
    if f.pointer:
        where.append(f"at {f.pointer}")
    lines = [f"[{f.severity.value}] {f.check_id}: {f.message}"]
    if where:
        lines.append("  where:    " + ", ".join(where))
    if f.raw:
        lines.append("  raw:      " + f.raw.replace("\n", "\n            "))
    if f.expected is not None or f.actual is not None:
        lines.append(f"  expected: {_short(f.expected)}")
        lines.append(f"  actual:   {_short(f.actual)}")
    if f.impact is not None:
        how = "measured" if f.impact.source == "live" else "lab table"
        lines.append(f"  impact:   {f.impact.level} ({how}): {f.impact.summary}")
    if repro and f.repro:
        lines.append(f"  repro:    {f.repro}")
    return safe("\n".join(lines))


def safe(text: str) -> str:
    """Hook (issue 13): proxy text as shown in a terminal: secrets hidden, escapes shown escaped."""
    return terminal_text(redact_text(text))


def _cell(outcomes: list[tuple[str | None, list[Finding]]]) -> Text:
    findings = [f for _, fs in outcomes for f in fs]
    if not outcomes or all(skip for skip, _ in outcomes):
        return Text("skip", style="dim")
    worst = max((f.severity for f in findings), key=lambda s: s.rank, default=None)
    if worst is None:
        return Text("ok", style="green")
    count = sum(1 for f in findings if f.severity is worst)
    return Text(f"{count} {worst.value}", style=_STYLE[worst])


def render_report(
    console: Console,
    results: Sequence[Any],
    *,
    target: str = "",
    profile: str = "openai",
    load_errors: Sequence[str] = (),
    detail_limit: int = 60,
    show_findings: bool = True,
) -> None:
    """Print the summary table and the failures of a run (``results``: CassetteResult objects)."""
    groups = sorted({spec.group for spec in REGISTRY.values()})
    title = f"Responses conformance — {target} (profile {profile})" if target else "Responses conformance"
    table = Table(title=Text(safe(title)), title_justify="left", show_lines=False)
    table.add_column("cassette", no_wrap=True)
    for g in groups:
        table.add_column(g, justify="center")
    totals = {s: 0 for s in Severity}
    for result in results:
        row: list[Text | str] = [Text(safe(result.cassette_id))]
        for g in groups:
            cell = [(o.skipped, o.findings) for cid, o in result.outcomes.items() if cid.split(".", 1)[0] == g]
            row.append(_cell(cell))
        table.add_row(*row)
        for f in result.findings():
            totals[f.severity] += 1
    console.print(table)
    for err in load_errors:
        console.print(Text(safe(f"cassette error: {err}"), style="bold red"))
    failures = [f for r in results for f in r.findings() if f.severity is not Severity.INFO]
    if failures and show_findings:
        console.rule("findings")
        shown_repro: set[str] = set()
        for f in failures[:detail_limit]:
            key = f"{f.cassette_id}:{f.turn}"
            text = format_finding(f, repro=key not in shown_repro)
            shown_repro.add(key)
            head, _, rest = text.partition("\n")
            console.print(Text(head, style=_STYLE[f.severity]))
            if rest:
                console.print(Text(rest), highlight=False, soft_wrap=True)
        if len(failures) > detail_limit:
            console.print(f"… {len(failures) - detail_limit} more findings not shown")
    checks_run = sum(1 for r in results for o in r.outcomes.values() if not o.skipped)
    summary = (
        f"{len(results)} cassettes, {checks_run} checks run: "
        f"{totals[Severity.ERROR]} errors, {totals[Severity.WARNING]} warnings, {totals[Severity.INFO]} notes"
    )
    style = "bold red" if totals[Severity.ERROR] or load_errors else "bold green"
    console.print(Text(summary, style=style))


def client_text(name: str, entry: dict[str, Any], limit: int = 3) -> str:
    """One line per client: ``openai-python.stream: 3 of 61 cassettes fail: a (ERR: …), …``."""
    if not entry["failed"]:
        return f"{name}: ok on all {entry['cassettes']} cassettes"
    shown = ", ".join(f"{x['cassette_id']} ({x['verdict']}: {_short(x['message'], 80)})" for x in entry["failures"][:limit])
    more = len(entry["failures"]) - limit
    return f"{name}: {entry['failed']} of {entry['cassettes']} cassettes fail: {shown}" + (f", +{more} more" if more > 0 else "")


def client_lines(console: Console, report: RunReport) -> None:
    """``--clients``: what each selected client did with the target's answers."""
    summary = client_summary(report.results)
    console.rule("clients")
    for name in report.clients:
        entry = summary.get(name)
        if entry is None:
            console.print(Text(f"{name}: skipped (cannot run here, or takes no exchange of this run)", style="dim"), soft_wrap=True)
            continue
        console.print(Text(client_text(name, entry), style="bold red" if entry["failed"] else "green"), soft_wrap=True)

