"""Crafted streams: each check passes on a clean stream and fires, alone, on its mutation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from conformance.checks import REGISTRY, run_checks

# One clean stream for the crafted proofs here and for the client lab's defects: the lab's copy.
from conformance.clients._defects import Events, clean_events, encode
from conformance.exchange import Chunk, Exchange, TransportError
from conformance.report import format_finding

__all__ = ["Events", "clean_events", "encode", "exchange"]


def exchange(body: bytes, *, status: int = 200, ct: str = "text/event-stream", error: TransportError | None = None) -> Exchange:
    return Exchange("crafted", 0, "http://127.0.0.1:1/v1/responses", {"model": "m", "input": "x"}, status=status, headers={"content-type": ct}, chunks=[Chunk(0, body[i : i + 7]) for i in range(0, len(body), 7)], transport_error=error)


def live_exchange(body: bytes, *, max_output_tokens: int) -> Exchange:
    """A live-mode exchange (no recorded upstream) of a request with this token limit."""
    ex = exchange(body)
    ex.request = {"model": "m", "input": "x", "stream": True, "max_output_tokens": max_output_tokens}
    ex.live = True
    return ex


def fired(ex: Exchange, profile: str = "strict") -> set[str]:
    results = run_checks(ex, profile=profile)
    found = {cid for cid, o in results.items() if o.findings}
    for cid in found:
        for f in results[cid].findings:
            assert format_finding(f)  # every finding renders
    return found


def by_type(events: Events, t: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == t]


def test_clean_stream_passes_every_check_under_every_profile() -> None:
    for profile in ("openai", "open-responses", "lenient", "strict"):
        assert fired(exchange(encode(clean_events(), tail="data: [DONE]\n\n")), profile) == set()


def mutate(fn: Callable[[Events], Events | None]) -> bytes:
    events = clean_events()
    result = fn(events)
    return encode(result if result is not None else events)


CASES: dict[str, tuple[Callable[[], Exchange], set[str]]] = {
    "http-500": (lambda: exchange(b'{"error":{"message":"x","type":"server_error","param":null,"code":null}}', status=500, ct="application/json"), {"http.status_ok"}),
    "json-content-type": (lambda: exchange(encode(clean_events()), ct="application/json"), {"http.content_type"}),
    "unterminated-final": (lambda: exchange(encode(clean_events())[:-1]), {"sse.framing"}),
    "llamacpp-error-field": (lambda: exchange(encode(clean_events(), tail='error: {"code":400}\n\n')), {"sse.framing"}),
    "not-json": (lambda: exchange(encode(clean_events())[:-2] + b"\n\ndata: <<garbage>>\n\n"), {"sse.data_json"}),
    "chat-error-frame": (lambda: exchange(mutate(lambda e: [*e[:-1], {"error": {"message": "boom"}, "sequence_number": 14}])), {"sse.data_json", "lifecycle.terminal_present"}),
    "event-name-mismatch": (lambda: exchange(encode(clean_events()).replace(b"event: response.completed", b"event: response.created")), {"sse.event_name_matches_type"}),
    "done-before-terminal": (lambda: exchange(mutate(lambda e: None).replace(b"event: response.completed", b"data: [DONE]\n\nevent: response.completed")), {"sse.done_after_terminal"}),
    "unknown-type": (lambda: exchange(mutate(lambda e: [*e[:2], {"type": "response.vendor.ping"}, *e[2:]])), {"schema.known_event_type"}),
    "delta-no-logprobs": (lambda: exchange(mutate(lambda e: [ev.pop("logprobs") for ev in by_type(e, "response.output_text.delta")] and e)), {"schema.event"}),
    "thin-created": (lambda: exchange(mutate(lambda e: e[0].update(response={"id": "resp_1", "object": "response", "status": "in_progress"}))), {"schema.response"}),
    "item-no-status": (lambda: exchange(mutate(lambda e: [ev["item"].pop("status") for ev in by_type(e, "response.output_item.added")] and e)), {"schema.item"}),
    "part-no-annotations": (lambda: exchange(mutate(lambda e: [by_type(e, "response.content_part.added")[0]["part"].pop("annotations"), e][1])), {"schema.part"}),
    "empty-200": (lambda: exchange(b""), {"lifecycle.created_first", "lifecycle.terminal_present"}),
    "seq-missing": (lambda: exchange(mutate(lambda e: e[-1].update(sequence_number=None))), {"seq.present"}),
    "seq-gap": (lambda: exchange(mutate(lambda e: [ev.update(sequence_number=i + (20 if i > 3 else 0)) for i, ev in enumerate(e)] and e)), {"seq.monotonic"}),
    "no-created": (lambda: exchange(mutate(lambda e: e[1:])), {"lifecycle.created_first"}),
    "no-in-progress": (lambda: exchange(mutate(lambda e: [e[0], *e[2:]])), {"lifecycle.in_progress_second"}),
    "created-completed": (lambda: exchange(mutate(lambda e: e[0].update(response=dict(e[0]["response"], status="completed")))), {"lifecycle.initial_status"}),
    "no-terminal": (lambda: exchange(mutate(lambda e: e[:-1])), {"lifecycle.terminal_present"}),
    "error-after-terminal": (lambda: exchange(mutate(lambda e: [*e, {"type": "error", "code": "x", "message": "late", "param": None}])), {"lifecycle.single_terminal_last"}),
    "terminal-status": (lambda: exchange(mutate(lambda e: e[-1]["response"].update(status="in_progress"))), {"lifecycle.terminal_status"}),
    "response-id-changes": (lambda: exchange(mutate(lambda e: e[-1]["response"].update(id="resp_2"))), {"ids.response_id_stable"}),
    "item-id-changes": (lambda: exchange(mutate(lambda e: [e[8].update(item=dict(e[8]["item"], id="msg_X")), e[-1]["response"]["output"][0].update(id="msg_X")] and e)), {"ids.item_id_stable"}),
    "call-id-equals-id": (lambda: exchange(mutate(lambda e: [e[9]["item"].update(call_id="fc_1"), e[13]["item"].update(call_id="fc_1"), e[-1]["response"]["output"][1].update(call_id="fc_1")] and e)), {"ids.call_id"}),
    "delta-before-added": (lambda: exchange(mutate(lambda e: [e[0], e[1], e[4], e[2], e[3], *e[5:]])), {"items.event_targets_open_item", "integrity.text_concat"}),
    "args-delta-uses-call-id": (lambda: exchange(mutate(lambda e: e[10].update(item_id="call_1"))), {"items.event_targets_open_item"}),
    "text-delta-on-function-call": (lambda: exchange(mutate(lambda e: e[11].update(type="response.output_text.delta", content_index=0, logprobs=[]))), {"items.event_targets_open_item", "integrity.arguments_concat"}),
    "no-part-added": (lambda: exchange(mutate(lambda e: [ev for ev in e if ev["type"] != "response.content_part.added"])), {"items.event_targets_open_part"}),
    "no-item-done": (lambda: exchange(mutate(lambda e: [*e[:13], e[14]])), {"items.closed_once", "integrity.terminal_output"}),
    "part-done-after-item-done": (lambda: exchange(mutate(lambda e: [*e[:7], e[8], e[7], *e[9:]])), {"items.close_order"}),
    "interleaved": (lambda: exchange(mutate(lambda e: [*e[:8], e[9], e[8], *e[10:]])), {"items.sequential"}),
    "output-index-off-by-one": (lambda: exchange(mutate(lambda e: [ev.update(output_index=ev["output_index"] + 1) for ev in e if "output_index" in ev] and e)), {"indices.output_index_dense"}),
    "content-index-one": (lambda: exchange(mutate(lambda e: [ev.update(content_index=1) for ev in e if "content_index" in ev] and e)), {"indices.content_index_dense"}),
    "stripped-done-text": (lambda: exchange(mutate(lambda e: e[6].update(text="Hello ther"))), {"integrity.text_concat"}),
    "cumulative-args": (lambda: exchange(mutate(lambda e: e[11].update(delta='{"a":1}'))), {"integrity.arguments_concat"}),
    "empty-completed-output": (lambda: exchange(mutate(lambda e: e[-1]["response"].update(output=[]))), {"integrity.terminal_output"}),
    "connect": (lambda: Exchange("c", 0, "http://127.0.0.1:9/v1/responses", {}, transport_error=TransportError("connect", "refused")), {"transport.connect"}),
    "stall": (lambda: exchange(encode(clean_events()[:2]), error=TransportError("idle_timeout", "stalled")), {"transport.timeout", "lifecycle.terminal_present"}),
    "cap": (lambda: exchange(encode(clean_events()), error=TransportError("cap", "too big")), {"transport.cap"}),
    "cut": (lambda: exchange(encode(clean_events()), error=TransportError("protocol", "reset")), {"transport.clean_close"}),
    # issue 12 (more in tests/unit/test_real_proxy_cases.py)
    "late-empty-delta": (lambda: exchange(mutate(lambda e: [*e[:7], {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "", "logprobs": []}, *e[7:]])), {"items.no_delta_after_done"}),
    "echo-flips": (lambda: exchange(mutate(lambda e: e[-1]["response"].update(parallel_tool_calls=False))), {"lifecycle.echo_consistent"}),
    "ids-without-prefixes": (lambda: exchange(encode(clean_events()).replace(b'"msg_1"', b'"m1"')), {"ids.prefixes"}),
    "float-created-at": (lambda: exchange(mutate(lambda e: e[0]["response"].update(created_at=1.5))), {"schema.response"}),
    "second-in-progress": (lambda: exchange(mutate(lambda e: [*e[:-1], copy.deepcopy(e[1]), e[-1]])), {"lifecycle.in_progress_second"}),
    "no-cache-write-tokens": (lambda: exchange(mutate(lambda e: [e[-1]["response"]["usage"]["input_tokens_details"].pop("cache_write_tokens"), e][1])), {"schema.usage_details"}),
    "live-cut-answer-completed": (lambda: live_exchange(encode(clean_events()), max_output_tokens=2), {"oracle.limit_reached_incomplete"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_stream_fires_exactly(case: str) -> None:
    make, expected = CASES[case]
    assert fired(make()) == expected


def test_upstream_matched_or_called_fires_when_nothing_reached_upstream() -> None:
    ex = exchange(encode(clean_events()))
    ex.upstream_expected = 1
    ex.upstream_unmatched = [{"path": "/v1/chat/completions", "diagnosis": "no cassette turn has last message 'x'"}]
    assert fired(ex) == {"upstream.matched"}
    ex.upstream_unmatched = []
    assert fired(ex) == {"upstream.called"}
    ex.live = True
    assert fired(ex) == set()


# Checks that compare with a cassette (oracle, translation) or need a second exchange have their
# crafted proofs in tests/unit/test_oracle.py and tests/unit/test_translation.py.
ELSEWHERE = ("oracle.", "translation.", "errors.", "request.", "nonstream.", "dialect.")


def test_every_check_has_a_crafted_case() -> None:
    covered = set().union(*(expected for _, expected in CASES.values())) | {"upstream.matched", "upstream.called"}
    assert {c for c in set(REGISTRY) - covered if not c.startswith(ELSEWHERE)} == set()


def test_non_2xx_skips_stream_checks_with_a_reason() -> None:
    results = run_checks(exchange(b"oops", status=502, ct="text/plain"))
    assert results["lifecycle.terminal_present"].skipped == "no stream to check: HTTP 502"
    assert results["http.status_ok"].findings
