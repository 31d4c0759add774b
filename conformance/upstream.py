"""The fake upstream: a real HTTP/1.1 server on 127.0.0.1 that replays cassettes.

The proxy under test points its Chat Completions backend here. The recorded chunks of the
matching cassette turn are written back one by one, flushed, optionally with the recorded timing.
A request that does not ask for a stream gets the same content as one ``chat.completion`` body
(assembled by :mod:`conformance.expected`). Every request is logged; ``GET
/__conformance/log?cassette=ID`` returns the log entries of one cassette, so several pytest-xdist
workers can share one server safely.

The fake upstream must never be the reason a proxy's bug goes unnamed, so matching is in-flight
first. Before it sends each request, the harness registers the turn it has in flight
(:meth:`FakeUpstream.expecting` in-process, :func:`expecting` over HTTP from any process, e.g. an
xdist worker; ``POST /__conformance/expect`` and ``/__conformance/done``). A chat request is
answered, in this order, by:

1. the in-flight turn whose last message it carries exactly;
2. the in-flight turn it fits best (the most of the turn's conversation text found in the
   request), even when the proxy changed the last message: the translation checks then run and
   say what changed;
3. the turn whose last message it carries exactly (no registration: the upstream used alone);
4. otherwise a ``500`` whose JSON body names the closest cassettes and why each did not match
   (VCR's best idea); the exchange that caused it reports it.

``/__conformance/done`` answers with the errors stored by harness server threads in this process
(:mod:`conformance.http_server`), so the harness raises a harness bug in the run that caused it.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from conformance._safety import loads_bounded
from conformance._secrets import SECRET_HEADERS, redact_doc, redact_text
from conformance.cassette import Cassette, Interaction, Turn, chat_message_text
from conformance.expected import chat_completion_body, expect
from conformance.http_server import (
    BodyError,
    HarnessHandler,
    HarnessServer,
    StoredError,
    pending_errors,
    raise_server_errors,
)

__all__ = ["FakeUpstream", "UpstreamLogEntry", "expecting"]

MAX_REQUEST_BYTES = 16 * 1024 * 1024
_IN_FLIGHT_TTL = 900.0  # seconds; a registration its harness never closed (the process died) expires
_CONTROL = "/__conformance/"
_CUT_GRACE = 0.2  # seconds between the last chunk and a cassette's connection cut
REDACTED_HEADERS = SECRET_HEADERS  # hook (issue 13): one list of credential names, see conformance._secrets


@dataclass
class UpstreamLogEntry:
    seq: int
    t: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    cassette_id: str | None = None
    turn: int | None = None
    interaction: int | None = None
    diagnosis: str | None = None
    match: str | None = None
    """How the request found its turn: ``exact``, ``in-flight`` (best fit) or None (unmatched)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "t": self.t,
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "cassette_id": self.cassette_id,
            "turn": self.turn,
            "interaction": self.interaction,
            "diagnosis": self.diagnosis,
            "match": self.match,
        }


@dataclass
class _InFlight:
    """A turn the harness has sent (or is sending) to the proxy; its next request's interaction."""

    cassette: Cassette
    turn: Turn
    pieces: list[str]
    next_interaction: int
    expires: float
    order: int


