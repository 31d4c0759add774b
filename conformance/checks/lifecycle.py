"""Lifecycle, sequence-number and id checks over the whole stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from conformance.checks._registry import Context, Issue, check
from conformance.stream import TERMINAL_TYPES, Event

_STATUS_FOR = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}


def _json_events(ctx: Context) -> list[Event]:
    """Events that claim to be Responses events (JSON with a string ``type``); junk is sse.data_json's."""
    return [e for e in ctx.analysis.events if e.type is not None]


def _response(ev: Event) -> dict[str, Any] | None:
    resp = ev.data.get("response") if ev.data else None
    return resp if isinstance(resp, dict) else None


@check("seq.present", classes=("I1",))
def seq_present(ctx: Context) -> Iterator[Issue]:
    """Every event carries an integer ``sequence_number``.

    Required by the SDK types; strict decoders (async-openai, Grok CLI, @effect/ai before its
    fix) abort the whole turn with ``missing field `sequence_number```. Synthesised
    ``response.failed`` and ``error`` events are where it goes missing most often.
    """
    for ev in _json_events(ctx):
        value = ev.data.get("sequence_number") if ev.data else None
        if not isinstance(value, int) or isinstance(value, bool):
            yield Issue(
                f"`{ev.type}` has no integer sequence_number",
                ev.index,
                pointer="/sequence_number",
                actual=value,
            )


@check("seq.monotonic", classes=("I1",))
def seq_monotonic(ctx: Context) -> Iterator[Issue]:
    """Sequence numbers start at 0 and go up by exactly 1 per event.

    Clients resuming with ``starting_after`` and strict parsers rely on one counter shared by all
    events; gaps, repeats and restarts (separate counters, ``omitempty`` dropping 0) break them.
    """
    expected = 0
    for ev in _json_events(ctx):
        value = ev.data.get("sequence_number") if ev.data else None
        if not isinstance(value, int) or isinstance(value, bool):
            expected += 1
            continue
        if value != expected:
            yield Issue(
                f"sequence_number {value} where {expected} was expected",
                ev.index,
                pointer="/sequence_number",
                expected=expected,
                actual=value,
            )
        expected = value + 1


@check(
    "lifecycle.created_first", classes=("S2", "R3"),
    moots=(
        "lifecycle.in_progress_second", "lifecycle.initial_status",
    ),
)
def created_first(ctx: Context) -> Iterator[Issue]:
    """The first event is ``response.created``.

    openai-python's and openai-node's ``responses.stream()`` raise when anything comes before
    it, and clients take the response id and model from it.
    """
    events = _json_events(ctx)
    if not events:
        yield Issue("the stream has no JSON events at all")
    elif events[0].type != "response.created":
        yield Issue(f"the first event is {events[0].type!r}", events[0].index, expected="response.created", actual=events[0].type)


@check("lifecycle.in_progress_second", classes=("R3",), profiles={"lenient": "info"})
def in_progress_second(ctx: Context) -> Iterator[Issue]:
    """The second event is ``response.in_progress`` (as OpenAI sends it).

    OpenAI always sends ``response.created`` then ``response.in_progress``; clients that show a
    progress state or log the lifecycle expect both.
    """
    events = _json_events(ctx)
    if len(events) >= 2 and events[0].type == "response.created" and events[1].type != "response.in_progress":
        yield Issue(f"the second event is {events[1].type!r}", events[1].index, expected="response.in_progress", actual=events[1].type)
    elif events and events[0].type != "response.created" and not any(e.type == "response.in_progress" for e in events[:2]):
        yield Issue("no `response.in_progress` at the start of the stream", events[0].index)


@check("lifecycle.initial_status", classes=("R3",))
def initial_status(ctx: Context) -> Iterator[Issue]:
    """``response.created`` and ``response.in_progress`` carry a response with status ``in_progress``.

    A ``created`` event already saying ``completed`` (seen in several bridges) makes clients
    finish before any output arrives.
    """
    for ev in _json_events(ctx):
        if ev.type in ("response.created", "response.in_progress"):
            resp = _response(ev)
            status = resp.get("status") if resp else None
            if status != "in_progress":
                yield Issue(f"`{ev.type}` has response.status {status!r}", ev.index, pointer="/response/status", expected="in_progress", actual=status)


# no terminal event: no terminal output, status or usage to judge
@check(
    "lifecycle.terminal_present", classes=("S1",),
    moots=(
        "lifecycle.terminal_status", "integrity.terminal_output", "oracle.status", "oracle.usage",
        "nonstream.matches_stream", "sse.done_after_terminal", "items.closed_once",
    ),
)
def terminal_present(ctx: Context) -> Iterator[Issue]:
    """The stream has a terminal event: ``response.completed``, ``response.incomplete`` or ``response.failed``.

    The most reported failure of all: Codex says ``stream closed before response.completed`` and
    retries (re-billing); SDK helpers raise or present truncated text as final.
    """
    a = ctx.analysis
    if not a.terminal_indices:
        last = a.events[-1].index if a.events else None
        yield Issue("the stream ended without response.completed, response.incomplete or response.failed", last)


