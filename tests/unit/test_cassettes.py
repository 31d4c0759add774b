"""The shipped cassettes load, replay well-formed upstream SSE, and cover the upstream shapes a
proxy must survive (shared/upstream-shapes.md §9 and §10).

The coverage tests fail when a cassette that was the only carrier of a quirk is removed or edited
so that the quirk disappears, so the set cannot silently lose what it was written to exercise.

"Plain" cassettes (one turn, one successful SSE interaction, no stated error) are held to the
strictest invariants; multi-turn, error and malformed-request cassettes (the themes multiturn,
codex, translation, errors) to the rules that fit them: every turn's request, match key and
expectations are consistent, error bodies are JSON, and a stated outcome is what the oracle
derives from the chunks.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance.cassette import (
    Cassette,
    Interaction,
    cassette_files,
    load_cassettes,
    request_match_key,
)
from conformance.expected import expect
from conformance.resources import cassettes_dir
from conformance.sse import parse_sse

MIN_CASSETTES = 50
ORIGINAL_THEMES = frozenset({"text", "tools", "usage", "reasoning", "finish"})

CATALOG_CLASS_IDS = frozenset(
    {
        *(f"S{n}" for n in range(1, 8)),
        "R1",
        "R3",
        "R4",
        "R5",
        *(f"I{n}" for n in range(1, 5)),
        "T1",
        "T2",
        "T4",
        "T5",
        "X2",
        "RS1",
        "RS2",
        "U1",
        "F1",
        *(f"Q{n}" for n in range(1, 6)),
        "Q7",
    }
)

REQUIRED_BACKENDS = (
    "openai",
    "azure",
    "deepseek",
    "vllm",
    "ollama",
    "llamacpp",
    "mistral",
    "groq",
    "openrouter",
)

CASSETTES, LOAD_ERRORS = load_cassettes()
BY_ID = {c.id: c for c in CASSETTES}
IDS = sorted(BY_ID)


def _is_sse_200(inter: Interaction) -> bool:
    return inter.status == 200 and inter.headers.get("content-type") == "text/event-stream"


def _is_plain(c: Cassette) -> bool:
    if len(c.turns) != 1 or c.turns[0].body is not None or len(c.turns[0].upstream) != 1:
        return False
    turn, inter = c.turns[0], c.turns[0].upstream[0]
    return _is_sse_200(inter) and inter.end == "clean" and turn.expected_error is None and turn.expect.get("outcome") in (None, "completed", "incomplete")


PLAIN = sorted(cid for cid, c in BY_ID.items() if _is_plain(c))
STRICT = sorted(cid for cid in PLAIN if BY_ID[cid].path is not None and BY_ID[cid].path.parent.name in ORIGINAL_THEMES)  # type: ignore[union-attr]
# The first successful SSE interaction of each cassette: what the coverage features are read from.
FIRST_SSE: dict[str, tuple[int, int]] = {}
for _c in CASSETTES:
    _found = next(((t, i) for t, turn in enumerate(_c.turns) for i, inter in enumerate(turn.upstream) if _is_sse_200(inter)), None)
    if _found is not None:
        FIRST_SSE[_c.id] = _found


def _raw_chunk_bytes(chunk: dict[str, Any]) -> bytes:
    if "b64" in chunk:
        return base64.b64decode(chunk["b64"], validate=True)
    return str(chunk["data"]).encode("utf-8")


@dataclass
class Call:
    """One upstream tool call: its fragments in arrival order."""

    fragments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return next(
            (f["function"]["name"] for f in self.fragments if f.get("function", {}).get("name")), ""
        )

    @property
    def arguments(self) -> str:
        return "".join(f.get("function", {}).get("arguments") or "" for f in self.fragments)


@dataclass
class Facts:
    """What one cassette's upstream body contains, for the invariant and coverage tests."""

    cassette: Cassette
    chunks: list[bytes]
    body: bytes
    events: list[Any]
    payloads: list[dict[str, Any]]
    issues: list[str]
    features: set[str]
    calls: list[Call]


def _delta_choices(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ch for p in payloads for ch in p.get("choices") or [] if isinstance(ch, dict)]


