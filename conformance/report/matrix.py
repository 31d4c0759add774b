"""The compatibility matrix: checks × targets, from JSON reports (one per target).

A cell says how a target did on one check across the cassettes where it ran: ``✓`` none failed and
nothing was noted, ``✗ 3/23`` it failed on 3 of 23 (known failures count: the matrix is about
compatibility, not about the gate), ``! 2/23`` / ``i 2/23`` warnings / notes only, ``–`` it never
ran, ``– 7/61`` it ran on fewer cassettes than the check ran on for another target of the matrix
(a proxy whose answers are errors is not "passing" the checks it never reached), blank when the
report does not have the check at all. Below the table, one line per target: its problems by
severity and the clients it breaks. Markdown, rich and HTML versions.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from conformance._safety import atomic_write
from conformance._secrets import redact_text

__all__ = ["Matrix", "build_matrix", "matrix_html", "matrix_markdown", "matrix_table", "write_matrix"]

FAILED = ("fail", "xfail")


@dataclass
class Matrix:
    targets: list[str]
    captions: list[str]
    rows: list[tuple[str, str, list[str]]]  # (check id, bug classes, one cell per target)
    passed: list[tuple[int, int]]  # per target: checks with no failure, checks that ran
    lines: list[str] = field(default_factory=list)  # per target: problems by severity, clients broken


@dataclass
class _Ran:
    outcomes: list[str] = field(default_factory=list)
    worst: str = ""  # worst severity of findings on passing cassettes: warning | info | ""

    @property
    def ran(self) -> int:
        return sum(1 for o in self.outcomes if o != "skip")


def _cell(ran: _Ran | None, coverage: int) -> str:
    if ran is None or not ran.outcomes:
        return ""
    n = ran.ran
    if not n:
        return "–"
    failed = sum(1 for o in ran.outcomes if o in FAILED)
    if failed:
        return f"✗ {failed}/{n}"
    if n < coverage:
        return f"– {n}/{coverage}"
    if ran.worst:
        return f"{'!' if ran.worst == 'warning' else 'i'} {n}/{n}"
    return "✓"


def _target_line(name: str, report: Mapping[str, Any]) -> str:
    problems = report.get("problems")
    if problems is None:
        from conformance.problems import problems_json

        problems = problems_json(report)
    counts = {s: sum(1 for p in problems if p["severity"] == s) for s in ("error", "warning", "info")}
    clients: dict[str, str] = {}
    for p in problems:
        for client, verdict in (p.get("impact") or {}).items():
            if clients.get(client) != "ERR":
                clients[client] = verdict
    broken = ", ".join(f"{c} ({v})" for c, v in sorted(clients.items())) if clients else "not measured or none"
    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    return (
        f"{name}: {n(len(problems), 'problem')} ({n(counts['error'], 'error')}, {n(counts['warning'], 'warning')}, "
        f"{n(counts['info'], 'note')}); clients broken: {broken}"
    )


def build_matrix(reports: Sequence[Mapping[str, Any]]) -> Matrix:
    targets: list[str] = []
    captions: list[str] = []
    per_target: list[dict[str, _Ran]] = []
    classes: dict[str, str] = {}
    lines: list[str] = []
    for report in reports:
        name = str(report["target"]["name"])
        n = sum(1 for t in targets if t == name or t.startswith(name + " ("))
        targets.append(name if not n else f"{name} ({n + 1})")
        v = report.get("versions", {})
        captions.append(
            f"{targets[-1]}: profile {report.get('profile')}, harness {v.get('harness')}, "
            f"{report['summary']['cassettes']} cassettes, {report.get('generated_at', '')}"
        )
        outcomes: dict[str, _Ran] = {}
        for cassette in report.get("cassettes", []):
            for chk in cassette.get("checks", []):
                ran = outcomes.setdefault(chk["id"], _Ran())
                ran.outcomes.append(chk["outcome"])
                if chk["outcome"] not in FAILED:
                    sevs = {f.get("severity") for f in chk.get("findings", [])}
                    if "warning" in sevs or "error" in sevs:
                        ran.worst = "warning"
                    elif "info" in sevs and not ran.worst:
                        ran.worst = "info"
        per_target.append(outcomes)
        lines.append(_target_line(targets[-1], report))
        for cid, meta in report.get("checks", {}).items():
            classes.setdefault(cid, " ".join(meta.get("classes", [])))
    check_ids = sorted({cid for outcomes in per_target for cid in outcomes})
    rows = []
    for cid in check_ids:
        coverage = max((t[cid].ran for t in per_target if cid in t), default=0)
        rows.append((cid, classes.get(cid, ""), [_cell(t.get(cid), coverage) for t in per_target]))
    passed = []
    for i in range(len(targets)):
        cells = [r[2][i] for r in rows if r[2][i] not in ("", "–")]
        passed.append((sum(1 for c in cells if c == "✓"), len(cells)))
    return Matrix(targets, captions, rows, passed, lines)


def matrix_markdown(m: Matrix) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["# Responses API conformance matrix", ""]
    lines += [f"- {esc(c)}" for c in m.captions]
    lines += [
        "",
        "`✓` passed on every cassette where the check applies; `✗ n/m` failed on n of m cassettes; "
        "`! n/m` / `i n/m` warnings / notes only; `–` never ran; `– n/m` ran on only n of the m cassettes "
        "it ran on for another target.",
        "",
        "| check | classes | " + " | ".join(esc(t) for t in m.targets) + " |",
        "|---|---|" + "---|" * len(m.targets),
    ]
    for cid, cls, cells in m.rows:
        lines.append(f"| `{cid}` | {cls} | " + " | ".join(cells) + " |")
    lines.append("| **checks passed** | | " + " | ".join(f"**{p}/{r}**" for p, r in m.passed) + " |")
    lines += ["", *[f"- {esc(line)}" for line in m.lines]]
    return "\n".join(lines) + "\n"


def matrix_table(m: Matrix) -> Table:
    table = Table(title="Responses API conformance matrix", title_justify="left", caption="\n".join([*m.captions, *m.lines]), caption_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("classes")
    for t in m.targets:
        table.add_column(t, justify="center")
    for cid, cls, cells in m.rows:
        styled = [_style(c) for c in cells]
        table.add_row(cid, cls, *styled)
    table.add_section()
    table.add_row("checks passed", "", *[f"{p}/{r}" for p, r in m.passed])
    return table


def _style(cell: str) -> str:
    if cell == "✓":
        return f"[green]{cell}[/]"
    if cell.startswith("✗"):
        return f"[red]{cell}[/]"
    if cell.startswith("!"):
        return f"[yellow]{cell}[/]"
    if cell.startswith("i "):
        return f"[cyan]{cell}[/]"
    return cell


def matrix_html(m: Matrix) -> str:
    """A self-contained HTML page of the matrix (no scripts): headers wrap, never truncate."""
    def esc(text: str) -> str:
        return html.escape(text, quote=True)

    css = (
        "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ddd;padding:2px 8px;text-align:center}th{white-space:normal;overflow-wrap:anywhere}"
        "td:first-child,td:nth-child(2){text-align:left}.ok{color:#2e7d32}.bad{color:#c62828}.warn{color:#ef6c00}.note{color:#0277bd}"
    )
    cls = {"✓": "ok", "✗": "bad", "!": "warn", "i": "note"}
    head = "".join(f"<th>{esc(t)}</th>" for t in m.targets)
    body = []
    for cid, classes, cells in m.rows:
        tds = "".join(f'<td class="{cls.get(c[:1], "")}">{esc(c)}</td>' for c in cells)
        body.append(f"<tr><td><code>{esc(cid)}</code></td><td>{esc(classes)}</td>{tds}</tr>")
    passed = "".join(f"<td><b>{p}/{r}</b></td>" for p, r in m.passed)
    body.append(f"<tr><td><b>checks passed</b></td><td></td>{passed}</tr>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Responses API conformance matrix</title>'
        f"<style>{css}</style></head><body><h1>Responses API conformance matrix</h1>"
        f'<ul class="targets">{"".join(f"<li>{esc(line)}</li>" for line in m.lines)}</ul>'
        f"<table><thead><tr><th>check</th><th>classes</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f'<ul>{"".join(f"<li>{esc(c)}</li>" for c in m.captions)}</ul></body></html>\n'
    )


def write_matrix(m: Matrix, markdown: str | Path) -> list[Path]:
    """Write the matrix as Markdown to ``markdown`` and as HTML beside it (``.html``), each
    atomically and with secrets redacted; the files written.

    The one writer of both ``report matrix`` and the ``--report-matrix`` sink.
    """
    md = Path(markdown)
    return [
        atomic_write(md, redact_text(matrix_markdown(m))),
        atomic_write(md.with_suffix(".html"), redact_text(matrix_html(m))),
    ]
