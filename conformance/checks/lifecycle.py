"""Lifecycle, sequence-number and id checks over the whole stream."""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Iterator
from typing import Any

from conformance.checks._registry import Context, Issue, check
from conformance.stream import TERMINAL_TYPES, Event

_INT = frozenset({int})
_STATUS_FOR = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}


def _json_events(ctx: Context) -> list[Event]:
    """Events that claim to be Responses events (JSON with a string ``type``); junk is sse.data_json's."""
    return ctx.analysis.typed_events


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
    a = ctx.analysis
    if set(map(type, a.sequence_numbers)) <= _INT:
        return  # every one an integer (the usual case, in one pass at C speed)
    for ev, value in zip(a.typed_events, a.sequence_numbers, strict=True):
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
    a = ctx.analysis
    values = a.sequence_numbers
    if set(map(type, values)) <= _INT and all(map(operator.eq, values, itertools.count())):
        return  # 0, 1, 2, … (the usual case)
    expected = 0
    for ev, value in zip(a.typed_events, values, strict=True):
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
    """The second event is ``response.in_progress`` (as OpenAI sends it), and it comes once.

    OpenAI always sends ``response.created`` then ``response.in_progress``; clients that show a
    progress state or log the lifecycle expect both.
    """
    events = _json_events(ctx)
    if len(events) >= 2 and events[0].type == "response.created" and events[1].type != "response.in_progress":
        yield Issue(f"the second event is {events[1].type!r}", events[1].index, expected="response.in_progress", actual=events[1].type)
    elif events and events[0].type != "response.created" and not any(e.type == "response.in_progress" for e in events[:2]):
        yield Issue("no `response.in_progress` at the start of the stream", events[0].index)
    seen = ctx.analysis.of_types("response.in_progress")
    for ev in seen[1:]:
        # clients that show a progress state restart it; the SDK helpers rebuild the snapshot
        yield Issue(f"a second `response.in_progress` mid-stream (the first was event {seen[0].index})", ev.index, actual=ev.type)


@check("lifecycle.initial_status", classes=("R3",))
def initial_status(ctx: Context) -> Iterator[Issue]:
    """``response.created`` and ``response.in_progress`` carry a response with status ``in_progress``.

    A ``created`` event already saying ``completed`` (seen in several bridges) makes clients
    finish before any output arrives.
    """
    for ev in ctx.analysis.of_types("response.created", "response.in_progress"):
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
    for ev, resp in ctx.analysis.responses:
        if ev.type is None:
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
        elif terminal_out is not None and (at := ctx.analysis.terminal_position(item)) is not None:
            # matched by id first: a missing item is integrity.terminal_output's, not this item's
            final = terminal_out[at]
            final_id = final.get("id") if isinstance(final, dict) else None
            if final_id != added_id:
                term = ctx.analysis.terminal
                yield Issue(
                    f"output_index {item.output_index}: item id {added_id!r} in the stream but {final_id!r} in the terminal output",
                    term.index if term else None,
                    pointer=f"/response/output/{at}/id",
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
        at = ctx.analysis.terminal_position(item)
        if terminal_out is not None and at is not None:
            term = ctx.analysis.terminal
            copies.append((term.index if term else None, f"/response/output/{at}/call_id", terminal_out[at].get("call_id")))
        for index, pointer, value in copies:
            if value != first:
                yield Issue(f"call_id {first!r} at added became {value!r}", index, pointer=pointer, expected=first, actual=value)


_ECHO_TYPES = frozenset({"response.created", "response.in_progress", *TERMINAL_TYPES})
_ECHOED = ("model", "parallel_tool_calls", "previous_response_id", "tools", "tool_choice", "instructions", "max_output_tokens", "text")


def _function_names(tools: Any) -> set[str] | None:
    if not isinstance(tools, list):
        return None
    return {str(t.get("name") or (t.get("function") or {}).get("name")) for t in tools if isinstance(t, dict) and t.get("type") == "function"}


def _echo_contradicts(key: str, asked: Any, echoed: Any) -> bool:
    """The echoed value says something else than the request (absent or null is schema's business)."""
    if echoed is None:
        return False
    if key == "previous_response_id":
        return bool(echoed != asked)
    if asked is None:
        return key == "text" and isinstance(echoed, dict) and isinstance(echoed.get("format"), dict) and bool(echoed["format"].get("type") not in (None, "text"))
    if key in ("parallel_tool_calls", "max_output_tokens", "instructions"):
        return bool(type(asked) is type(echoed) and asked != echoed)
    if key == "tool_choice":
        if isinstance(asked, str):
            return isinstance(echoed, str) and bool(echoed != asked)
        if isinstance(asked, dict) and isinstance(echoed, dict):
            return bool(asked.get("name") != (echoed.get("name") or (echoed.get("function") or {}).get("name")))
        return False
    if key == "tools":
        want, got = _function_names(asked), _function_names(echoed)
        return bool(got and want is not None and got != want)
    if key == "text":
        fa = asked.get("format") if isinstance(asked, dict) else None
        fe = echoed.get("format") if isinstance(echoed, dict) else None
        return isinstance(fa, dict) and isinstance(fe, dict) and bool(fa.get("type") != fe.get("type"))
    return False


@check("lifecycle.echo_consistent", severity="warning", classes=("R3", "Q4", "Q7"), needs_stream=False)
def echo_consistent(ctx: Context) -> Iterator[Issue]:
    """The response echoes the request, and says the same in ``created``/``in_progress`` as at the end: ``model``, ``parallel_tool_calls``, ``previous_response_id``, ``tools``, ``tool_choice``, ``instructions``, ``max_output_tokens``, ``text.format``.

    Clients take settings from whichever object they read first: ``parallel_tool_calls`` true in
    ``created`` and false at the end, or a ``previous_response_id`` echoed as the upstream's
    ``chatcmpl-…`` id (which the client then sends back), make them act on the wrong value.
    A field left out or null is the schema checks' business, not a contradiction.
    """
    ex = ctx.exchange
    objects: list[tuple[int | None, str, dict[str, Any]]] = []
    if ex.mode == "nonstream":
        body, _ = ctx.final
        if body is not None:
            objects.append((None, "the body", body))
    elif ctx.ok_stream:
        for ev, resp in ctx.analysis.responses:
            if ev.type in _ECHO_TYPES:
                objects.append((ev.index, f"`{ev.type}`", resp))
    if not objects:
        return
    request = ex.request
    blamed: set[str] = set()
    for index, where, resp in objects:
        for key in _ECHOED:
            if key in blamed or key == "model" or key not in resp:
                continue
            if _echo_contradicts(key, request.get(key), resp[key]):
                blamed.add(key)
                yield Issue(f"{where} echoes {key} {_short(resp[key])}; the request said {_short(request.get(key))}", index, pointer=f"{'/response' if index is not None else ''}/{key}", expected=request.get(key), actual=resp[key])
    first_index, first_where, first = objects[0]
    for index, where, resp in objects[1:]:
        for key in _ECHOED:
            if key in blamed or key not in first or key not in resp:
                continue
            if first[key] != resp[key]:
                blamed.add(key)
                yield Issue(f"{where} says {key} {_short(resp[key])}; {first_where} (event {first_index}) said {_short(first[key])}", index, pointer=f"/response/{key}", expected=first[key], actual=resp[key])


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:80] + "…"


