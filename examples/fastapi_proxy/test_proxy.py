"""A proxy's own tests with responses-conformance's fixtures: play a cassette on the fake
upstream, send its request to the proxy in-process, check what the proxy streamed.

Run: ``pytest examples/fastapi_proxy`` (needs ``fastapi``; the plugin is installed with
responses-conformance).
"""

from __future__ import annotations

from typing import Any

import pytest
from app import create_app
from fastapi.testclient import TestClient

CASSETTES = ["openai-long-text", "openai-length-max-output-tokens"]


@pytest.mark.parametrize("cassette_id", CASSETTES)
def test_the_proxy_streams_a_conformant_answer(cassette_id: str, conformance_upstream: Any, conformance_check: Any) -> None:
    cassette = conformance_upstream.play(cassette_id)
    client = TestClient(create_app(conformance_upstream.url))
    resp = client.post("/v1/responses", json=cassette.turns[0].request)
    # the proxy called the fake upstream once, and that call matched the cassette's turn
    assert [(r.path, r.cassette_id) for r in conformance_upstream.requests] == [("/v1/chat/completions", cassette_id)]
    result = conformance_check(resp, cassette=cassette, upstream=conformance_upstream)
    assert result.findings == [], str(result)


def test_a_stream_without_terminal_event_is_named(conformance_upstream: Any, conformance_check: Any) -> None:
    cassette = conformance_upstream.play("openai-long-text")
    client = TestClient(create_app(conformance_upstream.url, bug="no-terminal"))
    resp = client.post("/v1/responses", json=cassette.turns[0].request)
    result = conformance_check(resp, cassette=cassette, upstream=conformance_upstream)
    assert "lifecycle.terminal_present" in result.check_ids
    assert result.problems[0].check_id == "lifecycle.terminal_present"


def test_raw_bytes_can_be_checked_too(conformance_check: Any) -> None:
    """A saved stream, no cassette: the checks that need none run on it."""
    raw = b'data: {"type":"response.output_text.delta","sequence_number":0,"item_id":"m","output_index":0,"content_index":0,"delta":"hi"}\n\n'
    result = conformance_check(raw)
    assert not result.ok and "lifecycle.terminal_present" in result.check_ids


# The whole cassette, no port for the proxy: the marker sends each turn's request to the app
# in-process (httpx's ASGI transport) and fails the test on any finding at error severity.
@pytest.mark.conformance_asgi(create_app, cassettes=["openai-long-text", "openai-length-max-output-tokens"])
def test_cassettes_in_process() -> None:
    pass


@pytest.mark.conformance_asgi(lambda url: create_app(url, bug="no-terminal"), cassettes=["openai-long-text"])
def test_the_marker_names_what_breaks(conformance_asgi_results: Any) -> None:
    result = conformance_asgi_results["openai-long-text"]
    assert not result.ok and result.problems[0].check_id == "lifecycle.terminal_present"
