"""What nine real proxies and llama.cpp showed (issue 12): each false alarm is gone, each missed
bug is found. One test (or a few) per item, on crafted streams and requests; the named faults of
the reference bridge that prove the same checks run in ``tests/integration/test_fault_zoo.py``."""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from test_checks import by_type, clean_events, encode, exchange
from test_translation import HISTORY, cassette, clean

from conformance.checks import Context, run_checks
from conformance.driver import Limits, accept_for, drive
from conformance.exchange import Chunk, Exchange
from conformance.expected import expect_chunks
from conformance.reference._machine import Machine, response_base

Events = list[dict[str, Any]]
FAST = Limits(connect_timeout=2, first_byte_timeout=2, idle_timeout=1, total_timeout=4, max_bytes=100_000, max_events=100)


def findings(ex: Exchange, check_id: str, profile: str = "strict", context: Context | None = None) -> list[str]:
    result = run_checks(ex, profile=profile, select=[check_id], context=context)[check_id]
    return [f.message for f in result.findings]


def fired(ex: Exchange, profile: str = "strict") -> set[str]:
    return {cid for cid, o in run_checks(ex, profile=profile).items() if o.findings}


def sse(*payloads: dict[str, Any]) -> bytes:
    return "".join(f"data: {json.dumps(p)}\n\n" for p in payloads).encode() + b"data: [DONE]\n\n"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}


def call(index: int, args: str, id: str | None = None, name: str | None = None) -> dict[str, Any]:
    frag: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if id:
        frag.update(id=id, type="function")
    if name:
        frag["function"]["name"] = name
    return chunk({"tool_calls": [frag]})