_ID_PREFIX = {"response": "resp_", "message": "msg_", "function_call": "fc_"}


@check("ids.prefixes", severity="info", classes=("I2", "I3"), needs_stream=False)
def prefixes(ctx: Context) -> Iterator[Issue]:
    """Ids carry OpenAI's prefixes: ``resp_`` for the response, ``msg_`` for messages, ``fc_`` for function calls.

    Nothing in the SDK types requires them, but a client that replays items to OpenAI is
    refused (``Expected an ID that begins with 'fc'``), and a client that tells items apart by
    prefix misfiles them: a note under ``openai``, an error under ``strict``.
    """
    ex = ctx.exchange
    objects: list[tuple[int | None, str, dict[str, Any]]] = []
    if ex.mode == "nonstream":
        body, _ = ctx.final
        if body is not None:
            objects.append((None, "", body))
            objects += [(None, f"/output/{n}", it) for n, it in enumerate(body.get("output") or []) if isinstance(it, dict)]
    elif ctx.ok_stream:
        # In stream order, an event's response before its item.
        found: list[tuple[int, int, str, dict[str, Any]]] = [
            (ev.index, 0, "/response", dict(resp, type="response"))
            for ev, resp in ctx.analysis.responses
            if ev.type is not None
        ]
        for ev in ctx.analysis.of_types("response.output_item.added"):
            item = ev.data.get("item") if ev.data else None
            if isinstance(item, dict):
                found.append((ev.index, 1, "/item", item))
        found.sort(key=lambda entry: entry[:2])
        objects += [(index, pointer, obj) for index, _, pointer, obj in found]
    seen: set[tuple[str, str]] = set()
    for index, pointer, obj in objects:
        kind = "response" if pointer == "" else str(obj.get("type"))
        prefix = _ID_PREFIX.get(kind)
        value = obj.get("id")
        if prefix is None or not isinstance(value, str) or value.startswith(prefix) or (kind, value) in seen:
            continue
        if kind == "function_call" and value == obj.get("call_id"):
            continue  # the call id used as item id: ids.call_id's finding
        seen.add((kind, value))
        yield Issue(f"{kind} id {value!r} does not start with {prefix!r}", index, pointer=f"{pointer}/id", expected=f"{prefix}…", actual=value)