def _group_calls(payloads: list[dict[str, Any]]) -> list[Call]:
    calls: dict[Any, Call] = {}
    for ch in _delta_choices(payloads):
        for pos, tc in enumerate((ch.get("delta") or {}).get("tool_calls") or []):
            key = tc["index"] if "index" in tc else (tc.get("id") or pos)
            calls.setdefault(key, Call()).fragments.append(tc)
    return list(calls.values())


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _features(
    c: Cassette, chunks: list[bytes], body: bytes, payloads: list[dict[str, Any]], calls: list[Call]
) -> set[str]:
    f: set[str] = {f"backend:{c.provenance.get('backend')}"}
    request = c.turns[0].request

    # Framing: how the events sit in the network chunks.
    boundaries = {m.end() for m in re.finditer(rb"\n\n", body)}
    offset = 0
    for i, chunk in enumerate(chunks):
        offset += len(chunk)
        if i < len(chunks) - 1 and offset not in boundaries:
            f.add("event_split_across_chunks")
        if len(re.findall(rb"(?m)^data:", chunk)) >= 2:
            f.add("several_events_in_one_chunk")
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            f.add("chunk_split_inside_utf8_char")
    if not body.endswith(b"\n\n"):
        f.add("no_blank_line_at_end")
    if re.search(rb"(?m)^: keep-alive$", body):
        f.add("keep_alive_comments")
    if re.search(rb"(?m)^: OPENROUTER PROCESSING$", body):
        f.add("openrouter_comments")
    if re.search(rb"(?m)^data:(?! )", body):
        f.add("data_without_space")

    choices = _delta_choices(payloads)
    deltas = [ch["delta"] for ch in choices if isinstance(ch.get("delta"), dict)]
    finishes = [ch["finish_reason"] for ch in choices if ch.get("finish_reason")]
    if len(finishes) >= 2:
        f.add("finish_chunk_repeated")
    if "length" in finishes and "max_output_tokens" in request:
        f.add("length_with_max_output_tokens")
    if any("delta" not in ch for ch in choices):
        f.add("choice_without_delta")
    if any("finish_reason" not in ch for ch in choices if "delta" in ch):
        f.add("finish_reason_key_absent")
    if any(p.get("id") == "" and p.get("choices") == [] for p in payloads):
        f.add("empty_id_filter_chunk")
    if any("obfuscation" in p for p in payloads):
        f.add("obfuscation")
    if any("timings" in p for p in payloads):
        f.add("timings")
    if any("x_groq" in p for p in payloads):
        f.add("x_groq")
    if any("prompt_token_ids" in p for p in payloads):
        f.add("prompt_token_ids")
    if len(deltas) >= 3 and all(d.get("role") == "assistant" for d in deltas):
        f.add("role_on_every_delta")

    # Text.
    texts = [d["content"] for d in deltas if isinstance(d.get("content"), str) and d["content"]]
    text = "".join(texts)
    if len(texts) >= 150:
        f.add("long_text")
    if (
        "\u200d" in text
        and any(ord(ch) > 0xFFFF for ch in text)
        and any(0x3040 <= ord(ch) <= 0x9FFF for ch in text)
        and any(0xC0 <= ord(ch) <= 0x17F for ch in text)
    ):
        f.add("unicode_mix")
    if (
        deltas
        and "content" in deltas[0]
        and deltas[0]["content"] is None
        and not deltas[0].get("tool_calls")
    ):
        empty_mid = [
            ch
            for ch in choices[1:]
            if (ch.get("delta") or {}).get("content") == "" and not ch.get("finish_reason")
        ]
        if len(empty_mid) >= 2:
            f.add("null_first_then_empty_content_deltas")
    if any(d.get("tool_calls") == [] for d in deltas):
        f.add("empty_tool_calls_array")

    # Reasoning.
    if deltas and deltas[0].get("reasoning_content") == "":
        f.add("reasoning_content_empty_first")
    if any(isinstance(d.get("reasoning_content"), str) and d["reasoning_content"] for d in deltas):
        f.add("reasoning_content")
    if any(isinstance(d.get("reasoning"), str) and d["reasoning"] for d in deltas):
        f.add("reasoning_field")

    # Usage placement.
    with_usage = [p for p in payloads if p.get("usage")]
    if any(p.get("choices") == [] for p in with_usage):
        f.add("usage_in_choiceless_chunk")
    if any(any(ch.get("finish_reason") for ch in p.get("choices") or []) for p in with_usage):
        f.add("usage_on_finish_chunk")
    if len(payloads) >= 3 and len(with_usage) == len(payloads):
        f.add("usage_on_every_chunk")
    if len(with_usage) == 2 and with_usage[0]["usage"] == with_usage[1]["usage"]:
        f.add("usage_twice_identical")
    for p in with_usage:
        u = p["usage"]
        if u.get("total_tokens", 0) > u.get("prompt_tokens", 0) + u.get("completion_tokens", 0):
            f.add("total_tokens_exceeds_sum")

    # Tool calls.
    if {0, 1} <= {fr.get("index") for call in calls for fr in call.fragments}:
        f.add("two_tool_call_indices")
    for call in calls:
        first = call.fragments[0]
        fn = first.get("function", {})
        later_args = any(
            (fr.get("function", {}).get("arguments") or "") for fr in call.fragments[1:]
        )
        if not fn.get("name") and fn.get("arguments") and call.name:
            f.add("tool_arguments_before_name")
        if fn.get("name") and "arguments" not in fn:
            f.add("tool_first_fragment_without_arguments_key")
        if fn.get("name") and fn.get("arguments") and later_args:
            f.add("tool_first_fragment_with_arguments")
        if (
            fn.get("name")
            and fn.get("arguments")
            and not later_args
            and _is_json_object(fn["arguments"])
        ):
            f.add("tool_call_whole_in_one_delta")
        if "index" not in first and "type" not in first:
            f.add("tool_call_without_index_and_type")
        if str(first.get("id", "")).startswith("functions."):
            f.add("kimi_tool_call_id")
        names = [fr.get("function", {}).get("name") for fr in call.fragments]
        if len([n for n in names if n]) >= 2 and len({n for n in names if n}) >= 2:
            f.add("tool_name_split_across_fragments")
        if "" in names:
            f.add("tool_empty_name_in_later_fragment")
    for ch in choices:
        tcs = (ch.get("delta") or {}).get("tool_calls") or []
        if ch.get("finish_reason") and any(
            tc.get("function", {}).get("arguments") == "" for tc in tcs
        ):
            f.add("empty_arguments_delta_with_finish")
    for p in with_usage:
        for ch in p.get("choices") or []:
            if ch.get("finish_reason") and (ch.get("delta") or {}).get("tool_calls"):
                f.add("tool_call_finish_and_usage_in_one_chunk")
    seen_text = False
    for d in deltas:
        if isinstance(d.get("content"), str) and d["content"]:
            seen_text = True
        if d.get("tool_calls") and seen_text:
            f.add("text_then_tool_calls")
    return f


