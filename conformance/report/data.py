"""The machine-readable report (``schemas/report.schema.json``, format 1).

One JSON document per run: the target, the versions that produced it, the profile, every exchange
as it happened (request, status, headers, raw chunks with timing, the chat requests the proxy sent
upstream) and every check of every cassette with its outcome and findings. The HTML report and the
compatibility matrix are built from this document alone, so all three always agree.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import platform
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance._model import Exchange, Finding, Severity
from conformance._report_safety import prepare_report
from conformance._safety import atomic_write, strict_json_dumps
from conformance.checks import REGISTRY, Outcome
from conformance.expectations import Judgement, Pair, Verdict, judge
from conformance.harness import CassetteResult, Settings

__all__ = [
    "REPORT_FORMAT",
    "SCHEMA_ID",
    "Target",
    "build_report",
    "load_report",
    "results_from_report",
    "versions",
    "write_report",
]

REPORT_FORMAT = 1
SCHEMA_ID = "https://responses-conformance.dev/schemas/report.schema.json"


@dataclass(frozen=True)
class Target:
    """What was tested: a short name for tables, and how it was reached."""

    name: str
    url: str | None = None
    command: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, name: str | None = None, url: str | None = None) -> Target:
        """``name`` wins; else the program of ``--proxy-cmd``, the ``--proxy-url``, or the bridge."""
        if not name:
            if settings.proxy_cmd:
                try:
                    words = shlex.split(settings.proxy_cmd)
                except ValueError:
                    words = settings.proxy_cmd.split()
                name = Path(words[0]).name if words else settings.proxy_cmd
            elif settings.proxy_url:
                name = settings.proxy_url
            else:
                name = "reference bridge"
                if settings.reference_faults:
                    name += " with faults " + ", ".join(settings.reference_faults)
        return cls(name=name, url=url or settings.proxy_url, command=settings.proxy_cmd)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "command": self.command}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """The versions a report depends on: harness, Python, the openai SDK the schemas follow, pytest."""
    from conformance import __version__

    return {
        "harness": _version("responses-conformance") or __version__,
        "python": platform.python_version(),
        "openai": _version("openai"),
        "pytest": _version("pytest"),
        "platform": platform.platform(terse=True),
    }


def _failing(outcome: Outcome, fail_on: Severity) -> bool:
    return any(f.severity.rank >= fail_on.rank for f in outcome.findings)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"})


def _exchange_json(exchange: Exchange) -> dict[str, Any]:
    """The exchange as recorded, with credentials redacted: reports end up as CI artifacts."""
    data = exchange.to_json()
    data["request_headers"] = {
        k: ("[redacted]" if k.lower() in _SECRET_HEADERS else v) for k, v in exchange.request_headers.items()
    }
    return data


def build_report(
    results: Sequence[CassetteResult],
    *,
    target: Target,
    profile: str,
    fail_on: Severity = Severity.ERROR,
    verdicts: Mapping[Pair, Verdict] | None = None,
    reasons: Mapping[Pair, str] | None = None,
    judgement: Judgement | None = None,
    load_errors: Sequence[str] = (),
    runner: str = "cli",
    started_at: str | None = None,
) -> dict[str, Any]:
    """The report document. ``verdicts`` come from the expectation file; without one, fail/pass."""
    cassettes: list[dict[str, Any]] = []
    counts = {v.value: 0 for v in Verdict}
    sev = {s.value: 0 for s in Severity}
    used: set[str] = set()
    for result in results:
        checks = []
        for check_id in sorted(result.outcomes):
            outcome = result.outcomes[check_id]
            pair = (result.cassette_id, check_id)
            verdict = (verdicts or {}).get(pair) or judge(
                known=False, failing=_failing(outcome, fail_on), skipped=bool(outcome.skipped)
            )
            counts[verdict.value] += 1
            for f in outcome.findings:
                sev[f.severity.value] += 1
            used.add(check_id)
            checks.append(
                {
                    "id": check_id,
                    "outcome": verdict.value,
                    "skipped": outcome.skipped,
                    "known_failure_reason": (reasons or {}).get(pair),
                    "findings": [f.to_json() for f in outcome.findings],
                }
            )
        cassettes.append(
            {
                "id": result.cassette_id,
                "error": result.error,
                "exchanges": [_exchange_json(e) for e in result.exchanges],
                "checks": checks,
            }
        )
    failed = counts[Verdict.FAIL.value] > 0 or bool(load_errors) or (judgement is not None and judgement.failed)
    catalog = {}
    for check_id in sorted(used):
        spec = REGISTRY.get(check_id)
        if spec is None:
            continue
        severity = spec.severity(profile)
        catalog[check_id] = {
            "group": spec.group,
            "summary": spec.summary,
            "classes": list(spec.classes),
            "severity": severity.value if severity else None,
        }
    return {
        "$schema": SCHEMA_ID,
        "report_format": REPORT_FORMAT,
        "runner": runner,
        "started_at": started_at,
        "generated_at": _now(),
        "target": target.to_json(),
        "versions": versions(),
        "profile": profile,
        "fail_on": fail_on.value,
        "summary": {
            "ok": not failed,
            "cassettes": len(results),
            "checks_run": sum(counts.values()) - counts[Verdict.SKIP.value],
            "passed": counts[Verdict.PASS.value],
            "failed": counts[Verdict.FAIL.value],
            "xfailed": counts[Verdict.XFAIL.value],
            "fixed": counts[Verdict.FIXED.value],
            "skipped": counts[Verdict.SKIP.value],
            "errors": sev[Severity.ERROR.value],
            "warnings": sev[Severity.WARNING.value],
            "notes": sev[Severity.INFO.value],
        },
        "expectations": judgement.to_json() if judgement is not None else None,
        "load_errors": list(load_errors),
        "checks": catalog,
        "cassettes": cassettes,
    }


def write_report(path: str | Path, report: Mapping[str, Any]) -> Path:
    # Hook (issue 13): secrets redacted, strict JSON (NaN as strings, noted), atomic.
    doc = prepare_report(report)
    return atomic_write(path, strict_json_dumps(doc, indent=1, note_key="json_notes") + "\n")


class ReportError(ValueError):
    """A file that is not a report this version can read; the message names the file."""


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
    """The report's cassettes as :class:`CassetteResult` objects (for the terminal renderer)."""
    out = []
    for c in report.get("cassettes", []):
        outcomes = {
            chk["id"]: Outcome([Finding.from_json(f) for f in chk["findings"]], chk.get("skipped")) for chk in c["checks"]
        }
        out.append(CassetteResult(c["id"], [Exchange.from_json(e) for e in c["exchanges"]], outcomes, c.get("error")))
    return out
