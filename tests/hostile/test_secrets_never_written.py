"""Canary secrets, by name and by value, never reach any file the harness writes.

Every place a secret can come from is seeded with a canary of its own (the ``--api-key``, a key in
``--proxy-cmd``, a password in the proxy URL, credential headers and query parameters the proxy
sends upstream, a key in the environment), then every file written (reports, cassettes, captures,
crash logs, the temp directory) is scanned for all of them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chat_upstream import ChatUpstream

from conformance import _secrets
from conformance._rundir import make_run_dir, write_shared_result
from conformance.cli import main
from conformance.recorder import Recorder
from conformance.resources import cassettes_dir
from conformance.upstream import FakeUpstream

API_KEY = "canary-apikey-5e1f0a9b8c7d"
CMD_KEY = "sk-canary-proxycmd-77b3c1d9e0f2a4"
URL_PASSWORD = "canarypassword0042"
SIG = "canarysig-0c0ffee"
SUB_KEY = "canarysubkey-31337"
APIM = "canary-apim-value-8080"
XAUTH = "canary-xauth-value-9090"
GOOG = "canary-goog-value-1111"
AMZ = "canary-amz-token-2222"
CODE = "canary-oauth-code-3333"
TEXT_CASSETTE = str(cassettes_dir() / "usage" / "openai-text-include-usage.json")
ALL = (API_KEY, CMD_KEY, URL_PASSWORD, SIG, SUB_KEY, APIM, XAUTH, GOOG, AMZ, CODE)


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    _secrets.forget_all()
    yield
    _secrets.forget_all()


def leaks(root: Path, canaries: tuple[str, ...] = ALL) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{c} in {path}" for c in canaries if c.encode() in data]
    return found


def run_cli(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(argv)
    return rc, buf.getvalue()


def test_run_reports_hold_no_key_from_api_key_proxy_cmd_or_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    cmd = f"{sys.executable} -m conformance.reference --upstream-url {{upstream_url}} --port {{port}} --api-key {CMD_KEY}"
    url = f"http://tester:{URL_PASSWORD}@127.0.0.1:{{port}}/v1"
    rc, out = run_cli(
        [
            "run", "--cassettes", TEXT_CASSETTE, "--proxy-cmd", cmd, "--proxy-url", url, "--api-key", API_KEY,
            "--report-json", str(tmp_path / "r.json"), "--report-html", str(tmp_path / "r.html"),
        ]
    )
    assert rc == 0, out
    assert (tmp_path / "r.json").exists() and (tmp_path / "r.html").exists()
    assert leaks(tmp_path) == []
    assert not any(c in out for c in ALL), out
    report = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert "[redacted]" in json.dumps(report["target"])  # the target was named, its secrets hidden


def test_fake_upstream_log_redacts_every_credential_header() -> None:
    headers = {
        "x-goog-api-key": GOOG, "Ocp-Apim-Subscription-Key": APIM, "X-Auth-Token": XAUTH,
        "x-amz-security-token": AMZ, "Proxy-Authorization": f"Basic {APIM}", "Authorization": f"Bearer {API_KEY}",
    }
    _secrets.remember(CODE)
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": f"no match {CODE}"}]}
    with FakeUpstream([]) as up:
        httpx.post(up.url + "/chat/completions", json=body, headers=headers, timeout=5, trust_env=False)
        log = httpx.get(up.url.replace("/v1", "") + "/__conformance/log", timeout=5, trust_env=False).text
    assert not [c for c in ALL if c in log], log
    assert log.count("[redacted]") >= 6


def test_recorder_redacts_the_new_names_in_cassettes_and_captures(tmp_path: Path) -> None:
    chat = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Say hello, canary."}], "stream": True}
    query = f"sig={SIG}&signature={SIG}&subscription-key={SUB_KEY}&code={CODE}&api-version=1"
    headers = {"Ocp-Apim-Subscription-Key": APIM, "X-Auth-Token": XAUTH, "x-goog-api-key": GOOG, "x-amz-security-token": AMZ}
    with ChatUpstream() as upstream:
        with Recorder(upstream.url, tmp_path / "cassettes", on_event=lambda m: None) as rec:
            assert httpx.post(rec.url + f"/chat/completions?{query}", json=chat, headers=headers, timeout=10, trust_env=False).status_code == 200
        assert rec.errors == [] and rec.written
        with Recorder(upstream.url, tmp_path / "captures", leg="responses", on_event=lambda m: None) as cap:
            body = {"model": "m", "input": "hi", "stream": True}
            httpx.post(cap.url + f"/responses?{query}", json=body, headers=headers, timeout=10, trust_env=False)
        assert cap.errors == [] and cap.written
    # The upstream really got them: recording does not change the traffic.
    assert upstream.seen[0].headers["X-Auth-Token"] == XAUTH and SIG in upstream.seen[0].query
    assert leaks(tmp_path) == []
    doc = json.loads(rec.written[0].read_text("utf-8"))
    assert doc["provenance"]["upstream_requests"][0]["query"]["api-version"] == "1"  # not a secret: kept


def test_value_redaction_catches_known_secrets_anywhere() -> None:
    _secrets.remember_command(f"litellm --api_key {CMD_KEY} --port 4000 OPENAI_API_KEY=verysecretvalue1 --model gpt-4o")
    _secrets.remember_url(f"https://u:{URL_PASSWORD}@h.example/v1?key={SUB_KEY}&x=1")
    _secrets.remember_env({"MY_SERVICE_TOKEN": "canary-env-value-123456", "HOME": "/root", "DEBUG": "true"})
    text = f"echo {CMD_KEY} verysecretvalue1 {URL_PASSWORD} {SUB_KEY} canary-env-value-123456 gpt-4o 4000 /root"
    red = _secrets.redact_text(text)
    assert red == "echo [redacted] [redacted] [redacted] [redacted] [redacted] gpt-4o 4000 /root"
    assert _secrets.redact_text(f"GET /x?sig={SIG}&keep=1") == "GET /x?sig=[redacted]&keep=1"
    assert _secrets.redact_text(f"Ocp-Apim-Subscription-Key: {APIM}") == "Ocp-Apim-Subscription-Key: [redacted]"
    # A long model name is not a key: the upstream log's bodies must stay comparable.
    _secrets.remember_command("llama-server -m Qwen2.5-Coder-32B-Instruct-GGUF-Q4_K_M-longname --port 8080")
    assert _secrets.redact_text("Qwen2.5-Coder-32B-Instruct-GGUF-Q4_K_M-longname") == "Qwen2.5-Coder-32B-Instruct-GGUF-Q4_K_M-longname"
    # An error object's "code" field is not a query parameter: left alone.
    assert _secrets.redact_doc({"error": {"code": "invalid_api_key"}}) == {"error": {"code": "invalid_api_key"}}


def test_shared_run_dir_holds_no_secret_and_goes_away_on_sigterm(tmp_path: Path) -> None:
    code = f"""
