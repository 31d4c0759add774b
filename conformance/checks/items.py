"""Item and part lifecycle checks, read from the one-pass state machine in :mod:`conformance.stream`."""

from __future__ import annotations

from collections.abc import Iterator

from conformance.checks._registry import Context, Issue, check


def _anomalies(ctx: Context, *kinds: str) -> Iterator[Issue]:
    for a in ctx.analysis.of_kind(*kinds):
        yield Issue(a.message, a.event_index, pointer=a.pointer, expected=a.expected, actual=a.actual)


@check("items.event_targets_open_item", classes=("S2", "I2"))
def event_targets_open_item(ctx: Context) -> Iterator[Issue]:
    """Every item-scoped event refers to an item that ``output_item.added`` opened and that is not yet done.

    Its ``output_index`` and ``item_id`` must both point at that item, and the event must suit
    the item's type (text deltas to a message, argument deltas to a function call). Codex logs
    ``OutputTextDelta without active item`` and drops the text; the SDK stream helpers raise;
    the AI SDK loses text whose ``item_id`` is unknown.
    """
    yield from _anomalies(ctx, "target_unknown", "target_closed", "target_id_mismatch", "target_type_mismatch")


@check("items.event_targets_open_part", classes=("S2", "I4"))
def event_targets_open_part(ctx: Context) -> Iterator[Issue]:
    """Text, refusal and reasoning deltas refer to a part opened by ``content_part.added`` (or ``reasoning_summary_part.added``) and not yet done.

    openai-python's and openai-node's ``responses.stream()`` index the item's content list by
    ``content_index``: a delta for a part never opened raises ``IndexError``.
    """
    yield from _anomalies(ctx, "part_unknown", "part_closed")


@check("items.closed_once", classes=("S3",))
def closed_once(ctx: Context) -> Iterator[Issue]:
    """Every opened item, part and text is closed exactly once before the terminal event, and nothing is closed that was not opened.

    Clients that register tool calls on ``output_item.done`` (Codex, the AI SDK) never run a
    tool whose item is not closed; a second ``done`` duplicates it.
    """
    yield from _anomalies(ctx, "never_closed", "double_close", "done_without_added", "double_open")


@check("items.no_delta_after_done", classes=("S3", "X2"))
def no_delta_after_done(ctx: Context) -> Iterator[Issue]:
    """No text or argument delta follows the ``output_text.done`` (``refusal.done``, reasoning ``*.done``) or ``function_call_arguments.done`` that confirmed it, not even an empty one.

    Clients that show the deltas append the late text, clients that keep the ``done`` text do
    not: two answers. The SDK stream helpers have already finalised the part, and Codex has
    handed the call's arguments to the tool. The finding points at the late delta.
    """
    yield from _anomalies(ctx, "delta_after_done")


@check("items.close_order", classes=("S3",))
def close_order(ctx: Context) -> Iterator[Issue]:
    """An item's own events close in order: text ``*.done`` → ``content_part.done`` → ``output_item.done``; ``function_call_arguments.done`` before the call's ``output_item.done``.

    Clients finalise a part on ``content_part.done`` and the item on ``output_item.done``; a
    part closed after its item (or arguments confirmed after the call) reaches a finished item.
    """
    yield from _anomalies(ctx, "close_order")


@check("items.sequential", classes=("S4",), severity="info", profiles={"strict": "error", "lenient": None})
def sequential(ctx: Context) -> Iterator[Issue]:
    """Items are strictly sequential: item *n+1* is added only after item *n* is done.

    Interleaving is legal on the wire, but a proxy translating one Chat Completions choice has
    no reason to do it, and clients that keep a single "current item" (pi, several SDK state
    machines) lose or misplace output. A finding only under the ``strict`` profile.
    """
    yield from _anomalies(ctx, "interleaved")


@check("indices.output_index_dense", classes=("I4",))
def output_index_dense(ctx: Context) -> Iterator[Issue]:
    """``output_item.added`` events carry output_index 0, 1, 2, … in order, each used once.

    openai-node appends added items to an array and looks later events up by ``output_index``:
    a gap or an off-by-one raises ``missing output at index N``; openai-python raises on a
    duplicate index.
    """
    yield from _anomalies(ctx, "output_index_gap", "duplicate_output_index")


@check("indices.content_index_dense", classes=("I4",))
def content_index_dense(ctx: Context) -> Iterator[Issue]:
    """Within an item, parts are opened with content_index (or summary_index) 0, 1, 2, … in order.

    The SDK helpers store parts in a list and index it by ``content_index``; a part announced at
    index 1 of a one-part message makes every later delta an ``IndexError``.
    """
    yield from _anomalies(ctx, "content_index_gap")
