"""The reference bridge against a tiny real chat upstream: translation both ways, and the faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from conformance.reference import FAULTS, Fault, ReferenceBridge
from conformance.reference.__main__ import main as cli_main
from conformance.sse import SSEParser

ROOT = Path(__file__).resolve().parents[2]
EVENT = TypeAdapter(ResponseStreamEvent)
HTTP = httpx.Client(timeout=5)  # one client for the module: creating one costs ~40 ms


# -- a chat upstream that replays one raw body and records what it was sent ------------------------
class _Upstream(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    requests: list[dict[str, Any]]


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Upstream

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.requests.append(json.loads(self.rfile.read(length)))
        server = self.server
        ok = server.status == 200
        self.send_response(server.status)
        default = "text/event-stream" if ok else "application/json"
        self.send_header("Content-Type", server.content_type or default)
        self.send_header("Content-Length", str(len(server.body)))
        self.end_headers()
        self.wfile.write(server.body)


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[_Upstream]:
    server = _Upstream(("127.0.0.1", 0), _UpstreamHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def upstream(upstream_server: _Upstream) -> _Upstream:
    upstream_server.status, upstream_server.body, upstream_server.content_type = 200, b"", None
    upstream_server.requests.clear()
    return upstream_server


def upstream_url(server: _Upstream) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def sse(*chunks: dict[str, Any] | str, done: bool = True) -> bytes:
    lines = [c if isinstance(c, str) else f"data: {json.dumps(c)}\n\n" for c in chunks]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [choice],
        **extra,
    }


USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
TEXT = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk(finish="stop"),
    {"id": "chatcmpl-1", "choices": [], "usage": USAGE},
)
TOOL_AND_TEXT = sse(
    chunk({"content": "Let me check."}),
    chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "call_A", "function": {"name": "get_weather", "arguments": ""}}
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    chunk(finish="tool_calls", usage=USAGE),
)
REQUEST: dict[str, Any] = {"model": "gpt-test", "input": "hi", "stream": True}


class Exchange:
    def __init__(self, status: int, headers: httpx.Headers, raw: bytes, error: str | None) -> None:
        self.status, self.headers, self.raw, self.error = status, headers, raw, error
        parser = SSEParser()
        every = parser.feed(raw) + parser.close()
        self.sse = [e for e in every if e.data != "[DONE]"]
        self.done = [e.index for e in every if e.data == "[DONE]"]
        self.last_index = every[-1].index if every else None
        self.parser = parser
        self.events = [json.loads(e.data) for e in self.sse if e.data.startswith("{")]

    @property
    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


def post(bridge: ReferenceBridge, body: dict[str, Any] | None = None) -> Exchange:
    raw, error = b"", None
    with HTTP.stream("POST", bridge.url + "/responses", json=body or REQUEST) as response:
        try:
            for data in response.iter_raw():
                raw += data
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        return Exchange(response.status_code, response.headers, raw, error)


def run(
    upstream: _Upstream, body: bytes, *faults: str, request: dict[str, Any] | None = None
) -> Exchange:
    upstream.body = body
    with ReferenceBridge(upstream_url(upstream), faults=faults) as bridge:
        return post(bridge, request)


def assert_valid(ex: Exchange) -> None:
    """Every event validates against the SDK's own models, and the stream is well formed."""
    assert ex.status == 200 and ex.headers["content-type"] == "text/event-stream"
    assert [e["sequence_number"] for e in ex.events] == list(range(len(ex.events)))
    assert all(e.event == json.loads(e.data)["type"] for e in ex.sse)
    assert ex.types[:2] == ["response.created", "response.in_progress"]
    assert ex.types[-1] in ("response.completed", "response.incomplete", "response.failed")
    assert not ex.parser.issues and ex.error is None
    assert ex.done == [ex.last_index], "one data: [DONE], after the terminal event"
    for event in ex.events:
        EVENT.validate_python(event)
    terminal = ex.events[-1]["response"]
    assert terminal["id"] == ex.events[0]["response"]["id"]
    assert terminal["output"] == [e["item"] for e in ex.of("response.output_item.done")]
    added = [e["output_index"] for e in ex.of("response.output_item.added")]
    assert added == list(range(len(added)))