@check("lifecycle.single_terminal_last", classes=("S1", "S6"))
def single_terminal_last(ctx: Context) -> Iterator[Issue]:
    """Exactly one terminal event, and it is the last event (an optional ``[DONE]`` may follow).

    Codex stops reading at ``response.completed``; an ``error`` or second terminal after it is
    either lost or, in some Codex versions, triggers a retry of a fully delivered answer.
    """
    a = ctx.analysis
    if not a.terminal_indices:
        return
    first = a.terminal_indices[0]
    for index in a.terminal_indices[1:]:
        yield Issue(f"a second terminal event `{a.events[index].type}` (the first was event {first})", index)
    for ev in a.events[first + 1 :]:
        if ev.data is not None and ev.type not in TERMINAL_TYPES:
            yield Issue(f"`{ev.type}` after the terminal event", ev.index)


@check("lifecycle.terminal_status", classes=("F1", "S1"))
def terminal_status(ctx: Context) -> Iterator[Issue]:
    """The terminal event's response.status matches its type (completed/incomplete/failed).

    Clients branch on either the event type or the status; when they disagree one of them shows
    an error for a good answer or a good answer for an error.
    """
    a = ctx.analysis
    for index in a.terminal_indices:
        ev = a.events[index]
        resp = _response(ev)
        status = resp.get("status") if resp else None
        want = _STATUS_FOR[ev.type or ""]
        if status != want:
            yield Issue(f"`{ev.type}` carries response.status {status!r}", index, pointer="/response/status", expected=want, actual=status)


@check("ids.response_id_stable", classes=("R3",))
def response_id_stable(ctx: Context) -> Iterator[Issue]:
    """The response id is the same in every lifecycle event.

    openai-python's stream helper raises ``Lifecycle response identity changed``; clients that
    store the id for ``previous_response_id`` pick the wrong one.
    """
    first: str | None = None
    for ev in _json_events(ctx):
        resp = _response(ev)
        if resp is None:
            continue
        rid = resp.get("id")
        if first is None:
            first = rid if isinstance(rid, str) else None
            continue
        if rid != first:
            yield Issue(f"`{ev.type}` has response.id {rid!r}", ev.index, pointer="/response/id", expected=first, actual=rid)


def _terminal_output(ctx: Context) -> list[Any] | None:
    term = ctx.analysis.terminal
    resp = _response(term) if term else None
    out = resp.get("output") if resp else None
    return out if isinstance(out, list) else None


@check("ids.item_id_stable", classes=("I2",))
def item_id_stable(ctx: Context) -> Iterator[Issue]:
    """An item's id is the same in ``output_item.added``, ``output_item.done`` and the terminal output.

    Clients key items by id; an id that changes at ``done`` leaves a dangling item (AI SDK UI
    streams) or a duplicate.
    """
    terminal_out = _terminal_output(ctx)
    for item in ctx.analysis.items.values():
        if item.added is None or item.done is None:
            continue
        added_id, done_id = item.added.get("id"), item.done.get("id")
        if added_id != done_id:
            yield Issue(
                f"output_index {item.output_index}: item id {added_id!r} at added but {done_id!r} at done",
                item.done_at,
                pointer="/item/id",
                expected=added_id,
                actual=done_id,
            )
        elif terminal_out is not None and 0 <= item.ordinal < len(terminal_out):
            final = terminal_out[item.ordinal]
            final_id = final.get("id") if isinstance(final, dict) else None
            if final_id != added_id:
                term = ctx.analysis.terminal
                yield Issue(
                    f"output_index {item.output_index}: item id {added_id!r} in the stream but {final_id!r} in the terminal output",
                    term.index if term else None,
                    pointer=f"/response/output/{item.ordinal}/id",
                    expected=added_id,
                    actual=final_id,
                )


@check("ids.call_id", classes=("I3",))
def call_id(ctx: Context) -> Iterator[Issue]:
    """A function call's ``call_id`` is non-empty, differs from its item ``id``, and never changes.

    ``call_id`` links the tool result to the call: if it changes between added, done and the
    terminal output, openai-python raises and other clients attach results to nothing; if it
    equals the item id (``fc_…``), replaying history to OpenAI fails (``Expected an ID that
    begins with 'fc'``) and the next turn's ``function_call_output`` cannot be matched.
    """
    terminal_out = _terminal_output(ctx)
    for item in ctx.analysis.items.values():
        if item.type != "function_call":
            continue
        added = item.added or item.done or {}
        first = added.get("call_id")
        if not isinstance(first, str) or not first:
            yield Issue(f"function_call item {item.id!r} has call_id {first!r}", item.added_at, pointer="/item/call_id", actual=first)
            continue
        if first == item.id:
            yield Issue(f"function_call item id and call_id are both {first!r}", item.added_at, pointer="/item/call_id", actual=first)
        copies: list[tuple[int | None, str, Any]] = []
        if item.done is not None:
            copies.append((item.done_at, "/item/call_id", item.done.get("call_id")))
        if terminal_out is not None and 0 <= item.ordinal < len(terminal_out) and isinstance(terminal_out[item.ordinal], dict):
            term = ctx.analysis.terminal
            copies.append((term.index if term else None, f"/response/output/{item.ordinal}/call_id", terminal_out[item.ordinal].get("call_id")))
        for index, pointer, value in copies:
            if value != first:
                yield Issue(f"call_id {first!r} at added became {value!r}", index, pointer=pointer, expected=first, actual=value)
