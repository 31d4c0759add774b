"""Translation checks on crafted chat requests: the reference bridge's translation passes every rule,
each mutation breaks exactly one; plus placeholders, expected statuses and the profile table."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from conformance.cassette import parse_cassette
from conformance.checks import PROFILES, REGISTRY, Context, run_checks
from conformance.checks._profiles import LENIENT
from conformance.checks._registry import status_matches
from conformance.checks.translation import same_text
from conformance.exchange import Chunk, Exchange
from conformance.harness import Harness, PlaceholderError, resolve_placeholders
from conformance.reference._translate import to_chat

Chat = dict[str, Any]
TOOL = {"type": "function", "name": "get_weather", "description": "Weather.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True}
HISTORY: dict[str, Any] = {
    "model": "m",
    "instructions": "Be brief.",
    "input": [
        {"role": "developer", "content": "Use metric units."},
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "User is in Oslo."}]},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo and Bergen?"}, {"type": "input_image", "image_url": "https://x/y.png"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Two calls."}], "content": None, "encrypted_content": "opaque"},
        {"type": "function_call", "id": "fc_1", "call_id": "call_A", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
        {"type": "function_call", "id": "fc_2", "call_id": "call_B", "name": "get_weather", "arguments": '{"city": "Bergen"}'},
        {"type": "function_call_output", "call_id": "call_B", "output": "7C"},
        {"type": "function_call_output", "call_id": "call_A", "output": [{"type": "input_text", "text": "4"}, {"type": "output_text", "text": "C"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Oslo 4C, Bergen 7C."}, {"type": "refusal", "refusal": "No more."}]},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "stream": True,
    "tools": [TOOL, {"type": "web_search"}, {"type": "custom", "name": "apply_patch"}, {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "inner"}]}],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "parallel_tool_calls": False,
    "max_output_tokens": 99,
    "temperature": 0.3,
    "top_p": 0.8,
    "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}},
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "k",
    "metadata": {"a": "b"},
}


def cassette(request: dict[str, Any], **expect: Any) -> Any:
    turn: dict[str, Any] = {"request": request, "upstream": [{"status": 200, "headers": {"content-type": "text/event-stream"}, "chunks": [{"t_ms": 0, "data": "data: [DONE]\n\n"}]}]}
    if expect:
        turn["expect"] = expect
    return parse_cassette({"format": 1, "id": "tr", "description": "d", "tags": [], "provenance": {"source": "authored", "backend": "x"}, "turns": [turn]})


def fired(request: dict[str, Any], chat: Chat, *, status: int = 200, body: bytes = b"", **expect: Any) -> set[str]:
    ex = Exchange("t", 0, "http://127.0.0.1:1/v1/responses", request, status=status, headers={"content-type": "application/json"}, chunks=[Chunk(0, body)] if body else [])
    ex.upstream_requests = [{"body": chat, "turn": 0, "interaction": 0}]
    c = cassette(request, **expect)
    results = run_checks(ex, profile="strict", select=["translation"], context=Context(ex, cassette=c, turn=c.turns[0]))
    return {cid for cid, o in results.items() if o.findings}


def clean(request: dict[str, Any] = HISTORY) -> Chat:
    return to_chat(copy.deepcopy(request))


def test_reference_translation_passes_every_rule() -> None:
    chat = clean()
    assert fired(HISTORY, chat, translation={"require": ["reasoning_content"]}) == set()
    assert chat["messages"][0]["role"] == "system" and chat["messages"][2]["tool_calls"][1]["id"] == "call_B"
    simple = {"model": "m", "input": "hi", "stream": True}
    assert fired(simple, clean(simple)) == set()


def msgs(chat: Chat) -> list[dict[str, Any]]:
    return list(chat["messages"])


def m(fn: Callable[[Chat], Any]) -> Chat:
    chat = clean()
    fn(chat)
    return chat


def _split_calls(chat: Chat) -> None:
    out = []
    for msg in chat["messages"]:
        if msg.get("tool_calls") and len(msg["tool_calls"]) > 1:
            out += [dict(msg, tool_calls=[tc]) for tc in msg["tool_calls"]]
        else:
            out.append(msg)
    chat["messages"] = out


def _move_tool_last(chat: Chat) -> None:
    tool = next(x for x in chat["messages"] if x["role"] == "tool")
    chat["messages"] = [x for x in chat["messages"] if x is not tool] + [tool]


CASES: dict[str, tuple[Chat, set[str]]] = {
    "developer-forwarded": (m(lambda c: c["messages"][0].update(role="developer")), {"translation.system_message"}),
    "second-system": (m(lambda c: c["messages"].insert(1, {"role": "system", "content": "x"})), {"translation.system_message"}),
    "instructions-dropped": (m(lambda c: c["messages"][0].update(content=c["messages"][0]["content"].replace("Be brief.", ""))), {"translation.system_message"}),
    "system-order": (m(lambda c: c["messages"][0].update(content="User is in Oslo.\nUse metric units.\nBe brief.\nAnswer in French.")), {"translation.system_message"}),
    "mid-developer-dropped": (m(lambda c: c["messages"][0].update(content="Be brief.\n\nUse metric units.\n\nUser is in Oslo.")), {"translation.system_message"}),
    "image-dropped": (m(lambda c: c["messages"][1].update(content="Weather in Oslo and Bergen?")), {"translation.messages"}),
    "history-dropped": (m(lambda c: c.update(messages=[c["messages"][0], c["messages"][-1]])), {"translation.messages", "translation.tool_history"}),
    "user-text-changed": (m(lambda c: c["messages"][-1].update(content="And today?")), {"translation.messages"}),
    "tool-calls-split": (m(_split_calls), {"translation.tool_history"}),
    "tool-message-not-adjacent": (m(_move_tool_last), {"translation.tool_history"}),
    "tool-call-id-missing": (m(lambda c: next(x for x in c["messages"] if x["role"] == "tool").pop("tool_call_id")), {"translation.tool_history"}),
    "tool-output-changed": (m(lambda c: next(x for x in c["messages"] if x["role"] == "tool").update(content="9C")), {"translation.tool_history"}),
    "tool-arguments-changed": (m(lambda c: c["messages"][2]["tool_calls"][0]["function"].update(arguments='{"city":"Rome"}')), {"translation.tool_history"}),
    "function-tool-dropped": (m(lambda c: c.update(tools=[])), {"translation.tools", "translation.tool_choice"}),
    "strict-dropped": (m(lambda c: c["tools"][0]["function"].pop("strict")), {"translation.tools"}),
    "builtin-forwarded": (m(lambda c: c["tools"].append({"type": "web_search"})), {"translation.tools"}),
    "responses-shape-tool": (m(lambda c: c["tools"].append(dict(TOOL))), {"translation.tools"}),
    "tool-choice-dropped": (m(lambda c: c.pop("tool_choice")), {"translation.tool_choice"}),
    "parallel-dropped": (m(lambda c: c.pop("parallel_tool_calls")), {"translation.tool_choice"}),
    "max-tokens-dropped": (m(lambda c: c.pop("max_tokens")), {"translation.sampling"}),
    "temperature-changed": (m(lambda c: c.update(temperature=1.0)), {"translation.sampling"}),
    "response-format-dropped": (m(lambda c: c.pop("response_format")), {"translation.response_format"}),
    "schema-changed": (m(lambda c: c["response_format"]["json_schema"].update(schema={})), {"translation.response_format"}),
    "no-include-usage": (m(lambda c: c.pop("stream_options")), {"translation.stream_usage"}),
    "include-leaked": (m(lambda c: c.update(include=["reasoning.encrypted_content"], truncation="disabled")), {"translation.no_responses_fields"}),
    "reasoning-content-dropped": (m(lambda c: c["messages"][2].pop("reasoning_content")), {"translation.reasoning_history"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mutation_fires_exactly(case: str) -> None:
    chat, expected = CASES[case]
    assert fired(HISTORY, chat, translation={"require": ["reasoning_content"]}) == expected


def test_equivalent_translations_pass() -> None:
    chat = clean()
    chat["messages"][0]["content"] = "Be brief. Use metric units. User is in Oslo. Answer in French."
    assert fired(HISTORY, chat, translation={"require": ["reasoning_content"]}) == set()
    chat = clean()  # mid-conversation developer as a user message
    chat["messages"][0]["content"] = "Be brief.\n\nUse metric units.\n\nUser is in Oslo."
    chat["messages"].insert(-1, {"role": "user", "content": "Answer in French."})
    assert fired(HISTORY, chat) == set()
    chat = clean()  # tool outputs in call order, parts kept as parts, max_completion_tokens
    tools = [x for x in chat["messages"] if x["role"] == "tool"]
    a, b = tools[1], tools[0]
    a["content"] = [{"type": "text", "text": "4"}, {"type": "text", "text": "C"}]
    rest = [x for x in chat["messages"] if x["role"] != "tool"]
    chat["messages"] = [*rest[:3], a, b, *rest[3:]]
    chat["max_completion_tokens"] = chat.pop("max_tokens")
    chat["tools"].append({"type": "function", "function": {"name": "ns__inner"}})
    assert fired(HISTORY, chat) == set()


def test_skip_and_ignore_from_the_cassette() -> None:
    chat = m(lambda c: c.update(include=["x"]))
    assert fired(HISTORY, chat) == {"translation.no_responses_fields"}
    assert fired(HISTORY, chat, translation={"ignore": ["include"]}) == set()
    assert fired(HISTORY, chat, translation={"skip": ["translation.no_responses_fields"]}) == set()
    assert fired(HISTORY, m(lambda c: c["messages"][2].pop("reasoning_content"))) == set()  # not required here


def test_chat_completions_parameters_may_be_forwarded() -> None:
    """store, metadata and prompt caching are Chat Completions parameters too."""
    chat = m(lambda c: c.update(store=False, metadata={"a": "b"}, prompt_cache_key="k", prompt_cache_retention="24h"))
    assert fired(HISTORY, chat, translation={"require": ["reasoning_content"]}) == set()


def test_tool_choice_without_tools() -> None:
    request = {"model": "m", "input": "x", "tool_choice": "none", "tools": [TOOL], "stream": True}
    assert fired(request, {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True, "stream_options": {"include_usage": True}}) == set()
    assert fired(request, {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "none", "stream": False}) == {"translation.tool_choice"}


def test_previous_response_id_refused_honoured_or_ignored() -> None:
    first = {"model": "m", "input": [{"role": "user", "content": "Weather in Faro?"}], "stream": True}
    second = {"model": "m", "previous_response_id": "resp_1", "input": [{"type": "function_call_output", "call_id": "call_F", "output": "24C"}], "stream": True}
    tool_chunks = 'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_F","function":{"name":"w","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n'
    sse = {"status": 200, "headers": {"content-type": "text/event-stream"}}
    c = parse_cassette({"format": 1, "id": "q7", "description": "d", "tags": [], "provenance": {"source": "authored", "backend": "x"}, "turns": [
        {"request": first, "upstream": [dict(sse, chunks=[{"t_ms": 0, "data": tool_chunks}])]},
        {"request": second, "expect": {"error": {"status": "4xx", "param": "previous_response_id", "success_allowed": True}},
         "upstream": [dict(sse, chunks=[{"t_ms": 0, "data": "data: [DONE]\n\n"}])]},
    ]})

    def run(status: int, body: dict[str, Any] | None, chat: Chat | None) -> set[str]:
        ex = Exchange("q7", 1, "u", second, status=status, headers={"content-type": "application/json"}, chunks=[Chunk(0, json.dumps(body).encode())] if body else [])
        ex.upstream_requests = [{"body": chat, "turn": 1, "interaction": 0}] if chat else []
        results = run_checks(ex, profile="strict", select=["translation.previous_response_id", "http.status_ok"], context=Context(ex, cassette=c, turn=c.turns[1]))
        return {cid for cid, o in results.items() if o.findings}

    envelope = {"error": {"message": "no", "type": "invalid_request_error", "param": "previous_response_id", "code": None}}
    assert run(400, envelope, None) == set()
    assert run(400, {"error": dict(envelope["error"], param=None)}, None) == {"translation.previous_response_id"}
    assert run(500, envelope, None) == {"http.status_ok"}
    honoured = {"model": "m", "messages": [{"role": "user", "content": "Weather in Faro?"}, {"role": "assistant", "content": None, "tool_calls": [{"id": "call_F", "type": "function", "function": {"name": "w", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "call_F", "content": "24C"}]}
    assert run(200, None, honoured) == set()
    ignored = {"model": "m", "messages": [{"role": "tool", "tool_call_id": "call_F", "content": "24C"}]}
    assert run(200, None, ignored) == {"translation.previous_response_id"}


def test_same_text_accepts_the_usual_joins() -> None:
    assert same_text(["a", "b"], ["a\nb"]) and same_text(["a", "b"], ["ab"]) and same_text(["a", "b"], ["a", "b"])
    assert same_text(["a", "b"], ["a\n\nb"]) and not same_text(["a", "b"], ["a-b"]) and same_text([], [""])


def test_every_translation_check_is_proven_here() -> None:
    proven = set().union(*(want for _, want in CASES.values())) | {"translation.previous_response_id"}
    assert {c for c in REGISTRY if c.startswith("translation.")} - proven == set()


# -- placeholders, expected statuses, profiles -----------------------------------------------------------
def test_placeholders_take_values_from_earlier_responses() -> None:
    responses: dict[int, dict[str, Any] | None] = {0: {"id": "resp_9", "output": [{"id": "fc_1", "call_id": "call_1"}], "usage": {"total_tokens": 5}}}
    request = {"previous_response_id": "{{turns[0].response.id}}", "input": [{"call_id": "{{ turns[0].response.output[0].call_id }}"}],
               "n": "{{turns[0].response.usage.total_tokens}}", "text": "id={{turns[0].response.id}}!", "plain": "{{not a placeholder}}"}
    assert resolve_placeholders(request, responses) == {"previous_response_id": "resp_9", "input": [{"call_id": "call_1"}], "n": 5, "text": "id=resp_9!", "plain": "{{not a placeholder}}"}
    with pytest.raises(PlaceholderError, match="turn 1 produced no response"):
        resolve_placeholders({"x": "{{turns[1].response.id}}"}, responses)
    with pytest.raises(PlaceholderError, match="no such value"):
        resolve_placeholders({"x": "{{turns[0].response.output[3].id}}"}, responses)


def test_allowed_statuses() -> None:
    assert status_matches(404, "4xx") and status_matches(400, "400") and not status_matches(500, "4xx")
    ok = cassette({"model": "m", "input": "x"})
    limited = parse_cassette({**ok.raw, "turns": [{"request": {"model": "m", "input": "x"}, "upstream": [{"status": 503, "headers": {}, "chunks": []}]}]})
    cut = parse_cassette({**ok.raw, "turns": [{"request": {"model": "m", "input": "x"}, "upstream": [{"status": 200, "headers": {"content-type": "text/event-stream"}, "chunks": [{"t_ms": 0, "data": "data: {\"choices\":[]}\n\n"}], "end": "cut"}]}]})
    refuse = parse_cassette({**ok.raw, "turns": [{"request": {"model": "m", "input": "x"}, "expect": {"error": {"status": 400}}, "upstream": []}]})

    def allowed(c: Any, mode: str = "stream") -> list[str]:
        ex = Exchange("t", 0, "u", {}, mode=mode)
        return Context(ex, cassette=c, turn=c.turns[0]).allowed_statuses()

    assert allowed(ok) == ["2xx"] and allowed(limited) == ["5xx"] and allowed(refuse) == ["400"]
    live = Exchange("t", 0, "u", {}, live=True)
    assert Context(live, cassette=limited, turn=limited.turns[0]).allowed_statuses() == ["2xx"]
    assert Context(live, cassette=refuse, turn=refuse.turns[0]).allowed_statuses() == ["400"]
    assert allowed(cut) == ["2xx"] and allowed(cut, "nonstream") == ["2xx", "5xx"]
    assert Harness._upstream_expected(refuse.turns[0], Exchange("t", 0, "u", {}, status=400)) == 0
    assert Harness._upstream_expected(limited.turns[0], Exchange("t", 0, "u", {}, status=502)) == 1


def test_every_check_has_a_lenient_decision_and_severities_per_profile() -> None:
    assert set(LENIENT) == set(REGISTRY)
    for cid, spec in REGISTRY.items():
        assert set(spec.severities) == set(PROFILES)
        if cid.startswith("dialect.") and cid != "dialect.reasoning_events_sdk_names":
            assert [p for p in PROFILES if spec.severity(p) is not None] == ["open-responses"]
        assert (spec.severity("lenient") is None) == (LENIENT[cid][0] is None)
    assert REGISTRY["dialect.reasoning_events_sdk_names"].severity("open-responses") is None
    assert REGISTRY["oracle.reasoning"].severity("openai") is not None
