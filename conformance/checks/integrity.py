"""Integrity checks: the same text and arguments everywhere they are repeated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from conformance.checks._registry import Context, Issue, check
from conformance.stream import Item, Part


def _first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """JSON pointer of the first place two JSON values differ, with both values there."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}/{key}", a.get(key, "<missing>"), b.get(key, "<missing>")
            diff = _first_difference(a[key], b[key], f"{path}/{key}")
            if diff:
                return diff
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            diff = _first_difference(x, y, f"{path}/{i}")
            if diff:
                return diff
        if len(a) != len(b):
            return f"{path}/length", len(a), len(b)
        return None
    if a != b or type(a) is not type(b):
        return path or "/", a, b
    return None


def _clip(text: str | None, limit: int = 160) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text)} chars]"


def _terminal_item(ctx: Context, item: Item) -> tuple[dict[str, Any] | None, int | None, int]:
    """The item's copy in the terminal output (matched by id, see ``terminal_position``), the
    terminal event's index and the copy's position."""
    term = ctx.analysis.terminal
    at = ctx.analysis.terminal_position(item)
    resp = term.data.get("response") if term and term.data else None
    out = resp.get("output") if isinstance(resp, dict) else None
    if at is not None and isinstance(out, list):
        found: dict[str, Any] = out[at]
        return found, term.index if term else None, at
    return None, None, -1


_PART_TEXT_FIELD = {"output_text": "text", "refusal": "refusal", "reasoning_text": "text", "summary_text": "text"}


def _part_copies(ctx: Context, item: Item, part: Part) -> list[tuple[str, int | None, str, Any]]:
    """Every place the part's text is repeated: (what, event index, pointer, value)."""
    copies: list[tuple[str, int | None, str, Any]] = []
    ptype = (part.added or part.done or {}).get("type", "output_text")
    field = _PART_TEXT_FIELD.get(str(ptype), "text")
    if part.text_done_at is not None:
        copies.append(("the text `*.done` event", part.text_done_at, "/text" if field == "text" else f"/{field}", part.text_done))
    if part.done is not None:
        copies.append(("the part in `*_part.done`", part.done_at, f"/part/{field}", part.done.get(field)))
    list_name = "summary" if part.kind == "summary" else "content"
    if item.done is not None:
        parts = item.done.get(list_name)
        if isinstance(parts, list) and part.index < len(parts) and isinstance(parts[part.index], dict):
            copies.append(("the item in `output_item.done`", item.done_at, f"/item/{list_name}/{part.index}/{field}", parts[part.index].get(field)))
    final, term_index, at = _terminal_item(ctx, item)
    if final is not None:
        parts = final.get(list_name)
        if isinstance(parts, list) and part.index < len(parts) and isinstance(parts[part.index], dict):
            copies.append(("the terminal output", term_index, f"/response/output/{at}/{list_name}/{part.index}/{field}", parts[part.index].get(field)))
    return copies


@check("integrity.text_concat", classes=("X2",))
def text_concat(ctx: Context) -> Iterator[Issue]:
    """Text deltas, concatenated, equal the text in ``*.done``, the part, the item and the terminal output, byte for byte.

    Codex shows the ``output_item.done`` text, most UIs show the deltas, the SDKs keep the
    terminal copy: when they differ (trimmed whitespace, a lost last delta, text only in done)
    different clients show different answers.
    """
    for item in ctx.analysis.items.values():
        for part in item.parts.values():
            expected = "".join(part.deltas)
            for what, index, pointer, value in _part_copies(ctx, item, part):
                if value != expected:
                    yield Issue(
                        f"item {item.id!r} {part.kind} part {part.index}: {what} differs from the concatenated deltas",
                        index,
                        pointer=pointer,
                        expected=_clip(expected),
                        actual=_clip(value) if isinstance(value, str) else value,
                    )
                    break


@check("integrity.arguments_concat", classes=("T4",))
def arguments_concat(ctx: Context) -> Iterator[Issue]:
    """Function-call argument deltas, concatenated, equal ``function_call_arguments.done``, the item and the terminal output.

    Clients that build arguments from deltas and those that read ``done`` must run the same
    tool call; cumulative snapshots sent as deltas produce invalid JSON (``Unexpected end of
    JSON input`` in the Agents SDK).
    """
    for item in ctx.analysis.items.values():
        if item.type != "function_call":
            continue
        expected = "".join(item.arg_deltas)
        copies: list[tuple[str, int | None, str, Any]] = []
        if item.args_done_at is not None:
            copies.append(("`function_call_arguments.done`", item.args_done_at, "/arguments", item.args_done))
        if item.done is not None:
            copies.append(("the item in `output_item.done`", item.done_at, "/item/arguments", item.done.get("arguments")))
        final, term_index, at = _terminal_item(ctx, item)
        if final is not None:
            copies.append(("the terminal output", term_index, f"/response/output/{at}/arguments", final.get("arguments")))
        for what, index, pointer, value in copies:
            if value != expected:
                yield Issue(
                    f"function_call {item.id!r}: {what} differs from the concatenated argument deltas",
                    index,
                    pointer=pointer,
                    expected=_clip(expected),
                    actual=_clip(value) if isinstance(value, str) else value,
                )
                break


@check("integrity.terminal_output", classes=("R1",))
def terminal_output(ctx: Context) -> Iterator[Issue]:
    """The terminal response's ``output`` equals the ``output_item.done`` items, in order.

    openai-python and openai-node take ``completed.response.output`` as the final truth: an
    empty or partial list loses the answer (OpenClaw: ``Agent couldn't generate a response``,
    langchainjs: ``Cannot read properties of undefined``), while Codex and the AI SDK use the
    done items — two clients, two answers.
    """
    term = ctx.analysis.terminal
    if term is None or term.data is None:
        return
    resp = term.data.get("response")
    out = resp.get("output") if isinstance(resp, dict) else None
    # ``output`` is in output_index order (the order items were added), whatever order they closed in.
    done_items = [item.done for item in sorted(ctx.analysis.items.values(), key=lambda i: i.ordinal) if item.done is not None]
    if not isinstance(out, list):
        yield Issue("the terminal response has no `output` array", term.index, pointer="/response/output", expected=f"{len(done_items)} items", actual=out)
        return
    if len(out) != len(done_items):
        yield Issue(
            f"the terminal output has {len(out)} items; {len(done_items)} were streamed with `output_item.done`",
            term.index,
            pointer="/response/output",
            expected=len(done_items),
            actual=len(out),
        )
        return
    for i, (final, done) in enumerate(zip(out, done_items, strict=False)):
        diff = _first_difference(done, final)
        if diff:
            where, want, got = diff
            yield Issue(
                f"terminal output item {i} differs from the `output_item.done` item at {where}",
                term.index,
                pointer=f"/response/output/{i}{where}",
                expected=_clip(want) if isinstance(want, str) else want,
                actual=_clip(got) if isinstance(got, str) else got,
            )
