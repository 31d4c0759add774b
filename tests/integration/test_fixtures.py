"""The fixtures a proxy's own tests use: ``conformance_upstream`` and ``conformance_check``,
through pytester (a real pytest run with the plugin) and through the FastAPI example CI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conformance.asgi import is_factory
from conformance.cassette import CassetteError
from conformance.fixtures import UpstreamFixture, check_stream, resolve_cassette
from conformance.resources import cassettes_dir
from conformance.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]
LONG_TEXT = cassettes_dir() / "text" / "openai-long-text.json"


def _chat(url: str, text: str) -> httpx.Response:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": text}]}
    return httpx.post(url + "/chat/completions", json=body, timeout=10, trust_env=False)


def test_play_requests_and_reset() -> None:
    with FakeUpstream() as server:
        up = UpstreamFixture(server)
        cassette = up.play(LONG_TEXT)  # a path; an id and a Cassette work too
        assert up.play("openai-long-text").id == cassette.id and up.play(cassette) is cassette
        assert _chat(up.url, cassette.turns[0].match_key).status_code == 200
        assert [(r.method, r.path, r.cassette_id) for r in up.requests] == [("POST", "/v1/chat/completions", "openai-long-text")]
        up.reset()
        assert up.requests == [] and up.played == []
        assert _chat(up.url, cassette.turns[0].match_key).status_code == 500  # forgotten
    with pytest.raises(CassetteError, match="did you mean openai-long-text"):
        resolve_cassette("openai-long-txt")
    with pytest.raises(CassetteError, match="no such cassette file"):
        resolve_cassette("nowhere/x.json")


def test_check_stream_on_bytes_str_and_headers() -> None:
    raw = 'data: {"type":"response.created","sequence_number":0}\n\n'
    result = check_stream(raw)
    assert "lifecycle.terminal_present" in result.check_ids and not result.ok
    assert result.problems and result.problems[0].occurrences
    assert "http.content_type" not in result.check_ids  # no headers given: not judged
    with_headers = check_stream(raw.encode(), headers={"content-type": "application/json"}, status=200)
    assert "http.content_type" in with_headers.check_ids
    with pytest.raises(TypeError, match="cannot check a int"):
        check_stream(3)


@pytest.mark.slow
def test_fixtures_in_a_users_pytest_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        def test_one(conformance_upstream):
            c = conformance_upstream.play("openai-long-text")
            body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": c.turns[0].match_key}]}
            r = httpx.post(conformance_upstream.url + "/chat/completions", json=body, timeout=10, trust_env=False)
            assert r.status_code == 200 and len(conformance_upstream.requests) == 1

        def test_two_starts_empty(conformance_upstream, conformance_check):
            assert conformance_upstream.requests == [] and conformance_upstream.played == []
            assert conformance_check(b"data: [DONE]\\n\\n").findings
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


@pytest.mark.slow
def test_the_fastapi_example_passes_as_ci_runs_it() -> None:
    pytest.importorskip("fastapi")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/fastapi_proxy"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "6 passed" in proc.stdout


def test_is_factory() -> None:
    async def app(scope: object, receive: object, send: object) -> None: ...

    def factory(upstream_url: str | None = None, *, bug: str | None = None) -> object:
        return app

    assert is_factory(factory) and is_factory(lambda url: app)
    assert not is_factory(app) and not is_factory(3)


@pytest.mark.slow
def test_the_asgi_marker_fails_a_broken_app_and_names_the_check(pytester: pytest.Pytester) -> None:
    """A raw ASGI app that answers with a created event only, and never calls the upstream."""
    pytester.makepyfile(
        """
        import pytest

        async def app(scope, receive, send):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            await send({"type": "http.response.body",
                        "body": b'data: {"type":"response.created","sequence_number":0}\\n\\n'})

        @pytest.mark.conformance_asgi(app, cassettes=["openai-long-text"])
        def test_marker():
            pass

        @pytest.mark.conformance_asgi(app, profile="openai")
        def test_no_cassettes():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*conformance findings:*", "*openai-long-text: lifecycle.terminal_present: *"])
    result.stdout.fnmatch_lines(["*conformance_asgi needs an app and cassettes=*"])
