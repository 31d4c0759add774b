"""``stream: false`` checks: the JSON body is a Response, and the same one the stream ended with."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

from conformance.checks._registry import Context, Issue, Skip, check
from conformance.checks.integrity import _first_difference
from conformance.checks.oracle import produced
from conformance.checks.schema import optional_usage_detail
from conformance.schema import load_schemas

# Fields that legitimately differ between two answers to the same request.
# `model` may be the requested alias in one answer and the upstream's resolved name in the other:
# both are "the model used" to every client.
_VOLATILE = frozenset({"id", "created_at", "completed_at", "output_text", "model"})


# Maps whose keys are the user's, not the API's: compared whole.
_FREE_FORM = frozenset({"metadata", "parameters", "schema"})


@functools.lru_cache(maxsize=1)
def _known_fields() -> frozenset[str]:
    """Every property name the Responses schemas define; anything else is a vendor extension."""
    schemas = load_schemas()
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                names.update(props)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in schemas.names():
        walk(schemas.document(name))
    return frozenset(names)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _body(ctx: Context) -> dict[str, Any]:
    ex = ctx.exchange
    if ex.status is None or not 200 <= ex.status < 300:
        raise Skip(f"no body to check: HTTP {ex.status}")
    body, _ = ctx.final
    if body is None:
        raise Skip("the body is not a JSON object (see nonstream.body_is_response)")
    return body


@check("nonstream.body_is_response", classes=("R5", "R3"), needs_stream=False, modes=("nonstream",))
def body_is_response(ctx: Context) -> Iterator[Issue]:
    """A ``stream: false`` request gets ``application/json`` with one complete Response object.

    The SDKs parse the body into ``Response``: a missing ``output``, ``id`` or ``created_at`` is a
    decode error in typed clients (async-openai, openai-java/go/dotnet), and a proxy that streams
    anyway (``text/event-stream``) breaks every non-streaming caller.
    """
    ex = ctx.exchange
    if ex.status is None or not 200 <= ex.status < 300:
        raise Skip(f"no body to check: HTTP {ex.status}")
    ctype = ex.header("content-type")
    if ctype is None or ctype.split(";")[0].strip().lower() != "application/json":
        yield Issue(f"Content-Type is {ctype!r} for a stream: false request", expected="application/json", actual=ctype)
    try:
        body = json.loads(ex.body)
    except ValueError as exc:
        yield Issue(f"the body is not JSON ({exc})", actual=ex.body[:200].decode("utf-8", "replace"))
        return
    if not isinstance(body, dict):
        yield Issue(f"the body is a JSON {type(body).__name__}, not a Response object", actual=body)
        return
    for v in load_schemas().validate("response", body):
        if optional_usage_detail(v.pointer):
            continue  # schema.usage_details' note
        yield Issue(f"{v.message} (schema {v.schema_path})", pointer=v.pointer)
    if isinstance(body.get("created_at"), float):
        yield Issue(f"created_at is the float {body['created_at']!r}; the SDK types say integer seconds", pointer="/created_at", expected=int(body["created_at"]), actual=body["created_at"])
    if body.get("status") not in ("completed", "incomplete", "failed"):
        yield Issue(f"status {body.get('status')!r} is not final", pointer="/status", expected="completed | incomplete | failed", actual=body.get("status"))


def _normalised(value: Any, top: bool = True) -> Any:
    if isinstance(value, dict):
        # An absent field and a null one mean the same to every client (``error`` omitted on a
        # stream vs ``"error": null`` in a body), so nulls are dropped before comparing.
        # Vendor extensions (LiteLLM's `usage.cost`, `text_tokens`, …) are not the API's to compare.
        drop = _VOLATILE if top else frozenset({"id"})
        known = _known_fields()
        return {
            k: (v if k in _FREE_FORM else _normalised(v, False))
            for k, v in value.items()
            if k not in drop and v is not None and k in known
        }
    if isinstance(value, list):
        return [_normalised(v, False) for v in value]
    return value


def _without_call_ids(response: dict[str, Any], calls: list[int]) -> dict[str, Any]:
    """``response`` with the call_id of its n-th function_call items (n in ``calls``) removed."""
    out = response.get("output")
    if not calls or not isinstance(out, list):
        return response
    fc = [i for i, it in enumerate(out) if isinstance(it, dict) and it.get("type") == "function_call"]
    drop = {fc[n] for n in calls if n < len(fc)}
    return dict(response, output=[{k: v for k, v in it.items() if k != "call_id"} if i in drop else it for i, it in enumerate(out)])


@check("nonstream.matches_stream", classes=("R5",), needs_stream=False, needs_upstream=True, modes=("nonstream",))
def matches_stream(ctx: Context) -> Iterator[Issue]:
    """The ``stream: false`` body equals the response the stream of the same request ended with, ids and timestamps aside.

    Both answers come from the same upstream chunks; a body with an empty ``output`` or
    different items, status or usage means non-streaming callers get another answer (sub2api:
    ``output: []`` with a sane usage).
    """
    body = _body(ctx)
    if ctx.peer is None:
        raise Skip("there is no streamed exchange of the same request to compare with")
    try:
        streamed = produced(Context(ctx.peer))
    except Skip:
        raise Skip("the streamed exchange has no terminal response to compare with") from None
    # The stream's answer as a client holds it: the items as streamed, the status the terminal
    # event announces; that the terminal repeats them is integrity's and lifecycle's rule.
    answer = dict(streamed.response or {}, output=streamed.items, status=streamed.status)
    theirs = body
    open_items = [i for i, closed in enumerate(streamed.closed) if not closed]
    if open_items:  # an item never closed has no final status to compare (items.closed_once's finding)
        answer["output"] = [{k: v for k, v in it.items() if k != "status" or streamed.closed[i]} for i, it in enumerate(streamed.items)]
        out = body.get("output")
        if isinstance(out, list):
            theirs = dict(body, output=[{k: v for k, v in it.items() if k != "status"} if i in open_items and isinstance(it, dict) else it for i, it in enumerate(out)])
    if ctx.expected is not None:
        # Upstream tool calls without an id get one the proxy mints, a new one per request.
        minted = [n for n, c in enumerate(ctx.expected.tool_calls) if not c.id]
        answer, theirs = _without_call_ids(answer, minted), _without_call_ids(theirs, minted)
    diff = _first_difference(_normalised(answer), _normalised(theirs))
    if diff:
        where, want, got = diff
        yield Issue(
            f"the stream: false answer and the streamed answer to the same request differ at {where} (expected: streamed, actual: body)",
            pointer=where,
            expected=want,
            actual=got,
        )


@check("nonstream.output_text", severity="warning", classes=("R5",), needs_stream=False, modes=("nonstream",))
def output_text(ctx: Context) -> Iterator[Issue]:
    """A top-level ``output_text``, if present, is the concatenation of every message's output_text parts.

    It is an SDK convenience (openai-node computes it), optional on the wire; a server that
    sends it must send the right one, or raw readers show a different answer.
    """
    body = _body(ctx)
    if "output_text" not in body:
        return
    texts = [
        part.get("text", "")
        for item in _list(body.get("output"))
        if isinstance(item, dict) and item.get("type") == "message"
        for part in _list(item.get("content"))
        if isinstance(part, dict) and part.get("type") == "output_text"
    ]
    want = "".join(t for t in texts if isinstance(t, str))
    if body["output_text"] != want:
        yield Issue("output_text is not the concatenated message text", pointer="/output_text", expected=want, actual=body["output_text"])
