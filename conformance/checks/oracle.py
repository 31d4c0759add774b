"""Oracle checks: did the proxy keep what the upstream said?

Each compares the proxy's answer with :class:`conformance.expected.Expected`, derived from the
upstream chunks the fake upstream replayed for this exchange. On a stream the proxy's answer is
the items as a client rebuilds them (each item's ``output_item.done``, or its ``added`` plus
deltas when it was never closed) and the terminal response's status and usage; that the
terminal ``output`` repeats the items is ``integrity.terminal_output``'s rule. On a ``stream:
false`` exchange it is the JSON body. Text must match byte for byte; arguments as JSON values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from conformance.checks._registry import Context, Issue, Skip, check
from conformance.expected import Expected, ExpectedCall, json_equal
from conformance.stream import Item

__all__ = ["Produced", "produced"]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _clip(value: Any, limit: int = 200) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"… [{len(value)} chars]"
    return value


@dataclass
class Produced:
    """What the proxy answered, in the shape the oracle checks compare."""

    items: list[dict[str, Any]]
    closed: list[bool]
    pointers: list[str]
    event_indices: list[int | None]
    response: dict[str, Any] | None
    status: str | None
    terminal_index: int | None
    notes: list[str] = field(default_factory=list)

    def of_type(self, kind: str) -> list[int]:
        return [i for i, item in enumerate(self.items) if item.get("type") == kind]

    def texts(self, part_type: str, field_name: str) -> str:
        out = []
        for i in self.of_type("message"):
            for part in _list(self.items[i].get("content")):
                if isinstance(part, dict) and part.get("type") == part_type and isinstance(part.get(field_name), str):
                    out.append(part[field_name])
        return "".join(out)

    def reasoning(self) -> tuple[str, str]:
        """(summary text, reasoning content text) of every reasoning item, concatenated."""
        summary: list[str] = []
        content: list[str] = []
        for i in self.of_type("reasoning"):
            item = self.items[i]
            for key, out in (("summary", summary), ("content", content)):
                for part in _list(item.get(key)):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        out.append(part["text"])
        return "".join(summary), "".join(content)


def _rebuilt(item: Item) -> tuple[dict[str, Any], bool]:
    """The item as a client holds it at the end: ``output_item.done``, else added + deltas."""
    if item.done is not None:
        return item.done, True
    # Copies of the streamed objects (their keys are set below; nested values are only read).
    rebuilt = dict(item.added or {})
    if rebuilt.get("type") == "function_call":
        rebuilt["arguments"] = item.args_done if item.args_done is not None else "".join(item.arg_deltas)
        return rebuilt, False
    lists: dict[str, list[dict[str, Any]]] = {"content": [], "summary": []}
    for (kind, _), part in sorted(item.parts.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        obj = dict(part.added or {})
        text = part.text_done if part.text_done is not None else "".join(part.deltas)
        obj["refusal" if obj.get("type") == "refusal" else "text"] = text
        lists["summary" if kind == "summary" else "content"].append(obj)
    if rebuilt.get("type") == "reasoning":
        rebuilt["summary"], rebuilt["content"] = lists["summary"], lists["content"]
    else:
        rebuilt["content"] = lists["content"]
    return rebuilt, False


def produced(ctx: Context) -> Produced:
    """The proxy's answer for the oracle checks (cached on the context)."""
    cached = ctx.__dict__.get("_produced")
    if isinstance(cached, Produced):
        return cached
    response, status = ctx.final
    if ctx.exchange.mode == "nonstream":
        if response is None:
            raise Skip("the body is not a JSON object (see nonstream.body_is_response)")
        output = response.get("output")
        body_items = [i for i in output if isinstance(i, dict)] if isinstance(output, list) else []
        n = len(body_items)
        result = Produced(body_items, [True] * n, [f"/output/{i}" for i in range(n)], [None] * n, response, status, None)
    else:
        term = ctx.analysis.terminal
        if term is None:
            raise Skip("the stream has no terminal event (see lifecycle.terminal_present)")
        ordered = sorted(ctx.analysis.items.values(), key=lambda i: (i.ordinal if i.ordinal >= 0 else 10**6, i.output_index))
        items: list[dict[str, Any]] = []
        closed: list[bool] = []
        pointers: list[str] = []
        indices: list[int | None] = []
        for it in ordered:
            obj, done = _rebuilt(it)
            items.append(obj)
            closed.append(done)
            pointers.append("/item")
            indices.append(it.done_at if done else it.added_at)
        result = Produced(items, closed, pointers, indices, response, status, term.index)
    ctx.__dict__["_produced"] = result
    return result


