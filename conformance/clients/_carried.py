"""What a stream (or a non-stream body) carried, read leniently, as the reference for LOSS.

Each field is taken from the most direct source the stream has: text from the deltas, else the
``.done`` events, else the terminal response; tool calls from ``output_item.done``, else the
opened item plus its argument deltas, else the terminal response. Status and usage come from
the terminal event (``error`` counts as ``failed``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from conformance.clients._model import Outcome, ToolCall
from conformance.sse import parse_sse

if TYPE_CHECKING:
    from conformance.expected import Expected

__all__ = ["carried", "carried_events", "outcome_from_oracle", "outcome_of_response"]

_TERMINAL = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}


def _usage(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    out = {k: value[k] for k in ("input_tokens", "output_tokens", "total_tokens") if isinstance(value.get(k), int)}
    return out or None


def outcome_of_response(resp: Any) -> Outcome:
    """The answer in a Response object (a non-stream body or a terminal event's ``response``)."""
    out = Outcome(text="", refusal="", reasoning="", tool_calls=[], status=None, usage=None)
    if not isinstance(resp, dict):
        return out
    for item in resp.get("output") or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    out.text = (out.text or "") + str(part.get("text") or "")
                elif isinstance(part, dict) and part.get("type") == "refusal":
                    out.refusal = (out.refusal or "") + str(part.get("refusal") or "")
        elif kind == "reasoning":
            # summary text, else the raw reasoning text (both are shown as "reasoning")
            pieces = [s.get("text") for s in item.get("summary") or [] if isinstance(s, dict)]
            if not any(pieces):
                pieces = [c.get("text") for c in item.get("content") or [] if isinstance(c, dict)]
            out.reasoning = (out.reasoning or "") + "".join(str(p or "") for p in pieces)
        elif kind == "function_call":
            assert out.tool_calls is not None
            out.tool_calls.append(ToolCall.of(item.get("call_id"), item.get("name"), item.get("arguments")))
    status = resp.get("status")
    out.status = status if isinstance(status, str) else None
    out.usage = _usage(resp.get("usage"))
    return out


def carried_events(events: Iterable[dict[str, Any]]) -> Outcome:
    text: list[str] = []
    text_done: list[str] = []
    refusal: list[str] = []
    refusal_done: list[str] = []
    reasoning: list[str] = []
    done_calls: list[ToolCall] = []
    open_calls: dict[Any, dict[str, Any]] = {}
    terminal: dict[str, Any] | None = None
    status: str | None = None
    for ev in events:
        kind = ev.get("type")
        if kind == "response.output_text.delta":
            text.append(str(ev.get("delta") or ""))
        elif kind == "response.output_text.done":
            text_done.append(str(ev.get("text") or ""))
        elif kind == "response.refusal.delta":
            refusal.append(str(ev.get("delta") or ""))
        elif kind == "response.refusal.done":
            refusal_done.append(str(ev.get("refusal") or ""))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            reasoning.append(str(ev.get("delta") or ""))
        elif kind == "response.output_item.added":
            item = ev.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                open_calls[ev.get("output_index")] = dict(item)
        elif kind == "response.function_call_arguments.delta":
            call = open_calls.get(ev.get("output_index"))
            if call is not None:
                call["arguments"] = str(call.get("arguments") or "") + str(ev.get("delta") or "")
        elif kind == "response.output_item.done":
            item = ev.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                done_calls.append(ToolCall.of(item.get("call_id"), item.get("name"), item.get("arguments")))
        elif kind in _TERMINAL and terminal is None:
            resp = ev.get("response")
            terminal = resp if isinstance(resp, dict) else {}
            status = _TERMINAL[kind]
        elif kind == "error" and status is None:
            status = "failed"
    final = outcome_of_response(terminal)
    calls = done_calls or [ToolCall.of(c.get("call_id"), c.get("name"), c.get("arguments")) for c in open_calls.values()]
    return Outcome(
        text="".join(text) if text else ("".join(text_done) if text_done else final.text),
        refusal="".join(refusal) if refusal else ("".join(refusal_done) if refusal_done else final.refusal),
        reasoning="".join(reasoning) if reasoning else final.reasoning,
        tool_calls=calls or final.tool_calls,
        status=status,
        usage=final.usage,
    )


def carried(body: bytes, *, stream: bool = True) -> Outcome:
    """The answer the bytes carried: SSE for a stream, a JSON Response otherwise."""
    if not stream:
        try:
            return outcome_of_response(json.loads(body))
        except ValueError:
            return Outcome(status="failed")
    sse_events, _ = parse_sse([body])
    events: list[dict[str, Any]] = []
    for sse in sse_events:
        try:
            data = json.loads(sse.data)
        except ValueError:
            continue
        if isinstance(data, dict):
            events.append(data)
    return carried_events(events)


def outcome_from_oracle(expected: Expected) -> Outcome:
    """What the upstream said (the cassette's oracle), as the reference for LOSS: a client that
    shows `completed` for a cut answer, or loses a tool call the upstream made, is judged by it."""
    status = {"http_error": "failed"}.get(expected.outcome, expected.outcome)
    usage = None
    if isinstance(expected.usage, dict):
        pairs = (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens"), ("total_tokens", "total_tokens"))
        usage = {new: expected.usage[old] for old, new in pairs if isinstance(expected.usage.get(old), int)} or None
    return Outcome(
        text=expected.text,
        refusal=expected.refusal,
        reasoning=expected.reasoning,
        tool_calls=[ToolCall.of(c.id, c.name, c.arguments) for c in expected.tool_calls],
        status=status,
        usage=usage,
    )
