"""The harness's modes on real HTTP: a streamed and a ``stream: false`` exchange per single-turn
cassette, multi-turn placeholders, expected errors, upstream replays reset between the two
requests, and raw (malformed) bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.cassette import load_cassettes
from conformance.driver import Limits
from conformance.harness import Harness
from conformance.options import Settings
from conformance.run_report import CassetteResult
from conformance.upstream import FakeUpstream

CASSETTES, _ = load_cassettes()
BY_ID = {c.id: c for c in CASSETTES}
LIMITS = Limits(connect_timeout=2, first_byte_timeout=3, idle_timeout=1.0, total_timeout=6)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(CASSETTES) as server:
        yield server


def run(upstream: FakeUpstream, cassette_id: str, *faults: str, **settings: Any) -> CassetteResult:
    cassette = BY_ID[cassette_id]
    harness = Harness(Settings(upstream_url=upstream.url, reference_faults=faults, limits=LIMITS, cassette_dirs=[str(cassette.path)], **settings))
    harness.start()
    try:
        return harness.run(cassette)
    finally:
        harness.stop()


def test_single_turn_runs_streamed_then_whole(upstream: FakeUpstream) -> None:
    result = run(upstream, "openai-tool-call")
    stream, whole = result.exchanges
    assert (stream.mode, whole.mode) == ("stream", "nonstream")
    assert stream.request["stream"] is True and whole.request["stream"] is False
    assert whole.header("content-type") == "application/json" and json.loads(whole.body)["status"] == "completed"
    assert stream.upstream_requests and whole.upstream_requests
    assert [e["interaction"] for e in whole.upstream_requests] == [0]
    assert result.findings() == []
    for cid in ("nonstream.matches_stream", "nonstream.body_is_response", "lifecycle.terminal_present", "oracle.tool_calls"):
        assert result.outcomes[cid].skipped is None, cid


def test_findings_of_the_whole_exchange_say_so(upstream: FakeUpstream) -> None:
    result = run(upstream, "openai-text-include-usage", "R5-nonstream-wrong-output-text")
    [finding] = result.findings()
    assert finding.check_id == "nonstream.output_text" and finding.message.startswith("[non-stream] ")


def test_stream_only_sends_one_request(upstream: FakeUpstream) -> None:
    result = run(upstream, "openai-tool-call", stream_only=True)
    assert [e.mode for e in result.exchanges] == ["stream"]
    assert result.outcomes["nonstream.matches_stream"].skipped == "does not apply to a streamed exchange"


def test_previous_response_id_is_filled_from_turn_one(upstream: FakeUpstream) -> None:
    result = run(upstream, "openai-tool-loop-previous-response-id")
    first, second = result.exchanges
    response_id = json.loads(next(line for line in first.body.decode().splitlines() if line.startswith("data: {"))[6:])["response"]["id"]
    assert second.request["previous_response_id"] == response_id
    assert second.status == 400 and json.loads(second.body)["error"]["param"] == "previous_response_id"
    assert second.upstream_expected == 0 and result.findings() == []


def test_a_turn_that_cannot_be_filled_is_not_sent(upstream: FakeUpstream) -> None:
    result = run(upstream, "openai-tool-loop-previous-response-id", "S1-drop-terminal")
    assert len(result.exchanges) == 1
    assert result.error is not None and "turn 1 was not sent" in result.error and "turns[0].response.id" in result.error


def test_malformed_body_is_sent_raw_and_refused(upstream: FakeUpstream) -> None:
    result = run(upstream, "malformed-json-body")
    [ex] = result.exchanges
    assert ex.raw_body is not None and ex.status == 400 and ex.upstream_requests == [] and ex.upstream_expected == 0
    assert result.findings() == []
    assert result.outcomes["upstream.matched"].skipped is None
    again = CassetteResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again.exchanges[0].raw_body == ex.raw_body and again.exchanges[0].mode == "stream"


def test_upstream_replays_restart_for_the_whole_request(tmp_path: Path) -> None:
    doc = json.loads(BY_ID["openai-500-before-stream"].path.read_text("utf-8"))  # type: ignore[union-attr]
    ok = json.loads(BY_ID["openai-text-include-usage"].path.read_text("utf-8"))["turns"][0]["upstream"][0]  # type: ignore[union-attr]
    doc["id"] = "retry-then-ok"
    doc["turns"][0]["upstream"].append(ok)
    path = tmp_path / "retry-then-ok.json"
    path.write_text(json.dumps(doc), "utf-8")
    cassettes, errors = load_cassettes([path])
    assert not errors
    with FakeUpstream(cassettes) as server:
        harness = Harness(Settings(upstream_url=server.url, limits=LIMITS, cassette_dirs=[str(path)]))
        harness.start()
        try:
            result = harness.run(cassettes[0])
        finally:
            harness.stop()
    # The bridge does not retry: both requests meet the first (500) interaction, so both are 5xx.
    assert [(e.mode, e.status) for e in result.exchanges] == [("stream", 502), ("nonstream", 502)]
    assert [e["interaction"] for e in result.exchanges[1].upstream_requests] == [0]
    assert result.findings() == []
