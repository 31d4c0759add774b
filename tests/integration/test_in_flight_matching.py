"""The fake upstream never blocks a diagnosis: a proxy that changes the conversation it sends
upstream is answered from the turn in flight, so the translation checks name what it changed.

Real servers on 127.0.0.1: the fake upstream, the reference bridge with a named fault, the harness.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.cassette import Cassette, load_cassettes
from conformance.driver import Limits
from conformance.harness import Harness
from conformance.options import Settings
from conformance.run_report import CassetteResult
from conformance.upstream import FakeUpstream

CASSETTES, _ = load_cassettes()
LIMITS = Limits(connect_timeout=2, first_byte_timeout=3, idle_timeout=1.0, total_timeout=6, max_bytes=2_000_000, max_events=500)


def _outputs(request: dict[str, Any]) -> list[str]:
    """Call ids of the tool results (function_call_output items) a Responses request carries."""
    inp = request.get("input")
    items = inp if isinstance(inp, list) else []
    return [str(i["call_id"]) for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]


def _applies(request: dict[str, Any]) -> bool:
    """The bridge sends this request's tool results upstream (it refuses previous_response_id: stateless)."""
    return bool(_outputs(request)) and not request.get("previous_response_id")


WITH_TOOL_RESULTS = [c for c in CASSETTES if any(_applies(t.request) for t in c.turns)]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(CASSETTES) as server:
        yield server


def run(upstream: FakeUpstream, cassette: Cassette, *faults: str) -> CassetteResult:
    dirs = [cassette.path] if cassette.path is not None else []
    harness = Harness(Settings(upstream_url=upstream.url, reference_faults=faults, profile="strict", limits=LIMITS, cassette_dirs=dirs))
    harness.start()
    try:
        return harness.run(cassette)
    finally:
        harness.stop()


def test_the_fault_applies_to_enough_cassettes() -> None:
    assert len(WITH_TOOL_RESULTS) >= 5


@pytest.mark.parametrize("cassette", WITH_TOOL_RESULTS, ids=lambda c: c.id)
def test_a_dropped_tool_result_is_named_not_a_5xx(upstream: FakeUpstream, cassette: Cassette) -> None:
    result = run(upstream, cassette, "Q2-tool-result-dropped")
    findings = result.findings()
    fired = {f.check_id for f in findings}
    assert "upstream.matched" not in fired and "http.status_ok" not in fired, fired
    assert fired and all(cid.startswith("translation.") for cid in fired), fired
    checked = 0
    for exchange in result.exchanges:
        if not _applies(exchange.request):
            continue
        wanted = _outputs(exchange.request)
        assert exchange.status == 200
        [sent] = [e["body"] for e in exchange.upstream_requests]  # answered by the fake upstream, once
        got = {m.get("tool_call_id") for m in sent["messages"] if m.get("role") == "tool"}
        [dropped] = [cid for cid in wanted if cid not in got]  # the fault dropped exactly one
        named = [f for f in findings if f.check_id.startswith("translation.") and dropped in f.message]
        assert named, f"no translation finding names {dropped}: {[f.message for f in findings]}"
        checked += 1
    assert checked


def test_a_changed_last_message_is_answered_in_flight(upstream: FakeUpstream) -> None:
    cassette = next(c for c in CASSETTES if c.id == "openai-tool-loop-full-history")
    result = run(upstream, cassette, "Q2-tool-result-dropped")
    last = result.exchanges[-1].upstream_requests[-1]
    assert last["match"] == "in-flight"
    assert "the last message differs from the cassette's" in last["diagnosis"]


def test_clean_bridge_matches_exactly(upstream: FakeUpstream) -> None:
    cassette = next(c for c in CASSETTES if c.id == "openai-tool-loop-full-history")
    result = run(upstream, cassette)
    assert result.findings() == []
    assert {e["match"] for ex in result.exchanges for e in ex.upstream_requests} == {"exact"}


def test_a_foreign_conversation_still_gets_the_5xx_with_the_closest_cassettes(upstream: FakeUpstream) -> None:
    cassette = next(c for c in CASSETTES if c.id == "openai-text-include-usage")
    result = run(upstream, cassette, "Q2-foreign-conversation")
    matched = [f for f in result.findings() if f.check_id == "upstream.matched"]
    assert matched and "closest" in matched[0].message


def test_a_proxy_that_empties_user_messages_is_one_problem(tmp_path: Path) -> None:
    """Issue 10: one problem (translation.messages) with the fake upstream's 5xx and the error
    status folded under it, on cassettes it can match in flight and on those it cannot."""
    from conformance.cli import main
    from conformance.resources import cassettes_dir

    out = tmp_path / "r.json"
    dirs = [str(cassettes_dir() / d) for d in ("text", "tools")]
    argv = ["run", "--reference-fault", "Q2-user-messages-emptied", "--report-json", str(out)]
    for d in dirs:
        argv += ["--cassettes", d]
    assert main(argv) == 1
    problems = json.loads(out.read_text("utf-8"))["problems"]
    assert [p["check"] for p in problems] == ["translation.messages"], problems
    report = json.loads(out.read_text("utf-8"))
    fired = {c["id"] for cas in report["cassettes"] for c in cas["checks"] if c["findings"]}
    assert "upstream.matched" in fired  # a cassette the fake upstream could not match, folded
