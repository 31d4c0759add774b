"""The harness: start the fake upstream and the target, run cassettes, keep the results.

Used by the pytest plugin and by the ``responses-conformance`` command alike, so both run the
same exchanges and print the same report. The target is one of: a running proxy
(``proxy_url``), a proxy the harness launches (``proxy_cmd``, with ``{upstream_url}``,
``{upstream_port}``, ``{port}`` and ``{host}`` filled in), or the embedded reference bridge.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from conformance._model import Exchange, Finding, Severity
from conformance.cassette import Cassette, CassetteError, load_cassettes
from conformance.checks import REGISTRY, Outcome, run_checks
from conformance.driver import Limits, drive
from conformance.upstream import FakeUpstream

__all__ = ["CassetteResult", "Harness", "HarnessError", "Settings", "free_port"]


class HarnessError(RuntimeError):
    """The harness cannot run at all (target unreachable, proxy command died); one clear line."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Settings:
    proxy_url: str | None = None
    proxy_cmd: str | None = None
    proxy_startup_timeout: float = 60.0
    upstream_url: str | None = None
    upstream_port: int = 0
    cassette_dirs: Sequence[str | Path] = ()
    checks: Sequence[str] = ()
    exclude_checks: Sequence[str] = ()
    profile: str = "openai"
    model: str | None = None
    api_key: str | None = None
    responses_path: str = "/responses"
    replay_timing: bool = False
    reference_faults: Sequence[str] = ()
    live: bool = False
    limits: Limits = field(default_factory=Limits)


