"""The pytest side of the harness: one test item per cassette × check, one exchange per cassette.

Items are collected under a virtual ``conformance/`` node, so ``-k``, ``--deselect``, JUnit and
pytest-xdist all work on ``conformance/<cassette>::<check id>``. The first item of a cassette to
run performs the exchange; its result is cached in memory and, for xdist, in a run directory
shared by the workers (one file lock per cassette), so each cassette's exchange runs once per run.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conformance._crash import HARNESS_ERROR
from conformance._rundir import make_run_dir, remove_run_dir, write_shared_result
from conformance.cassette import Cassette, CassetteError
from conformance.checks import REGISTRY, selected_checks
from conformance.exceptions import HarnessError, UserError
from conformance.exchange import Finding, Outcome, Severity
from conformance.expectations import Expectations, Verdict, judge
from conformance.options import OutputSettings, Settings
from conformance.pipeline import Pipeline, run_concurrently, write_report
from conformance.problems import known_problem_ids, known_problem_pairs, problem_id_of
from conformance.report import format_finding
from conformance.report.junit import PROPERTY, testcase_properties
from conformance.report.sink import Output
from conformance.run_report import CassetteResult

ENV_PROXY = "RESPONSES_CONFORMANCE_PROXY_URL"
ENV_UPSTREAM = "RESPONSES_CONFORMANCE_UPSTREAM_URL"
ENV_RUN_DIR = "RESPONSES_CONFORMANCE_RUN_DIR"


class ConformanceFailure(Exception):
    def __init__(self, findings: list[Finding], note: str | None = None) -> None:
        super().__init__(f"{len(findings)} findings")
        self.findings = findings
        self.note = note


class FixedKnownFailure(Exception):
    """A known failure that passed, under ``--strict-expectations``."""


class Suite:
    """Per-process state of a conformance run (stored in ``config.stash``): a :class:`Pipeline`
    plus what pytest adds (the xdist run directory, the items' reports, the summary text)."""

    def __init__(self, pipeline: Pipeline, snapshot_dir: Path | None = None, items: str = "check") -> None:
        self.pipeline = pipeline
        self.items = items  # "check": a test per cassette × check; "cassette": a test per cassette
        self.settings: Settings = pipeline.settings
        self.outputs: OutputSettings = pipeline.outputs
        self.fail_on: Severity = pipeline.outputs.fail_on
        self.snapshot_dir = snapshot_dir
        self.harness = pipeline.harness
        self.cache: dict[str, CassetteResult] = {}
        self.run_dir: Path | None = None
        self.started = False
        self.reported: dict[str, dict[str, Any]] = {}
        self.snapshot_states: dict[str, str] = {}
        self.summary_text = ""
        self.owns_run_dir = False
        self._known_problems: dict[str, str] | None = None
        self.worker = False
        self._precompute: threading.Thread | None = None
        self._stopping = threading.Event()
        self.wanted: list[str] = []  # cassette ids of the session's items, in order (set after collection)

    @property
    def known_problems(self) -> dict[str, str]:
        """issue 10: the problem ids the expectation file lists under ``known_problems``."""
        if self._known_problems is None:
            self._known_problems = known_problem_ids(self.outputs.expectations)
        return self._known_problems

    @property
    def expectations(self) -> Expectations | None:
        return self.pipeline.expectations

    # -- lifecycle -------------------------------------------------------------------------
    def start_servers(self) -> None:
        """Controller (or single process): start upstream and target, publish them for workers."""
        self.pipeline.start()
        self.started = True
        self.run_dir = make_run_dir()  # hook (issue 13): removed on every exit path
        self.owns_run_dir = True
        os.environ[ENV_PROXY] = self.harness.proxy_url or ""
        os.environ[ENV_UPSTREAM] = self.harness.upstream_url or ""
        os.environ[ENV_RUN_DIR] = str(self.run_dir)

    def attach_worker(self) -> None:
        self.pipeline.attach(os.environ.get(ENV_PROXY, ""), os.environ.get(ENV_UPSTREAM) or None)
        run_dir = os.environ.get(ENV_RUN_DIR)
        self.run_dir = Path(run_dir) if run_dir else None
        self.started = True
        self.worker = True

    def load_only(self) -> None:
        self.pipeline.load()

    def stop(self) -> None:
        self._stopping.set()
        if self._precompute is not None:
            self._precompute.join(timeout=60)
        self.pipeline.stop()
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
        if not self.worker and self.settings.effective_concurrency > 1:
            self._prefetch(cassette)
            if cassette.id in self.cache:
                return self.cache[cassette.id]
        res = self._shared(cassette)
        self.cache[cassette.id] = res
        return res

    def _shared(self, cassette: Cassette) -> CassetteResult:
        """Run a cassette once per run: under the run directory's lock, whoever (a worker, the
        controller's precompute) takes the lock first runs it and writes it; the others read it."""
        if self.run_dir is None:
            return self.pipeline.run_cassette(cassette)
        path = self.run_dir / f"{cassette.id}.json"
        with open(self.run_dir / f"{cassette.id}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.exists():
                return CassetteResult.from_json(json.loads(path.read_text("utf-8")))
            res = self.pipeline.run_cassette(cassette)
            write_shared_result(path, res.to_json())  # hook (issue 13): no secret in clear
            return res

    def precompute(self, node_ids: list[str]) -> None:
        """issue 15, xdist controller: run the cassettes of ``node_ids`` in the background,
        ``--concurrency`` at once, while the workers start and report; a worker that needs one
        first runs it itself (the run directory's lock decides)."""
        if self._precompute is not None or self.run_dir is None:
            return
        wanted = {n.split("/", 1)[1].split("::", 1)[0] for n in node_ids if n.startswith("conformance/") and "::" in n}
        batch = [c for c in self.pipeline.cassettes if c.id in wanted]

        def one(cassette: Cassette) -> CassetteResult:
            if self._stopping.is_set():
                return CassetteResult(cassette.id, [], {})
            return self._shared(cassette)

        def run() -> None:
            with contextlib.suppress(Exception):  # a worker runs what this could not
                run_concurrently(batch, one, max(self.settings.effective_concurrency, 1))

        self._precompute = threading.Thread(target=run, name="conformance-precompute", daemon=True)
        self._precompute.start()

    def _prefetch(self, first: Cassette) -> None:
        """issue 15: in one process, run the session's next cassettes ``--concurrency`` at once
        when the first of them is asked for, a few batches' worth at a time so that progress
        shows (xdist workers run theirs one by one: there, xdist is the concurrency)."""
        n = self.settings.effective_concurrency
        by_id = {c.id: c for c in self.pipeline.cassettes}
        order = [first.id, *(i for i in self.wanted if i != first.id)]
        batch = [
            by_id[i]
            for i in order
            if i in by_id
            and i not in self.cache
            and not (self.run_dir is not None and (self.run_dir / f"{i}.json").exists())
        ][: 4 * n]
        for cassette, res in zip(batch, self.pipeline.run_many(batch), strict=True):
            if self.run_dir is not None:
                write_shared_result(self.run_dir / f"{cassette.id}.json", res.to_json())  # hook (issue 13)
            self.cache[cassette.id] = res

    def check_ids(self) -> list[str]:
        s = self.settings
        return [spec.id for spec in sorted(selected_checks(s.checks or None, s.exclude_checks or None), key=lambda x: x.id)]


def _result_or_exit(item: pytest.Item, suite: Suite, cassette: Cassette) -> CassetteResult:
    """The cassette's result; a harness bug (a server thread raised) stops the run with exit 2."""
    try:
        return suite.result(cassette)
    except HarnessError as exc:
        line = f"responses-conformance: {exc}"
        if hasattr(item.config, "workerinput"):
            # An xdist worker cannot end the run itself: it stops after this item, whose
            # failure shows the one line; xdist's controller then stops every worker and
            # ends the run as interrupted (exit 2) with this line, not as findings (exit 1).
            item.session.shouldstop = line
            raise
        pytest.exit(line, returncode=2)


@dataclass
class _Judged:
    """One check of one cassette, judged as the gate judges it."""

    pair: tuple[str, str]
    outcome: Outcome
    failing: list[Finding]
    verdict: Verdict
    properties: list[tuple[str, object]]


def _judge(suite: Suite, cassette: Cassette, check_id: str, result: CassetteResult) -> _Judged:
    outcome = result.outcomes.get(check_id, Outcome(skipped="not run"))
    failing = [f for f in outcome.findings if f.severity.rank >= suite.fail_on.rank]
    crashed = result.outcomes.get(HARNESS_ERROR)  # hook (issue 13): a harness bug is not a skip
    if crashed is not None and crashed.findings:
        outcome = Outcome(outcome.findings + crashed.findings)
        failing += crashed.findings
    pair = (cassette.id, check_id)
    exp = suite.expectations
    verdict = judge(known=exp is not None and pair in exp.known, failing=bool(failing), skipped=bool(outcome.skipped))
    # issue 10: every failing finding belongs to a problem the file lists by id (as the gate judges)
    if verdict is Verdict.FAIL and exp is not None and suite.known_problems and known_problem_pairs(
        result.findings(), [pair], suite.known_problems, suite.fail_on
    ):
        verdict = Verdict.XFAIL
    spec = REGISTRY[check_id]
    # issue 8: one module (the JUnit sink's) decides what a test's JUnit properties are
    properties = testcase_properties(
        cassette.id,
        check_id,
        outcome,
        verdict,
        classes=spec.classes,
        severity=spec.severity(suite.settings.profile),
        fail_on=suite.fail_on,
    )
    return _Judged(pair, outcome, failing, verdict, list(properties))


def _known_reason(suite: Suite, pair: tuple[str, str]) -> str:
    exp = suite.expectations
    if exp is None:
        return ""
    return exp.known.get(pair) or "its problems are listed under known_problems"


def _raise_verdict(suite: Suite, judged: _Judged) -> None:
    """End a check's test as its verdict says: xfail, a failure with its findings, or pass."""
    exp = suite.expectations
    where = exp.path if exp is not None else None
    pair = judged.pair
    if judged.verdict is Verdict.XFAIL:
        reason = _known_reason(suite, pair)
        pytest.xfail(f"known failure in {where}" + (f": {reason}" if reason else ""))
    if judged.verdict is Verdict.FAIL:
        if exp is not None and suite.outputs.update_expectations:
            pytest.xfail(f"new failure, added to {where} by --update-expectations")
        note = f"conformance/{pair[0]}::{pair[1]} is not a known failure in {where}" if exp is not None else None
        raise ConformanceFailure(judged.failing, note)
    if judged.verdict is Verdict.FIXED and suite.outputs.strict_expectations and not suite.outputs.update_expectations:
        raise FixedKnownFailure(f"cassette {pair[0]}, check {pair[1]} is listed as a known failure in {where} but passed; remove the entry (or run with --update-expectations)")


def _findings_text(findings: list[Finding]) -> str:
    """Each finding once, no repro here (issue 10: the problem's short repro is in the summary)."""
    return "\n\n".join(format_finding(f, repro=False) for f in findings)


def _problems_line(findings: list[Finding]) -> str:
    ids = dict.fromkeys(i for i in map(problem_id_of, findings) if i)
    return "\n\nproblem " + ", ".join(ids) + ": its example and repro are in the conformance summary"


def _other_failure(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    """What a conformance test shows for an xfail or a harness bug; None: pytest's own text."""
    if isinstance(excinfo.value, pytest.xfail.Exception):
        # pytest asks for a representation even of an xfail; a traceback costs ~0.3 s each.
        return str(excinfo.value)
    if isinstance(excinfo.value, HarnessError):
        return f"responses-conformance: {excinfo.value} (not a finding against the proxy)"
    return None


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
        result = _result_or_exit(self, suite, self.cassette)
        judged = _judge(suite, self.cassette, self.check_id, result)
        self.user_properties += judged.properties
        if judged.outcome.skipped:
            pytest.skip(judged.outcome.skipped)
        _raise_verdict(suite, judged)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            spec = REGISTRY[self.check_id]
            body = _findings_text(excinfo.value.findings) + _problems_line(excinfo.value.findings)
            note = f"\n\n{excinfo.value.note}" if excinfo.value.note else ""
            return f"{spec.summary}\n\n{body}{note}"
        if isinstance(excinfo.value, FixedKnownFailure):
            return f"fixed: {excinfo.value}"
        return _other_failure(excinfo) or str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return str(self.cassette.path or self.cassette.id), None, f"{self.cassette.id}::{self.check_id}"


class CassetteFailure(Exception):
    """Checks of one cassette that failed (``--conformance-items cassette``)."""

    def __init__(self, failed: list[tuple[str, list[Finding], str | None]]) -> None:
        super().__init__(f"{len(failed)} checks failed")
        self.failed = failed


class CassetteItem(pytest.Item):
    """``conformance/<cassette>::checks`` (``--conformance-items cassette``): every selected check
    of one cassette in one test, judged as the per-check tests are. Fails when any check fails (the
    failure lists each failing check with its findings), xfails when the only failures are known,
    skips when every check skipped. 65 tests instead of 4,680 keep pytest-xdist's per-test cost
    small; the report, the JUnit sink and the gate see every check as before."""

    def __init__(self, *, cassette: Cassette, suite: Suite, **kw: Any) -> None:
        super().__init__(**kw)
        self.cassette = cassette
        self.suite = suite
        self.add_marker(pytest.mark.conformance)
        for cls in {c for check_id in suite.check_ids() for c in REGISTRY[check_id].classes}:
            self.keywords[cls] = True

    def runtest(self) -> None:
        suite = self.suite
        result = _result_or_exit(self, suite, self.cassette)
        judged = [_judge(suite, self.cassette, check_id, result) for check_id in suite.check_ids()]
        for one in judged:
            self.user_properties += one.properties
        exp = suite.expectations
        where = exp.path if exp is not None else None
        update = exp is not None and suite.outputs.update_expectations
        failed: list[tuple[str, list[Finding], str | None]] = []
        for one in judged:
            if one.verdict is Verdict.FAIL and not update:
                note = f"conformance/{one.pair[0]}::{one.pair[1]} is not a known failure in {where}" if exp is not None else None
                failed.append((one.pair[1], one.failing, note))
            elif one.verdict is Verdict.FIXED and suite.outputs.strict_expectations and not update:
                failed.append((one.pair[1], [], f"listed as a known failure in {where} but passed; remove the entry (or run with --update-expectations)"))
        if failed:
            raise CassetteFailure(failed)
        known = [one.pair[1] for one in judged if one.verdict is Verdict.XFAIL]
        new = [one.pair[1] for one in judged if one.verdict is Verdict.FAIL]
        if known or new:
            reasons = [f"known failure in {where}: {c}" for c in known] + [
                f"new failure, added to {where} by --update-expectations: {c}" for c in new
            ]
            pytest.xfail("; ".join(reasons))
        if judged and all(one.outcome.skipped for one in judged):
            pytest.skip(f"every check skipped (first: {judged[0].outcome.skipped})")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CassetteFailure):
            parts = []
            for check_id, findings, note in excinfo.value.failed:
                tail = f"\n{note}" if note else ""
                parts.append(f"── {check_id}: {REGISTRY[check_id].summary}\n\n{_findings_text(findings)}{tail}".rstrip())
            every = [f for _, findings, _ in excinfo.value.failed for f in findings]
            return "\n\n".join(parts) + (_problems_line(every) if any(map(problem_id_of, every)) else "")
        return _other_failure(excinfo) or str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return str(self.cassette.path or self.cassette.id), None, f"{self.cassette.id}::checks"


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
        if self.suite.items == "cassette":  # issue 15: one test per cassette
            yield CassetteItem.from_parent(self, name="checks", cassette=self.cassette, suite=self.suite)
        else:
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


class FuzzItem(pytest.Item):
    """``--conformance-fuzz N``: one property-based campaign against the configured target.

    Fails with one line per distinct problem and the shrunk cassette it was saved as (under
    ``cassettes/found/`` of the directory pytest was started in, as ``responses-conformance fuzz``).
    """

    def __init__(self, *, settings: Settings, examples: int, seed: int, root: Path, **kw: Any) -> None:
        super().__init__(**kw)
        self.settings, self.examples, self.seed, self.root = settings, examples, seed, root

    def runtest(self) -> None:
        from conformance.commands.fuzz import assert_no_problems

        s = self.settings
        report = assert_no_problems(
            proxy_url=s.proxy_url,
            proxy_cmd=s.proxy_cmd,
            faults=list(s.reference_faults),
            profile=s.profile,
            upstream_port=s.upstream_port,
            responses_path=s.responses_path,
            api_key=s.api_key,
            examples=self.examples,
            seed=self.seed,
            out=self.root / "cassettes" / "found",
            database=self.root / ".hypothesis" / "conformance-fuzz",
        )
        self.user_properties.append(("conformance_fuzz", f"{report.examples} examples, {report.exchanges} exchanges"))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (AssertionError, UserError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "conformance", None, f"fuzz: {self.examples} generated upstream streams, seed {self.seed}"


def fuzz_item(session: pytest.Session, settings: Settings, examples: int, seed: int) -> pytest.Item:
    """The ``--conformance-fuzz`` item (``conformance/fuzz``)."""
    return FuzzItem.from_parent(
        session, name="fuzz", nodeid="conformance/fuzz", settings=settings, examples=examples, seed=seed,
        root=Path(session.config.invocation_params.dir),
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
            by_cassette[cid] = CassetteResult(
                cid, full.exchanges if full else [], {}, full.error if full else None, full.clients if full else {}
            )
        outcome = full.outcomes.get(data["check"]) if full else None
        by_cassette[cid].outcomes[data["check"]] = outcome or Outcome(skipped=data["skipped"] or "not run")
        crashed = full.outcomes.get(HARNESS_ERROR) if full else None
        if crashed is not None:  # hook (issue 13): the report shows the harness bug too
            by_cassette[cid].outcomes[HARNESS_ERROR] = crashed
    order = {c.id: i for i, c in enumerate(suite.harness.cassettes)}
    return sorted(by_cassette.values(), key=lambda r: order.get(r.cassette_id, 10**6))


def finish_session(suite: Suite, session: pytest.Session) -> None:
    """Controller, end of the run: the pipeline judges and reports; sinks write into a buffer that
    :func:`terminal_summary` prints (pytest shows the summary after this hook)."""
    exitstatus = session.exitstatus
    report = suite.pipeline.report(
        results_for_report(suite),
        aborted=exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED),
        snapshots=suite.snapshot_states,
        snapshot_dir=str(suite.snapshot_dir) if suite.snapshot_dir is not None else None,
    )
    if report.judgement is not None and report.judgement.failed and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    tw = getattr(reporter, "_tw", None)
    markup = bool(getattr(tw, "hasmarkup", False))
    width = int(getattr(tw, "fullwidth", 80))  # issue 10: the verdict wraps at the terminal's width
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=markup, soft_wrap=False, width=width)
    # --collect-only runs nothing: the console gets its summary, but no report file is written.
    options = suite.outputs if suite.started else OutputSettings(fail_on=suite.fail_on)
    write_report(report, Output(console, options))
    suite.summary_text = buffer.getvalue()
    if report.sink_errors:  # hook (issue 13): as the CLI, a report not written outranks findings
        crashed = any(not isinstance(exc, (OSError, UserError)) for _, exc in report.sink_errors)
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR if crashed else pytest.ExitCode.USAGE_ERROR


def terminal_summary(suite: Suite, terminalreporter: Any) -> None:
    """Print what the sinks wrote to the console, once, at the end of pytest's summary."""
    if suite.summary_text:
        terminalreporter._tw.write(suite.summary_text)


__all__ = [
    "CassetteErrorItem",
    "CheckItem",
    "ConformanceFailure",
    "FixedKnownFailure",
    "Suite",
    "collect_items",
    "finish_session",
    "record_report",
    "terminal_summary",
]