# -- stream translation ----------------------------------------------------------------------------
def test_text_stream_order_and_sequence(upstream: _Upstream) -> None:
    ex = run(upstream, TEXT)
    assert_valid(ex)
    assert ex.types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert ex.of("response.output_text.done")[0]["text"] == "Hello"
    item = ex.of("response.output_item.done")[0]["item"]
    assert item["id"].startswith("msg_") and item["status"] == "completed"
    assert item["content"] == [
        {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
    ]
    response = ex.events[-1]["response"]
    assert response["status"] == "completed" and response["model"] == "gpt-test"
    assert response["usage"] == {
        "input_tokens": 11,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 18,
    }


def test_deepseek_reasoning_then_text(upstream: _Upstream) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 9, "prompt_cache_hit_tokens": 3}
    body = sse(
        chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
        ": keep-alive\n\n",
        chunk({"content": None, "reasoning_content": "Think"}),
        chunk({"content": None, "reasoning_content": "ing."}),
        chunk({"content": "Answer", "reasoning_content": None}),
        chunk({"content": ""}, finish="stop", usage=usage),
    )
    ex = run(upstream, body)
    assert_valid(ex)
    added = [e["item"]["type"] for e in ex.of("response.output_item.added")]
    assert added == ["reasoning", "message"]
    reasoning = ex.of("response.output_item.done")[0]
    assert reasoning["output_index"] == 0 and reasoning["item"]["id"].startswith("rs_")
    assert reasoning["item"]["summary"] == [{"type": "summary_text", "text": "Thinking."}]
    assert ex.of("response.reasoning_summary_text.done")[0]["text"] == "Thinking."
    assert [e["delta"] for e in ex.of("response.reasoning_summary_text.delta")] == ["Think", "ing."]
    assert ex.of("response.reasoning_summary_part.done")[0]["part"] == {"type": "summary_text", "text": "Thinking."}
    assert ex.of("response.output_item.done")[1]["output_index"] == 1
    usage_out = ex.events[-1]["response"]["usage"]
    assert (
        usage_out["input_tokens_details"]["cached_tokens"] == 3 and usage_out["total_tokens"] == 14
    )


def test_tool_call_arguments_before_name(upstream: _Upstream) -> None:
    body = sse(
        chunk({"role": "assistant", "content": None}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_x1", "function": {"name": "get_", "arguments": 'ty":'}}
                ]
            }
        ),
        chunk(
            {"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": '"Paris"}'}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "", "arguments": ""}}]}),
        chunk({"tool_calls": []}, finish="tool_calls"),
    )
    ex = run(upstream, body)
    assert_valid(ex)
    added = ex.of("response.output_item.added")[0]["item"]
    done = ex.of("response.output_item.done")[0]["item"]
    for item in (added, done):
        assert item["name"] == "get_weather" and item["call_id"] == "call_x1"
        assert item["id"].startswith("fc_")
    deltas = "".join(e["delta"] for e in ex.of("response.function_call_arguments.delta"))
    assert deltas == done["arguments"] == '{"city":"Paris"}'
    assert ex.of("response.function_call_arguments.done")[0]["arguments"] == deltas
    assert all(e["item_id"] == added["id"] for e in ex.of("response.function_call_arguments.delta"))


def test_two_parallel_calls_and_parameterless(upstream: _Upstream) -> None:
    body = sse(
        chunk({"role": "assistant", "content": None, "refusal": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "a", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":1}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "call_2", "type": "function", "function": {"name": "b"}}
                ]
            }
        ),
        chunk(finish="tool_calls"),
        {"choices": [], "usage": USAGE},
    )
    ex = run(upstream, body)
    assert_valid(ex)
    items = [e["item"] for e in ex.of("response.output_item.done")]
    assert [(i["name"], i["call_id"], i["arguments"]) for i in items] == [
        ("a", "call_1", '{"x":1}'),
        ("b", "call_2", "{}"),
    ]
    assert items[0]["id"] != items[1]["id"]


