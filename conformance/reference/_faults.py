"""The fault zoo: named, deliberate defects of the reference bridge, one bug class each.

A check is only proven when something makes it fire (DESIGN.md). Each fault here breaks exactly
one rule of a correct stream on a real HTTP connection, so the harness can show that the check
for that rule fires and that no other check does. Faults are hooks at four places:

* ``request``: edits the chat request before it goes upstream;
* ``events``: rewrites the whole event list before sequence numbers are assigned (so only the
  intended rule breaks);
* ``numbered``: rewrites the list after numbering (sequence-number and event-name faults);
* ``status`` / ``content_type`` / ``wire``: the HTTP answer and the byte stream itself.

A fault with nothing to act on (say, no function call in the stream) leaves the stream unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._machine import is_terminal, new_id

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
    wire: str | None = None  # "stall" | "endless" | "cut" | "no-final-blank-line"


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


_CHAT_CHUNK = {
    "id": "chatcmpl-fault",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "fault",
    "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
}

_LATE_ERROR = {"type": "error", "code": "server_error", "message": "late", "param": None}

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
_fault("I3-call-id-changes-at-done", {"ids.call_id"},
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
_fault("X2-strip-done-text", {"integrity.text_concat"},
       "Done text (event, part, item, terminal) is stripped and loses its last character.",
       events=_strip_done_text)
_fault("T4-cumulative-arguments", {"integrity.arguments_concat"},
       "Each function_call_arguments.delta carries the cumulative arguments so far.",
       events=_cumulative_arguments)
_fault("R1-empty-completed-output", {"integrity.terminal_output"},
       "The terminal response has output [] although items were streamed.",
       events=_on_terminal(lambda t: t["response"].update(output=[])))
_fault("Q2-wrong-last-message", {"upstream.matched", "http.status_ok"},
       "Appends ' (edited)' to the last chat message sent upstream.", request=_edit_last_message)
# fmt: on
