"""The pytest side of the harness: one test item per cassette × check, one exchange per cassette.

Items are collected under a virtual ``conformance/`` node, so ``-k``, ``--deselect``, JUnit and
pytest-xdist all work on ``conformance/<cassette>::<check id>``. The first item of a cassette to
run performs the exchange; its result is cached in memory and, for xdist, in a run directory
shared by the workers (one file lock per cassette), so each cassette's exchange runs once per run.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance._crash import HARNESS_ERROR
from conformance._model import Finding, Severity
from conformance._rundir import make_run_dir, remove_run_dir, write_shared_result
from conformance.cassette import Cassette, CassetteError
from conformance.checks import REGISTRY, Outcome
from conformance.checks._registry import _selected
from conformance.expectations import (
    Expectations,
    Judgement,
    Pair,
    Verdict,
    judge,
    judge_all,
    updated,
)
from conformance.harness import CassetteResult, Harness, HarnessError, Settings
from conformance.report import format_finding, render_report
from conformance.report.data import Target, _now, build_report
from conformance.report.outputs import OutputSettings, RunOutputs, first_message

ENV_PROXY = "RESPONSES_CONFORMANCE_PROXY_URL"
ENV_UPSTREAM = "RESPONSES_CONFORMANCE_UPSTREAM_URL"
ENV_RUN_DIR = "RESPONSES_CONFORMANCE_RUN_DIR"
PROPERTY = "conformance"


class ConformanceFailure(Exception):
    def __init__(self, findings: list[Finding], note: str | None = None) -> None:
        super().__init__(f"{len(findings)} findings")
        self.findings = findings
        self.note = note


class FixedKnownFailure(Exception):
    """A known failure that passed, under ``--strict-expectations``."""


class Suite:
    """Per-process state of a conformance run (stored in ``config.stash``)."""

    def __init__(
        self,
        settings: Settings,
        fail_on: Severity,
        outputs: OutputSettings | None = None,
        expectations: Expectations | None = None,
        snapshot_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.fail_on = fail_on
        self.outputs = outputs or OutputSettings(fail_on=fail_on)
        self.expectations = expectations
        self.snapshot_dir = snapshot_dir
        self.harness = Harness(settings)
        self.cache: dict[str, CassetteResult] = {}
        self.run_dir: Path | None = None
        self.started = False
        self.started_at = _now()
        self.reported: dict[str, dict[str, Any]] = {}
        self.snapshot_states: dict[str, str] = {}
        self.judgement: Judgement | None = None
        self.written: list[Path] = []
        self.owns_run_dir = False

    # -- lifecycle -------------------------------------------------------------------------
    def start_servers(self) -> None:
        """Controller (or single process): start upstream and target, publish them for workers."""
        self.harness.start()
        self.started = True
        self.run_dir = make_run_dir()  # hook (issue 13): removed on every exit path
        self.owns_run_dir = True
        os.environ[ENV_PROXY] = self.harness.proxy_url or ""
        os.environ[ENV_UPSTREAM] = self.harness.upstream_url or ""
        os.environ[ENV_RUN_DIR] = str(self.run_dir)

    def attach_worker(self) -> None:
        self.harness.attach(os.environ.get(ENV_PROXY, ""), os.environ.get(ENV_UPSTREAM) or None)
        run_dir = os.environ.get(ENV_RUN_DIR)
        self.run_dir = Path(run_dir) if run_dir else None
        self.started = True

    def load_only(self) -> None:
        self.harness.load()

    def stop(self) -> None:
        self.harness.stop()
        for key in (ENV_PROXY, ENV_UPSTREAM, ENV_RUN_DIR):
            if self.owns_run_dir:
                os.environ.pop(key, None)
        if self.owns_run_dir and self.run_dir is not None:
            remove_run_dir(self.run_dir)
            self.run_dir = None

    # -- results ---------------------------------------------------------------------------
    def result(self, cassette: Cassette) -> CassetteResult:
        if cassette.id in self.cache:
            return self.cache[cassette.id]
        if self.run_dir is None:
            res = self.harness.run(cassette)
        else:
            path = self.run_dir / f"{cassette.id}.json"
            with open(self.run_dir / f"{cassette.id}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if path.exists():
                    res = CassetteResult.from_json(json.loads(path.read_text("utf-8")))
                else:
                    res = self.harness.run(cassette)
                    write_shared_result(path, res.to_json())  # hook (issue 13): no secret in clear
        self.cache[cassette.id] = res
        return res

    def check_ids(self) -> list[str]:
        s = self.settings
        return [spec.id for spec in sorted(_selected(s.checks or None, s.exclude_checks or None), key=lambda x: x.id)]


class CheckItem(pytest.Item):
    """``conformance/<cassette>::<check id>``: passes, fails with findings, or skips with a reason."""

    def __init__(self, *, cassette: Cassette, check_id: str, suite: Suite, **kw: Any) -> None:
        super().__init__(**kw)
        self.cassette = cassette
        self.check_id = check_id
        self.suite = suite
        spec = REGISTRY[check_id]
        self.add_marker(pytest.mark.conformance)
        for cls in spec.classes:
            self.keywords[cls] = True

    def runtest(self) -> None:
        suite = self.suite
        result = suite.result(self.cassette)
        outcome = result.outcomes.get(self.check_id, Outcome(skipped="not run"))
        failing = [f for f in outcome.findings if f.severity.rank >= suite.fail_on.rank]
        crashed = result.outcomes.get(HARNESS_ERROR)  # hook (issue 13): a harness bug is not a skip
        if crashed is not None and crashed.findings:
            outcome = Outcome(outcome.findings + crashed.findings)
            failing += crashed.findings
        pair = (self.cassette.id, self.check_id)
        exp = suite.expectations
        verdict = judge(known=exp is not None and pair in exp.known, failing=bool(failing), skipped=bool(outcome.skipped))
        data = {
            "cassette": self.cassette.id,
            "check": self.check_id,
            "skipped": outcome.skipped,
            "failing": bool(failing),
            "verdict": verdict.value,
            "findings": len(outcome.findings),
        }
        self.user_properties.append((PROPERTY, json.dumps(data)))
        spec = REGISTRY[self.check_id]
        severity = spec.severity(suite.settings.profile)
        self.user_properties += [
            ("check", self.check_id),
            ("cassette", self.cassette.id),
            ("classes", " ".join(spec.classes)),
            ("severity", severity.value if severity else "n/a"),
            ("outcome", verdict.value),
        ]
        if outcome.skipped:
            pytest.skip(outcome.skipped)
        where = exp.path if exp is not None else None
        if verdict is Verdict.XFAIL:
            reason = exp.known[pair] if exp is not None else ""
            pytest.xfail(f"known failure in {where}" + (f": {reason}" if reason else ""))
        if verdict is Verdict.FAIL:
            if exp is not None and suite.outputs.update_expectations:
                pytest.xfail(f"new failure, added to {where} by --update-expectations")
            note = f"conformance/{pair[0]}::{pair[1]} is not a known failure in {where}" if exp is not None else None
            raise ConformanceFailure(failing, note)
        if verdict is Verdict.FIXED and suite.outputs.strict_expectations and not suite.outputs.update_expectations:
            raise FixedKnownFailure(f"cassette {pair[0]}, check {pair[1]} is listed as a known failure in {where} but passed; remove the entry (or run with --update-expectations)")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            spec = REGISTRY[self.check_id]
            body = "\n\n".join(format_finding(f) for f in excinfo.value.findings)
            note = f"\n\n{excinfo.value.note}" if excinfo.value.note else ""
            return f"{spec.summary}\n\n{body}{note}"
        if isinstance(excinfo.value, FixedKnownFailure):
            return f"fixed: {excinfo.value}"
        if isinstance(excinfo.value, pytest.xfail.Exception):
            # pytest asks for a representation even of an xfail; a traceback costs ~0.3 s each.
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return str(self.cassette.path or self.cassette.id), None, f"{self.cassette.id}::{self.check_id}"


class CassetteErrorItem(pytest.Item):
    """A cassette that failed to load: one failing item that says what and where."""

    def __init__(self, *, error: CassetteError, **kw: Any) -> None:
        super().__init__(**kw)
        self.error = error

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return f"cassette error: {excinfo.value}"

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "cassette", None, self.name


class CassetteNode(pytest.Collector):
    def __init__(self, *, cassette: Cassette, suite: Suite, **kw: Any) -> None:
        super().__init__(**kw)
        self.cassette = cassette
        self.suite = suite

    def collect(self) -> Iterator[pytest.Item]:
        for check_id in self.suite.check_ids():
            yield CheckItem.from_parent(self, name=check_id, cassette=self.cassette, check_id=check_id, suite=self.suite)
        if self.suite.snapshot_dir is not None:
            from conformance.snapshots import SnapshotItem

            yield SnapshotItem.from_parent(
                self, name="snapshot", cassette=self.cassette, suite=self.suite, snapshot_dir=self.suite.snapshot_dir
            )


class SuiteNode(pytest.Collector):
    def __init__(self, *, suite: Suite, **kw: Any) -> None:
        super().__init__(**kw)
        self.suite = suite

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        for i, err in enumerate(self.suite.harness.load_errors):
            yield CassetteErrorItem.from_parent(
                self, name=f"cassette-error-{i}", nodeid=f"conformance/cassette-error-{i}", error=err
            )
        for cassette in self.suite.harness.cassettes:
            yield CassetteNode.from_parent(
                self, name=cassette.id, nodeid=f"conformance/{cassette.id}", cassette=cassette, suite=self.suite
            )


def collect_items(session: pytest.Session, suite: Suite) -> list[pytest.Item]:
    node = SuiteNode.from_parent(session, name="conformance", nodeid="conformance", suite=suite)
    items: list[pytest.Item] = []

    def walk(collector: pytest.Collector) -> None:
        for child in collector.collect():
            if isinstance(child, pytest.Item):
                items.append(child)
            else:
                walk(child)

    walk(node)
    return items


def record_report(suite: Suite, report: pytest.TestReport) -> None:
    """Keep what the controller needs from one item's report (it arrives from xdist workers too)."""
    for name, value in report.user_properties:
        if name == PROPERTY and isinstance(value, str):
            data = json.loads(value)
            suite.reported[f"{data['cassette']}::{data['check']}"] = data
        elif name == "conformance_snapshot" and isinstance(value, str):
            data = json.loads(value)
            suite.snapshot_states[data["cassette"]] = data["state"]


