"""Checking throughput: SSE parse + JSON + schema + every stream check, in events per second.

Builds large synthetic but valid Responses streams (a message of N text deltas and a function
call with N/10 argument deltas), splits them into 1400-byte network chunks, and times
``run_checks`` end to end on one core. Prints one row per stream length so the growth can be
read off: the µs per event column should stay flat (linear cost).

    python benchmarks/bench_checks.py [--sizes 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from conformance.checks import run_checks
from conformance.exchange import Chunk, Exchange
from conformance.schema import load_schemas


def build_stream(n_text: int) -> tuple[bytes, int]:
    events: list[dict[str, Any]] = []
    resp = {
        "id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "in_progress",
        "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
        "incomplete_details": None, "instructions": None, "metadata": {}, "temperature": None, "top_p": None,
        "text": {"format": {"type": "text"}}, "truncation": "disabled", "usage": None,
    }
    events.append({"type": "response.created", "response": resp})
    events.append({"type": "response.in_progress", "response": resp})
    msg = {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress", "content": []}
    events.append({"type": "response.output_item.added", "output_index": 0, "item": msg})
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events.append({"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0, "content_index": 0, "part": part})
    words = [f"w{i % 97} " for i in range(n_text)]
    for w in words:
        events.append({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": w, "logprobs": []})
    text = "".join(words)
    done_part = dict(part, text=text)
    events.append({"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0, "text": text, "logprobs": []})
    events.append({"type": "response.content_part.done", "item_id": "msg_1", "output_index": 0, "content_index": 0, "part": done_part})
    done_msg = dict(msg, status="completed", content=[done_part])
    events.append({"type": "response.output_item.done", "output_index": 0, "item": done_msg})
    fc = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "", "status": "in_progress"}
    events.append({"type": "response.output_item.added", "output_index": 1, "item": fc})
    frags = ['{"k":"'] + ["x" for _ in range(max(n_text // 10, 1))] + ['"}']
    for f in frags:
        events.append({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": f})
    args = "".join(frags)
    events.append({"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 1, "name": "f", "arguments": args})
    done_fc = dict(fc, arguments=args, status="completed")
    events.append({"type": "response.output_item.done", "output_index": 1, "item": done_fc})
    usage = {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}, "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 3}
    events.append({"type": "response.completed", "response": dict(resp, status="completed", output=[done_msg, done_fc], usage=usage)})
    out = []
    for seq, ev in enumerate(events):
        ev["sequence_number"] = seq
        out.append(f"event: {ev['type']}\ndata: {json.dumps(ev, separators=(',', ':'))}\n\n")
    return "".join(out).encode(), len(events)


def measure(n_text: int, repeat: int) -> tuple[int, float]:
    body, n_events = build_stream(n_text)
    chunks = [Chunk(0.0, body[i : i + 1400]) for i in range(0, len(body), 1400)]
    best = float("inf")
    for _ in range(repeat):
        ex = Exchange("bench", 0, "http://127.0.0.1/v1/responses", {"model": "m", "input": "x"}, status=200, headers={"content-type": "text/event-stream"}, chunks=chunks)
        t0 = time.perf_counter()
        results = run_checks(ex, profile="strict")
        elapsed = time.perf_counter() - t0
        bad = [f for o in results.values() for f in o.findings]
        assert not bad, bad[:3]
        best = min(best, elapsed)
    return n_events, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load_schemas()
    measure(200, 1)  # warm the compiled validators
    print(f"{'events':>10} {'seconds':>9} {'events/s':>11} {'µs/event':>9}")
    rates = []
    for size in (int(s) for s in args.sizes.split(",")):
        n, secs = measure(size, args.repeat)
        rates.append(n / secs)
        print(f"{n:>10} {secs:>9.3f} {n / secs:>11,.0f} {secs / n * 1e6:>9.2f}")
    spread = max(rates) / min(rates)
    print(f"cost per event varies by a factor of {spread:.2f} across sizes (1.00 = perfectly linear)")
    print(f"slowest: {min(rates):,.0f} events/s (target ≥ 200,000)")


if __name__ == "__main__":
    main()