def _facts(c: Cassette) -> Facts:
    t, i = FIRST_SSE[c.id]
    chunks = [_raw_chunk_bytes(ch) for ch in c.raw["turns"][t]["upstream"][i]["chunks"]]
    body = b"".join(chunks)
    events, parser = parse_sse(chunks)
    payloads = []
    for ev in events:
        if ev.data != "[DONE]" and _is_json_object(ev.data):
            payloads.append(json.loads(ev.data))
    calls = _group_calls(payloads)
    return Facts(
        cassette=c,
        chunks=chunks,
        body=body,
        events=events,
        payloads=payloads,
        issues=[i.kind for i in parser.issues],
        features=_features(c, chunks, body, payloads, calls),
        calls=calls,
    )


FACTS = {c.id: _facts(c) for c in CASSETTES if c.id in FIRST_SSE}


def test_every_cassette_file_loads() -> None:
    assert not LOAD_ERRORS, "\n".join(str(e) for e in LOAD_ERRORS)
    assert len(CASSETTES) == len(cassette_files())
    assert len(CASSETTES) >= MIN_CASSETTES


@pytest.mark.parametrize("cid", IDS)
def test_id_is_file_stem_inside_a_theme_directory(cid: str) -> None:
    path = BY_ID[cid].path
    assert path is not None
    assert path.stem == cid
    assert path.parent.parent.resolve() == Path(cassettes_dir()).resolve(), (
        "cassettes live in cassettes/<theme>/"
    )


@pytest.mark.parametrize("cid", IDS)
def test_metadata(cid: str) -> None:
    c = BY_ID[cid]
    assert c.raw["format"] == 1
    assert c.description.strip()
    assert c.tags, "every cassette names the bug classes it exercises"
    unknown = set(c.tags) - CATALOG_CLASS_IDS
    assert not unknown, f"tags not in catalog/bug-classes.md: {sorted(unknown)}"
    prov = c.provenance
    assert prov["source"] in ("authored", "captured", "recorded")
    for key in ("backend", "based_on", "model"):
        assert isinstance(prov.get(key), str) and prov[key].strip(), f"provenance.{key} missing"


@pytest.mark.parametrize("cid", STRICT)
def test_single_turn_request(cid: str) -> None:
    c = BY_ID[cid]
    assert len(c.turns) == 1
    req = c.turns[0].request
    assert req["stream"] is True
    assert isinstance(req["model"], str) and req["model"]
    last = req["input"][-1]
    assert last["role"] == "user"
    assert isinstance(last["content"], str) and last["content"].strip()
    assert c.turns[0].match_key == last["content"].strip()
    assert len(c.turns[0].upstream) == 1