def _full_result(suite: Suite, cassette_id: str) -> CassetteResult | None:
    """A cassette's whole result: from this process, or from the run directory an xdist worker wrote."""
    full = suite.cache.get(cassette_id)
    if full is None and suite.run_dir is not None:
        path = suite.run_dir / f"{cassette_id}.json"
        if path.exists():
            full = CassetteResult.from_json(json.loads(path.read_text("utf-8")))
            suite.cache[cassette_id] = full
    return full


def results_for_report(suite: Suite) -> list[CassetteResult]:
    """The results of the checks that ran as tests (findings and exchanges from the run directory)."""
    by_cassette: dict[str, CassetteResult] = {}
    for data in suite.reported.values():
        cid = data["cassette"]
        full = _full_result(suite, cid)
        if cid not in by_cassette:
            by_cassette[cid] = CassetteResult(cid, full.exchanges if full else [], {}, full.error if full else None)
        outcome = full.outcomes.get(data["check"]) if full else None
        by_cassette[cid].outcomes[data["check"]] = outcome or Outcome(skipped=data["skipped"] or "not run")
    order = {c.id: i for i, c in enumerate(suite.harness.cassettes)}
    return sorted(by_cassette.values(), key=lambda r: order.get(r.cassette_id, 10**6))


def _pair_outcomes(suite: Suite) -> dict[Pair, tuple[bool, bool]]:
    return {(d["cassette"], d["check"]): (bool(d.get("failing")), bool(d["skipped"])) for d in suite.reported.values()}


