"""Captures: a saved Responses exchange, checked offline or turned into a cassette.

A capture (``schemas/capture.schema.json``) is what ``responses-conformance record --responses``
writes: the Responses request a client sent, the raw stream the proxy answered with (chunks with
arrival times) and, when the upstream leg was recorded in the same session, every chat request the
proxy made and what the upstream answered. :func:`load_capture` also reads a plain SSE file (what
``curl -N`` saves, with or without the ``curl -i`` head) and an exchange dumped as JSON.

:func:`check_capture` runs every check that needs no live proxy; with an upstream leg the checks
that compare with the upstream run too. :func:`cassette_from_capture` turns a two-leg capture
into a cassette that replays the upstream leg through any build of the proxy.

Anything that is not one of these is a :class:`CaptureError` with one clear line.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.cassette import (
    Interaction,
    Turn,
    chat_message_text,
    first_error,
    parse_cassette,
    request_match_key,
)
from conformance.exceptions import CaptureError
from conformance.exchange import Chunk, Exchange, TransportError
from conformance.slugs import slug as _slug

if TYPE_CHECKING:
    from conformance.cassette import Cassette
    from conformance.checks import Outcome
    from conformance.recorder import Record, Redactor
    from conformance.run_report import CassetteResult

__all__ = [
    "CAPTURE_FORMAT",
    "Capture",
    "CaptureError",
    "Leg",
    "capture_document",
    "cassette_from_capture",
    "check_capture",
    "exchange_from_capture",
    "load_capture",
    "parse_capture",
]

CAPTURE_FORMAT = "responses-conformance-capture"
MAX_CAPTURE_BYTES = 64 * 1024 * 1024
_SSE_LINE = re.compile(rb"^(?:data|event|id|retry)[ \t]*:", re.MULTILINE)
NO_UPSTREAM_REASON = (
    "offline check: the capture has no upstream leg (record both legs with "
    "`responses-conformance record --responses --chat-upstream URL`)"
)
NO_HEADERS_REASON = "offline check: the saved stream has no HTTP head (save it with `curl -i -N` to check headers)"
_HEADER_CHECKS = ("http.content_type",)


@dataclass
class Leg:
    """One HTTP exchange of a capture: the request and the raw answer."""

    method: str = "POST"
    path: str = ""
    request: Any = None
    request_headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    headers: dict[str, str] | None = None
    chunks: list[Chunk] = field(default_factory=list)
    end: str = "clean"
    error: str | None = None
    t_start_ms: float = 0.0
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Capture:
    id: str
    responses: Leg
    upstream: list[Leg] = field(default_factory=list)
    target: str = ""
    captured_at: str | None = None
    kind: str = "capture"  # capture | exchange | sse
    source: str = ""


# -- writing (used by the recorder) ------------------------------------------------------------
def _chunks_json(chunks: Iterable[Chunk]) -> list[dict[str, Any]]:
    return [c.to_json() for c in chunks]


def _leg_json(record: Record, redactor: Redactor, t0: float | None = None) -> dict[str, Any]:
    leg: dict[str, Any] = {}
    if t0 is not None:
        leg["t_start_ms"] = round(max(0.0, (record.t_start - t0) * 1000.0), 3)
    leg.update(
        method=record.method,
        path=record.path,
        query=redactor.redact_query(record.query),
        request_headers=redactor.redact_headers(record.request_headers),
        request=record.body,
        status=record.status,
        headers=redactor.redact_headers(record.headers),
        chunks=_chunks_json(record.chunks),
        end=record.end,
        error=record.error,
    )
    return leg


def capture_document(client: Record, upstream: Sequence[Record], redactor: Redactor, *, target: str = "") -> dict[str, Any]:
    """The capture of one client-leg record and its upstream records (headers redacted)."""
    import datetime as dt
    import hashlib

    when = dt.datetime.fromtimestamp(client.t_start, dt.timezone.utc)
    key = request_match_key(client.body) if isinstance(client.body, dict) else ""
    digest = hashlib.sha1(f"{client.t_start}:{key}".encode()).hexdigest()[:6]
    return {
        "format": CAPTURE_FORMAT,
        "version": 1,
        "id": f"{when.strftime('%Y%m%dt%H%M%S')}-{_slug(key or 'request', 32)}-{digest}",
        "captured_at": when.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "target": target,
        "responses": _leg_json(client, redactor),
        "upstream": [_leg_json(r, redactor, client.t_start) for r in upstream],
    }


# -- reading -----------------------------------------------------------------------------------
def _chunk(data: dict[str, Any], where: str) -> Chunk:
    if "b64" in data:
        try:
            return Chunk(float(data["t_ms"]), base64.b64decode(data["b64"], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise CaptureError(f"{where}.b64: not valid base64 ({exc})") from None
    return Chunk(float(data["t_ms"]), str(data["data"]).encode("utf-8"))


def _leg(data: dict[str, Any], where: str) -> Leg:
    return Leg(
        method=data.get("method", "POST"),
        path=data.get("path", ""),
        request=data.get("request"),
        request_headers=dict(data.get("request_headers") or {}),
        status=data.get("status"),
        headers=dict(data["headers"]) if isinstance(data.get("headers"), dict) else None,
        chunks=[_chunk(c, f"{where}.chunks[{i}]") for i, c in enumerate(data.get("chunks") or [])],
        end=data.get("end", "clean"),
        error=data.get("error"),
        t_start_ms=float(data.get("t_start_ms", 0.0)),
        query=dict(data.get("query") or {}),
    )


def parse_capture(data: Any, source: str = "<memory>") -> Capture:
    """Validate a decoded capture document and build the model."""
    problem = first_error(data, "capture.schema.json")
    if problem is not None:
        raise CaptureError(f"{source}: not a valid capture: {problem[0]}: {problem[1]}")
    return Capture(
        id=data["id"],
        responses=_leg(data["responses"], f"{source}: $.responses"),
        upstream=[_leg(u, f"{source}: $.upstream[{i}]") for i, u in enumerate(data.get("upstream") or [])],
        target=data.get("target", ""),
        captured_at=data.get("captured_at"),
        kind="capture",
        source=source,
    )


def _from_exchange(data: dict[str, Any], source: str) -> Capture:
    try:
        ex = Exchange.from_json(data)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise CaptureError(f"{source}: looks like a dumped exchange but cannot be read ({type(exc).__name__}: {exc})") from None
    leg = Leg(
        path=ex.url,
        request=ex.request,
        request_headers=ex.request_headers,
        status=ex.status,
        headers=ex.headers,
        chunks=ex.chunks,
        end="cut" if ex.transport_error else "clean",
        error=ex.transport_error.message if ex.transport_error else None,
    )
    upstream = []
    for i, e in enumerate(ex.upstream_requests):
        if not isinstance(e, dict):
            continue
        response = e.get("response")
        answer: dict[str, Any] = response if isinstance(response, dict) else {}
        chunks = [_chunk(c, f"{source}: $.upstream_requests[{i}].response.chunks[{j}]") for j, c in enumerate(answer.get("chunks") or [])]
        upstream.append(
            Leg(
                path=str(e.get("path", "")),
                request=e.get("body"),
                request_headers=dict(e.get("headers") or {}),
                status=answer.get("status"),
                headers=dict(answer["headers"]) if isinstance(answer.get("headers"), dict) else None,
                chunks=chunks,
                end=answer.get("end", "clean"),
            )
        )
    return Capture(ex.cassette_id or Path(source).stem, leg, upstream, kind="exchange", source=source)


def _head(text: str) -> tuple[int, dict[str, str]] | None:
    """Status and headers of a ``curl -i`` head, or None when ``text`` is not one."""
    lines = text.split("\n")
    m = re.match(r"HTTP/[0-9.]+\s+(\d{3})", lines[0])
    if not m:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.rstrip("\r").partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(m.group(1)), headers


def _from_sse(raw: bytes, source: str) -> Capture:
    status, headers = 200, None
    body = raw
    if raw.startswith(b"HTTP/"):
        # curl -i: possibly several heads (100 Continue, proxies); the last one owns the body.
        while body.startswith(b"HTTP/"):
            sep = re.search(rb"\r?\n\r?\n", body)
            if sep is None:
                raise CaptureError(f"{source}: starts with an HTTP status line but its head never ends")
            parsed = _head(body[: sep.start()].decode("latin-1"))
            if parsed is None:
                break
            status, headers = parsed
            body = body[sep.end() :]
    sample = body[:65536]
    if b"\x00" in sample:
        raise CaptureError(f"{source}: binary data, not a capture or an SSE stream")
    if not _SSE_LINE.search(sample) and not body.startswith(b"\xef\xbb\xbf"):
        hint = " (a JSON body: was the request sent with \"stream\": true?)" if body.lstrip().startswith(b"{") else ""
        raise CaptureError(f"{source}: not a capture or an SSE stream: no `data:` or `event:` line found{hint}")
    leg = Leg(path="", request={}, status=status, headers=headers, chunks=[Chunk(0.0, body)])
    return Capture(Path(source).stem or "stream", leg, kind="sse", source=source)


def load_capture(path: str | Path) -> Capture:
    """Read a capture, a dumped exchange, or a saved SSE stream (``curl -N``/``curl -i -N``)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CAPTURE_BYTES:
            raise CaptureError(f"{path}: {size} bytes is over the {MAX_CAPTURE_BYTES}-byte limit")
        if path.is_dir():
            raise CaptureError(f"{path}: is a directory, not a file")
        raw = path.read_bytes()
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_capture_bytes(raw, str(path))


