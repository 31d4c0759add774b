"""What happens once a run has results: expectations, JSON and HTML reports, the exit code.

Shared by ``responses-conformance run`` and the pytest plugin, which both read the same options
(``--expectations``, ``--update-expectations``, ``--strict-expectations``, ``--report-json``,
``--report-html``, ``--target-name``, ``--fail-on``) through :meth:`OutputSettings.from_getter`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from conformance._model import Severity
from conformance._safety import run_sinks
from conformance.checks import REGISTRY, Outcome
from conformance.expectations import (
    Expectations,
    ExpectationsError,
    Judgement,
    Pair,
    Verdict,
    judge_all,
    updated,
)
from conformance.harness import CassetteResult, Harness
from conformance.options import OPTIONS, Option
from conformance.report.data import Target, _now, build_report, write_report
from conformance.report.html import write_html

__all__ = ["OutputSettings", "RunOutputs", "first_message", "pair_outcomes", "prepare"]


def _opt(flag: str) -> Option:
    return next(o for o in OPTIONS if o.flag == flag)


@dataclass
class OutputSettings:
    target_name: str | None = None
    report_json: str | None = None
    report_html: str | None = None
    expectations: str | None = None
    update_expectations: bool = False
    strict_expectations: bool = False
    fail_on: Severity = Severity.ERROR

    @classmethod
    def from_getter(cls, get: Callable[[Option], Any]) -> OutputSettings:
        def value(flag: str) -> Any:
            opt = _opt(flag)
            v = get(opt)
            return opt.default if v is None else v

        return cls(
            target_name=value("--target-name") or None,
            report_json=value("--report-json") or None,
            report_html=value("--report-html") or None,
            expectations=value("--expectations") or None,
            update_expectations=bool(value("--update-expectations")),
            strict_expectations=bool(value("--strict-expectations")),
            fail_on=Severity(value("--fail-on") or "error"),
        )

    def check(self) -> str | None:
        """A usage error, or None."""
        if self.update_expectations and not self.expectations:
            return "--update-expectations needs --expectations FILE (the file to write)"
        return None

    def load_expectations(self) -> Expectations | None:
        """The expectation file (raises :class:`ExpectationsError`); empty if it is to be written."""
        if not self.expectations:
            return None
        return Expectations.load(self.expectations, missing_ok=self.update_expectations)


def prepare(get: Callable[[Option], Any], console: Console) -> RunOutputs | None:
    """Read the output options and the expectation file before the run; None after printing why not."""
    settings = OutputSettings.from_getter(get)
    problem = settings.check()
    if problem is None:
        try:
            return RunOutputs(settings, settings.load_expectations())
        except ExpectationsError as exc:
            problem = str(exc)
    console.print(f"error: {problem}", style="bold red", highlight=False, soft_wrap=True)
    return None


def pair_outcomes(results: Sequence[CassetteResult], fail_on: Severity) -> dict[Pair, tuple[bool, bool]]:
    """``(cassette, check) -> (failing, skipped)`` for every check of every result."""
    out: dict[Pair, tuple[bool, bool]] = {}
    for r in results:
        for check_id, o in r.outcomes.items():
            out[(r.cassette_id, check_id)] = (_failing(o, fail_on), bool(o.skipped))
    return out


def _failing(outcome: Outcome, fail_on: Severity) -> bool:
    return any(f.severity.rank >= fail_on.rank for f in outcome.findings)


def first_message(outcome: Outcome, fail_on: Severity, limit: int = 160) -> str:
    """A new known failure's reason: its first failing finding, shortened."""
    failing = [f for f in outcome.findings if f.severity.rank >= fail_on.rank]
    if not failing:
        return ""
    text = failing[0].message.replace("\n", " ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    more = len(failing) - 1
    return text + (f" (+{more} more)" if more else "")


class RunOutputs:
    """Applies expectations and writes reports for one run of ``responses-conformance run``."""

    def __init__(self, settings: OutputSettings, expectations: Expectations | None) -> None:
        self.settings = settings
        self.expectations = expectations
        self.started_at = _now()
        self.sink_errors: list[tuple[str, BaseException]] = []

    def finish_harness(self, console: Console, harness: Harness, results: Sequence[CassetteResult]) -> int:
        """:meth:`finish` for a CLI run of ``harness``."""
        target = Target.from_settings(harness.settings, self.settings.target_name, url=harness.proxy_url)
        return self.finish(
            console,
            results,
            target=target,
            profile=harness.settings.profile,
            cassette_ids=[c.id for c in harness.cassettes],
            load_errors=[str(e) for e in harness.load_errors],
            started_at=self.started_at,
        )

    def finish(
        self,
        console: Console,
        results: Sequence[CassetteResult],
        *,
        target: Target,
        profile: str,
        cassette_ids: Sequence[str],
        load_errors: Sequence[str] = (),
        started_at: str | None = None,
    ) -> int:
        """Print the expectations summary, write the reports; return the exit code (0 or 1)."""
        s = self.settings
        outcomes = pair_outcomes(results, s.fail_on)
        judgement: Judgement | None = None
        reasons: dict[Pair, str] = {}
        if self.expectations is not None:
            exp = self.expectations
            if s.update_expectations:
                by_pair = {(r.cassette_id, c): o for r in results for c, o in r.outcomes.items()}
                new_reasons = {p: first_message(o, s.fail_on) for p, o in by_pair.items()}
                exp = updated(exp, outcomes, reasons=new_reasons, target=target.name)
                path = exp.save(s.expectations)
                console.print(f"expectations written: {path} ({len(exp.known)} known failures)", highlight=False, soft_wrap=True)
                self.expectations = exp
            judgement = judge_all(exp, outcomes, cassettes=cassette_ids, checks=REGISTRY, strict=s.strict_expectations)
            reasons = {p: exp.known[p] for p, v in judgement.verdicts.items() if v in (Verdict.XFAIL, Verdict.FIXED)}
            style = "bold red" if judgement.failed else "bold green"
            lines = judgement.lines()
            console.print(Text(lines[0], style=style), soft_wrap=True)
            for line in lines[1:]:
                console.print(Text(line, style="red" if "new failure" in line else "yellow"), soft_wrap=True)
        report = build_report(
            results,
            target=target,
            profile=profile,
            fail_on=s.fail_on,
            verdicts=judgement.verdicts if judgement else None,
            reasons=reasons,
            judgement=judgement,
            load_errors=load_errors,
            runner="cli",
            started_at=started_at,
        )
        self.write(console, report)
        return 0 if report["summary"]["ok"] else 1

    def write_files(self, report: Mapping[str, Any]) -> list[Path]:
        # Hook (issue 13): each sink on its own; one that fails does not lose the others.
        written: list[Path] = []
        sinks = []
        if self.settings.report_json:
            sinks.append(("JSON report", lambda: written.append(write_report(self.settings.report_json or "", report))))
        if self.settings.report_html:
            sinks.append(("HTML report", lambda: written.append(write_html(self.settings.report_html or "", report))))
        self.sink_errors = run_sinks(sinks)
        return written

    def write(self, console: Console, report: Mapping[str, Any]) -> list[Path]:
        written = self.write_files(report)
        for path in written:
            console.print(f"report written: {path}", highlight=False, soft_wrap=True)
        for name, exc in self.sink_errors:  # hook (issue 13)
            console.print(Text(f"error: the {name} could not be written: {type(exc).__name__}: {exc}", style="bold red"), soft_wrap=True)
        return written