def test_prompts_are_unique() -> None:
    keys = Counter(t.match_key for c in CASSETTES for t in c.turns if t.match_key)
    assert [k for k, n in keys.items() if n > 1] == []


PLACEHOLDER = re.compile(r"\{\{\s*turns\[(\d+)\]\.response[^}]*\}\}")


@pytest.mark.parametrize("cid", IDS)
def test_every_turn_is_consistent(cid: str) -> None:
    c = BY_ID[cid]
    for turn in c.turns:
        req = turn.request
        assert isinstance(req["model"], str) and req["model"]
        assert req.get("stream") is True, "cassette requests stream; the harness adds the stream: false exchange"
        if turn.upstream:
            stated = c.raw["turns"][turn.index].get("match", {}).get("last_message")
            assert turn.match_key == (stated or request_match_key(req))
        else:
            assert turn.expected_error is not None and not turn.expected_error.get("success_allowed")
        for ref in PLACEHOLDER.findall(json.dumps(req)):
            assert int(ref) < turn.index, "a placeholder may only refer to an earlier turn"
        if turn.body is not None:
            with pytest.raises(ValueError):
                json.loads(turn.body)
        err = turn.expected_error
        if err is not None and any(i.status >= 400 for i in turn.upstream):
            kinds = {f"{i.status // 100}xx" for i in turn.upstream}
            assert str(err["status"]) in kinds or str(err["status"])[:1] + "xx" in kinds


@pytest.mark.parametrize("cid", IDS)
def test_every_interaction_is_well_formed(cid: str) -> None:
    for turn in BY_ID[cid].turns:
        for inter in turn.upstream:
            times = [t for t, _ in inter.chunks]
            assert times == sorted(times) and len(set(times)) == len(times), "t_ms must strictly increase"
            if inter.status >= 400:
                assert inter.headers.get("content-type") == "application/json"
                json.loads(inter.body)
            else:
                assert _is_sse_200(inter)
                _, parser = parse_sse([data for _, data in inter.chunks])
                assert {i.kind for i in parser.issues} <= {"unterminated_final_event", "unknown_field"}


@pytest.mark.parametrize("cid", sorted(cid for cid in IDS if any("outcome" in t.expect for t in BY_ID[cid].turns)))
def test_stated_outcome_is_the_oracles(cid: str) -> None:
    for turn in BY_ID[cid].turns:
        if "outcome" in turn.expect:
            assert expect(turn.upstream[0]).outcome == turn.expect["outcome"]


@pytest.mark.parametrize("cid", PLAIN)
def test_upstream_is_a_successful_sse_stream_of_json(cid: str) -> None:
    facts = FACTS[cid]
    inter = facts.cassette.turns[0].upstream[0]
    assert inter.status == 200
    assert inter.headers.get("content-type") == "text/event-stream"
    assert inter.end == "clean"
    times = [t for t, _ in inter.chunks]
    assert times == sorted(times) and len(set(times)) == len(times), "t_ms must strictly increase"
    assert b"\r" not in facts.body

    data = [ev.data for ev in facts.events]
    assert data, "no events"
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1, "exactly one [DONE], at the end"
    for ev in facts.events[:-1]:
        assert _is_json_object(ev.data), f"event {ev.index} is not a JSON object: {ev.data[:120]!r}"
        assert ev.event is None
    for p in facts.payloads:
        assert "error" not in p, "success cassettes carry no error object"
        assert isinstance(p.get("choices"), list)
    assert any(ch.get("finish_reason") for ch in _delta_choices(facts.payloads)), "no finish_reason"

    allowed = set() if facts.body.endswith(b"\n\n") else {"unterminated_final_event"}
    assert set(facts.issues) <= allowed, facts.issues
    if "unterminated_final_event" in facts.issues:
        assert not facts.events[-1].terminated and facts.events[-1].data == "[DONE]"


@pytest.mark.parametrize("cid", sorted(FACTS))
def test_rejoined_chunks_are_the_original_bytes(cid: str) -> None:
    facts = FACTS[cid]
    t, i = FIRST_SSE[cid]
    inter = facts.cassette.turns[t].upstream[i]
    assert b"".join(facts.chunks) == inter.body
    assert [data for _, data in inter.chunks] == facts.chunks
    for raw, data in zip(
        facts.cassette.raw["turns"][t]["upstream"][i]["chunks"], facts.chunks, strict=True
    ):
        if "b64" in raw:
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")  # b64 only where `data` could not hold the bytes

    def summary(events: list[Any]) -> list[tuple[str, str | None, bool]]:
        return [(ev.data, ev.event, ev.terminated) for ev in events]

    whole, _ = parse_sse([inter.body])
    bytewise, _ = parse_sse(inter.body[i : i + 1] for i in range(len(inter.body)))
    assert summary(facts.events) == summary(whole) == summary(bytewise)