# -- 1. Accept per mode -----------------------------------------------------------------------------
class _SSEIfAccepted(BaseHTTPRequestHandler):
    """A proxy that streams whenever the client accepts SSE: an empty SSE body, else a JSON Response."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        accept = self.headers.get("Accept") or ""
        self.seen.append(accept)
        body = b"" if "text/event-stream" in accept else json.dumps({"id": "resp_1", "object": "response"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if "text/event-stream" in accept else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_1_accept_header_follows_the_mode() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SSEIfAccepted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/responses"
        ex = drive(url, {"model": "m", "input": "x", "stream": False}, limits=FAST)
        streamed = drive(url, {"model": "m", "input": "x", "stream": True}, limits=FAST)
    finally:
        server.shutdown()
        server.server_close()
    assert _SSEIfAccepted.seen == ["application/json", accept_for({"stream": True})]
    assert ex.header("content-type") == "application/json" and json.loads(ex.body)["id"] == "resp_1"
    assert ex.request_headers["Accept"] == "application/json"
    assert streamed.header("content-type") == "text/event-stream"


# -- 2, 3. translation.messages -----------------------------------------------------------------
def _messages_findings(request: dict[str, Any], chat: dict[str, Any]) -> list[str]:
    ex = Exchange("t", 0, "http://127.0.0.1:1/v1/responses", request, status=200, headers={"content-type": "text/event-stream"})
    ex.upstream_requests = [{"body": chat, "turn": 0, "interaction": 0}]
    c = cassette(request)
    return findings(ex, "translation.messages", context=Context(ex, cassette=c, turn=c.turns[0]))


def test_2_restored_history_is_not_an_extra_message() -> None:
    request = {"model": "m", "previous_response_id": "resp_earlier", "input": [{"role": "user", "content": "And tomorrow?"}], "stream": True}
    chat = {"model": "m", "stream": True, "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "4C."},
        {"role": "user", "content": "And tomorrow?"},
    ]}
    assert _messages_findings(request, chat) == []
    # without previous_response_id the same upstream request has two extra messages
    assert len(_messages_findings(dict(request, previous_response_id=None), chat)) == 2


def test_3_chat_refusal_parts_are_understood_and_every_mismatch_is_reported() -> None:
    chat = clean()
    for m in chat["messages"]:
        if m["role"] == "assistant" and isinstance(m.get("content"), (str, list)) and "No more." in json.dumps(m["content"]):
            m["content"] = [{"type": "text", "text": "Oslo 4C, Bergen 7C."}, {"type": "refusal", "refusal": "No more."}]
    assert _messages_findings(HISTORY, chat) == []
    # the message-level form is understood too
    for m in chat["messages"]:
        if m["role"] == "assistant" and isinstance(m.get("content"), list):
            m["content"], m["refusal"] = "Oslo 4C, Bergen 7C.", "No more."
    assert _messages_findings(HISTORY, chat) == []
    # two defects in one history: both are reported (an input_file forwarded as is, a changed last text)
    request = {"model": "m", "stream": True, "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Read this"}, {"type": "input_file", "file_id": "file_1"}]},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot."}]},
        {"role": "user", "content": "Please."},
    ]}
    bad = {"model": "m", "stream": True, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Read this"}, {"type": "input_file", "file_id": "file_1"}]},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot."}]},
        {"role": "user", "content": "Please!"},
    ]}
    found = _messages_findings(request, bad)
    assert len(found) == 2, found
    assert "images/files" in found[0] and "input[2]" in found[1]


# -- 8. a reused tool-call index ------------------------------------------------------------------
REUSED = sse(
    call(0, "", id="call_A", name="get_weather"), call(0, '{"city":"Oslo"}'),
    call(0, "", id="call_B", name="get_time"), call(0, '{"city":"Oslo"}'),
    chunk(finish="tool_calls"),
)


def test_8_a_new_id_on_a_used_index_is_a_new_call_in_the_oracle_and_the_bridge() -> None:
    exp = expect_chunks(200, {"content-type": "text/event-stream"}, [REUSED])
    assert [(c.id, c.name, c.arguments) for c in exp.tool_calls] == [("call_A", "get_weather", '{"city":"Oslo"}'), ("call_B", "get_time", '{"city":"Oslo"}')]
    # parallel calls on distinct indices keep their index order; repeated ids stay one call
    par = sse(call(1, "{}", id="call_2", name="b"), call(0, "{}", id="call_1", name="a"), call(0, "", id="call_1"), chunk(finish="tool_calls"))
    assert [c.id for c in expect_chunks(200, {}, [par]).tool_calls] == ["call_1", "call_2"]
    for merge, names in ((False, ["get_weather", "get_time"]), (True, ["get_weatherget_time"])):
        machine = Machine(response_base({"model": "m"}, "resp_1"), merge_reused_index=merge)
        events = machine.start()
        for line in REUSED.decode().split("\n\n"):
            if line.startswith("data: {"):
                events += machine.feed(line[6:])
        events += machine.end()
        done = [e["item"]["name"] for e in events if e["type"] == "response.output_item.done"]
        assert done == names


# -- 9, 10. late deltas, a missing closer behind a missing opener --------------------------------
def test_9_a_late_delta_is_blamed_not_the_done_text() -> None:
    events = clean_events()
    at = next(i for i, e in enumerate(events) if e["type"] == "response.output_text.done")
    events.insert(at + 1, {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "!", "logprobs": []})
    ex = exchange(encode(events))
    assert fired(ex) == {"items.no_delta_after_done"}
    (msg,) = findings(ex, "items.no_delta_after_done")
    assert "arrives after" in msg
    # an empty late argument delta is flagged too
    events = clean_events()
    at = next(i for i, e in enumerate(events) if e["type"] == "response.function_call_arguments.done")
    events.insert(at + 1, {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": ""})
    assert fired(exchange(encode(events))) == {"items.no_delta_after_done"}
    assert fired(exchange(encode(clean_events()))) == set()


def test_10_a_missing_closer_is_named_when_its_opener_is_missing_too() -> None:
    events = [e for e in clean_events() if e["type"] not in ("response.content_part.added", "response.output_text.done")]
    ex = exchange(encode(events))
    assert fired(ex) == {"items.event_targets_open_part", "items.close_order"}
    assert any("before its text `*.done` event" in m for m in findings(ex, "items.close_order"))
    # only the opener missing: the closers are all there, nothing else is blamed
    events = [e for e in clean_events() if e["type"] != "response.content_part.added"]
    assert fired(exchange(encode(events))) == {"items.event_targets_open_part"}



# -- 5. optional usage details -------------------------------------------------------------------
def test_5_missing_cache_write_tokens_is_not_an_error_by_default() -> None:
    events = clean_events()
    del events[-1]["response"]["usage"]["input_tokens_details"]["cache_write_tokens"]
    ex = exchange(encode(events))
    assert fired(ex) == {"schema.usage_details"}
    # the client lab measured it: only openai-python's opt-in _strict_response_validation breaks,
    # so the default profile warns (naming that mode); strict stays strict
    for profile, severity in (("openai", "warning"), ("open-responses", "info"), ("lenient", "info"), ("strict", "error")):
        (finding,) = run_checks(ex, profile=profile, select=["schema.usage_details"])["schema.usage_details"].findings
        assert finding.severity.value == severity, profile
    # output_tokens_details is not optional: Codex retries without reasoning_tokens
    events = clean_events()
    del events[-1]["response"]["usage"]["output_tokens_details"]
    assert fired(exchange(encode(events))) == {"schema.response"}


# -- 15. no cap hides a distinct reason ------------------------------------------------------------
def test_15_every_distinct_reason_is_shown_and_repeats_are_folded() -> None:
    events = clean_events()
    for ev in events[:2]:
        ev["response"] = {"id": "resp_1", "object": "response", "status": "in_progress"}
    ex = exchange(encode(events))
    msgs = findings(ex, "schema.response")
    missing = {"created_at", "model", "output", "tools", "tool_choice", "parallel_tool_calls"}
    assert len(msgs) == 2 * len(missing) > 8  # the old cap (8 per check) hid four of them
    for name in missing:
        assert sum(f"'{name}'" in m for m in msgs) == 2, name  # once for created, once for in_progress
    # the same reason on every delta is one finding with a count
    events = clean_events()
    for ev in by_type(events, "response.output_text.delta"):
        ev.pop("logprobs")
    (msg,) = findings(exchange(encode(events)), "schema.event")
    assert msg.endswith("(and 1 more like it)"), msg


# -- 7. root causes named right -------------------------------------------------------------------
def _bridge_events(upstream: bytes, request: dict[str, Any] | None = None) -> Events:
    machine = Machine(response_base(request or {"model": "m"}, "resp_1"))
    events = machine.start()
    for line in upstream.decode().split("\n\n"):
        if line.startswith("data: {"):
            events += machine.feed(line[6:])
    return events + machine.end()


def test_7_a_refusal_names_the_reasoning_item_without_summary() -> None:
    request = {"model": "m", "stream": True, "input": [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_1", "encrypted_content": "x"},
        {"role": "user", "content": "again"},
    ]}
    body = json.dumps({"error": {"message": "Field required", "type": "invalid_request_error", "param": None, "code": None}}).encode()
    ex = Exchange("t", 0, "http://127.0.0.1:1/v1/responses", request, status=400, headers={"content-type": "application/json"}, chunks=[Chunk(0, body)])
    c = cassette(request)
    (msg,) = findings(ex, "request.valid_input_accepted", context=Context(ex, cassette=c, turn=c.turns[0]))
    assert "Likely cause: input[1], a reasoning item without `summary`" in msg
    # when the error names an item, that item is the cause
    body = json.dumps({"error": {"message": "bad", "type": "invalid_request_error", "param": "input[0].type", "code": None}}).encode()
    ex.chunks = [Chunk(0, body)]
    (msg,) = findings(ex, "request.valid_input_accepted", context=Context(ex, cassette=c, turn=c.turns[0]))
    assert "Likely cause: input[0], a message without `type`" in msg


def test_7_items_are_matched_by_id_not_by_position() -> None:
    events = clean_events()
    events[-1]["response"]["output"] = events[-1]["response"]["output"][1:]  # the message is missing
    ex = exchange(encode(events))
    assert fired(ex) == {"integrity.terminal_output"}  # not ids.item_id_stable blaming fc_1
    # the oracle pairs tool calls by call id: a missing first call does not blame the second
    upstream = sse(call(0, "{}", id="call_A", name="a"), call(1, '{"x":1}', id="call_B", name="b"), chunk(finish="tool_calls"))
    only_b = sse(call(1, '{"x":1}', id="call_B", name="b"), chunk(finish="tool_calls"))
    produced = encode(_bridge_events(only_b))
    ex = exchange(produced)
    ex.upstream_expected = 1
    ex.upstream_requests = [{"body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}, "turn": 0, "interaction": 0}]
    c = cassette({"model": "m", "input": "x", "stream": True})
    c.turns[0].upstream[0].chunks[:] = [(0.0, upstream)]
    ctx = Context(ex, cassette=c, turn=c.turns[0], interaction=c.turns[0].upstream[0])
    (msg,) = findings(ex, "oracle.tool_calls", context=ctx)
    assert msg.startswith("1 function_call items; the upstream made 2 tool calls"), msg


# -- 11. the echo agrees --------------------------------------------------------------------------
def test_11_the_echo_agrees_with_itself_and_the_request() -> None:
    events = clean_events()
    events[-1]["response"]["parallel_tool_calls"] = False
    (msg,) = findings(exchange(encode(events)), "lifecycle.echo_consistent")
    assert "parallel_tool_calls false" in msg and "`response.created`" in msg
    request = {"model": "m", "input": "x", "stream": True, "previous_response_id": "resp_0", "tool_choice": "required",
               "max_output_tokens": 50, "instructions": "Be brief.", "text": {"format": {"type": "json_object"}},
               "tools": [{"type": "function", "name": "f"}], "parallel_tool_calls": False}
    events = clean_events()
    for ev in events[:2] + events[-1:]:
        ev["response"].update(previous_response_id="chatcmpl-9", tool_choice="auto", max_output_tokens=4096, instructions="Other.",
                              text={"format": {"type": "text"}}, tools=[{"type": "function", "name": "g"}], parallel_tool_calls=True)
    ex = exchange(encode(events))
    ex.request = request
    msgs = findings(ex, "lifecycle.echo_consistent")
    assert len(msgs) == 7, msgs  # each field once, at the first object that says it
    for ev in events[:2] + events[-1:]:
        ev["response"].update({k: v for k, v in request.items() if k not in ("model", "input", "stream")})
    ex = exchange(encode(events))
    ex.request = request
    assert findings(ex, "lifecycle.echo_consistent") == []
    # a stream: false body is held to the request too
    body = dict(events[-1]["response"], previous_response_id="chatcmpl-9")
    whole = Exchange("t", 0, "u", dict(request, stream=False), status=200, headers={"content-type": "application/json"}, chunks=[Chunk(0, json.dumps(body).encode())])
    whole.mode = "nonstream"
    assert len(findings(whole, "lifecycle.echo_consistent")) == 1


# -- 12. upstream additions the client never asked for --------------------------------------------
def _translation_findings(request: dict[str, Any], chat: dict[str, Any], check_id: str) -> list[str]:
    ex = Exchange("t", 0, "http://127.0.0.1:1/v1/responses", request, status=200, headers={"content-type": "text/event-stream"})
    ex.upstream_requests = [{"body": chat, "turn": 0, "interaction": 0}]
    c = cassette(request)
    return findings(ex, check_id, context=Context(ex, cassette=c, turn=c.turns[0]))


def test_12_additions_the_client_never_asked_for() -> None:
    request = {"model": "m", "stream": True, "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}
    chat = clean(request)
    assert _translation_findings(request, chat, "translation.no_additions") == []
    added = copy.deepcopy(chat)
    added.update(max_tokens=4096, temperature=0.7, top_k=40)
    added["tools"][0]["function"]["strict"] = False
    msgs = _translation_findings(request, added, "translation.no_additions")
    assert len(msgs) == 4 and any("max_tokens: 4096" in m for m in msgs) and any("strict: false" in m for m in msgs), msgs
    # what the client set may go upstream
    asked = dict(request, temperature=0.7, max_output_tokens=4096, tools=[dict(request["tools"][0], strict=False)])
    assert _translation_findings(asked, clean(asked), "translation.no_additions") == []


# -- 13. buffering, a second in_progress, id prefixes, a float created_at --------------------------
def test_13_text_buffered_into_one_delta_is_a_warning() -> None:
    upstream = sse(chunk({"content": "Hel"}), chunk({"content": "lo "}), chunk({"content": "there"}), chunk(finish="stop"))
    request = {"model": "m", "input": "x", "stream": True}
    c = cassette(request)
    c.turns[0].upstream[0].chunks[:] = [(0.0, upstream)]

    def run(body: bytes) -> list[Any]:
        ex = exchange(body)
        ex.upstream_expected = 1
        ex.upstream_requests = [{"body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}, "turn": 0, "interaction": 0}]
        ctx = Context(ex, cassette=c, turn=c.turns[0], interaction=c.turns[0].upstream[0])
        return run_checks(ex, profile="openai", select=["oracle.incremental"], context=ctx)["oracle.incremental"].findings

    assert run(encode(_bridge_events(upstream))) == []
    buffered = _bridge_events(sse(chunk({"content": "Hello there"}), chunk(finish="stop")))
    (finding,) = run(encode(buffered))
    assert finding.severity.value == "warning" and "3 chunks" in finding.message


def test_13_second_in_progress_prefixes_and_float_created_at() -> None:
    events = clean_events()
    events.insert(-1, copy.deepcopy(events[1]))
    assert fired(exchange(encode(events))) == {"lifecycle.in_progress_second"}
    body = encode(clean_events()).replace(b'"resp_1"', b'"r1"').replace(b'"fc_1"', b'"f1"')
    ex = exchange(body)
    msgs = findings(ex, "ids.prefixes")
    assert len(msgs) == 2, msgs  # each id once, however often it is repeated
    severity = {p: run_checks(ex, profile=p, select=["ids.prefixes"])["ids.prefixes"].findings[0].severity.value for p in ("openai", "strict")}
    assert severity == {"openai": "info", "strict": "error"}
    events = clean_events()
    events[-1]["response"]["created_at"] = 1712345678.0
    assert fired(exchange(encode(events))) == {"schema.response"}


# -- 6, 14. live mode: a capped output, the stream: false leg, one keep-alive connection -----------
def test_6_14_live_mode_caps_output_sends_both_legs_over_one_connection() -> None:
    from conformance.cassette import load_cassettes
    from conformance.harness import Harness
    from conformance.options import Settings
    from conformance.reference import ReferenceBridge
    from conformance.upstream import FakeUpstream

    cassettes, _ = load_cassettes()
    plain = next(c for c in cassettes if c.id == "openai-text-include-usage")
    assert "max_output_tokens" not in plain.turns[0].request
    # The "model server" is the reference bridge on a fake upstream: live mode does not know it.
    with FakeUpstream([plain]) as upstream:
        bridge = ReferenceBridge(upstream.url)
        bridge.start()
        try:
            harness = Harness(Settings(proxy_url=bridge.url, live=True, live_max_output_tokens=32, limits=FAST))
            harness.start()
            try:
                result = harness.run(plain)
                pool = harness._keep_alive
                assert pool is not None and not pool.is_closed
            finally:
                harness.stop()
        finally:
            bridge.stop()
    assert [e.mode for e in result.exchanges] == ["stream", "nonstream"]
    assert all(e.request["max_output_tokens"] == 32 for e in result.exchanges)
    assert all(e.live and e.status == 200 for e in result.exchanges)
    assert result.outcomes["nonstream.matches_stream"].skipped  # two live answers need not match
    # a cassette's own smaller limit is kept; 0 switches the cap off
    assert Harness(Settings(live=True, live_max_output_tokens=32))._request_for({"max_output_tokens": 8})["max_output_tokens"] == 8
    assert "max_output_tokens" not in Harness(Settings(live=True, live_max_output_tokens=0))._request_for({})
    assert "max_output_tokens" not in Harness(Settings(live=False))._request_for({})
    assert Harness(Settings())._client is None
    shared = Harness(Settings(keep_alive="on"))._client
    assert shared is not None
    shared.close()


def test_14_live_answer_that_used_every_token_must_be_incomplete() -> None:
    events = clean_events()  # usage.output_tokens is 2
    ex = exchange(encode(events))
    ex.request = {"model": "m", "input": "x", "stream": True, "max_output_tokens": 2}
    assert findings(ex, "oracle.limit_reached_incomplete") == []  # replayed: oracle.status's business
    ex.live = True
    (msg,) = findings(ex, "oracle.limit_reached_incomplete")
    assert "'completed'" in msg
    events[-1]["type"] = "response.incomplete"
    events[-1]["response"].update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    ok = exchange(encode(events))
    ok.request, ok.live = ex.request, True
    assert findings(ok, "oracle.limit_reached_incomplete") == []
    ex.request = dict(ex.request, max_output_tokens=3)
    assert findings(ex, "oracle.limit_reached_incomplete") == []


def test_6_live_refusal_of_a_request_the_sdk_types_reject_says_so() -> None:
    request = {"model": "m", "stream": True, "input": [
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "output_text", "text": "4C"}]},
    ]}
    body = json.dumps({"error": {"message": "unsupported part", "type": "invalid_request_error", "param": None, "code": None}}).encode()
    ex = Exchange("t", 0, "u", request, status=400, headers={"content-type": "application/json"}, chunks=[Chunk(0, body)], live=True)
    (msg,) = findings(ex, "http.status_ok")
    assert "openai-python's types do not allow" in msg and "input[1]" in msg
    ex.live = False
    (msg,) = findings(ex, "http.status_ok")
    assert "types do not allow" not in msg
