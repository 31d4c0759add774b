"""In-flight matching of the fake upstream (real HTTP on 127.0.0.1): the harness registers the turn
it has in flight, and a chat request the proxy changed is still answered from that turn."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conformance.cassette import Cassette, parse_cassette
from conformance.upstream import FakeUpstream, expecting

OK = [{"t_ms": 0, "data": 'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'}]


def interaction(text: str) -> dict[str, Any]:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]}
    return {"status": 200, "headers": {"content-type": "text/event-stream"}, "chunks": [{"t_ms": 0, "data": f"data: {json.dumps(chunk)}\n\n"}]}


def tool_loop(cid: str, question: str, call_id: str, output: str, answers: tuple[str, ...] = ("done",)) -> Cassette:
    """A one-turn cassette whose request carries a question, a tool call and its output."""
    request = {
        "model": "m",
        "input": [
            {"role": "user", "content": question},
            {"type": "function_call", "call_id": call_id, "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": call_id, "output": output},
        ],
    }
    return parse_cassette(
        {
            "format": 1,
            "id": cid,
            "description": "test",
            "tags": [],
            "provenance": {"source": "authored", "backend": "openai"},
            "turns": [{"request": request, "upstream": [interaction(a) for a in answers]}],
        }
    )


def chat(question: str, call_id: str, output: str | None) -> dict[str, Any]:
    """What a proxy sends for ``tool_loop``; ``output=None``: it dropped the tool result."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
    ]
    if output is not None:
        messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
    return {"model": "m", "stream": True, "messages": messages}


LISBON = tool_loop("lisbon", "What is the weather in Lisbon?", "call_lis", '{"temp": 21}', ("sunny", "rainy"))
OSLO = tool_loop("oslo", "How cold is Oslo today?", "call_osl", '{"temp": -4}')


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream([LISBON, OSLO]) as server:
        yield server


def post(upstream: FakeUpstream, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(upstream.url + "/chat/completions", json=body)


def test_without_a_turn_in_flight_a_changed_request_gets_the_5xx(upstream: FakeUpstream) -> None:
    resp = post(upstream, chat("What is the weather in Lisbon?", "call_lis", None))
    assert resp.status_code == 500 and resp.json()["error"]["code"] == "cassette_not_found"


def test_a_changed_request_is_answered_from_the_turn_in_flight(upstream: FakeUpstream) -> None:
    with upstream.expecting("lisbon", 0):
        resp = post(upstream, chat("What is the weather in Lisbon?", "call_lis", None))
    assert resp.status_code == 200 and b"sunny" in resp.content
    [entry] = upstream.log("lisbon")
    assert (entry.match, entry.turn, entry.interaction) == ("in-flight", 0, 0)
    assert entry.diagnosis is not None and "the last message differs" in entry.diagnosis
    # out of flight again: the same request is unmatched
    assert post(upstream, chat("What is the weather in Lisbon?", "call_lis", None)).status_code == 500


def test_exact_match_first_and_a_retry_gets_the_next_interaction(upstream: FakeUpstream) -> None:
    with upstream.expecting("lisbon", 0), upstream.expecting("oslo", 0):
        first = post(upstream, chat("What is the weather in Lisbon?", "call_lis", '{"temp": 21}'))
        retry = post(upstream, chat("What is the weather in Lisbon?", "call_lis", None))
    assert b"sunny" in first.content and b"rainy" in retry.content
    assert [(e.match, e.interaction) for e in upstream.log("lisbon")] == [("exact", 0), ("in-flight", 1)]
    assert upstream.log("oslo") == []


def test_with_several_turns_in_flight_each_changed_request_finds_its_own(upstream: FakeUpstream) -> None:
    """Two xdist workers' turns in flight at once: the request's conversation decides."""
    with upstream.expecting("lisbon", 0), upstream.expecting("oslo", 0):
        oslo = post(upstream, chat("How cold is Oslo today?", "call_osl", None))
        lisbon = post(upstream, chat("What is the weather in Lisbon?", "call_lis", None))
        foreign = post(upstream, {"model": "m", "messages": [{"role": "user", "content": "Something else entirely"}]})
    assert (oslo.status_code, lisbon.status_code, foreign.status_code) == (200, 200, 500)
    assert [e.cassette_id for e in upstream.log() if e.match] == ["oslo", "lisbon"]
    assert "no cassette turn in flight shares any of its conversation text" in foreign.json()["error"]["message"]


def test_registration_over_http_from_another_process(upstream: FakeUpstream) -> None:
    """An xdist worker registers over HTTP; the request from the proxy arrives meanwhile."""
    script = textwrap.dedent(
        f"""
        import sys
        from conformance.http_server import ServerThreadError
        from conformance.upstream import expecting
        try:
            with expecting({upstream.url!r}, "oslo", 0):
                print("in flight", flush=True)
                sys.stdin.readline()
        except ServerThreadError as exc:
            print(exc, flush=True)
        """
    )
    with subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "in flight"
        resp = post(upstream, chat("How cold is Oslo today?", "call_osl", None))
        upstream._server.store_error(RuntimeError("a bug in the upstream's process"))
        proc.stdin.write("\n")
        proc.stdin.flush()
        # the worker raises the harness bug of the upstream's process in its own run
        assert proc.stdout.readline().startswith("harness bug: the fake upstream thread raised RuntimeError: a bug in the upstream's process")
        assert proc.wait(timeout=30) == 0
    assert resp.status_code == 200
    assert [e.match for e in upstream.log("oslo")] == ["in-flight"]
    assert post(upstream, chat("How cold is Oslo today?", "call_osl", None)).status_code == 500  # released


def test_an_abandoned_registration_expires(upstream: FakeUpstream) -> None:
    base = upstream.url.rsplit("/v1", 1)[0]
    token = httpx.post(base + "/__conformance/expect", json={"cassette": "oslo", "turn": 0, "ttl": 0.05}).json()["token"]
    assert token
    time.sleep(0.1)
    assert post(upstream, chat("How cold is Oslo today?", "call_osl", None)).status_code == 500


def test_an_unknown_turn_or_a_server_without_control_routes_is_a_no_op(upstream: FakeUpstream) -> None:
    base = upstream.url.rsplit("/v1", 1)[0]
    resp = httpx.post(base + "/__conformance/expect", json={"cassette": "nope", "turn": 0})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "unknown_turn"
    with expecting(upstream.url, "nope", 0):
        pass
    with FakeUpstream([]) as other, expecting(other.url.replace("/v1", "/x/v1"), "oslo", 0):
        pass  # 404 from a server that is not a fake upstream: nothing registered, nothing raised
    with expecting(None, "oslo", 0):  # live mode
        pass
    with expecting(upstream.url, "oslo", 0):  # still asked: an unknown turn did not disable it
        assert post(upstream, chat("How cold is Oslo today?", "call_osl", None)).status_code == 200
