"""One run, one result: load cassettes → run exchanges → check → judge expectations → report.

``responses-conformance run``, ``check FILE`` and the pytest plugin are thin adapters over this
module: they build a :class:`Pipeline` (or, offline, just a report), get their results, and hand
the :class:`~conformance.run_report.RunReport` to :func:`write_report`, which calls every
registered sink (:data:`conformance.report.SINKS`). Nothing else judges expectations or builds
reports, so the CLI and pytest cannot disagree.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

import conformance.report as _sinks
from conformance._crash import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    EXIT_HARNESS,
    EXIT_USAGE,
    HARNESS_ERROR,
    crash_line,
    harness_error_finding,
    has_harness_error,
)
from conformance.cassette import Cassette
from conformance.checks import REGISTRY, selected_checks
from conformance.exceptions import CassetteError, OptionError, UserError
from conformance.exchange import PROFILES, Outcome, Severity
from conformance.expectations import Expectations, Judgement, Pair, Verdict, judge_all, updated
from conformance.harness import Harness
from conformance.options import OutputSettings, Settings
from conformance.problems import forgive_known_problems, problems_json
from conformance.report.sink import Output
from conformance.report.terminal import safe
from conformance.run_report import CassetteResult, CheckInfo, RunReport, Target, now

if TYPE_CHECKING:
    from conformance.clients import ClientSpec

__all__ = [
    "Pipeline",
    "build_report",
    "check_settings",
    "exit_code",
    "first_message",
    "guarded_run",
    "pair_outcomes",
    "run_concurrently",
    "select_clients_of",
    "write_report",
]

_HARNESS_INFO = CheckInfo(
    "harness", "the harness itself failed on this exchange (a bug in responses-conformance)", (), Severity.ERROR
)


def _failing(outcome: Outcome, fail_on: Severity) -> bool:
    return any(f.severity.rank >= fail_on.rank for f in outcome.findings)


def pair_outcomes(results: Sequence[CassetteResult], fail_on: Severity) -> dict[Pair, tuple[bool, bool]]:
    """``(cassette, check) -> (failing, skipped)`` for every check of every result."""
    return {
        (r.cassette_id, check_id): (_failing(o, fail_on), bool(o.skipped))
        for r in results
        for check_id, o in r.outcomes.items()
    }


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


def _catalog(check_ids: Iterable[str], profile: str) -> dict[str, CheckInfo]:
    out = {}
    for check_id in sorted(set(check_ids)):
        spec = REGISTRY.get(check_id)
        if spec is not None:
            out[check_id] = CheckInfo(spec.group, spec.summary, spec.classes, spec.severity(profile))
        elif check_id == HARNESS_ERROR:  # hook (issue 13): a harness bug is reported like a check
            out[check_id] = _HARNESS_INFO
    return out


def build_report(
    results: Sequence[CassetteResult],
    *,
    target: Target,
    profile: str,
    fail_on: Severity = Severity.ERROR,
    runner: str = "cli",
    started_at: str | None = None,
    load_errors: Sequence[str] = (),
    judgement: Judgement | None = None,
    reasons: Mapping[Pair, str] | None = None,
) -> RunReport:
    """A :class:`RunReport` of ``results`` (verdicts from ``judgement`` when there is one)."""
    report = RunReport(
        target=target,
        profile=profile,
        results=list(results),
        fail_on=fail_on,
        runner=runner,
        started_at=started_at,
        verdicts=dict(judgement.verdicts) if judgement is not None else {},
        reasons=dict(reasons or {}),
        judgement=judgement,
        load_errors=list(load_errors),
        catalog=_catalog((c for r in results for c in r.outcomes), profile),
    )
    report.problems = problems_json(report)  # issue 10: findings grouped into problems
    return report


def _sink_name(sink: object) -> str:
    return f"{str(getattr(sink, '__module__', '') or 'report').rpartition('.')[2]} sink"


def write_report(report: RunReport, out: Output) -> list[Path]:
    """Hand the report to every registered sink; say which files they wrote.

    Each sink runs on its own (hook, issue 13): one that fails, whether it cannot write its file
    or has a bug, is named and kept in ``report.sink_errors``, and the others still write.
    """
    written: list[Path] = []
    for sink in _sinks.SINKS:
        name = _sink_name(sink)
        try:
            written += sink(report, out)
        except (OSError, UserError) as exc:
            report.sink_errors.append((name, exc))
            detail = str(exc)
            if isinstance(exc, OSError) and exc.strerror:
                detail = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
            out.console.print(Text(safe(f"error: the {name} could not write: {detail}"), style="bold red"), soft_wrap=True)
        except Exception as exc:
            report.sink_errors.append((name, exc))
            out.console.print(Text(f"the {name} failed: " + crash_line(exc, name), style="bold red"), soft_wrap=True)
    for path in written:
        out.console.print(f"report written: {path}", highlight=False, soft_wrap=True)
    return written


def exit_code(report: RunReport, console: Console) -> int:
    """The run's exit code: 0 clean, 1 findings, 2 a report file not written, 3 a harness bug.

    Hook (issue 13): exit codes tell who is broken; a harness bug (a ``harness.error`` finding, a
    crashed sink) outranks everything, and the user is told so in one line.
    """
    crashed = [exc for _, exc in report.sink_errors if not isinstance(exc, (OSError, UserError))]
    if has_harness_error(report.results):
        console.print(
            Text("internal error: the harness failed on some exchanges (see the harness.error findings); exit 3", style="bold red"),
            soft_wrap=True,
        )
    if crashed or has_harness_error(report.results):
        return EXIT_HARNESS
    if report.sink_errors:
        return EXIT_USAGE
    return EXIT_CLEAN if report.ok else EXIT_FINDINGS


def guarded_run(harness: Harness, cassette: Cassette) -> CassetteResult:
    """``harness.run(cassette)``; a harness bug becomes a ``harness.error`` finding on that cassette.

    Hook (issue 13): one cassette that trips a bug does not end the run; it exits 3 at the end.
    """
    try:
        return harness.run(cassette)
    except UserError:
        raise
    except Exception as exc:
        finding = harness_error_finding(exc, cassette.id, 0)
        return CassetteResult(cassette.id, [], {HARNESS_ERROR: Outcome([finding])}, error=finding.message)


MAX_CONCURRENCY = 64


def _guessed(result: CassetteResult) -> bool:
    """Whether the fake upstream had to guess at one of ``result``'s exchanges: a request it
    matched by fit rather than by its last message, one it matched to no turn, or a call the
    turn expects that it never saw (it may have been taken for another cassette's)."""
    for exchange in result.exchanges:
        if exchange.upstream_unmatched:
            return True
        if exchange.upstream_expected and not exchange.upstream_requests:
            return True
        if any(entry.get("match") != "exact" for entry in exchange.upstream_requests):
            return True
    return False


def _keys(cassette: Cassette) -> set[str]:
    return {turn.match_key for turn in cassette.turns if turn.match_key}


def run_concurrently(
    cassettes: Sequence[Cassette],
    run: Callable[[Cassette], CassetteResult],
    n: int,
    done: Callable[[Cassette], None] | None = None,
) -> tuple[dict[str, CassetteResult], dict[str, set[str]]]:
    """Run up to ``n`` cassettes at once, in order as far as they may start: a cassette waits
    while another that shares one of its turns' last messages runs. Returns the results by id and,
    for each cassette, the ids of those that ran at the same time."""
    results: dict[str, CassetteResult] = {}
    overlapped: dict[str, set[str]] = {c.id: set() for c in cassettes}
    keys_of = {c.id: _keys(c) for c in cassettes}
    pending = list(cassettes)
    running: dict[Future[CassetteResult], Cassette] = {}
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="cassette") as pool:
        while pending or running:
            busy = set().union(*(keys_of[c.id] for c in running.values()))
            for cassette in list(pending):
                if len(running) >= n:
                    break
                keys = keys_of[cassette.id]
                if keys & busy:
                    continue
                pending.remove(cassette)
                for other in running.values():
                    overlapped[cassette.id].add(other.id)
                    overlapped[other.id].add(cassette.id)
                running[pool.submit(run, cassette)] = cassette
                busy |= keys
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                cassette = running.pop(future)
                try:
                    results[cassette.id] = future.result()
                except BaseException:
                    for pending_future in running:
                        pending_future.cancel()
                    raise
                if done is not None:
                    done(cassette)
    return results, overlapped


