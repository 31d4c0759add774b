"""Setup diagnosis before a run: say where the fake upstream is, and stop at once when the proxy
is not wired to it.

A proxy pointed at the wrong upstream (a stale base URL kept in its working directory, a typo in
its config) otherwise fails every exchange of every cassette: hundreds of findings and no word on
the cause. So a run's first exchange is a probe: when the proxy answered it without sending the
fake upstream any request at all, the run stops with one :class:`SetupError` naming the URL the
proxy must use and what the proxy answered. Otherwise the run prints the fake upstream's URL
before the rest of the cassettes (and writes it beside the JSON report, for CI). A proxy that did call the upstream, even with
a wrong body, is judged by the checks as usual: that is a finding, not a setup error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conformance.cassette import Cassette
from conformance.exceptions import SetupError
from conformance.exchange import Exchange
from conformance.run_report import CassetteResult

__all__ = ["announce_upstream", "probe", "probe_cassette", "upstream_file"]


def upstream_file(report_json: str | None) -> Path | None:
    """Where the upstream's address is written: beside the JSON report (``x.json`` ->
    ``x.upstream.json``), or nowhere without one."""
    if not report_json:
        return None
    path = Path(report_json)
    return path.with_name(path.stem + ".upstream.json")


def announce_upstream(pipeline: Any, say: Callable[[str], None] | None = None) -> str | None:
    """Say the fake upstream's URL and port (``say``: a line printer, stderr by default) and write
    them beside the JSON report; returns the URL, or None when this run has no fake upstream."""
    upstream = pipeline.harness.upstream
    if upstream is None:
        return None
    if say is None:
        say = _stderr
    say(f"fake upstream: {upstream.url} (port {upstream.port}); the proxy's OpenAI base URL must be this")
    target = upstream_file(getattr(pipeline.outputs, "report_json", None))
    if target is not None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps({"url": upstream.url, "port": upstream.port}) + "\n", "utf-8")
        except OSError as exc:
            say(f"warning: cannot write {target}: {exc.strerror or exc}")
    return str(upstream.url)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def probe_cassette(cassettes: list[Cassette]) -> Cassette | None:
    """The first cassette whose first turn a correct proxy answers by calling the upstream."""
    for cassette in cassettes:
        turn = cassette.turns[0] if cassette.turns else None
        if turn is not None and turn.upstream and turn.expected_error is None and turn.body is None:
            return cassette
    return None


def _answer(ex: Exchange) -> str:
    if ex.transport_error is not None:
        return f"no answer ({ex.transport_error.message})"
    body = ex.body[:200].decode("utf-8", "replace").replace("\n", "\\n")
    more = "…" if len(ex.body) > 200 else ""
    return f"HTTP {ex.status}: {body}{more}" if body else f"HTTP {ex.status} with an empty body"


def probe(pipeline: Any) -> dict[str, CassetteResult]:
    """Run the probe cassette first; {its id: its result} to reuse, or SetupError when the proxy
    never called the fake upstream. Empty when this run has no fake upstream or no probe."""
    upstream = pipeline.harness.upstream
    if upstream is None:
        return {}
    cassette = probe_cassette(list(pipeline.cassettes))
    if cassette is None:
        return {}
    before = len(upstream.log())
    result: CassetteResult = pipeline.run_cassette(cassette)
    if len(upstream.log()) > before or not result.exchanges:
        return {cassette.id: result}
    ex = result.exchanges[0]
    raise SetupError(
        f"setup: the proxy at {pipeline.harness.proxy_url} answered the first request (cassette {cassette.id!r}) "
        f"without calling the fake upstream; point its OpenAI base URL at {upstream.url} "
        f"(--proxy-cmd can pass it as {{upstream_url}}); it answered: {_answer(ex)}"
    )