@dataclass
class _State:
    turns: dict[str, tuple[Cassette, Turn]] = field(default_factory=dict)
    by_id: dict[tuple[str, int], tuple[Cassette, Turn]] = field(default_factory=dict)
    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    in_flight: dict[str, _InFlight] = field(default_factory=dict)
    log: list[UpstreamLogEntry] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    replay_timing: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)
    tokens: Iterator[int] = field(default_factory=itertools.count)

    def register(self, cassette_id: str, turn_index: int, interaction: int = 0, ttl: float = _IN_FLIGHT_TTL) -> str:
        """Put a turn in flight; KeyError when no loaded cassette has it."""
        cassette, turn = self.by_id[(cassette_id, turn_index)]
        with self.lock:
            n = next(self.tokens)
            token = f"{cassette_id}#{turn_index}#{n}"
            self.in_flight[token] = _InFlight(
                cassette, turn, _turn_pieces(turn), max(interaction, 0), time.monotonic() + ttl, n
            )
        return token

    def release(self, token: str) -> None:
        with self.lock:
            self.in_flight.pop(token, None)

    def entries(self, cassette_id: str | None, since: float) -> list[dict[str, Any]]:
        """The log since ``since`` (of one cassette; ``__unmatched__``: requests no turn matched)."""
        with self.lock:
            return [
                e.to_json()
                for e in self.log
                if e.t >= since
                and (
                    cassette_id is None
                    or e.cassette_id == cassette_id
                    or (e.cassette_id is None and cassette_id == "__unmatched__")
                )
            ]

    def reset_counts(self, cassette_id: str | None) -> None:
        """Replay ``cassette_id``'s (or every) turn from its first recorded interaction again."""
        with self.lock:
            for k in [k for k in self.counts if cassette_id is None or k[0] == cassette_id]:
                del self.counts[k]

    def live(self) -> list[_InFlight]:
        now = time.monotonic()
        with self.lock:
            for token in [t for t, f in self.in_flight.items() if f.expires < now]:
                del self.in_flight[token]
            return list(self.in_flight.values())


def _texts(value: Any) -> list[str]:
    """The strings of a Responses content/output value (a string, or parts carrying ``text``)."""
    if isinstance(value, str):
        return [value]
    out = []
    for part in value if isinstance(value, list) else []:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict):
            for key in ("text", "refusal"):
                if isinstance(part.get(key), str):
                    out.append(part[key])
    return out


def _turn_pieces(turn: Turn) -> list[str]:
    """The conversation text of a turn's Responses request that a faithful proxy sends upstream."""
    request = turn.request
    found: list[str] = []
    found.extend(_texts(request.get("instructions")))
    inp = request.get("input")
    for item in inp if isinstance(inp, list) else [inp]:
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            found.extend(_texts(item.get("content")))
            found.extend(_texts(item.get("output")))
            call_id = item.get("call_id")
            if isinstance(call_id, str):
                found.append(call_id)
    if turn.match_key:
        found.append(turn.match_key)
    pieces = {p.strip() for p in found if p.strip() and "{{" not in p}
    return sorted(pieces, key=len, reverse=True)


def _chat_blob(body: dict[str, Any]) -> str:
    """Every text of a chat request's messages (contents, tool call ids and arguments), joined."""
    out: list[str] = []
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        out.extend(_texts(message.get("content")))
        if isinstance(message.get("tool_call_id"), str):
            out.append(message["tool_call_id"])
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                out.append(call["id"])
    return "\x00".join(out)


def _fit(flight: _InFlight, blob: str) -> float:
    """Share of the turn's conversation text (by length) found in the request: 0 fits nothing."""
    total = sum(len(p) for p in flight.pieces)
    if not total:
        return 0.0
    return sum(len(p) for p in flight.pieces if p in blob) / total


