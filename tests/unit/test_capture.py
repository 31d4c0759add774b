"""Captures and saved streams: read every accepted form, check offline, reproduce, lint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from chat_upstream import ChatUpstream

from conformance.capture import (
    CaptureError,
    cassette_from_capture,
    check_capture,
    load_capture,
    parse_capture_bytes,
)
from conformance.commands.check import lint
from conformance.driver import Limits, drive
from conformance.recorder import Recorder
from conformance.reference import ReferenceBridge
from conformance.resources import cassettes_dir

CODEX_STREAM = Path(__file__).resolve().parents[3] / "shared" / "captures" / "codex-0.169.0" / "codex-turn1-response.sse"
LIMITS = Limits(connect_timeout=2, first_byte_timeout=10, idle_timeout=5, total_timeout=20)
REQUEST = {"model": "m", "input": [{"role": "user", "content": "Capture test: say hello."}], "stream": True}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def two_leg_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("captures")
    with ChatUpstream() as upstream:
        chat = Recorder(upstream.url, out, write=False).start()
        bridge = ReferenceBridge(chat.url)
        bridge.start()
        client = Recorder(bridge.url, out, leg="responses", pair=chat).start()
        try:
            drive(client.url + "/responses", REQUEST, limits=LIMITS)
        finally:
            client.stop()
            bridge.stop()
            chat.stop()
    [path] = client.written
    return path


@pytest.fixture(scope="module")
def sse_bytes(two_leg_capture: Path) -> bytes:
    return b"".join(c.data for c in load_capture(two_leg_capture).responses.chunks)


def test_a_plain_sse_file_is_checked_without_oracle_or_headers(tmp_path: Path, sse_bytes: bytes) -> None:
    path = tmp_path / "stream.sse"
    path.write_bytes(sse_bytes)
    capture = load_capture(path)
    assert capture.kind == "sse" and capture.upstream == []
    result = check_capture(capture)
    assert result.findings() == []
    assert result.outcomes["upstream.matched"].skipped.startswith("offline check: the capture has no upstream leg")  # type: ignore[union-attr]
    assert result.outcomes["http.content_type"].skipped.startswith("offline check: the saved stream has no HTTP head")  # type: ignore[union-attr]
    assert result.outcomes["lifecycle.terminal_present"].skipped is None


def test_curl_i_output_keeps_the_head_so_header_checks_run(tmp_path: Path, sse_bytes: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    capture = parse_capture_bytes(head + sse_bytes, "curl-i.txt")
    assert capture.responses.status == 200
    result = check_capture(capture)
    assert {f.check_id for f in result.findings()} == {"http.content_type"}


def test_a_broken_saved_stream_gets_findings_without_a_misleading_repro(sse_bytes: bytes) -> None:
    cut = sse_bytes[: sse_bytes.index(b"event: response.completed")]
    result = check_capture(parse_capture_bytes(cut, "cut.sse"))
    fired = {f.check_id for f in result.findings()}
    assert "lifecycle.terminal_present" in fired
    assert all(f.repro is None for f in result.findings())


def test_a_real_codex_stream_is_clean() -> None:
    if not CODEX_STREAM.exists():
        pytest.skip("shared captures are not beside this checkout")
    assert check_capture(load_capture(CODEX_STREAM)).findings() == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02garbage", "binary data"),
        (b"hello world\nnot a stream\n", "no `data:` or `event:` line found"),
        (b'{"id": "resp_1", "object": "response"}', "neither a capture"),
        (b'{"format": 1, "id": "x", "turns": []}', "is a cassette, not a capture"),
        (b'{"format": "responses-conformance-capture", "version": 1, "id": "x"}', "not a valid capture: $: 'responses' is a required property"),
        (b"{not json", "not valid JSON"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n", "its head never ends"),
    ],
)
def test_garbage_is_one_clear_error(content: bytes, message: str) -> None:
    with pytest.raises(CaptureError) as info:
        parse_capture_bytes(content, "input.txt")
    assert message in str(info.value)
    assert str(info.value).startswith("input.txt: ")


def test_a_dumped_exchange_is_accepted(tmp_path: Path, two_leg_capture: Path) -> None:
    from conformance.capture import exchange_from_capture

    ex = exchange_from_capture(load_capture(two_leg_capture))
    path = tmp_path / "exchange.json"
    path.write_text(json.dumps(ex.to_json()), "utf-8")
    capture = load_capture(path)
    assert capture.kind == "exchange" and len(capture.upstream) == 1
    assert check_capture(capture).findings() == []


def test_from_capture_needs_the_upstream_leg(tmp_path: Path, sse_bytes: bytes) -> None:
    with pytest.raises(CaptureError, match="has no upstream leg"):
        cassette_from_capture([parse_capture_bytes(sse_bytes, "s.sse")])


def test_from_capture_sets_match_when_the_proxy_rewrote_the_prompt(two_leg_capture: Path) -> None:
    capture = load_capture(two_leg_capture)
    capture.upstream[0].request["messages"][-1]["content"] = "Rewritten by the proxy."
    doc = cassette_from_capture([capture], cassette_id="rewritten")
    assert doc["turns"][0]["match"] == {"last_message": "Rewritten by the proxy."}
    assert doc["provenance"]["source"] == "captured"


# -- commands --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_check_command_prints_the_report(two_leg_capture: Path) -> None:
    proc = cli("check", str(two_leg_capture))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())  # the title wraps around a long path
    assert "Responses conformance: capture" in text and "(both legs) · profile openai" in text
    assert "1 cassette, 1 exchange: no findings" in text and "PASSED" in text


def test_check_command_on_garbage_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    proc = cli("check", str(path))
    assert proc.returncode == 2
    assert proc.stdout.strip() == f"error: {path}: binary data, not a capture or an SSE stream"
    assert proc.stderr == ""


@pytest.mark.slow
def test_check_command_exits_1_on_findings_and_writes_json(tmp_path: Path, sse_bytes: bytes) -> None:
    path = tmp_path / "cut.sse"
    path.write_bytes(sse_bytes[: sse_bytes.index(b"event: response.completed")])
    proc = cli("check", str(path), "--json", str(tmp_path / "out.json"))
    assert proc.returncode == 1
    text = " ".join(proc.stdout.split())
    assert "1 ✗ lifecycle.terminal_present · 1 cassette · p-" in text, proc.stdout  # the verdict, as under run
    assert "repro:" not in text  # the saved file is the repro
    assert json.loads((tmp_path / "out.json").read_text("utf-8"))["cassette_id"] == "cut"


@pytest.mark.slow
def test_cassette_from_capture_command_writes_a_replayable_cassette(tmp_path: Path, two_leg_capture: Path) -> None:
    proc = cli("cassette", "from-capture", str(two_leg_capture), "-o", str(tmp_path), "--id", "captured-hello", "--backend", "testbed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = tmp_path / "captured-hello.json"
    assert path.exists()
    run = cli("run", "--cassettes", str(path))
    assert run.returncode == 0, run.stdout
    assert "captured-hello" in run.stderr and "no findings" in run.stdout
    bad = cli("cassette", "from-capture", str(tmp_path / "missing.json"))
    assert bad.returncode == 2 and bad.stdout.startswith("error: ") and "Traceback" not in bad.stdout + bad.stderr


def test_lint_finds_duplicates_unmatchable_turns_and_secrets(tmp_path: Path) -> None:
    source = cassettes_dir() / "text" / "openai-long-text.json"
    shutil.copy(source, tmp_path / "a.json")
    shutil.copy(source, tmp_path / "b.json")
    doc = json.loads(source.read_text("utf-8"))
    doc["id"] = "same-prompt-other-id"
    (tmp_path / "c.json").write_text(json.dumps(doc), "utf-8")
    doc["id"] = "leaky"
    doc["turns"][0]["request"]["input"] = "A unique prompt for the leaky one."
    doc["turns"][0]["request"]["user"] = "sk-canary-lint-0123456789abcdef"
    (tmp_path / "d.json").write_text(json.dumps(doc), "utf-8")
    (tmp_path / "e.json").write_text("{", "utf-8")
    count, problems = lint([tmp_path])
    text = "\n".join(map(str, problems))
    assert count == 5
    assert "duplicate id 'openai-long-text'" in text
    assert any(str(p.path).endswith("c.json") and "cannot be matched" in p.message for p in problems)
    assert "$.turns[0].request.user holds an OpenAI-style key" in text
    assert "invalid JSON" in text
    assert "sk-canary-lint" not in text
    proc = cli("cassettes", "lint", str(tmp_path))
    assert proc.returncode == 1 and "5 cassette files: " in proc.stdout


def test_lint_passes_the_shipped_cassettes() -> None:
    count, problems = lint([cassettes_dir()])
    assert count > 20
    assert [p for p in problems if p.level == "error"] == []


def test_a_two_leg_capture_runs_the_checks_that_need_the_upstream(two_leg_capture: Path) -> None:
    from conformance.checks import REGISTRY

    capture = load_capture(two_leg_capture)
    result = check_capture(capture)
    needs_upstream = [cid for cid, spec in REGISTRY.items() if spec.needs_upstream]
    assert needs_upstream
    skipped = {cid: result.outcomes[cid].skipped for cid in needs_upstream if result.outcomes[cid].skipped}
    assert not any(reason.startswith("offline check") or reason.startswith("live mode") for reason in skipped.values()), skipped
    assert result.findings() == []
    # The same proxy stream against a different upstream answer is caught by the upstream-side checks.
    leg = capture.upstream[0]
    for chunk in leg.chunks:
        chunk.data = chunk.data.replace(b"friend", b"enemy")
    fired = {f.check_id for f in check_capture(capture).findings()}
    assert fired and all(REGISTRY[cid].needs_upstream for cid in fired), fired


def test_check_writes_the_report_sinks_of_run(tmp_path: Path, sse_bytes: bytes) -> None:
    """`check FILE` hands its report to the same sinks as `run` and pytest: JSON (valid against
    the report schema, runner "check"), HTML, JUnit and the matrix."""
    import xml.etree.ElementTree as ET

    import jsonschema

    from conformance.resources import schemas_dir

    cut = sse_bytes[: sse_bytes.rindex(b"event: response.completed")]  # no terminal event
    path = tmp_path / "cut.sse"
    path.write_bytes(cut)
    out = tmp_path / "out"
    proc = cli(
        "check", str(path), "--report-json", str(out / "r.json"), "--report-html", str(out / "r.html"),
        "--report-junit", str(out / "r.xml"), "--report-matrix", str(out / "matrix"),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((out / "r.json").read_text("utf-8"))
    schema = json.loads((schemas_dir() / "report.schema.json").read_text("utf-8"))
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(report))
    assert report["runner"] == "check"
    suite = ET.parse(out / "r.xml").getroot()
    failed = {tc.get("name") for tc in suite.iter("testcase") if tc.find("failure") is not None}
    assert "lifecycle.terminal_present" in failed
    assert "<html" in (out / "r.html").read_text("utf-8").lower()
    assert (out / "matrix" / "matrix.md").exists()
