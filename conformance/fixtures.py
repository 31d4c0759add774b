"""What the pytest fixtures ``conformance_upstream`` and ``conformance_check`` hand a proxy's own
tests (the pytest-httpserver way): a fake upstream to point the proxy at, and the checks to run
on what the proxy answered, without the generated suite.

:mod:`conformance.plugin` defines the fixtures and imports this module only when one is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.capture import check_capture, parse_capture_bytes
from conformance.cassette import Cassette, load_cassette
from conformance.checks import Context, run_checks
from conformance.exceptions import CassetteError
from conformance.exchange import Chunk, Exchange, Finding, Severity
from conformance.problems import Problem, group_findings
from conformance.upstream import FakeUpstream, UpstreamLogEntry

__all__ = ["CheckResult", "UpstreamFixture", "check_stream"]

_HEADER_CHECKS = ("http.content_type",)  # judged only when the caller gives the headers


def _find(name: str, dirs: Sequence[str] | None) -> Cassette:
    from conformance.commands.replay import find_cassette

    return find_cassette(name, list(dirs) if dirs else None)


def resolve_cassette(cassette: str | Path | Cassette, dirs: Sequence[str] | None = None) -> Cassette:
    """A Cassette from itself, a cassette file, or an id of ``dirs`` (default: the shipped set)."""
    if isinstance(cassette, Cassette):
        return cassette
    if isinstance(cassette, Path) or str(cassette).endswith(".json"):
        path = Path(cassette)
        if not path.is_file():
            raise CassetteError(f"{path}: no such cassette file")
        return load_cassette(path)
    return _find(str(cassette), dirs)


class UpstreamFixture:
    """The session's fake upstream as a test sees it: emptied before each test.

    ``play(cassette)`` makes it answer that cassette's turns; ``requests`` is what it received
    since the test started (method, path, headers with credentials redacted, JSON body, and the
    cassette turn each request matched, if any).
    """

    def __init__(self, upstream: FakeUpstream, cassette_dirs: Sequence[str] | None = None) -> None:
        self._upstream = upstream
        self._dirs = list(cassette_dirs or [])
        self.played: list[Cassette] = []

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``) to give the proxy."""
        return self._upstream.url

    @property
    def port(self) -> int:
        return self._upstream.port

    def play(self, cassette: str | Path | Cassette) -> Cassette:
        """Answer this cassette's turns from now on; returns it (its ``turns[i].request`` is what
        to send the proxy)."""
        loaded = resolve_cassette(cassette, self._dirs)
        self._upstream.add([loaded])
        self.played.append(loaded)
        return loaded

    @property
    def requests(self) -> list[UpstreamLogEntry]:
        return self._upstream.log()

    def reset(self) -> None:
        """Forget played cassettes and received requests (done before every test)."""
        self._upstream.reset()
        self.played.clear()


@dataclass
class CheckResult:
    """The findings of one checked stream and the problems they group into, worst first."""

    findings: list[Finding]
    problems: list[Problem]
    skipped: dict[str, str] = field(default_factory=dict)

    def failing(self, threshold: Severity = Severity.ERROR) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= threshold.rank]

    @property
    def ok(self) -> bool:
        """No finding at error severity."""
        return not self.failing()

    @property
    def check_ids(self) -> set[str]:
        return {f.check_id for f in self.findings}

    def __str__(self) -> str:
        if not self.findings:
            return "no findings"
        return "\n".join(f"{f.severity.value} {f.check_id}: {f.message}" for f in self.findings)


def _response_parts(source: Any) -> tuple[bytes, int | None, dict[str, str] | None]:
    """Body, status and headers of raw bytes/str or a response object (httpx, Starlette's
    TestClient, requests: anything with ``content``, ``status_code`` and ``headers``)."""
    if isinstance(source, bytes):
        return source, None, None
    if isinstance(source, str):
        return source.encode("utf-8"), None, None
    content = getattr(source, "content", None)
    if isinstance(content, bytes):
        headers = getattr(source, "headers", None)
        return content, getattr(source, "status_code", None), dict(headers.items()) if headers is not None else None
    raise TypeError(f"cannot check a {type(source).__name__}: give an Exchange, bytes, str or a response object")


def check_stream(
    source: Any,
    *,
    cassette: Cassette | None = None,
    turn: int = 0,
    upstream: UpstreamFixture | None = None,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    profile: str = "openai",
    checks: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> CheckResult:
    """Check a proxy's answer: an :class:`Exchange`, raw SSE bytes/str, or a response object.

    With the ``cassette`` it answered (turn ``turn``), the checks know the request and what it
    expects; with the ``upstream`` fixture too, they also compare with what the fake upstream
    received and answered (the translation and oracle checks). Without headers the header
    checks are skipped, not failed.
    """
    if isinstance(source, Exchange):
        exchange, known_headers = source, True
    else:
        body, got_status, got_headers = _response_parts(source)
        if headers is not None:
            got_headers = dict(headers)
        if status is not None:
            got_status = status
        if cassette is None:
            capture = parse_capture_bytes(body, "<conformance_check>")
            if got_status is not None:
                capture.responses.status = got_status
            if got_headers is not None:
                capture.responses.headers = got_headers
            result = check_capture(capture, profile=profile, select=checks, exclude=exclude)
            return _result(result.findings(), {c: o.skipped for c, o in result.outcomes.items() if o.skipped})
        the_turn = cassette.turns[turn]
        exchange = Exchange(
            cassette_id=cassette.id,
            turn=turn,
            url="(conformance_check)",
            request=the_turn.request,
            status=got_status if got_status is not None else 200,
            headers=got_headers or {},
            chunks=[Chunk(0.0, body)],
        )
        known_headers = got_headers is not None
    context = None
    if cassette is not None:
        the_turn = cassette.turns[exchange.turn]
        interaction = None
        if upstream is not None:
            log = [e for e in upstream.requests if e.cassette_id == cassette.id and e.turn == exchange.turn]
            exchange.upstream_requests = [e.to_json() for e in log]
            exchange.upstream_expected = 1 if the_turn.upstream and (exchange.status or 0) < 400 else 0
            if log and log[-1].interaction is not None and 0 <= log[-1].interaction < len(the_turn.upstream):
                interaction = the_turn.upstream[log[-1].interaction]
        else:
            exchange.live = True
        context = Context(exchange, cassette=cassette, turn=the_turn, interaction=interaction)
    elif not exchange.upstream_requests:
        exchange.live = True
    excluded = list(exclude or []) + ([] if known_headers else list(_HEADER_CHECKS))
    outcomes = run_checks(exchange, profile=profile, select=checks or None, exclude=excluded or None, context=context)
    findings = [f for o in outcomes.values() for f in o.findings]
    return _result(findings, {c: o.skipped for c, o in outcomes.items() if o.skipped})


def _result(findings: list[Finding], skipped: dict[str, str]) -> CheckResult:
    return CheckResult(findings, group_findings(findings), skipped)
