"""The fast paths of checking give exactly what the general paths give.

Flat JSON payloads are parsed many to one scanner call (:func:`conformance.stream._to_events`)
and runs of canonical SSE events by two regular expressions (``SSEParser._canonical``); both
must agree with the one-by-one paths on every input, including payloads that are invalid alone
but would make valid JSON when joined, and events cut at every chunk boundary.
"""

from __future__ import annotations

import json
import random

import pytest

from conformance.sse import SSEEvent, SSEParser, parse_sse
from conformance.stream import _parse_flat, _to_event, _to_events, analyze_bytes

FLAT = '{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"%s","logprobs":[],"sequence_number":%d}'

# Payloads that are not one flat object, or not JSON at all, or only JSON once joined with their
# neighbours: `{"a":[{}` + `{}]}` + `{},{}` is a valid array of three objects when joined.
ODD = [
    '{"a":[{}', "{}]}", "{},{}", '{"a":"}', '{"b":1}"}', "", " ", "{}", "[]", "[DONE]", "null",
    '{"a":1} ', ' {"a":1}', '{"a":1}{"b":2}', '{"a":1},{"b":2}', '{"a":[1,"]"', '"[",2]}',
    '{"a":"x\\"}', '{"t":NaN}', '{"t":-0}', '{"t":01}', '{"t":1e5}', '{"a":1,"a":2}',
    '{"type":"x","k":"{"}', '{"type":"x","k":"[]"}', '{"type":"x","k":"]["}', '{"type":7}',
    "{\ufeff}", '{"a":"\\u00e9"}', '{"a":"é"}', "{" * 50 + "}" * 50, '{"x":[]}', '{"x":[ ]}',
    '{"x":"\\n"}', "{\n}", '{"a":{"b":1}', "}", "{",
]


def _events(payloads: list[str]) -> list[SSEEvent]:
    return [SSEEvent(i, p) for i, p in enumerate(payloads)]


