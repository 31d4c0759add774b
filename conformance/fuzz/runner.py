"""The fuzz loop: generated cassettes against a target, each distinct problem shrunk and saved.

Every generated scenario becomes an in-memory cassette that the fake upstream serves under a
fresh match key; the harness runs it (stream and ``stream: false``) with the full check set. A
failing check is a *problem*: its check id plus its message with numbers, quoted values and ids
normalised away. Each problem gets its own exception class, so hypothesis tracks and shrinks each
one on its own; when it replays the minimal example for the last time, the runner writes it as
``<out>/<problem-id>.json`` (provenance: generated, the seed, the problem) and replays that file
through the harness to confirm it reproduces.

Hypothesis stops generating ten seconds after its first failure, so a campaign runs in rounds:
a problem already saved is not raised again, and the next round (seed + round) looks for new
ones until the example count or the time budget is spent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings
from hypothesis.control import current_build_context
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import Flaky

from conformance.cassette import Cassette, load_cassette, parse_cassette
from conformance.exceptions import CassetteError, HarnessError
from conformance.exchange import Finding, Severity
from conformance.expected import expect
from conformance.fuzz.strategies import Scenario, cassette_document, scenarios, to_cassette
from conformance.harness import Harness
from conformance.options import Settings
from conformance.run_report import CassetteResult

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # pragma: no cover - hypothesis depends on the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = ["FuzzConfig", "FuzzReport", "HarnessError", "Problem", "fuzz", "normalise_reason", "problem_id"]


class FuzzProblem(AssertionError):
    """Raised by the property for one problem; a subclass per problem id (hypothesis's bug key)."""

    problem: str


_CLASSES: dict[str, type[FuzzProblem]] = {}


def _problem_class(pid: str) -> type[FuzzProblem]:
    cls = _CLASSES.get(pid)
    if cls is None:
        cls = _CLASSES[pid] = type(f"FuzzProblem_{len(_CLASSES)}", (FuzzProblem,), {"problem": pid})
    return cls


_NORMALISE = [
    (re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`"), "'…'"),
    (re.compile(r"\([^()]*\)"), "(…)"),
    (re.compile(r"\b(?:resp|msg|fc|rs|call|chatcmpl|toolu|gen)[-_][A-Za-z0-9_:.-]+"), "ID"),
    (re.compile(r"\d+"), "N"),
    (re.compile(r"\s+"), " "),
]


def normalise_reason(message: str) -> str:
    """A finding's message with values taken out, so the same rule broken twice reads the same."""
    out = message.split("\n", 1)[0].removeprefix("[non-stream] ")
    for pattern, repl in _NORMALISE:
        out = pattern.sub(repl, out)
    return out.strip()[:200]


def problem_id(check_id: str, reason: str) -> str:
    """A stable file-name-safe id: the check id and a short hash of the normalised reason."""
    digest = hashlib.sha1(f"{check_id}\n{reason}".encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9.]+", "-", check_id.lower()).strip("-")[:60]
    return f"{slug}-{digest}"


@dataclass
class Problem:
    """One distinct problem: where it was first seen and the shrunk cassette that shows it."""

    id: str
    check_id: str
    reason: str
    first_seen: int
    message: str
    cassette: Path | None = None
    chunks: int = 0
    replayed: bool | None = None
    also: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "check_id": self.check_id,
            "reason": self.reason,
            "message": self.message,
            "first_seen": self.first_seen,
            "cassette": str(self.cassette) if self.cassette else None,
            "chunks": self.chunks,
            "replayed": self.replayed,
            "also": self.also,
        }


@dataclass
class FuzzConfig:
    """One campaign: the target (harness settings), how much to generate, where findings go."""

    settings: Settings = field(default_factory=Settings)
    examples: int = 100
    seed: int = 0
    out_dir: Path | None = Path("cassettes/found")
    time_budget: float | None = None
    database: Path | None = Path(".hypothesis/conformance-fuzz")
    backend: str | None = None
    max_rounds: int = 20
    shrink_seconds: float = 120.0
    progress: Callable[[str], None] | None = None


@dataclass
class FuzzReport:
    examples: int = 0
    exchanges: int = 0
    elapsed: float = 0.0
    rounds: int = 0
    seed: int = 0
    problems: list[Problem] = field(default_factory=list)
    stopped: str = "examples"
    flaky: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Generated exchanges per second (stream and non-stream each count)."""
        return self.exchanges / self.elapsed if self.elapsed > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "exchanges": self.exchanges,
            "elapsed_s": round(self.elapsed, 3),
            "exchanges_per_s": round(self.rate, 2),
            "rounds": self.rounds,
            "seed": self.seed,
            "stopped": self.stopped,
            "flaky": self.flaky,
            "problems": [p.to_json() for p in self.problems],
        }


def _problems_of(result: CassetteResult) -> list[tuple[str, Finding]]:
    """(problem id, first finding) of each distinct failing rule in a result, in a stable order."""
    seen: dict[str, Finding] = {}
    for f in result.failing():
        if f.message.removeprefix("[non-stream] ").startswith("… and "):
            continue  # a check's "and N more like the above" tail, not a problem of its own
        pid = problem_id(f.check_id, normalise_reason(f.message))
        seen.setdefault(pid, f)
    if result.error:
        pid = problem_id("harness.turn_not_sent", normalise_reason(result.error))
        seen.setdefault(pid, Finding("harness.turn_not_sent", Severity.ERROR, result.error))
    return sorted(seen.items())


def _classes(check_id: str) -> list[str]:
    """The catalog bug classes of a check (the found cassette's tags)."""
    from conformance.checks import REGISTRY

    spec = REGISTRY.get(check_id)
    return list(spec.classes) if spec is not None else []


def _chunks(doc: dict[str, Any]) -> int:
    return sum(len(i["chunks"]) for t in doc["turns"] for i in t["upstream"])


class _Campaign:
    def __init__(self, config: FuzzConfig, harness: Harness) -> None:
        self.config = config
        self.harness = harness
        self.report = FuzzReport(seed=config.seed)
        self.problems: dict[str, Problem] = {}
        self.calls = 0
        self.token = hashlib.sha1(str(time.time()).encode()).hexdigest()[:6]
        self.deadline = time.monotonic() + config.time_budget if config.time_budget else None
        self.calls_before = 0

    def over_budget(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def run_one(self, scenario: Scenario, cassette_id: str, prompt: str) -> CassetteResult:
        cassette = to_cassette(scenario, cassette_id, prompt)
        if self.harness.upstream is not None:
            self.harness.upstream.add([cassette])
        result = self.harness.run(cassette)
        self.report.exchanges += len(result.exchanges)
        return result

    def prop(self, scenario: Scenario) -> None:
        final = current_build_context().is_final
        if not final and self.over_budget():
            return
        self.calls += 1
        n = self.calls
        result = self.run_one(scenario, f"fuzz-{self.token}-{n}", f"fuzz probe {self.token} {n}")
        found = _problems_of(result)
        for pid, finding in found:
            if pid not in self.problems:
                self._note_new(pid, finding)
        fresh = [(pid, f) for pid, f in found if self.problems[pid].cassette is None]
        if not fresh:
            return
        pid, finding = fresh[0]
        if final:
            self._save(scenario, pid, finding, [p for p, _ in found if p != pid])
        raise _problem_class(pid)(f"{finding.check_id}: {finding.message}")

    def _note_new(self, pid: str, finding: Finding) -> None:
        seen = self.calls_before + self.calls
        self.problems[pid] = Problem(pid, finding.check_id, normalise_reason(finding.message), seen, finding.message)
        if self.config.progress:
            self.config.progress(f"new problem after {seen} examples: {finding.check_id}: {finding.message[:160]}")

    def _save(self, scenario: Scenario, pid: str, finding: Finding, also: list[str]) -> None:
        """The final (shrunk) example of a problem: write it as ``<out>/<problem-id>.json``."""
        problem = self.problems[pid]
        problem.message = finding.message
        problem.also = also
        doc = cassette_document(
            scenario,
            pid,
            f"fuzz {pid}",
            {
                "seed": self.config.seed,
                "problem": {"id": pid, "check_id": finding.check_id, "reason": problem.reason, "message": finding.message[:500]},
                "target": _target_name(self.config.settings),
                "notes": f"shrunk by hypothesis; reads: {scenario.stream.read_mode}",
            },
            tags=_classes(finding.check_id),
        )
        doc = self._minimise(doc, pid)
        problem.chunks = _chunks(doc)
        out = self.config.out_dir
        if out is None:
            problem.cassette = Path(f"<memory:{pid}>")
            return
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{pid}.json"
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
        problem.cassette = path
        problem.replayed = self._replays(path, pid)

    def _minimise(self, doc: dict[str, Any], pid: str, limit: int = 30) -> dict[str, Any]:
        """Drop whole network reads the problem does not need (hypothesis cannot drop the frames
        a backend shape always sends); ``[DONE]`` stays, so the stream keeps its shape's ending."""
        if len(doc["turns"]) != 1:
            return doc
        i = tries = 0
        while tries < limit:
            chunks = doc["turns"][0]["upstream"][0]["chunks"]
            if i >= len(chunks) or len(chunks) <= 1:
                break
            if "[DONE]" in str(chunks[i].get("data", "")):
                i += 1
                continue
            tries += 1
            trial = json.loads(json.dumps(doc))
            kept = trial["turns"][0]["upstream"][0]["chunks"]
            del kept[i]
            for n, chunk in enumerate(kept):
                chunk["t_ms"] = n
            if self._shows(trial, pid, tries):
                doc = trial
            else:
                i += 1
        turn = doc["turns"][0]
        try:
            outcome = expect(parse_cassette(doc).turns[0].upstream[0]).outcome
        except CassetteError:
            return doc
        if outcome in ("completed", "incomplete", "failed"):
            turn["expect"] = {"outcome": outcome}
        else:
            turn.pop("expect", None)
        return doc

    def _shows(self, doc: dict[str, Any], pid: str, n: int) -> bool:
        """Whether a candidate cassette (under its own match key) still shows problem ``pid``."""
        trial = json.loads(json.dumps(doc))
        key = f"fuzz {pid} minimise {self.token} {n}"
        trial["id"] = f"min-{self.token}-{n}"
        request = trial["turns"][0]["request"]
        inp = request.get("input")
        if isinstance(inp, list) and inp and isinstance(inp[-1], dict):
            last = inp[-1]
            last["content"] = key if isinstance(last.get("content"), str) else [{"type": "input_text", "text": key}]
        else:
            request["input"] = key
        try:
            cassette = parse_cassette(trial)
        except CassetteError:
            return False
        return self._problem_in(cassette, pid)

    def _problem_in(self, cassette: Cassette, pid: str) -> bool:
        """Run ``cassette`` (the fake upstream learns it first): does it show problem ``pid``?"""
        if self.harness.upstream is not None:
            self.harness.upstream.add([cassette])
        result = self.harness.run(cassette)
        return pid in {p for p, _ in _problems_of(result)}

    def _replays(self, path: Path, pid: str) -> bool:
        """The written file loads as a normal cassette and shows the problem again."""
        try:
            cassette = load_cassette(path)
        except CassetteError:
            return False
        return self._problem_in(cassette, pid)


def _target_name(s: Settings) -> str:
    if s.proxy_cmd:
        return f"proxy-cmd: {s.proxy_cmd.split()[0]}"
    if s.proxy_url:
        return f"proxy-url: {s.proxy_url}"
    faults = ",".join(s.reference_faults)
    return f"reference bridge{' with ' + faults if faults else ''}"


def _database(config: FuzzConfig) -> ExampleDatabase | None:
    if config.database is None:
        return None
    key = hashlib.sha1(f"{_target_name(config.settings)}|{config.backend}".encode()).hexdigest()[:12]
    return DirectoryBasedExampleDatabase(str(config.database / key))


def _flatten(exc: BaseException) -> Iterable[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _flatten(inner)
    else:
        yield exc


@contextlib.contextmanager
def _shrink_limit(seconds: float) -> Iterator[None]:
    """Cap hypothesis's shrinking time per round (its own cap is 300 s; an internal knob, so a
    hypothesis without it just keeps its default)."""
    from hypothesis.internal.conjecture import engine

    old = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    if old is None:
        yield
        return
    engine.MAX_SHRINKING_SECONDS = max(1, int(seconds))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        engine.MAX_SHRINKING_SECONDS = old  # type: ignore[attr-defined]


def fuzz(config: FuzzConfig, harness: Harness | None = None) -> FuzzReport:
    """Run one campaign; raises :class:`HarnessError` only when the target cannot be run at all."""
    own = harness is None
    if harness is None:
        harness = Harness(replace(config.settings, cassette_dirs=(), stream_only=False))
        try:
            harness.start(load=False)
        except BaseException:
            harness.stop()  # a proxy command that started before the failure does not outlive it
            raise
    campaign = _Campaign(config, harness)
    report = campaign.report
    start = time.monotonic()
    database = _database(config)
    try:
        for round_no in range(config.max_rounds):
            # Later rounds: new problems while examples remain, then one round per batch of
            # problems seen but not yet shrunk (each was second to another one in its example).
            remaining = config.examples - campaign.calls_before - campaign.calls
            unsaved = [p for p in campaign.problems.values() if p.cassette is None]
            if remaining <= 0 and not unsaved:
                break
            if campaign.over_budget():
                report.stopped = "time budget"
                break
            remaining = remaining if remaining > 0 else min(config.examples, 100)
            report.rounds = round_no + 1
            campaign.calls_before += campaign.calls
            campaign.calls = 0
            known = {pid for pid, p in campaign.problems.items() if p.cassette is not None}
            test = given(scenarios(config.backend))(campaign.prop)
            test = hypothesis_settings(
                max_examples=remaining,
                database=database,
                deadline=None,
                derandomize=False,
                report_multiple_bugs=True,
                suppress_health_check=list(HealthCheck),
                verbosity=Verbosity.quiet,
                phases=[Phase.reuse, Phase.generate, Phase.shrink] if database else [Phase.generate, Phase.shrink],
                print_blob=False,
            )(test)
            test = hypothesis_seed(config.seed + round_no)(test)
            shrink = config.shrink_seconds
            if campaign.deadline is not None:
                shrink = min(shrink, max(1.0, campaign.deadline - time.monotonic()))
            try:
                with _shrink_limit(shrink):
                    test()
            except Flaky as exc:
                report.flaky.append(str(exc).split("\n", 1)[0][:300])
            except (FuzzProblem, BaseExceptionGroup) as exc:
                for inner in _flatten(exc):
                    if isinstance(inner, Flaky):
                        report.flaky.append(str(inner).split("\n", 1)[0][:300])
                    elif not isinstance(inner, FuzzProblem):
                        raise
            saved = {pid for pid, p in campaign.problems.items() if p.cassette is not None}
            if saved == known and campaign.calls_before + campaign.calls >= config.examples:
                break  # a round without progress after the budget: what is left does not reproduce
        else:
            report.stopped = "rounds"
    finally:
        report.examples = campaign.calls_before + campaign.calls
        report.elapsed = time.monotonic() - start
        if own:
            harness.stop()
    report.problems = sorted(campaign.problems.values(), key=lambda p: p.first_seen)
    return report

