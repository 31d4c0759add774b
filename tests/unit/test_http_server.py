"""What every harness HTTP server shares (conformance.http_server), on real sockets on 127.0.0.1:
request bodies (chunked, gzip, Expect: 100-continue), TCP_NODELAY, the backlog, and server-thread
exceptions raised in the run as harness errors, never findings against the proxy."""

from __future__ import annotations

import gzip
import io
import json
import socket
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.cassette import Cassette, load_cassettes, parse_cassette
from conformance.exceptions import HarnessError
from conformance.harness import Harness
from conformance.http_server import (
    BodyError,
    HarnessServer,
    ServerThreadError,
    decode_content,
    pending_errors,
    raise_server_errors,
    read_chunked,
)
from conformance.options import Settings
from conformance.recorder import Recorder
from conformance.reference import ReferenceBridge
from conformance.upstream import FakeUpstream, _Handler

pytest_plugins = ["pytester"]

PROMPT = "What is the weather in Lisbon?"
CHUNKS = [
    {"t_ms": 0, "data": 'data: {"choices":[{"index":0,"delta":{"content":"Sunny"},"finish_reason":null}]}\n\n'},
    {"t_ms": 5, "data": 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'},
]
REPLAY = "".join(str(c["data"]) for c in CHUNKS).encode()
BODY = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}).encode()


def cassette(cid: str = "weather", prompt: str = PROMPT) -> Cassette:
    return parse_cassette(
        {
            "format": 1,
            "id": cid,
            "description": "test",
            "tags": [],
            "provenance": {"source": "authored", "backend": "openai"},
            "turns": [
                {
                    "request": {"model": "m", "input": prompt},
                    "upstream": [{"status": 200, "headers": {"content-type": "text/event-stream"}, "chunks": CHUNKS}],
                }
            ],
        }
    )


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream([cassette()]) as server:
        yield server
    pending_errors()  # a test that provoked an error has raised it; nothing leaks into the next