def _near(word: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(set(names)), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def check_settings(settings: Settings) -> None:
    """Every mistake in ``settings`` that can be seen before a run, as one :class:`OptionError`."""
    if settings.profile not in PROFILES:
        raise OptionError(f"--profile: unknown profile {settings.profile!r}; choose one of {', '.join(PROFILES)}")
    names = [*REGISTRY, *{spec.group for spec in REGISTRY.values()}]
    for flag, patterns in (("--checks", settings.checks), ("--exclude-checks", settings.exclude_checks)):
        for pattern in patterns:
            if not selected_checks([pattern], None):
                raise OptionError(
                    f"{flag}: {pattern!r} matches no check id, group or prefix*{_near(pattern.rstrip('*'), names)}"
                    " (list them: responses-conformance checks)"
                )
    if settings.reference_faults:
        from conformance.reference import FAULTS

        for fault in settings.reference_faults:
            if fault not in FAULTS:
                raise OptionError(
                    f"--reference-fault: unknown fault {fault!r}{_near(fault, FAULTS)} (list them: responses-conformance faults)"
                )
        if settings.proxy_url or settings.proxy_cmd:
            raise OptionError("--reference-fault applies to the embedded reference bridge, not to --proxy-url/--proxy-cmd")
    if not 0 <= settings.concurrency <= MAX_CONCURRENCY:
        raise OptionError(f"--concurrency: {settings.concurrency} is not between 1 and {MAX_CONCURRENCY}")
    if settings.clients:
        select_clients_of(settings.clients)


def select_clients_of(spec: str) -> list[ClientSpec]:
    """``--clients SET`` as client runners; :class:`ClientSelectionError` (a user error) if unknown."""
    from conformance.clients import ClientSelectionError, select_clients

    try:
        return select_clients(spec)
    except ClientSelectionError as exc:
        raise ClientSelectionError(f"--clients: {exc}") from None


class Pipeline:
    """One run: its settings, its harness (servers and cassettes), its expectation file.

    Raises a :class:`~conformance.exceptions.UserError` subclass on anything the user can fix
    (options that do not go together, a bad expectation file, at :meth:`start` an unreachable
    proxy), so each front end turns it into one line and a usage exit.
    """

    def __init__(self, settings: Settings, outputs: OutputSettings | None = None, *, runner: str = "cli") -> None:
        self.settings = settings
        self.outputs = outputs or OutputSettings()
        self.runner = runner
        problem = self.outputs.check()
        if problem is not None:
            raise OptionError(problem)
        check_settings(settings)
        self.clients: list[ClientSpec] = select_clients_of(settings.clients) if settings.clients else []
        self.expectations: Expectations | None = self.outputs.load_expectations()
        self.harness = Harness(settings)
        self.started_at = now()

    # -- load cassettes, start servers ----------------------------------------------------------
    @property
    def cassettes(self) -> list[Cassette]:
        return self.harness.cassettes

    @property
    def load_errors(self) -> list[CassetteError]:
        return self.harness.load_errors

    def load(self) -> None:
        self.harness.load()

    def start(self) -> None:
        """Load the cassettes and start the fake upstream and the target (HarnessError if not)."""
        self.harness.start()

    def attach(self, proxy_url: str, upstream_url: str | None) -> None:
        """Use the servers another process started (pytest-xdist workers)."""
        self.harness.attach(proxy_url, upstream_url)

    def stop(self) -> None:
        self.harness.stop()

    @property
    def target(self) -> Target:
        s = self.settings
        return Target.describe(
            name=self.outputs.target_name,
            proxy_cmd=s.proxy_cmd,
            proxy_url=s.proxy_url,
            reference_faults=s.reference_faults,
            url=self.harness.proxy_url,
        )

    # -- run exchanges and check them -----------------------------------------------------------
    def run_cassette(self, cassette: Cassette) -> CassetteResult:
        """Every turn of one cassette against the target, every selected check on each exchange.

        The harness sends each request in :meth:`Harness._exchange`; that is where a turn in
        flight is registered with the fake upstream before its request goes out.
        """
        result = guarded_run(self.harness, cassette)  # hook (issue 13)
        if self.clients:
            from conformance.clients.live import replay_result

            replay_result(result, cassette, self.clients, live=self.settings.live)
        return result

    def run_all(self) -> list[CassetteResult]:
        return self.run_many(self.cassettes)

    def run_many(
        self,
        cassettes: Sequence[Cassette],
        *,
        done: Callable[[Cassette], None] | None = None,
        concurrency: int | None = None,
    ) -> list[CassetteResult]:
        """Run ``cassettes`` (``--concurrency`` of them at once) and return their results in order.

        The results are those of a serial run: two cassettes that share a turn's last message
        never run at once (the fake upstream could not tell their requests apart), and a cassette
        whose exchanges the fake upstream had to guess at (a changed last message, an unmatched or a
        missing upstream call) is run again alone, together with every cassette that ran beside
        it, and that result is kept. ``done(cassette)`` is called as each one finishes.
        """
        n = self.settings.effective_concurrency if concurrency is None else concurrency
        if n <= 1 or len(cassettes) <= 1:
            results = []
            for cassette in cassettes:
                results.append(self.run_cassette(cassette))
                if done is not None:
                    done(cassette)
            return results
        concurrent, overlapped = run_concurrently(cassettes, lambda c: guarded_run(self.harness, c), n, done)
        suspect = {cid for cid, result in concurrent.items() if _guessed(result)}
        again = suspect | {other for cid in suspect for other in overlapped[cid]}
        for cassette in cassettes:  # serial, in order: as if --concurrency 1
            if cassette.id in again:
                concurrent[cassette.id] = guarded_run(self.harness, cassette)
        results = [concurrent[c.id] for c in cassettes]
        if self.clients:
            from conformance.clients.live import replay_result

            for result, cassette in zip(results, cassettes, strict=True):
                replay_result(result, cassette, self.clients, live=self.settings.live)
        return results

    # -- judge expectations and report ----------------------------------------------------------
    def report(
        self,
        results: Sequence[CassetteResult],
        *,
        aborted: bool = False,
        snapshots: Mapping[str, str] | None = None,
        snapshot_dir: str | None = None,
    ) -> RunReport:
        """Judge ``results`` against the expectation file (rewriting it when asked); the report."""
        o = self.outputs
        target = self.target
        judgement: Judgement | None = None
        reasons: dict[Pair, str] = {}
        written: str | None = None
        exp = self.expectations
        if exp is not None and (results or o.update_expectations):
            # Hook (issue 13): a harness bug is never a known failure of the proxy.
            outcomes = {p: v for p, v in pair_outcomes(results, o.fail_on).items() if p[1] != HARNESS_ERROR}
            if o.update_expectations and o.expectations:
                new = {
                    (r.cassette_id, c): first_message(out, o.fail_on)
                    for r in results
                    for c, out in r.outcomes.items()
                    if c != HARNESS_ERROR
                }
                exp = updated(exp, outcomes, reasons=new, target=target.name)
                written = str(exp.save(o.expectations))
                self.expectations = exp
            judgement = judge_all(
                exp, outcomes, cassettes=[c.id for c in self.cassettes], checks=REGISTRY, strict=o.strict_expectations
            )
            # issue 10: failures that belong to a problem the file lists by id are known too
            judgement = forgive_known_problems(judgement, results, o.expectations, o.fail_on)
            reasons = {
                p: exp.known.get(p, "known problem") for p, v in judgement.verdicts.items() if v in (Verdict.XFAIL, Verdict.FIXED)
            }
        report = build_report(
            results,
            target=target,
            profile=self.settings.profile,
            fail_on=o.fail_on,
            runner=self.runner,
            started_at=self.started_at,
            load_errors=[str(e) for e in self.load_errors],
            judgement=judgement,
            reasons=reasons,
        )
        report.aborted = aborted
        report.expectations_written = written
        report.known_failures = len(exp.known) if exp is not None else 0
        report.snapshots = dict(snapshots or {})
        report.snapshot_dir = snapshot_dir
        report.clients = [c.name for c in self.clients]
        return report

    def write(self, report: RunReport, console: Console) -> list[Path]:
        return write_report(report, Output(console, self.outputs))
