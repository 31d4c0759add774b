"""The lab's catalog: one clean stream and defects of it, each breaking one rule once.

The clean stream is a complete answer (a message "Hello there" and a call of the function
``f`` with ``{"a":1}``); every defect changes one thing about it. Which checks a defect makes
fire is measured by the lab (``run_checks``), not declared here; ``check`` names the rule the
defect was written to break, and the lab verifies it fires.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conformance.clients._replay import Capture

__all__ = ["DEFECTS", "Defect", "clean_events", "encode"]

Events = list[dict[str, Any]]


def clean_events() -> Events:
    resp: dict[str, Any] = {
        "id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "in_progress", "output": [],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None,
        "instructions": None, "metadata": {}, "temperature": None, "top_p": None, "text": {"format": {"type": "text"}},
        "truncation": "disabled", "usage": None,
    }
    msg = {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress", "content": []}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    done_part = dict(part, text="Hello there")
    done_msg = dict(msg, status="completed", content=[done_part])
    fc = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "", "status": "in_progress"}
    done_fc = dict(fc, arguments='{"a":1}', status="completed")
    usage = {
        "input_tokens": 1, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 3,
    }
    scope = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: Events = [
        {"type": "response.created", "response": resp},
        {"type": "response.in_progress", "response": resp},
        {"type": "response.output_item.added", "output_index": 0, "item": msg},
        {"type": "response.content_part.added", **scope, "part": part},
        {"type": "response.output_text.delta", **scope, "delta": "Hello", "logprobs": []},
        {"type": "response.output_text.delta", **scope, "delta": " there", "logprobs": []},
        {"type": "response.output_text.done", **scope, "text": "Hello there", "logprobs": []},
        {"type": "response.content_part.done", **scope, "part": done_part},
        {"type": "response.output_item.done", "output_index": 0, "item": done_msg},
        {"type": "response.output_item.added", "output_index": 1, "item": fc},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": '{"a":'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": "1}"},
        {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 1, "name": "f", "arguments": '{"a":1}'},
        {"type": "response.output_item.done", "output_index": 1, "item": done_fc},
        {"type": "response.completed", "response": dict(resp, status="completed", output=[done_msg, done_fc], usage=usage)},
    ]
    return copy.deepcopy(events)


def encode(events: Events, *, renumber: bool = True, event_lines: bool = True, tail: str = "") -> bytes:
    out = []
    for seq, ev in enumerate(events):
        if renumber and "sequence_number" not in ev:
            ev = {**ev, "sequence_number": seq}
        head = f"event: {ev['type']}\n" if event_lines and "type" in ev else ""
        out.append(f"{head}data: {json.dumps(ev)}\n\n")
    return ("".join(out) + tail).encode()


@dataclass(frozen=True)
class Defect:
    name: str
    check: str  # the rule it breaks (verified by the lab to fire)
    what: str
    build: Callable[[], Capture]
    # True: the defect changes a value the client is right to pass on (an id), so the reference
    # is what the stream carried, not the clean answer.
    judge_by_stream: bool = False


def _m(fn: Callable[[Events], Any]) -> Callable[[], Capture]:
    """A defect from a mutation: ``fn`` edits the events in place or returns a new list."""

    def build() -> Capture:
        events = clean_events()
        result = fn(events)
        return Capture.sse(encode(result if isinstance(result, list) else events))

    return build


def _bytes(fn: Callable[[bytes], bytes], **kw: Any) -> Callable[[], Capture]:
    return lambda: Capture.sse(fn(encode(clean_events())), **kw)


def _each(events: Events, kind: str, fn: Callable[[dict[str, Any]], Any]) -> Events:
    for ev in events:
        if ev.get("type") == kind:
            fn(ev)
    return events


def _drop_usage_detail(e: Events) -> None:
    del e[-1]["response"]["usage"]["input_tokens_details"]["cache_write_tokens"]


def _cut(body: bytes) -> Capture:
    return Capture(200, {"content-type": "text/event-stream"}, [body], cut="drop")


_DEFECTS: tuple[Defect, ...] = (
    # transport, HTTP, framing
    Defect("http-500", "http.status_ok", "HTTP 500 with an error body instead of the answer",
           lambda: Capture(500, {"content-type": "application/json"}, [b'{"error":{"message":"boom","type":"server_error","param":null,"code":null}}'])),
    Defect("json-content-type", "http.content_type", "the stream labelled application/json", _bytes(lambda b: b, content_type="application/json")),
    Defect("cut-before-terminal", "transport.clean_close", "the connection dropped before response.completed",
           lambda: _cut(encode(clean_events()[:-1]))),
    Defect("unterminated-final", "sse.framing", "the last event lacks its blank line", _bytes(lambda b: b[:-1])),
    Defect("unknown-sse-field", "sse.framing", "an SSE line with a field name the spec does not define",
           _bytes(lambda b: b.replace(b"data: ", b"x-vendor: 1\ndata: ", 1))),
    Defect("not-json", "sse.data_json", "a data line that is not JSON, before the terminal event",
           _bytes(lambda b: b.replace(b"event: response.completed", b"data: <<garbage>>\n\nevent: response.completed"))),
    Defect("event-name-mismatch", "sse.event_name_matches_type", "the SSE event name differs from the JSON type",
           _bytes(lambda b: b.replace(b"event: response.completed", b"event: response.created"))),
    Defect("done-before-terminal", "sse.done_after_terminal", "data: [DONE] before response.completed",
           _bytes(lambda b: b.replace(b"event: response.completed", b"data: [DONE]\n\nevent: response.completed"))),
    # schema
    Defect("unknown-type", "schema.known_event_type", "a vendor event type mid-stream",
           _m(lambda e: [*e[:2], {"type": "response.vendor.ping"}, *e[2:]])),
    Defect("delta-no-logprobs", "schema.event", "text deltas without logprobs",
           _m(lambda e: _each(e, "response.output_text.delta", lambda ev: ev.pop("logprobs")))),
    Defect("delta-no-item-id", "schema.event", "text deltas without item_id",
           _m(lambda e: _each(e, "response.output_text.delta", lambda ev: ev.pop("item_id")))),
    Defect("delta-no-output-index", "schema.event", "text and argument deltas without output_index",
           _m(lambda e: [ev.pop("output_index") for ev in e if ev["type"].endswith(".delta")] and e)),
    Defect("thin-created", "schema.response", "response.created carries only id, object and status",
           _m(lambda e: e[0].update(response={"id": "resp_1", "object": "response", "status": "in_progress"}))),
    Defect("completed-only-id", "schema.response", "response.completed carries only the response id",
           _m(lambda e: e[-1].update(response={"id": "resp_1"}))),
    Defect("usage-no-total", "schema.response", "usage without total_tokens",
           _m(lambda e: e[-1]["response"]["usage"].pop("total_tokens"))),
    Defect("usage-no-cache-write", "schema.usage_details", "usage.input_tokens_details without cache_write_tokens",
           _m(_drop_usage_detail)),
    Defect("item-no-status", "schema.item", "output items without status",
           _m(lambda e: [ev["item"].pop("status") for ev in e if ev["type"].startswith("response.output_item.")] and e)),
    Defect("item-no-id", "schema.item", "output items without id",
           _m(lambda e: [ev["item"].pop("id") for ev in e if ev["type"].startswith("response.output_item.")] and e)),
    Defect("args-object", "schema.item", "function-call arguments as a JSON object, not a string",
           _m(lambda e: [e[13]["item"].update(arguments={"a": 1}), e[-1]["response"]["output"][1].update(arguments={"a": 1})] and e)),
    Defect("part-no-annotations", "schema.part", "a content part without annotations",
           _m(lambda e: [e[3]["part"].pop("annotations"), e][1])),
    Defect("seq-missing", "seq.present", "events without sequence_number",
           lambda: Capture.sse(encode(clean_events(), renumber=False))),
    Defect("seq-gap", "seq.monotonic", "sequence numbers jump",
           _m(lambda e: [ev.update(sequence_number=i + (20 if i > 3 else 0)) for i, ev in enumerate(e)] and e)),
    # lifecycle and ids
    Defect("no-created", "lifecycle.created_first", "no response.created", _m(lambda e: e[1:])),
    Defect("no-in-progress", "lifecycle.in_progress_second", "no response.in_progress", _m(lambda e: [e[0], *e[2:]])),
    Defect("created-completed", "lifecycle.initial_status", "response.created says status completed",
           _m(lambda e: e[0].update(response=dict(e[0]["response"], status="completed")))),
    Defect("no-terminal", "lifecycle.terminal_present", "the stream ends cleanly without response.completed",
           _m(lambda e: e[:-1])),
    Defect("error-after-terminal", "lifecycle.single_terminal_last", "an error event after response.completed",
           _m(lambda e: [*e, {"type": "error", "code": "x", "message": "late", "param": None}])),
    Defect("terminal-status", "lifecycle.terminal_status", "response.completed says status in_progress",
           _m(lambda e: e[-1]["response"].update(status="in_progress"))),
    Defect("response-id-changes", "ids.response_id_stable", "the response id changes in response.completed",
           _m(lambda e: e[-1]["response"].update(id="resp_2"))),
    Defect("item-id-changes", "ids.item_id_stable", "the message id changes at output_item.done",
           _m(lambda e: [e[8].update(item=dict(e[8]["item"], id="msg_X")), e[-1]["response"]["output"][0].update(id="msg_X")] and e)),
    Defect("call-id-equals-id", "ids.call_id", "call_id equal to the item id (fc_…)",
           _m(lambda e: [e[9]["item"].update(call_id="fc_1"), e[13]["item"].update(call_id="fc_1"), e[-1]["response"]["output"][1].update(call_id="fc_1")] and e), judge_by_stream=True),
    Defect("call-id-changes", "ids.call_id", "call_id differs between output_item.added and .done",
           _m(lambda e: [e[13]["item"].update(call_id="call_2"), e[-1]["response"]["output"][1].update(call_id="call_2")] and e)),
    # items and indices
    Defect("delta-before-added", "items.event_targets_open_item", "a text delta before its message item is added",
           _m(lambda e: [e[0], e[1], e[4], e[2], e[3], *e[5:]])),
    Defect("args-delta-uses-call-id", "items.event_targets_open_item", "an argument delta names the call_id as item_id",
           _m(lambda e: e[10].update(item_id="call_1"))),
    Defect("no-part-added", "items.event_targets_open_part", "no content_part.added before the text deltas",
           _m(lambda e: [ev for ev in e if ev["type"] != "response.content_part.added"])),
    Defect("no-fc-item-done", "items.closed_once", "the function call's output_item.done is missing",
           _m(lambda e: [*e[:13], e[14]])),
    Defect("no-item-done", "items.closed_once", "no output_item.done at all",
           _m(lambda e: [ev for ev in e if ev["type"] != "response.output_item.done"])),
    Defect("part-done-after-item-done", "items.close_order", "content_part.done after output_item.done",
           _m(lambda e: [*e[:7], e[8], e[7], *e[9:]])),
    Defect("interleaved", "items.sequential", "the function call opens before the message closes",
           _m(lambda e: [*e[:8], e[9], e[8], *e[10:]])),
    Defect("output-index-off-by-one", "indices.output_index_dense", "output_index starts at 1",
           _m(lambda e: [ev.update(output_index=ev["output_index"] + 1) for ev in e if "output_index" in ev] and e)),
    Defect("content-index-one", "indices.content_index_dense", "content_index starts at 1",
           _m(lambda e: [ev.update(content_index=1) for ev in e if "content_index" in ev] and e)),
    # integrity
    Defect("stripped-done-text", "integrity.text_concat", "output_text.done text differs from the deltas",
           _m(lambda e: e[6].update(text="Hello ther"))),
    Defect("item-done-text-differs", "integrity.text_concat", "output_item.done and completed carry other text than the deltas",
           _m(lambda e: [e[6].update(text="Hi"), e[7]["part"].update(text="Hi"), e[8]["item"]["content"][0].update(text="Hi"),
                         e[-1]["response"]["output"][0]["content"][0].update(text="Hi")] and e)),
    Defect("cumulative-args", "integrity.arguments_concat", "argument deltas are cumulative",
           _m(lambda e: e[11].update(delta='{"a":1}'))),
    Defect("empty-completed-output", "integrity.terminal_output", "response.completed with output []",
           _m(lambda e: e[-1]["response"].update(output=[]))),
    # errors
    Defect("error-event-midstream", "lifecycle.terminal_present", "an error event replaces response.completed",
           _m(lambda e: [*e[:-1], {"type": "error", "code": "server_error", "message": "boom", "param": None}])),
)

DEFECTS: dict[str, Defect] = {d.name: d for d in _DEFECTS}
CLEAN = Defect("clean", "", "the clean stream", lambda: Capture.sse(encode(clean_events())))
