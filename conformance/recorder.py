"""The recorder: a transparent reverse proxy that writes what really crossed the wire.

Two legs can be recorded:

* the **upstream leg** (``leg="chat"``): the proxy under test points its OpenAI-compatible
  backend at :attr:`Recorder.url`; every ``POST …/chat/completions`` is forwarded to the real
  upstream and its answer streamed back chunk by chunk, as each one arrives (no buffering), while
  the chunks and their arrival times are kept. When the answer ends the turn is written as a
  cassette (format 1) into ``out_dir``.
* the **client leg** (``leg="responses"``): a client (Codex, an SDK) points at the recorder
  instead of the proxy; every ``POST …/responses`` is forwarded to the proxy and the request and
  the raw Responses stream are written as a capture (``schemas/capture.schema.json``). Given the
  chat recorder of the same session (``pair=``), the capture also holds the upstream leg: one
  file with the whole story, which ``responses-conformance check`` and ``cassette from-capture``
  read.

Secrets never reach disk: :class:`Redactor` replaces credential headers (``Authorization``,
``api-key``, ``x-api-key``, cookies and any configured name) and credential query parameters
before anything is written, then scans the whole document (bodies, query strings, headers,
chunks) for key-shaped values; if one remains the write is refused with :class:`SecretError`,
whose message names the field (never the value).

Record modes follow pytest-recording: ``none`` replays what ``out_dir`` holds and never
forwards; ``once`` replays recorded cassettes and records cassettes that have no file yet;
``new_episodes`` replays what matches a recording and records everything else; ``all``
forwards and records everything; ``rewrite`` is ``all`` but rebuilds each cassette file from
scratch instead of merging into it.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from conformance.cassette import (
    Cassette,
    CassetteError,
    chat_message_text,
    load_cassettes,
    parse_cassette,
    request_match_key,
)
from conformance.exceptions import SecretError
from conformance.exchange import Chunk
from conformance.http_server import BodyError, HarnessHandler, HarnessServer, pending_errors
from conformance.slugs import slug as _slug
from conformance.upstream import FakeUpstream

__all__ = [
    "DEFAULT_REDACT_HEADERS",
    "DEFAULT_REDACT_QUERY",
    "RECORD_MODES",
    "REDACTED",
    "Recorder",
    "Redactor",
    "SecretError",
    "responses_request_from_chat",
    "write_json_safely",
]

RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
REDACTED = "[redacted]"
DEFAULT_REDACT_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
    }
)
DEFAULT_REDACT_QUERY = frozenset({"key", "api-key", "api_key", "apikey", "access_token", "token"})
# Shapes of real credentials. Each is anchored so ordinary prose ("task-based") does not match.
DEFAULT_SECRET_PATTERNS: tuple[tuple[str, str], ...] = (
    ("an OpenAI-style key (sk-…)", r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{12,}"),
    ("a bearer token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{8,}=*"),
    ("a Google API key (AIza…)", r"\bAIza[0-9A-Za-z_\-]{30,}"),
    ("a Groq key (gsk_…)", r"\bgsk_[A-Za-z0-9]{20,}"),
    ("an xAI key (xai-…)", r"\bxai-[A-Za-z0-9]{20,}"),
    ("a Hugging Face token (hf_…)", r"\bhf_[A-Za-z0-9]{20,}"),
    ("a GitHub token (ghp_…)", r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    ("an AWS access key id", r"\bAKIA[0-9A-Z]{16}\b"),
)
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)
# Response headers not worth keeping in a cassette: hop-by-hop framing and per-request noise.
_FRAMING = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
_DROP_RESPONSE = _FRAMING | {"date"}
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass
class Redactor:
    """What to hide before writing, and what must not remain.

    ``headers`` and ``query`` name headers and query parameters whose values are replaced by
    ``[redacted]`` (case-insensitive). ``patterns`` are extra regular expressions of secrets;
    with the built-in shapes they are searched in every string (and key) of a document.
    """

    headers: frozenset[str] = DEFAULT_REDACT_HEADERS
    query: frozenset[str] = DEFAULT_REDACT_QUERY
    patterns: Sequence[str] = ()
    _compiled: list[tuple[str, re.Pattern[str]]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.headers = frozenset(h.lower() for h in self.headers)
        self.query = frozenset(q.lower() for q in self.query)
        self._compiled = [(name, re.compile(rx)) for name, rx in DEFAULT_SECRET_PATTERNS]
        for rx in self.patterns:
            try:
                self._compiled.append((f"the configured pattern {rx!r}", re.compile(rx)))
            except re.error as exc:
                raise ValueError(f"redaction pattern {rx!r} is not a valid regular expression: {exc}") from None

    @classmethod
    def with_extra(cls, headers: Iterable[str] = (), query: Iterable[str] = (), patterns: Iterable[str] = ()) -> Redactor:
        """The defaults plus more header names, query parameter names and secret patterns."""
        return cls(
            headers=DEFAULT_REDACT_HEADERS | {h.lower() for h in headers},
            query=DEFAULT_REDACT_QUERY | {q.lower() for q in query},
            patterns=tuple(patterns),
        )

    def redact_headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        return {k: (REDACTED if k.lower() in self.headers else v) for k, v in headers}

    def redact_query(self, query: str) -> dict[str, str]:
        """A query string as a dict, credential parameters replaced."""
        out: dict[str, str] = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            out[k] = REDACTED if k.lower() in self.query else v
        return out

    def find_secret(self, text: str) -> str | None:
        """The description of the first secret shape found in ``text``, or None."""
        if REDACTED in text:
            text = text.replace(REDACTED, "")
        for name, rx in self._compiled:
            if rx.search(text):
                return name
        return None

    def scan(self, doc: Any, path: str = "$") -> tuple[str, str] | None:
        """The JSON path and secret kind of the first key-shaped value anywhere in ``doc``."""
        if isinstance(doc, str):
            kind = self.find_secret(doc)
            return (path, kind) if kind else None
        if isinstance(doc, dict):
            for k, v in doc.items():
                key = str(k)
                where = f"{path}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", key) else f"{path}[{json.dumps(key)}]"
                kind = self.find_secret(key)
                if kind:
                    return (f"{where} (the key itself)", kind)
                found = self.scan(v, where)
                if found:
                    return found
        elif isinstance(doc, list):
            for i, v in enumerate(doc):
                found = self.scan(v, f"{path}[{i}]")
                if found:
                    return found
        return None

    def check(self, doc: Any, target: str) -> None:
        """Raise :class:`SecretError` naming the field when ``doc`` still holds a secret."""
        found = self.scan(doc)
        if found:
            where, kind = found
            raise SecretError(
                f"refusing to write {target}: {where} holds {kind} after redaction; remove it from "
                "the traffic, or redact that field (--redact-header NAME, --redact-query NAME) or "
                "widen the scan (--redact-pattern REGEX) so it is replaced"
            )


def write_json_safely(path: Path, doc: Any, redactor: Redactor) -> Path:
    """Scan ``doc`` for secrets and write it atomically; raise :class:`SecretError` instead."""
    redactor.check(doc, str(path))
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)
    return path


# -- chat request -> Responses request ---------------------------------------------------------
def _parts_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _user_content(content: Any) -> Any:
    if not isinstance(content, list):
        return _parts_text(content)
    parts: list[dict[str, Any]] = []
    for p in content:
        if not isinstance(p, dict):
            continue
        if p.get("type") == "image_url":
            image = p.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append({"type": "input_image", "image_url": url, "detail": (image or {}).get("detail", "auto") if isinstance(image, dict) else "auto"})
        elif isinstance(p.get("text"), str):
            parts.append({"type": "input_text", "text": p["text"]})
    return parts


def responses_request_from_chat(chat: dict[str, Any]) -> dict[str, Any]:
    """The Responses request a faithful proxy would turn into ``chat``.

    Used when only the upstream leg is recorded: the cassette still needs a request to send. The
    last input item carries the same text as the last chat message, so the fake upstream matches.
    """
    items: list[dict[str, Any]] = []
    for msg in chat.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role in ("system", "developer"):
            items.append({"role": role, "content": _parts_text(msg.get("content"))})
        elif role == "user":
            items.append({"role": "user", "content": _user_content(msg.get("content"))})
        elif role == "assistant":
            text = _parts_text(msg.get("content"))
            if text:
                items.append({"role": "assistant", "content": text})
            for call in msg.get("tool_calls") or []:
                fn = (call.get("function") or {}) if isinstance(call, dict) else {}
                call = call if isinstance(call, dict) else {}
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.get("id", ""),
                        "name": fn.get("name", ""),
                        "arguments": fn.get("arguments") or "{}",
                    }
                )
        elif role == "tool":
            items.append(
                {"type": "function_call_output", "call_id": msg.get("tool_call_id", ""), "output": _parts_text(msg.get("content"))}
            )
    request: dict[str, Any] = {"model": chat.get("model") or "model", "input": items}
    tools = []
    for tool in chat.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict):
            tools.append({"type": "function", **{k: fn[k] for k in ("name", "description", "parameters", "strict") if k in fn}})
    if tools:
        request["tools"] = tools
        choice = chat.get("tool_choice")
        if isinstance(choice, str):
            request["tool_choice"] = choice
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            request["tool_choice"] = {"type": "function", "name": choice["function"].get("name")}
        if isinstance(chat.get("parallel_tool_calls"), bool):
            request["parallel_tool_calls"] = chat["parallel_tool_calls"]
    limit = chat.get("max_completion_tokens", chat.get("max_tokens"))
    if isinstance(limit, int):
        request["max_output_tokens"] = limit
    for key in ("temperature", "top_p"):
        if isinstance(chat.get(key), (int, float)):
            request[key] = chat[key]
    fmt = chat.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        request["text"] = {"format": {"type": "json_object"}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), dict):
        request["text"] = {"format": {"type": "json_schema", **fmt["json_schema"]}}
    request["stream"] = True
    return request


# -- one forwarded exchange --------------------------------------------------------------------
@dataclass
class Record:
    """One request the recorder forwarded, and what came back (raw chunks with arrival times)."""

    t_start: float
    method: str
    path: str
    query: str
    request_headers: list[tuple[str, str]]
    body: Any
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    end: str = "clean"
    error: str | None = None
    t_end: float = 0.0
    claimed: bool = False
    log_entry: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def key(self) -> str | None:
        """Last chat message text (chat leg) or the Responses match key (client leg)."""
        if not isinstance(self.body, dict):
            return None
        messages = self.body.get("messages")
        if isinstance(messages, list) and messages:
            return chat_message_text(messages[-1])
        if "input" in self.body:
            return request_match_key(self.body)
        return None

    def response_model(self) -> str | None:
        for chunk in self.chunks:
            for m in re.finditer(rb'"model"\s*:\s*"([^"]{1,200})"', chunk.data):
                value = m.group(1).decode("utf-8", "replace")
                if value:
                    return value
        return None

    def interaction(self) -> dict[str, Any]:
        """This answer as a cassette interaction (headers not yet redacted)."""
        return {
            "status": self.status or 502,
            "headers": {k.lower(): v for k, v in self.headers if k.lower() not in _DROP_RESPONSE},
            "chunks": [c.to_json() for c in self.chunks],
            "end": self.end,
        }


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _guess_backend(headers: Iterable[tuple[str, str]], chunks: Sequence[Chunk]) -> str:
    server = next((v for k, v in headers if k.lower() == "server"), "").lower()
    head = b"".join(c.data for c in chunks[:3])
    if "llama.cpp" in server or (b"system_fingerprint\":\"b" in head and b"timings" in b"".join(c.data for c in chunks)):
        return "llamacpp"
    if "uvicorn" in server and b"vllm" in head.lower():
        return "vllm"
    if "openai" in server or (b"chatcmpl-" in head and b"system_fingerprint\":\"fp_" in head):
        return "openai"
    return "unknown"


@dataclass
class _Spec:
    """A cassette turn the recorder knows: recorded chat traffic matching ``key`` goes there."""

    cassette_id: str
    turn: int
    request: dict[str, Any]
    source: dict[str, Any] | None = None


class _Server(HarnessServer):
    recorder: Recorder


class Recorder:
    """A recording reverse proxy on 127.0.0.1. ``start()``, point a client at ``url``, ``stop()``.

    ``cassettes`` (or :meth:`add`) are the turns this run expects: chat traffic whose last message
    matches a turn's key is recorded into that cassette (same id, same Responses request). Other
    chat traffic becomes a new cassette whose request is rebuilt from the chat request.
    """

    def __init__(
        self,
        upstream_url: str,
        out_dir: str | Path,
        mode: str = "all",
        *,
        redact: Redactor | None = None,
        cassettes: Iterable[Cassette] = (),
        leg: str = "chat",
        pair: Recorder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        backend: str | None = None,
        tags: Sequence[str] = (),
        write: bool = True,
        on_event: Callable[[str], None] | None = None,
        timeout: float = 600.0,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        if mode not in RECORD_MODES:
            raise ValueError(f"record mode {mode!r} is not one of {', '.join(RECORD_MODES)}")
        if leg not in ("chat", "responses"):
            raise ValueError(f"leg must be 'chat' or 'responses', not {leg!r}")
        parsed = urlsplit(upstream_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"upstream URL {upstream_url!r} is not an http(s) URL")
        self.upstream_url = upstream_url.rstrip("/")
        self.out_dir = Path(out_dir)
        self.mode = mode
        self.redactor = redact or Redactor()
        self.leg = leg
        self.pair = pair
        self.backend = backend
        self.tags = list(tags)
        self.write = write
        self.on_event = on_event
        self.transform = transform  # opt-in rewrite of recorded JSON requests (what is sent is what is kept)
        self.written: list[Path] = []
        self._inflight = 0
        self._idle = threading.Condition()
        self.errors: list[str] = []
        self.records: list[Record] = []
        self._specs: dict[str, _Spec] = {}
        self._docs: dict[str, dict[str, Any]] = {}
        self._session_turns: dict[tuple[str, int], int] = {}
        self._log: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._replay: FakeUpstream | None = None
        self._replay_keys: set[str] = set()
        self._recorded_ids: set[str] = set()
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_keepalive_connections=0),
            trust_env=False,
        )
        self.add(cassettes)

    # -- configuration ---------------------------------------------------------------------
    def add(self, cassettes: Iterable[Cassette]) -> None:
        """Expect these cassettes' turns: matching chat traffic is recorded under their ids."""
        with self._lock:
            for cassette in cassettes:
                for turn in cassette.turns:
                    self._specs[turn.match_key] = _Spec(cassette.id, turn.index, turn.request, cassette.raw or None)

    def expect(self, cassette_id: str, request: dict[str, Any], *, turn: int = 0, description: str | None = None, tags: Sequence[str] = ()) -> None:
        """Record the chat request this Responses ``request`` causes as turn ``turn`` of ``cassette_id``."""
        source = None
        if description or tags:
            source = {"description": description or "", "tags": list(tags)}
        with self._lock:
            self._specs[request_match_key(request)] = _Spec(cassette_id, turn, request, source)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the recorder is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL a client uses (an OpenAI-compatible ``api_base`` ending in ``/v1``)."""
        return f"http://{self._host if self._host not in ('0.0.0.0', '') else '127.0.0.1'}:{self.port}/v1"

    def start(self) -> Recorder:
        if self._server is not None:
            return self
        if self.leg == "chat" and self.mode != "all" and self.out_dir.is_dir():
            self._load_recorded()
        if self.mode == "none" and self._replay is None:
            self._replay = FakeUpstream([]).start()
        server = _Server((self._host, self._port), _Handler, role="recorder")
        server.recorder = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=f"recorder-{self.port}"
        )
        self._thread.start()
        return self

    def _load_recorded(self) -> None:
        cassettes, errors = load_cassettes([self.out_dir])
        for err in errors:
            self._event(f"recorder: ignoring {err}")
        if self.mode == "rewrite":
            return
        self._replay = FakeUpstream(cassettes).start()
        self._recorded_ids = {c.id for c in cassettes}
        self._replay_keys = {t.match_key for c in cassettes for t in c.turns}

    def stop(self) -> None:
        # Let exchanges still in flight finish writing their cassettes (bounded: a stuck client
        # must not hang the run).
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=10)
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._replay is not None:
            self._replay.stop()
            self._replay = None
        self.client.close()

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- decisions -------------------------------------------------------------------------
    def _event(self, message: str) -> None:
        if self.on_event is not None:
            self.on_event(message)

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)
        if self.on_event is not None:
            self.on_event(message)
        else:
            print(f"responses-conformance recorder: {message}", file=sys.stderr)

    def replays(self, key: str | None) -> bool:
        """Whether a chat request with this last-message text is answered from ``out_dir``."""
        if self.leg != "chat" or self.mode in ("all", "rewrite"):
            return False
        if self.mode == "none":
            return True
        if key is not None and key in self._replay_keys:
            return True
        if self.mode == "once" and key is not None:
            spec = self._specs.get(key)
            return spec is not None and spec.cassette_id in self._recorded_ids
        return False

    def target(self, path: str, replay: bool) -> str:
        """The URL a request for ``path`` (below this recorder) is forwarded to."""
        base = self._replay.url if replay and self._replay is not None else self.upstream_url
        rest = path[3:] if path.startswith("/v1/") or path == "/v1" else path
        return base + rest

    # -- the log (same entries as the fake upstream's, so the harness can read either) -----
    def log_entries(self, cassette_id: str | None, since: float) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e
                for e in self._log
                if e["t"] >= since
                and (cassette_id is None or e["cassette_id"] == cassette_id or (e["cassette_id"] is None and cassette_id == "__unmatched__"))
            ]

    def _log_request(self, record: Record, spec: _Spec | None) -> None:
        with self._lock:
            n = self._session_turns.get((spec.cassette_id, spec.turn), 0) if spec else 0
            record.log_entry = {
                "seq": len(self._log),
                "t": record.t_start,
                "method": record.method,
                "path": record.path,
                "headers": self.redactor.redact_headers(record.request_headers),
                "body": record.body,
                "cassette_id": spec.cassette_id if spec else None,
                "turn": spec.turn if spec else None,
                "interaction": n,
                "diagnosis": None if spec else "recorded as a new cassette (no expected turn has this last message)",
                "response": None,
            }
            self._log.append(record.log_entry)

    # -- after an exchange -----------------------------------------------------------------
    def finished(self, record: Record, replayed: bool) -> None:
        with self._lock:
            self.records.append(record)
            del self.records[:-1000]
            if record.log_entry is not None:
                # What the upstream answered, for checks that compare the proxy with it.
                interaction = record.interaction()
                interaction["headers"] = self.redactor.redact_headers(interaction["headers"].items())
                record.log_entry["response"] = interaction
        if replayed or not self.write or (record.error is not None and record.status is None):
            return
        try:
            if self.leg == "chat":
                self._write_cassette(record)
            else:
                self._write_capture(record)
        except SecretError as exc:
            self._error(str(exc))
        except (OSError, CassetteError) as exc:
            self._error(f"could not write the recording: {exc}")

    def _spec_for(self, record: Record) -> _Spec:
        key = record.key or ""
        with self._lock:
            spec = self._specs.get(key)
        if spec is not None:
            return spec
        body = record.body if isinstance(record.body, dict) else {}
        backend = self.backend or _guess_backend(record.headers, record.chunks)
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:6]
        cid = f"{_slug(backend, 12)}-{_slug(key)}-{digest}"
        return _Spec(cid, 0, responses_request_from_chat(body), None)

    def _write_cassette(self, record: Record) -> None:
        spec = self._spec_for(record)
        path = self.out_dir / f"{spec.cassette_id}.json"
        backend = self.backend or _guess_backend(record.headers, record.chunks)
        interaction = record.interaction()
        interaction["headers"] = self.redactor.redact_headers(interaction["headers"].items())
        with self._lock:
            doc = self._docs.get(spec.cassette_id)
            if doc is None:
                doc = self._base_doc(spec, path)
            n = self._session_turns.get((spec.cassette_id, spec.turn), 0)
            self._session_turns[(spec.cassette_id, spec.turn)] = n + 1
            turns = doc["turns"]
            while len(turns) <= spec.turn:
                turns.append({"request": spec.request, "upstream": []})
            turn = turns[spec.turn]
            if n == 0:
                turn["upstream"] = []
            turn["upstream"].append(interaction)
            key = record.key or ""
            if key and key != request_match_key(turn["request"]):
                turn["match"] = {"last_message": key}
            prov = doc["provenance"]
            prov.update(
                source="recorded",
                backend=backend,
                recorded_at=_now_iso(),
                recorded_from=self._safe_upstream(),
            )
            model = record.response_model() or (record.body.get("model") if isinstance(record.body, dict) else None)
            if isinstance(model, str) and model:
                prov["model"] = model
            requests = [r for r in prov.get("upstream_requests", []) if not (r.get("turn") == spec.turn and n == 0)]
            requests.append(
                {
                    "turn": spec.turn,
                    "interaction": n,
                    "method": record.method,
                    "path": record.path,
                    "query": self.redactor.redact_query(record.query),
                    "headers": self.redactor.redact_headers(record.request_headers),
                    "body": record.body,
                }
            )
            prov["upstream_requests"] = requests
            parse_cassette(doc, str(path))
            write_json_safely(path, doc, self.redactor)
            self._docs[spec.cassette_id] = doc
            if path not in self.written:
                self.written.append(path)
        self._event(f"recorded {path}")

    def _safe_upstream(self) -> str:
        parsed = urlsplit(self.upstream_url)
        return f"{parsed.scheme}://{parsed.hostname}{':' + str(parsed.port) if parsed.port else ''}{parsed.path}"

    def _base_doc(self, spec: _Spec, path: Path) -> dict[str, Any]:
        if self.mode != "rewrite" and path.is_file():
            try:
                existing = json.loads(path.read_text("utf-8"))
                parse_cassette(existing, str(path))
                return dict(existing)
            except (OSError, ValueError):
                pass
        source = copy.deepcopy(spec.source) if spec.source else {}
        description = source.get("description") or (
            f"Recorded through the responses-conformance recorder: {(request_match_key(spec.request) or 'a chat request')[:120]}"
        )
        turns: list[Any] = source["turns"] if isinstance(source.get("turns"), list) else []
        return {
            "format": 1,
            "id": spec.cassette_id,
            "description": description,
            "tags": list(source.get("tags") or self.tags),
            "provenance": {"source": "recorded", "backend": self.backend or "unknown"},
            "turns": [{"request": t["request"], "upstream": t["upstream"], **({"match": t["match"]} if "match" in t else {})} for t in turns],
        }

    def _write_capture(self, record: Record) -> None:
        from conformance.capture import capture_document

        upstream = self.pair.claim(record) if self.pair is not None else []
        doc = capture_document(record, upstream, self.redactor, target=self._safe_upstream())
        path = self.out_dir / f"{doc['id']}.capture.json"
        with self._lock:
            write_json_safely(path, doc, self.redactor)
            self.written.append(path)
        self._event(f"captured {path}")

    def claim(self, client: Record) -> list[Record]:
        """The upstream records that belong to this client-leg record (pairing two legs).

        Chat requests that started while the Responses exchange was open are its upstream leg;
        when several are open at once, the ones whose last message matches its input win.
        """
        # The upstream leg is written after its last byte went out, and the client leg can end a
        # moment before that: wait (bounded) for upstream exchanges still being finished.
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=5)
        key = request_match_key(client.body) if isinstance(client.body, dict) else None
        end = client.t_end or time.time()
        with self._lock:
            window = [r for r in self.records if not r.claimed and client.t_start - 0.001 <= r.t_start <= end]
            same = [r for r in window if key and r.key == key]
            chosen = same or window
            for r in chosen:
                r.claimed = True
            return sorted(chosen, key=lambda r: r.t_start)


def _envelope(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "server_error", "param": None, "code": code}}).encode()


class _Handler(HarnessHandler):
    server: _Server

    def _plain(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        rec = self.server.recorder
        if parts.path == "/__conformance/log":
            q = dict(parse_qsl(parts.query))
            entries = rec.log_entries(q.get("cassette"), float(q.get("since", "0") or 0))
            self._plain(200, json.dumps(entries).encode())
        elif parts.path == "/__conformance/health":
            self._plain(200, json.dumps({"ok": True, "recorder": rec.leg, "mode": rec.mode}).encode())
        else:
            self._forward(b"")

    def do_POST(self) -> None:
        try:
            body = self.read_body(MAX_BODY_BYTES)
        except (BodyError, OSError) as exc:
            self.close_connection = True
            status = exc.status if isinstance(exc, BodyError) else 400
            with contextlib.suppress(OSError):
                self._plain(status, _envelope(f"recorder: {exc}", "request_too_large" if status == 413 else "bad_request"))
            return
        path = urlsplit(self.path).path
        if path in ("/__conformance/expect", "/__conformance/done"):
            # The harness's in-flight calls (conformance.upstream.expecting): nothing to match
            # here, but `done` waits until the exchanges still relaying are logged with their
            # answer (the harness reads the log next; bounded) and reports the server-thread
            # errors of this process.
            if path.endswith("done"):
                rec = self.server.recorder
                with rec._idle:
                    rec._idle.wait_for(lambda: rec._inflight == 0, timeout=10)
            answer = {"token": ""} if path.endswith("expect") else {"ok": True, "errors": [e.__dict__ for e in pending_errors()]}
            self._plain(200, json.dumps(answer).encode())
            return
        rec = self.server.recorder
        with rec._idle:
            rec._inflight += 1
        try:
            self._forward(body)
        finally:
            with rec._idle:
                rec._inflight -= 1
                rec._idle.notify_all()

    do_PUT = do_POST
    do_DELETE = do_GET

    def _forward(self, raw: bytes) -> None:
        rec = self.server.recorder
        parts = urlsplit(self.path)
        try:
            body: Any = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = raw.decode("utf-8", "replace")
        suffix = "/chat/completions" if rec.leg == "chat" else "/responses"
        recorded = self.command == "POST" and parts.path.rstrip("/").endswith(suffix)
        if recorded and rec.transform is not None and isinstance(body, dict):
            body = rec.transform(body)
            raw = json.dumps(body).encode("utf-8")
        record = Record(time.time(), self.command, parts.path, parts.query, list(self.headers.items()), body)
        spec = rec._specs.get(record.key or "") if recorded and rec.leg == "chat" else None
        replay = recorded and rec.replays(record.key)
        if recorded and rec.leg == "chat":
            rec._log_request(record, spec if spec else None)
        url = rec.target(parts.path, replay) + (f"?{parts.query}" if parts.query else "")
        # read_body undid any Content-Encoding: what goes on is the decoded body
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "content-encoding"]
        headers.append(("Accept-Encoding", "identity"))
        t0 = time.monotonic()
        try:
            request = rec.client.build_request(self.command, url, content=raw or None, headers=headers)
            response = rec.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            record.error = f"cannot reach the upstream at {url}: {type(exc).__name__}: {exc}"
            rec._error(record.error)
            with contextlib.suppress(OSError):
                self._plain(502, _envelope(f"responses-conformance recorder: {record.error}", "upstream_unreachable"))
            record.t_end = time.time()
            if recorded:
                rec.finished(record, replay)
            return
        try:
            self._relay(response, record, t0)
        finally:
            response.close()
            record.t_end = time.time()
        if recorded:
            rec.finished(record, replay)

    def _relay(self, response: httpx.Response, record: Record, t0: float) -> None:
        """Send the upstream's answer on as each network chunk arrives, and keep it."""
        record.status = response.status_code
        record.headers = list(response.headers.multi_items())
        self.send_response_only(response.status_code, response.reason_phrase or None)
        for k, v in record.headers:
            if k.lower() not in _FRAMING:
                self.send_header(k, v)
        bodiless = self.command == "HEAD" or response.status_code in (204, 304)
        if not bodiless:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        client_alive = True
        try:
            for data in response.iter_raw():
                if not data:
                    continue
                record.chunks.append(Chunk((time.monotonic() - t0) * 1000.0, data))
                if client_alive and not bodiless:
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                    except OSError:
                        client_alive = False
        except httpx.HTTPError as exc:
            record.end = "cut"
            record.error = f"the upstream connection broke mid-response: {exc}"
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if not client_alive:
            self.close_connection = True
            return
        if not bodiless:
            with contextlib.suppress(OSError):
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