def _expected(ctx: Context) -> Expected:
    """The oracle for this exchange, or Skip with the reason there is nothing to compare."""
    _no_upstream_turn(ctx)
    status = ctx.exchange.status
    if status is None or not 200 <= status < 300:
        raise Skip(f"no answer to compare: HTTP {status} (see http.status_ok)")
    exp = ctx.expected
    if exp is None:
        raise Skip("the proxy answered without calling upstream (see upstream.matched)")
    if exp.outcome == "http_error":
        raise Skip("the upstream failed before any chunk: judged by http.status_ok and errors.envelope")
    return exp


def _no_upstream_turn(ctx: Context) -> None:
    if ctx.turn is None:
        raise Skip("no cassette turn to compare with")
    if not ctx.turn.upstream:
        raise Skip("this turn has no upstream answer: a correct proxy refuses the request itself")


def _partial(exp: Expected, got: Produced) -> bool:
    """A failed answer may stop early: then output must be a prefix of what upstream sent."""
    return exp.outcome == "failed" or got.status == "failed"


def _anchor(got: Produced, index: int | None) -> tuple[int | None, str | None]:
    if index is None or index >= len(got.items):
        return got.terminal_index, None
    return got.event_indices[index], got.pointers[index]


@check("oracle.text", classes=("X2", "T1", "RS1", "S6"), needs_stream=False, needs_upstream=True)
def text(ctx: Context) -> Iterator[Issue]:
    """The message text (and refusal) equals the upstream's content, byte for byte.

    The upstream's ``content`` deltas, concatenated, are the answer the model gave; a proxy that
    trims, re-encodes, drops a chunk, leaks reasoning or its own error text into the message, or
    renders a tool call as text shows the user something the model did not say. On a failed
    answer the text may stop early, but must not contain anything the upstream did not send.
    """
    exp = _expected(ctx)
    got = produced(ctx)
    partial = _partial(exp, got)
    messages = got.of_type("message")
    first_msg = messages[0] if messages else None
    for what, want, have in (
        ("text", exp.text, got.texts("output_text", "text")),
        ("refusal", exp.refusal, got.texts("refusal", "refusal")),
    ):
        ok = want.startswith(have) if partial else have == want
        if ok:
            continue
        index, pointer = _anchor(got, first_msg)
        at = next((i for i, (a, b) in enumerate(zip(want, have, strict=False)) if a != b), min(len(want), len(have)))
        yield Issue(
            f"the message {what} differs from the upstream's ({len(have)} vs {len(want)} characters; first difference at character {at})",
            index,
            pointer=pointer,
            expected=_clip(want),
            actual=_clip(have),
        )


