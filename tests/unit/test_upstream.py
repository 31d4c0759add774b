"""The fake upstream: real HTTP on 127.0.0.1, chunk-by-chunk replay, matching, diagnosis, log."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from conformance.cassette import parse_cassette
from conformance.upstream import FakeUpstream


def cassette(cid: str, prompt: str, chunks: list[dict[str, Any]], end: str = "clean") -> Any:
    return parse_cassette(
        {
            "format": 1,
            "id": cid,
            "description": "test",
            "tags": [],
            "provenance": {"source": "authored", "backend": "openai"},
            "turns": [
                {
                    "request": {"model": "m", "input": prompt},
                    "upstream": [{"status": 200, "headers": {"content-type": "text/event-stream"}, "chunks": chunks, "end": end}],
                }
            ],
        }
    )


CHUNKS = [{"t_ms": 0, "data": "data: {\"n\":1}\n\n"}, {"t_ms": 150, "data": "data: {\"n\":2}\n\n"}, {"t_ms": 160, "b64": "/w=="}]


def chat(prompt: str, *, extra: str = "") -> dict[str, Any]:
    return {"model": "m", "stream": True, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": prompt + extra}]}


@pytest.fixture
def upstream() -> Any:
    with FakeUpstream([cassette("weather-lisbon", "What is the weather in Lisbon?", CHUNKS), cassette("haiku", "Write a haiku about rain", CHUNKS)]) as server:
        yield server


def test_replays_bytes_exactly_and_logs(upstream: FakeUpstream) -> None:
    with httpx.Client() as client, client.stream("POST", upstream.url + "/chat/completions", json=chat("What is the weather in Lisbon?"), headers={"Authorization": "Bearer sk-secret"}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        body = b"".join(resp.iter_raw())
    assert body == b'data: {"n":1}\n\ndata: {"n":2}\n\n\xff'
    [entry] = upstream.log("weather-lisbon")
    assert entry.turn == 0 and entry.interaction == 0
    assert entry.headers["Authorization"] == "[redacted]"
    log = httpx.get(upstream.url.replace("/v1", "") + "/__conformance/log", params={"cassette": "weather-lisbon"}).json()
    assert log[0]["body"]["messages"][-1]["content"] == "What is the weather in Lisbon?"


def test_parts_content_and_path_without_v1(upstream: FakeUpstream) -> None:
    body = {"stream": True, "messages": [{"role": "user", "content": [{"type": "text", "text": "Write a haiku "}, {"type": "text", "text": "about rain"}]}]}
    resp = httpx.post(upstream.url.replace("/v1", "") + "/chat/completions", json=body)
    assert resp.status_code == 200
    assert upstream.log("haiku")


def test_unmatched_request_names_the_closest_cassettes(upstream: FakeUpstream) -> None:
    resp = httpx.post(upstream.url + "/chat/completions", json=chat("What is the weather in Lisbon?", extra=" (edited)"))
    assert resp.status_code == 500
    err = resp.json()["error"]
    assert err["code"] == "cassette_not_found"
    assert "weather-lisbon: expected last message 'What is the weather in Lisbon?'" in err["message"]
    assert err["message"].index("weather-lisbon") < err["message"].index("haiku")
    unmatched = httpx.get(upstream.url.replace("/v1", "") + "/__conformance/log", params={"cassette": "__unmatched__"}).json()
    assert len(unmatched) == 1 and "closest" in unmatched[0]["diagnosis"]


def test_non_chat_request_is_diagnosed(upstream: FakeUpstream) -> None:
    resp = httpx.post(upstream.url + "/responses", json={"input": "x"})
    assert resp.status_code == 404
    assert "only answers POST .../chat/completions" in resp.json()["error"]["message"]
    resp = httpx.post(upstream.url + "/chat/completions", content=b"not json")
    assert resp.status_code == 500
    assert "not a JSON object" in resp.json()["error"]["message"]


def test_replay_timing() -> None:
    with FakeUpstream([cassette("timed", "Timed prompt", CHUNKS)], replay_timing=True) as server:
        t0 = time.monotonic()
        httpx.post(server.url + "/chat/completions", json=chat("Timed prompt"))
        assert time.monotonic() - t0 >= 0.15


def test_cut_connection() -> None:
    with (
        FakeUpstream([cassette("cut", "Cut prompt", CHUNKS[:1], end="cut")]) as server,
        pytest.raises(httpx.RemoteProtocolError),
        httpx.Client() as client,
        client.stream("POST", server.url + "/chat/completions", json=chat("Cut prompt")) as resp,
    ):
        for _ in resp.iter_raw():
            pass


def test_non_streaming_request_gets_one_chat_completion() -> None:
    chunks = [
        {"t_ms": 0, "data": 'data: {"id":"chatcmpl-9","model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}\n\n'},
        {"t_ms": 5, "data": 'data: {"id":"chatcmpl-9","choices":[{"index":0,"delta":{"content":"lo","tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}\n\n'},
        {"t_ms": 6, "data": 'data: {"id":"chatcmpl-9","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\ndata: [DONE]\n\n'},
    ]
    failing = [{"t_ms": 0, "data": 'data: {"choices":[{"index":0,"delta":{"content":"Hal"}}]}\n\ndata: {"error":{"message":"boom"}}\n\n'}]
    cut = [{"t_ms": 0, "data": 'data: {"choices":[{"index":0,"delta":{"content":"Hal"}}]}\n\n'}]
    cassettes = [cassette("whole", "Say hello", chunks), cassette("fail", "Say bye", failing), cassette("cut", "Say nothing", cut, end="cut")]
    with FakeUpstream(cassettes) as server:
        resp = httpx.post(server.url + "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "Say hello"}]})
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
        body = resp.json()
        assert body["object"] == "chat.completion" and body["id"] == "chatcmpl-9" and body["model"] == "gpt-x"
        message = body["choices"][0]["message"]
        assert message["content"] == "Hello" and body["choices"][0]["finish_reason"] == "tool_calls"
        assert message["tool_calls"] == [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
        assert body["usage"]["total_tokens"] == 5
        resp = httpx.post(server.url + "/chat/completions", json={"model": "m", "stream": False, "messages": [{"role": "user", "content": "Say bye"}]})
        assert resp.status_code == 500 and resp.json()["error"]["message"] == "boom"
        with pytest.raises(httpx.HTTPError):  # a cut stays a cut
            httpx.post(server.url + "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "Say nothing"}]})


def test_reset_one_cassette_replays_its_first_interaction_again() -> None:
    first = [{"t_ms": 0, "data": "data: {\"n\":1}\n\n"}]
    doc = {
        "format": 1, "id": "twice", "description": "t", "tags": [], "provenance": {"source": "authored", "backend": "openai"},
        "turns": [{"request": {"model": "m", "input": "Twice please"}, "upstream": [
            {"status": 500, "headers": {"content-type": "application/json"}, "chunks": [{"t_ms": 0, "data": "{}"}]},
            {"status": 200, "headers": {"content-type": "text/event-stream"}, "chunks": first},
        ]}],
    }
    with FakeUpstream([parse_cassette(doc), cassette("other", "Other please", CHUNKS)]) as server:
        post = lambda text: httpx.post(server.url + "/chat/completions", json=chat(text)).status_code  # noqa: E731
        assert [post("Twice please"), post("Twice please"), post("Other please")] == [500, 200, 200]
        httpx.post(server.url.replace("/v1", "") + "/__conformance/reset", params={"cassette": "twice"})
        assert [post("Twice please"), post("Other please")] == [500, 200]