def _same(payloads: list[str]) -> None:
    payloads = payloads * (1 + 300 // max(len(payloads), 1))  # past the small-stream shortcut
    sse = _events(payloads)
    one = [_to_event(s, {}) for s in sse]
    many = _to_events(sse, {})
    assert [(e.index, e.data, e.type, e.done_sentinel, e.json_error) for e in many] == [
        (e.index, e.data, e.type, e.done_sentinel, e.json_error) for e in one
    ]
    for a, b in zip(one, many, strict=True):
        if a.data is not None:  # same keys in the same order, same value types
            assert json.dumps(a.data) == json.dumps(b.data)


def test_flat_payloads_parse_in_batches_like_one_by_one() -> None:
    _same([FLAT % (f"w{i} ", i) for i in range(300)])


@pytest.mark.parametrize("seed", range(40))
def test_odd_payloads_among_flat_ones_parse_like_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    payloads = [FLAT % (f"w{i}", i) for i in range(rng.randrange(1, 200))]
    for _ in range(rng.randrange(1, 12)):
        odd = rng.sample(ODD, rng.randrange(1, 4))
        at = rng.randrange(len(payloads) + 1)
        payloads[at:at] = odd
    _same(payloads)


def test_payloads_valid_only_when_joined_are_errors() -> None:
    _same(['{"a":[{}', "{}]}", "{},{}"] * 30)
    _same(['{"a":[1,"]}"', '{"x":"{["}]}', "{},{}"] * 30)
    _same(['{"a":"}', '{"b":"}'] * 40)


@pytest.mark.parametrize(
    "payloads",
    [
        ['{"a":[{}', "{}]}", "{},{}"],  # [{"a":[{},{}]},{},{}]: three objects, none of them alone
        ['{"a":[1,"]}"', '{"x":"{["}]}', "{},{}"],
        ['{"a":"}', '{"b":"}'],  # a string running into the next payload
        ['{"a":1', '"b":2}'],
        ['{"a":1}', "{\n}"],
        ['{"a":1}', '{"a":01}'],
        ['{"a":[]}', '{"a":[ ]}'],
        ["{}", "[]"],
        ['{"a":1}', '{"a":1},{"b":2}'],
    ],
)
def test_a_batch_is_taken_only_when_each_payload_is_a_flat_object(payloads: list[str]) -> None:
    out: list[object] = [None] * len(payloads)
    assert not _parse_flat(payloads, 0, len(payloads), out)
    assert out == [None] * len(payloads)


def test_a_batch_of_flat_objects_is_what_each_parses_to() -> None:
    payloads = [FLAT % (f"w{i}", i) for i in range(20)] + [r'{"a":NaN,"b":[],"c":"x\\"}', "{}"]
    out: list[object] = [None] * len(payloads)
    assert _parse_flat(payloads, 0, len(payloads), out)
    assert json.dumps(out) == json.dumps([json.loads(p) for p in payloads])


def _stream(n: int, rng: random.Random) -> bytes:
    out = []
    for i in range(n):
        kind = rng.random()
        payload = FLAT % (f"w{i}", i)
        if kind < 0.6:
            out.append(f"event: response.output_text.delta\ndata: {payload}\n\n")
        elif kind < 0.75:
            out.append(f"data: {payload}\n\n")
        elif kind < 0.8:
            out.append(f": keep-alive\nevent: x\ndata: {payload}\n\n")
        elif kind < 0.85:
            out.append(f"event: \ndata: {payload}\n\n")
        elif kind < 0.88:
            out.append(f"id: {i}\ndata: a\ndata: b\n\n")
        elif kind < 0.91:
            out.append(f"event: e\r\ndata: {payload}\r\n\r\n")
        elif kind < 0.94:
            out.append("event: lonely\n\n")
        elif kind < 0.97:
            out.append(f"data:{payload}\nretry: 5\n\n")
        else:
            out.append(f"event: e\ndata: {payload}\n\n\n")
    return "".join(out).encode()


def _parsed(chunks: list[bytes]) -> list[tuple[object, ...]]:
    events, parser = parse_sse(chunks)
    return [
        (e.index, e.data, e.event, e.id, e.line_no, e.terminated, e.comments, e.raw) for e in events
    ] + [(i.kind, i.message, i.line_no, i.event_index) for i in parser.issues]  # type: ignore[list-item]


@pytest.mark.parametrize("seed", range(30))
def test_canonical_runs_parse_like_line_by_line_on_any_chunking(seed: int) -> None:
    rng = random.Random(seed)
    body = _stream(rng.randrange(1, 80), rng)
    if rng.random() < 0.3:
        body = body[: rng.randrange(len(body) + 1)]  # cut anywhere, even inside an event
    # One byte at a time goes line by line (a line is never whole in one chunk of text).
    reference = _parsed([body[i : i + 1] for i in range(len(body))])
    cuts = sorted(rng.sample(range(1, max(len(body), 2)), min(rng.randrange(0, 40), max(len(body) - 1, 0))))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    assert _parsed(chunks) == reference
    assert _parsed([body]) == reference


def test_canonical_run_respects_the_line_cap() -> None:
    line = b"data: " + b"x" * 100 + b"\n\n"
    parser = SSEParser(max_line=50)
    assert parser.feed(b"event: a\ndata: 1\n\n" + line) == [SSEEvent(0, "1", "a", None, 1)]
    assert parser.overflowed and parser.issues[0].kind == "line_too_long"


def test_analysis_of_a_flat_stream_keeps_its_values() -> None:
    body = "".join(f"event: response.output_text.delta\ndata: {FLAT % ('w', i)}\n\n" for i in range(200))
    a = analyze_bytes([body.encode()])
    assert [e.data["sequence_number"] for e in a.events if e.data] == list(range(200))
    assert {e.type for e in a.events} == {"response.output_text.delta"}