@dataclass
class CassetteResult:
    cassette_id: str
    exchanges: list[Exchange]
    outcomes: dict[str, Outcome]
    error: str | None = None

    def findings(self, profile_failing: Severity = Severity.ERROR) -> list[Finding]:
        return [f for o in self.outcomes.values() for f in o.findings]

    def failing(self, threshold: Severity = Severity.ERROR) -> list[Finding]:
        return [f for f in self.findings() if f.severity.rank >= threshold.rank]

    def to_json(self) -> dict[str, Any]:
        return {
            "cassette_id": self.cassette_id,
            "error": self.error,
            "exchanges": [e.to_json() for e in self.exchanges],
            "outcomes": {
                cid: {"skipped": o.skipped, "findings": [f.to_json() for f in o.findings]} for cid, o in self.outcomes.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CassetteResult:
        return cls(
            cassette_id=data["cassette_id"],
            error=data.get("error"),
            exchanges=[Exchange.from_json(e) for e in data["exchanges"]],
            outcomes={
                cid: Outcome([Finding.from_json(f) for f in o["findings"]], o.get("skipped"))
                for cid, o in data["outcomes"].items()
            },
        )


def _merge(into: dict[str, Outcome], more: dict[str, Outcome]) -> None:
    for cid, outcome in more.items():
        if cid not in into:
            into[cid] = Outcome(list(outcome.findings), outcome.skipped)
            continue
        into[cid].findings.extend(outcome.findings)
        if into[cid].skipped and not outcome.skipped:
            into[cid].skipped = None


def _wait_for_port(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or (443 if parsed.scheme == "https" else 80)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode("utf-8", "replace")[-2000:] if proc.stderr else ""
            raise HarnessError(f"the proxy command exited with code {proc.returncode} before answering: {err.strip()}")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise HarnessError(f"the proxy at {url} did not accept connections within {timeout:g} s")


class _ProxyProcess:
    def __init__(self, cmd: str, env: dict[str, str]) -> None:
        self.cmd = cmd
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            shlex.split(cmd),
            stdout=self.log,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.log.close()


class Harness:
    """Owns the servers of one run. ``start()`` once, ``run(cassette)`` per cassette, ``stop()``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cassettes: list[Cassette] = []
        self.load_errors: list[CassetteError] = []
        self.upstream: FakeUpstream | None = None
        self.upstream_url: str | None = settings.upstream_url
        self.proxy_url: str | None = None
        self._stoppers: list[Any] = []

    # -- setup -----------------------------------------------------------------------------
    def load(self) -> None:
        self.cassettes, self.load_errors = load_cassettes(self.settings.cassette_dirs or None)

    def start(self, *, servers: bool = True) -> None:
        """Load cassettes and, when ``servers``, start the fake upstream and the target."""
        self.load()
        if not servers:
            return
        s = self.settings
        if not s.live and self.upstream_url is None:
            self.upstream = FakeUpstream(self.cassettes, port=s.upstream_port, replay_timing=s.replay_timing).start()
            self._stoppers.append(self.upstream.stop)
            self.upstream_url = self.upstream.url
        if s.proxy_cmd:
            port = free_port()
            fill = {
                "upstream_url": self.upstream_url or "",
                "upstream_port": str(urlparse(self.upstream_url or "").port or ""),
                "port": str(port),
                "host": "127.0.0.1",
            }
            try:
                cmd = s.proxy_cmd.format(**fill)
            except (KeyError, IndexError, ValueError) as exc:
                raise HarnessError(f"--proxy-cmd has an unknown placeholder {exc}; known: {sorted(fill)}") from None
            env = dict(os.environ, CONFORMANCE_UPSTREAM_URL=fill["upstream_url"], CONFORMANCE_PORT=fill["port"])
            try:
                proc = _ProxyProcess(cmd, env)
            except OSError as exc:
                raise HarnessError(f"cannot start --proxy-cmd {cmd!r}: {exc}") from None
            self._stoppers.append(proc.stop)
            self.proxy_url = (s.proxy_url or "http://127.0.0.1:{port}/v1").format(**fill)
            _wait_for_port(self.proxy_url, s.proxy_startup_timeout, proc.proc)
        elif s.proxy_url:
            self.proxy_url = s.proxy_url
            self.preflight()
        else:
            from conformance.reference import ReferenceBridge

            bridge = ReferenceBridge(self.upstream_url or "", faults=s.reference_faults)
            bridge.start()
            self._stoppers.append(bridge.stop)
            self.proxy_url = bridge.url

    def attach(self, proxy_url: str, upstream_url: str | None) -> None:
        """Use servers another process started (pytest-xdist workers)."""
        self.load()
        self.proxy_url, self.upstream_url = proxy_url, upstream_url

    def preflight(self) -> None:
        url = self.proxy_url or ""
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise HarnessError(f"--proxy-url {url!r} is not an http(s) URL")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            with socket.create_connection((parsed.hostname, port), timeout=self.settings.limits.connect_timeout):
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise HarnessError(f"cannot connect to the proxy at {url}: {reason}") from None

    def stop(self) -> None:
        while self._stoppers:
            stop = self._stoppers.pop()
            with contextlib.suppress(Exception):  # stopping must not hide the run's result
                stop()

    def __enter__(self) -> Harness:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- running ---------------------------------------------------------------------------
    @property
    def responses_url(self) -> str:
        return (self.proxy_url or "").rstrip("/") + self.settings.responses_path

    def _request_for(self, request: dict[str, Any]) -> dict[str, Any]:
        body = dict(request)
        if self.settings.model:
            body["model"] = self.settings.model
        return body

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}

    def _upstream_log(self, params: dict[str, str]) -> list[dict[str, Any]]:
        if not self.upstream_url:
            return []
        base = self.upstream_url.rsplit("/v1", 1)[0]
        try:
            resp = httpx.get(f"{base}/__conformance/log", params=params, timeout=10.0, trust_env=False)
            data = resp.json()
        except (httpx.HTTPError, json.JSONDecodeError):
            return []
        return data if isinstance(data, list) else []

    def run(self, cassette: Cassette, *, select: Iterable[str] | None = None) -> CassetteResult:
        """Run every turn of one cassette and every selected check on each exchange."""
        s = self.settings
        outcomes: dict[str, Outcome] = {}
        exchanges: list[Exchange] = []
        # Live mode: a model server has no recorded upstream, so only the first request is sent.
        turns = cassette.turns[:1] if s.live else cassette.turns
        for turn in turns:
            t0 = time.time() - 0.001
            request = self._request_for(turn.request)
            exchange = drive(
                self.responses_url,
                request,
                headers=self._headers(),
                limits=s.limits,
                cassette_id=cassette.id,
                turn=turn.index,
            )
            exchange.live = s.live
            if not s.live:
                exchange.upstream_expected = 1
                exchange.upstream_requests = [
                    e
                    for e in self._upstream_log({"cassette": cassette.id, "since": str(t0)})
                    if e.get("turn") == turn.index
                ]
                if not exchange.upstream_requests:
                    exchange.upstream_unmatched = self._upstream_log({"cassette": "__unmatched__", "since": str(t0)})
            exchanges.append(exchange)
            _merge(
                outcomes,
                run_checks(exchange, profile=s.profile, select=select or s.checks or None, exclude=s.exclude_checks or None),
            )
            if exchange.transport_error is not None and exchange.transport_error.kind == "connect":
                break
        return CassetteResult(cassette.id, exchanges, outcomes)


def known_check_ids() -> list[str]:
    return sorted(REGISTRY)