def raw_exchange(port: int, head: str, body: bytes = b"", *, expect_continue: bool = False) -> tuple[bytes, bytes]:
    """Send one request on a raw socket; (interim answer if any, final answer up to the end)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode())
        interim = b""
        if expect_continue:
            interim = sock.recv(65536)  # the body is held back until the server says go on
            assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        data = b""
        while not _complete(data):
            more = sock.recv(65536)
            if not more:
                break
            data += more
        return interim, data


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return body.endswith(b"0\r\n\r\n")


def chunked(data: bytes, size: int = 7) -> bytes:
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-Trailer: t\r\n\r\n"


def test_a_chunked_body_matches_exactly_like_content_length(upstream: FakeUpstream) -> None:
    url = upstream.url + "/chat/completions"
    plain = httpx.post(url, content=BODY, headers={"Content-Type": "application/json"})
    streamed = httpx.post(url, content=iter([BODY[:10], BODY[10:31], BODY[31:]]), headers={"Content-Type": "application/json"})
    assert streamed.request.headers["Transfer-Encoding"] == "chunked"
    assert (streamed.status_code, streamed.content) == (plain.status_code, plain.content) == (200, REPLAY)
    first, second = upstream.log("weather")
    assert (second.turn, second.match, second.body) == (first.turn, first.match, first.body) == (0, "exact", json.loads(BODY))


def test_chunk_extensions_and_trailers_are_read(upstream: FakeUpstream) -> None:
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    _, answer = raw_exchange(upstream.port, head, chunked(BODY))
    assert answer.startswith(b"HTTP/1.1 200")
    assert upstream.log("weather")[0].match == "exact"


def test_a_gzip_transfer_coding_under_chunked_is_undone(upstream: FakeUpstream) -> None:
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    _, answer = raw_exchange(upstream.port, head, chunked(gzip.compress(BODY)))
    assert answer.startswith(b"HTTP/1.1 200")
    assert upstream.log("weather")[0].body == json.loads(BODY)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_an_encoded_body_is_decoded(upstream: FakeUpstream, coding: str) -> None:
    data = gzip.compress(BODY) if coding == "gzip" else zlib.compress(BODY)
    resp = httpx.post(upstream.url + "/chat/completions", content=data, headers={"Content-Encoding": coding})
    assert resp.status_code == 200
    assert upstream.log("weather")[0].body == json.loads(BODY)


def test_expect_100_continue_is_answered_before_the_body(upstream: FakeUpstream) -> None:
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {len(BODY)}\r\n\r\n"
    interim, answer = raw_exchange(upstream.port, head, BODY, expect_continue=True)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    ("headers", "body", "status", "words"),
    [
        ({"Content-Encoding": "gzip"}, b"not gzip", 400, "does not decode"),
        ({"Content-Encoding": "br"}, b"x", 415, "unsupported Content-Encoding 'br'"),
    ],
)
def test_an_unreadable_body_is_one_clear_line(upstream: FakeUpstream, headers: dict[str, str], body: bytes, status: int, words: str) -> None:
    resp = httpx.post(upstream.url + "/chat/completions", content=body, headers=headers)
    assert resp.status_code == status
    assert words in resp.json()["error"]["message"]
    assert pending_errors() == []  # the client's mistake, not a harness bug


def test_a_bad_chunk_size_is_one_clear_line(upstream: FakeUpstream) -> None:
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    _, answer = raw_exchange(upstream.port, head, b"zz\r\nabc\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"bad chunk-size line" in answer
    assert pending_errors() == []


def test_caps_hold_for_chunked_and_compressed_bodies() -> None:
    with pytest.raises(BodyError, match="exceeds the 10-byte cap") as info:
        read_chunked(io.BytesIO(chunked(b"x" * 11, size=4)), limit=10)
    assert info.value.status == 413
    bomb = gzip.compress(b"\0" * 100_000)
    with pytest.raises(BodyError, match="decodes to more than 1000 bytes"):
        decode_content(bomb, "gzip", limit=1000)
    with pytest.raises(BodyError, match="truncated"):
        decode_content(gzip.compress(BODY)[:-12], "gzip")
    assert decode_content(gzip.compress(zlib.compress(BODY)), "deflate, gzip") == BODY


def test_the_reference_bridge_and_the_recorder_read_bodies_the_same_way(upstream: FakeUpstream, tmp_path: Path) -> None:
    request = json.dumps({"model": "m", "input": PROMPT, "stream": False}).encode()
    with ReferenceBridge(upstream.url) as bridge:
        resp = httpx.post(bridge.url + "/responses", content=gzip.compress(request), headers={"Content-Encoding": "gzip"})
        assert resp.status_code == 200, resp.text
        resp = httpx.post(bridge.url + "/responses", content=iter([request[:5], request[5:]]))
        assert resp.status_code == 200, resp.text
    with Recorder(upstream.url, tmp_path, "all", write=False) as recorder:
        resp = httpx.post(recorder.url + "/chat/completions", content=gzip.compress(BODY), headers={"Content-Encoding": "gzip"})
        assert resp.status_code == 200 and resp.content == REPLAY
    assert [e.body for e in upstream.log("weather")][-1] == json.loads(BODY)  # forwarded decoded


def test_no_other_module_reads_request_bodies_by_hand() -> None:
    """One chunked-body reader (conformance/http_server.py) for every harness server."""
    root = Path(__file__).resolve().parents[2] / "conformance"
    readers = [p.relative_to(root).as_posix() for p in root.rglob("*.py") if ".rfile.readline(" in p.read_text("utf-8")]
    assert readers == []


def test_every_server_disables_nagle_and_has_a_real_backlog(upstream: FakeUpstream) -> None:
    assert HarnessServer.request_queue_size >= 1024
    assert _Handler.disable_nagle_algorithm
    # kept-alive requests each answer promptly (Nagle + delayed ACK made each wait ~40 ms)
    with httpx.Client() as client:
        for _ in range(20):
            assert client.post(upstream.url + "/chat/completions", content=BODY).status_code == 200


# -- server-thread exceptions are harness errors ----------------------------------------------
def _harness(upstream: FakeUpstream, c: Cassette) -> Harness:
    harness = Harness(Settings(upstream_url=upstream.url, cassette_dirs=[]))
    harness.start()
    harness.cassettes = [c]
    return harness


def test_an_exception_in_the_fake_upstream_is_a_harness_error(upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, interaction: Any) -> None:
        raise RuntimeError("injected fake-upstream bug")

    monkeypatch.setattr(_Handler, "_replay", broken)
    harness = _harness(upstream, cassette())
    try:
        with pytest.raises(HarnessError, match="harness bug: the fake upstream thread raised RuntimeError: injected fake-upstream bug") as info:
            harness.run(harness.cassettes[0])
    finally:
        harness.stop()
    log = Path(str(info.value).split("(traceback in ")[1].split(")")[0])
    assert "Traceback" in log.read_text("utf-8") and "injected fake-upstream bug" in log.read_text("utf-8")


def test_an_exception_in_the_reference_bridge_is_a_harness_error(upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    import conformance.reference._server as bridge_server

    def broken(request: Any) -> Any:
        raise KeyError("injected bridge bug")

    monkeypatch.setattr(bridge_server, "to_chat", broken)
    harness = _harness(upstream, cassette())
    try:
        with pytest.raises(HarnessError, match="the reference bridge thread raised KeyError"):
            harness.run(harness.cassettes[0])
    finally:
        harness.stop()


def test_an_exception_in_the_recorder_is_stored_and_raised(upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, record: Any, spec: Any) -> None:
        raise ValueError("injected recorder bug")

    monkeypatch.setattr(Recorder, "_log_request", broken)
    with Recorder(upstream.url, tmp_path, "all", write=False) as recorder:
        with pytest.raises(httpx.HTTPError):  # the thread died: the client sees the connection drop
            httpx.post(recorder.url + "/chat/completions", content=BODY)
        with pytest.raises(ServerThreadError, match="the recorder thread raised ValueError: injected recorder bug"):
            raise_server_errors()
    raise_server_errors()  # taken once: nothing left


def test_a_client_hanging_up_is_not_an_error(upstream: FakeUpstream) -> None:
    with socket.create_connection(("127.0.0.1", upstream.port)) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY[:5])
    time.sleep(0.2)  # the server thread reads the short body and answers a closed socket
    with FakeUpstream([cassette("other", "other prompt")]) as other:
        assert httpx.get(other.url.replace("/v1", "") + "/__conformance/health").status_code == 200
    raise_server_errors()


def test_the_cli_exits_2_with_one_line_on_a_harness_bug(tmp_path: Path) -> None:
    source = next(c for c in load_cassettes()[0] if c.id == "openai-text-include-usage").path
    script = textwrap.dedent(
        f"""
        import sys
        from conformance import upstream
        def broken(self, interaction):
            raise RuntimeError("injected fake-upstream bug")
        upstream._Handler._replay = broken
        from conformance.cli import main
        sys.exit(main(["run", "--cassettes", {str(source)!r}]))
        """
    )
    log = tmp_path / "server-errors.log"
    env = {"RESPONSES_CONFORMANCE_SERVER_ERROR_LOG": str(log), "PATH": "/usr/bin:/bin", "COLUMNS": "400"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.strip() == (
        f"error: harness bug: the fake upstream thread raised RuntimeError: injected fake-upstream bug (traceback in {log})"
    )
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "injected fake-upstream bug" in log.read_text("utf-8")


def test_the_recorder_logs_the_answer_before_the_harness_reads_it(upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy has the whole answer before the recorder has logged it; ``done`` waits for that."""
    from conformance.upstream import expecting

    slow_finish = Recorder.finished

    def finished(self: Recorder, record: Any, replayed: bool) -> None:
        time.sleep(0.3)
        slow_finish(self, record, replayed)

    monkeypatch.setattr(Recorder, "finished", finished)
    with Recorder(upstream.url, tmp_path, "all", write=False) as recorder:
        with expecting(recorder.url, "weather", 0):
            assert httpx.post(recorder.url + "/chat/completions", content=BODY).content == REPLAY
        [entry] = recorder.log_entries(None, 0)
        assert entry["response"] is not None and entry["response"]["status"] == 200


