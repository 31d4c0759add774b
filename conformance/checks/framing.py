"""SSE framing checks: is this a well-formed event stream of Responses events?"""

from __future__ import annotations

from collections.abc import Iterator

from conformance.checks._registry import Context, Issue, check


@check("sse.framing", classes=("S5",))
def framing(ctx: Context) -> Iterator[Issue]:
    """The bytes are a well-formed SSE stream.

    Reports what a WHATWG-compliant parser silently drops or repairs: a final event without its
    blank line (browsers and several SDKs discard it, and with it possibly the terminal event),
    unknown field names such as llama.cpp's old ``error:`` field, ``event:`` blocks with no data,
    and bytes that are not UTF-8.
    """
    for issue in ctx.analysis.framing:
        yield Issue(f"{issue.kind}: {issue.message} (line {issue.line_no})", event_index=issue.event_index)


@check("sse.data_json", classes=("S5", "S6"))
def data_json(ctx: Context) -> Iterator[Issue]:
    """Every ``data:`` payload, except a trailing ``[DONE]``, is a JSON object with a string ``type``.

    A non-JSON line makes openai-python, openai-node, the AI SDK, LangChain and the Agents SDK
    raise; a raw ``chat.completion.chunk`` or a chat-style ``{"error": ...}`` has no ``type`` and
    is dropped or crashes typed clients (Zed: ``missing field `type```).
    """
    odd = [e for e in ctx.analysis.events if e.type is None and not e.done_sentinel]
    for ev in odd:
        if ev.data is None:
            yield Issue(f"data is {ev.json_error}", ev.index, actual=ev.sse.data[:200])
        elif ev.type is None:
            hint = " (a Chat Completions chunk)" if ev.data.get("object") == "chat.completion.chunk" else ""
            if "error" in ev.data and "type" not in ev.data:
                hint = " (a chat-style error object)"
            yield Issue(f"JSON event without a string `type`{hint}", ev.index, pointer="/type", actual=ev.data.get("type"))


@check("sse.event_name_matches_type", classes=("S5",))
def event_name_matches_type(ctx: Context) -> Iterator[Issue]:
    """When an ``event:`` line is present, it equals the JSON ``type``.

    Clients that route on the SSE event name (several gateways, hand-written parsers) would
    treat a mislabelled terminal event as something else and report the stream as closed
    before ``response.completed``. Omitting ``event:`` lines is allowed.
    """
    named = [e for e in ctx.analysis.events if e.sse.event is not None and e.type is not None and e.sse.event != e.type]
    for ev in named:
        yield Issue(
            f"`event: {ev.sse.event}` but data.type is {ev.type!r}",
            ev.index,
            expected=ev.type,
            actual=ev.sse.event,
        )


@check("sse.done_after_terminal", classes=("S1", "S5"))
def done_after_terminal(ctx: Context) -> Iterator[Issue]:
    """``data: [DONE]`` is optional, but only after the terminal event, and nothing follows it.

    The openai SDKs stop reading at ``[DONE]``: a sentinel before ``response.completed`` ends
    the stream early and the client never sees the terminal event or usage.
    """
    a = ctx.analysis
    first_terminal = a.terminal_indices[0] if a.terminal_indices else None
    for index in a.done_indices:
        if first_terminal is None or index < first_terminal:
            yield Issue(
                "`data: [DONE]` before any terminal event (response.completed/incomplete/failed)",
                index,
            )
    if a.done_indices:
        last_done = a.done_indices[0]
        for ev in a.events[last_done + 1 :]:
            if not ev.done_sentinel:
                yield Issue(f"an event after `data: [DONE]` (clients stop reading at [DONE]): {ev.type or ev.sse.data[:80]!r}", ev.index)
