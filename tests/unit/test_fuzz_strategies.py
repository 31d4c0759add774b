"""The generated upstream streams: valid cassettes, the oracle reads back what was generated, the
re-chunking keeps the bytes, and every promised shape is actually produced."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.cassette import Interaction
from conformance.expected import expect
from conformance.fuzz.runner import normalise_reason, problem_id
from conformance.fuzz.strategies import (
    BACKENDS,
    GeneratedStream,
    reads,
    scenarios,
    streams,
    to_cassette,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _expected(s: GeneratedStream) -> tuple[str, str, str]:
    interaction = Interaction(s.status, s.headers, [(0.0, r) for r in s.reads], s.end)
    e = expect(interaction)
    return e.text, e.reasoning, e.outcome


@FAST
@given(streams())
def test_reads_carry_the_same_bytes(s: GeneratedStream) -> None:
    assert b"".join(s.reads) == s.body


@FAST
@given(streams())
def test_the_oracle_reads_back_the_generated_content(s: GeneratedStream) -> None:
    """Text and reasoning survive every backend shape and every cut into reads (no U+FFFD)."""
    c = s.content
    text, reasoning, outcome = _expected(s)
    if s.status != 200:
        assert outcome == "http_error"
        return
    if c.error is None and c.cut_at is None:
        assert text == "".join(c.text)
        assert reasoning == "".join(c.reasoning)
        if c.finish in ("stop", "tool_calls"):
            assert outcome == "completed"
        if c.finish is None:
            assert outcome == "failed"
    if c.error is not None:
        assert outcome == "failed"


@FAST
@given(streams())
def test_the_oracle_reads_back_the_tool_calls(s: GeneratedStream) -> None:
    c = s.content
    if s.status != 200 or c.error is not None or c.cut_at is not None:
        return
    interaction = Interaction(s.status, s.headers, [(0.0, r) for r in s.reads], s.end)
    got = expect(interaction).tool_calls
    assert [(t.id, t.name, t.arguments) for t in got] == [(t.id, t.name, t.arguments) for t in c.calls]


@pytest.mark.slow
@FAST
@given(scenarios())
def test_scenarios_are_valid_cassettes(sc: object) -> None:
    cassette = to_cassette(sc, "fuzz-test", "fuzz test prompt", validate=True)  # type: ignore[arg-type]
    fast = to_cassette(sc, "fuzz-test", "fuzz test prompt")  # type: ignore[arg-type]
    assert [(t.match_key, t.request, [(i.status, i.chunks, i.end) for i in t.upstream]) for t in fast.turns] == [
        (t.match_key, t.request, [(i.status, i.chunks, i.end) for i in t.upstream]) for t in cassette.turns
    ]
    assert cassette.provenance["source"] == "generated"
    assert cassette.turns[0].match_key == "fuzz test prompt"
    assert 1 <= len(cassette.turns) <= 2


@pytest.mark.slow
def test_every_shape_is_generated() -> None:
    """The strategies reach each fragmentation, read mode, usage placement, finish and backend."""
    seen: Counter[str] = Counter()

    @settings(max_examples=1200, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    @given(streams())
    def collect(s: GeneratedStream) -> None:
        c = s.content
        seen[f"backend:{s.backend}"] += 1
        seen[f"reads:{s.read_mode}"] += 1
        seen[f"usage:{c.usage_mode}"] += 1
        seen[f"finish:{c.finish}"] += 1
        seen[f"index:{c.index_mode}"] += bool(c.calls)
        for call in c.calls:
            seen[f"style:{call.style}"] += 1
        seen["error"] += c.error is not None
        seen["cut"] += s.end == "cut"
        seen["comment"] += bool(c.comments)
        seen["http_error"] += c.http_error is not None
        seen[f"reasoning:{c.reasoning_field}"] += bool(c.reasoning)
        seen["refusal"] += bool(c.refusal)
        body = s.body.decode()
        seen["empty_delta"] += '"content":""' in body or '"content": ""' in body
        seen["multibyte"] += any(ord(ch) > 0x7F for ch in "".join(c.text))

    collect()
    wanted = [f"backend:{b}" for b in BACKENDS]
    wanted += [f"reads:{m}" for m in ("events", "random", "utf8", "bytes1")]
    wanted += [f"usage:{m}" for m in ("none", "separate", "on_finish", "every", "twice", "dup_finish")]
    wanted += [f"finish:{f}" for f in ("stop", "length", "tool_calls", "content_filter", "error", None)]
    wanted += [f"index:{m}" for m in ("index", "none", "reused", "interleaved")]
    wanted += [f"style:{s}" for s in ("standard", "whole", "first_has_args", "no_args_key", "name_late", "name_split", "args_before_name", "id_only")]
    wanted += ["error", "cut", "comment", "http_error", "refusal", "empty_delta", "multibyte"]
    wanted += [f"reasoning:{f}" for f in ("reasoning_content", "reasoning", "thinking")]
    missing = [w for w in wanted if not seen[w]]
    assert missing == []


@given(st.data())
@settings(max_examples=50, deadline=None, database=None)
def test_utf8_reads_split_every_multibyte_character(data: st.DataObject) -> None:
    frames = ['data: {"content":"a€😀é"}\n\n']
    mode, chunks = data.draw(reads(frames))
    if mode == "utf8":
        for chunk in chunks:
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                break
        else:
            raise AssertionError("no read ends inside a character")


def test_problem_ids_ignore_values() -> None:
    a = normalise_reason("tool call 0 (get_weather): the arguments are not the upstream's")
    b = normalise_reason("[non-stream] tool call 1 (lookup): the arguments are not the upstream's")
    assert a == b
    assert problem_id("oracle.tool_calls", a) == problem_id("oracle.tool_calls", b)
    assert problem_id("oracle.text", a) != problem_id("oracle.tool_calls", a)
    assert json.dumps(problem_id("oracle.text", a)).isascii()
