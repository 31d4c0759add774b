"""Client impact: the replay server, real Python clients' verdicts on crafted streams, the
impact table the lab wrote, and the default profile's severity derived from it."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import httpx
import pytest

from conformance.checks import REGISTRY, run_checks
from conformance.cli import main
from conformance.clients import (
    Capture,
    ReplayServer,
    impact_for,
    load_table,
    replay_capture,
    replay_exchange,
    select_clients,
)
from conformance.clients._carried import carried_events
from conformance.clients._defects import CLEAN, DEFECTS, clean_events, encode
from conformance.clients.lab import run_lab
from conformance.exchange import Chunk, Exchange, Severity

EXPECTED = carried_events(clean_events())
OPENAI = "openai-python.raw,openai-python.stream,openai-python.raw-strict,openai-python.stream-strict"


def verdicts(defect: str, clients: str = OPENAI) -> dict[str, Any]:
    capture = CLEAN.build() if defect == "clean" else DEFECTS[defect].build()
    return {v.client: v for v in replay_capture(capture, select_clients(clients), expected=EXPECTED, timeout=10)}


def test_replay_server_sends_the_capture_byte_for_byte() -> None:
    body = encode(clean_events())
    capture = Capture(201, {"content-type": "text/event-stream", "x-extra": "1"}, [body[:10], body[10:]])
    with ReplayServer(capture) as server:
        r = httpx.post(f"{server.base_url}/responses", json={"model": "m", "input": "x"}, timeout=5)
        assert (r.status_code, r.headers["x-extra"], r.content) == (201, "1", body)
        assert server.requests[0]["body"] == {"model": "m", "input": "x"}


def test_replay_server_drops_the_connection_like_the_capture() -> None:
    with ReplayServer(Capture(200, {"content-type": "text/event-stream"}, [b"data: {}\n\n"], cut="drop")) as server, pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{server.base_url}/responses", json={}, timeout=5).read()


def test_every_openai_python_mode_is_ok_on_the_clean_stream() -> None:
    got = verdicts("clean")
    assert {name: v.verdict for name, v in got.items()} == dict.fromkeys(OPENAI.split(","), "ok")


def test_missing_created_breaks_only_the_stream_helper_with_its_own_error() -> None:
    got = verdicts("no-created")
    assert got["openai-python.raw"].verdict == "ok"
    err = got["openai-python.stream"]
    assert err.verdict == "ERR"
    assert "Expected to have received `response.created`" in err.message
    assert err.where.startswith("RuntimeError at openai/lib/streaming/responses/_responses.py:")


def test_a_function_call_never_done_is_lost_by_raw_iteration() -> None:
    loss = verdicts("no-fc-item-done")["openai-python.raw"]
    assert loss.verdict == "LOSS"
    assert loss.evidence["tool_calls"] == {"expected": [{"call_id": "call_1", "name": "f", "arguments": {"a": 1}}], "got": []}


def test_missing_cache_write_tokens_breaks_only_strict_validation() -> None:
    got = verdicts("usage-no-cache-write")
    assert got["openai-python.raw"].verdict == got["openai-python.stream"].verdict == "ok"
    strict = got["openai-python.raw-strict"]
    assert strict.verdict == "ERR"
    assert "cache_write_tokens: Field required" in strict.message


def test_nonstream_client_ok_err_and_loss() -> None:
    response = clean_events()[-1]["response"]
    spec = select_clients("openai-python.nonstream")
    ok = replay_capture(Capture(200, {"content-type": "application/json"}, [json.dumps(response).encode()]), spec, stream=False)
    assert ok[0].verdict == "ok"
    broken = replay_capture(Capture(200, {"content-type": "application/json"}, [b"{not json"]), spec, stream=False, expected=EXPECTED)
    assert broken[0].verdict == "ERR"
    emptied = replay_capture(
        Capture(200, {"content-type": "application/json"}, [json.dumps(dict(response, output=[])).encode()]), spec, stream=False, expected=EXPECTED
    )
    assert emptied[0].verdict == "LOSS" and "text" in emptied[0].evidence


def test_replay_exchange_judges_against_what_the_stream_carried() -> None:
    body = encode(clean_events()[:-1])  # no terminal event
    ex = Exchange("c", 0, "http://127.0.0.1:1/v1/responses", {}, status=200, headers={"content-type": "text/event-stream"}, chunks=[Chunk(0, body)])
    got = {v.client: v for v in replay_exchange(ex, "openai-python.raw,openai-python.stream")}
    assert got["openai-python.stream"].verdict == "ERR"
    assert got["openai-python.raw"].verdict == "ok"  # it carried no status, and raw reports none


def test_an_http_error_is_ok_when_the_client_raises() -> None:
    body = b'{"error":{"message":"boom","type":"server_error","param":null,"code":null}}'
    ex = Exchange("c", 0, "u", {}, status=500, headers={"content-type": "application/json"}, chunks=[Chunk(0, body)])
    assert {v.verdict for v in replay_exchange(ex, "openai-python.raw")} == {"ok"}


@pytest.mark.skipif(importlib.util.find_spec("agents") is None, reason="the clients extra is not installed")
@pytest.mark.slow
def test_agents_sdk_needs_the_terminal_event() -> None:
    got = verdicts("no-terminal", "openai-agents")["openai-agents"]
    assert got.verdict == "ERR" and "Model did not produce a final response" in got.message
    assert verdicts("clean", "openai-agents")["openai-agents"].verdict == "ok"


@pytest.mark.skipif(importlib.util.find_spec("langchain_openai") is None, reason="the clients extra is not installed")
def test_langchain_loses_cumulative_argument_deltas() -> None:
    got = verdicts("cumulative-args", "langchain")["langchain"]
    assert got.verdict == "LOSS" and "tool_calls" in got.evidence


def test_unknown_client_names_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clients", "lab", "--clients", "nope"]) == 2
    out = capsys.readouterr().out.strip()
    assert out.startswith("error: unknown client 'nope'") and "\n" not in out


# --- the committed impact table -------------------------------------------------------------


def test_the_catalog_has_at_least_30_defects_each_firing_its_check() -> None:
    table = load_table()
    assert len(DEFECTS) >= 30
    assert set(table["defects"]) == {"clean", *DEFECTS}
    assert table["defects"]["clean"]["fires"] == []
    for name, row in table["defects"].items():
        if name != "clean":
            assert row["check"] in row["fires"], name
            assert row["check"] in REGISTRY


@pytest.mark.slow
def test_committed_table_is_what_the_lab_measures_for_the_python_clients() -> None:
    """Regenerates the Python clients' columns (`responses-conformance clients lab --clients python`)."""
    table = load_table()
    clients = [
        c for c in select_clients("python")
        if c.missing() is None and c.version() == table["clients"].get(c.name, {}).get("version")
    ]
    if not clients:
        pytest.skip("no Python client here has the version the table was measured with (pip install '.[clients]')")
    fresh = run_lab(clients, timeout=10)
    assert fresh["clients"].keys() <= table["clients"].keys()
    for name, row in fresh["defects"].items():
        old = table["defects"][name]
        assert (row["check"], row["fires"], row["keys"]) == (old["check"], old["fires"], old["keys"]), name
        for client, v in row["verdicts"].items():
            assert v == old["verdicts"][client], f"{name} / {client}: lab says {v}, the table {old['verdicts'][client]}"


