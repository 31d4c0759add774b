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
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance._model import Finding, Severity
from conformance.cassette import Cassette, CassetteError
from conformance.checks import REGISTRY, Outcome
from conformance.checks._registry import _selected
from conformance.harness import CassetteResult, Harness, HarnessError, Settings
from conformance.report import format_finding, render_report

ENV_PROXY = "RESPONSES_CONFORMANCE_PROXY_URL"
ENV_UPSTREAM = "RESPONSES_CONFORMANCE_UPSTREAM_URL"
ENV_RUN_DIR = "RESPONSES_CONFORMANCE_RUN_DIR"
PROPERTY = "conformance"


class ConformanceFailure(Exception):
    def __init__(self, findings: list[Finding]) -> None:
        super().__init__(f"{len(findings)} findings")
        self.findings = findings


class Suite:
    """Per-process state of a conformance run (stored in ``config.stash``)."""

    def __init__(self, settings: Settings, fail_on: Severity) -> None:
        self.settings = settings
        self.fail_on = fail_on
        self.harness = Harness(settings)
        self.cache: dict[str, CassetteResult] = {}
        self.run_dir: Path | None = None
        self.started = False
        self.reported: dict[str, dict[str, Any]] = {}
        self.owns_run_dir = False

    # -- lifecycle -------------------------------------------------------------------------
    def start_servers(self) -> None:
        """Controller (or single process): start upstream and target, publish them for workers."""
        self.harness.start()
        self.started = True
        self.run_dir = Path(tempfile.mkdtemp(prefix="responses-conformance-"))
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
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(res.to_json()), "utf-8")
                    tmp.replace(path)
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
        result = self.suite.result(self.cassette)
        outcome = result.outcomes.get(self.check_id, Outcome(skipped="not run"))
        self.user_properties.append(
            (
                PROPERTY,
                json.dumps(
                    {
                        "cassette": self.cassette.id,
                        "check": self.check_id,
                        "skipped": outcome.skipped,
                        "findings": [f.to_json() for f in outcome.findings],
                    }
                ),
            )
        )
        if outcome.skipped:
            pytest.skip(outcome.skipped)
        failing = [f for f in outcome.findings if f.severity.rank >= self.suite.fail_on.rank]
        if failing:
            raise ConformanceFailure(failing)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            spec = REGISTRY[self.check_id]
            body = "\n\n".join(format_finding(f) for f in excinfo.value.findings)
            return f"{spec.summary}\n\n{body}"
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
    for name, value in report.user_properties:
        if name == PROPERTY and isinstance(value, str):
            data = json.loads(value)
            suite.reported[f"{data['cassette']}::{data['check']}"] = data


def results_for_report(suite: Suite) -> list[CassetteResult]:
    by_cassette: dict[str, CassetteResult] = {}
    for data in suite.reported.values():
        res = by_cassette.setdefault(data["cassette"], CassetteResult(data["cassette"], [], {}))
        res.outcomes[data["check"]] = Outcome([Finding.from_json(f) for f in data["findings"]], data["skipped"])
    order = {c.id: i for i, c in enumerate(suite.harness.cassettes)}
    return sorted(by_cassette.values(), key=lambda r: order.get(r.cassette_id, 10**6))


def terminal_summary(suite: Suite, terminalreporter: Any) -> None:
    from rich.console import Console

    results = results_for_report(suite)
    if not results and not suite.harness.load_errors:
        return
    tw = terminalreporter._tw
    console = Console(file=tw, force_terminal=tw.hasmarkup, soft_wrap=False, width=max(tw.fullwidth, 150))
    s = suite.settings
    target = s.proxy_cmd or s.proxy_url or "embedded reference bridge"
    render_report(console, results, target=target, profile=s.profile, load_errors=[str(e) for e in suite.harness.load_errors])


__all__ = [
    "CassetteErrorItem",
    "CheckItem",
    "ConformanceFailure",
    "HarnessError",
    "Suite",
    "collect_items",
    "record_report",
    "terminal_summary",
]