@pytest.mark.slow
def test_text_then_tool_call_through_the_openai_sdk(upstream: _Upstream) -> None:
    """The strictest real consumer (``responses.stream()``) accepts the stream."""
    upstream.body = TOOL_AND_TEXT
    with ReferenceBridge(upstream_url(upstream)) as bridge:
        client = openai.OpenAI(base_url=bridge.url, api_key="test", max_retries=0)
        with client.responses.stream(model="gpt-test", input="weather?") as stream:
            final = stream.get_final_response()
    assert final.output_text == "Let me check."
    call = final.output[1]
    assert call.type == "function_call" and call.call_id == "call_A"
    assert call.arguments == '{"city":"Paris"}'


def test_length_is_incomplete(upstream: _Upstream) -> None:
    ex = run(upstream, sse(chunk({"content": "Once upon"}), chunk(finish="length", usage=USAGE)))
    assert_valid(ex)
    response = ex.events[-1]
    assert response["type"] == "response.incomplete"
    assert response["response"]["status"] == "incomplete"
    assert response["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["response"]["output"][0]["status"] == "incomplete"


def test_usage_after_finish_is_in_terminal(upstream: _Upstream) -> None:
    usage = {
        **USAGE,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    body = sse(
        chunk({"content": "Hi"}),
        chunk(finish="stop"),
        chunk(finish="stop"),  # duplicated finish chunk (OpenRouter)
        {"id": "x", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
        {"id": "x", "choices": [], "usage": usage},  # latest wins, never summed
    )
    ex = run(upstream, body)
    assert_valid(ex)
    assert ex.types.count("response.completed") == 1
    usage_out = ex.events[-1]["response"]["usage"]
    assert usage_out["input_tokens"] == 11 and usage_out["output_tokens"] == 7
    assert usage_out["input_tokens_details"]["cached_tokens"] == 4
    assert usage_out["output_tokens_details"]["reasoning_tokens"] == 2


def test_upstream_that_ignores_stream_true(upstream: _Upstream) -> None:
    """A backend answering one chat.completion JSON body is still translated, not failed."""
    upstream.content_type = "application/json"
    message = {
        "role": "assistant",
        "content": "Sure.",
        "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    completion = {
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": USAGE,
    }
    ex = run(upstream, json.dumps(completion).encode())
    assert_valid(ex)
    output = ex.events[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["message", "function_call"]
    assert output[1]["call_id"] == "call_9"


def test_upstream_500_becomes_502_envelope(upstream: _Upstream) -> None:
    upstream.status = 500
    ex = run(upstream, json.dumps({"error": {"message": "boom", "type": "server_error"}}).encode())
    assert ex.status == 502 and ex.headers["content-type"] == "application/json"
    error = json.loads(ex.raw)["error"]
    assert "boom" in error["message"] and set(error) == {"message", "type", "param", "code"}


def test_upstream_400_keeps_its_class(upstream: _Upstream) -> None:
    upstream.status = 400
    ex = run(
        upstream, json.dumps({"object": "error", "message": "bad model", "code": 400}).encode()
    )
    assert ex.status == 400 and "bad model" in json.loads(ex.raw)["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        sse(chunk({"content": "partial"}), done=False),
        sse(
            chunk({"content": "partial"}),
            {"error": {"message": "overloaded", "type": "server_error"}},
        ),
        sse(),
    ],
    ids=["eof-without-finish", "mid-stream-error", "bare-done"],
)
def test_upstream_failure_is_response_failed(upstream: _Upstream, body: bytes) -> None:
    ex = run(upstream, body)
    assert_valid(ex)
    failed = ex.events[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert (
        failed["response"]["error"]["code"] == "server_error"
        and failed["response"]["error"]["message"]
    )
    assert ex.types.count("response.failed") == 1


def test_bad_json_is_400(upstream: _Upstream) -> None:
    with ReferenceBridge(upstream_url(upstream)) as bridge:
        response = httpx.post(bridge.url + "/responses", content=b"{nope", timeout=5)
        health = httpx.get(bridge.url.removesuffix("/v1") + "/health", timeout=5)
        models = httpx.get(bridge.url + "/models", timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert health.status_code == 200 and models.status_code == 200
    assert not upstream.requests


# -- request translation ---------------------------------------------------------------------------
def test_request_translation(upstream: _Upstream) -> None:
    request = {
        "model": "gpt-test",
        "stream": True,
        "instructions": "Be brief.",
        "store": False,
        "metadata": {"k": "v"},
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "abc",
        "max_output_tokens": 100,
        "temperature": 0.2,
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": False,
        "text": {
            "format": {
                "type": "json_schema",
                "name": "w",
                "schema": {"type": "object"},
                "strict": True,
            }
        },
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "d",
                "parameters": {"type": "object"},
                "strict": True,
            },
            {"type": "web_search"},
        ],
        "input": [
            {"role": "developer", "content": "Dev rules."},
            {
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "Sys."}],
            },
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {
                "type": "function_call",
                "id": "fc_2",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": '{"city":"Rome"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [{"type": "input_text", "text": "rainy"}],
            },
            {
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Paris sunny, Rome rainy."}],
            },
            {"role": "user", "content": "Thanks"},
        ],
    }
    ex = run(upstream, TEXT, request=request)
    assert_valid(ex)
    chat = upstream.requests[-1]
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief.\n\nDev rules.\n\nSys."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "rainy"},
        {"role": "assistant", "content": "Paris sunny, Rome rainy."},
        {"role": "user", "content": "Thanks"},
    ]
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "d",
                "parameters": {"type": "object"},
                "strict": True,
            },
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (
        chat["parallel_tool_calls"] is False
        and chat["max_tokens"] == 100
        and chat["temperature"] == 0.2
    )
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
    }
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    for key in (
        "store",
        "metadata",
        "include",
        "prompt_cache_key",
        "instructions",
        "input",
        "text",
    ):
        assert key not in chat
    echoed = ex.events[0]["response"]
    assert echoed["metadata"] == {"k": "v"} and echoed["store"] is False
    assert echoed["instructions"] == "Be brief." and echoed["tools"] == request["tools"]
    assert echoed["text"]["format"]["type"] == "json_schema"


