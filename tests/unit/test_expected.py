"""The oracle reads every upstream quirk right, and each oracle, error, non-stream and dialect check
passes on a clean crafted exchange and fires, alone, on its mutation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from test_checks import clean_events

from conformance.cassette import Cassette, parse_cassette
from conformance.checks import REGISTRY, Context, run_checks
from conformance.exchange import Chunk, Exchange
from conformance.expected import chat_completion_body, expect_chunks, json_equal
from conformance.report import format_finding

Events = list[dict[str, Any]]


def data(*payloads: Any, done: bool = True, blank: bool = True) -> list[bytes]:
    """SSE events of the payloads (bytes are written as they are: comments, odd fields)."""
    out = [p if isinstance(p, bytes) else f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n".encode() for p in payloads]
    if done:
        out.append(b"data: [DONE]\n\n" if blank else b"data: [DONE]\n")
    return out


def ch(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


SSE = {"content-type": "text/event-stream"}


# -- the oracle ------------------------------------------------------------------------------------
def test_text_tools_usage_and_finish() -> None:
    exp = expect_chunks(200, SSE, data(
        ch({"role": "assistant", "content": ""}),
        ch({"content": "Hel"}),
        ch({"content": "lo", "tool_calls": []}),
        ch({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_", "arguments": ""}}]}),
        ch({"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": '{"city":'}}]}),
        ch({"tool_calls": [{"index": 0, "function": {"name": "", "arguments": '"Oslo"}'}}]}),
        ch({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "noop"}}]}),
        ch(finish="tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}},
    ))
    assert (exp.outcome, exp.outcomes, exp.text, exp.finish_reason) == ("completed", frozenset({"completed"}), "Hello", "tool_calls")
    assert [(c.id, c.name, c.arguments) for c in exp.tool_calls] == [("call_1", "get_weather", '{"city":"Oslo"}'), ("call_2", "noop", "")]
    assert exp.usage == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8} and exp.healthy


def test_quirks_reasoning_names_usage_latest_wins_missing_index_and_done_without_blank_line() -> None:
    exp = expect_chunks(200, SSE, data(
        b": keep-alive\n\n",
        ch({"role": "assistant", "content": None, "reasoning_content": ""}),
        ch({"reasoning_content": "Think", "reasoning": None}),
        ch({"reasoning": "ing"}, usage={"prompt_tokens": 1, "completion_tokens": 1}),
        ch({"tool_calls": [{"id": "t1", "function": {"name": "f", "arguments": {"a": 1}}}]}),
        ch({"tool_calls": [{"function": {"arguments": ""}}]}, finish="stop", usage={"prompt_tokens": 1, "completion_tokens": 4}),
        ch(finish="stop", usage={"prompt_tokens": 1, "completion_tokens": 4}),
        blank=False,
    ))
    assert exp.reasoning == "Thinking" and exp.outcome == "completed"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in exp.tool_calls] == [("t1", "f", {"a": 1})]
    assert exp.usage == {"prompt_tokens": 1, "completion_tokens": 4}


@pytest.mark.parametrize(
    ("chunks", "end", "outcome", "outcomes", "message"),
    [
        (data(ch({"content": "a"}), ch(finish="length")), "clean", "incomplete", {"incomplete"}, None),
        (data(ch({"content": "a"}), ch(finish="content_filter")), "clean", "incomplete", {"incomplete"}, None),
        (data(ch({"content": "a"}), ch(finish="eos")), "clean", "completed", {"completed"}, None),
        (data(ch({"content": "a"}), ch(finish="sausage")), "clean", "completed", {"completed", "incomplete", "failed"}, None),
        (data(ch({"content": "a"}), ch(finish="function_call_filter: MALFORMED_FUNCTION_CALL")), "clean", "failed", {"failed"}, None),
        (data(ch({"content": "a"}), ch(finish="stop"), done=False), "cut", "completed", {"completed", "failed"}, None),
        (data(ch({"content": "a"}), done=False), "cut", "failed", {"failed"}, None),
        (data(ch({"content": "a"}), done=False), "clean", "failed", {"failed"}, None),
        (data(), "clean", "failed", {"failed"}, None),
        (data(ch({"content": "a"}), {"error": {"message": "boom", "type": "server_error"}}), "clean", "failed", {"failed"}, "boom"),
        (data(ch({"content": "a"}, finish="error", error={"code": 502, "message": "provider down"})), "clean", "failed", {"failed"}, "provider down"),
        (data({"object": "error", "message": {"detail": "flat"}}), "clean", "failed", {"failed"}, '{"detail": "flat"}'),
        ([b'error: {"code":400,"message":"too long","type":"invalid_request_error"}\n\n', b"data: [DONE]\n\n"], "clean", "failed", {"failed"}, "too long"),
        (data("not json"), "clean", "failed", {"failed"}, None),
    ],
)
def test_endings(chunks: list[bytes], end: str, outcome: str, outcomes: set[str], message: str | None) -> None:
    exp = expect_chunks(200, SSE, chunks, end)
    assert (exp.outcome, set(exp.outcomes)) == (outcome, outcomes)
    if message is not None:
        assert exp.error_message == message
    assert exp.healthy == (outcome in ("completed", "incomplete"))


def test_http_errors_and_json_bodies() -> None:
    exp = expect_chunks(429, {"content-type": "application/json"}, [b'{"error": {"message": "slow down", "type": "tokens"}}'])
    assert (exp.outcome, exp.upstream_status, exp.error_message) == ("http_error", 429, "slow down")
    assert expect_chunks(400, {}, [b'{"object":"error","message":"flat one"}']).error_message == "flat one"
    assert expect_chunks(500, {}, [b"<html>oops</html>"]).error_message == "<html>oops</html>"
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Whole"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 2}}
    exp = expect_chunks(200, {"content-type": "application/json"}, [json.dumps(body).encode()])
    assert (exp.outcome, exp.text, exp.usage) == ("completed", "Whole", {"prompt_tokens": 2})


def test_chat_completion_body_round_trips_through_the_oracle() -> None:
    exp = expect_chunks(200, SSE, data(ch({"content": "Hi", "refusal": "no", "reasoning_content": "r"}), ch({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}, finish="tool_calls")))
    body = chat_completion_body(exp)
    again = expect_chunks(200, {"content-type": "application/json"}, [json.dumps(body).encode()])
    assert (again.text, again.refusal, again.reasoning, again.finish_reason) == ("Hi", "no", "r", "tool_calls")
    assert [(c.id, c.name, c.arguments) for c in again.tool_calls] == [("c", "f", "{}")]


def test_json_equal() -> None:
    assert json_equal('{"a": 1, "b": [2]}', '{"b":[2],"a":1}')
    assert not json_equal('{"a": 1}', '{"a": 2}')
    assert json_equal("not json", "not json") and not json_equal("", "{}")


# -- crafted exchanges against a cassette turn --------------------------------------------------------
TOOL = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}
REQUEST: dict[str, Any] = {"model": "m", "input": "Say hello and call f", "stream": True, "tools": [TOOL]}
UPSTREAM = data(
    ch({"role": "assistant", "content": ""}),
    ch({"content": "Hello"}),
    ch({"content": " there"}),
    ch({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":'}}]}),
    ch({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
    ch(finish="tool_calls"),
    {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}},
)


def make_cassette(request: dict[str, Any] | None = None, upstream: list[bytes] | None = None, **turn: Any) -> Cassette:
    chunks = [{"t_ms": i, "data": c.decode()} for i, c in enumerate(upstream if upstream is not None else UPSTREAM)]
    inter = {"status": 200, "headers": SSE, "chunks": chunks}
    doc = {"format": 1, "id": "crafted", "description": "d", "tags": [], "provenance": {"source": "authored", "backend": "openai"},
           "turns": [{"request": request or REQUEST, "upstream": [inter] if upstream != [] else [], **turn}]}
    return parse_cassette(doc)


def encode(events: Events, done: bool = True) -> bytes:
    out = [f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': i})}\n\n" for i, e in enumerate(events)]
    return ("".join(out) + ("data: [DONE]\n\n" if done else "")).encode()


CHAT = {"model": "m", "messages": [{"role": "user", "content": "Say hello and call f"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": TOOL["parameters"]}}],
        "stream": True, "stream_options": {"include_usage": True}}


def stream_exchange(body: bytes, *, status: int = 200, ct: str = "text/event-stream", request: dict[str, Any] | None = None, chat: dict[str, Any] | None = None) -> Exchange:
    ex = Exchange("crafted", 0, "http://127.0.0.1:1/v1/responses", request or REQUEST, status=status, headers={"content-type": ct},
                  chunks=[Chunk(0, body[i : i + 50]) for i in range(0, len(body), 50)])
    ex.upstream_expected = 1
    ex.upstream_requests = [{"body": chat or CHAT, "turn": 0, "interaction": 0}]
    return ex


def body_exchange(body: Any, *, status: int = 200, ct: str = "application/json") -> Exchange:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ex = stream_exchange(raw, status=status, ct=ct, request=dict(REQUEST, stream=False))
    ex.mode = "nonstream"
    return ex


def context(ex: Exchange, cassette: Cassette | None = None, peer: Exchange | None = None) -> Context:
    c = cassette or make_cassette()
    turn = c.turns[0]
    interaction = turn.upstream[0] if turn.upstream and ex.upstream_requests else None
    return Context(ex, cassette=c, turn=turn, interaction=interaction, peer=peer)


def fired(ex: Exchange, ctx: Context | None = None, profile: str = "strict") -> set[str]:
    results = run_checks(ex, profile=profile, context=ctx or context(ex))
    found = {cid for cid, o in results.items() if o.findings}
    for cid in found:
        for f in results[cid].findings:
            assert format_finding(f)
    return found


def terminal(events: Events) -> dict[str, Any]:
    return events[-1]["response"]


def mutate(fn: Callable[[Events], Events | None]) -> bytes:
    events = clean_events()
    out = fn(events)
    return encode(out if out is not None else events)


def test_clean_crafted_exchange_passes_every_check_under_every_profile() -> None:
    for profile in ("openai", "open-responses", "lenient", "strict"):
        ex = stream_exchange(encode(clean_events()))
        assert fired(ex, profile=profile) == set()
    whole = body_exchange(terminal(clean_events()))
    assert fired(whole, context(whole, peer=stream_exchange(encode(clean_events())))) == set()


def _rename_call(e: Events) -> None:
    e[9]["item"]["name"] = e[12]["name"] = e[13]["item"]["name"] = e[-1]["response"]["output"][1]["name"] = "g"


def _text(e: Events, text: str) -> None:
    e[4]["delta"], e[5]["delta"] = text, ""
    e[6]["text"] = e[7]["part"]["text"] = e[8]["item"]["content"][0]["text"] = e[-1]["response"]["output"][0]["content"][0]["text"] = text


def _set_call_id(e: Events, value: str) -> None:
    for item in (e[9]["item"], e[13]["item"], e[-1]["response"]["output"][1]):
        item["call_id"] = value


def _usage(e: Events, **changes: Any) -> None:
    e[-1]["response"]["usage"].update(changes)


def _fc_in_progress(e: Events) -> None:
    e[13]["item"]["status"] = e[-1]["response"]["output"][1]["status"] = "in_progress"


def _as_incomplete(e: Events) -> Events:
    e[-1]["type"] = "response.incomplete"
    e[-1]["response"].update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    return e


def _reasoning_first(e: Events, text: str = "Thinking.", *, after: bool = False) -> Events:
    rs = {"type": "reasoning", "id": "rs_1", "summary": [], "status": "in_progress"}
    done_rs = dict(rs, summary=[{"type": "summary_text", "text": text}], status="completed")
    where = {"item_id": "rs_1", "output_index": 0, "summary_index": 0}
    block = [
        {"type": "response.output_item.added", "output_index": 0, "item": rs},
        {"type": "response.reasoning_summary_part.added", **where, "part": {"type": "summary_text", "text": ""}},
        {"type": "response.reasoning_summary_text.delta", **where, "delta": text},
        {"type": "response.reasoning_summary_text.done", **where, "text": text},
        {"type": "response.reasoning_summary_part.done", **where, "part": {"type": "summary_text", "text": text}},
        {"type": "response.output_item.done", "output_index": 0, "item": done_rs},
    ]
    body = e[2:14]
    for ev in body:
        if "output_index" in ev:
            ev["output_index"] += 1
    if after:
        for ev in block:
            ev["output_index"] = 2
        for ev in body:
            ev["output_index"] -= 1
        out = [*e[:2], *body, *block, e[-1]]
        out[-1]["response"]["output"] = [*out[-1]["response"]["output"], done_rs]
        return out
    out = [*e[:2], *block, *body, e[-1]]
    out[-1]["response"]["output"] = [done_rs, *out[-1]["response"]["output"]]
    return out


REASONING_UPSTREAM = data(ch({"reasoning_content": "Think"}), ch({"reasoning_content": "ing."}), *[json.loads(c[6:]) for c in UPSTREAM[:-1]])
REFUSAL_UPSTREAM = data(ch({"refusal": "No."}), *[json.loads(c[6:]) for c in UPSTREAM[1:-1]])

CASES: dict[str, tuple[Callable[[], tuple[Exchange, Context | None]], set[str], str]] = {
    "text-differs": (lambda: (stream_exchange(mutate(lambda e: _text(e, "Hello world"))), None), {"oracle.text"}, "strict"),
    "refusal-as-text": (lambda: (lambda ex: (ex, context(ex, make_cassette(upstream=REFUSAL_UPSTREAM))))(stream_exchange(encode(clean_events()))), {"oracle.text"}, "strict"),
    "call-renamed": (lambda: (stream_exchange(mutate(_rename_call)), None), {"oracle.tool_calls"}, "strict"),
    "call-id-reminted": (lambda: (stream_exchange(mutate(lambda e: _set_call_id(e, "call_new"))), None), {"oracle.tool_calls"}, "strict"),
    "call-dropped": (lambda: (stream_exchange(mutate(lambda e: [*e[:9], dict(e[-1], response=dict(e[-1]["response"], output=e[-1]["response"]["output"][:1]))])), None), {"oracle.tool_calls"}, "strict"),
    "completed-for-length": (lambda: (lambda ex: (ex, context(ex, make_cassette(upstream=[*UPSTREAM[:5], b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n', *UPSTREAM[6:]]))))(stream_exchange(encode(clean_events()))), {"oracle.status"}, "strict"),
    "incomplete-without-reason": (lambda: (stream_exchange(mutate(lambda e: _as_incomplete(e) and None)), None), {"oracle.status"}, "strict"),
    "item-in-progress-when-completed": (lambda: (stream_exchange(mutate(_fc_in_progress)), None), {"oracle.status"}, "strict"),
    "usage-null": (lambda: (stream_exchange(mutate(lambda e: e[-1]["response"].update(usage=None))), None), {"oracle.usage"}, "strict"),
    "usage-zero": (lambda: (stream_exchange(mutate(lambda e: _usage(e, input_tokens=0, output_tokens=0, total_tokens=0))), None), {"oracle.usage"}, "strict"),
    "reasoning-dropped": (lambda: (lambda ex: (ex, context(ex, make_cassette(upstream=REASONING_UPSTREAM))))(stream_exchange(encode(clean_events()))), {"oracle.reasoning"}, "strict"),
    "reasoning-after-message": (lambda: (lambda ex: (ex, context(ex, make_cassette(upstream=REASONING_UPSTREAM))))(stream_exchange(encode(_reasoning_first(clean_events(), after=True)))), {"oracle.reasoning"}, "strict"),
    "error-event-on-healthy": (lambda: (stream_exchange(mutate(lambda e: [*e[:-1], {"type": "error", "code": "x", "message": "m", "param": None}, e[-1]])), None), {"errors.no_error_event_on_healthy_stream"}, "strict"),
    "open-responses-no-done": (lambda: (stream_exchange(encode(clean_events(), done=False)), None), {"dialect.done_sentinel_sent"}, "open-responses"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_exchange_fires_exactly(case: str) -> None:
    make, expected, profile = CASES[case]
    ex, ctx = make()
    assert fired(ex, ctx, profile) == expected


def test_reasoning_as_summary_or_content_passes_and_before_the_message() -> None:
    ex = stream_exchange(encode(_reasoning_first(clean_events(), "Thinking.")))
    assert fired(ex, context(ex, make_cassette(upstream=REASONING_UPSTREAM))) == set()
    ex = stream_exchange(encode(_reasoning_first(clean_events(), "Thinking. More")))
    assert fired(ex, context(ex, make_cassette(upstream=REASONING_UPSTREAM))) == {"oracle.reasoning"}


def test_failed_answers_may_stop_early_but_not_add() -> None:
    cut = make_cassette(upstream=[*UPSTREAM[:3], b'data: {"error": {"message": "upstream exploded"}}\n\n'])

    def failed(text: str, message: str) -> Exchange:
        events = clean_events()
        _text(events, text)
        events = [*events[:9], events[-1]]
        events[-1]["type"] = "response.failed"
        events[-1]["response"].update(status="failed", usage=None, error={"code": "server_error", "message": message}, output=events[-1]["response"]["output"][:1])
        return stream_exchange(encode(events))

    ex = failed("Hello", "upstream error: upstream exploded")  # stopping early is allowed
    assert fired(ex, context(ex, cut)) == set()
    ex = failed("Hello there upstream exploded", "upstream error: upstream exploded")
    assert fired(ex, context(ex, cut)) == {"oracle.text"}
    ex = failed("Hello", "Something went wrong")
    assert fired(ex, context(ex, cut)) == {"oracle.error_relayed"}
    ok = stream_exchange(encode(clean_events()))
    assert fired(ok, context(ok, cut)) == {"oracle.status", "oracle.tool_calls"}


def test_error_paths_envelope_status_and_relayed_message() -> None:
    c = make_cassette(upstream=None)
    good = {"error": {"message": "upstream returned HTTP 429: slow down", "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}
    limited = parse_cassette({**c.raw, "turns": [{"request": REQUEST, "expect": {"error": {"status": "4xx"}},
        "upstream": [{"status": 429, "headers": {"content-type": "application/json"}, "chunks": [{"t_ms": 0, "data": '{"error": {"message": "slow down"}}'}]}]}]})
    ex = body_exchange(good, status=429)
    ex.mode = "stream"
    assert fired(ex, context(ex, limited)) == set()
    ex = body_exchange({"detail": "slow down"}, status=429)
    assert fired(ex, context(ex, limited)) == {"errors.envelope"}
    ex = body_exchange(good, status=429, ct="text/html")
    assert fired(ex, context(ex, limited)) == {"errors.envelope"}
    ex = body_exchange(dict(good, error=dict(good["error"], message="rate limited")), status=429)
    assert fired(ex, context(ex, limited)) == {"oracle.error_relayed"}
    ex = stream_exchange(encode(clean_events()))
    assert fired(ex, context(ex, limited)) == {"http.status_ok"}


def test_valid_request_refused_is_named_with_what_it_carries() -> None:
    refusal = {"error": {"message": "Unsupported parameter: metadata", "type": "invalid_request_error", "param": "metadata", "code": None}}
    ex = body_exchange(refusal, status=400)
    ex.upstream_requests = []
    ex.request = dict(REQUEST, metadata={"a": "b"})
    results = run_checks(ex, profile="strict", context=context(ex))
    assert {cid for cid, o in results.items() if o.findings} == {"request.valid_input_accepted", "http.status_ok", "upstream.matched"}
    [finding] = results["request.valid_input_accepted"].findings
    assert "`metadata`" in finding.message and finding.pointer == "/metadata" and finding.message.startswith("[non-stream] HTTP 400")


def test_nonstream_body_checks() -> None:
    peer = stream_exchange(encode(clean_events()))
    body = terminal(clean_events())

    def fired_body(b: Any, **kw: Any) -> set[str]:
        ex = body_exchange(b, **kw)
        return fired(ex, context(ex, peer=peer))

    assert fired_body(dict(body, id="resp_other", created_at=99)) == set()
    assert fired_body(dict(body, output_text="Hello there")) == set()
    assert fired_body(dict(body, output_text="Hello")) == {"nonstream.output_text"}
    assert fired_body({k: v for k, v in body.items() if k != "created_at"}) == {"nonstream.body_is_response"}
    assert fired_body(dict(body, metadata={"x": "y"})) == {"nonstream.matches_stream"}
    # Vendor extensions, nulls for absent fields, and the model alias are no difference.
    assert fired_body(dict(body, usage=dict(body["usage"], cost=0.1), error=None, model="m-2024-01-01")) == set()
    assert fired_body(dict(body, output=[])) == {"nonstream.matches_stream", "oracle.text", "oracle.tool_calls"}
    assert fired_body(body, ct="text/event-stream") == {"nonstream.body_is_response"}
    ex = body_exchange(b"not json")
    assert "nonstream.body_is_response" in fired(ex, context(ex, peer=peer))


def test_dialect_checks_follow_the_profile() -> None:
    dot = mutate(lambda e: [ev.update(type=ev["type"].replace("reasoning_summary_text", "reasoning")) or ev for ev in _reasoning_first(e)])
    text_events = mutate(lambda e: [ev.update(type=ev["type"].replace("reasoning_summary_text", "reasoning_text")) or ev for ev in _reasoning_first(e)])
    assert "dialect.reasoning_events_sdk_names" in fired(stream_exchange(dot), profile="openai")
    assert "dialect.reasoning_events_sdk_names" not in fired(stream_exchange(dot), profile="open-responses")
    assert "dialect.reasoning_events_spec_names" in fired(stream_exchange(text_events), profile="open-responses")
    assert "dialect.reasoning_events_spec_names" not in fired(stream_exchange(text_events), profile="openai")
    flat = {"type": "error", "code": "x", "message": "m", "param": None}
    nested = {"type": "error", "error": {"type": "server_error", "code": "x", "message": "m", "param": None}}
    failed = clean_events()
    failed[-1]["type"], failed[-1]["response"]["status"] = "response.failed", "failed"
    failed[-1]["response"]["error"] = {"code": "x", "message": "m"}
    for event, want in ((flat, {"dialect.error_event_nested"}), (nested, set())):
        ex = stream_exchange(encode([*failed[:-1], event, failed[-1]]))
        assert fired(ex, Context(ex), profile="open-responses") == want
    assert fired(stream_exchange(encode(clean_events(), done=False)), profile="openai") == set()


def test_new_checks_are_proven_here_or_in_test_translation() -> None:
    proven = set().union(*(want for _, want, _ in CASES.values())) | {
        "oracle.error_relayed", "errors.envelope", "http.status_ok", "request.valid_input_accepted",
        "nonstream.output_text", "nonstream.body_is_response", "nonstream.matches_stream",
        "dialect.reasoning_events_sdk_names", "dialect.reasoning_events_spec_names", "dialect.error_event_nested",
    }
    mine = {c for c in REGISTRY if c.startswith(("oracle.", "errors.", "request.", "nonstream.", "dialect."))}
    assert mine - proven == set()
