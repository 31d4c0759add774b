"""The result of a run: one typed :class:`RunReport` that every front end produces and every sink reads.

``responses-conformance run``, ``check FILE`` and the pytest plugin all end in a ``RunReport``
(run metadata, target, versions, profile, every cassette's exchanges and check outcomes, the
verdicts against an expectation file); the terminal, JSON, HTML and any added sink write it.
:meth:`RunReport.to_json` is the machine-readable report (``schemas/report.schema.json``).

Plain data only: this module imports nothing above :mod:`conformance.exchange` and
:mod:`conformance.expectations`, so anything may import it.
"""

from __future__ import annotations

import datetime as _dt
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance._secrets import SECRET_HEADERS
from conformance.exchange import Exchange, Finding, Outcome, Severity
from conformance.expectations import Judgement, Pair, Verdict, judge

__all__ = [
    "REPORT_FORMAT",
    "SCHEMA_ID",
    "SNAPSHOT_FAILURES",
    "VERSION",
    "CassetteResult",
    "CheckInfo",
    "RunReport",
    "Target",
    "client_summary",
    "impact_by_check",
    "now",
    "versions",
]

VERSION = "0.1.0"
REPORT_FORMAT = 1
SCHEMA_ID = "https://responses-conformance.dev/schemas/report.schema.json"
SNAPSHOT_FAILURES = frozenset({"missing", "different"})  # snapshot states that fail a run
_SECRET_HEADERS = SECRET_HEADERS  # hook (issue 13): one list of credential names