@check("oracle.reasoning", severity="warning", classes=("RS1",), needs_stream=False, needs_upstream=True)
def reasoning(ctx: Context) -> Iterator[Issue]:
    """Upstream reasoning (``reasoning_content`` or ``reasoning``) comes back as a reasoning item, before the answer.

    Its text, as summary or as reasoning content, equals what the upstream streamed. A proxy
    that drops it leaves Codex and OpenCode with no reasoning to show (and no reasoning to replay
    to thinking-mode upstreams); one that puts it after the message breaks clients that keep a
    single current item (pi lost its encrypted reasoning state).
    """
    exp = _expected(ctx)
    if not exp.reasoning:
        return
    got = produced(ctx)
    rs = got.of_type("reasoning")
    if not rs:
        yield Issue(
            f"the upstream streamed {len(exp.reasoning)} characters of reasoning; there is no reasoning item",
            got.terminal_index,
            expected=_clip(exp.reasoning),
            actual=None,
        )
        return
    summary, content = got.reasoning()
    partial = _partial(exp, got)
    if not any((exp.reasoning.startswith(t) if partial else t == exp.reasoning) for t in (summary, content) if t or partial):
        index, pointer = _anchor(got, rs[0])
        yield Issue(
            "the reasoning item's text differs from the upstream's reasoning",
            index,
            pointer=pointer,
            expected=_clip(exp.reasoning),
            actual=_clip(content or summary),
        )
    others = [i for i in range(len(got.items)) if got.items[i].get("type") in ("message", "function_call")]
    if others and others[0] < rs[0]:
        index, pointer = _anchor(got, rs[0])
        yield Issue(
            f"the reasoning item is output item {rs[0]}, after the {got.items[others[0]].get('type')} at {others[0]}; reasoning comes first",
            index,
            pointer=pointer,
        )


@check("oracle.tool_calls", classes=("T2", "T4", "I3", "T1"), needs_stream=False, needs_upstream=True)
def tool_calls(ctx: Context) -> Iterator[Issue]:
    """One ``function_call`` per upstream tool call, in order: ``call_id`` = the upstream id, the same name, the same JSON arguments.

    The call id is what the client sends back with the tool result; a re-minted one detaches the
    result from the call in the upstream's history. A name cut to its first fragment or
    overwritten by a later empty one calls a tool that does not exist (AI SDK: ``Expected
    'function.name' to be a string``); lost argument fragments run the tool with wrong input.
    A parameterless call's arguments are ``"{}"``, never ``""``.
    """
    exp = _expected(ctx)
    got = produced(ctx)
    calls = got.of_type("function_call")
    partial = _partial(exp, got)
    if len(calls) != len(exp.tool_calls) and not (partial and len(calls) < len(exp.tool_calls)):
        yield Issue(
            f"{len(calls)} function_call items; the upstream made {len(exp.tool_calls)} tool calls",
            got.terminal_index,
            expected=[{"call_id": c.id, "name": c.name} for c in exp.tool_calls],
            actual=[{"call_id": got.items[i].get("call_id"), "name": got.items[i].get("name")} for i in calls],
        )
    for n, i, want in _pair_calls(got, calls, exp.tool_calls):
        item = got.items[i]
        index, pointer = _anchor(got, i)
        if want.id and item.get("call_id") != want.id:
            yield Issue(f"tool call {n}: call_id is not the upstream's id", index, pointer=f"{pointer}/call_id", expected=want.id, actual=item.get("call_id"))
        if item.get("name") != want.name:
            yield Issue(f"tool call {n}: the name differs from the upstream's", index, pointer=f"{pointer}/name", expected=want.name, actual=item.get("name"))
        args = item.get("arguments")
        wanted = want.arguments or "{}"
        if not isinstance(args, str) or not json_equal(args, wanted) or (args == "" and wanted == "{}"):
            yield Issue(
                f"tool call {n} ({want.name}): the arguments are not the upstream's",
                index,
                pointer=f"{pointer}/arguments",
                expected=_clip(wanted),
                actual=_clip(args),
            )


def _pair_calls(got: Produced, calls: list[int], wanted: list[ExpectedCall]) -> list[tuple[int, int, ExpectedCall]]:
    """(upstream call number, produced item index, upstream call): matched by call id, the rest in order.

    Pairing by position alone blames every later call when one is missing (issue 12).
    """
    by_id = {got.items[i].get("call_id"): i for i in calls}
    pairs: list[tuple[int, int, ExpectedCall]] = []
    used: set[int] = set()
    rest: list[tuple[int, ExpectedCall]] = []
    for n, want in enumerate(wanted):
        i = by_id.get(want.id) if want.id else None
        if i is not None and i not in used:
            pairs.append((n, i, want))
            used.add(i)
        else:
            rest.append((n, want))
    free = [i for i in calls if i not in used]
    pairs += [(n, i, want) for (n, want), i in zip(rest, free, strict=False)]
    return sorted(pairs, key=lambda p: p[0])