def finish_session(suite: Suite, session: pytest.Session) -> None:
    """Controller, end of the run: judge against the expectation file, update it, write reports."""
    outputs = suite.outputs
    outcomes = _pair_outcomes(suite)
    cassette_ids = [c.id for c in suite.harness.cassettes]
    exp = suite.expectations
    s = suite.settings
    target = Target.from_settings(s, outputs.target_name, url=suite.harness.proxy_url)
    if exp is not None and (suite.reported or outputs.update_expectations):
        if outputs.update_expectations:
            reasons = {
                (r.cassette_id, cid): first_message(o, suite.fail_on) for r in results_for_report(suite) for cid, o in r.outcomes.items()
            }
            exp = updated(exp, outcomes, reasons=reasons, target=target.name)
            suite.written.append(exp.save(outputs.expectations))
            suite.expectations = exp
        suite.judgement = judge_all(exp, outcomes, cassettes=cassette_ids, checks=REGISTRY, strict=outputs.strict_expectations)
        if suite.judgement.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not (outputs.report_json or outputs.report_html) or not suite.started:
        return
    if suite.judgement is not None:
        verdicts = suite.judgement.verdicts
        known = suite.expectations.known if suite.expectations is not None else {}
        reasons = {p: known[p] for p, v in verdicts.items() if v in (Verdict.XFAIL, Verdict.FIXED)}
    else:
        verdicts = {(d["cassette"], d["check"]): Verdict(d["verdict"]) for d in suite.reported.values()}
        reasons = {}
    report = build_report(
        results_for_report(suite),
        target=target,
        profile=s.profile,
        fail_on=suite.fail_on,
        verdicts=verdicts,
        reasons=reasons,
        judgement=suite.judgement,
        load_errors=[str(e) for e in suite.harness.load_errors],
        runner="pytest",
        started_at=suite.started_at,
    )
    if session.exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        report["summary"]["ok"] = False
    suite.written += RunOutputs(outputs, exp).write_files(report)