def now() -> str:
    """UTC time as ``2026-01-02T03:04:05Z``."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _version(dist: str) -> str | None:
    import importlib.metadata  # here, not at the top: the pytest plugin imports this module

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """The versions a report depends on: harness, Python, the openai SDK the schemas follow, pytest."""
    import platform

    return {
        "harness": _version("responses-conformance") or VERSION,
        "python": platform.python_version(),
        "openai": _version("openai"),
        "pytest": _version("pytest"),
        "platform": platform.platform(terse=True),
    }


@dataclass(frozen=True)
class Target:
    """What was tested: a short name for tables and files, and how it was reached."""

    name: str
    url: str | None = None
    command: str | None = None

    @classmethod
    def describe(
        cls,
        *,
        name: str | None = None,
        proxy_cmd: str | None = None,
        proxy_url: str | None = None,
        reference_faults: Sequence[str] = (),
        url: str | None = None,
    ) -> Target:
        """The one rule for a target's name: ``--target-name``; else the program of ``--proxy-cmd``;
        else ``--proxy-url``; else the embedded reference bridge (with its faults)."""
        if not name:
            if proxy_cmd:
                try:
                    words = shlex.split(proxy_cmd)
                except ValueError:
                    words = proxy_cmd.split()
                name = Path(words[0]).name if words else proxy_cmd
            elif proxy_url:
                name = proxy_url
            else:
                name = "reference bridge"
                if reference_faults:
                    name += " with faults " + ", ".join(reference_faults)
        return cls(name=name, url=url or proxy_url, command=proxy_cmd)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "command": self.command}


@dataclass
class CassetteResult:
    """One cassette's run: its exchanges and, per check id, the merged outcome over them."""

    cassette_id: str
    exchanges: list[Exchange]
    outcomes: dict[str, Outcome]
    error: str | None = None
    # --clients: exchange index -> each selected client's verdict (ClientVerdict.to_json())
    clients: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def findings(self) -> list[Finding]:
        return [f for o in self.outcomes.values() for f in o.findings]

    def failing(self, threshold: Severity = Severity.ERROR) -> list[Finding]:
        return [f for f in self.findings() if f.severity.rank >= threshold.rank]

    def to_json(self) -> dict[str, Any]:
        return {
            "cassette_id": self.cassette_id,
            "error": self.error,
            "exchanges": [_with_clients(e.to_json(), self.clients.get(i)) for i, e in enumerate(self.exchanges)],
            "outcomes": {
                cid: {"skipped": o.skipped, "findings": [f.to_json() for f in o.findings]} for cid, o in self.outcomes.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CassetteResult:
        return cls(
            cassette_id=data["cassette_id"],
            error=data.get("error"),
            exchanges=[Exchange.from_json(e) for e in data["exchanges"]],
            clients=_clients_of(data["exchanges"]),
            outcomes={
                cid: Outcome([Finding.from_json(f) for f in o["findings"]], o.get("skipped"))
                for cid, o in data["outcomes"].items()
            },
        )


@dataclass(frozen=True)
class CheckInfo:
    """What a report says about a check it used (its catalog entry)."""

    group: str
    summary: str
    classes: tuple[str, ...]
    severity: Severity | None

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "summary": self.summary,
            "classes": list(self.classes),
            "severity": self.severity.value if self.severity else None,
        }


def _failing(outcome: Outcome, fail_on: Severity) -> bool:
    return any(f.severity.rank >= fail_on.rank for f in outcome.findings)


def _with_clients(data: dict[str, Any], verdicts: list[dict[str, Any]] | None) -> dict[str, Any]:
    if verdicts is not None:
        data["clients"] = verdicts
    return data


def _clients_of(exchanges: Sequence[Mapping[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    return {i: list(e["clients"]) for i, e in enumerate(exchanges) if e.get("clients") is not None}


_WORST = {"ok": 0, "LOSS": 1, "ERR": 2}


def client_summary(results: Sequence[CassetteResult]) -> dict[str, dict[str, Any]]:
    """Per client (``--clients``): cassettes replayed, those where it broke, the first break of each.

    A cassette counts once per client, with its worst verdict over its exchanges.
    """
    out: dict[str, dict[str, Any]] = {}
    for result in results:
        worst: dict[str, dict[str, Any]] = {}
        for verdicts in result.clients.values():
            for v in verdicts:
                name, verdict = str(v.get("client")), str(v.get("verdict"))
                if verdict not in _WORST:
                    continue  # skipped: the client cannot run here or takes no such mode
                if name not in worst or _WORST[verdict] > _WORST[str(worst[name]["verdict"])]:
                    worst[name] = v
        for name, v in worst.items():
            entry = out.setdefault(name, {"cassettes": 0, "failed": 0, "failures": []})
            entry["cassettes"] += 1
            if v["verdict"] != "ok":
                entry["failed"] += 1
                entry["failures"].append(
                    {"cassette_id": result.cassette_id, "verdict": v["verdict"], "message": str(v.get("message", ""))}
                )
    return dict(sorted(out.items()))


def impact_by_check(report: RunReport) -> dict[str, dict[str, str]]:
    """``{check_id: {client: "ERR" | "LOSS" | "ok"}}`` over the report's findings, the worst per
    client: from the live replay where ``--clients`` ran, else from the lab's table. The input
    problem ranking takes as ``impact=``."""
    out: dict[str, dict[str, str]] = {}
    for result in report.results:
        for finding in result.findings():
            if finding.impact is None:
                continue
            row = out.setdefault(finding.check_id, {})
            for client, verdict in finding.impact.verdicts.items():
                if verdict in _WORST and _WORST[verdict] >= _WORST.get(row.get(client, "ok"), 0):
                    row[client] = verdict
    return out


def _exchange_json(exchange: Exchange) -> dict[str, Any]:
    """The exchange as recorded, with credentials redacted: reports end up as CI artifacts."""
    data = exchange.to_json()
    data["request_headers"] = {
        k: ("[redacted]" if k.lower() in _SECRET_HEADERS else v) for k, v in exchange.request_headers.items()
    }
    return data


@dataclass
class RunReport:
    """Everything a run produced. ``verdicts`` come from the expectation file when there is one."""

    target: Target
    profile: str
    results: list[CassetteResult]
    fail_on: Severity = Severity.ERROR
    runner: str = "cli"
    started_at: str | None = None
    generated_at: str = field(default_factory=now)
    versions: dict[str, str | None] = field(default_factory=versions)
    verdicts: dict[Pair, Verdict] = field(default_factory=dict)
    reasons: dict[Pair, str] = field(default_factory=dict)
    judgement: Judgement | None = None
    load_errors: list[str] = field(default_factory=list)
    catalog: dict[str, CheckInfo] = field(default_factory=dict)
    aborted: bool = False  # the run did not finish normally (pytest: interrupted, internal error)
    expectations_written: str | None = None  # the expectation file this run rewrote
    known_failures: int = 0  # entries in the expectation file after the run
    # cassette id -> snapshot state: matched, created, updated, or (failing) missing, different
    snapshots: dict[str, str] = field(default_factory=dict)
    snapshot_dir: str | None = None
    # issue 10: the findings grouped into problems (conformance.problems.problems_json), set by
    # the report builder (conformance.pipeline.build_report); None: not grouped
    problems: list[dict[str, Any]] | None = None
    # Hook (issue 13): sinks that failed in this run, (name, error); not part of the document.
    sink_errors: list[tuple[str, BaseException]] = field(default_factory=list, compare=False, repr=False)
    clients: list[str] = field(default_factory=list)  # --clients: the selected clients, by name

    def verdict(self, cassette_id: str, check_id: str, outcome: Outcome) -> Verdict:
        return self.verdicts.get((cassette_id, check_id)) or judge(
            known=False, failing=_failing(outcome, self.fail_on), skipped=bool(outcome.skipped)
        )

    def counts(self) -> dict[str, int]:
        """How many checks got each verdict, and how many findings of each severity."""
        out = {v.value: 0 for v in Verdict} | {s.value: 0 for s in Severity}
        for result in self.results:
            for check_id, outcome in result.outcomes.items():
                out[self.verdict(result.cassette_id, check_id, outcome).value] += 1
                for f in outcome.findings:
                    out[f.severity.value] += 1
        return out

    @property
    def snapshot_failures(self) -> list[str]:
        """The cassettes whose snapshot is missing or different (and was not updated), sorted."""
        return sorted(c for c, state in self.snapshots.items() if state in SNAPSHOT_FAILURES)

    @property
    def ok(self) -> bool:
        """True when the run passes: no new failure, no broken cassette, a passing judgement, no
        missing or different snapshot."""
        failed = self.counts()[Verdict.FAIL.value] > 0 or bool(self.load_errors) or bool(self.snapshot_failures)
        failed = failed or (self.judgement is not None and self.judgement.failed)
        return not failed and not self.aborted

    def summary(self) -> dict[str, Any]:
        c = self.counts()
        return {
            "ok": self.ok,
            "cassettes": len(self.results),
            "checks_run": sum(c[v.value] for v in Verdict) - c[Verdict.SKIP.value],
            "passed": c[Verdict.PASS.value],
            "failed": c[Verdict.FAIL.value],
            "xfailed": c[Verdict.XFAIL.value],
            "fixed": c[Verdict.FIXED.value],
            "skipped": c[Verdict.SKIP.value],
            "errors": c[Severity.ERROR.value],
            "warnings": c[Severity.WARNING.value],
            "notes": c[Severity.INFO.value],
        }

    def to_json(self) -> dict[str, Any]:
        """The report document (``schemas/report.schema.json``, format 1)."""
        cassettes = []
        for result in self.results:
            checks = []
            for check_id in sorted(result.outcomes):
                outcome = result.outcomes[check_id]
                checks.append(
                    {
                        "id": check_id,
                        "outcome": self.verdict(result.cassette_id, check_id, outcome).value,
                        "skipped": outcome.skipped,
                        "known_failure_reason": self.reasons.get((result.cassette_id, check_id)),
                        "findings": [f.to_json() for f in outcome.findings],
                    }
                )
            cassettes.append(
                {
                    "id": result.cassette_id,
                    "error": result.error,
                    "exchanges": [
                        _with_clients(_exchange_json(e), result.clients.get(i)) for i, e in enumerate(result.exchanges)
                    ],
                    "checks": checks,
                }
            )
        doc: dict[str, Any] = {
            "$schema": SCHEMA_ID,
            "report_format": REPORT_FORMAT,
            "runner": self.runner,
            "started_at": self.started_at,
            "generated_at": self.generated_at,
            "target": self.target.to_json(),
            "versions": self.versions,
            "profile": self.profile,
            "fail_on": self.fail_on.value,
            "summary": self.summary(),
            "expectations": self.judgement.to_json() if self.judgement is not None else None,
            "load_errors": list(self.load_errors),
            "checks": {cid: self.catalog[cid].to_json() for cid in sorted(self.catalog)},
            "cassettes": cassettes,
            "clients": {"selected": list(self.clients), "summary": client_summary(self.results)} if self.clients else None,
        }
        if self.problems is not None:
            doc["problems"] = self.problems
        if self.snapshots:
            doc["snapshots"] = {"dir": self.snapshot_dir, "states": dict(sorted(self.snapshots.items()))}
        return doc

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunReport:
        """A report read back from its document (verdicts as written; no judgement object)."""
        results, verdicts, reasons = [], {}, {}
        for c in data.get("cassettes", []):
            outcomes = {}
            for chk in c["checks"]:
                outcomes[chk["id"]] = Outcome([Finding.from_json(f) for f in chk["findings"]], chk.get("skipped"))
                verdicts[(c["id"], chk["id"])] = Verdict(chk["outcome"])
                if chk.get("known_failure_reason") is not None:
                    reasons[(c["id"], chk["id"])] = chk["known_failure_reason"]
            results.append(
                CassetteResult(
                    c["id"], [Exchange.from_json(e) for e in c["exchanges"]], outcomes, c.get("error"), _clients_of(c["exchanges"])
                )
            )
        catalog = {
            cid: CheckInfo(i["group"], i["summary"], tuple(i["classes"]), Severity(i["severity"]) if i["severity"] else None)
            for cid, i in data.get("checks", {}).items()
        }
        target = data.get("target") or {}
        return cls(
            target=Target(target.get("name", ""), target.get("url"), target.get("command")),
            profile=data.get("profile", "openai"),
            results=results,
            fail_on=Severity(data.get("fail_on", "error")),
            runner=data.get("runner", "cli"),
            started_at=data.get("started_at"),
            generated_at=data.get("generated_at", ""),
            versions=dict(data.get("versions") or {}),
            verdicts=verdicts,
            reasons=reasons,
            load_errors=list(data.get("load_errors", [])),
            catalog=catalog,
            problems=data.get("problems"),
            clients=list((data.get("clients") or {}).get("selected") or []),
            snapshots=dict((data.get("snapshots") or {}).get("states") or {}),
            snapshot_dir=(data.get("snapshots") or {}).get("dir"),
        )