@check("oracle.status", classes=("F1", "S6"), needs_stream=False, needs_upstream=True)
def status(ctx: Context) -> Iterator[Issue]:
    """The answer ends the way the upstream did: ``stop``/``tool_calls`` → completed, ``length`` → incomplete, an upstream error or cut → failed.

    ``length`` must become ``response.incomplete`` with ``incomplete_details.reason`` =
    ``max_output_tokens`` and the truncated message item ``incomplete`` (``content_filter`` the
    same with reason ``content_filter``): pi.dev settled a truncated answer as a finished 0-byte
    patch. A cut or an upstream error reported as ``completed`` presents a truncated answer as
    final. Items of a completed response are ``completed``.
    """
    exp = _expected(ctx)
    got = produced(ctx)
    where = "the terminal event" if ctx.exchange.mode == "stream" else "the body's status"
    if got.status not in exp.outcomes:
        why = {"failed": f"the upstream {'failed: ' + repr(exp.error_message) if exp.error_message else 'stream ended before a finish_reason'}"}.get(
            exp.outcome, f"upstream finish_reason {exp.finish_reason!r}"
        )
        yield Issue(
            f"{where} says {got.status!r}; {why} means {exp.outcome!r}",
            got.terminal_index,
            pointer="/response/status" if ctx.exchange.mode == "stream" else "/status",
            expected=exp.outcome,
            actual=got.status,
        )
        return
    resp = got.response or {}
    if got.status == "incomplete" and exp.incomplete_reason:
        details = resp.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        if reason != exp.incomplete_reason:
            yield Issue(
                "incomplete_details.reason does not say why the answer stopped",
                got.terminal_index,
                pointer="/response/incomplete_details" if ctx.exchange.mode == "stream" else "/incomplete_details",
                expected={"reason": exp.incomplete_reason},
                actual=details,
            )
        # Only the last item was cut off: a message followed by a tool call had ended before it.
        msgs = [i for i in got.of_type("message") if got.closed[i]]
        if msgs and msgs[-1] == len(got.items) - 1 and got.items[msgs[-1]].get("status") != "incomplete":
            index, pointer = _anchor(got, msgs[-1])
            yield Issue("the truncated message item is not marked incomplete", index, pointer=f"{pointer}/status", expected="incomplete", actual=got.items[msgs[-1]].get("status"))
    if got.status == "completed":
        for i, item in enumerate(got.items):
            if got.closed[i] and "status" in item and item.get("status") != "completed" and item.get("type") in ("message", "function_call", "reasoning"):
                index, pointer = _anchor(got, i)
                yield Issue(
                    f"a {item.get('type')} item of a completed response has status {item.get('status')!r}",
                    index,
                    pointer=f"{pointer}/status",
                    expected="completed",
                    actual=item.get("status"),
                )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@check("oracle.usage", classes=("U1",), needs_stream=False, needs_upstream=True)
