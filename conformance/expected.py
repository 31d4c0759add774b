"""The oracle: what a correct proxy must answer, derived from the upstream chunks a cassette replays.

The fake upstream replays recorded Chat Completions traffic, so the harness knows the truth the
proxy was told: the text, the refusal, the reasoning, every tool call (id, name, arguments), the
finish reason, the usage, and whether the upstream failed. :func:`expect` reads one interaction
with the same SSE parser the harness uses everywhere and survives every quirk in
``upstream-shapes.md`` §9: choice-less and delta-less chunks, ``""``/``null`` deltas, a missing
tool-call ``index``, names that arrive late, split or repeated, ``tool_calls: []``,
``reasoning`` vs ``reasoning_content``, usage anywhere (latest wins), duplicated finish chunks,
``[DONE]`` without its blank line or missing, unknown finish reasons, and the three mid-stream
error shapes (``data: {"error": …}``, ``finish_reason: "error"``, llama.cpp's ``error:`` field).

Where the upstream leaves a correct answer open (an unknown finish reason, a cut right after the
finish chunk), :attr:`Expected.outcomes` lists every outcome a correct proxy may report, so the
checks never raise a false alarm.

:func:`chat_completion_body` assembles the ``chat.completion`` a non-streaming upstream would have answered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conformance.cassette import Interaction
from conformance.sse import parse_sse

__all__ = [
    "Expected",
    "ExpectedCall",
    "chat_completion_body",
    "expect",
    "expect_chunks",
    "json_equal",
]

_COMPLETED = frozenset({"stop", "tool_calls", "function_call", "eos", "end_turn", "stop_sequence", "eos_token"})
_INCOMPLETE = {"length": "max_output_tokens", "max_tokens": "max_output_tokens", "content_filter": "content_filter"}


@dataclass
class ExpectedCall:
    """One upstream tool call, assembled from its fragments."""

    id: str
    name: str
    arguments: str


@dataclass
class Expected:
    """What a correct proxy must produce for one upstream interaction."""

    outcome: str
    """completed | incomplete | failed | http_error (the upstream answered non-2xx before any chunk)."""
    outcomes: frozenset[str]
    """Every outcome a correct proxy may report; ``outcome`` is the most faithful one."""
    incomplete_reason: str | None = None
    text: str = ""
    refusal: str = ""
    reasoning: str = ""
    tool_calls: list[ExpectedCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    error_message: str | None = None
    upstream_status: int = 200
    chunk_id: str | None = None
    model: str | None = None

    @property
    def healthy(self) -> bool:
        """The upstream answered and finished normally: no error, no cut."""
        return self.outcome in ("completed", "incomplete")


class _Call:
    __slots__ = ("fragments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.fragments: list[str] = []


class _Builder:
    """Accumulates chat chunks the way a correct translator must read them."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[tuple[str, Any], _Call] = {}
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.error: str | None = None
        self.chunk_id: str | None = None
        self.model: str | None = None
        self.chunks = 0

    def feed(self, data: str) -> None:
        try:
            chunk = json.loads(data)
        except ValueError:
            self.error = self.error or f"upstream sent a data line that is not JSON: {data[:120]!r}"
            return
        if not isinstance(chunk, dict):
            return
        self.chunks += 1
        error = chunk.get("error")
        if error or chunk.get("object") == "error":
            self.error = self.error or _error_message(error if error else chunk)
        if isinstance(chunk.get("id"), str) and chunk["id"] and self.chunk_id is None:
            self.chunk_id = chunk["id"]
        if isinstance(chunk.get("model"), str) and chunk["model"] and self.model is None:
            self.model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]  # latest wins (quirks 5, 7)
        for choice in _list(chunk.get("choices")):
            if isinstance(choice, dict) and choice.get("index", 0) in (0, None):
                self._choice(choice)

    def _choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = _obj(choice.get("message"))
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self.reasoning.append(reasoning)
        for key, out in (("content", self.text), ("refusal", self.refusal)):
            value = delta.get(key)
            if isinstance(value, str) and value:
                out.append(value)
        for frag in _list(delta.get("tool_calls")):
            if isinstance(frag, dict):
                self._fragment(frag)
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.finish = reason

    def _fragment(self, frag: dict[str, Any]) -> None:
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
            key = ("index", index)
        elif call_id:
            key = next((k for k, c in self.calls.items() if c.id == call_id), ("id", call_id))
        elif self.calls:
            key = next(reversed(self.calls))
        else:
            key = ("index", 0)
        call = self.calls.get(key)
        if call is None:
            if not (call_id or name or args):
                return
            call = self.calls[key] = _Call()
        if call_id and not call.id:
            call.id = call_id
        if name and name != call.name:
            call.name += name  # split across fragments; a repeated whole name is not appended
        if args:
            call.fragments.append(args)

    def tool_calls(self) -> list[ExpectedCall]:
        ordered = sorted(self.calls.items(), key=lambda kv: (kv[0][0] != "index", kv[0][1] if kv[0][0] == "index" else 0))
        return [ExpectedCall(c.id, c.name, "".join(c.fragments)) for _, c in ordered]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _error_message(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("error"), dict):
        error = error["error"]
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
        return json.dumps(message if message is not None else error)[:500]
    return str(error)