def test_pytest_stops_with_exit_2_on_a_harness_bug(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, interaction: Any) -> None:
        raise RuntimeError("injected fake-upstream bug")

    monkeypatch.setattr(_Handler, "_replay", broken)
    source = next(c for c in load_cassettes()[0] if c.id == "openai-text-include-usage").path
    result = pytester.runpytest("--conformance", "--conformance-cassettes", str(source), "-p", "no:cacheprovider")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*responses-conformance: harness bug: the fake upstream thread raised RuntimeError: injected fake-upstream bug*"])
    assert "FAILED" not in result.stdout.str()  # no finding against the proxy


@pytest.mark.slow
def test_pytest_under_xdist_ends_with_exit_2_and_the_line_on_a_harness_bug(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake upstream lives in the controller (patched here); the worker that meets the bug over
    HTTP stops, and the controller ends the run as interrupted (exit 2), not with findings (1)."""

    def broken(self: Any, interaction: Any) -> None:
        raise RuntimeError("injected fake-upstream bug")

    monkeypatch.setattr(_Handler, "_replay", broken)
    source = next(c for c in load_cassettes()[0] if c.id == "openai-text-include-usage").path
    result = pytester.runpytest("--conformance", "--conformance-cassettes", str(source), "-p", "no:cacheprovider", "-n", "1")
    line = "*responses-conformance: harness bug: the fake upstream thread raised RuntimeError: injected fake-upstream bug*"
    assert result.ret == 2, result.stdout.str()
    result.stdout.fnmatch_lines([f"*Interrupted: {line}"])
    assert "Traceback" not in result.stdout.str()
    assert "1 failed" in result.stdout.str()  # the one item that met it, shown with the line; the run stopped there


@pytest.mark.parametrize(
    "block",
    [
        b"Host: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n",
        b"Host: x\r\nX-Empty:\r\nX-Spaces:   padded value  \r\nAuthorization: Bearer sk-1\r\n",
        b"Host: x\nBare-LF: yes\n",
        b"Host: x\r\nFolded: first\r\n second line\r\nNext: 1\r\n",  # obs-fold: email's parser
        b"Host: x\r\nBad Name: v\r\nOk: 1\r\n",  # a name with a space: email's parser
        b"X-Latin: caf\xe9\r\nDup: 1\r\nDup: 2\r\n",
        b"",
    ],
)
def test_the_fast_header_reader_stores_what_http_client_stores(block: bytes) -> None:
    """HarnessHandler reads plain header lines itself; the message must equal the standard
    library's (``http.client.parse_headers``) in names, values, order and duplicates."""
    import http.client
    import io

    from conformance.http_server import _headers

    expected = http.client.parse_headers(io.BytesIO(block + b"\r\n"))
    lines = [line for line in io.BytesIO(block).readlines()]
    got = _headers(http.client.HTTPMessage, lines)
    assert list(got.items()) == list(expected.items())
    assert got.get_all("Dup") == expected.get_all("Dup")
    assert got.get("content-length") == expected.get("content-length")


def test_too_many_or_too_long_header_lines_are_431(tmp_path: Any) -> None:
    import socket

    from conformance.upstream import FakeUpstream

    with FakeUpstream() as up:
        for head in (
            b"".join(b"X-%d: 1\r\n" % i for i in range(101)),
            b"X-Long: " + b"a" * 70000 + b"\r\n",
        ):
            with socket.create_connection(("127.0.0.1", up.port), timeout=10) as sock:
                sock.sendall(b"GET /__conformance/health HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
                answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
        with socket.create_connection(("127.0.0.1", up.port), timeout=10) as sock:
            sock.sendall(b"GET /__conformance/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_the_date_header_is_the_current_http_date() -> None:
    """Formatted once a second and shared by the server threads: still a valid, current date."""
    import email.utils
    import time as _time

    from conformance.upstream import FakeUpstream

    with FakeUpstream() as up, httpx.Client() as client:
        for _ in range(3):
            date = client.get(up.url.rsplit("/v1", 1)[0] + "/__conformance/health").headers["date"]
            assert date.endswith(" GMT")
            assert abs(email.utils.parsedate_to_datetime(date).timestamp() - _time.time()) < 3
            _time.sleep(0.6)


def _nested_failure() -> BaseException:
    def inner() -> int:
        return {}["k"] + 1  # type: ignore[no-any-return]

    try:
        try:
            inner()
        except KeyError as exc:
            raise ValueError("boom") from exc
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


def test_a_harness_traceback_is_written_without_ast_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Harness threads format tracebacks while pytest's main thread may be parsing; CPython 3.11
    shares ast.parse's state between threads (gh-106905), so the harness never calls it: the text
    is the standard one without its caret lines, the chained exception included."""
    import ast
    import traceback

    from conformance.http_server import plain_traceback

    exc = _nested_failure()
    full = "".join(traceback.format_exception(exc))
    calls: list[object] = []
    real_parse = ast.parse
    monkeypatch.setattr(ast, "parse", lambda *a, **k: calls.append(a) or real_parse(*a, **k))
    text = plain_traceback(exc)
    assert calls == []
    assert "KeyError: 'k'" in text and "ValueError: boom" in text and "direct cause" in text
    assert text.splitlines() == [line for line in full.splitlines() if not (line.strip() and set(line.strip()) <= set("^~"))]