import os, signal, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from conformance import _secrets
from conformance._rundir import make_run_dir, write_shared_result
_secrets.remember({API_KEY!r})
d = make_run_dir()
write_shared_result(d / "r.json", {{"request_headers": {{"Authorization": "Bearer {API_KEY}"}}, "text": "{API_KEY}"}})
print(d, flush=True)
print(open(d / "r.json").read(), flush=True)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(5)
"""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    run_dir, written = proc.stdout.split("\n", 1)
    assert API_KEY not in written and "[redacted]" in written
    assert not Path(run_dir).exists()
    assert leaks(tmp_path) == []


def test_run_dir_is_removed_at_normal_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    d = make_run_dir()
    write_shared_result(d / "x.json", {"a": 1})
    from conformance._rundir import remove_run_dir

    remove_run_dir(d)
    assert not d.exists()


def test_record_listen_off_loopback_needs_allow_remote(tmp_path: Path) -> None:
    rc, out = run_cli(["record", "--upstream", "http://127.0.0.1:9/v1", "--out", str(tmp_path), "--listen", "0.0.0.0:0"])
    assert rc == 2 and "--allow-remote" in out
    rc, out = run_cli(
        ["record", "--upstream", "http://127.0.0.1:9/v1", "--out", str(tmp_path), "--listen", "0.0.0.0:0", "--allow-remote", "--duration", "0.1"]
    )
    assert rc == 0 and "warning: listening on 0.0.0.0" in out


@pytest.mark.slow
def test_pytest_plugin_leaves_no_run_dir_and_no_key(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    report = tmp_path / "r.json"
    result = pytester.runpytest_subprocess(
        "--conformance", "--conformance-cassettes", TEXT_CASSETTE, "--conformance-api-key", API_KEY, "-p", "no:cacheprovider",
        "--conformance-report-json", str(report),
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    assert report.exists()
    assert not list(tmp.glob("responses-conformance-*"))
    assert leaks(tmp_path) == [] and leaks(pytester.path) == []
    assert API_KEY not in result.stdout.str()
