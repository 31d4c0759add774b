"""The measured impact table (``impact.json``, written by ``clients lab``) and what it implies.

For a check id (and, where the finding's JSON pointer tells which defect kind it is, that kind),
:func:`impact_for` says which tested clients break on it: ``error`` when a client in its default
configuration raises or loses data, ``warning`` when only an opt-in mode does (openai-python's
``_strict_response_validation``), ``note`` when no tested client breaks. Checks the lab does not
cover (oracle, translation, …) have no impact entry.

Pure data (layer 2): the checks read it for the default profile's severity and each finding's
impact; ``conformance.clients`` (the lab that writes it, the live replay) sits above.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["TABLE_PATH", "Impact", "finding_key", "impact_for", "impact_of_finding", "load_table", "normalise_pointer"]

TABLE_PATH = Path(__file__).parent / "clients" / "impact.json"


def normalise_pointer(pointer: str | None) -> str:
    """Array indices abstracted, so `/response/output/1/id` and `/response/output/0/id` are one kind."""
    return re.sub(r"/\d+(?=/|$)", "/*", pointer or "")


def finding_key(pointer: str | None, message: str = "") -> str:
    """Which defect kind a finding is: its pointer (indices abstracted), else the kind word that
    starts its message (``unterminated_final_event: …``), else nothing."""
    if pointer:
        return normalise_pointer(pointer)
    match = re.match(r"([a-z_]+): ", message)
    return f"kind:{match.group(1)}" if match else ""


@lru_cache(maxsize=1)
def load_table(path: str = str(TABLE_PATH)) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"clients": {}, "defects": {}}
    return data


@dataclass(frozen=True)
class Break:
    client: str
    verdict: str  # ERR | LOSS
    message: str
    defect: str
    opt_in: str | None = None

    def line(self) -> str:
        return f"{self.verdict} {self.client} ({self.defect}): {self.message}"


@dataclass(frozen=True)
class Impact:
    """What breaking one rule does to the tested clients, as the lab measured it."""

    check_id: str
    level: str  # error | warning | note
    breaks: tuple[Break, ...] = ()  # clients in their default configuration
    opt_in_breaks: tuple[Break, ...] = ()
    defects: tuple[str, ...] = ()
    clients_tested: tuple[str, ...] = field(default_factory=tuple)
    rule: str = ""  # the rule the check enforces, for a note's summary (the check's own words)

    @property
    def clients(self) -> list[str]:
        """The clients that break (default configuration first), each once."""
        seen: list[str] = []
        for b in (*self.breaks, *self.opt_in_breaks):
            if b.client not in seen:
                seen.append(b.client)
        return seen

    @property
    def summary(self) -> str:
        """One line for a finding: who breaks and how, or that no tested client does."""
        if self.breaks:
            first: dict[str, Break] = {}
            for b in sorted(self.breaks, key=lambda b: (b.verdict != "ERR", b.client)):
                first.setdefault(b.client, b)
            return "breaks " + "; ".join(f"{b.client} ({b.verdict}: {b.message[:90]})" for b in first.values())
        if self.opt_in_breaks:
            modes = sorted({b.opt_in or "" for b in self.opt_in_breaks})
            names = sorted({b.client for b in self.opt_in_breaks})
            return f"breaks only with {', '.join(modes)}: {', '.join(names)}"
        return f"no tested client breaks on this ({len(self.clients_tested)} clients tried); the rule: {self.rule or self.check_id}"


def _break(client: str, meta: dict[str, Any], verdict: dict[str, Any], defect: str) -> Break:
    return Break(client, str(verdict.get("verdict")), str(verdict.get("message") or ""), defect, meta.get("opt_in"))


def impact_for(
    check_id: str, key: str | None = None, *, table: dict[str, Any] | None = None, rule: str = ""
) -> Impact | None:
    """The measured impact of breaking ``check_id``; None when the lab has no defect for it.

    With ``key`` (a finding's :func:`finding_key`), only the defect kinds whose findings had that
    key count, when there are such kinds; otherwise every defect written for the check.
    """
    if table is None:  # the committed table does not change during a run: one answer per question
        return _impact_of_committed(check_id, key, rule)
    return _impact(check_id, key, table, rule)


@lru_cache(maxsize=4096)
def _impact_of_committed(check_id: str, key: str | None, rule: str) -> Impact | None:
    return _impact(check_id, key, load_table(), rule)


def _impact(check_id: str, key: str | None, data: dict[str, Any], rule: str) -> Impact | None:
    clients: dict[str, Any] = data.get("clients", {})
    kinds = {name: d for name, d in data.get("defects", {}).items() if d.get("check") == check_id}
    if not kinds:
        return None
    if key:
        matching = {n: d for n, d in kinds.items() if key in d.get("keys", [])}
        kinds = matching or kinds
    breaks: list[Break] = []
    opt_in: list[Break] = []
    tested: set[str] = set()
    for name, d in sorted(kinds.items()):
        for client, v in d.get("verdicts", {}).items():
            meta = clients.get(client, {})
            if v.get("verdict") not in ("ok", "ERR", "LOSS"):
                continue
            tested.add(client)
            if v.get("verdict") in ("ERR", "LOSS"):
                (opt_in if meta.get("opt_in") else breaks).append(_break(client, meta, v, name))
    level = "error" if breaks else "warning" if opt_in else "note"
    return Impact(check_id, level, tuple(breaks), tuple(opt_in), tuple(sorted(kinds)), tuple(sorted(tested)), rule)


def impact_of_finding(
    check_id: str, pointer: str | None = None, message: str = "", *, rule: str = ""
) -> Impact | None:
    """The impact of one finding (for ``Finding.impact`` and the report sinks): its defect kind
    when the pointer or message names one the lab measured, else its check's."""
    return impact_for(check_id, finding_key(pointer, message) or None, rule=rule)
