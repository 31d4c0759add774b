"""``clients install | list | lab``: the real clients the harness replays streams into.

``install`` puts the Node clients (openai-node, the AI SDK, Codex CLI) at their pinned versions
into the cache directory; ``list`` shows every client, its version and whether it can run here;
``lab`` runs the defect catalog through the selected clients and writes the impact table.
Exit codes: 0 done; 1 an install failed; 2 bad input (one line).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["register"]


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace, Console], int]]:
    clients = sub.add_parser("clients", help="real clients for client impact: install, list, lab")
    csub = clients.add_subparsers(dest="clients_command", required=True)
    inst = csub.add_parser("install", help="npm-install the Node clients and Codex CLI at pinned versions into the cache")
    inst.add_argument("envs", nargs="*", metavar="ENV", help="which (default all): openai-node, ai-sdk-6, ai-sdk-7, codex")
    csub.add_parser("list", help="every client, its version, and whether it can run here")
    lab = csub.add_parser("lab", help="run the defect catalog through the clients and write the impact table")
    lab.add_argument("--clients", default="all", metavar="SET", help="all | python | node | codex | names, comma-separated")
    lab.add_argument("-o", "--output", metavar="PATH", help="table to update (default: the packaged impact.json)")
    lab.add_argument("--timeout", type=float, default=20.0, help="seconds per client run (default 20)")
    return {"clients": _dispatch}


def _dispatch(args: argparse.Namespace, console: Console) -> int:
    handler = {"install": _install, "list": _list, "lab": _lab}[args.clients_command]
    return handler(args, console)


def _error(console: Console, text: str) -> int:
    console.print(f"error: {text}", style="bold red", highlight=False, soft_wrap=True)
    return 2


def _install(args: argparse.Namespace, console: Console) -> int:
    from conformance.clients import NODE_ENVS, install_node_clients, node_missing

    unknown = [e for e in args.envs if e not in NODE_ENVS]
    if unknown:
        return _error(console, f"unknown client environment {unknown[0]!r}; choose from: {', '.join(NODE_ENVS)}")
    why = node_missing()
    if why:
        return _error(console, why)
    failed = 0
    for name, ok, line in install_node_clients(args.envs or None):
        failed += not ok
        console.print(f"{'ok ' if ok else 'FAILED '}{name}: {line}", highlight=False, soft_wrap=True)
    return 1 if failed else 0


def _list(args: argparse.Namespace, console: Console) -> int:
    from conformance.clients import CLIENTS

    table = Table(title="Clients for --clients / clients lab")
    for col in ("client", "version", "ready", "what"):
        table.add_column(col, overflow="fold")
    for spec in CLIENTS.values():
        why = spec.missing()
        table.add_row(spec.name, spec.version() or "-", "yes" if why is None else f"no: {why}", spec.description)
    console.print(table)
    return 0


def _lab(args: argparse.Namespace, console: Console) -> int:
    from conformance.clients import TABLE_PATH, ClientSelectionError, select_clients
    from conformance.clients.lab import lab_table, merge_tables, run_lab, write_table

    try:
        chosen = select_clients(args.clients)
    except ClientSelectionError as exc:
        return _error(console, str(exc))
    ready = [c for c in chosen if c.missing() is None]
    for c in chosen:
        if c not in ready:
            console.print(f"skipped {c.name}: {c.missing()}", highlight=False, soft_wrap=True)
    if not ready:
        return _error(console, "none of the selected clients can run here (see `responses-conformance clients list`)")
    path = Path(args.output) if args.output else TABLE_PATH
    table = run_lab(ready, progress=lambda line: console.print(line, highlight=False, soft_wrap=True), timeout=args.timeout)
    write_table(merge_tables(lab_table(path), table), path)
    console.print(f"wrote {path} ({len(table['defects'])} streams × {len(ready)} clients)", highlight=False)
    return 0