def parse_capture_bytes(raw: bytes, source: str = "<memory>") -> Capture:
    if not raw.strip():
        raise CaptureError(f"{source}: the file is empty: no Responses stream to check")
    stripped = raw.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if _SSE_LINE.search(raw[:65536]):
                return _from_sse(raw, source)
            raise CaptureError(f"{source}: not valid JSON ({exc}) and not an SSE stream") from None
        if isinstance(data, dict) and data.get("format") == CAPTURE_FORMAT:
            return parse_capture(data, source)
        if isinstance(data, dict) and {"cassette_id", "request", "chunks"} <= data.keys():
            return _from_exchange(data, source)
        if isinstance(data, dict) and data.get("format") == 1 and "turns" in data:
            raise CaptureError(f"{source}: is a cassette, not a capture; run it with `responses-conformance run --cassettes {source}`")
        raise CaptureError(
            f"{source}: JSON, but neither a capture (\"format\": \"{CAPTURE_FORMAT}\") nor a dumped exchange; "
            "a non-streaming Responses body cannot be checked as a stream"
        )
    return _from_sse(raw, source)


# -- checking ----------------------------------------------------------------------------------
def exchange_from_capture(capture: Capture) -> Exchange:
    """The exchange the checks see. Without an upstream leg it is marked ``live`` (no oracle)."""
    leg = capture.responses
    url = leg.path if leg.path.startswith("http") else (capture.target.rstrip("/").removesuffix("/v1") + leg.path if capture.target else leg.path)
    ex = Exchange(
        cassette_id=capture.id,
        turn=0,
        url=url or "(saved stream)",
        request=leg.request if isinstance(leg.request, dict) else {},
        request_headers=dict(leg.request_headers),
        status=leg.status,
        headers=dict(leg.headers or {}),
        chunks=list(leg.chunks),
    )
    if leg.end == "cut":
        ex.transport_error = TransportError("protocol", leg.error or "the connection broke mid-response")
    elif leg.error and leg.status is None:
        ex.transport_error = TransportError("connect", leg.error)
    if capture.upstream:
        ex.upstream_expected = 1
        ex.upstream_requests = [
            {
                "seq": i,
                "t": u.t_start_ms / 1000.0,
                "method": u.method,
                "path": u.path,
                "headers": dict(u.request_headers),
                "body": u.request,
                "cassette_id": capture.id,
                "turn": 0,
                "interaction": i,
                "diagnosis": None,
                "response": {
                    "status": u.status,
                    "headers": dict(u.headers or {}),
                    "chunks": [c.to_json() for c in u.chunks],
                    "end": u.end,
                },
            }
            for i, u in enumerate(capture.upstream)
        ]
    else:
        ex.live = True
    return ex


