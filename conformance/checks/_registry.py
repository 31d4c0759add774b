"""The check registry: a check is a plain function over an exchange, with an id, severity and doc.

``@check("lifecycle.single_terminal_last", group="lifecycle", classes=("S1",))`` registers the
function; its docstring is the doc shown by ``responses-conformance checks``. A check yields
:class:`Issue` objects; :func:`run_checks` turns them into :class:`Finding` objects carrying the
check id, the severity for the active profile, the raw line and a reproduction command.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import json
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from conformance._model import Exchange, Finding, Severity
from conformance.stream import Analysis, analyze

__all__ = [
    "PROFILES",
    "REGISTRY",
    "CheckSpec",
    "Context",
    "Issue",
    "Outcome",
    "check",
    "curl_command",
    "run_checks",
]

PROFILES = ("openai", "open-responses", "lenient", "strict")
MAX_FINDINGS_PER_CHECK = 8


@dataclass
class Issue:
    message: str
    event_index: int | None = None
    pointer: str | None = None
    expected: Any = None
    actual: Any = None


@dataclass
class Outcome:
    """One check on one exchange: its findings, or why it was skipped."""

    findings: list[Finding] = field(default_factory=list)
    skipped: str | None = None


@dataclass(frozen=True)
class CheckSpec:
    id: str
    group: str
    func: Callable[[Context], Iterable[Issue]]
    doc: str
    classes: tuple[str, ...]
    severities: dict[str, Severity | None]
    needs_stream: bool = True
    needs_upstream: bool = False

    def severity(self, profile: str) -> Severity | None:
        """Severity under ``profile``; None means the check does not apply there."""
        return self.severities.get(profile, self.severities["openai"])

    @property
    def summary(self) -> str:
        return self.doc.split("\n\n", 1)[0].replace("\n", " ")


REGISTRY: dict[str, CheckSpec] = {}


def check(
    check_id: str,
    *,
    severity: str = "error",
    classes: tuple[str, ...] = (),
    profiles: dict[str, str | None] | None = None,
    needs_stream: bool = True,
    needs_upstream: bool = False,
) -> Callable[[Callable[[Context], Iterable[Issue]]], Callable[[Context], Iterable[Issue]]]:
    group = check_id.split(".", 1)[0]

    def register(func: Callable[[Context], Iterable[Issue]]) -> Callable[[Context], Iterable[Issue]]:
        if check_id in REGISTRY:
            raise ValueError(f"check id {check_id!r} registered twice")
        base = Severity(severity)
        severities: dict[str, Severity | None] = {
            "openai": base,
            "open-responses": base,
            "lenient": Severity.WARNING if base is Severity.ERROR else base,
            "strict": Severity.ERROR,
        }
        for name, value in (profiles or {}).items():
            if name not in PROFILES:
                raise ValueError(f"{check_id}: unknown profile {name!r}")
            severities[name] = Severity(value) if value else None
        REGISTRY[check_id] = CheckSpec(
            id=check_id,
            group=group,
            func=func,
            doc=inspect.cleandoc(func.__doc__ or check_id),
            classes=classes,
            severities=severities,
            needs_stream=needs_stream,
            needs_upstream=needs_upstream,
        )
        return func

    return register


class Context:
    """What a check sees: the exchange and, built once and shared, its stream analysis."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    @cached_property
    def analysis(self) -> Analysis:
        return analyze(self.exchange)

    @property
    def ok_stream(self) -> bool:
        """True when there is a 2xx response whose body (even an empty one) is judged as a stream."""
        ex = self.exchange
        return ex.status is not None and 200 <= ex.status < 300

    def no_stream_reason(self) -> str:
        ex = self.exchange
        if ex.transport_error and ex.status is None:
            return f"no response to check ({ex.transport_error.kind})"
        if ex.status is not None and not 200 <= ex.status < 300:
            return f"no stream to check: HTTP {ex.status}"
        return "no stream to check: the response body is empty"

    def raw(self, event_index: int | None) -> str | None:
        if event_index is None or not self.ok_stream:
            return None
        events = self.analysis.sse_events
        if 0 <= event_index < len(events):
            raw = events[event_index].raw
            return raw if len(raw) <= 400 else raw[:400] + f"… [{len(raw)} chars]"
        return None


