"""The fault zoo: named, deliberate defects of the reference bridge, one bug class each.

A check is only proven when something makes it fire (DESIGN.md). Each fault here breaks exactly
one rule of a correct stream on a real HTTP connection, so the harness can show that the check
for that rule fires and that no other check does. Faults are hooks at four places:

* ``request``: edits the chat request before it goes upstream;
* ``events``: rewrites the whole event list before sequence numbers are assigned (so only the
  intended rule breaks);
* ``numbered``: rewrites the list after numbering (sequence-number and event-name faults);
* ``status`` / ``content_type`` / ``wire``: the HTTP answer and the byte stream itself;
* ``responses_request`` / ``upstream`` / ``machine``: the Responses request before translation,
  each upstream chat chunk before the event machine, and the machine's options (faults of the
  translation in either direction, which the oracle and translation checks catch);
* ``body`` / ``error_body`` / ``upstream_error_as_stream``: the ``stream: false`` answer and the
  error paths.

Event and wire faults act on streams only; a ``stream: false`` answer changes only through
``request``, ``responses_request``, ``upstream``, ``machine``, ``status``, ``body`` and
``error_body``.

A fault with nothing to act on (say, no function call in the stream) leaves the stream unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._machine import is_terminal, new_id
from ._translate import RequestError

__all__ = ["FAULTS", "HOOKS", "Fault", "Frame", "Hooks", "Raw"]


@dataclass(frozen=True)
class Raw:
    """A frame written verbatim (its own blank line included); it gets no sequence number."""

    text: str


Frame = dict[str, Any] | Raw
Rewrite = Callable[[list[Frame]], list[Frame]]


@dataclass(frozen=True)
class Fault:
    name: str
    bug_class: str
    description: str
    expected_checks: frozenset[str]


@dataclass(frozen=True)
class Hooks:
    events: Rewrite | None = None
    numbered: Rewrite | None = None
    request: Callable[[dict[str, Any]], None] | None = None
    status: int | None = None
    content_type: str | None = None
    wire: str | None = None  # "stall" | "endless" | "cut" | "no-final-blank-line" | "no-done"
    # Edits the Responses request before translation; may raise RequestError (a 400).
    responses_request: Callable[[dict[str, Any]], None] | None = None
    # Makes a fresh editor of parsed upstream chat chunks for each request (it may keep state).
    upstream: Callable[[], Callable[[dict[str, Any]], None]] | None = None
    # Edits the Response body of a ``stream: false`` answer.
    body: Callable[[dict[str, Any]], None] | None = None
    # Rewrites every non-2xx answer: (status, JSON body) -> (status, body as JSON or raw bytes).
    error_body: Callable[[int, dict[str, Any]], tuple[int, Any]] | None = None
    # Options of the event machine, e.g. {"reasoning_events": "text"}.
    machine: dict[str, Any] | None = None
    # An upstream non-2xx answer before any chunk becomes a 200 stream ending in response.failed.
    upstream_error_as_stream: bool = False
    # Rewrites each raw upstream network read before SSE parsing (byte-level faults).
    read: Callable[[bytes], bytes] | None = None


FAULTS: dict[str, Fault] = {}
HOOKS: dict[str, Hooks] = {}


def _fault(name: str, checks: set[str], description: str, **hooks: Any) -> None:
    bug_class = name.split("-", 1)[0]
    bug_class = "X" if bug_class == "H" else bug_class  # H(TTP) faults test harness robustness
    FAULTS[name] = Fault(name, bug_class, description, frozenset(checks))
    HOOKS[name] = Hooks(**hooks)


# -- helpers ---------------------------------------------------------------------------------------
def _events(frames: list[Frame], *types: str) -> Iterator[dict[str, Any]]:
    for f in frames:
        if isinstance(f, dict) and (not types or f.get("type") in types):
            yield f


def _terminal_at(frames: list[Frame]) -> int | None:
    return next((i for i in range(len(frames) - 1, -1, -1) if is_terminal(frames[i])), None)


def _after_start(frames: list[Frame]) -> int:
    """Position just after ``response.in_progress`` (or ``created``), where insertions go."""
    for kind in ("response.in_progress", "response.created"):
        for i, f in enumerate(frames):
            if isinstance(f, dict) and f.get("type") == kind:
                return i + 1
    return 0


def _insert_after_start(frame: Frame) -> Rewrite:
    def rewrite(frames: list[Frame]) -> list[Frame]:
        i = _after_start(frames)
        return [*frames[:i], dict(frame) if isinstance(frame, dict) else frame, *frames[i:]]

    return rewrite


def _drop(*types: str) -> Rewrite:
    return lambda frames: [
        f for f in frames if not (isinstance(f, dict) and f.get("type") in types)
    ]


def _on_terminal(change: Callable[[dict[str, Any]], None]) -> Rewrite:
    def rewrite(frames: list[Frame]) -> list[Frame]:
        i = _terminal_at(frames)
        if i is not None:
            frame = frames[i]
            assert isinstance(frame, dict)
            change(frame)
        return frames

    return rewrite


def _replace_terminal(make: Callable[[dict[str, Any]], list[Frame]]) -> Rewrite:
    def rewrite(frames: list[Frame]) -> list[Frame]:
        i = _terminal_at(frames)
        if i is None:
            return frames
        frame = frames[i]
        assert isinstance(frame, dict)
        return [*frames[:i], *make(frame), *frames[i + 1 :]]

    return rewrite


def _all_items(frames: list[Frame]) -> Iterator[dict[str, Any]]:
    """Every item object on the wire: in added/done events and in the terminal output."""
    for ev in _events(frames):
        if isinstance(ev.get("item"), dict):
            yield ev["item"]
        response = ev.get("response")
        if is_terminal(ev) and isinstance(response, dict):
            yield from (i for i in response.get("output") or [] if isinstance(i, dict))


def _first_message(frames: list[Frame]) -> str | None:
    for ev in _events(frames, "response.output_item.added"):
        if ev["item"].get("type") == "message":
            return str(ev["item"]["id"])
    return None


def _done_text(text: str) -> str:
    return text.strip()[:-1]


DONE = Raw("data: [DONE]\n\n")


# -- event rewrites --------------------------------------------------------------------------------
def _thin_created(frames: list[Frame]) -> list[Frame]:
    for ev in _events(frames, "response.created"):
        r = ev["response"]
        ev["response"] = {"id": r["id"], "object": r["object"], "status": r["status"]}
    return frames


def _created_completed(frames: list[Frame]) -> list[Frame]:
    for ev in _events(frames, "response.created"):
        ev["response"]["status"] = "completed"
    return frames


def _pop_from(
    types: tuple[str, ...], key: str, where: str, part_type: str | None = None
) -> Rewrite:
    def rewrite(frames: list[Frame]) -> list[Frame]:
        for ev in _events(frames, *types):
            target = ev.get(where) if where else ev
            if isinstance(target, dict) and (part_type is None or target.get("type") == part_type):
                target.pop(key, None)
        return frames

    return rewrite


def _item_id_changes_at_done(frames: list[Frame]) -> list[Frame]:
    done = next(_events(frames, "response.output_item.done"), None)
    if done is None:
        return frames
    old, new = done["item"]["id"], new_id(str(done["item"]["id"]).split("_", 1)[0])
    done["item"]["id"] = new
    i = _terminal_at(frames)
    if i is not None:
        terminal = frames[i]
        assert isinstance(terminal, dict)
        for item in terminal["response"].get("output") or []:
            if item.get("id") == old:
                item["id"] = new
    return frames


def _call_id_equals_item_id(frames: list[Frame]) -> list[Frame]:
    renames = {}
    for item in _all_items(frames):
        if item.get("type") == "function_call":
            renames[item["id"]] = item["call_id"]
            item["id"] = item["call_id"]
    for ev in _events(frames):
        if ev.get("item_id") in renames:
            ev["item_id"] = renames[ev["item_id"]]
    return frames


def _call_id_changes_at_done(frames: list[Frame]) -> list[Frame]:
    fresh: dict[str, str] = {}
    done_items = [ev["item"] for ev in _events(frames, "response.output_item.done")]
    i = _terminal_at(frames)
    terminal_out = frames[i]["response"].get("output") or [] if i is not None else []  # type: ignore[index]
    for item in [*done_items, *terminal_out]:
        if item.get("type") == "function_call":
            item["call_id"] = fresh.setdefault(item["call_id"], new_id("call"))
    return frames


def _args_item_id_is_call_id(frames: list[Frame]) -> list[Frame]:
    call_ids = {
        ev["item"]["id"]: ev["item"]["call_id"]
        for ev in _events(frames, "response.output_item.added")
        if ev["item"].get("type") == "function_call"
    }
    for ev in _events(
        frames, "response.function_call_arguments.delta", "response.function_call_arguments.done"
    ):
        ev["item_id"] = call_ids.get(ev["item_id"], ev["item_id"])
    return frames


def _drop_last_item_done(frames: list[Frame]) -> list[Frame]:
    last = [
        i
        for i, f in enumerate(frames)
        if isinstance(f, dict) and f.get("type") == "response.output_item.done"
    ]
    return [f for i, f in enumerate(frames) if not last or i != last[-1]]


def _part_done_after_item_done(frames: list[Frame]) -> list[Frame]:
    msg = _first_message(frames)
    if msg is None:
        return frames
    moved = [f for f in _events(frames, "response.content_part.done") if f["item_id"] == msg]
    rest = [f for f in frames if not any(f is m for m in moved)]
    for i, f in enumerate(rest):
        if (
            isinstance(f, dict)
            and f.get("type") == "response.output_item.done"
            and f["item"]["id"] == msg
        ):
            return [*rest[: i + 1], *moved, *rest[i + 1 :]]
    return frames


def _interleave_items(frames: list[Frame]) -> list[Frame]:
    first_done = next(
        (
            i
            for i, f in enumerate(frames)
            if isinstance(f, dict) and f.get("type") == "response.output_item.done"
        ),
        None,
    )
    if first_done is None:
        return frames
    done = frames[first_done]
    rest = frames[:first_done] + frames[first_done + 1 :]
    for i, f in enumerate(rest):
        if (
            isinstance(f, dict)
            and f.get("type") == "response.output_item.added"
            and i >= first_done
        ):
            return [*rest[: i + 1], done, *rest[i + 1 :]]
    return frames


def _shift(key: str, to: Callable[[int], int]) -> Rewrite:
    def rewrite(frames: list[Frame]) -> list[Frame]:
        for ev in _events(frames):
            if isinstance(ev.get(key), int):
                ev[key] = to(ev[key])
        return frames

    return rewrite


def _strip_done_text(frames: list[Frame]) -> list[Frame]:
    for ev in _events(frames, "response.output_text.done"):
        ev["text"] = _done_text(ev["text"])
    for ev in _events(frames, "response.content_part.done"):
        if ev["part"].get("type") == "output_text":
            ev["part"]["text"] = _done_text(ev["part"]["text"])
    for ev in _events(frames):
        items = [ev["item"]] if ev.get("type") == "response.output_item.done" else []
        if is_terminal(ev):
            items = ev["response"].get("output") or []
        for item in items:
            for part in item.get("content") or [] if item.get("type") == "message" else []:
                if part.get("type") == "output_text":
                    part["text"] = _done_text(part["text"])
    return frames


def _cumulative_arguments(frames: list[Frame]) -> list[Frame]:
    so_far: dict[str, str] = {}
    for ev in _events(frames, "response.function_call_arguments.delta"):
        so_far[ev["item_id"]] = so_far.get(ev["item_id"], "") + ev["delta"]
        ev["delta"] = so_far[ev["item_id"]]
    return frames


def _sequence_gap(frames: list[Frame]) -> list[Frame]:
    for n, ev in enumerate(_events(frames)):
        if n >= 4 and isinstance(ev.get("sequence_number"), int):
            ev["sequence_number"] += 20
    return frames


def _stale_event_name(frames: list[Frame]) -> list[Frame]:
    i = _terminal_at(frames)
    if i is None:
        return frames
    return [
        *frames[:i],
        Raw(f"event: response.created\ndata: {json.dumps(frames[i])}\n\n"),
        *frames[i + 1 :],
    ]


def _edit_last_message(chat: dict[str, Any]) -> None:
    messages = chat.get("messages") or []
    if not messages:
        return
    last = messages[-1]
    if isinstance(last.get("content"), str):
        last["content"] += " (edited)"
    elif isinstance(last.get("content"), list):
        last["content"].append({"type": "text", "text": " (edited)"})
    else:
        last["content"] = "(edited)"


def _foreign_conversation(chat: dict[str, Any]) -> None:
    chat["messages"] = [{"role": "user", "content": "An unrelated question from another conversation."}]


_CHAT_CHUNK = {
    "id": "chatcmpl-fault",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "fault",
    "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
}

_LATE_ERROR = {"type": "error", "code": "server_error", "message": "late", "param": None}

# -- upstream chunk editors (a fresh one per request) ----------------------------------------------
def _deltas(chunk: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for choice in chunk.get("choices") or []:
        if isinstance(choice, dict) and isinstance(choice.get("delta"), dict):
            yield choice["delta"]


def _lose_second_text_delta() -> Callable[[dict[str, Any]], None]:
    seen = [0]

    def edit(chunk: dict[str, Any]) -> None:
        for delta in _deltas(chunk):
            if isinstance(delta.get("content"), str) and delta["content"]:
                seen[0] += 1
                if seen[0] == 2:
                    delta["content"] = ""

    return edit


def _drop_reasoning() -> Callable[[dict[str, Any]], None]:
    def edit(chunk: dict[str, Any]) -> None:
        for delta in _deltas(chunk):
            delta.pop("reasoning_content", None)
            delta.pop("reasoning", None)
            delta.pop("thinking", None)

    return edit


def _reasoning_into_content() -> Callable[[dict[str, Any]], None]:
    def edit(chunk: dict[str, Any]) -> None:
        for delta in _deltas(chunk):
            text = delta.pop("reasoning_content", None) or delta.pop("reasoning", None) or delta.pop("thinking", None)
            if isinstance(text, str) and text:
                delta["content"] = text + (delta.get("content") or "")

    return edit


def _first_name_fragment_only() -> Callable[[dict[str, Any]], None]:
    named: set[Any] = set()

    def edit(chunk: dict[str, Any]) -> None:
        for delta in _deltas(chunk):
            for frag in delta.get("tool_calls") or []:
                fn = frag.get("function") if isinstance(frag, dict) else None
                if isinstance(fn, dict) and fn.get("name"):
                    key = frag.get("index", frag.get("id"))
                    if key in named:
                        fn.pop("name")
                    named.add(key)

    return edit


def _lose_second_argument_fragment() -> Callable[[dict[str, Any]], None]:
    seen = [0]

    def edit(chunk: dict[str, Any]) -> None:
        for delta in _deltas(chunk):
            for frag in delta.get("tool_calls") or []:
                fn = frag.get("function") if isinstance(frag, dict) else None
                if isinstance(fn, dict) and fn.get("arguments"):
                    seen[0] += 1
                    if seen[0] == 2:
                        fn["arguments"] = ""

    return edit


def _remint_call_ids() -> Callable[[dict[str, Any]], None]:
    def edit(chunk: dict[str, Any]) -> None:
        for delta in _deltas(chunk):
            for frag in delta.get("tool_calls") or []:
                if isinstance(frag, dict) and frag.get("id"):
                    frag["id"] = "call_reminted_" + str(frag["id"])[-6:]

    return edit


def _length_as_stop() -> Callable[[dict[str, Any]], None]:
    def edit(chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("finish_reason") == "length":
                choice["finish_reason"] = "stop"

    return edit


def _drop_usage() -> Callable[[dict[str, Any]], None]:
    return lambda chunk: chunk.pop("usage", None) and None


def _decode_read_alone(raw: bytes) -> bytes:
    """``bytes.decode`` per network read: a character split across reads becomes U+FFFD."""
    return raw.decode("utf-8", "replace").encode("utf-8")


# -- request and answer rewrites of the translation faults -----------------------------------------
def _refuse(test: Callable[[dict[str, Any]], str | None]) -> Callable[[dict[str, Any]], None]:
    """A Responses-request hook that answers 400 when ``test`` names an offending param."""

    def hook(body: dict[str, Any]) -> None:
        param = test(body)
        if param is not None:
            raise RequestError(f"Unsupported parameter: {param}", param, "unsupported_parameter")

    return hook


def _custom_tool(body: dict[str, Any]) -> str | None:
    for i, tool in enumerate(body.get("tools") or []):
        if isinstance(tool, dict) and tool.get("type") == "custom":
            return f"tools[{i}].type"
    return None


def _null_reasoning_content(body: dict[str, Any]) -> str | None:
    for i, item in enumerate(body.get("input") or [] if isinstance(body.get("input"), list) else []):
        if isinstance(item, dict) and item.get("type") == "reasoning" and "content" in item and item["content"] is None:
            return f"input[{i}].content"
    return None


def _system_as_developer(chat: dict[str, Any]) -> None:
    for message in chat.get("messages") or []:
        if message.get("role") == "system":
            message["role"] = "developer"


def _split_tool_calls(chat: dict[str, Any]) -> None:
    out: list[dict[str, Any]] = []
    for message in chat.get("messages") or []:
        calls = message.get("tool_calls") or []
        if message.get("role") == "assistant" and len(calls) > 1:
            out.extend({**message, "tool_calls": [call]} for call in calls)
        else:
            out.append(message)
    chat["messages"] = out


def _keep_last_message(chat: dict[str, Any]) -> None:
    messages = chat.get("messages") or []
    chat["messages"] = [m for m in messages[:1] if m.get("role") == "system"] + messages[-1:]


def _drop_last_tool_result(chat: dict[str, Any]) -> None:
    """Leave out the most recent ``tool`` message: the result the model was about to read."""
    messages = chat.get("messages") or []
    last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "tool"), default=None)
    if last is not None:
        chat["messages"] = messages[:last] + messages[last + 1 :]


def _pop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def hook(body: dict[str, Any]) -> None:
        for key in keys:
            body.pop(key, None)

    return hook


def _pop_reasoning_content(chat: dict[str, Any]) -> None:
    for message in chat.get("messages") or []:
        message.pop("reasoning_content", None)


def _leak_responses_fields(chat: dict[str, Any]) -> None:
    chat.update(store=False, include=["reasoning.encrypted_content"], max_output_tokens=chat.get("max_tokens", 64))


def _forward_builtin_tools(chat: dict[str, Any]) -> None:
    chat.setdefault("tools", []).append({"type": "web_search", "external_web_access": False})


def _detail_body(status: int, body: dict[str, Any]) -> tuple[int, Any]:
    err = body.get("error")
    message = err.get("message", "error") if isinstance(err, dict) else "error"
    return status, {"detail": message}


def _bad_request_as_500(status: int, body: dict[str, Any]) -> tuple[int, Any]:
    return (500 if status == 400 else status), body


def _no_param(status: int, body: dict[str, Any]) -> tuple[int, Any]:
    if isinstance(body.get("error"), dict):
        body["error"]["param"] = None
    return status, body


def _failed_as_completed(frames: list[Frame]) -> list[Frame]:
    i = _terminal_at(frames)
    if i is not None:
        frame = frames[i]
        assert isinstance(frame, dict)
        if frame["type"] == "response.failed":
            frame["type"] = "response.completed"
            frame["response"].update(status="completed", error=None)
    return frames


def _generic_failure_message(t: dict[str, Any]) -> None:
    if t.get("type") == "response.failed" and isinstance(t["response"].get("error"), dict):
        t["response"]["error"]["message"] = "An error occurred."


def _error_before_terminal(frames: list[Frame]) -> list[Frame]:
    i = _terminal_at(frames)
    if i is None:
        return frames
    return [*frames[:i], dict(_LATE_ERROR, message="upstream hiccup"), *frames[i:]]


def _empty_output(body: dict[str, Any]) -> None:
    body["output"] = []


# -- the zoo: name, expected checks, description, hooks ------------------------------------------
# fmt: off
_fault("H-status-500", {"http.status_ok"},
       "Answers the streaming request with HTTP 500 and an error envelope.", status=500)
_fault("S5-content-type-json", {"http.content_type"},
       "Streams a correct SSE body labelled Content-Type: application/json.",
       content_type="application/json")
_fault("X-stall", {"transport.timeout", "lifecycle.terminal_present"},
       "Sends created and in_progress, then stalls without closing until the server stops.",
       wire="stall")
_fault("X-endless", {"transport.cap", "lifecycle.terminal_present"},
       "After in_progress, opens a message and sends a text delta every 5 ms until the stop.",
       wire="endless")
_fault("X-cut-connection", {"transport.clean_close", "lifecycle.terminal_present"},
       "Closes the TCP connection after four events without ending the chunked body.", wire="cut")
_fault("S5-no-final-blank-line", {"sse.framing"},
       "The last event lacks the blank line that dispatches it.", wire="no-final-blank-line")
_fault("S5-chat-chunks", {"sse.data_json"},
       "A raw chat.completion.chunk leaks into the stream after in_progress.",
       events=_insert_after_start(Raw(f"data: {json.dumps(_CHAT_CHUNK)}\n\n")))
_fault("X-garbage-line", {"sse.data_json"},
       "A data line that is not JSON follows in_progress.",
       events=_insert_after_start(Raw("data: <<garbage>>\n\n")))
_fault("S5-stale-event-name", {"sse.event_name_matches_type"},
       "The terminal event's `event:` line says response.created.", numbered=_stale_event_name)
_fault("S5-done-before-terminal", {"sse.done_after_terminal"},
       "Sends data: [DONE] right before the terminal event.",
       events=_replace_terminal(lambda t: [DONE, t]))
_fault("X-vendor-event", {"schema.known_event_type"},
       "Adds a vendor event type (response.vendor.ping) after in_progress.",
       events=_insert_after_start({"type": "response.vendor.ping"}))
_fault("X-delta-no-logprobs", {"schema.event"},
       "output_text.delta events lack their required logprobs field.",
       events=_pop_from(("response.output_text.delta",), "logprobs", ""))
_fault("R3-thin-created", {"schema.response"},
       "response.created carries only {id, object, status} instead of a full Response.",
       events=_thin_created)
_fault("R4-item-no-status", {"schema.item"},
       "Items in output_item.added lack status.",
       events=_pop_from(("response.output_item.added",), "status", "item"))
_fault("R4-part-no-annotations", {"schema.part"},
       "output_text parts in content_part.added lack annotations.",
       events=_pop_from(("response.content_part.added",), "annotations", "part", "output_text"))
_fault("I1-no-sequence-number", {"seq.present"},
       "The terminal event has no sequence_number.",
       numbered=_on_terminal(lambda t: t.pop("sequence_number", None)))
_fault("I1-sequence-gap", {"seq.monotonic"},
       "After the fourth event the sequence numbers skip 20.", numbered=_sequence_gap)
_fault("S2-no-created", {"lifecycle.created_first"},
       "response.created is never sent.", events=_drop("response.created"))
_fault("R3-no-in-progress", {"lifecycle.in_progress_second"},
       "response.in_progress is never sent.", events=_drop("response.in_progress"))
_fault("R3-created-status-completed", {"lifecycle.initial_status"},
       "response.created carries status completed.", events=_created_completed)
_fault("S1-drop-terminal", {"lifecycle.terminal_present"},
       "The terminal event is dropped; the stream just ends.",
       events=_replace_terminal(lambda t: []))
_fault("S1-done-instead-of-terminal", {"lifecycle.terminal_present", "sse.done_after_terminal"},
       "The terminal event is replaced by data: [DONE].",
       events=_replace_terminal(lambda t: [DONE]))
_fault("S6-error-after-completed", {"lifecycle.single_terminal_last"},
       "An error event follows the terminal event.",
       events=lambda frames: [*frames, dict(_LATE_ERROR)])
_fault("X-terminal-status-mismatch", {"lifecycle.terminal_status"},
       "The terminal event's response.status is in_progress.",
       events=_on_terminal(lambda t: t["response"].update(status="in_progress")))
_fault("I3-response-id-changes", {"ids.response_id_stable"},
       "The terminal response has a different id from created.",
       events=_on_terminal(lambda t: t["response"].update(id=new_id("resp"))))
_fault("I2-item-id-changes-at-done", {"ids.item_id_stable"},
       "output_item.done of the first item (and its terminal copy) carries a new id.",
       events=_item_id_changes_at_done)
_fault("I3-call-id-equals-item-id", {"ids.call_id"},
       "Function call items use their call_id as their item id everywhere.",
       events=_call_id_equals_item_id)
_fault("I3-call-id-changes-at-done", {"ids.call_id", "oracle.tool_calls", "nonstream.matches_stream"},
       "Function call call_ids are re-minted at output_item.done and in the terminal output.",
       events=_call_id_changes_at_done)
_fault("S2-no-output-item-added",
       {"items.event_targets_open_item", "items.closed_once", "integrity.arguments_concat"},
       "No output_item.added is ever sent.", events=_drop("response.output_item.added"))
_fault("I2-args-delta-uses-call-id", {"items.event_targets_open_item"},
       "function_call_arguments.delta/done use the call_id as item_id.",
       events=_args_item_id_is_call_id)
_fault("S2-no-content-part-added", {"items.event_targets_open_part"},
       "No content_part.added is ever sent.", events=_drop("response.content_part.added"))
_fault("S3-no-output-item-done", {"items.closed_once", "integrity.terminal_output"},
       "The last output_item.done is dropped (the terminal output is unchanged).",
       events=_drop_last_item_done)
_fault("S3-part-done-after-item-done", {"items.close_order"},
       "The message's content_part.done comes after its output_item.done.",
       events=_part_done_after_item_done)
_fault("S4-interleave-items", {"items.sequential"},
       "Item 1 is added before item 0 is done (needs two items).", events=_interleave_items)
_fault("I4-output-index-off-by-one", {"indices.output_index_dense"},
       "Every output_index is one too high.", events=_shift("output_index", lambda n: n + 1))
_fault("I4-content-index-one", {"indices.content_index_dense"},
       "Every content_index is 1 although each item has one part.",
       events=_shift("content_index", lambda n: 1))
_fault("X2-strip-done-text", {"integrity.text_concat", "oracle.text", "nonstream.matches_stream"},
       "Done text (event, part, item, terminal) is stripped and loses its last character.",
       events=_strip_done_text)
_fault("T4-cumulative-arguments", {"integrity.arguments_concat"},
       "Each function_call_arguments.delta carries the cumulative arguments so far.",
       events=_cumulative_arguments)
_fault("R1-empty-completed-output", {"integrity.terminal_output"},
       "The terminal response has output [] although items were streamed.",
       events=_on_terminal(lambda t: t["response"].update(output=[])))
# The fake upstream answers the turn in flight even when the proxy changed its last message, so
# the translation check names the change (it used to be an unmatched request, a 5xx).
_fault("Q2-wrong-last-message", {"translation.messages"},
       "Appends ' (edited)' to the last chat message sent upstream.", request=_edit_last_message)
# A request that fits no turn in flight still gets the fake upstream's 5xx naming the closest
# cassettes; the translation check still names what the proxy sent, and the report folds the 5xx
# (upstream.matched, then http.status_ok) under it.
_fault("Q2-foreign-conversation", {"upstream.matched", "http.status_ok", "translation.messages"},
       "Sends upstream a conversation that has nothing of the client's.", request=_foreign_conversation)

# The oracle: what the proxy answers must be what upstream said.
_fault("X2-upstream-text-lost", {"oracle.text"},
       "Loses the second content delta of the upstream stream (everywhere, consistently).",
       upstream=_lose_second_text_delta)
_fault("RS1-reasoning-dropped", {"oracle.reasoning"},
       "Ignores reasoning_content / reasoning deltas: no reasoning item.", upstream=_drop_reasoning)
_fault("RS1-reasoning-as-text", {"oracle.text", "oracle.reasoning"},
       "Streams the upstream reasoning as message text.", upstream=_reasoning_into_content)
_fault("RS1-reasoning-text-events", {"dialect.reasoning_events_spec_names"},
       "Streams reasoning as response.reasoning_text.* content (not an Open Responses event).",
       machine={"reasoning_events": "text"})
_fault("RS1-reasoning-dot-events", {"dialect.reasoning_events_sdk_names"},
       "Streams reasoning as Open Responses' response.reasoning.* (unknown to the OpenAI SDKs).",
       machine={"reasoning_events": "dot"})
_fault("T2-first-name-fragment-only", {"oracle.tool_calls"},
       "Keeps only the first name fragment of a tool call whose name arrives split.",
       upstream=_first_name_fragment_only)
_fault("T4-argument-fragment-lost", {"oracle.tool_calls"},
       "Loses the second argument fragment of the upstream tool calls.",
       upstream=_lose_second_argument_fragment)
_fault("I3-call-id-reminted", {"oracle.tool_calls"},
       "Mints its own call ids instead of keeping the upstream tool-call ids (consistently).",
       upstream=_remint_call_ids)
_fault("F1-length-as-completed", {"oracle.status"},
       "Maps finish_reason length to a completed response.", upstream=_length_as_stop)
_fault("X2-per-read-decoding", {"oracle.text"},
       "Decodes each upstream network read as UTF-8 on its own: a character split across reads becomes U+FFFD.",
       read=_decode_read_alone)
_fault("U1-usage-dropped", {"oracle.usage"},
       "Skips the upstream usage (the `if not choices: continue` bug): usage is null.",
       upstream=_drop_usage)
_fault("S6-cut-reported-completed", {"oracle.status"},
       "Reports an upstream failure as response.completed (a cut swallowed).",
       events=_failed_as_completed)
_fault("S6-upstream-message-lost", {"oracle.error_relayed"},
       "response.failed says 'An error occurred.' instead of the upstream's message.",
       events=_on_terminal(_generic_failure_message))
_fault("S6-error-event-on-healthy-stream", {"errors.no_error_event_on_healthy_stream"},
       "Sends an error event just before the terminal event of a healthy stream.",
       events=_error_before_terminal)
_fault("S6-flat-error-event", {"dialect.error_event_nested"},
       "Precedes response.failed with an error event in the flat shape (open-responses wants it nested).",
       events=_error_before_terminal)
_fault("S7-detail-error-body", {"errors.envelope"},
       "Error answers carry {\"detail\": message} instead of the OpenAI envelope.", error_body=_detail_body)
_fault("S7-500-on-invalid-request", {"http.status_ok"},
       "Answers a malformed request with 500 instead of 400.", error_body=_bad_request_as_500)
_fault("S7-200-on-upstream-error", {"http.status_ok"},
       "An upstream error before the first chunk becomes a 200 stream ending in response.failed.",
       upstream_error_as_stream=True)

# The translation: what goes upstream must be what the client asked.
_fault("Q1-developer-role-forwarded", {"translation.system_message"},
       "Sends the merged system message upstream with role developer.", request=_system_as_developer)
_fault("Q1-instructions-dropped", {"translation.system_message"},
       "Ignores `instructions`.", responses_request=_pop("instructions"))
_fault("Q2-tool-history-split", {"translation.tool_history"},
       "Sends each tool call of one assistant turn as its own assistant message.",
       request=_split_tool_calls)
_fault("Q2-history-dropped", {"translation.messages"},
       "Sends only the system message and the last message upstream.", request=_keep_last_message)
_fault("Q2-tool-result-dropped", {"translation.tool_history"},
       "Leaves the most recent tool result out of the history it sends upstream.",
       request=_drop_last_tool_result)
_fault("Q3-400-on-string-input", {"request.valid_input_accepted", "http.status_ok", "upstream.called"},
       "Refuses `input` given as a string.",
       responses_request=_refuse(lambda b: "input" if isinstance(b.get("input"), str) else None))
_fault("Q4-400-on-metadata", {"request.valid_input_accepted", "http.status_ok", "upstream.called"},
       "Refuses requests that carry `metadata` (Cursor: Unsupported parameter: metadata).",
       responses_request=_refuse(lambda b: "metadata" if "metadata" in b else None))
_fault("Q4-tool-choice-dropped", {"translation.tool_choice"},
       "Drops tool_choice and parallel_tool_calls on the way upstream.",
       request=_pop("tool_choice", "parallel_tool_calls"))
_fault("Q4-sampling-dropped", {"translation.sampling"},
       "Drops max_tokens, temperature and top_p on the way upstream.",
       request=_pop("max_tokens", "temperature", "top_p"))
_fault("Q4-responses-fields-leaked", {"translation.no_responses_fields"},
       "Sends store, include and max_output_tokens upstream as they are.", request=_leak_responses_fields)
_fault("Q5-response-format-dropped", {"translation.response_format"},
       "Drops response_format (text.format is silently unenforced).", request=_pop("response_format"))
_fault("Q7-previous-response-id-ignored", {"translation.previous_response_id"},
       "Ignores previous_response_id and answers from the new input alone.",
       responses_request=_pop("previous_response_id"))
_fault("Q7-refusal-without-param", {"translation.previous_response_id"},
       "Refuses previous_response_id with a 400 whose error.param is null.", error_body=_no_param)
_fault("T5-400-on-custom-tool", {"request.valid_input_accepted", "http.status_ok", "upstream.called"},
       "Refuses requests with a custom tool (LM Studio: Invalid discriminator value).",
       responses_request=_refuse(_custom_tool))
_fault("T5-builtin-tool-forwarded", {"translation.tools"},
       "Forwards a web_search tool upstream as it is.", request=_forward_builtin_tools)
_fault("RS2-400-on-null-reasoning-content", {"request.valid_input_accepted", "http.status_ok", "upstream.called"},
       "Refuses replayed reasoning items whose content is null.",
       responses_request=_refuse(_null_reasoning_content))
_fault("RS2-reasoning-history-dropped", {"translation.reasoning_history"},
       "Does not send replayed reasoning back as reasoning_content.", request=_pop_reasoning_content)
_fault("U1-no-include-usage", {"translation.stream_usage"},
       "Does not ask the upstream for usage (no stream_options.include_usage).",
       request=_pop("stream_options"))

# stream: false and the Open Responses dialect
_fault("R5-nonstream-empty-output", {"nonstream.matches_stream", "oracle.text"},
       "The stream: false body has output [].", body=_empty_output)
_fault("R5-nonstream-wrong-output-text", {"nonstream.output_text"},
       "The stream: false body has an output_text that is not the message text.",
       body=lambda b: b.update(output_text="(no text)"))
_fault("R5-nonstream-no-created-at", {"nonstream.body_is_response"},
       "The stream: false body lacks created_at.", body=_pop("created_at"))
_fault("X-no-done-sentinel", {"dialect.done_sentinel_sent"},
       "Ends the stream without data: [DONE] (Open Responses requires it).", wire="no-done")
# fmt: on


# -- issue 12: what real proxies showed (faults added at the end; the list above is unchanged) ---
def _late_empty_deltas(frames: list[Frame]) -> list[Frame]:
    """An empty delta right after each ``output_text.done`` and ``function_call_arguments.done``."""
    out: list[Frame] = []
    for f in frames:
        out.append(f)
        if not isinstance(f, dict):
            continue
        if f.get("type") == "response.output_text.done":
            scope: dict[str, Any] = {k: f[k] for k in ("item_id", "output_index", "content_index") if k in f}
            out.append({"type": "response.output_text.delta", **scope, "delta": "", "logprobs": []})
        elif f.get("type") == "response.function_call_arguments.done":
            scope = {k: f[k] for k in ("item_id", "output_index") if k in f}
            out.append({"type": "response.function_call_arguments.delta", **scope, "delta": ""})
    return out


def _drop_cache_write_tokens(response: dict[str, Any]) -> None:
    usage = response.get("usage")
    details = usage.get("input_tokens_details") if isinstance(usage, dict) else None
    if isinstance(details, dict):
        details.pop("cache_write_tokens", None)


def _events_without_cache_write_tokens(frames: list[Frame]) -> list[Frame]:
    for f in _events(frames):
        if isinstance(f.get("response"), dict):
            _drop_cache_write_tokens(f["response"])
    return frames


def _echo_disagrees(frames: list[Frame]) -> list[Frame]:
    """The terminal flips parallel_tool_calls and echoes the upstream chat id as previous_response_id."""
    t = _terminal_at(frames)
    if t is not None:
        term = frames[t]
        assert isinstance(term, dict)
        _echo_upstream_id(term["response"])
    return frames


def _echo_upstream_id(response: dict[str, Any]) -> None:
    response["parallel_tool_calls"] = not response.get("parallel_tool_calls", True)
    response["previous_response_id"] = "chatcmpl-fault"


def _add_unasked(chat: dict[str, Any]) -> None:
    """What some proxies add upstream: a token limit, a temperature, strict: false, an index."""
    chat.setdefault("max_tokens", 4096)
    chat.setdefault("temperature", 0.7)
    for tool in chat.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict):
            fn.setdefault("strict", False)
    for m in chat.get("messages") or []:
        for n, tc in enumerate(m.get("tool_calls") or [] if isinstance(m, dict) else []):
            if isinstance(tc, dict):
                tc["index"] = n


def _buffer_deltas(frames: list[Frame]) -> list[Frame]:
    """Each part's text and each call's arguments as one delta, just before its ``*.done``."""
    kinds = {"response.output_text.delta": "response.output_text.done", "response.function_call_arguments.delta": "response.function_call_arguments.done"}
    held: dict[tuple[str, Any, Any], dict[str, Any]] = {}
    out: list[Frame] = []
    for f in frames:
        if isinstance(f, dict) and f.get("type") in kinds:
            key = (kinds[str(f["type"])], f.get("item_id"), f.get("content_index"))
            if key in held:
                held[key]["delta"] += f.get("delta", "")
            else:
                held[key] = dict(f)
            continue
        if isinstance(f, dict):
            key = (str(f.get("type")), f.get("item_id"), f.get("content_index"))
            if key in held:
                out.append(held.pop(key))
        out.append(f)
    return out


def _second_in_progress(frames: list[Frame]) -> list[Frame]:
    first = next((f for f in _events(frames, "response.in_progress")), None)
    t = _terminal_at(frames)
    if first is None or t is None:
        return frames
    return [*frames[:t], json.loads(json.dumps(first)), *frames[t:]]


def _unprefixed_ids(frames: list[Frame]) -> list[Frame]:
    """resp_/msg_/fc_ ids become resp-/msg-/fc- ids, consistently everywhere."""
    out: list[Frame] = []
    for f in frames:
        if isinstance(f, dict):
            text = json.dumps(f)
            for prefix in ("resp", "msg", "fc"):
                text = text.replace(f'"{prefix}_', f'"{prefix}-')
            f = json.loads(text)
        out.append(f)
    return out


def _float_created_at(frames: list[Frame]) -> list[Frame]:
    for f in _events(frames):
        resp = f.get("response")
        if isinstance(resp, dict) and isinstance(resp.get("created_at"), int):
            resp["created_at"] = resp["created_at"] + 0.25
    return frames


# fmt: off
_fault("X2-late-empty-deltas", {"items.no_delta_after_done"},
       "An empty text delta follows each output_text.done, an empty argument delta each function_call_arguments.done.",
       events=_late_empty_deltas)
_fault("T2-reused-index-merged", {"oracle.tool_calls"},
       "Keys tool-call fragments by index alone: a second call sent on a used index with a new id is merged into the first.",
       machine={"merge_reused_index": True})
_fault("S3-no-part-added-no-text-done", {"items.event_targets_open_part", "items.close_order"},
       "Neither content_part.added nor output_text.done is sent (the missing closer must still be named).",
       events=_drop("response.content_part.added", "response.output_text.done"))
_fault("U1-no-cache-write-tokens", {"schema.usage_details"},
       "Usage has no input_tokens_details.cache_write_tokens (stream and stream: false body).",
       events=_events_without_cache_write_tokens, body=_drop_cache_write_tokens)
_fault("R3-echo-disagrees", {"lifecycle.echo_consistent"},
       "The terminal response (and the stream: false body) says parallel_tool_calls the other way round "
       "and echoes previous_response_id as an upstream chatcmpl- id.",
       events=_echo_disagrees, body=_echo_upstream_id)
_fault("Q4-unasked-upstream-additions", {"translation.no_additions"},
       "Adds max_tokens 4096, temperature 0.7, strict: false on tools and an index in replayed tool_calls, where the client set none.",
       request=_add_unasked)
_fault("X-buffered-deltas", {"oracle.incremental"},
       "Buffers each message part's text and each call's arguments into one delta sent just before its done event.",
       events=_buffer_deltas)
_fault("R3-in-progress-repeated", {"lifecycle.in_progress_second"},
       "Sends response.in_progress a second time, right before the terminal event.", events=_second_in_progress)
_fault("I2-ids-without-prefixes", {"ids.prefixes"},
       "Response, message and function_call ids lack the resp_/msg_/fc_ prefixes (resp-…, msg-…, fc-…).",
       events=_unprefixed_ids)
_fault("R3-float-created-at", {"schema.response"},
       "created_at is a float (…25) in every response object of the stream.", events=_float_created_at)
# fmt: on
# Added for issue 10 (problems, not findings): one root cause whose consequences fan out.
def _empty_user_messages(chat: dict[str, Any]) -> None:
    for message in chat.get("messages") or []:
        if message.get("role") == "user":
            message["content"] = ""


# On most cassettes the emptied last message also leaves the fake upstream without a match
# (upstream.matched, then http.status_ok): the report folds those under translation.messages.
_fault("Q2-user-messages-emptied", {"translation.messages"},
       "Sends every user message upstream with empty content.", request=_empty_user_messages)
