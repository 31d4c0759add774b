"""Profiles as data: which rules apply, and how severe a finding is, under each profile.

* ``openai`` (the default): what OpenAI's API does and its SDKs expect. Where the client lab
  measured a check (``conformance/clients/impact.json``, written by ``responses-conformance
  clients lab``), its severity comes from that table, per defect kind where the finding's JSON
  pointer tells which (:func:`default_severity`, :func:`finding_severity`): a tested client in
  its default configuration raises or loses data → error; only an opt-in mode
  (``_strict_response_validation``) breaks → warning; no tested client breaks → info (a note).
  Checks the lab does not cover keep their own ``severity``.
* ``open-responses``: the Open Responses spec (``shared/specs``): the same rules, plus the
  spec's own (``data: [DONE]`` ends a stream, ``error`` events nest an ``error`` object,
  reasoning text events are ``response.reasoning.*``); checks that exist only for OpenAI's
  dialect do not apply.
* ``lenient``: only what breaks a real client is an error. :data:`LENIENT` is that judgement,
  one line per check, with the client that breaks (from ``shared/clients.md``: ERR = the client
  raises, LOSS = it silently loses or misreports data). Everything else is a warning or a note.
* ``strict``: every rule of ``openai`` at error, including advisory ones (``items.sequential``).

A check's ``profiles=`` in ``@check`` sets the other columns; ``responses-conformance checks``
prints the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance.exchange import FindingImpact, Severity

__all__ = ["DEFAULT_PROFILE", "LENIENT", "default_severity", "finding_impact", "finding_severity"]

DEFAULT_PROFILE = "openai"
_LEVELS = {"error": "error", "warning": "warning", "note": "info"}


def default_severity(check_id: str, base: Severity | None) -> Severity | None:
    """The default profile's severity of a check: the worst impact over the defects the lab
    wrote for it; ``base`` when the lab has none (or the check is not part of the profile)."""
    if base is None:
        return None
    from conformance.exchange import Severity
    from conformance.impact import impact_for

    impact = impact_for(check_id)
    return base if impact is None else Severity(_LEVELS[impact.level])


def finding_severity(check_id: str, profile: str, severity: Severity, pointer: str | None, message: str = "") -> Severity:
    """One finding's severity: under the default profile, the impact of the defect kind its
    pointer (or message kind) names (a missing ``cache_write_tokens`` is not a missing
    ``created_at``)."""
    if profile != DEFAULT_PROFILE:
        return severity
    from conformance.exchange import Severity
    from conformance.impact import finding_key, impact_for

    key = finding_key(pointer, message)
    if not key:
        return severity
    impact = impact_for(check_id, key)
    return severity if impact is None else Severity(_LEVELS[impact.level])

def finding_impact(check_id: str, pointer: str | None, message: str, rule: str) -> FindingImpact | None:
    """A finding's impact as the lab measured it (``impact.json``); None for checks it does not
    cover. A run with ``--clients`` replaces it with what the replay measured."""
    from conformance.exchange import FindingImpact
    from conformance.impact import impact_of_finding

    impact = impact_of_finding(check_id, pointer, message, rule=rule)
    if impact is None:
        return None
    verdicts = {client: "ok" for client in impact.clients_tested}
    for b in sorted((*impact.breaks, *impact.opt_in_breaks), key=lambda b: b.verdict != "ERR", reverse=True):
        verdicts[b.client] = b.verdict  # ERR last, so it wins over LOSS
    return FindingImpact(impact.level, tuple(impact.clients), impact.summary, "table", verdicts)


# check id -> (severity under lenient or None, which real client breaks and how)
LENIENT: dict[str, tuple[str | None, str]] = {
    # transport and HTTP
    "transport.connect": ("error", "nothing can be exchanged at all"),
    "transport.timeout": ("error", "Codex: `idle timeout waiting for SSE`, retried and re-billed"),
    "transport.cap": ("error", "every client hangs on an endless stream"),
    "transport.clean_close": ("error", "Codex: `stream disconnected before completion`"),
    "http.status_ok": ("error", "every SDK raises on an unexpected status"),
    "http.content_type": ("warning", "all seven clients parse SSE labelled application/json"),
    "upstream.matched": ("error", "the conversation the model sees is not the client's"),
    "upstream.called": ("error", "the answer the client gets never came from the model"),
    # framing and schema
    "sse.framing": ("warning", "CRLF, comments and pings pass every client; an unterminated last event is lost by browsers only"),
    "sse.data_json": ("error", "ERR in openai-python, openai-node, AI SDK, LangChain, Agents SDK"),
    "sse.event_name_matches_type": ("warning", "no tested client routes on the `event:` name"),
    "sse.done_after_terminal": ("error", "the SDKs stop at [DONE] and never see the terminal event"),
    "schema.known_event_type": ("error", "ERR: openai-node responses.stream() throws (assertNever); async-openai yields Err items"),
    "schema.event": ("error", "ERR: missing output_index (py/node stream()), missing item_id (AI SDK)"),
    "schema.response": ("error", "ERR: LangChain TypeError on a Response without output; Codex needs id"),
    "schema.item": ("error", "LOSS: Codex drops an item it cannot parse; ERR: AI SDK on items without id"),
    "schema.usage_details": ("info", "no tested client reads cache_write_tokens; valid upstreams have nothing to fill it with"),
    "schema.part": ("error", "ERR: async-openai and Grok CLI require annotations"),
    "seq.present": ("error", "ERR: async-openai, Grok CLI (`missing field sequence_number`)"),
    "seq.monotonic": ("warning", "no tested client checks the order of sequence numbers"),
    # lifecycle, ids, items
    "lifecycle.created_first": ("error", "ERR: openai-python and openai-node responses.stream()"),
    "lifecycle.in_progress_second": ("info", "no client needs response.in_progress"),
    "lifecycle.initial_status": ("warning", "no tested client reads the initial status"),
    "lifecycle.terminal_present": ("error", "ERR: Codex, Agents SDK, py stream(); LOSS: node stream(), AI SDK, LangChain"),
    "lifecycle.single_terminal_last": ("error", "Codex 0.155 retried a fully delivered answer on a trailing error frame"),
    "lifecycle.terminal_status": ("warning", "clients branch on the event type, which is right"),
    "lifecycle.echo_consistent": ("warning", "clients act on the setting they read first; a chatcmpl- id sent back as previous_response_id is refused"),
    "ids.response_id_stable": ("error", "ERR: openai-python stream(): `Lifecycle response identity changed`"),
    "ids.item_id_stable": ("error", "LOSS: AI SDK leaves a dangling part; ERR: openai-python identity check"),
    "ids.prefixes": ("info", "only clients that replay items to OpenAI itself are refused"),
    "ids.call_id": ("error", "ERR: openai-python stream(), AI SDK, Agents SDK; LOSS: Codex drops the tool call"),
    "items.event_targets_open_item": ("error", "ERR: py/node stream(); LOSS: AI SDK text, Codex live text"),
    "items.event_targets_open_part": ("error", "ERR: py/node stream() IndexError"),
    "items.closed_once": ("error", "LOSS: AI SDK and Codex never run a tool whose item is not done"),
    "items.no_delta_after_done": ("error", "LOSS: clients that show deltas and those that keep the done text show different answers"),
    "items.close_order": ("warning", "no tested client fails on the close order alone"),
    "items.sequential": (None, "interleaving is legal; only strict single-item clients (pi) suffer"),
    "indices.output_index_dense": ("error", "ERR: openai-node stream() `missing output at index N`"),
    "indices.content_index_dense": ("error", "ERR: py/node stream() IndexError"),
    "integrity.text_concat": ("error", "LOSS: Codex shows the done text, other clients the deltas"),
    "integrity.arguments_concat": ("error", "LOSS: LangChain runs the tool with delta args, the AI SDK with done args"),
    "integrity.terminal_output": ("error", "LOSS: py/node stream() final output empty"),
    # oracle: the proxy kept what upstream said
    "oracle.text": ("error", "LOSS: every client shows a different answer from the model's"),
    "oracle.reasoning": ("info", "Codex and OpenCode show no reasoning; the answer itself is intact"),
    "oracle.tool_calls": ("error", "LOSS: the agent runs the wrong tool, wrong arguments, or attaches the result to nothing"),
    "oracle.incremental": ("warning", "the user sees nothing until the end; a long answer looks stalled"),
    "oracle.limit_reached_incomplete": ("error", "LOSS: pi.dev settles a truncated answer as complete"),
    "oracle.status": ("error", "LOSS: pi.dev settles a truncated answer as complete (`completed` for `length`)"),
    "oracle.usage": ("error", "ERR: Codex on usage without total_tokens; LOSS: zero context counters in OpenCode/Codex"),
    "oracle.error_relayed": ("warning", "the client errors either way; only the reason is lost"),
    # translation: the proxy sent what the client asked
    "translation.system_message": ("error", "upstreams reject `developer` or a second system message (DeepSeek, Qwen templates): every Codex turn fails"),
    "translation.messages": ("error", "LOSS: the model answers a different conversation"),
    "translation.tool_history": ("error", "upstreams reject split or orphaned tool messages (Gemini, DeepSeek, vLLM templates); tool loops never end"),
    "translation.tools": ("error", "LOSS: the model cannot call the tool; upstreams reject non-function tools"),
    "translation.tool_choice": ("warning", "the model may answer in text where a tool was forced"),
    "translation.sampling": ("warning", "answers vary; nothing breaks"),
    "translation.response_format": ("error", "LOSS: responses.parse() / Agents SDK output_type get prose"),
    "translation.no_additions": ("warning", "an injected max_tokens truncates answers; strict upstreams reject stray tool_call keys"),
    "translation.stream_usage": ("warning", "usage is zero, counters show 0; nothing raises"),
    "translation.no_responses_fields": ("warning", "strict upstreams (vLLM, llama.cpp) reject unknown fields; OpenAI ignores most"),
    "translation.reasoning_history": ("error", "DeepSeek/Kimi thinking mode reject tool-call turns without reasoning_content"),
    "translation.previous_response_id": ("error", "LOSS: context silently lost; the model answers without history"),
    # error paths and request tolerance
    "errors.envelope": ("warning", "openai-node/Droid say `400 status code (no body)`: still an error, the reason is lost"),
    "errors.no_error_event_on_healthy_stream": ("error", "ERR: every SDK helper, the AI SDK, LangChain and the Agents SDK abort a good answer"),
    "request.valid_input_accepted": ("error", "a client that replays its history (Codex, IDEs) can never recover from a 4xx"),
    # stream: false
    "nonstream.body_is_response": ("error", "ERR: typed clients cannot build the Response"),
    "nonstream.matches_stream": ("error", "LOSS: non-stream callers get a different answer from streaming ones"),
    "nonstream.output_text": ("warning", "the SDKs compute output_text themselves; only raw readers are misled"),
    # dialects: open-responses only, or OpenAI only
    "dialect.done_sentinel_sent": (None, "Open Responses only"),
    "dialect.error_event_nested": (None, "Open Responses only"),
    "dialect.reasoning_events_spec_names": (None, "Open Responses only"),
    "dialect.reasoning_events_sdk_names": ("error", "ERR: openai-node responses.stream() throws on response.reasoning.* (unknown to the SDK)"),
}