def usage(ctx: Context) -> Iterator[Issue]:
    """Token usage is the upstream's: ``input_tokens`` = prompt, ``output_tokens`` = completion, ``total_tokens``, and the cached and reasoning details.

    A usage chunk after the finish chunk (``choices: []``) skipped, a terminal event sent at
    ``finish_reason`` before the usage arrived, or usage zeroed leaves clients with no context
    counter or cost (OpenCode, Codex, PiDeck); Codex retries when ``total_tokens`` is missing.
    xAI counts reasoning outside ``completion_tokens``, so ``output_tokens`` may include it and
    ``total_tokens`` may be the upstream's or the sum.
    """
    exp = _expected(ctx)
    if exp.usage is None:
        return
    got = produced(ctx)
    pointer = "/response/usage" if ctx.exchange.mode == "stream" else "/usage"
    u = (got.response or {}).get("usage")
    if not isinstance(u, dict):
        yield Issue("the upstream reported usage; the response has none", got.terminal_index, pointer=pointer, expected=exp.usage, actual=u)
        return
    up = exp.usage
    prompt, completion, total = _int(up.get("prompt_tokens")), _int(up.get("completion_tokens")), _int(up.get("total_tokens"))
    pd, cd = _obj(up.get("prompt_tokens_details")), _obj(up.get("completion_tokens_details"))
    cached = _int(pd.get("cached_tokens"))
    if cached is None:
        cached = _int(up.get("prompt_cache_hit_tokens"))
    reasoning_tokens = _int(cd.get("reasoning_tokens"))
    got_in, got_out, got_total = _int(u.get("input_tokens")), _int(u.get("output_tokens")), _int(u.get("total_tokens"))
    checks: list[tuple[str, Any, set[int]]] = []
    if prompt is not None:
        checks.append(("input_tokens", got_in, {prompt}))
    if completion is not None:
        checks.append(("output_tokens", got_out, {completion, completion + (reasoning_tokens or 0)}))
    totals = {t for t in (total, (got_in or 0) + (got_out or 0)) if t is not None}
    if prompt is not None or total is not None:
        checks.append(("total_tokens", got_total, totals))
    itd, otd = u.get("input_tokens_details"), u.get("output_tokens_details")
    if cached is not None and isinstance(itd, dict):
        checks.append(("input_tokens_details/cached_tokens", _int(itd.get("cached_tokens")), {cached}))
    if reasoning_tokens is not None and isinstance(otd, dict):
        checks.append(("output_tokens_details/reasoning_tokens", _int(otd.get("reasoning_tokens")), {reasoning_tokens}))
    for name, value, allowed in checks:
        if value not in allowed:
            yield Issue(
                f"usage {name.replace('/', '.')} is {value!r}; the upstream reported {' or '.join(str(a) for a in sorted(allowed))}",
                got.terminal_index,
                pointer=f"{pointer}/{name}",
                expected=sorted(allowed)[0] if len(allowed) == 1 else sorted(allowed),
                actual=value,
            )