def test_unsupported_input_is_400_not_500(upstream: _Upstream) -> None:
    bad = {"model": "m", "input": [{"type": "mystery"}]}
    ex = run(upstream, TEXT, request=bad)
    assert ex.status == 400 and json.loads(ex.raw)["error"]["param"] == "input[0].type"
    ex = run(
        upstream, TEXT, request={"model": "m", "input": "hi", "previous_response_id": "resp_1"}
    )
    assert ex.status == 400 and json.loads(ex.raw)["error"]["param"] == "previous_response_id"
    assert not upstream.requests


def test_non_streaming_request_returns_response(upstream: _Upstream) -> None:
    upstream.body = TOOL_AND_TEXT
    with ReferenceBridge(upstream_url(upstream)) as bridge:
        response = httpx.post(
            bridge.url + "/responses", json={"model": "gpt-test", "input": "hi"}, timeout=5
        )
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "response" and body["status"] == "completed"
    assert [i["type"] for i in body["output"]] == ["message", "function_call"]
    assert body["usage"]["total_tokens"] == 18
    assert upstream.requests[-1]["stream"] is True


# -- bridge lifecycle and CLI ----------------------------------------------------------------------
def test_unknown_fault_is_value_error() -> None:
    with pytest.raises(ValueError, match="valid names"):
        ReferenceBridge("http://127.0.0.1:1/v1", faults=["no-such-fault"])
    with pytest.raises(ValueError):
        ReferenceBridge("http://127.0.0.1:1/v1", host="0.0.0.0")


def test_cli_list_faults_and_unknown_fault(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--list-faults"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in FAULTS)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--upstream-url", "http://127.0.0.1:1/v1", "--fault", "nope"])
    assert exit_info.value.code == 2


def test_cli_serves_until_sigterm(upstream: _Upstream) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance.reference", "--upstream-url", upstream_url(upstream)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.split()[-1]
        assert httpx.get(url.removesuffix("/v1") + "/health", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_stop_is_prompt_while_stalling(upstream: _Upstream) -> None:
    upstream.body = TEXT
    bridge = ReferenceBridge(upstream_url(upstream), faults=["X-stall"])
    bridge.start()
    events: list[str] = []
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", bridge.url + "/responses", json=REQUEST) as response,
    ):
        lines = response.iter_lines()
        while len(events) < 2:
            line = next(lines)
            if line.startswith("event:"):
                events.append(line.split()[-1])
        started = time.monotonic()
        bridge.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(httpx.HTTPError):
            for _ in lines:
                pass
    assert events == ["response.created", "response.in_progress"]


