"""Dialect checks: where the OpenAI API and the Open Responses spec name things differently.

Each applies under one side only (``profiles=``): Open Responses ends a stream with
``data: [DONE]``, nests the payload of an ``error`` event in ``error`` and calls reasoning text
events ``response.reasoning.*``; the OpenAI SDKs know ``response.reasoning_text.*`` and not the
spec's names. Reasoning sent as a summary (``response.reasoning_summary_*``) is valid in both.
"""

from __future__ import annotations

from collections.abc import Iterator

from conformance.checks._registry import Context, Issue, check

_SPEC_ONLY = {"openai": None, "strict": None, "open-responses": "error"}
_SPEC_REASONING = {"response.reasoning_text.delta": "response.reasoning.delta", "response.reasoning_text.done": "response.reasoning.done"}


@check("dialect.done_sentinel_sent", classes=("S5",), profiles=_SPEC_ONLY)
def done_sentinel_sent(ctx: Context) -> Iterator[Issue]:
    """Open Responses: the stream ends with ``data: [DONE]`` after the terminal event.

    The spec's streaming contract closes with the sentinel; clients written to the spec wait
    for it. (OpenAI's own API does not send it, so this applies to the ``open-responses``
    profile only.)
    """
    a = ctx.analysis
    if not a.terminal_indices:
        return
    if not any(i > a.terminal_indices[0] for i in a.done_indices):
        yield Issue("no `data: [DONE]` after the terminal event", a.terminal_indices[0], expected="data: [DONE]")


@check("dialect.error_event_nested", classes=("S6",), profiles=_SPEC_ONLY)
def error_event_nested(ctx: Context) -> Iterator[Issue]:
    """Open Responses: an ``error`` event carries ``{"error": {"type", "code", "message", "param"}}``.

    The spec's ``ErrorStreamingEvent`` nests the payload; the flat shape openai-python models
    (``message``/``code`` at the top) is not the spec's.
    """
    for ev in ctx.analysis.of_types("error"):
        if ev.data is None:
            continue
        err = ev.data.get("error")
        if not isinstance(err, dict) or not isinstance(err.get("message"), str):
            yield Issue("an `error` event without a nested `error` object", ev.index, pointer="/error", expected={"error": {"type": "…", "code": "…", "message": "…", "param": None}}, actual=err)


@check("dialect.reasoning_events_spec_names", classes=("RS1",), profiles=_SPEC_ONLY)
def reasoning_events_spec_names(ctx: Context) -> Iterator[Issue]:
    """Open Responses: reasoning text streams as ``response.reasoning.delta``/``.done`` (or as a summary), not ``response.reasoning_text.*``.

    The spec has no ``reasoning_text`` events; a client generated from it does not know them.
    """
    for ev in ctx.analysis.of_types(*_SPEC_REASONING):
        if ev.type in _SPEC_REASONING:
            yield Issue(f"`{ev.type}` is not an Open Responses event; the spec calls it `{_SPEC_REASONING[ev.type]}`", ev.index, pointer="/type", expected=_SPEC_REASONING[ev.type], actual=ev.type)


@check("dialect.reasoning_events_sdk_names", classes=("RS1",), profiles={"open-responses": None})
def reasoning_events_sdk_names(ctx: Context) -> Iterator[Issue]:
    """OpenAI: reasoning text streams as ``response.reasoning_text.*`` (or as a summary), not the Open Responses names ``response.reasoning.*``.

    The OpenAI SDKs do not know ``response.reasoning.delta``: openai-node's ``responses.stream()``
    throws on an unknown event type and the reasoning is lost everywhere else.
    """
    for ev in ctx.analysis.of_types("response.reasoning.delta", "response.reasoning.done"):
        if ev.type in ("response.reasoning.delta", "response.reasoning.done"):
            sdk = ev.type.replace("response.reasoning.", "response.reasoning_text.")
            yield Issue(f"`{ev.type}` is Open Responses' name; OpenAI's SDKs know `{sdk}`", ev.index, pointer="/type", expected=sdk, actual=ev.type)