def check_capture(
    capture: Capture,
    *,
    profile: str = "openai",
    select: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    cassette: Cassette | None = None,
) -> CassetteResult:
    """Run every check that needs no live proxy on a capture; the result renders like a run's.

    ``cassette``: the cassette whose first request the capture answered (a live run's exchange),
    so the checks know what it expects (an invalid request expects a 4xx, for example)."""
    from conformance.checks import REGISTRY, Context, Outcome, run_checks
    from conformance.checks import selected_checks as _selected
    from conformance.run_report import CassetteResult

    ex = exchange_from_capture(capture)
    skip_headers = capture.responses.headers is None
    excluded = list(exclude or []) + (list(_HEADER_CHECKS) if skip_headers else [])
    context = None
    if cassette is not None:
        ex.cassette_id = cassette.id
        context = Context(ex, cassette=cassette, turn=cassette.turns[0])
    if capture.upstream and all(u.status is not None for u in capture.upstream):
        # The oracle's source: what the upstream really answered the proxy (its last request).
        interactions = [
            Interaction(u.status or 502, dict(u.headers or {}), [(c.t_ms, c.data) for c in u.chunks], u.end)
            for u in capture.upstream
        ]
        turn = cassette.turns[0] if cassette is not None else Turn(0, ex.request, interactions, request_match_key(ex.request))
        context = Context(ex, cassette=cassette, turn=turn, interaction=interactions[-1])
    outcomes: dict[str, Outcome] = run_checks(
        ex, profile=profile, select=select or None, exclude=excluded or None, context=context
    )
    if skip_headers:
        chosen = {s.id for s in _selected(select or None, exclude or None)}
        for cid in _HEADER_CHECKS:
            if cid in chosen:
                outcomes[cid] = Outcome(skipped=NO_HEADERS_REASON)
    if ex.live:
        for cid, outcome in outcomes.items():
            if REGISTRY[cid].needs_upstream and outcome.skipped and outcome.skipped.startswith("live mode"):
                outcome.skipped = NO_UPSTREAM_REASON
    if not ex.request:
        # A bare stream: there is no request to repeat, so a curl line would mislead.
        for outcome in outcomes.values():
            for f in outcome.findings:
                f.repro = None
    return CassetteResult(capture.id, [ex], outcomes)