# -- faults ----------------------------------------------------------------------------------------
def test_fault_registry_shape() -> None:
    assert len(FAULTS) >= 40
    for name, fault in FAULTS.items():
        assert isinstance(fault, Fault) and fault.name == name
        assert fault.expected_checks and fault.description.endswith(".")
        assert name.startswith(fault.bug_class) or fault.bug_class == "X"


@pytest.mark.parametrize("name", sorted(set(FAULTS) - {"X-stall", "X-endless"}))
def test_every_fault_ends_the_exchange(upstream: _Upstream, name: str) -> None:
    ex = run(upstream, TOOL_AND_TEXT, name)
    assert ex.status in (200, 400, 500, 502)


def test_fault_mutations_on_the_wire(upstream: _Upstream) -> None:
    clean = run(upstream, TOOL_AND_TEXT)
    assert_valid(clean)

    ex = run(upstream, TOOL_AND_TEXT, "S1-drop-terminal")
    assert "response.completed" not in ex.types and ex.error is None
    assert ex.types == clean.types[:-1]

    ex = run(upstream, TOOL_AND_TEXT, "S5-content-type-json")
    assert ex.headers["content-type"] == "application/json" and ex.types == clean.types

    ex = run(upstream, TOOL_AND_TEXT, "I1-sequence-gap")
    assert [e["sequence_number"] for e in ex.events][3:6] == [3, 24, 25]

    ex = run(upstream, TOOL_AND_TEXT, "S5-stale-event-name")
    assert ex.sse[-1].event == "response.created" and ex.types[-1] == "response.completed"

    ex = run(upstream, TOOL_AND_TEXT, "S5-no-final-blank-line")
    assert [i.kind for i in ex.parser.issues] == ["unterminated_final_event"]

    ex = run(upstream, TOOL_AND_TEXT, "X-cut-connection")
    assert ex.error is not None and len(ex.events) == 4

    ex = run(upstream, TOOL_AND_TEXT, "X-garbage-line")
    assert ex.sse[2].data == "<<garbage>>"

    ex = run(upstream, TOOL_AND_TEXT, "H-status-500")
    assert ex.status == 500 and json.loads(ex.raw)["error"]["message"]

    ex = run(upstream, TOOL_AND_TEXT, "I3-call-id-equals-item-id")
    call = ex.of("response.output_item.done")[1]["item"]
    assert call["id"] == call["call_id"] == "call_A"

    ex = run(upstream, TOOL_AND_TEXT, "T4-cumulative-arguments")
    assert [e["delta"] for e in ex.of("response.function_call_arguments.delta")] == [
        '{"city":',
        '{"city":"Paris"}',
    ]

    ex = run(upstream, TOOL_AND_TEXT, "S4-interleave-items")
    assert (
        ex.types.index("response.output_item.done")
        > [i for i, t in enumerate(ex.types) if t == "response.output_item.added"][1]
    )

    ex = run(upstream, TOOL_AND_TEXT, "X2-strip-done-text")
    assert ex.of("response.output_text.done")[0]["text"] == "Let me check"
    assert ex.events[-1]["response"]["output"][0]["content"][0]["text"] == "Let me check"

    ex = run(upstream, TOOL_AND_TEXT, "Q2-wrong-last-message")
    assert upstream.requests[-1]["messages"][-1]["content"] == "hi (edited)"


def test_endless_fault_streams_until_stopped(upstream: _Upstream) -> None:
    upstream.body = TEXT
    bridge = ReferenceBridge(upstream_url(upstream), faults=["X-endless"])
    bridge.start()
    deltas = 0
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", bridge.url + "/responses", json=REQUEST) as response,
    ):
        for line in response.iter_lines():
            deltas += line == "event: response.output_text.delta"
            if deltas == 20:
                break
        bridge.stop()
    assert deltas == 20
