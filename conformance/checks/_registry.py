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
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from conformance.cassette import Cassette, Interaction, Turn
from conformance.checks._profiles import LENIENT, default_severity, finding_impact, finding_severity
from conformance.exchange import PROFILES, Exchange, Finding, Outcome, Severity
from conformance.expected import Expected, expect
from conformance.final_response import response_of
from conformance.stream import Analysis, analyze

__all__ = [
    "PROFILES",
    "REGISTRY",
    "CheckSpec",
    "Context",
    "Issue",
    "Outcome",
    "Skip",
    "check",
    "curl_command",
    "run_checks",
    "selected_checks",
    "status_matches",
]

_REASON_DIGITS = re.compile(r"\d+")


@dataclass
class Issue:
    message: str
    event_index: int | None = None
    pointer: str | None = None
    expected: Any = None
    actual: Any = None


class Skip(Exception):
    """Raised by a check that finds nothing it can judge in this exchange; the reason is shown."""


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
    modes: tuple[str, ...] = ("stream",)
    moots: tuple[str, ...] = ()

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
    modes: tuple[str, ...] | None = None,
    moots: tuple[str, ...] = (),
) -> Callable[[Callable[[Context], Iterable[Issue]]], Callable[[Context], Iterable[Issue]]]:
    """Register a check.

    ``needs_stream``: judge only a 2xx answer to a streaming request (skipped on the ``stream:
    false`` exchange and on error answers). ``needs_upstream``: compares with the recorded
    upstream (skipped in live mode). ``modes``: which exchanges it runs on (default: stream only
    when ``needs_stream``, else both). ``profiles``: severity per profile where it differs from
    ``severity`` (None: not part of that profile); the ``lenient`` column comes from
    :data:`conformance.checks._profiles.LENIENT`. ``moots``: checks (ids, or prefixes ending in
    ``*``) whose findings on the same exchange follow from this one failing; the report folds them
    under it as consequences (:mod:`conformance.problems`).
    """
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
        severities["openai"] = default_severity(check_id, severities["openai"])  # clients: measured impact
        if check_id in LENIENT:
            lenient = LENIENT[check_id][0]
            severities["lenient"] = Severity(lenient) if lenient else None
        REGISTRY[check_id] = CheckSpec(
            id=check_id,
            group=group,
            func=func,
            doc=inspect.cleandoc(func.__doc__ or check_id),
            classes=classes,
            severities=severities,
            needs_stream=needs_stream,
            needs_upstream=needs_upstream,
            modes=modes or (("stream",) if needs_stream else ("stream", "nonstream")),
            moots=moots,
        )
        return func

    return register


class Context:
    """What a check sees: the exchange, its stream analysis (built once, shared) and, when the
    harness ran a cassette, the cassette turn, the upstream interaction the proxy was answered
    with (the oracle's source), the streamed exchange of the same turn for a ``stream: false``
    one (``peer``), and the exchanges of the earlier turns (``previous``)."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        cassette: Cassette | None = None,
        turn: Turn | None = None,
        interaction: Interaction | None = None,
        peer: Exchange | None = None,
        previous: Iterable[Exchange] = (),
    ) -> None:
        self.exchange = exchange
        self.cassette = cassette
        self.turn = turn
        self.interaction = interaction
        self.peer = peer
        self.previous = list(previous)

    @cached_property
    def analysis(self) -> Analysis:
        return analyze(self.exchange)

    @cached_property
    def expected(self) -> Expected | None:
        """The oracle for the interaction the proxy received; None when it received none."""
        return expect(self.interaction) if self.interaction is not None else None

    @cached_property
    def planned(self) -> Expected | None:
        """The oracle for what the proxy received or, if it called nothing, what it would have received."""
        if self.interaction is not None:
            return self.expected
        if self.turn is not None and self.turn.upstream:
            return expect(self.turn.upstream[0])
        return None

    @cached_property
    def final(self) -> tuple[dict[str, Any] | None, str | None]:
        """The proxy's final Response object and its terminal status (see :func:`response_of`)."""
        ex = self.exchange
        if ex.mode != "nonstream" and ex.status is not None and 200 <= ex.status < 300:
            return response_of(ex, self.analysis)  # the stream parsed once per exchange
        return response_of(ex)

    @property
    def upstream_request(self) -> dict[str, Any] | None:
        """The chat request the proxy sent upstream for this exchange (the last one, if it retried).

        A request the fake upstream could match to no turn is still this exchange's when it is the
        only unmatched one of its time: the translation checks then say what the proxy changed
        (an emptied or foreign conversation), and ``upstream.matched`` folds under them.
        """
        entries = self.exchange.upstream_requests or self.exchange.upstream_unmatched[-1:]
        if not self.exchange.upstream_requests and len(self.exchange.upstream_unmatched) != 1:
            entries = []
        for entry in reversed(entries):
            body = entry.get("body")
            if isinstance(body, dict):
                return body
        return None

    def allowed_statuses(self) -> list[str]:
        """The HTTP answers a correct proxy may give: "2xx", "4xx", "5xx" or exact codes like "400"."""
        turn = self.turn
        if turn is None:
            return ["2xx"]
        err = turn.expected_error
        own = all(200 <= i.status < 300 for i in turn.upstream)  # the error is the proxy's own refusal
        if err is not None and (own or not self.exchange.live):
            return [str(err["status"])] + (["2xx"] if err.get("success_allowed") else [])
        if self.exchange.live:
            return ["2xx"]  # a model server has no recorded upstream failure to relay
        planned = self.planned
        if planned is not None and planned.outcome == "http_error":
            return ["4xx" if 400 <= planned.upstream_status < 500 else "5xx"]
        if planned is not None and "failed" in planned.outcomes and self.exchange.mode == "nonstream":
            return ["2xx", "5xx"]
        return ["2xx"]

    def status_allowed(self, status: int) -> bool:
        return any(status_matches(status, token) for token in self.allowed_statuses())

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