# -- reproducing -------------------------------------------------------------------------------
def cassette_from_capture(
    captures: Sequence[Capture],
    *,
    cassette_id: str | None = None,
    description: str | None = None,
    backend: str = "unknown",
    tags: Sequence[str] = (),
) -> dict[str, Any]:
    """A cassette whose turns are these captures, in order: the Responses request of each, and
    the upstream answers recorded with it, so the proxy meets the same upstream again."""
    if not captures:
        raise CaptureError("no capture given")
    turns: list[dict[str, Any]] = []
    model: str | None = None
    for n, cap in enumerate(captures):
        where = cap.source or cap.id
        if not cap.upstream:
            raise CaptureError(
                f"{where}: has no upstream leg, so there is nothing to replay; record the proxy's "
                "upstream in the same session (`record --responses --chat-upstream URL`)"
            )
        request = cap.responses.request
        if not isinstance(request, dict) or "input" not in request:
            raise CaptureError(f"{where}: the client leg holds no Responses request with `input`")
        request = dict(request)
        request.setdefault("model", "model")
        interactions = []
        for u in cap.upstream:
            if u.status is None:
                raise CaptureError(f"{where}: an upstream request got no answer ({u.error}); it cannot be replayed")
            interactions.append(
                {
                    "status": u.status,
                    "headers": {k: v for k, v in (u.headers or {}).items() if k.lower() not in ("date", "content-length", "transfer-encoding", "connection", "keep-alive")},
                    "chunks": [c.to_json() for c in u.chunks],
                    "end": u.end,
                }
            )
            if model is None:
                model = _model_of(u)
        turn: dict[str, Any] = {"request": request, "upstream": interactions}
        first = cap.upstream[0].request
        messages = first.get("messages") if isinstance(first, dict) else None
        sent = chat_message_text(messages[-1]) if isinstance(messages, list) and messages else ""
        if sent and sent != request_match_key(request):
            turn["match"] = {"last_message": sent}
        elif not sent and not request_match_key(request):
            raise CaptureError(f"{where}: turn {n}: neither the request nor the upstream leg has a last message text to match on")
        turns.append(turn)
    first_cap = captures[0]
    cid = cassette_id or f"captured-{_slug(request_match_key(turns[0]['request']) or first_cap.id, 48)}"
    doc: dict[str, Any] = {
        "format": 1,
        "id": cid,
        "description": description or f"Built from the capture {first_cap.id}: the upstream leg a proxy met, replayed so the bug seen once becomes a test.",
        "tags": list(tags),
        "provenance": {
            "source": "captured",
            "backend": backend,
            "based_on": ", ".join(Path(c.source).name if c.source else c.id for c in captures),
            "recorded_at": first_cap.captured_at,
            **({"model": model} if model else {}),
        },
        "turns": turns,
    }
    try:
        parse_cassette(doc, cid)
    except ValueError as exc:
        raise CaptureError(f"the cassette built from {first_cap.source or first_cap.id} is not valid: {exc}") from None
    return doc


def _model_of(leg: Leg) -> str | None:
    for chunk in leg.chunks[:5]:
        m = re.search(rb'"model"\s*:\s*"([^"]{1,200})"', chunk.data)
        if m and m.group(1):
            return m.group(1).decode("utf-8", "replace")
    req = leg.request
    return req.get("model") if isinstance(req, dict) and isinstance(req.get("model"), str) else None
