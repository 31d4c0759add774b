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
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from conformance._crash import HARNESS_ERROR, harness_error_finding
from conformance._secrets import remember_settings
from conformance.cassette import (
    Cassette,
    CassetteError,
    Interaction,
    Turn,
    cassette_files,
    decode_chunk,
    load_cassettes,
)
from conformance.checks import Context, Outcome, run_checks, status_matches
from conformance.driver import drive, keep_alive_client
from conformance.exceptions import HarnessError, OptionError, PlaceholderError
from conformance.exchange import Exchange
from conformance.final_response import response_of
from conformance.http_server import ServerThreadError
from conformance.options import Settings
from conformance.run_report import CassetteResult
from conformance.upstream import FakeUpstream, expecting

__all__ = ["CassetteResult", "Harness", "HarnessError", "Settings", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_PLACEHOLDER = re.compile(r"\{\{\s*turns\[(\d+)\]\.response((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)\s*\}\}")


def _lookup(value: Any, path: str) -> Any:
    for key, index in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", path):
        if key:
            value = value.get(key) if isinstance(value, dict) else None
        else:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
        if value is None:
            return None
    return value


def resolve_placeholders(request: Any, responses: dict[int, dict[str, Any] | None]) -> Any:
    """Fill ``{{turns[N].response.<path>}}`` in a later turn's request from turn N's final response.

    A string that is exactly one placeholder takes the value as is (any JSON type); inside a
    longer string the value is inserted as text. Raises :class:`PlaceholderError` when turn N has
    no response or no such field (the turn is then not sent).
    """

    def value_of(match: re.Match[str]) -> Any:
        turn, path = int(match.group(1)), match.group(2)
        response = responses.get(turn)
        if response is None:
            raise PlaceholderError(f"{match.group(0)}: turn {turn} produced no response object")
        found = _lookup(response, path)
        if found is None:
            raise PlaceholderError(f"{match.group(0)}: turn {turn}'s response has no such value")
        return found

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and "{{" in node:
            whole = _PLACEHOLDER.fullmatch(node.strip())
            if whole:
                return value_of(whole)
            return _PLACEHOLDER.sub(lambda m: str(value_of(m)), node)
        return node

    return walk(request)


def _merge(into: dict[str, Outcome], more: dict[str, Outcome]) -> None:
    for cid, outcome in more.items():
        if cid not in into:
            into[cid] = Outcome(list(outcome.findings), outcome.skipped)
            continue
        into[cid].findings.extend(outcome.findings)
        if into[cid].skipped and not outcome.skipped:
            into[cid].skipped = None


def _wait_for_port(url: str, timeout: float, proxy: _ProxyProcess | None = None) -> None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or (443 if parsed.scheme == "https" else 80)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy is not None and proxy.proc.poll() is not None:
            raise HarnessError(
                f"the proxy command exited with code {proxy.proc.returncode} before answering: {proxy.output_tail()}"
            )
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise HarnessError(f"the proxy at {url} did not accept connections within {timeout:g} s")


class _ProxyProcess:
    """The proxy under test as a child process; its output goes to a file, never to a pipe.

    A pipe nobody reads fills up (LiteLLM logs a traceback per upstream error) and then blocks
    the proxy on its next write, which looks exactly like a stalled stream.
    """

    def __init__(self, cmd: str, env: dict[str, str]) -> None:
        self.cmd = cmd
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            shlex.split(cmd),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    def output_tail(self, limit: int = 2000) -> str:
        self.log.seek(0, os.SEEK_END)
        size = self.log.tell()
        self.log.seek(max(size - limit, 0))
        return self.log.read().decode("utf-8", "replace").strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.log.close()


def _interaction_from_log(data: dict[str, Any]) -> Interaction | None:
    """An upstream answer as the recorder logged it (cassette interaction JSON)."""
    try:
        chunks = [decode_chunk(c, "recorder log") for c in data["chunks"]]
        return Interaction(int(data["status"]), dict(data.get("headers") or {}), chunks, str(data.get("end", "clean")))
    except (KeyError, TypeError, ValueError, CassetteError):
        return None


class Harness:
    """Owns the servers of one run. ``start()`` once, ``run(cassette)`` per cassette, ``stop()``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        remember_settings(settings)  # hook (issue 13): its secrets are redacted from every sink
        self.cassettes: list[Cassette] = []
        self.load_errors: list[CassetteError] = []
        self.upstream: FakeUpstream | None = None
        self.upstream_url: str | None = settings.upstream_url
        self.proxy_url: str | None = None
        self._stoppers: list[Any] = []
        self._control: httpx.Client | None = None
        self._keep_alive: httpx.Client | None = None
        self._clients_lock = threading.Lock()  # cassettes may run at once (--concurrency)

    @property
    def control(self) -> httpx.Client:
        """One client for the fake upstream's log and reset calls (loopback http, no TLS)."""
        with self._clients_lock:
            if self._control is None or self._control.is_closed:
                self._control = httpx.Client(timeout=10.0, trust_env=False, verify=False)
            return self._control

    # -- setup -----------------------------------------------------------------------------
    def load(self) -> None:
        """Load the cassettes; a ``--cassettes`` path that is missing or holds none is a usage error."""
        dirs = list(self.settings.cassette_dirs)
        missing = [str(d) for d in dirs if not Path(d).exists()]
        if missing:
            raise OptionError(f"--cassettes: no such file or directory: {', '.join(missing)}")
        empty = [str(d) for d in dirs if not cassette_files([d])]
        if empty:
            raise OptionError(f"--cassettes: no cassette (*.json) in {', '.join(empty)}")
        self.cassettes, self.load_errors = load_cassettes(dirs or None)

    def start(self, *, servers: bool = True, load: bool = True) -> None:
        """Load cassettes (unless ``load`` is false: fuzz brings its own, one at a time) and, when
        ``servers``, start the fake upstream and the target."""
        if load:
            self.load()
        if not servers:
            return
        s = self.settings
        if s.record_mode != "none" and not s.live:
            if not s.upstream_url:
                raise HarnessError("--record-mode needs --upstream-url (the real chat upstream to record from)")
            from conformance.recorder import Recorder

            try:
                recorder = Recorder(s.upstream_url, s.record_dir, s.record_mode, cassettes=self.cassettes).start()
            except (OSError, ValueError) as exc:
                raise HarnessError(f"cannot start the recorder: {exc}") from None
            self._stoppers.append(recorder.stop)
            self.upstream_url = recorder.url
        elif not s.live and self.upstream_url is None:
            try:
                self.upstream = FakeUpstream(self.cassettes, port=s.upstream_port, replay_timing=s.replay_timing).start()
            except OSError as exc:
                where = f"127.0.0.1:{s.upstream_port}" if s.upstream_port else "127.0.0.1"
                raise HarnessError(f"cannot start the fake upstream on {where}: {exc.strerror or exc}") from None
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
            _wait_for_port(self.proxy_url, s.proxy_startup_timeout, proc)
        elif s.proxy_url:
            self.proxy_url = s.proxy_url
            self.preflight()
        else:
            from conformance.reference import ReferenceBridge

            try:
                bridge = ReferenceBridge(self.upstream_url or "", faults=s.reference_faults)
                bridge.start()
            except (OSError, ValueError) as exc:
                raise HarnessError(f"cannot start the reference bridge: {exc}") from None
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
        if self._control is not None:
            self._control.close()
        if self._keep_alive is not None:
            self._keep_alive.close()
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
        cap = self.settings.live_max_output_tokens
        if self.settings.live and cap > 0:
            # A model server generates what it is allowed to: a cassette's 4,096 tokens took 132 s
            # on llama.cpp. The cap is what is sent, so the checks judge against it.
            asked = body.get("max_output_tokens")
            body["max_output_tokens"] = min(asked, cap) if isinstance(asked, int) and asked > 0 else cap
        return body

    @property
    def _client(self) -> httpx.Client | None:
        """One keep-alive client for every exchange (``keep_alive``: on, or auto in live mode)."""
        s = self.settings
        if not (s.keep_alive == "on" or (s.keep_alive == "auto" and s.live)):
            return None
        with self._clients_lock:
            if self._keep_alive is None or self._keep_alive.is_closed:
                self._keep_alive = keep_alive_client(s.limits, self.responses_url)
            return self._keep_alive

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}

    def _upstream_log(self, params: dict[str, str]) -> list[dict[str, Any]]:
        if self.upstream is not None:  # in this process: no HTTP round trip (issue 15)
            return self.upstream.entries(params.get("cassette"), float(params.get("since", "0")))
        if not self.upstream_url:
            return []
        base = self.upstream_url.rsplit("/v1", 1)[0]
        try:
            resp = self.control.get(f"{base}/__conformance/log", params=params)
            data = resp.json()
        except (httpx.HTTPError, json.JSONDecodeError):
            return []
        return data if isinstance(data, list) else []

    def _reset_upstream(self, cassette_id: str) -> None:
        """Make the fake upstream replay this cassette's interactions from the first one again."""
        if self.upstream is not None:
            self.upstream.reset_counts(cassette_id)
            return
        if not self.upstream_url:
            return
        base = self.upstream_url.rsplit("/v1", 1)[0]
        with contextlib.suppress(httpx.HTTPError):
            self.control.post(f"{base}/__conformance/reset", params={"cassette": cassette_id})

    def _exchange(self, cassette: Cassette, turn: Turn, request: dict[str, Any]) -> Exchange:
        """Send one request of a turn and collect what the fake upstream saw of it."""
        s = self.settings
        t0 = time.time() - 0.001
        raw = turn.body
        # Issue 8 item 7 hook: this turn is in flight with the fake upstream while its request is
        # sent, so a changed last message still finds its turn; a harness server thread's error
        # (a harness bug, not the proxy's) surfaces here as a HarnessError.
        in_flight = (
            self.upstream.expecting(cassette.id, turn.index, missing_ok=True)
            if self.upstream is not None and not s.live
            else expecting(None if s.live else self.upstream_url, cassette.id, turn.index, client=self.control)
        )
        try:
            with in_flight:
                exchange = drive(
                    self.responses_url,
                    request,
                    headers=self._headers(),
                    limits=s.limits,
                    cassette_id=cassette.id,
                    turn=turn.index,
                    content=raw.encode("utf-8") if raw is not None else None,
                    client=self._client,
                )
        except ServerThreadError as exc:
            raise HarnessError(str(exc)) from None
        exchange.live = s.live
        exchange.raw_body = raw
        exchange.mode = "stream" if request.get("stream") is True else "nonstream"
        if not s.live:
            exchange.upstream_requests = self._turn_log(cassette.id, turn.index, t0)
            exchange.upstream_expected = self._upstream_expected(turn, exchange)
            if exchange.upstream_expected and not exchange.upstream_requests:
                exchange.upstream_unmatched = self._upstream_log({"cassette": "__unmatched__", "since": str(t0)})
        return exchange

    def _turn_log(self, cassette_id: str, turn_index: int, since: float) -> list[dict[str, Any]]:
        """The upstream log entries of one turn. The recorder fills an entry's ``response`` only
        once the upstream's answer has ended, which can be just after the proxy's answer has: wait
        for it (up to 5 s), or the oracle would judge the proxy against the cassette instead."""
        deadline = time.monotonic() + 5.0
        while True:
            entries = [
                e for e in self._upstream_log({"cassette": cassette_id, "since": str(since)}) if e.get("turn") == turn_index
            ]
            pending = any("response" in e and e["response"] is None for e in entries)
            if not pending or time.monotonic() >= deadline:
                return entries
            time.sleep(0.01)

    @staticmethod
    def _upstream_expected(turn: Turn, exchange: Exchange) -> int:
        """1 when a correct proxy calls upstream for this exchange, 0 when it must (or may) not.

        No upstream interactions: the proxy must refuse the request itself. An expected error
        answered while the recorded upstream would have succeeded: the proxy refused on its own
        (say, a stateless proxy and ``previous_response_id``), so no call is due either.
        """
        if not turn.upstream:
            return 0
        err = turn.expected_error
        status = exchange.status
        if (
            err is not None
            and status is not None
            and not 200 <= status < 300
            and status_matches(status, str(err["status"]))
            and all(200 <= i.status < 300 for i in turn.upstream)
        ):
            return 0
        return 1

    def _context(
        self,
        cassette: Cassette,
        turn: Turn,
        exchange: Exchange,
        *,
        peer: Exchange | None = None,
        previous: Sequence[Exchange] = (),
    ) -> Context:
        interaction = None
        answered = exchange.upstream_requests[-1].get("response") if exchange.upstream_requests else None
        if isinstance(answered, dict):
            # Recording: judge the proxy against what the real upstream answered, not the cassette.
            interaction = _interaction_from_log(answered)
        elif exchange.upstream_requests and turn.upstream:
            index = exchange.upstream_requests[-1].get("interaction")
            if isinstance(index, int) and 0 <= index < len(turn.upstream):
                interaction = turn.upstream[index]
        return Context(exchange, cassette=cassette, turn=turn, interaction=interaction, peer=peer, previous=previous)

    def _check(self, outcomes: dict[str, Outcome], exchange: Exchange, context: Context, select: Iterable[str] | None) -> None:
        s = self.settings
        try:
            more = run_checks(
                exchange,
                profile=s.profile,
                select=select or s.checks or None,
                exclude=s.exclude_checks or None,
                context=context,
            )
        except Exception as exc:  # hook (issue 13): a harness bug on one exchange is a finding; the run goes on
            more = {HARNESS_ERROR: Outcome([harness_error_finding(exc, exchange.cassette_id, exchange.turn)])}
        _merge(outcomes, more)

    def run(self, cassette: Cassette, *, select: Iterable[str] | None = None) -> CassetteResult:
        """Run every turn of one cassette and every selected check on each exchange.

        A single-turn cassette whose request streams is sent a second time with ``stream: false``
        (unless ``stream_only``); both exchanges are checked and their findings merged, the
        second's marked ``[non-stream]``. A later turn's request may refer to an earlier turn's
        final response with ``{{turns[N].response.<path>}}``.
        """
        s = self.settings
        outcomes: dict[str, Outcome] = {}
        exchanges: list[Exchange] = []
        streamed: list[Exchange] = []
        responses: dict[int, dict[str, Any] | None] = {}
        error: str | None = None
        # Live mode: a model server has no recorded upstream, so only the first request is sent.
        turns = cassette.turns[:1] if s.live else cassette.turns
        for turn in turns:
            try:
                request = self._request_for(resolve_placeholders(turn.request, responses))
            except PlaceholderError as exc:
                error = f"turn {turn.index} was not sent: {exc}"
                break
            exchange = self._exchange(cassette, turn, request)
            exchanges.append(exchange)
            self._check(outcomes, exchange, self._context(cassette, turn, exchange, previous=list(streamed)), select)
            if exchange.transport_error is not None and exchange.transport_error.kind == "connect":
                break
            responses[turn.index] = response_of(exchange)[0]
            if (
                len(cassette.turns) == 1
                and exchange.mode == "stream"
                and turn.body is None
                and not s.stream_only
            ):
                self._reset_upstream(cassette.id)
                whole = self._exchange(cassette, turn, dict(request, stream=False))
                exchanges.append(whole)
                context = self._context(cassette, turn, whole, peer=exchange, previous=list(streamed))
                self._check(outcomes, whole, context, select)
            streamed.append(exchange)
        return CassetteResult(cassette.id, exchanges, outcomes, error)