def terminal_summary(suite: Suite, terminalreporter: Any) -> None:
    from rich.console import Console
    from rich.text import Text

    results = results_for_report(suite)
    tw = terminalreporter._tw
    console = Console(file=tw, force_terminal=tw.hasmarkup, soft_wrap=False, width=max(tw.fullwidth, 150))
    if results or suite.harness.load_errors:
        s = suite.settings
        target = suite.outputs.target_name or s.proxy_cmd or s.proxy_url or "embedded reference bridge"
        render_report(console, results, target=target, profile=s.profile, load_errors=[str(e) for e in suite.harness.load_errors])
    if suite.judgement is not None:
        lines = suite.judgement.lines()
        console.print(Text(lines[0], style="bold red" if suite.judgement.failed else "bold green"), soft_wrap=True)
        for line in lines[1:]:
            console.print(Text(line, style="red" if "new failure" in line else "yellow"), soft_wrap=True)
    if suite.snapshot_states:
        counts: dict[str, int] = {}
        for state in suite.snapshot_states.values():
            counts[state] = counts.get(state, 0) + 1
        text = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        console.print(Text(f"conformance snapshots in {suite.snapshot_dir}: {text}", style="bold"), soft_wrap=True)
    for path in suite.written:
        console.print(f"written: {path}", highlight=False, soft_wrap=True)


__all__ = [
    "CassetteErrorItem",
    "CheckItem",
    "ConformanceFailure",
    "FixedKnownFailure",
    "HarnessError",
    "Suite",
    "collect_items",
    "finish_session",
    "record_report",
    "terminal_summary",
]