def _last_message_text(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    return chat_message_text(messages[-1])


def _diagnose(state: _State, body: Any, key: str | None) -> str:
    if not isinstance(body, dict):
        return "the request body is not a JSON object, so no cassette can match it"
    if key is None:
        return "the request has no `messages` array (is this a Chat Completions request?)"
    scored = sorted(
        ((difflib.SequenceMatcher(None, key, k).ratio(), k, cid) for k, (c, _) in state.turns.items() for cid in [c.id]),
        reverse=True,
    )[:3]
    if not scored:
        return "no cassettes are loaded"
    flying = state.live()
    where = (
        "no cassette turn in flight shares any of its conversation text, and no cassette turn"
        if flying
        else "no cassette turn"
    )
    lines = [f"{where} has last message {key[:120]!r}; closest:"]
    for ratio, k, cid in scored:
        lines.append(f"  - {cid}: expected last message {k[:120]!r} (similarity {ratio:.0%})")
    return "\n".join(lines)


def _error(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class _Handler(HarnessHandler):
    server_version = "responses-conformance-upstream/1"
    state: _State

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/__conformance/health":
            self._json(200, {"ok": True, "cassettes": sorted({c.id for c, _ in self.state.turns.values()})})
        elif url.path == "/__conformance/log":
            cid = parse_qs(url.query).get("cassette", [None])[0]
            since = float(parse_qs(url.query).get("since", ["0"])[0])
            self._json(200, self.state.entries(cid, since))
        elif url.path.endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "conformance-model", "object": "model", "owned_by": "conformance"}]})
        else:
            self._json(404, _error(f"no route {url.path}", "not_found"))

    def do_POST(self) -> None:
        url = urlparse(self.path)
        try:
            raw = self.read_body(MAX_REQUEST_BYTES)
        except BodyError as exc:
            self.close_connection = True
            self._json(exc.status, _error(exc.message, "invalid_request_error"))
            return
        try:
            body: Any = loads_bounded(raw) if raw else None  # hook (issue 13): depth-limited
        except (ValueError, UnicodeDecodeError):
            body = raw.decode("utf-8", "replace")
        if url.path.startswith(_CONTROL):
            self._control(url.path[len(_CONTROL) :], parse_qs(url.query), body)
            return
        headers = {k: ("[redacted]" if k.lower() in REDACTED_HEADERS else redact_text(v)) for k, v in self.headers.items()}
        entry = UpstreamLogEntry(0, time.time(), "POST", url.path, headers, redact_doc(body, values_only=True))  # hook (issue 13)
        if not url.path.endswith("/chat/completions"):
            entry.diagnosis = f"the fake upstream only answers POST .../chat/completions, not {url.path}"
            self._log(entry)
            self._json(404, _error(entry.diagnosis, "not_found"))
            return
        interaction = self._match(entry, body)
        self._log(entry)
        if interaction is None:
            message = "responses-conformance fake upstream: no cassette matches this request.\n" + (entry.diagnosis or "")
            self._json(500, _error(message, "cassette_not_found", "cassette_not_found", "messages"))
        elif isinstance(body, dict) and body.get("stream") is not True and interaction.status == 200 and interaction.end == "clean":
            self._whole(interaction)
        else:
            self._replay(interaction)

    def _control(self, action: str, query: dict[str, list[str]], body: Any) -> None:
        """The harness's calls: reset counters, put a turn in flight, take it out of flight."""
        args = body if isinstance(body, dict) else {}
        if action == "reset":
            self.state.reset_counts(query.get("cassette", [None])[0])
            self._json(200, {"ok": True})
        elif action == "expect":
            try:
                token = self.state.register(
                    str(args.get("cassette")),
                    int(args.get("turn", 0)),
                    int(args.get("interaction", 0)),
                    float(args.get("ttl", _IN_FLIGHT_TTL)),
                )
            except (KeyError, TypeError, ValueError):
                message = f"no loaded cassette turn {args.get('cassette')!r} #{args.get('turn')!r}"
                self._json(404, _error(message, "not_found", "unknown_turn"))
                return
            self._json(200, {"token": token})
        elif action == "done":
            self.state.release(str(args.get("token")))
            self._json(200, {"ok": True, "errors": [e.__dict__ for e in pending_errors()]})
        else:
            self._json(404, _error(f"no control route {action!r}", "not_found"))

    def _match(self, entry: UpstreamLogEntry, body: Any) -> Interaction | None:
        """Find the turn and interaction that answer this chat request (see the module doc)."""
        state = self.state
        key = _last_message_text(body)
        flying = state.live()
        chosen: _InFlight | None = None
        if key is not None:
            exact = [f for f in flying if f.turn.match_key == key]
            chosen = min(exact, key=lambda f: (f.next_interaction, f.order)) if exact else None
            entry.match = "exact" if chosen else None
            if chosen is None and flying and isinstance(body, dict):
                blob = _chat_blob(body)
                scored = [(_fit(f, blob), f) for f in flying]
                best = max(scored, key=lambda s: (s[0], -s[1].next_interaction, -s[1].order), default=None)
                if best is not None and best[0] > 0:
                    chosen = best[1]
                    entry.match = "in-flight"
                    entry.diagnosis = (
                        f"the last message differs from the cassette's ({key[:120]!r} instead of "
                        f"{chosen.turn.match_key[:120]!r}); answered as the in-flight turn "
                        f"{chosen.turn.index} of {chosen.cassette.id} ({best[0]:.0%} of its text found)"
                    )
        if chosen is not None:
            with state.lock:
                index = min(chosen.next_interaction, len(chosen.turn.upstream) - 1)
                chosen.next_interaction += 1
            entry.cassette_id, entry.turn, entry.interaction = chosen.cassette.id, chosen.turn.index, index
            return chosen.turn.upstream[index]
        found = state.turns.get(key) if key is not None else None
        if found is None:
            entry.diagnosis = _diagnose(state, body, key)
            return None
        cassette, turn = found
        with state.lock:
            n = state.counts.get((cassette.id, turn.index), 0)
            state.counts[(cassette.id, turn.index)] = n + 1
        entry.cassette_id, entry.turn, entry.interaction = cassette.id, turn.index, min(n, len(turn.upstream) - 1)
        entry.match = "exact"
        return turn.upstream[entry.interaction]

    def _whole(self, interaction: Interaction) -> None:
        """A non-streaming chat request: the same content as one ``chat.completion`` JSON body."""
        expected = expect(interaction)
        if expected.outcome == "failed":
            message = expected.error_message or "the upstream stream ended before a finish_reason"
            self._json(500, _error(message, "server_error"))
            return
        self._json(200, chat_completion_body(expected))

    def _log(self, entry: UpstreamLogEntry) -> None:
        with self.state.lock:
            entry.seq = len(self.state.log)
            self.state.log.append(entry)

    def _replay(self, interaction: Interaction) -> None:
        self.send_response(interaction.status)
        for k, v in interaction.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        if interaction.end == "cut":
            self.send_header("Connection", "close")
        self.end_headers()
        start = time.monotonic()
        try:
            if self.state.replay_timing:
                self.wfile.flush()  # the headers go out now, not with the first (delayed) chunk
                for t_ms, data in interaction.chunks:
                    delay = t_ms / 1000 - (time.monotonic() - start)
                    if delay > 0 and self.state.stopping.wait(delay):
                        break
                    if data:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
            else:
                # Untimed: headers and every chunk in one write (a clean end included). Each
                # recorded chunk stays one HTTP chunk, which is what HTTP clients hand on; a chunk
                # per TCP segment was never promised (Nagle used to merge them anyway), and one
                # write per chunk cost 13 system calls per replay.
                frames = b"".join(b"%x\r\n%s\r\n" % (len(d), d) for _, d in interaction.chunks if d)
                self.wfile.write(frames if interaction.end == "cut" else frames + b"0\r\n\r\n")
                self.wfile.flush()
                if interaction.end != "cut":
                    return
            if interaction.end == "cut":
                # Let the proxy read what was sent before the connection drops, as on a real
                # network: a cut in the same instant as the last chunk makes the proxy's view of
                # the stream (chunks first, or only the failure) a matter of scheduling luck.
                self.state.stopping.wait(_CUT_GRACE)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class FakeUpstream:
    """Replays cassettes over HTTP on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(
        self,
        cassettes: Iterable[Cassette] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        replay_timing: bool = False,
    ) -> None:
        self._state = _State(replay_timing=replay_timing)
        self.add(cassettes)
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = HarnessServer((host, port), handler, role="fake upstream")
        self._thread: threading.Thread | None = None

    def add(self, cassettes: Iterable[Cassette]) -> None:
        with self._state.lock:
            for cassette in cassettes:
                for turn in cassette.turns:
                    if turn.upstream and turn.match_key:
                        self._state.turns[turn.match_key] = (cassette, turn)
                        self._state.by_id[(cassette.id, turn.index)] = (cassette, turn)

    def reset(self, *, cassettes: bool = True) -> None:
        """Forget the log (and, by default, the cassettes): a fresh upstream on the same port."""
        with self._state.lock:
            self._state.log.clear()
            self._state.counts.clear()
            if cassettes:
                self._state.turns.clear()
                self._state.by_id.clear()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL a proxy uses as its OpenAI-compatible ``api_base``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def log(self, cassette_id: str | None = None) -> list[UpstreamLogEntry]:
        with self._state.lock:
            return [e for e in self._state.log if cassette_id is None or e.cassette_id == cassette_id]

    def entries(self, cassette_id: str | None = None, since: float = 0.0) -> list[dict[str, Any]]:
        """The log as the ``/__conformance/log`` route answers it, without the HTTP round trip."""
        return self._state.entries(cassette_id, since)

    def reset_counts(self, cassette_id: str | None = None) -> None:
        """What ``POST /__conformance/reset`` does, in process."""
        self._state.reset_counts(cassette_id)

    @contextlib.contextmanager
    def expecting(
        self, cassette_id: str, turn_index: int, interaction: int = 0, *, missing_ok: bool = False
    ) -> Iterator[None]:
        """Put a turn in flight while the block runs (the harness sends its request inside).

        A chat request that fits it is answered from it, starting at recorded ``interaction``
        (a retry gets the next one). On exit, a stored server-thread error of this process is
        raised as :class:`~conformance.http_server.ServerThreadError`. KeyError for an unknown turn
        (a turn with no recorded upstream), unless ``missing_ok``: then nothing is in flight, as
        with the HTTP :func:`expecting`.
        """
        token: str | None = None
        try:
            token = self._state.register(cassette_id, turn_index, interaction)
        except KeyError:
            if not missing_ok:
                raise
        try:
            yield
        finally:
            if token is not None:
                self._state.release(token)
        raise_server_errors()

    def start(self) -> FakeUpstream:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_UNSUPPORTED: set[str] = set()  # control bases that answered 404 (not a fake upstream): not asked again


@contextlib.contextmanager
def expecting(
    upstream_url: str | None,
    cassette_id: str,
    turn_index: int,
    interaction: int = 0,
    *,
    client: httpx.Client | None = None,
) -> Iterator[None]:
    """:meth:`FakeUpstream.expecting` over HTTP, for a harness in any process (xdist workers).

    ``upstream_url`` is the upstream's ``/v1`` base; None (live mode) or a server without the
    control routes (a recorder, a real upstream) makes this a no-op apart from raising the stored
    server errors of this process. On exit, the errors the upstream's process stored are raised
    as :class:`~conformance.http_server.ServerThreadError`.
    """
    base = upstream_url.rsplit("/v1", 1)[0] if upstream_url else None
    own = client is None
    http = client if client is not None else httpx.Client(timeout=10.0, trust_env=False)
    token: str | None = None
    try:
        if base is not None and base not in _UNSUPPORTED:
            body = {"cassette": cassette_id, "turn": turn_index, "interaction": interaction}
            try:
                resp = http.post(f"{base}{_CONTROL}expect", json=body)
                if resp.status_code == 200:
                    token = str(resp.json()["token"])
                elif resp.status_code in (404, 405, 501) and "unknown_turn" not in resp.text:
                    _UNSUPPORTED.add(base)
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                token = None
        yield
    finally:
        remote: list[StoredError] = []
        if token is not None:
            try:
                answer = http.post(f"{base}{_CONTROL}done", json={"token": token}).json()
                remote = [StoredError(**e) for e in answer.get("errors", [])]
            except (httpx.HTTPError, ValueError, TypeError, AttributeError):
                remote = []
        if own:
            http.close()
    raise_server_errors(remote + pending_errors())
