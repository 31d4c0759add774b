"""The lab: every defect of the catalog through every installed client, written as the impact table.

For each defect it measures two things: which checks fire on it (``run_checks`` under the
``strict`` profile, so nothing is hidden by severity), and what each client does with it. The
result is ``impact.json``; ``clients lab --clients python`` refreshes only those clients'
verdicts and keeps the others.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conformance.clients._carried import carried_events
from conformance.clients._defects import CLEAN, DEFECTS, Defect, clean_events
from conformance.clients._replay import Capture
from conformance.clients._spec import ClientSpec
from conformance.exchange import Chunk, Exchange, TransportError
from conformance.impact import TABLE_PATH, finding_key

__all__ = ["lab_table", "merge_tables", "run_lab", "stable_message", "write_table"]

FORMAT = 1


def stable_message(text: str) -> str:
    """Messages without what changes from run to run (ports, object addresses)."""
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    return re.sub(r"0x[0-9a-f]{6,}", "0x…", text)


def _exchange(capture: Capture) -> Exchange:
    body = b"".join(capture.chunks)
    error = None
    if capture.cut is not None:  # how the harness records the same ending
        kind = "idle_timeout" if capture.cut == "stall" else "protocol"
        error = TransportError(kind, "the connection ended before the response was complete")
    return Exchange(
        "lab", 0, "http://127.0.0.1:1/v1/responses", {"model": "m", "input": "x", "stream": True},
        status=capture.status, headers=dict(capture.headers), chunks=[Chunk(0, body)], transport_error=error,
    )


def fired(capture: Capture) -> dict[str, list[str]]:
    """Check id -> the kind keys of its findings (:func:`finding_key`), under the strict profile."""
    from conformance.checks import run_checks

    out: dict[str, list[str]] = {}
    for cid, outcome in run_checks(_exchange(capture), profile="strict").items():
        if outcome.findings:
            out[cid] = sorted({k for f in outcome.findings if (k := finding_key(f.pointer, f.message))})
    return out


def run_lab(
    clients: list[ClientSpec],
    defects: list[Defect] | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Run the catalog (and the clean stream first) through the clients; the table as a dict."""
    from conformance.clients import replay_capture

    expected = carried_events(clean_events())
    table: dict[str, Any] = {"format": FORMAT, "clients": {}, "defects": {}}
    for c in clients:
        table["clients"][c.name] = {
            "family": c.family, "version": c.version(), "description": c.description, "opt_in": c.opt_in,
        }
    for defect in [CLEAN, *(defects if defects is not None else DEFECTS.values())]:
        capture = defect.build()
        checks = fired(capture)
        verdicts = replay_capture(capture, clients, expected=None if defect.judge_by_stream else expected, timeout=timeout)
        row: dict[str, Any] = {
            "check": defect.check or None,
            "what": defect.what,
            "fires": sorted(checks),
            "keys": checks.get(defect.check, []),
            "verdicts": {},
        }
        for v in verdicts:
            entry: dict[str, Any] = {"verdict": v.verdict, "message": stable_message(v.message)}
            if v.where:
                entry["where"] = stable_message(v.where)
            if v.verdict == "LOSS":
                entry["evidence"] = {k: val for k, val in v.evidence.items() if k != "got_full"}
            row["verdicts"][v.client] = entry
        table["defects"][defect.name] = row
        if progress is not None:
            progress(f"{defect.name}: " + " ".join(f"{v.client}={v.verdict}" for v in verdicts))
    return table


def merge_tables(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The new verdicts over the old table: clients not run this time keep their old columns."""
    merged: dict[str, Any] = {"format": FORMAT, "clients": dict(old.get("clients", {})), "defects": {}}
    merged["clients"].update(new["clients"])
    for name, row in new["defects"].items():
        old_row = old.get("defects", {}).get(name, {})
        verdicts = {k: v for k, v in old_row.get("verdicts", {}).items() if k not in new["clients"]}
        verdicts.update(row["verdicts"])
        merged["defects"][name] = dict(row, verdicts=dict(sorted(verdicts.items())))
    merged["clients"] = dict(sorted(merged["clients"].items()))
    return merged


def lab_table(path: Path = TABLE_PATH) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"format": FORMAT, "clients": {}, "defects": {}}
    return data


def write_table(table: dict[str, Any], path: Path = TABLE_PATH) -> None:
    path.write_text(json.dumps(table, indent=1, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
