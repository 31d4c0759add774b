"""Every cassette's streamed and ``stream: false`` legs carry the same answer.

The fake upstream answers a non-streaming chat request with one ``chat.completion`` built from
the recorded stream (:func:`conformance.expected.chat_completion_body`). If the stream carries
something only in a vendor field (Groq's ``x_groq.usage``) the body loses it, and
``nonstream.matches_stream`` blames a proxy that read the vendor field for a difference the
cassette created (issue 12, item 4). This audit fails on any such cassette.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance.cassette import Interaction, load_cassettes
from conformance.expected import chat_completion_body, expect, expect_chunks
from conformance.sse import parse_sse

CASSETTES, _ = load_cassettes()
_TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _interactions() -> list[tuple[str, Interaction]]:
    out = []
    for cassette in CASSETTES:
        for turn in cassette.turns:
            for n, interaction in enumerate(turn.upstream):
                if interaction.status == 200 and interaction.end == "clean":
                    out.append((f"{cassette.id}/turn{turn.index}/{n}", interaction))
    return out


def _usages(node: Any) -> list[dict[str, Any]]:
    """Every usage-like object anywhere in a chunk (top level or a vendor envelope)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "usage" and isinstance(value, dict) and any(k in value for k in _TOKENS):
                found.append(value)
            else:
                found.extend(_usages(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_usages(value))
    return found


def _stream_usages(interaction: Interaction) -> list[dict[str, Any]]:
    events, _ = parse_sse([data for _, data in interaction.chunks])
    out: list[dict[str, Any]] = []
    for ev in events:
        try:
            chunk = json.loads(ev.data)
        except ValueError:
            continue
        out.extend(_usages(chunk))
    return out


LEGS = _interactions()


@pytest.mark.parametrize(("where", "interaction"), LEGS, ids=[w for w, _ in LEGS])
def test_stream_and_nonstream_legs_carry_the_same_answer(where: str, interaction: Interaction) -> None:
    exp = expect(interaction)
    if not exp.healthy:
        return  # a failed stream is answered 500 on the non-stream leg, by design
    body = chat_completion_body(exp)
    whole = expect_chunks(200, {"content-type": "application/json"}, [json.dumps(body).encode()])
    assert (whole.text, whole.refusal, whole.reasoning, whole.finish_reason) == (exp.text, exp.refusal, exp.reasoning, exp.finish_reason)
    assert [(c.id, c.name, c.arguments) for c in whole.tool_calls] == [(c.id, c.name, c.arguments) for c in exp.tool_calls]
    assert whole.usage == exp.usage
    # Usage the stream shows anywhere (a vendor envelope included) is the usage the body carries.
    seen = _stream_usages(interaction)
    if seen:
        assert exp.usage is not None, f"{where}: the stream carries usage only in a vendor field; the stream: false leg would have none"
        latest = seen[-1]
        assert {k: latest.get(k) for k in _TOKENS} == {k: exp.usage.get(k) for k in _TOKENS}, where


def test_the_audit_sees_vendor_only_usage() -> None:
    """The audit itself can fail: a Groq chunk with usage only in ``x_groq``."""
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "x_groq": {"usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}}
    data = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    exp = expect_chunks(200, {"content-type": "text/event-stream"}, [data])
    assert exp.usage is None
    assert _usages(chunk) == [chunk["x_groq"]["usage"]]