def _http_error_message(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return text[:500] or None
    if isinstance(data, dict):
        err = data.get("error") if isinstance(data.get("error"), dict) else data
        message = err.get("message") if isinstance(err, dict) else None
        if isinstance(message, str) and message:
            return message
        if isinstance(data.get("detail"), str):
            return str(data["detail"])
    return None


def _outcomes(reason: str | None, clean: bool) -> tuple[str, frozenset[str], str | None]:
    """(outcome, acceptable outcomes, incomplete reason) for a finish reason and a clean end."""
    if reason is None:
        return "failed", frozenset({"failed"}), None
    low = reason.lower()
    if low == "error" or "malformed" in low:
        return "failed", frozenset({"failed"}), None
    if low in _INCOMPLETE:
        ok = {"incomplete"} if clean else {"incomplete", "failed"}
        return "incomplete", frozenset(ok), _INCOMPLETE[low]
    if low in _COMPLETED:
        ok = {"completed"} if clean else {"completed", "failed"}
        return "completed", frozenset(ok), None
    return "completed", frozenset({"completed", "incomplete", "failed"}), None


def expect_chunks(status: int, headers: dict[str, str], chunks: list[bytes], end: str = "clean") -> Expected:
    """The oracle for raw upstream bytes (see :func:`expect`)."""
    body = b"".join(chunks)
    if not 200 <= status < 300:
        return Expected("http_error", frozenset({"http_error"}), error_message=_http_error_message(body), upstream_status=status)
    b = _Builder()
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if ctype.startswith("application/json"):
        b.feed(body.decode("utf-8", "replace"))
        done = True
    else:
        events, parser = parse_sse(chunks)
        error_field = next(
            (i for i in parser.issues if i.kind == "unknown_field" and i.message.startswith("unknown SSE field `error`")),
            None,
        )
        done = False
        for ev in events:
            if error_field is not None and error_field.event_index is not None and ev.index >= error_field.event_index:
                break
            if ev.data.strip() == "[DONE]":
                done = True
                break
            b.feed(ev.data)
            if b.error is not None:
                break
        if error_field is not None and b.error is None:
            line = next((ln for ln in body.decode("utf-8", "replace").splitlines() if ln.startswith("error:")), "error:")
            value = line[len("error:") :].strip()
            try:
                b.error = _error_message(json.loads(value))
            except ValueError:
                b.error = value or "upstream sent an SSE `error:` field"
    clean = end != "cut"
    if b.error is not None:
        outcome, outcomes, reason = "failed", frozenset({"failed"}), None
    elif b.chunks == 0:
        outcome, outcomes, reason = "failed", frozenset({"failed"}), None  # quirk 32: a bare [DONE]
    else:
        outcome, outcomes, reason = _outcomes(b.finish, clean or done)
    return Expected(
        outcome=outcome,
        outcomes=outcomes,
        incomplete_reason=reason,
        text="".join(b.text),
        refusal="".join(b.refusal),
        reasoning="".join(b.reasoning),
        tool_calls=b.tool_calls(),
        finish_reason=b.finish,
        usage=b.usage,
        error_message=b.error,
        upstream_status=status,
        chunk_id=b.chunk_id,
        model=b.model,
    )


def expect(interaction: Interaction) -> Expected:
    """What a correct proxy must produce when the upstream answers with ``interaction``."""
    return expect_chunks(interaction.status, interaction.headers, [data for _, data in interaction.chunks], interaction.end)


def chat_completion_body(expected: Expected, model: str | None = None) -> dict[str, Any]:
    """The ``chat.completion`` a non-streaming upstream answers with the same content."""
    message: dict[str, Any] = {"role": "assistant", "content": expected.text or None}
    if expected.refusal:
        message["refusal"] = expected.refusal
    if expected.reasoning:
        message["reasoning_content"] = expected.reasoning
    if expected.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in expected.tool_calls
        ]
    body: dict[str, Any] = {
        "id": expected.chunk_id or "chatcmpl-conformance",
        "object": "chat.completion",
        "created": 0,
        "model": expected.model or model or "conformance-model",
        "choices": [{"index": 0, "message": message, "finish_reason": expected.finish_reason or "stop"}],
    }
    if expected.usage is not None:
        body["usage"] = expected.usage
    return body


def json_equal(a: str, b: str) -> bool:
    """Two argument strings are the same JSON value (or, if either is not JSON, the same text)."""
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return a == b