def curl_command(exchange: Exchange) -> str:
    """A ``curl -N`` line that sends the same request (API keys shown as a variable, never inline)."""
    parts = ["curl", "-N", "-sS", exchange.url, "-H", "Content-Type: application/json"]
    for key, value in exchange.request_headers.items():
        if key.lower() in ("content-type", "accept"):
            continue
        if key.lower() in ("authorization", "api-key", "x-api-key"):
            value = "Bearer $OPENAI_API_KEY" if key.lower() == "authorization" else "$API_KEY"
            parts += ["-H", f"{key}: {value}"]
            continue
        parts += ["-H", f"{key}: {value}"]
    cmd = " ".join(shlex.quote(p) if "$" not in p else f'"{p}"' for p in parts)
    body = json.dumps(exchange.request, ensure_ascii=False, separators=(",", ":"))
    return f"{cmd} -d {shlex.quote(body)}"


def _selected(select: Iterable[str] | None, exclude: Iterable[str] | None) -> list[CheckSpec]:
    def matches(spec: CheckSpec, patterns: Iterable[str]) -> bool:
        return any(spec.id == p or spec.group == p or (p.endswith("*") and spec.id.startswith(p[:-1])) for p in patterns)

    specs = list(REGISTRY.values())
    if select:
        sel = list(select)
        specs = [s for s in specs if matches(s, sel)]
    if exclude:
        exc = list(exclude)
        specs = [s for s in specs if not matches(s, exc)]
    return specs


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a large stream is analysed.

    Analysis allocates one dict per event and keeps them all alive, which makes CPython's
    generational collector rescan a growing heap again and again (superlinear cost on long
    streams); nothing here creates reference cycles, so there is nothing for it to find.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_checks(
    exchange: Exchange,
    *,
    profile: str = "openai",
    select: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    context: Context | None = None,
) -> dict[str, Outcome]:
    """Run the selected checks; returns check id -> outcome (no findings and no skip: passed)."""
    with _gc_paused():
        return _run_checks(exchange, profile, select, exclude, context)


def _run_checks(
    exchange: Exchange,
    profile: str,
    select: Iterable[str] | None,
    exclude: Iterable[str] | None,
    context: Context | None,
) -> dict[str, Outcome]:
    ctx = context or Context(exchange)
    repro = curl_command(exchange)
    results: dict[str, Outcome] = {}
    for spec in _selected(select, exclude):
        severity = spec.severity(profile)
        if severity is None:
            results[spec.id] = Outcome(skipped=f"not part of the {profile!r} profile")
            continue
        if spec.needs_upstream and exchange.live:
            results[spec.id] = Outcome(skipped="live mode: there is no recorded upstream to compare with")
            continue
        if spec.needs_stream and not ctx.ok_stream:
            results[spec.id] = Outcome(skipped=ctx.no_stream_reason())
            continue
        found: list[Finding] = []
        issues: Iterator[Issue] = iter(spec.func(ctx))
        for issue in issues:
            if len(found) == MAX_FINDINGS_PER_CHECK:
                rest = 1 + sum(1 for _ in issues)
                found.append(
                    Finding(spec.id, severity, f"… and {rest} more like the above", exchange.cassette_id, exchange.turn)
                )
                break
            found.append(
                Finding(
                    check_id=spec.id,
                    severity=severity,
                    message=issue.message,
                    cassette_id=exchange.cassette_id,
                    turn=exchange.turn,
                    event_index=issue.event_index,
                    raw=ctx.raw(issue.event_index),
                    pointer=issue.pointer,
                    expected=issue.expected,
                    actual=issue.actual,
                    repro=repro,
                )
            )
        results[spec.id] = Outcome(found)
    return results