def _envelope_message(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    message = err.get("message") if isinstance(err, dict) else None
    return message if isinstance(message, str) else None


@check("oracle.error_relayed", classes=("S6", "S7"), needs_stream=False, needs_upstream=True)
def error_relayed(ctx: Context) -> Iterator[Issue]:
    """When the upstream fails, the proxy's error says why, in the upstream's words.

    Mid-stream: ``response.failed`` whose ``response.error.message`` carries the upstream's
    message (Codex shows it: ``stream disconnected before completion: <message>``). Before the
    first byte, or for a ``stream: false`` request: the error envelope's message carries it. Zed
    users saw ``missing field `type``` instead of the real error; Codex relabels an unexplained
    500 as "high demand".
    """
    _no_upstream_turn(ctx)
    exp = ctx.expected
    if exp is None:
        raise Skip("this turn's answer came without an upstream call (see upstream.matched)")
    if exp.healthy:
        return
    ex = ctx.exchange
    if ex.status is not None and not 200 <= ex.status < 300:
        message = _envelope_message(ex.body)
        if message is not None and exp.error_message and exp.error_message not in message:
            yield Issue(
                f"HTTP {ex.status}: the error message does not carry the upstream's",
                pointer="/error/message",
                expected=_clip(exp.error_message),
                actual=_clip(message),
            )
        return
    if exp.outcome == "http_error":
        return  # a 2xx answer to an upstream that failed first: http.status_ok's finding
    try:
        got = produced(ctx)
    except Skip:
        return
    if got.status != "failed":
        return  # oracle.status reports the wrong ending
    err = (got.response or {}).get("error")
    message = err.get("message") if isinstance(err, dict) else None
    pointer = "/response/error" if ex.mode == "stream" else "/error"
    if not isinstance(message, str) or not message:
        yield Issue("the failed response has no error message", got.terminal_index, pointer=pointer, expected={"message": exp.error_message or "…"}, actual=err)
    elif exp.error_message and exp.error_message not in message:
        yield Issue(
            "the failed response's error message does not carry the upstream's",
            got.terminal_index,
            pointer=f"{pointer}/message",
            expected=_clip(exp.error_message),
            actual=_clip(message),
        )


_MANY = 3  # upstream fragments from which one single delta means the proxy buffered


@check("oracle.incremental", severity="warning", classes=("X2", "T4"), needs_upstream=True)
def incremental(ctx: Context) -> Iterator[Issue]:
    """What the upstream streamed in many chunks is streamed on, not buffered into one delta at the end.

    A proxy that collects the text (or a call's arguments) and sends it as one delta turns
    streaming into buffering: the user sees nothing until the answer is complete, and a long
    answer looks like a stalled one (Codex's idle timeout). A warning: the answer is intact.
    """
    exp = _expected(ctx)
    a = ctx.analysis
    if exp.text_chunks >= _MANY:
        parts = [p for item in a.items.values() if item.type == "message" for p in item.parts.values() if p.kind == "content"]
        sent = [d for p in parts for d in p.deltas if d]
        if len(sent) == 1:
            part = next(p for p in parts if any(p.deltas))
            yield Issue(
                f"the upstream streamed the text in {exp.text_chunks} chunks; the proxy sent it as one delta",
                part.added_at,
                expected=f"{exp.text_chunks} deltas (or any number above 1)",
                actual=1,
            )
    by_call = {c.id: c for c in exp.tool_calls if c.id}
    for item in a.items.values():
        if item.type != "function_call":
            continue
        call_id = (item.added or item.done or {}).get("call_id")
        want = by_call.get(call_id) if isinstance(call_id, str) else None
        sent = [d for d in item.arg_deltas if d]
        if want is not None and want.fragments >= _MANY and len(sent) == 1:
            yield Issue(
                f"tool call {call_id} ({want.name}): the upstream streamed its arguments in {want.fragments} fragments; the proxy sent them as one delta",
                item.args_done_at or item.added_at,
                expected=f"{want.fragments} deltas (or any number above 1)",
                actual=1,
            )


@check("oracle.limit_reached_incomplete", classes=("F1",), needs_stream=False)
def limit_reached_incomplete(ctx: Context) -> Iterator[Issue]:
    """Live mode: an answer whose ``usage.output_tokens`` reaches the ``max_output_tokens`` it was sent ends ``incomplete`` (reason ``max_output_tokens``).

    With no recorded upstream the model server itself is the oracle: a model cut at the limit
    is a truncated answer, and reporting it ``completed`` (llama.cpp did) makes agents settle a
    half-written patch as final (pi.dev). Replayed exchanges are judged by ``oracle.status``.
    """
    ex = ctx.exchange
    if not ex.live:
        return  # a replayed exchange: oracle.status judges the ending against the recorded upstream
    limit = _int(ex.request.get("max_output_tokens"))
    response, status = ctx.final
    if limit is None or response is None:
        return
    used = _int(_obj(response.get("usage")).get("output_tokens"))
    if used is None or used < limit or status in ("incomplete", "failed"):
        return
    pointer = "/response/status" if ex.mode == "stream" else "/status"
    index = ctx.analysis.terminal.index if ex.mode == "stream" and ctx.analysis.terminal else None
    yield Issue(
        f"usage.output_tokens is {used}, the max_output_tokens of the request is {limit}, yet the answer is {status!r}: a truncated answer reported as finished",
        index,
        pointer=pointer,
        expected="incomplete",
        actual=status,
    )
