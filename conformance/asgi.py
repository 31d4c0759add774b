"""The ``conformance_asgi`` marker's runner: chosen cassettes against an in-process ASGI app.

A proxy written in Python (FastAPI, Starlette) runs cassettes inside its own unit tests, with no
port for the proxy: its app is called through httpx's ASGI transport, while the fake upstream it
calls is a real server on 127.0.0.1 (started for the test). ``app`` is an app factory taking the
upstream's base URL (``create_app(upstream_url)``), or an app that reads its upstream from the
environment variable ``upstream_env`` (set while the cassettes run).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from conformance.cassette import Cassette
from conformance.fixtures import CheckResult, UpstreamFixture, check_stream
from conformance.problems import group_findings
from conformance.upstream import FakeUpstream

__all__ = ["is_factory", "run_asgi"]

_TIMEOUT = 60.0  # seconds per request, so a hung app fails the test instead of hanging it


def is_factory(app: Any) -> bool:
    """An app factory takes one argument (the upstream URL); an ASGI app takes three."""
    try:
        sig = inspect.signature(app)
    except (TypeError, ValueError):
        return False

    def takes(n: int) -> bool:
        try:
            sig.bind(*([None] * n))
        except TypeError:
            return False
        return True

    return takes(1) and not takes(3)


@contextmanager
def _env(name: str | None, value: str) -> Iterator[None]:
    if not name:
        yield
        return
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


async def _post(app: Any, path: str, request: dict[str, Any]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test", timeout=_TIMEOUT) as client:
        return await client.post(path, content=json.dumps(request).encode(), headers={"content-type": "application/json"})


def run_asgi(
    app: Callable[..., Any],
    cassettes: Sequence[str | Path | Cassette],
    *,
    path: str = "/v1/responses",
    profile: str = "openai",
    upstream_env: str | None = "OPENAI_BASE_URL",
    cassette_dirs: Sequence[str] | None = None,
    checks: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> dict[str, CheckResult]:
    """{cassette id: the findings of its turns}. Turns whose request refers to an earlier answer
    (``{{…}}`` placeholders) are not sent: that needs the full harness (``pytest --conformance``)."""
    results: dict[str, CheckResult] = {}
    with FakeUpstream() as server, _env(upstream_env, server.url):
        upstream = UpstreamFixture(server, cassette_dirs)
        target = app(upstream.url) if is_factory(app) else app
        for name in cassettes:
            cassette = upstream.play(name)
            findings = []
            skipped: dict[str, str] = {}
            for turn in cassette.turns:
                if "{{" in json.dumps(turn.request):
                    break
                resp = asyncio.run(_post(target, path, turn.request))
                one = check_stream(
                    resp, cassette=cassette, turn=turn.index, upstream=upstream, profile=profile,
                    checks=checks, exclude=exclude,
                )
                findings.extend(one.findings)
                skipped.update(one.skipped)
            results[cassette.id] = CheckResult(findings, group_findings(findings), skipped)
    return results
