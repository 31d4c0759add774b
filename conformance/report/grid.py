"""The per-cassette grid (``--grid``): cassettes × check groups, legible at 80 columns.

Groups are shown by two-letter codes with a legend, one character per cell, so 17 groups take
51 columns and the cassette column gets the rest; a long cassette id folds onto a second line
rather than being cut. Nothing in the grid is ever truncated (a test renders it at 80 columns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["CODES", "grid_rows", "render_grid"]

# group -> two-letter code (unknown groups get their first two letters)
CODES: dict[str, str] = {
    "transport": "tr", "http": "ht", "upstream": "up", "request": "rq", "sse": "ss", "schema": "sc",
    "seq": "sq", "lifecycle": "lc", "ids": "id", "items": "it", "indices": "ix", "integrity": "in",
    "oracle": "or", "translation": "tl", "errors": "er", "nonstream": "ns", "dialect": "dl",
}
# cell: ✗ error, ! warning, i note, · passed, – never ran (skipped), blank: not selected
_CELL = {"error": ("✗", "bold red"), "warning": ("!", "yellow"), "info": ("i", "cyan"), "pass": ("·", "green"), "skip": ("–", "dim")}
_RANK = {"skip": 0, "pass": 1, "info": 2, "warning": 3, "error": 4}


def _code(group: str) -> str:
    return CODES.get(group, group[:2])


def grid_rows(report: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
    """(groups, [(cassette id, {group: error|warning|info|pass|skip})]) from a report document."""
    groups: set[str] = set()
    rows: list[tuple[str, dict[str, str]]] = []
    for cassette in report.get("cassettes", []):
        cells: dict[str, str] = {}
        for chk in cassette.get("checks", []):
            group = chk["id"].split(".", 1)[0]
            groups.add(group)
            if chk.get("skipped") and not chk.get("findings"):
                state = "skip"
            else:
                worst = max((f["severity"] for f in chk.get("findings", [])), key=lambda s: _RANK[s], default="pass")
                state = worst
            if _RANK[state] > _RANK.get(cells.get(group, ""), -1):
                cells[group] = state
        rows.append((cassette["id"], cells))
    order = list(CODES)
    return sorted(groups, key=lambda g: (order.index(g) if g in order else len(order), g)), rows


def render_grid(console: Console, report: Mapping[str, Any]) -> None:
    groups, rows = grid_rows(report)
    if not rows:
        return
    table = Table(box=None, pad_edge=False, padding=(0, 0, 0, 1), show_edge=False, header_style="bold")
    table.add_column("cassette", overflow="fold", min_width=12)
    for g in groups:
        table.add_column(_code(g), justify="center", no_wrap=True, min_width=2, max_width=2)
    for cassette_id, cells in rows:
        row: list[Text | str] = [cassette_id]
        for g in groups:
            state = cells.get(g)
            char, style = _CELL[state] if state else (" ", "")
            row.append(Text(char, style=style))
        table.add_row(*row)
    console.print(table)
    legend = "  ".join(f"{_code(g)}={g}" for g in groups)
    console.print(Text(legend, style="dim"), overflow="fold")
    console.print(Text("✗ error  ! warning  i note  · passed  – did not run", style="dim"))


def group_codes(groups: Sequence[str]) -> dict[str, str]:
    return {g: _code(g) for g in groups}
