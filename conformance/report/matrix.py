"""The compatibility matrix: checks × targets, from JSON reports (one per target).

A cell says how a target did on one check across the cassettes where it ran: ``✓`` none failed,
``✗ 3/23`` it failed on 3 of 23 (known failures count: the matrix is about compatibility, not about
the gate), ``–`` it never applied, blank when the report does not have the check at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

__all__ = ["Matrix", "build_matrix", "matrix_markdown", "matrix_table"]

FAILED = ("fail", "xfail")


@dataclass
class Matrix:
    targets: list[str]
    captions: list[str]
    rows: list[tuple[str, str, list[str]]]  # (check id, bug classes, one cell per target)
    passed: list[tuple[int, int]]  # per target: checks with no failure, checks that ran


def _cell(outcomes: Sequence[str]) -> str:
    if not outcomes:
        return ""
    ran = [o for o in outcomes if o != "skip"]
    if not ran:
        return "–"
    failed = sum(1 for o in ran if o in FAILED)
    return "✓" if not failed else f"✗ {failed}/{len(ran)}"


def build_matrix(reports: Sequence[Mapping[str, Any]]) -> Matrix:
    targets: list[str] = []
    captions: list[str] = []
    per_target: list[dict[str, list[str]]] = []
    classes: dict[str, str] = {}
    for report in reports:
        name = str(report["target"]["name"])
        n = sum(1 for t in targets if t == name or t.startswith(name + " ("))
        targets.append(name if not n else f"{name} ({n + 1})")
        v = report.get("versions", {})
        captions.append(
            f"{targets[-1]}: profile {report.get('profile')}, harness {v.get('harness')}, "
            f"{report['summary']['cassettes']} cassettes, {report.get('generated_at', '')}"
        )
        outcomes: dict[str, list[str]] = {}
        for cassette in report.get("cassettes", []):
            for chk in cassette.get("checks", []):
                outcomes.setdefault(chk["id"], []).append(chk["outcome"])
        per_target.append(outcomes)
        for cid, meta in report.get("checks", {}).items():
            classes.setdefault(cid, " ".join(meta.get("classes", [])))
    check_ids = sorted({cid for outcomes in per_target for cid in outcomes})
    rows = [(cid, classes.get(cid, ""), [_cell(t.get(cid, [])) for t in per_target]) for cid in check_ids]
    passed = []
    for i in range(len(targets)):
        cells = [r[2][i] for r in rows]
        ran = [c for c in cells if c not in ("", "–")]
        passed.append((sum(1 for c in ran if c == "✓"), len(ran)))
    return Matrix(targets, captions, rows, passed)


def matrix_markdown(m: Matrix) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["# Responses API conformance matrix", ""]
    lines += [f"- {esc(c)}" for c in m.captions]
    lines += [
        "",
        "`✓` passed on every cassette where the check applies; `✗ n/m` failed on n of m cassettes; "
        "`–` never applied.",
        "",
        "| check | classes | " + " | ".join(esc(t) for t in m.targets) + " |",
        "|---|---|" + "---|" * len(m.targets),
    ]
    for cid, cls, cells in m.rows:
        lines.append(f"| `{cid}` | {cls} | " + " | ".join(cells) + " |")
    lines.append("| **checks passed** | | " + " | ".join(f"**{p}/{r}**" for p, r in m.passed) + " |")
    return "\n".join(lines) + "\n"


def matrix_table(m: Matrix) -> Table:
    table = Table(title="Responses API conformance matrix", title_justify="left", caption="\n".join(m.captions), caption_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("classes")
    for t in m.targets:
        table.add_column(t, justify="center")
    for cid, cls, cells in m.rows:
        styled = [f"[green]{c}[/]" if c == "✓" else f"[red]{c}[/]" if c.startswith("✗") else c for c in cells]
        table.add_row(cid, cls, *styled)
    table.add_section()
    table.add_row("checks passed", "", *[f"{p}/{r}" for p, r in m.passed])
    return table
