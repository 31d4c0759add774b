"""The bug-class catalog the checks cite (``@check(classes=...)``), shipped with the package.

Each class names one way real Responses-over-Chat translators broke real clients; a check's
``classes`` and a reference fault's class are ids of this table, so ``responses-conformance
classes ID`` explains a finding without any document outside the package. Summaries are the
project's own condensed wording of its research notes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUG_CLASSES", "BugClass", "bug_class"]


@dataclass(frozen=True)
class BugClass:
    """One catalog entry: id (``S1``), title, what goes wrong, and which clients it broke."""

    id: str
    title: str
    summary: str
    clients: str


def _c(id: str, title: str, summary: str, clients: str) -> BugClass:
    return BugClass(id, title, " ".join(summary.split()), " ".join(clients.split()))


_ALL = (
    _c("S1", "No terminal event",
       """The stream stops (EOF, or only a [DONE] sentinel) without response.completed,
       response.incomplete or response.failed: an upstream cut, an error swallowed after the 200
       was committed, an idle timeout, or a chat upstream that closes without finish_reason.""",
       "Codex reports 'stream closed before response.completed' and retries (billing again); SDKs "
       "take the truncated text as the final answer."),
    _c("S2", "Deltas without an open item or part",
       """Text, argument or reasoning deltas arrive before any output_item.added or
       content_part.added that would open their item and part; some streams skip straight from
       created to done events.""",
       "Codex: 'OutputTextDelta without active item'; SDK state machines drop the text and show "
       "no content; tool calls present only in the terminal output never run."),
    _c("S3", "Missing closing events",
       """An item or part is opened but never closed: no output_text.done, content_part.done,
       output_item.done or function_call_arguments.done before the terminal event.""",
       "Clients that register tool calls on output_item.done never run them; clients reading "
       "arguments from the done event see '{}'."),
    _c("S4", "Interleaved or out-of-order items",
       """A new item is added before the previous one is done, done events come out of
       output_index order, or a reasoning item follows the message it belongs before.""",
       "Reasoning state (encrypted content) is lost; strict SDKs drop the late item or reject "
       "the stream."),
    _c("S5", "Wrong SSE framing or protocol",
       """/v1/responses streams chat.completion.chunk frames, an event: line disagrees with the
       data's type, stream:true is answered with one JSON body, or frames lack the expected
       framing.""",
       "Parsers that route on event: names miss the terminal event or every frame: empty answer, "
       "zero usage, 'stream closed before response.completed'."),
    _c("S6", "Mid-stream upstream error mis-signalled",
       """An upstream failure after the 200 becomes a chat-style error frame without type or
       sequence_number, error text inside the assistant's output, or an error event after a
       successful terminal, instead of response.failed.""",
       "Zed fails on 'missing field type' and hides the real error; Codex retries an answer it "
       "already received in full."),
    _c("S7", "Non-OpenAI HTTP error envelopes or statuses",
       """Error responses with {"detail": ...}, an empty or HTML body, 500 for a malformed request,
       or a 200 event stream for a failure that happened before the first byte.""",
       "openai-node and Factory Droid show '4xx status code (no body)'; Codex mislabels the "
       "provider's error."),
    _c("R1", "Terminal response with empty or partial output",
       """response.completed carries output: [] (or none, or only some items) although items
       were streamed; the terminal output must list exactly the items that were done.""",
       "OpenClaw 'couldn't generate a response', langchainjs TypeError on output.map, Open WebUI "
       "loses the reply, tool calls never run."),
    _c("R3", "Incomplete lifecycle response objects",
       """The response object in created, in_progress or the terminal event (or the non-stream
       body) lacks required fields such as created_at, model, output, id or usage, or carries the
       wrong status.""",
       "Strict decoders (Grok CLI, goose, Codex, async-openai) fail the whole turn on 'missing "
       "field created_at' or 'id'."),
    _c("R4", "Items or parts missing required fields",
       """Output items without status, content: [] or summary: [] when added; output_text parts
       without text or annotations; function calls without status.""",
       "Codex cannot parse the added item and then rejects every delta; Grok CLI fails on "
       "'missing field annotations'."),
    _c("R5", "Non-streaming body wrong",
       """With stream:false the body reports success but its output is empty or differs from
       what the stream's terminal event would carry; a top-level output_text, when present, does
       not match the message text.""",
       "Clients see an empty answer only in non-stream mode; SDK convenience text is empty."),
    _c("I1", "sequence_number missing, gapped or not increasing",
       """Some events (often synthesized error or failed events) lack sequence_number, a zero is
       dropped by omitempty, counters restart, or a proxy's edits leave gaps; it must start at 0
       and grow by one.""",
       "Grok CLI aborts the turn on 'missing field sequence_number'; strict parsers reject gaps."),
    _c("I2", "item_id correlation broken",
       """Delta and done events carry an item_id other than the id of the item that was added
       (a call_id, a fresh id per event, or an empty one).""",
       "Clients attach the text or arguments to no item, or to the wrong one."),
    _c("I3", "id and call_id confused",
       """A function call's id and call_id are swapped or equal, the call_id is re-minted instead
       of the upstream tool call id, or the item id lacks its usual prefix.""",
       "The tool output of the next turn refers to a call the proxy cannot match; the "
       "conversation breaks on the second turn."),
    _c("I4", "output_index or content_index missing or wrong",
       """Indices are omitted on item, part or text events, allocated twice, or point past the
       item's parts.""",
       "Clients place text in the wrong item or part, or reject the event."),
    _c("T1", "Tool call leaked as text",
       """The model's tool-call markup is streamed as output_text instead of becoming a
       function_call item (often only on the streaming path).""",
       "The agent shows raw markup and never runs the tool."),
    _c("T2", "Fragmented tool-call header",
       """The upstream sends a tool call's id and name late, empty or split over chunks, and the
       proxy opens the function_call item with an empty or partial name or lets a later empty name
       overwrite it.""",
       "AI SDK: 'Expected function.name to be a string'; the tool cannot be dispatched."),
    _c("T4", "Argument accumulation wrong",
       """function_call_arguments.done differs from the concatenated deltas: cumulative snapshots
       sent as deltas, arguments only in the done event ignored, or '' for a tool without
       parameters.""",
       "Tools run with '{}' or with duplicated, invalid JSON arguments."),
    _c("T5", "Non-function tools rejected or mangled",
       """Request tools of type custom, web_search, namespace or mcp are refused with 400, dropped
       silently, or a custom tool comes back as a function_call with JSON-wrapped input.""",
       "Codex's apply_patch is unusable: every request refused, or the model prints the patch as "
       "text."),
    _c("X2", "Delta text and done text disagree",
       """The done text of a part, item or terminal output is not the concatenation of its deltas
       (trimmed whitespace, corrupted deltas, or text only in the done event).""",
       "Clients that render deltas show something other than what they store."),
    _c("RS1", "Reasoning dropped or mis-channelled in the output",
       """The upstream's reasoning_content (or reasoning/thinking) is ignored, streamed as message
       text, sent before any item exists, or opened with the wrong events.""",
       "Reasoning models look silent or leak their thinking into the answer."),
    _c("RS2", "Reasoning input items not translated",
       """Reasoning items in the request are refused (omitted summary, encrypted_content) or
       dropped, so thinking-mode chat upstreams reject the assistant tool-call turns that lack
       their reasoning_content.""",
       "Multi-turn tool use fails on the second request."),
    _c("U1", "Usage missing, zero or incomplete",
       """The trailing usage chunk is skipped, the terminal event is sent before it arrives,
       include_usage is never requested, or the token details are absent or zero.""",
       "Context counters stay at zero; Codex retries when reasoning_tokens is missing."),
    _c("F1", "length not mapped to incomplete",
       """An upstream finish_reason 'length' ends in status 'completed' with no incomplete_details
       instead of response.incomplete with reason max_output_tokens and an incomplete message.""",
       "Agents accept a truncated answer as final (a coding agent settled on an empty patch)."),
    _c("Q1", "System, developer and instructions mis-merged",
       """The developer role is forwarded verbatim, instructions and system or developer items
       become several system messages, instructions are dropped, or system input is refused.""",
       "Chat templates raise 'Unexpected message role' (500) or 'System message must be at the "
       "beginning'; the model ignores its system prompt."),
    _c("Q2", "Function calls and outputs badly turned into chat messages",
       """Tool history is dropped, parallel calls are split into several assistant messages,
       outputs are not next to their call, or a tool message lacks tool_call_id.""",
       "Upstreams reject the request ('assistant message with tool_calls must be followed by tool "
       "messages'); agents loop on the same tool."),
    _c("Q3", "Over-strict input shapes",
       """Documented input shapes are refused: input as a plain string, message items without
       type, assistant output_text parts in history, function_call_output.output as an array.""",
       "Codex aborts with a 400 on its own history; clients' auto-compaction breaks."),
    _c("Q4", "Valid optional parameters rejected or not echoed",
       """A 400 on store, include, metadata, prompt_cache_key, safety_identifier, stream_options,
       truncation and the like, text.format treated as required, or metadata not echoed.""",
       "Factory Droid and Cursor fail on 'Unsupported parameter'; Codex on a required text.format."),
    _c("Q5", "Structured output format dropped",
       """text.format json_schema or json_object is not translated to the chat response_format;
       the request succeeds with prose.""",
       "responses.parse and Agents SDK output types fail; strict schemas go unenforced."),
    _c("Q7", "previous_response_id and store semantics",
       """previous_response_id is refused, silently ignored (the answer lacks the earlier
       context), or stored responses cannot be found.""",
       "Context is lost silently, or the second turn errors out."),
    _c("X", "Other stream defects",
       """Defects outside the named classes that still break a reader: stalls, endless streams,
       cut connections, unparseable lines, unknown event types, statuses that disagree, buffered
       deltas, missing sentinels a profile requires.""",
       "Clients hang, time out, or fail to parse the stream."),
)

BUG_CLASSES: dict[str, BugClass] = {c.id: c for c in _ALL}


def bug_class(class_id: str) -> BugClass | None:
    """The entry for ``class_id`` (case-insensitive), or None."""
    return BUG_CLASSES.get(class_id.strip().upper())
