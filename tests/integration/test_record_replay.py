"""A real recording session end to end, then the replay of what it wrote.

A local chat upstream streams chunks; the reference bridge talks to it through the recorder; the
cassettes written are replayed through the fake upstream and the bridge again, and the replayed
Responses stream equals the recorded one once ids and timestamps are normalised. The same for a
two-leg capture turned into a cassette.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chat_upstream import ChatUpstream, chat_chunks

from conformance.capture import cassette_from_capture, check_capture, load_capture
from conformance.cassette import load_cassette, load_cassettes
from conformance.driver import Limits, drive
from conformance.exchange import Exchange
from conformance.harness import Harness
from conformance.options import Settings
from conformance.recorder import Recorder
from conformance.reference import ReferenceBridge
from conformance.sse import parse_sse
from conformance.upstream import FakeUpstream

LIMITS = Limits(connect_timeout=2, first_byte_timeout=10, idle_timeout=5, total_timeout=20)
REQUEST = {
    "model": "tiny-chat",
    "instructions": "Answer briefly.",
    "input": [{"role": "user", "content": "Greet me in four words, recorder test."}],
    "max_output_tokens": 40,
    "stream": True,
}
_ID = re.compile(r"\b(resp|msg|fc|rs|call)_[A-Za-z0-9]+")


def normalised(ex: Exchange) -> list[Any]:
    """The stream's events with generated ids and timestamps replaced."""
    out = []
    for event in parse_sse(c.data for c in ex.chunks)[0]:
        if event.data.strip() == "[DONE]":
            out.append("[DONE]")
            continue
        text = _ID.sub(lambda m: m.group(1) + "_X", event.data)
        data = json.loads(text)

        def scrub(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: (0 if k in ("created_at", "completed_at") else scrub(x)) for k, x in v.items()}
            if isinstance(v, list):
                return [scrub(x) for x in v]
            return v

        out.append((event.event, scrub(data)))
    return out


def test_record_then_replay_gives_the_same_exchange(tmp_path: Path) -> None:
    out = tmp_path / "recorded"
    with ChatUpstream() as upstream, Recorder(upstream.url, out, "all") as recorder:
        recorder.expect("rec-greeting", REQUEST, description="A greeting recorded from the test upstream.", tags=["S1"])
        with ReferenceBridge(recorder.url) as bridge:
            recorded = drive(bridge.url + "/responses", REQUEST, limits=LIMITS, cassette_id="rec-greeting")
        assert recorder.errors == []
        assert len(upstream.seen) == 1
    assert recorded.status == 200 and recorded.transport_error is None
    path = out / "rec-greeting.json"
    assert recorder.written == [path]
    cassette = load_cassette(path)
    assert cassette.provenance["source"] == "recorded"
    assert cassette.provenance["model"] == "tiny-chat"
    assert cassette.provenance["recorded_at"]
    assert cassette.turns[0].request == REQUEST
    assert cassette.description == "A greeting recorded from the test upstream."
    interaction = cassette.turns[0].upstream[0]
    assert interaction.body == b"".join(chat_chunks())
    assert len(interaction.chunks) == len(chat_chunks())  # one recorded chunk per network chunk
    assert [t for t, _ in interaction.chunks] == sorted(t for t, _ in interaction.chunks)
    # The chat request the proxy sent is kept next to the answer.
    sent = cassette.provenance["upstream_requests"][0]
    assert sent["body"] == upstream.seen[0].body
    assert sent["path"] == "/v1/chat/completions"

    with FakeUpstream([cassette]) as fake, ReferenceBridge(fake.url) as bridge:
        replayed = drive(bridge.url + "/responses", cassette.turns[0].request, limits=LIMITS, cassette_id="rec-greeting")
        assert [e.body for e in fake.log()] == [upstream.seen[0].body]
    assert normalised(replayed) == normalised(recorded)
    assert len(normalised(recorded)) > 5

    # And it is a clean cassette of the suite: the reference bridge passes every check on it.
    harness = Harness(Settings(cassette_dirs=[str(out)], limits=LIMITS, profile="strict"))
    harness.start()
    try:
        result = harness.run(harness.cassettes[0])
    finally:
        harness.stop()
    assert harness.load_errors == []
    assert {cid for cid, o in result.outcomes.items() if o.findings} == set()


def test_unexpected_chat_traffic_becomes_its_own_cassette(tmp_path: Path) -> None:
    request = {"model": "m", "input": "Name a colour, new cassette test.", "stream": True}
    with ChatUpstream() as upstream, Recorder(upstream.url, tmp_path, "all", backend="testbed") as recorder, ReferenceBridge(recorder.url) as bridge:
        ex = drive(bridge.url + "/responses", request, limits=LIMITS)
    assert ex.status == 200
    cassettes, errors = load_cassettes([tmp_path])
    assert errors == []
    [cassette] = cassettes
    assert cassette.id.startswith("testbed-name-a-colour-new-cassette-test-")
    assert cassette.provenance["backend"] == "testbed"
    assert cassette.turns[0].match_key == "Name a colour, new cassette test."
    harness = Harness(Settings(cassette_dirs=[str(tmp_path)], limits=LIMITS))
    harness.start()
    try:
        result = harness.run(cassette)
    finally:
        harness.stop()
    assert result.findings() == []


def test_both_legs_in_one_capture_become_a_reproducing_cassette(tmp_path: Path) -> None:
    with ChatUpstream() as upstream:
        chat = Recorder(upstream.url, tmp_path, write=False).start()
        bridge = ReferenceBridge(chat.url)
        bridge.start()
        client = Recorder(bridge.url, tmp_path / "captures", leg="responses", pair=chat).start()
        try:
            seen = drive(client.url + "/responses", REQUEST, limits=LIMITS)
        finally:
            client.stop()
            bridge.stop()
            chat.stop()
    assert seen.status == 200
    [path] = client.written
    assert path.name.endswith(".capture.json")
    capture = load_capture(path)
    assert len(capture.upstream) == 1
    assert capture.upstream[0].request == upstream.seen[0].body
    assert b"".join(c.data for c in capture.responses.chunks) == seen.body

    result = check_capture(capture)
    assert result.outcomes["upstream.matched"].skipped is None  # the oracle side runs with two legs
    assert result.findings() == []

    doc = cassette_from_capture([capture], cassette_id="captured-greeting")
    cassette_path = tmp_path / "captured-greeting.json"
    cassette_path.write_text(json.dumps(doc), "utf-8")
    cassette = load_cassette(cassette_path)
    assert cassette.provenance["source"] == "captured"
    with FakeUpstream([cassette]) as fake, ReferenceBridge(fake.url) as bridge:
        replayed = drive(bridge.url + "/responses", cassette.turns[0].request, limits=LIMITS)
    assert normalised(replayed) == normalised(seen)
