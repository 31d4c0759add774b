"""One pass over a Responses event stream: rebuild items, parts and texts, note every anomaly.

The state machine follows what a strict client (the SDKs' stream helpers, Codex, async-openai)
does: items are opened by ``output_item.added`` and closed by ``output_item.done``; content and
summary parts by ``*_part.added``/``*_part.done``; text and arguments arrive as deltas and are
confirmed by ``*.done``. Anomalies are recorded with a ``kind`` so each check can pick its own;
the checks in :mod:`conformance.checks` read this analysis instead of walking the events again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from conformance.exchange import Exchange
from conformance.sse import FramingIssue, SSEEvent, parse_sse

__all__ = ["Analysis", "Anomaly", "Event", "Item", "Part", "analyze", "analyze_bytes"]

TERMINAL_TYPES = frozenset({"response.completed", "response.incomplete", "response.failed"})
LIFECYCLE_TYPES = frozenset({"response.created", "response.in_progress", "response.queued"}) | TERMINAL_TYPES

# Events whose text is confirmed by a matching *.done event, keyed to the part kind they fill.
_TEXT_DELTAS = {
    "response.output_text.delta": ("content", "output_text"),
    "response.refusal.delta": ("content", "refusal"),
    "response.reasoning_text.delta": ("content", "reasoning_text"),
    "response.reasoning.delta": ("content", "reasoning_text"),  # Open Responses' name
    "response.reasoning_summary_text.delta": ("summary", "summary_text"),
}
_TEXT_DONES = {
    "response.output_text.done": ("content", "text"),
    "response.refusal.done": ("content", "refusal"),
    "response.reasoning_text.done": ("content", "text"),
    "response.reasoning.done": ("content", "text"),
    "response.reasoning_summary_text.done": ("summary", "text"),
}
_PART_EVENTS = {
    "response.content_part.added": ("content", True),
    "response.content_part.done": ("content", False),
    "response.reasoning_summary_part.added": ("summary", True),
    "response.reasoning_summary_part.done": ("summary", False),
}
# Which item types each item-scoped event may target (None: any).
_ITEM_TYPES: dict[str, frozenset[str]] = {
    "response.output_text.delta": frozenset({"message"}),
    "response.output_text.done": frozenset({"message"}),
    "response.refusal.delta": frozenset({"message"}),
    "response.refusal.done": frozenset({"message"}),
    "response.output_text.annotation.added": frozenset({"message"}),
    "response.function_call_arguments.delta": frozenset({"function_call"}),
    "response.function_call_arguments.done": frozenset({"function_call"}),
    "response.reasoning_text.delta": frozenset({"reasoning"}),
    "response.reasoning_text.done": frozenset({"reasoning"}),
    "response.reasoning.delta": frozenset({"reasoning"}),
    "response.reasoning.done": frozenset({"reasoning"}),
    "response.reasoning_summary_part.added": frozenset({"reasoning"}),
    "response.reasoning_summary_part.done": frozenset({"reasoning"}),
    "response.reasoning_summary_text.delta": frozenset({"reasoning"}),
    "response.reasoning_summary_text.done": frozenset({"reasoning"}),
    "response.content_part.added": frozenset({"message", "reasoning"}),
    "response.content_part.done": frozenset({"message", "reasoning"}),
}


@dataclass(slots=True)
class Event:
    index: int
    sse: SSEEvent
    data: dict[str, Any] | None
    type: str | None
    done_sentinel: bool = False
    json_error: str | None = None


@dataclass(slots=True)
class Anomaly:
    kind: str
    event_index: int | None
    message: str
    pointer: str | None = None
    expected: Any = None
    actual: Any = None


@dataclass(slots=True)
class Part:
    kind: str  # content | summary
    index: int
    added_at: int | None = None
    added: dict[str, Any] | None = None
    done_at: int | None = None
    done: dict[str, Any] | None = None
    done_count: int = 0
    deltas: list[str] = field(default_factory=list)
    delta_type: str | None = None
    text_done: str | None = None
    text_done_at: int | None = None


@dataclass(slots=True)
class Item:
    output_index: int
    ordinal: int = -1  # position among added items: where it belongs in the terminal output
    added_at: int | None = None
    added: dict[str, Any] | None = None
    done_at: int | None = None
    done: dict[str, Any] | None = None
    done_count: int = 0
    parts: dict[tuple[str, int], Part] = field(default_factory=dict)
    arg_deltas: list[str] = field(default_factory=list)
    args_done: str | None = None
    args_done_at: int | None = None
    args_done_count: int = 0
    closed_with_open_parts: set[tuple[str, int]] = field(default_factory=set)

    @property
    def id(self) -> str | None:
        src = self.added or self.done or {}
        value = src.get("id")
        return value if isinstance(value, str) else None

    @property
    def type(self) -> str | None:
        src = self.added or self.done or {}
        value = src.get("type")
        return value if isinstance(value, str) else None


@dataclass
class Analysis:
    sse_events: list[SSEEvent]
    framing: list[FramingIssue]
    events: list[Event]
    items: dict[int, Item]
    anomalies: list[Anomaly]
    terminal_indices: list[int]
    done_indices: list[int]

    @property
    def json_events(self) -> list[Event]:
        return [e for e in self.events if e.data is not None]

    @cached_property
    def typed_events(self) -> list[Event]:
        """The events that claim to be Responses events (a JSON object with a string ``type``), in
        order; one list shared by every check that walks them (do not modify it)."""
        return [e for e in self.events if e.type is not None]

    @cached_property
    def by_type(self) -> dict[str, list[Event]]:
        """The typed events by type, each list in stream order (do not modify them)."""
        out: dict[str, list[Event]] = {}
        for e in self.typed_events:
            same = out.get(e.type)  # type: ignore[arg-type]
            if same is None:
                out[e.type] = [e]  # type: ignore[index]
            else:
                same.append(e)
        return out

    def of_types(self, *types: str) -> list[Event]:
        """The typed events of any of ``types``, in stream order."""
        if len(types) == 1:
            return self.by_type.get(types[0], [])
        found = [e for t in dict.fromkeys(types) for e in self.by_type.get(t, ())]
        found.sort(key=_index_of)
        return found

    @cached_property
    def responses(self) -> list[tuple[Event, dict[str, Any]]]:
        """Every event whose JSON carries a ``response`` object, with that object, in order."""
        return [
            (e, r)
            for e in self.events
            if (d := e.data) is not None and isinstance(r := d.get("response"), dict)
        ]

    @cached_property
    def sequence_numbers(self) -> list[Any]:
        """The ``sequence_number`` of each of :attr:`typed_events` (None where it has none)."""
        return [e.data.get("sequence_number") for e in self.typed_events]  # type: ignore[union-attr]

    @property
    def terminal(self) -> Event | None:
        return self.events[self.terminal_indices[0]] if self.terminal_indices else None

    def of_kind(self, *kinds: str) -> list[Anomaly]:
        return [a for a in self.anomalies if a.kind in kinds]

    def terminal_position(self, item: Item) -> int | None:
        """Where ``item`` is in the terminal output: the entry with its id, else the entry at its
        position unless that entry is another streamed item (then it is missing: None).

        Matching by position alone blames the wrong item when one is missing (issue 12).
        """
        term = self.terminal
        resp = term.data.get("response") if term is not None and term.data is not None else None
        out = resp.get("output") if isinstance(resp, dict) else None
        if not isinstance(out, list):
            return None
        ids = {v.get("id") for v in (item.added, item.done) if isinstance(v, dict) and isinstance(v.get("id"), str)}
        for n, entry in enumerate(out):
            if isinstance(entry, dict) and entry.get("id") in ids:
                return n
        if 0 <= item.ordinal < len(out) and isinstance(out[item.ordinal], dict):
            other = out[item.ordinal].get("id")
            streamed = {x.id for x in self.items.values() if x is not item}
            if other is None or other not in streamed:
                return item.ordinal
        return None


def _index_of(ev: Event) -> int:
    return ev.index


_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


_BATCH = 64
"""Payloads parsed per call of the JSON scanner (see :func:`_parse_flat`)."""
_BATCH_CHARS = 64 * 1024
_RUN = 16
_SMALL = 256
_SHARED_IDS = 4096


def _parse_flat(datas: list[str], lo: int, hi: int, out: list[Any]) -> bool:
    """Parse the payloads ``datas[lo:hi]`` in one call of the JSON scanner, when that provably
    gives what parsing each alone gives: then ``out[lo:hi]`` are the objects and True; else False
    and ``out`` is left alone.

    One call shares the object keys among all the payloads (the scanner memoises keys per call):
    an event then holds its values only, not seven more strings, and the scan is faster. The run
    is joined as ``[p1\n,p2\n,…\n]`` and taken only when every payload is a flat object, checked
    on the joined text with a few ``str.count`` calls: no newline in a payload, each starts with
    ``{`` and ends with ``}`` and holds no other brace, and every ``[`` is followed by ``]``
    (``"logprobs":[]``). Then no string can run past its payload (JSON strings cannot hold a raw
    newline), each payload's first and last characters are its object's braces, and nothing in
    between opens or closes a container, so every inserted comma sits in the outer array and its
    n elements are exactly the n payloads, each a valid JSON text by itself.
    """
    k = hi - lo
    joined = "\n,".join(datas[lo:hi])
    if (
        joined.count("{") == k
        and joined.count("}") == k
        and len(joined) <= _BATCH_CHARS
        and joined[:1] == "{"
        and joined[-1:] == "}"
        and joined.count("\n") == k - 1
        and joined.count("\n,{") == k - 1
        and joined.count("}\n,") == k - 1
        and joined.count("[") == joined.count("[]") == joined.count("]")
    ):
        text = "[" + joined + "\n]"
        try:
            objs, end = _scan_once(text, 0)
        except (StopIteration, ValueError, RecursionError):
            return False
        if end == len(text) and type(objs) is list and len(objs) == k:
            out[lo:hi] = objs
            return True
    return False


def _parse_batch(datas: list[str], out: list[Any]) -> None:
    """Parse what :func:`_parse_flat` can of ``datas`` into ``out`` (None where it cannot): all
    at once, else the runs of at least ``_RUN`` payloads with one ``{`` each (a flat object, most
    likely; :func:`_parse_flat` makes sure). The rest (nested objects, braces in text, invalid
    JSON, short runs, where one scanner call per payload is cheaper than a batch) goes through
    :func:`_to_event` one by one, as before."""
    if datas[0].count("{") == 1 and datas[-1].count("{") == 1 and _parse_flat(datas, 0, len(datas), out):
        return
    start = 0
    for i, data in enumerate(datas):
        if data.count("{") != 1:
            if i - start >= _RUN:
                _parse_flat(datas, start, i, out)
            start = i + 1
    if len(datas) - start >= _RUN:
        _parse_flat(datas, start, len(datas), out)


def _to_events(sse_events: list[SSEEvent], types: dict[str, str]) -> list[Event]:
    """One :class:`Event` per SSE event, as :func:`_to_event` makes it, flat payloads in batches.

    The ``item_id`` of a flat payload is shared with the earlier events of the same item (the
    bulk of a stream is deltas of a few items): one string per item, not one per event.
    """
    if len(sse_events) < _SMALL:  # a few hundred events: batches would not pay for themselves
        return [_to_event(s, types) for s in sse_events]
    events: list[Event] = []
    append = events.append
    ids: dict[str, str] = {}
    for lo in range(0, len(sse_events), _BATCH):
        batch = sse_events[lo : lo + _BATCH]
        datas = [s.data for s in batch]
        parsed: list[Any] = [None] * len(batch)
        _parse_batch(datas, parsed)
        for sse, obj in zip(batch, parsed, strict=True):
            if obj is None:
                append(_to_event(sse, types))
                continue
            iid = obj.get("item_id")
            if type(iid) is str:
                obj["item_id"] = ids.get(iid) or (ids.setdefault(iid, iid) if len(ids) < _SHARED_IDS else iid)
            t = obj.get("type")
            if type(t) is not str:
                append(Event(sse.index, sse, obj, None))
                continue
            if len(types) < 256:
                t = obj["type"] = types.setdefault(t, t)
            append(Event(sse.index, sse, obj, t))
    return events


def _to_event(sse: SSEEvent, types: dict[str, str] | None = None) -> Event:
    data = sse.data
    if data == "[DONE]":
        return Event(sse.index, sse, None, None, done_sentinel=True)
    # The C scanner straight away when the payload is exactly one JSON value (nearly always);
    # json.loads, with its exact error message, for anything else (whitespace, junk, errors).
    try:
        obj, end = _scan_once(data, 0)
    except (StopIteration, ValueError):
        end = -1
    if end != len(data):
        try:
            obj = json.loads(data)
        except ValueError as exc:
            return Event(sse.index, sse, None, None, json_error=f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return Event(sse.index, sse, None, None, json_error=f"JSON {type(obj).__name__}, not an object")
    t = obj.get("type")
    if type(t) is not str:
        return Event(sse.index, sse, obj, None)
    if types is not None and len(types) < 256:
        # One string per event type, shared with the payload: saves a copy per event.
        t = obj["type"] = types.setdefault(t, t)
    return Event(sse.index, sse, obj, t)


class _Machine:
    def __init__(self) -> None:
        self.items: dict[int, Item] = {}
        self.by_id: dict[str, Item] = {}
        self.anomalies: list[Anomaly] = []
        self.open_items: list[Item] = []
        self.added_count = 0
        # The last target that resolved without a note, by (output_index, item_id, event type):
        # deltas come in runs for one item, and the answer stays the same while it is open.
        self._last_key: tuple[int, str | None, str] | None = None
        self._last_item: Item | None = None

    def note(self, kind: str, index: int | None, message: str, **kw: Any) -> None:
        self.anomalies.append(Anomaly(kind, index, message, **kw))

    def resolve(self, ev: Event, d: dict[str, Any], t: str) -> Item | None:
        """Find the open item an item-scoped event targets; note why if there is none."""
        oi = d.get("output_index")
        iid = d.get("item_id")
        key = (oi, iid, t) if type(oi) is int and (iid is None or type(iid) is str) else None
        if key is not None and key == self._last_key:
            last = self._last_item
            if last is not None and last.done_at is None:
                return last
        noted = len(self.anomalies)
        item: Item | None = None
        if isinstance(oi, int) and not isinstance(oi, bool):
            item = self.items.get(oi)
        elif isinstance(iid, str):
            item = self.by_id.get(iid)
        if item is None or item.added_at is None:
            self.note(
                "target_unknown",
                ev.index,
                f"`{t}` refers to output_index={oi!r} item_id={iid!r}, but no `response.output_item.added` opened that item",
                pointer="/output_index" if oi is not None else "/item_id",
                actual={"output_index": oi, "item_id": iid},
            )
            return None
        if item.done_at is not None:
            self.note(
                "target_closed",
                ev.index,
                f"`{t}` for item {item.id!r} (output_index {item.output_index}) arrives after its `response.output_item.done` (event {item.done_at})",
                pointer="/output_index",
            )
            return None
        if iid is not None and iid != item.id:
            self.note(
                "target_id_mismatch",
                ev.index,
                f"`{t}` carries item_id {iid!r} but output_index {item.output_index} is item {item.id!r}",
                pointer="/item_id",
                expected=item.id,
                actual=iid,
            )
        allowed = _ITEM_TYPES.get(t)
        if allowed is not None and item.type not in allowed:
            self.note(
                "target_type_mismatch",
                ev.index,
                f"`{t}` targets a `{item.type}` item (output_index {item.output_index}); it belongs to {sorted(allowed)}",
                pointer="/output_index",
            )
            return None
        if key is not None and len(self.anomalies) == noted:
            self._last_key, self._last_item = key, item
        return item

    def part_for(self, ev: Event, item: Item, kind: str, d: dict[str, Any], t: str) -> Part | None:
        key_name = "summary_index" if kind == "summary" else "content_index"
        asked = ci = d.get(key_name)
        if ci is None:
            # A missing index is schema.event's finding; follow the item's latest part of this kind
            # (the first when there is none yet), as lenient clients do, so one omission does not
            # cascade into every other check.
            latest = [p for (k, _), p in item.parts.items() if k == kind]
            ci = latest[-1].index if latest else 0
        part = item.parts.get((kind, ci)) if isinstance(ci, int) else None
        if part is None or part.added_at is None:
            opener = "reasoning_summary_part.added" if kind == "summary" else "content_part.added"
            self.note(
                "part_unknown",
                ev.index,
                f"`{t}` refers to {key_name}={asked!r} of item {item.id!r}, but no `response.{opener}` opened that part",
                pointer=f"/{key_name}",
                actual=asked,
            )
            if part is None and isinstance(ci, int) and not isinstance(ci, bool):
                # Follow the part anyway (as lenient clients do), so that a closing event missing
                # as well is still named: a missing opener must not mask a missing closer.
                part = item.parts[(kind, ci)] = Part(kind, ci)
            if part is None or part.done_at is not None:
                return None
            return part
        if part.done_at is not None:
            self.note(
                "part_closed",
                ev.index,
                f"`{t}` for {key_name} {ci} of item {item.id!r} arrives after the part was closed (event {part.done_at})",
                pointer=f"/{key_name}",
            )
            return None
        return part

    def feed(self, ev: Event) -> None:
        d = ev.data
        t = ev.type
        if d is None or t is None or t in LIFECYCLE_TYPES or t == "error":
            return
        spec = _TEXT_DELTAS.get(t)
        if spec is not None:
            item = self.resolve(ev, d, t)
            if item is None:
                return
            kind = spec[0]
            # The open part straight from the index; part_for for anything it must note.
            ci = d.get("summary_index" if kind == "summary" else "content_index")
            part = item.parts.get((kind, ci)) if type(ci) is int else None
            if part is None or part.added_at is None or part.done_at is not None:
                part = self.part_for(ev, item, kind, d, t)
                if part is None:
                    return
            delta = d.get("delta")
            if part.text_done_at is not None:
                # Blame the late delta, not the done text: it is left out of the concatenation.
                self.note(
                    "delta_after_done",
                    ev.index,
                    f"`{t}` ({len(delta) if isinstance(delta, str) else 0} characters) arrives after the part's text was confirmed by its `*.done` event (event {part.text_done_at})",
                    pointer="/delta",
                    actual=delta,
                )
                return
            if isinstance(delta, str):
                part.deltas.append(delta)
            part.delta_type = t
            return
        if t == "response.function_call_arguments.delta":
            item = self.resolve(ev, d, t)
            if item is None or not isinstance(d.get("delta"), str):
                return
            if item.args_done_at is not None:
                self.note(
                    "delta_after_done",
                    ev.index,
                    f"`{t}` ({len(d['delta'])} characters) for item {item.id!r} arrives after its `response.function_call_arguments.done` (event {item.args_done_at})",
                    pointer="/delta",
                    actual=d["delta"],
                )
                return
            item.arg_deltas.append(d["delta"])
            return
        if t == "response.output_item.added":
            self.item_added(ev, d)
            return
        if t == "response.output_item.done":
            self.item_done(ev, d)
            return
        if t in _PART_EVENTS:
            kind, opening = _PART_EVENTS[t]
            item = self.resolve(ev, d, t)
            if item is None:
                if not opening:
                    self.late_part_done(d, kind)
                return
            if opening:
                self.part_added(ev, item, kind, d, t)
            else:
                self.part_done(ev, item, kind, d, t)
            return
        if t in _TEXT_DONES:
            kind, field_name = _TEXT_DONES[t]
            item = self.resolve(ev, d, t)
            if item is None:
                return
            part = self.part_for(ev, item, kind, d, t)
            if part is None:
                return
            if part.text_done_at is not None:
                self.note("double_close", ev.index, f"a second `{t}` for the same part (first at event {part.text_done_at})")
                return
            value = d.get(field_name)
            part.text_done = value if isinstance(value, str) else None
            part.text_done_at = ev.index
            return
        if t == "response.function_call_arguments.done":
            item = self.resolve(ev, d, t)
            if item is None:
                return
            item.args_done_count += 1
            if item.args_done_count > 1:
                self.note("double_close", ev.index, f"a second `{t}` for item {item.id!r}")
                return
            value = d.get("arguments")
            item.args_done = value if isinstance(value, str) else None
            item.args_done_at = ev.index
            return
        if "output_index" in d or "item_id" in d:
            self.resolve(ev, d, t)

    def item_added(self, ev: Event, d: dict[str, Any]) -> None:
        oi = d.get("output_index")
        raw_item = d.get("item")
        item_obj: dict[str, Any] = raw_item if isinstance(raw_item, dict) else {}
        if not isinstance(oi, int) or isinstance(oi, bool):
            oi = self.added_count
        if oi != self.added_count:
            self.note(
                "output_index_gap",
                ev.index,
                f"`response.output_item.added` #{self.added_count} has output_index {oi}; output indices must run 0, 1, 2, … in order",
                pointer="/output_index",
                expected=self.added_count,
                actual=oi,
            )
        self.added_count += 1
        if oi in self.items:
            self.note("duplicate_output_index", ev.index, f"output_index {oi} was already used by an earlier item", pointer="/output_index")
            return
        for other in self.open_items:
            self.note(
                "interleaved",
                ev.index,
                f"item {item_obj.get('id')!r} (output_index {oi}) is opened while item {other.id!r} (output_index {other.output_index}) is still open",
                pointer="/output_index",
            )
        item = Item(oi, self.added_count - 1, added_at=ev.index, added=item_obj)
        self.items[oi] = item
        if item.id:
            self.by_id[item.id] = item
        self.open_items.append(item)

    def item_done(self, ev: Event, d: dict[str, Any]) -> None:
        oi = d.get("output_index")
        raw_item = d.get("item")
        item_obj: dict[str, Any] = raw_item if isinstance(raw_item, dict) else {}
        item = self.items.get(oi) if isinstance(oi, int) else None
        if item is None and isinstance(item_obj.get("id"), str):
            item = self.by_id.get(item_obj["id"])
        if item is None or item.added_at is None:
            self.note(
                "done_without_added",
                ev.index,
                f"`response.output_item.done` for output_index {oi!r} (item {item_obj.get('id')!r}) without a prior `response.output_item.added`",
                pointer="/output_index",
            )
            if isinstance(oi, int) and oi not in self.items:
                self.items[oi] = Item(oi, len(self.items), done_at=ev.index, done=item_obj, done_count=1)
            return
        item.done_count += 1
        if item.done_count > 1:
            self.note("double_close", ev.index, f"a second `response.output_item.done` for item {item.id!r} (first at event {item.done_at})")
            return
        item.done_at = ev.index
        item.done = item_obj
        if item in self.open_items:
            self.open_items.remove(item)
        for key, part in item.parts.items():
            if part.done_at is None:
                item.closed_with_open_parts.add(key)
                self.note(
                    "close_order",
                    ev.index,
                    f"item {item.id!r} is closed while its {key[0]} part {key[1]} is still open (no `*_part.done` before `output_item.done`)",
                )
        if item.type == "function_call" and item.args_done_at is None:
            self.note(
                "close_order",
                ev.index,
                f"function_call item {item.id!r} is closed without a `response.function_call_arguments.done` before it",
            )

    def part_added(self, ev: Event, item: Item, kind: str, d: dict[str, Any], t: str) -> None:
        key_name = "summary_index" if kind == "summary" else "content_index"
        ci = d.get(key_name)
        count = sum(1 for k, p in item.parts.items() if k[0] == kind and p.added_at is not None)
        if not isinstance(ci, int) or isinstance(ci, bool):
            ci = count
        if ci != count:
            self.note(
                "content_index_gap",
                ev.index,
                f"`{t}` #{count} of item {item.id!r} has {key_name} {ci}; parts must be numbered 0, 1, 2, … in order",
                pointer=f"/{key_name}",
                expected=count,
                actual=ci,
            )
        part_obj = d.get("part") if isinstance(d.get("part"), dict) else None
        known = item.parts.get((kind, ci))
        if known is not None and known.added_at is None and known.done_at is None:
            known.added_at, known.added = ev.index, part_obj  # opened late: part_unknown said so
            return
        if known is not None:
            self.note("double_open", ev.index, f"`{t}` opens {key_name} {ci} of item {item.id!r} a second time")
            return
        item.parts[(kind, ci)] = Part(kind, ci, added_at=ev.index, added=part_obj)

    def part_done(self, ev: Event, item: Item, kind: str, d: dict[str, Any], t: str) -> None:
        part = self.part_for(ev, item, kind, d, t)
        if part is None:
            return
        part.done_count += 1
        part.done_at = ev.index
        part.done = d.get("part") if isinstance(d.get("part"), dict) else None
        ptype = (part.added or part.done or {}).get("type")
        if part.text_done_at is None and (part.deltas or ptype in ("output_text", "refusal", "reasoning_text", "summary_text")):
            self.note(
                "close_order",
                ev.index,
                f"`{t}` closes a `{ptype}` part of item {item.id!r} before its text `*.done` event",
            )

    def late_part_done(self, d: dict[str, Any], kind: str) -> None:
        """A part.done for an item already closed with that part open was reported once already."""
        oi = d.get("output_index")
        item = self.items.get(oi) if isinstance(oi, int) else None
        index = d.get("summary_index" if kind == "summary" else "content_index")
        if not isinstance(index, int):
            return
        key = (kind, index)
        if item is not None and key in item.closed_with_open_parts and self.anomalies:
            last = self.anomalies[-1]
            if last.kind == "target_closed":
                self.anomalies.pop()

    def finish(self, terminal_seen: bool, end_index: int | None) -> None:
        if not terminal_seen:
            return
        for item in self.items.values():
            if item.added_at is not None and item.done_at is None:
                self.note(
                    "never_closed",
                    end_index,
                    f"item {item.id!r} (output_index {item.output_index}) was opened at event {item.added_at} and never closed by `response.output_item.done` before the terminal event",
                )


def analyze_events(sse_events: list[SSEEvent], framing: list[FramingIssue]) -> Analysis:
    types: dict[str, str] = {}
    events = _to_events(sse_events, types)
    machine = _Machine()
    terminal_indices: list[int] = []
    done_indices: list[int] = []
    first_terminal: int | None = None
    for ev in events:
        if ev.done_sentinel:
            done_indices.append(ev.index)
            continue
        if ev.type in TERMINAL_TYPES:
            terminal_indices.append(ev.index)
            if first_terminal is None:
                first_terminal = ev.index
                machine.finish(True, ev.index)
            continue
        if first_terminal is None:
            machine.feed(ev)
    return Analysis(sse_events, framing, events, machine.items, machine.anomalies, terminal_indices, done_indices)


def analyze_bytes(chunks: list[bytes]) -> Analysis:
    sse_events, parser = parse_sse(chunks)
    return analyze_events(sse_events, parser.issues)


def analyze(exchange: Exchange) -> Analysis:
    return analyze_bytes([c.data for c in exchange.chunks])
