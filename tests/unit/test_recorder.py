"""The recorder: transparent, unbuffered forwarding; secrets never written; record modes."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from chat_upstream import ChatUpstream, chat_chunks

from conformance.cassette import load_cassette, load_cassettes
from conformance.recorder import (
    REDACTED,
    Recorder,
    Redactor,
    SecretError,
    responses_request_from_chat,
    write_json_safely,
)
from conformance.reference._translate import to_chat

CANARY = "sk-canary-4f2d9b7e1a6c3058"
CANARY_BODY = "sk-canary-body-77aa55cc33ee11"
CANARY_QUERY = "sk-canary-query-9988776655"
CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Say hello, canary test."}], "stream": True}


def every_file_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def assert_no_canary(root: Path, *canaries: str) -> None:
    files = every_file_under(root)
    for path in files:
        data = path.read_bytes()
        for canary in canaries:
            assert canary.encode() not in data, f"{canary} reached {path}"


def post(url: str, body: dict[str, object], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url, json=body, headers=headers or {}, timeout=10, trust_env=False)


# -- redaction ---------------------------------------------------------------------------------
def test_redactor_finds_key_shapes_and_names_the_field() -> None:
    r = Redactor()
    assert r.scan({"a": [{"b": "x"}, {"c": f"key {CANARY}"}]}) == ("$.a[1].c", "an OpenAI-style key (sk-…)")
    assert r.scan({"h": {"X-Weird": "Bearer abcdefgh12345678"}}) == ("$.h.X-Weird", "a bearer token")
    assert r.scan({"gsk": "gsk_" + "a" * 30})[1] == "a Groq key (gsk_…)"  # type: ignore[index]
    # Ordinary prose and the redaction marker itself are not secrets.
    assert r.scan({"t": "a task-based desk-organizer plan", "h": {"authorization": REDACTED}}) is None
    custom = Redactor.with_extra(patterns=[r"corp-[0-9]{6}"])
    assert custom.scan({"x": "id corp-123456"}) == ("$.x", "the configured pattern 'corp-[0-9]{6}'")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        Redactor.with_extra(patterns=["(unclosed"])


def test_refused_write_names_the_field_not_the_value(tmp_path: Path) -> None:
    target = tmp_path / "c.json"
    with pytest.raises(SecretError) as info:
        write_json_safely(target, {"turns": [{"request": {"user": CANARY}}]}, Redactor())
    message = str(info.value)
    assert "$.turns[0].request.user" in message and "refusing to write" in message
    assert CANARY not in message
    assert every_file_under(tmp_path) == []


def test_canary_secrets_in_headers_and_query_are_replaced_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    redactor = Redactor.with_extra(headers=["X-Team-Secret"])
    with ChatUpstream() as upstream, Recorder(upstream.url, out, redact=redactor) as rec:
        resp = post(
            rec.url + f"/chat/completions?api-key={CANARY_QUERY}&api-version=2024-10-21",
            CHAT,
            {
                "Authorization": f"Bearer {CANARY}",
                "api-key": CANARY,
                "x-api-key": CANARY,
                "Cookie": f"session={CANARY}",
                "X-Team-Secret": "team-secret-value-123",
            },
        )
        assert resp.status_code == 200
        assert resp.content == b"".join(chat_chunks())
    # The upstream got the real credentials: recording must not change the traffic.
    seen = upstream.seen[0]
    assert seen.headers["Authorization"] == f"Bearer {CANARY}"
    assert CANARY_QUERY in seen.query
    assert rec.errors == []
    [path] = rec.written
    doc = json.loads(path.read_text("utf-8"))
    sent = doc["provenance"]["upstream_requests"][0]
    assert sent["headers"]["Authorization"] == REDACTED
    assert sent["headers"]["X-Team-Secret"] == REDACTED
    assert sent["query"] == {"api-key": REDACTED, "api-version": "2024-10-21"}
    assert doc["turns"][0]["upstream"][0]["headers"]["set-cookie"] == REDACTED
    assert_no_canary(tmp_path, CANARY, CANARY_QUERY, "team-secret-value-123", "sk-canary-setcookie")


def test_canary_secret_in_the_json_body_refuses_the_write(tmp_path: Path) -> None:
    events: list[str] = []
    body = {**CHAT, "user": CANARY_BODY}
    with ChatUpstream() as upstream, Recorder(upstream.url, tmp_path, on_event=events.append) as rec:
        resp = post(rec.url + "/chat/completions", body)
        assert resp.status_code == 200  # the proxy still gets its answer
    assert upstream.seen[0].body["user"] == CANARY_BODY
    assert rec.written == []
    [error] = rec.errors
    assert "$.provenance.upstream_requests[0].body.user" in error
    assert CANARY_BODY not in error and events == [error]
    assert_no_canary(tmp_path, CANARY_BODY)


def test_canary_secret_in_an_unnamed_query_parameter_refuses_the_write(tmp_path: Path) -> None:
    with ChatUpstream() as upstream, Recorder(upstream.url, tmp_path, on_event=lambda m: None) as rec:
        assert post(rec.url + f"/chat/completions?sig={CANARY_QUERY}", CHAT).status_code == 200
    assert len(upstream.seen) == 1
    [error] = rec.errors
    assert "$.provenance.upstream_requests[0].query.sig" in error
    assert_no_canary(tmp_path, CANARY_QUERY)


def test_canary_secret_in_a_capture_refuses_it(tmp_path: Path) -> None:
    with ChatUpstream() as upstream, Recorder(upstream.url, tmp_path, leg="responses", on_event=lambda m: None) as rec:
        body = {"model": "m", "input": "hi", "stream": True, "metadata": {"note": CANARY_BODY}}
        httpx.post(rec.url + "/responses", json=body, headers={"Authorization": f"Bearer {CANARY}"}, timeout=10, trust_env=False)
    assert rec.written == []
    assert "$.responses.request.metadata.note" in rec.errors[0]
    assert_no_canary(tmp_path, CANARY, CANARY_BODY)


# -- forwarding ----------------------------------------------------------------------------------
def test_chunks_are_relayed_as_they_arrive_not_buffered(tmp_path: Path) -> None:
    """Each chunk reaches the client before the upstream has even sent the next one."""
    with ChatUpstream(pause=0.25) as upstream, Recorder(upstream.url, tmp_path) as rec:
        arrived: list[float] = []
        with httpx.Client(trust_env=False) as client, client.stream("POST", rec.url + "/chat/completions", json=CHAT) as resp:
            for data in resp.iter_raw():
                if data:
                    arrived.append(time.monotonic())
    sent = upstream.seen[0].sent_at
    assert len(arrived) == len(sent)
    for i in range(len(sent) - 1):
        assert arrived[i] < sent[i + 1], f"chunk {i} was held back until chunk {i + 1} was sent"
    # Measured against the upstream's own cadence, not a wall-clock floor (a loaded machine slows
    # every side alike): the typical relay delay is a small part of the upstream's pause.
    send_gaps = [b - a for a, b in itertools.pairwise(sent)]
    lag = sorted(a - s for a, s in zip(arrived, sent, strict=False))
    assert lag[len(lag) // 2] < min(send_gaps) / 2, (lag, send_gaps)
    # Recorded timing follows the upstream's: the recorder stamps chunk i between the upstream
    # sending it and the client receiving it, so each recorded gap lies within what was observed.
    recorded = load_cassette(rec.written[0]).turns[0].upstream[0].chunks
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(recorded)]
    for i, g in enumerate(gaps):
        low, high = (sent[i + 1] - arrived[i]) * 1000, (arrived[i + 1] - sent[i]) * 1000
        assert low - 1 <= g <= high + 1, (i, g, low, high)  # 1 ms for the cassette's rounding


def test_unreachable_upstream_is_a_502_envelope_and_an_error(tmp_path: Path) -> None:
    with Recorder("http://127.0.0.1:9/v1", tmp_path, on_event=lambda m: None) as rec:
        resp = post(rec.url + "/chat/completions", CHAT)
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "upstream_unreachable"
    assert rec.written == [] and "cannot reach the upstream" in rec.errors[0]


def test_the_log_endpoint_speaks_the_fake_upstreams_format(tmp_path: Path) -> None:
    with ChatUpstream() as upstream, Recorder(upstream.url, tmp_path) as rec:
        rec.expect("known", {"model": "m", "input": "Say hello, canary test.", "stream": True})
        post(rec.url + "/chat/completions", CHAT, {"Authorization": f"Bearer {CANARY}"})
        base = rec.url.removesuffix("/v1")
        [entry] = httpx.get(base + "/__conformance/log", params={"cassette": "known"}, trust_env=False).json()
    assert entry["cassette_id"] == "known" and entry["turn"] == 0 and entry["body"] == CHAT
    assert entry["headers"]["Authorization"] == REDACTED


def test_chat_request_to_responses_request_keeps_the_match_key() -> None:
    chat = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "max_tokens": 30,
        "stream": True,
    }
    request = responses_request_from_chat(chat)
    assert request["input"][-1] == {"type": "function_call_output", "call_id": "call_1", "output": "18C and sunny"}
    assert request["max_output_tokens"] == 30 and request["stream"] is True
    # A faithful bridge turns it back into the same conversation.
    back = to_chat(request)
    assert back["messages"] == [*chat["messages"][:2], {**chat["messages"][2], "content": None}, *chat["messages"][3:]]


# -- record modes --------------------------------------------------------------------------------
def test_record_modes(tmp_path: Path) -> None:
    other = {**CHAT, "messages": [{"role": "user", "content": "A second prompt, modes test."}]}
    with ChatUpstream() as upstream:
        with Recorder(upstream.url, tmp_path, "all") as rec:
            post(rec.url + "/chat/completions", CHAT)
        assert len(upstream.seen) == 1 and len(rec.written) == 1
        with Recorder(upstream.url, tmp_path, "none") as rec:
            assert post(rec.url + "/chat/completions", CHAT).content == b"".join(chat_chunks())
            assert post(rec.url + "/chat/completions", other).status_code == 500  # replay only: no match
        assert len(upstream.seen) == 1
        with Recorder(upstream.url, tmp_path, "once") as rec:
            post(rec.url + "/chat/completions", CHAT)  # recorded: replayed
            post(rec.url + "/chat/completions", other)  # no cassette yet: recorded
        assert len(upstream.seen) == 2 and len(rec.written) == 1
        with Recorder(upstream.url, tmp_path, "new_episodes") as rec:
            post(rec.url + "/chat/completions", CHAT)
            post(rec.url + "/chat/completions", other)
        assert len(upstream.seen) == 2 and rec.written == []
        with Recorder(upstream.url, tmp_path, "rewrite") as rec:
            post(rec.url + "/chat/completions", CHAT)
        assert len(upstream.seen) == 3 and len(rec.written) == 1
    cassettes, errors = load_cassettes([tmp_path])
    assert errors == [] and len(cassettes) == 2
    with pytest.raises(ValueError, match="record mode"):
        Recorder("http://127.0.0.1:1/v1", tmp_path, "sometimes")


# -- the command -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_record_command_records_until_interrupted(tmp_path: Path) -> None:
    with ChatUpstream() as upstream:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conformance.cli", "record", "--upstream", upstream.url, "--out", str(tmp_path), "--backend", "testbed"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            url = re.search(r"at (http://127\.0\.0\.1:\d+/v1)", line)
            assert url, line
            resp = post(url.group(1) + "/chat/completions", CHAT, {"Authorization": f"Bearer {CANARY}"})
            assert resp.status_code == 200
            deadline = time.monotonic() + 10
            while not list(tmp_path.glob("*.json")) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, out + err
    assert "stopped: 1 files written, 0 problems" in out
    assert err == ""
    [path] = list(tmp_path.glob("*.json"))
    assert load_cassette(path).provenance["backend"] == "testbed"
    assert_no_canary(tmp_path, CANARY)
