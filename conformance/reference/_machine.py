"""Chat Completions chunks -> Responses stream events: one small state machine.

The machine is fed parsed upstream ``data:`` payloads and returns Responses events (plain dicts
without ``sequence_number``; the wire writer numbers them after faults have run). It is written
against the quirk matrix in ``upstream-shapes.md`` §9: choice-less and delta-less chunks, ``""``
and ``null`` deltas, usage anywhere (latest wins), duplicated finish chunks, tool calls that
arrive whole, split, nameless, index-less or with empty continuations, reasoning under either
key, mid-stream errors in three shapes, and streams that end without ``[DONE]``.

Items are strictly sequential (S4): the open item is closed before the next opens. Tool calls
are buffered until the next non-tool output or the end of the stream, because their id and name
may arrive after their arguments (T2); each is then emitted whole.

Upstream reasoning (RS1) becomes a ``reasoning`` item before the message. By default its text is
streamed as a reasoning summary (``response.reasoning_summary_*``): the one dialect that the
OpenAI SDKs, the Open Responses spec and Codex all read. ``reasoning_events="text"`` streams it as
``reasoning_text`` content (OpenAI's raw-reasoning events, vLLM's choice) and ``"dot"`` as Open
Responses' ``response.reasoning.*``; the fault zoo uses both to prove the dialect checks.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Machine", "is_terminal", "map_usage", "new_id", "response_base"]

Event = dict[str, Any]

_COMPLETED = {"stop", "tool_calls", "function_call", "eos", "end_turn", "stop_sequence"}
_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def _copy(value: Any) -> Any:
    """A copy of JSON data (dicts, lists, scalars): ``copy.deepcopy`` at a fraction of its cost."""
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def response_base(body: dict[str, Any], response_id: str) -> dict[str, Any]:
    """The full Response object (R3): every SDK-required field plus the echo fields (Q4)."""
    text = _obj(body.get("text"))
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": body.get("model"),
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": body.get("reasoning"),
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, **text},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def map_usage(u: dict[str, Any]) -> dict[str, Any]:
    """Chat usage -> Responses usage (U1), defaulting every detail to 0 (quirks 8-10)."""
    prompt, completion = _int(u.get("prompt_tokens")), _int(u.get("completion_tokens"))
    total = u.get("total_tokens")
    pd, cd = _obj(u.get("prompt_tokens_details")), _obj(u.get("completion_tokens_details"))
    cached = pd.get("cached_tokens")
    if cached is None:
        cached = u.get("prompt_cache_hit_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": _int(cached),
            "cache_write_tokens": _int(pd.get("cache_write_tokens")),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": _int(cd.get("reasoning_tokens"))},
        "total_tokens": _int(total) if isinstance(total, (int, float)) else prompt + completion,
    }


@dataclass
class _Item:
    """The one open reasoning or message item, and its current content part."""

    kind: str
    id: str
    index: int
    parts: list[dict[str, Any]] = field(default_factory=list)
    part_kind: str | None = None
    text: str = ""


@dataclass
class _Call:
    """A buffered upstream tool call, assembled from its fragments."""

    id: str = ""
    name: str = ""
    fragments: list[str] = field(default_factory=list)


_PART: dict[str, dict[str, Any]] = {
    "output_text": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
    "refusal": {"type": "refusal", "refusal": ""},
    "reasoning_text": {"type": "reasoning_text", "text": ""},
    "summary_text": {"type": "summary_text", "text": ""},
}
_DELTA = {
    "output_text": "response.output_text.delta",
    "refusal": "response.refusal.delta",
    "reasoning_text": "response.reasoning_text.delta",
    "summary_text": "response.reasoning_summary_text.delta",
}
_DONE = {
    "output_text": ("response.output_text.done", "text"),
    "refusal": ("response.refusal.done", "refusal"),
    "reasoning_text": ("response.reasoning_text.done", "text"),
    "summary_text": ("response.reasoning_summary_text.done", "text"),
}
REASONING_EVENTS = ("summary", "text", "dot")


class Machine:
    """Translate one upstream chat stream into one Responses event stream."""

    def __init__(self, base: dict[str, Any], *, reasoning_events: str = "summary", merge_reused_index: bool = False) -> None:
        if reasoning_events not in REASONING_EVENTS:
            raise ValueError(f"reasoning_events must be one of {REASONING_EVENTS}")
        self.base = base
        self.reasoning_events = reasoning_events
        # The fault zoo's T2 bug: fragments keyed by index alone, so a reused index merges two calls.
        self.merge_reused_index = merge_reused_index
        self._index_key: dict[int, tuple[str, Any]] = {}
        self.output: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.terminal: Event | None = None
        self._item: _Item | None = None
        self._calls: dict[tuple[str, Any], _Call] = {}
        self._out: list[Event] = []

    # -- public ----------------------------------------------------------------------------------
    def start(self) -> list[Event]:
        self._emit("response.created", response=self._response())
        self._emit("response.in_progress", response=self._response())
        return self._take()

    def feed(self, data: str) -> list[Event]:
        """One upstream ``data:`` payload (not ``[DONE]``)."""
        if self.terminal is not None:
            return []
        try:
            chunk = json.loads(data)
        except ValueError:
            return self.fail(f"upstream sent a data line that is not JSON: {data[:200]!r}")
        if not isinstance(chunk, dict):
            return []
        error = chunk.get("error")
        if error or chunk.get("object") == "error":
            return self.fail(_error_message(error if error else chunk))
        if isinstance(chunk.get("usage"), dict):
            self.usage = map_usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) in (0, None):
                self._choice(choice)
        return self._take()

    def end(self) -> list[Event]:
        """``[DONE]`` or EOF: now (never at ``finish_reason``) emit the terminal event (U1)."""
        if self.terminal is not None:
            return []
        reason = self.finish_reason
        if reason is None:
            return self.fail("upstream stream ended without a finish_reason")
        if reason == "error" or "malformed" in reason.lower():
            return self.fail(f"upstream finished with finish_reason {reason!r}")
        incomplete = {"length": "max_output_tokens", "max_tokens": "max_output_tokens"}.get(reason)
        if reason == "content_filter":
            incomplete = "content_filter"
        status = "incomplete" if incomplete else "completed"
        self._close_item(status)
        self._flush_calls(status)
        details = {"reason": incomplete} if incomplete else None
        extra = {"completed_at": int(time.time())} if status == "completed" else {}
        response = self._response(status=status, incomplete_details=details, **extra)
        self._terminal(f"response.{status}", response)
        return self._take()

    def fail(self, message: str) -> list[Event]:
        """Mid-stream failure (S6): close what is open, drop unfinished calls, ``response.failed``."""
        if self.terminal is not None:
            return []
        self._close_item("incomplete")
        self._calls.clear()
        error = {"code": "server_error", "message": message}
        self._terminal("response.failed", self._response(status="failed", error=error))
        return self._take()

    # -- chunk handling ----------------------------------------------------------------------------
    def _choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning_content") or delta.get("reasoning") or delta.get("thinking")
            if isinstance(reasoning, str) and reasoning:
                self._text("summary_text" if self.reasoning_events == "summary" else "reasoning_text", reasoning)
            for kind, key in (("output_text", "content"), ("refusal", "refusal")):
                value = delta.get(key)
                if isinstance(value, str) and value:
                    self._text(kind, value)
            for fragment in delta.get("tool_calls") or []:
                if isinstance(fragment, dict):
                    self._tool_fragment(fragment)
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.finish_reason = reason

    def _text(self, kind: str, delta: str) -> None:
        self._flush_calls("completed")
        item_kind = "reasoning" if kind in ("reasoning_text", "summary_text") else "message"
        if self._item is not None and self._item.kind != item_kind:
            self._close_item("completed")
        item = self._item or self._open_item(item_kind)
        if item.part_kind != kind:
            self._close_part()
            item.part_kind, item.text = kind, ""
            opener = "response.reasoning_summary_part.added" if kind == "summary_text" else "response.content_part.added"
            self._emit(opener, **self._where(item), **self._index(item), part=_copy(_PART[kind]))
        item.text += delta
        extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
        self._emit(self._delta_type(kind), **self._where(item), **self._index(item), delta=delta, **extra)

    def _delta_type(self, kind: str) -> str:
        if kind == "reasoning_text" and self.reasoning_events == "dot":
            return "response.reasoning.delta"
        return _DELTA[kind]

    @staticmethod
    def _index(item: _Item) -> dict[str, int]:
        key = "summary_index" if item.part_kind == "summary_text" else "content_index"
        return {key: len(item.parts)}

    def _tool_fragment(self, frag: dict[str, Any]) -> None:
        fn = _obj(frag.get("function"))
        call_id = frag.get("id") if isinstance(frag.get("id"), str) else ""
        name = fn.get("name") if isinstance(fn.get("name"), str) else ""
        args = fn.get("arguments")
        if isinstance(args, dict):
            args = json.dumps(args)
        args = args if isinstance(args, str) else ""
        index = frag.get("index")
        key: tuple[str, Any]
        if isinstance(index, int) and not isinstance(index, bool):
            key = self._index_key.get(index, ("index", (0, index)))
            known = self._calls.get(key)
            if known is not None and known.id and call_id and call_id != known.id and not self.merge_reused_index:
                key = ("index", (key[1][0] + 1, index))  # a new id on a used index: a new call (T2)
            self._index_key[index] = key
        elif call_id:
            key = next((k for k, c in self._calls.items() if c.id == call_id), ("id", call_id))
        elif self._calls:
            key = next(reversed(self._calls))
        else:
            key = self._index_key.get(0, ("index", (0, 0)))
        call = self._calls.get(key)
        if call is None and not (call_id or name or args):
            return  # an empty continuation of a call already emitted (quirk 15)
        self._close_item("completed")
        if call is None:
            call = self._calls[key] = _Call()
        if call_id and not call.id:
            call.id = call_id
        if name and name != call.name:
            call.name += name  # a name split across fragments; a repeated full name is skipped
        if args:
            call.fragments.append(args)

    # -- items ---------------------------------------------------------------------------------------
    def _open_item(self, kind: str) -> _Item:
        prefix = "rs" if kind == "reasoning" else "msg"
        item = self._item = _Item(kind, new_id(prefix), len(self.output))
        self._emit(
            "response.output_item.added",
            output_index=item.index,
            item=self._item_json(item, "in_progress"),
        )
        return item

    def _close_part(self) -> None:
        item = self._item
        if item is None or item.part_kind is None:
            return
        kind, where, index = item.part_kind, self._where(item), self._index(item)
        done_type, field_name = _DONE[kind]
        if kind == "reasoning_text" and self.reasoning_events == "dot":
            done_type = "response.reasoning.done"
        extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
        self._emit(done_type, **where, **index, **{field_name: item.text}, **extra)
        part = _copy(_PART[kind])
        part[field_name] = item.text
        closer = "response.reasoning_summary_part.done" if kind == "summary_text" else "response.content_part.done"
        self._emit(closer, **where, **index, part=_copy(part))
        item.parts.append(part)
        item.part_kind, item.text = None, ""

    def _close_item(self, status: str) -> None:
        item = self._item
        if item is None:
            return
        self._close_part()
        done = self._item_json(item, status)
        self._emit("response.output_item.done", output_index=item.index, item=done)
        self.output.append(_copy(done))
        self._item = None

    def _flush_calls(self, status: str) -> None:
        # In upstream index order (reuse generation, index), as the oracle orders them: a call whose
        # first fragment carried nothing comes into being late but keeps its place.
        ordered = sorted(self._calls.items(), key=lambda kv: _call_position(kv[0]))
        calls, self._calls = [c for _, c in ordered], {}
        self._index_key = {}
        for call in calls:
            index, item_id = len(self.output), new_id("fc")
            arguments = "".join(call.fragments) or "{}"
            fragments = call.fragments or ["{}"]
            item = {
                "type": "function_call",
                "id": item_id,
                "call_id": call.id or new_id("call"),
                "name": call.name,
                "arguments": "",
                "status": "in_progress",
            }
            self._emit("response.output_item.added", output_index=index, item=dict(item))
            where = {"item_id": item_id, "output_index": index}
            for fragment in fragments:
                self._emit("response.function_call_arguments.delta", **where, delta=fragment)
            self._emit(
                "response.function_call_arguments.done",
                **where,
                name=call.name,
                arguments=arguments,
            )
            item.update(arguments=arguments, status=status)
            self._emit("response.output_item.done", output_index=index, item=dict(item))
            self.output.append(item)

    def _item_json(self, item: _Item, status: str) -> dict[str, Any]:
        parts = _copy(item.parts)
        if item.kind == "reasoning":
            summary = [p for p in parts if p["type"] == "summary_text"]
            content = [p for p in parts if p["type"] == "reasoning_text"]
            body: dict[str, Any] = {"type": "reasoning", "id": item.id, "summary": summary}
            if self.reasoning_events != "summary":
                body["content"] = content
            body["status"] = status
            return body
        return {
            "type": "message",
            "id": item.id,
            "role": "assistant",
            "status": status,
            "content": parts,
        }

    # -- plumbing ------------------------------------------------------------------------------------
    @staticmethod
    def _where(item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index}

    def _response(self, **changes: Any) -> dict[str, Any]:
        response: dict[str, Any] = _copy(self.base)
        response["output"] = _copy(self.output)
        response.update(changes)
        if changes.get("status") in ("completed", "incomplete", "failed"):
            response["usage"] = _copy(self.usage)
        return response

    def _terminal(self, kind: str, response: dict[str, Any]) -> None:
        self._emit(kind, response=response)
        self.terminal = self._out[-1]

    def _emit(self, kind: str, **fields: Any) -> None:
        self._out.append({"type": kind, **fields})

    def _take(self) -> list[Event]:
        out, self._out = self._out, []
        return out


def _call_position(key: tuple[str, Any]) -> tuple[bool, tuple[int, int]]:
    """Calls with an upstream index first, by (reuse generation, index); then calls known by id."""
    if key[0] == "index":
        return False, key[1]
    return True, (0, 0)


def is_terminal(event: Any) -> bool:
    return isinstance(event, dict) and event.get("type") in _TERMINAL


def _error_message(error: Any) -> str:
    """Upstream error objects come as ``{"error": {...}}``, flat, or a bare string (quirks 30-34)."""
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return f"upstream error: {message}"
        return f"upstream error: {json.dumps(message if message is not None else error)[:500]}"
    return f"upstream error: {error}"