@pytest.mark.parametrize("cid", sorted(FACTS))
def test_tool_calls_are_declared_in_the_request(cid: str) -> None:
    facts = FACTS[cid]
    req = facts.cassette.turns[FIRST_SSE[cid][0]].request
    tools = [t for t in req.get("tools", []) if t["type"] == "function"]
    for tool in tools:
        assert tool["name"] and isinstance(tool["parameters"], dict)
    declared = {t["name"] for t in tools}
    t, i = FIRST_SSE[cid]
    for call in expect(facts.cassette.turns[t].upstream[i]).tool_calls:
        assert call.name in declared, (
            f"upstream calls {call.name!r}, request declares {sorted(declared)}"
        )
        assert _is_json_object(call.arguments), (
            f"arguments of {call.name!r} do not join to a JSON object"
        )


COVERAGE = [
    *((f"backend:{b}", 1) for b in REQUIRED_BACKENDS),
    ("several_events_in_one_chunk", 3),
    ("event_split_across_chunks", 2),
    ("chunk_split_inside_utf8_char", 1),
    ("no_blank_line_at_end", 1),
    ("keep_alive_comments", 1),
    ("openrouter_comments", 1),
    ("data_without_space", 1),
    ("obfuscation", 1),
    ("timings", 1),
    ("x_groq", 1),
    ("prompt_token_ids", 1),
    ("long_text", 1),
    ("unicode_mix", 1),
    ("null_first_then_empty_content_deltas", 1),
    ("empty_id_filter_chunk", 1),
    ("choice_without_delta", 1),
    ("finish_reason_key_absent", 1),
    ("finish_chunk_repeated", 1),
    ("role_on_every_delta", 2),
    ("length_with_max_output_tokens", 1),
    ("reasoning_content_empty_first", 1),
    ("reasoning_content", 2),
    ("reasoning_field", 2),
    ("empty_tool_calls_array", 1),
    ("usage_in_choiceless_chunk", 3),
    ("usage_on_finish_chunk", 2),
    ("usage_on_every_chunk", 1),
    ("usage_twice_identical", 1),
    ("total_tokens_exceeds_sum", 1),
    ("two_tool_call_indices", 2),
    ("tool_arguments_before_name", 1),
    ("tool_first_fragment_without_arguments_key", 1),
    ("tool_first_fragment_with_arguments", 1),
    ("tool_call_whole_in_one_delta", 2),
    ("tool_call_without_index_and_type", 1),
    ("tool_call_finish_and_usage_in_one_chunk", 1),
    ("empty_arguments_delta_with_finish", 1),
    ("kimi_tool_call_id", 1),
    ("text_then_tool_calls", 1),
    ("tool_name_split_across_fragments", 1),
    ("tool_empty_name_in_later_fragment", 1),
]


@pytest.mark.parametrize(("feature", "minimum"), COVERAGE, ids=[f for f, _ in COVERAGE])
def test_coverage(feature: str, minimum: int) -> None:
    carriers = sorted(cid for cid, facts in FACTS.items() if feature in facts.features)
    assert len(carriers) >= minimum, f"{feature}: wanted {minimum} cassette(s), found {carriers}"


def test_tagged_classes_cover_the_stream_side_catalog() -> None:
    tags = {t for c in CASSETTES for t in c.tags}
    for needed in ("S1", "S2", "S3", "S4", "R1", "T2", "T4", "I3", "X2", "RS1", "U1", "F1"):
        assert needed in tags
    # issue 3: the oracle and the translation
    for needed in ("Q1", "Q2", "Q3", "Q4", "Q5", "Q7", "S6", "S7", "T5", "RS2"):
        assert needed in tags


def test_new_kinds_of_cassettes_are_present() -> None:
    assert sum(len(c.turns) > 1 for c in CASSETTES) >= 5
    assert sum(any(not t.upstream for t in c.turns) for c in CASSETTES) >= 3
    assert sum(any(i.status >= 400 for t in c.turns for i in t.upstream) for c in CASSETTES) >= 3
    assert sum(any(i.end == "cut" for t in c.turns for i in t.upstream) for c in CASSETTES) >= 1
    assert sum(c.provenance["source"] == "captured" for c in CASSETTES) >= 3
