"""``responses-conformance replay CASSETTE``: the fake upstream comes back for one cassette."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from conformance.cassette import CassetteError
from conformance.commands.replay import find_cassette, serve


def test_replay_serves_the_recorded_answer_of_that_cassette() -> None:
    cassette = find_cassette("openai-length-max-output-tokens", None)
    turn = cassette.turns[0]
    upstream = serve(cassette)
    try:
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": turn.match_key}]}
        resp = httpx.post(upstream.url + "/chat/completions", json=body, timeout=10, trust_env=False)
        assert resp.status_code == 200
        assert '"finish_reason":"length"' in resp.text.replace(" ", "")
        # only that cassette: another cassette's request is not answered
        other = dict(body, messages=[{"role": "user", "content": "something no cassette has"}])
        assert httpx.post(upstream.url + "/chat/completions", json=other, timeout=10, trust_env=False).status_code == 500
    finally:
        upstream.stop()


def test_an_unknown_cassette_is_one_line_with_suggestions() -> None:
    with pytest.raises(CassetteError, match="did you mean openai-length-max-output-tokens"):
        find_cassette("openai-length-max-output-token", None)
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "replay", "nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout.strip() == "error: no cassette with id 'nope' in the shipped set"
    assert "Traceback" not in proc.stderr


def test_replay_with_the_reference_bridge_prints_where_to_send_the_curl() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "replay", "openai-tool-call", "--reference", "--reference-fault",
         "F1-length-as-completed", "--duration", "0.5"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fake upstream for cassette 'openai-tool-call'" in proc.stdout
    assert "reference bridge: http://127.0.0.1:" in proc.stdout
