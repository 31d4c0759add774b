"""Error paths and request tolerance: errors look like OpenAI's, and valid requests are not refused."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from conformance.checks._registry import Context, Issue, check

# Optional Responses parameters that clients send and replay (Codex, IDEs, the Agents SDK).
OPTIONAL_PARAMS = (
    "instructions",
    "metadata",
    "store",
    "include",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "stream_options",
    "truncation",
    "user",
    "service_tier",
    "reasoning",
    "text",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "temperature",
    "top_p",
    "client_metadata",
    "previous_response_id",
)


def sdk_untyped(request: dict[str, Any]) -> list[str]:
    """Shapes of this request that openai-python's request types do not allow (valid for many
    servers, so still sent, but a live server may refuse them and is then not at fault)."""
    out = []
    inp = request.get("input")
    for i, item in enumerate(inp if isinstance(inp, list) else []):
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            parts, where = item.get("output"), "inside function_call_output.output"
        elif item.get("role") in ("user", "system", "developer"):
            parts, where = item.get("content"), f"in a {item['role']} message"
        else:
            continue
        if isinstance(parts, list) and any(isinstance(p, dict) and p.get("type") == "output_text" for p in parts):
            out.append(f"input[{i}]: an `output_text` part {where}")
    return out


def live_note(ctx: Context) -> str:
    """In live mode, what a finding about a refused request must add when the SDK types reject it."""
    if not ctx.exchange.live:
        return ""
    odd = sdk_untyped(ctx.exchange.request)
    if not odd:
        return ""
    return f" Note: this request carries {'; '.join(odd)}, which openai-python's types do not allow; a model server may refuse it without being wrong."


def _envelope(body: bytes) -> tuple[Any, str | None]:
    """The decoded body and, when it is not an OpenAI error envelope, what is wrong with it."""
    if not body.strip():
        return None, "the body is empty (openai-node: `status code (no body)`)"
    try:
        data = json.loads(body)
    except ValueError:
        text = body[:80].decode("utf-8", "replace")
        return None, f"the body is not JSON: {text!r}"
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        return data, f"the body is not {{\"error\": {{...}}}} (it has {keys})"
    err = data["error"]
    problems = []
    if not isinstance(err.get("message"), str) or not err["message"]:
        problems.append("error.message is not a non-empty string")
    if not isinstance(err.get("type"), str):
        problems.append("error.type is not a string")
    for key in ("param", "code"):
        if key not in err:
            problems.append(f"error.{key} is missing (use null)")
        elif err[key] is not None and not isinstance(err[key], str):
            problems.append(f"error.{key} is {type(err[key]).__name__}, not a string or null")
    return data, "; ".join(problems) or None


@check("errors.envelope", classes=("S7",), needs_stream=False)
def envelope(ctx: Context) -> Iterator[Issue]:
    """Every error answer is ``application/json`` with ``{"error": {"message", "type", "param", "code"}}``.

    The SDKs build their exception from that object: a ``{"detail": …}`` body, HTML, or an empty
    body becomes ``400 status code (no body)`` (openai-node, Factory Droid) and the reason is
    lost; typed clients (async-openai) fail to decode it at all.
    """
    ex = ctx.exchange
    if ex.status is None or 200 <= ex.status < 300:
        return
    ctype = ex.header("content-type")
    if ctype is None or ctype.split(";")[0].strip().lower() != "application/json":
        yield Issue(f"HTTP {ex.status} error with Content-Type {ctype!r}", expected="application/json", actual=ctype)
    data, problem = _envelope(ex.body)
    if problem:
        yield Issue(
            f"HTTP {ex.status}: {problem}",
            pointer="/error",
            expected={"error": {"message": "…", "type": "…", "param": None, "code": None}},
            actual=data if data is not None else ex.body[:200].decode("utf-8", "replace"),
        )


@check("errors.no_error_event_on_healthy_stream", classes=("S6",))
def no_error_event_on_healthy_stream(ctx: Context) -> Iterator[Issue]:
    """A stream whose upstream finished normally carries no ``error`` event.

    openai-python and openai-node raise ``APIError`` on it, the SDK stream helpers, the AI SDK,
    LangChain and the Agents SDK abort: a good answer is thrown away. (An ``error`` event after
    the terminal event is ``lifecycle.single_terminal_last``'s.)
    """
    a = ctx.analysis
    end = a.terminal_indices[0] if a.terminal_indices else len(a.events)
    exp = ctx.expected
    if exp is not None:
        healthy = exp.healthy
    else:
        term = a.terminal
        healthy = term is not None and term.type in ("response.completed", "response.incomplete")
    if not healthy:
        return
    for ev in a.of_types("error"):
        if ev.index < end:
            yield Issue("an `error` event in a stream whose upstream answered normally", ev.index, actual=ev.data)


def _pointer_of(param: str) -> str:
    """``input[3].content`` -> ``/input/3/content``."""
    return "/" + re.sub(r"\[(\d+)\]", r".\1", param).replace(".", "/")


def _features(request: dict[str, Any]) -> list[str]:
    """What this request carries that a picky proxy might refuse (for the finding's message)."""
    out = [f"`{p}`" for p in OPTIONAL_PARAMS if p in request]
    inp = request.get("input")
    if isinstance(inp, str):
        out.append("`input` as a string")
    elif isinstance(inp, list):
        kinds = sorted({str(i.get("type", "message (no type)")) for i in inp if isinstance(i, dict)})
        parts = sorted(
            {
                str(p.get("type"))
                for i in inp
                if isinstance(i, dict) and isinstance(i.get("content"), list)
                for p in i["content"]
                if isinstance(p, dict)
            }
        )
        out.append("input items " + ", ".join(kinds))
        if parts:
            out.append("content parts " + ", ".join(parts))
    tools = request.get("tools")
    if isinstance(tools, list):
        kinds = sorted({str(t.get("type")) for t in tools if isinstance(t, dict)})
        out.append("tools of type " + ", ".join(kinds))
    return out


def _odd_items(request: dict[str, Any]) -> dict[int, str]:
    """Input items of a valid but unusual shape, by index: what a picky proxy trips over."""
    inp = request.get("input")
    out: dict[int, str] = {}
    for i, item in enumerate(inp if isinstance(inp, list) else []):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            if "summary" not in item:
                out[i] = "a reasoning item without `summary`"
            elif item.get("content", "") is None:
                out[i] = "a reasoning item with `content: null`"
            elif item.get("summary") == []:
                out[i] = "a reasoning item with an empty `summary`"
        elif kind == "function_call_output" and isinstance(item.get("output"), list):
            out[i] = "a function_call_output whose `output` is a list of parts"
        elif kind is None and "role" in item:
            out[i] = "a message without `type`"
    return out


def likely_cause(request: dict[str, Any], err: dict[str, Any]) -> str | None:
    """The input item a refusal is about: the one its ``param`` or message names, else the most
    unusual shape in the input (a reasoning item without ``summary`` before an untyped message)."""
    odd = _odd_items(request)
    named = None
    for text in (err.get("param"), err.get("message")):
        if isinstance(text, str) and (m := re.search(r"input[\[.](\d+)", text)):
            named = int(m.group(1))
            break
    inp = request.get("input")
    if named is not None and isinstance(inp, list) and 0 <= named < len(inp):
        item = inp[named]
        what = odd.get(named) or (f"a `{item.get('type') or 'message'}` item" if isinstance(item, dict) else "not an object")
        return f"input[{named}], {what}"
    rank = ("reasoning", "function_call_output", "message without")
    for word in rank:
        for i, what in odd.items():
            if word in what:
                return f"input[{i}], {what}"
    return None


@check(
    "request.valid_input_accepted", classes=("Q3", "Q4", "RS2", "T5"), needs_stream=False,
    moots=(
        "http.status_ok", "upstream.matched", "upstream.called", "errors.envelope",
    ),
)
def valid_input_accepted(ctx: Context) -> Iterator[Issue]:
    """A valid request is not refused: every documented input shape and optional parameter is accepted.

    Clients replay their whole history each turn (Codex, IDE agents): reasoning items with
    ``content: null`` and ``encrypted_content``, ``fco_`` ids, custom, namespace and web-search
    tools, ``metadata``, ``store``, ``include``, ``prompt_cache_retention`` … A 4xx on any of them
    fails every later turn, with no way for the client to recover (Factory Droid: ``Unsupported
    parameter: prompt_cache_retention``; LM Studio: ``Invalid discriminator value``).
    """
    ex = ctx.exchange
    if ex.status is None or not 400 <= ex.status < 500 or ctx.status_allowed(ex.status):
        return
    if "2xx" not in ctx.allowed_statuses():
        return  # the request should fail, just not like this: http.status_ok's finding
    data, _ = _envelope(ex.body)
    found = data.get("error") if isinstance(data, dict) else None
    err: dict[str, Any] = found if isinstance(found, dict) else {}
    said = err.get("message") if isinstance(err.get("message"), str) else ex.body[:160].decode("utf-8", "replace")
    carries = "; ".join(_features(ex.request))
    cause = likely_cause(ex.request, err)
    because = f" Likely cause: {cause}." if cause else ""
    yield Issue(
        f"HTTP {ex.status} for a valid request: {said!r} (param {err.get('param')!r}).{because} The request carries {carries}.{live_note(ctx)}",
        pointer=_pointer_of(err["param"]) if isinstance(err.get("param"), str) else None,
        expected="2xx",
        actual=ex.status,
    )