def status_matches(status: int, token: str) -> bool:
    """``status`` fits "2xx"/"4xx"/"5xx" or equals an exact code."""
    if token.endswith("xx"):
        return status // 100 == int(token[0])
    return str(status) == token


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
    if exchange.raw_body is not None:
        body = exchange.raw_body
    return f"{cmd} -d {shlex.quote(body)}"


def selected_checks(select: Iterable[str] | None, exclude: Iterable[str] | None) -> list[CheckSpec]:
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


_selected = selected_checks  # the old private name, for callers not yet moved


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
    label = "[non-stream] " if exchange.mode == "nonstream" else ""
    results: dict[str, Outcome] = {}
    for spec in _selected(select, exclude):
        severity = spec.severity(profile)
        if severity is None:
            results[spec.id] = Outcome(skipped=f"not part of the {profile!r} profile")
            continue
        if exchange.mode not in spec.modes:
            what = "the stream: false exchange" if exchange.mode == "nonstream" else "a streamed exchange"
            results[spec.id] = Outcome(skipped=f"does not apply to {what}")
            continue
        if spec.needs_upstream and exchange.live:
            results[spec.id] = Outcome(skipped="live mode: there is no recorded upstream to compare with")
            continue
        if spec.needs_stream and not ctx.ok_stream:
            results[spec.id] = Outcome(skipped=ctx.no_stream_reason())
            continue
        found: list[Finding] = []
        folded: dict[str, list[int]] = {}  # reason (numbers blanked) -> [index in found, repeats]
        issues: Iterator[Issue] = iter(spec.func(ctx))
        try:
            for issue in issues:
                # No cap hides a distinct reason (issue 12): the same reason at another place is
                # folded into its first finding with a count.
                reason = _REASON_DIGITS.sub("#", issue.message)
                if reason in folded:
                    folded[reason][1] += 1
                    continue
                folded[reason] = [len(found), 0]
                found.append(
                    Finding(
                        check_id=spec.id,
                        severity=finding_severity(spec.id, profile, severity, issue.pointer, issue.message),  # clients
                        message=label + issue.message,
                        cassette_id=exchange.cassette_id,
                        turn=exchange.turn,
                        event_index=issue.event_index,
                        raw=ctx.raw(issue.event_index),
                        pointer=issue.pointer,
                        expected=issue.expected,
                        actual=issue.actual,
                        repro=repro,
                        impact=finding_impact(spec.id, issue.pointer, issue.message, spec.summary),  # clients
                    )
                )
        except Skip as skip:
            results[spec.id] = Outcome(_fold(found, folded), None if found else str(skip))
            continue
        results[spec.id] = Outcome(_fold(found, folded))
    return results


def _fold(found: list[Finding], folded: dict[str, list[int]]) -> list[Finding]:
    """Say on each finding how many more places had the same reason."""
    for at, repeats in folded.values():
        if repeats:
            found[at].message += f" (and {repeats} more like it)"
    return found