# --- severity of the default profile from the table -----------------------------------------


def _exchange(body: bytes) -> Exchange:
    return Exchange("c", 0, "u", {"model": "m", "input": "x"}, status=200, headers={"content-type": "text/event-stream"}, chunks=[Chunk(0, body)])


def test_a_valid_stream_lacking_only_cache_write_tokens_gives_no_error() -> None:
    events = clean_events()
    del events[-1]["response"]["usage"]["input_tokens_details"]["cache_write_tokens"]
    results = run_checks(_exchange(encode(events)))
    findings = [f for o in results.values() for f in o.findings]
    assert findings, "the schema check still notes the missing field"
    assert {f.severity for f in findings} == {Severity.WARNING}
    assert {f.check_id for f in findings} == {"schema.usage_details"}
    strict = run_checks(_exchange(encode(events)), profile="strict")
    assert {f.severity for o in strict.values() for f in o.findings} == {Severity.ERROR}


def test_severity_follows_the_clients_that_break() -> None:
    created = impact_for("lifecycle.created_first")
    assert created is not None and created.level == "error" and "openai-python.stream" in created.clients
    assert REGISTRY["lifecycle.created_first"].severity("openai") is Severity.ERROR
    note = impact_for("seq.monotonic")
    assert note is not None and note.level == "note" and note.summary.startswith("no tested client breaks on this")
    assert REGISTRY["seq.monotonic"].severity("openai") is Severity.INFO
    assert REGISTRY["seq.monotonic"].severity("strict") is Severity.ERROR
    cache = impact_for("schema.usage_details", "/response/usage/input_tokens_details/cache_write_tokens")
    assert cache is not None and cache.level == "warning" and "_strict_response_validation" in cache.summary


def test_checks_the_lab_does_not_cover_keep_their_own_severity() -> None:
    assert impact_for("oracle.text") is None
    assert REGISTRY["oracle.text"].severity("openai") is Severity.ERROR
