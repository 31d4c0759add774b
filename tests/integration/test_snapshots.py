"""Snapshots of normalised exchanges (syrupy), as a proxy project uses them: through pytester."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conformance.exchange import Chunk, Exchange, TransportError
from conformance.resources import cassettes_dir
from conformance.snapshots import normalise_exchanges

pytest_plugins = ["pytester"]

TOOL = cassettes_dir() / "tools" / "openai-tool-call.json"
TEXT = cassettes_dir() / "usage" / "openai-text-include-usage.json"


# ------------------------------------------------------------------ normalising


def _exchange(body: str, **kw: object) -> Exchange:
    ex = Exchange(
        cassette_id="c",
        turn=0,
        url="http://127.0.0.1:1/v1/responses",
        request={"model": "m", "input": "hi", "stream": True},
        status=200,
        headers={"Content-Type": "text/event-stream", "Date": "Sat, 21 Nov 2026", "x-request-id": "req_9", "Content-Length": "12"},
        chunks=[Chunk(3.5, body.encode()[:10]), Chunk(9.25, body.encode()[10:])],
    )
    for k, v in kw.items():
        setattr(ex, k, v)
    return ex


def test_ids_become_placeholders_that_keep_prefix_and_identity() -> None:
    body = (
        'event: response.created\ndata: {"type":"response.created","response":{"id":"resp_abc","created_at":1795297608,"output":[]}}\n\n'
        'data: {"type":"response.output_item.added","item":{"id":"msg_x1","type":"message"},"obfuscation":"Zq9"}\n\n'
        'data: {"type":"response.output_text.delta","item_id":"msg_x1","delta":"hi 0b3f6e7a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}\n\n'
        'data: {"type":"response.completed","response":{"id":"resp_abc","completed_at":1795297609,"previous_response_id":null}}\n\n'
        "data: [DONE]\n\n"
    )
    snap = normalise_exchanges([_exchange(body, upstream_requests=[{"method": "POST", "path": "/v1/chat/completions", "t": 17.5, "body": {"user": "resp_abc"}}])])
    turn = snap["turns"][0]
    assert turn["headers"] == {"content-type": "text/event-stream"}, "date, ids and lengths are not kept"
    events = turn["events"]
    assert events[0].startswith('event: response.created data: {"type":"response.created","response":{"id":"resp_<1>","created_at":"<timestamp>"')
    assert '"item":{"id":"msg_<2>","type":"message"},"obfuscation":"<obfuscation>"' in events[1]
    assert '"item_id":"msg_<2>","delta":"hi <3>"' in events[2], "same id, same placeholder; UUIDs in text too"
    assert '"id":"resp_<1>","completed_at":"<timestamp>","previous_response_id":null' in events[3]
    assert events[4] == "data: [DONE]"
    assert turn["upstream_requests"] == [{"method": "POST", "path": "/v1/chat/completions", "body": {"user": "resp_<1>"}}]
    assert "t_ms" not in json.dumps(snap)


def test_chunking_and_timing_do_not_matter_but_content_does() -> None:
    body = 'data: {"type":"response.created","response":{"id":"resp_1"}}\n\ndata: {"type":"response.completed","response":{"id":"resp_1"}}\n\n'
    a = _exchange(body)
    b = _exchange(body, chunks=[Chunk(100.0, body.encode())])
    c = _exchange(body.replace("resp_1", "resp_2"))
    assert normalise_exchanges([a]) == normalise_exchanges([b]) == normalise_exchanges([c])
    d = _exchange(body.replace("completed", "incomplete"))
    assert normalise_exchanges([a]) != normalise_exchanges([d])


def test_json_bodies_errors_and_transport_failures() -> None:
    ok = _exchange("", headers={"content-type": "application/json"}, chunks=[Chunk(1, b'{"id":"resp_9","status":"completed","created_at":5}')], mode="nonstream")
    assert normalise_exchanges([ok])["turns"][0]["body"] == {"id": "resp_<1>", "status": "completed", "created_at": "<timestamp>"}
    import gzip

    zipped = _exchange("", headers={"content-type": "application/json", "content-encoding": "gzip"}, chunks=[Chunk(1, gzip.compress(b'{"id":"resp_9"}', mtime=7))], mode="nonstream")
    assert normalise_exchanges([zipped])["turns"][0]["body"] == {"id": "resp_<1>"}
    cut = _exchange("", status=None, chunks=[], transport_error=TransportError("connect", "refused after 3 ms"))
    turn = normalise_exchanges([cut])["turns"][0]
    assert turn["transport_error"] == "connect" and "events" not in turn


# ------------------------------------------------------------------ the plugin


def _project(pytester: pytest.Pytester) -> list[str]:
    """A proxy project: its own ini and cassettes, so the rootdir (and the snapshots) are its own."""
    pytester.makeini("[pytest]\n")
    (pytester.path / "cassettes").mkdir()
    for path in (TOOL, TEXT):
        shutil.copy(path, pytester.path / "cassettes" / path.name)
    return ["--conformance-cassettes", "cassettes", "--conformance-checks", "lifecycle.terminal_present", "-p", "no:cacheprovider", "--conformance-snapshots"]


@pytest.mark.slow
def test_snapshot_lifecycle_missing_written_matched_changed(pytester: pytest.Pytester) -> None:
    args = _project(pytester)
    snap_dir = pytester.path / "__snapshots__" / "responses-conformance"

    first = pytester.runpytest("--conformance", *args)
    first.assert_outcomes(passed=2, failed=2)
    first.stdout.fnmatch_lines(["*there is no stored snapshot yet: write it with --snapshot-update*", "*2 missing*"])

    update = pytester.runpytest("--conformance", *args, "--snapshot-update")
    update.assert_outcomes(passed=4)
    update.stdout.fnmatch_lines([f"*conformance snapshots in {snap_dir}: 2 created*"])
    stored = json.loads((snap_dir / "openai-tool-call.json").read_text("utf-8"))
    assert stored["cassette"] == "openai-tool-call"
    assert any("response.completed" in e for e in stored["turns"][0]["events"])
    assert not (Path(__file__).resolve().parents[2] / "__snapshots__").exists(), "never in the harness"

    again = pytester.runpytest("--conformance", *args)
    again.assert_outcomes(passed=4)
    again.stdout.fnmatch_lines(["*2 matched*"])

    faulty = pytester.runpytest("--conformance-reference-fault", "S1-drop-terminal", *args)
    assert faulty.ret == 1
    out = faulty.stdout.str()
    assert "FAILED conformance/openai-tool-call::snapshot" in out
    assert f"the normalised exchange of cassette openai-tool-call differs from {snap_dir / 'openai-tool-call.json'}" in out
    assert '-         "event: response.completed data: {' in out, "the diff names the event that went missing"

    accept = pytester.runpytest("--conformance-reference-fault", "S1-drop-terminal", *args, "--snapshot-update")
    accept.stdout.fnmatch_lines(["*2 updated*"])
    stored = json.loads((snap_dir / "openai-tool-call.json").read_text("utf-8"))
    assert not any("response.completed" in e for e in stored["turns"][0]["events"])


@pytest.mark.slow
def test_snapshots_under_xdist_and_a_custom_dir(pytester: pytest.Pytester) -> None:
    args = [*_project(pytester), "--conformance-snapshot-dir", "tests/snaps"]
    result = pytester.runpytest_subprocess("--conformance", *args, "--snapshot-update", "-n", "2")
    assert result.ret == 0
    assert sorted(p.name for p in (pytester.path / "tests" / "snaps").iterdir()) == ["openai-text-include-usage.json", "openai-tool-call.json"]
    result = pytester.runpytest_subprocess("--conformance", *args, "-n", "2")
    result.assert_outcomes(passed=4)


def test_no_snapshot_items_unless_asked(pytester: pytest.Pytester) -> None:
    args = [a for a in _project(pytester) if a != "--conformance-snapshots"]
    result = pytester.runpytest("--conformance", *args, "--snapshot-update")
    result.assert_outcomes(passed=2)
    assert not (pytester.path / "__snapshots__").exists()


def test_user_syrupy_snapshots_are_left_alone(pytester: pytest.Pytester) -> None:
    """A project's own syrupy tests next to ours: neither deletes nor reports the other's files."""
    args = _project(pytester)
    pytester.makepyfile(test_own="def test_own(snapshot):\n    assert snapshot == {'a': 1}\n")
    assert pytester.runpytest("--conformance", *args, "--snapshot-update").ret == 0
    result = pytester.runpytest("--conformance", *args)
    result.assert_outcomes(passed=5)
    assert (pytester.path / "__snapshots__" / "test_own.ambr").exists()
    assert (pytester.path / "__snapshots__" / "responses-conformance" / "openai-tool-call.json").exists()
