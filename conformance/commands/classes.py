"""``classes [ID]``: the bug-class catalog the checks cite, with the checks and faults of each.

Exit codes: 0 printed; 2 unknown class id (one line naming the known ones).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from conformance.bug_classes import BUG_CLASSES, bug_class
from conformance.checks import REGISTRY

__all__ = ["register"]


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace, Console], int]]:
    p = sub.add_parser(
        "classes",
        help="list the bug classes the checks cite (S1, R1, …), or explain one with its checks",
        description="The catalog of bug classes seen in real Responses proxies; a check's classes are its ids.",
    )
    p.add_argument("class_id", nargs="?", metavar="ID", help="one class id, e.g. S1")
    return {"classes": _classes}


def _checks_of(class_id: str) -> list[str]:
    return sorted(spec.id for spec in REGISTRY.values() if class_id in spec.classes)


def _classes(args: argparse.Namespace, console: Console) -> int:
    if args.class_id is None:
        table = Table(title="Bug classes", title_justify="left")
        table.add_column("id", no_wrap=True)
        table.add_column("title")
        table.add_column("checks", justify="right")
        for entry in BUG_CLASSES.values():
            table.add_row(entry.id, entry.title, str(len(_checks_of(entry.id))))
        console.print(table)
        console.print("details: responses-conformance classes ID", highlight=False)
        return 0
    found = bug_class(args.class_id)
    if found is None:
        known = ", ".join(BUG_CLASSES)
        console.print(Text(f"error: unknown bug class {args.class_id!r} (known: {known})", style="bold red"), soft_wrap=True)
        return 2
    entry = found
    console.print(Text(f"{entry.id}: {entry.title}", style="bold"))
    console.print(Text(entry.summary), soft_wrap=True)
    console.print(Text(f"Who broke: {entry.clients}"), soft_wrap=True)
    checks = _checks_of(entry.id)
    console.print(Text(f"Checks: {', '.join(checks) if checks else '(none cites it)'}"), soft_wrap=True)
    return 0
