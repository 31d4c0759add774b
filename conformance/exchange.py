"""Plain data at the bottom of the import graph: what was sent, what came back, what checks found.

Everything here serialises to JSON (``to_json``/``from_json``) so an exchange recorded by one
pytest-xdist worker can be read by another, and so reports can be written from it.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass, field
from typing import Any

from conformance._safety import cap_finding_text, cap_value

__all__ = ["PROFILES", "Chunk", "Exchange", "Finding", "FindingImpact", "Outcome", "Severity", "TransportError"]

PROFILES = ("openai", "open-responses", "lenient", "strict")
"""The profiles a run can use (see :mod:`conformance.checks._profiles`); here so options need no checks."""


class Severity(str, enum.Enum):
    """How bad a finding is. ``error`` fails a run; the others are shown but do not fail it."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]


@dataclass(frozen=True)
class FindingImpact:
    """What a finding does to real clients: measured live (``--clients``) or in the lab table."""

    level: str  # error | warning | note
    clients: tuple[str, ...] = ()  # the clients that break, default configuration first
    summary: str = ""
    source: str = "table"  # table (the lab's impact.json) | live (this run's replay)
    verdicts: dict[str, str] = field(default_factory=dict)  # client -> ERR | LOSS | ok

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "clients": list(self.clients), "summary": self.summary,
                "source": self.source, "verdicts": dict(self.verdicts)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FindingImpact:
        return cls(str(data.get("level", "note")), tuple(data.get("clients") or ()),
                   str(data.get("summary", "")), str(data.get("source", "table")),
                   {str(k): str(v) for k, v in (data.get("verdicts") or {}).items()})


@dataclass
class Finding:
    """One rule broken at one place in one exchange."""

    check_id: str
    severity: Severity
    message: str
    cassette_id: str = ""
    turn: int = 0
    event_index: int | None = None
    raw: str | None = None
    pointer: str | None = None
    expected: Any = None
    actual: Any = None
    repro: str | None = None
    impact: FindingImpact | None = None

    def __post_init__(self) -> None:  # hook (issue 13): a hostile proxy cannot flood any sink
        self.message, self.raw = cap_finding_text(self.message, self.raw)
        self.expected, self.actual = cap_value(self.expected), cap_value(self.actual)

    def to_json(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "severity": self.severity.value,
            "message": self.message,
            "cassette_id": self.cassette_id,
            "turn": self.turn,
            "event_index": self.event_index,
            "raw": self.raw,
            "pointer": self.pointer,
            "expected": self.expected,
            "actual": self.actual,
            "repro": self.repro,
            "impact": self.impact.to_json() if self.impact is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(
            check_id=data["check_id"],
            severity=Severity(data["severity"]),
            message=data["message"],
            cassette_id=data.get("cassette_id", ""),
            turn=data.get("turn", 0),
            event_index=data.get("event_index"),
            raw=data.get("raw"),
            pointer=data.get("pointer"),
            expected=data.get("expected"),
            actual=data.get("actual"),
            repro=data.get("repro"),
            impact=FindingImpact.from_json(data["impact"]) if data.get("impact") else None,
        )


@dataclass
class Outcome:
    """One check on one exchange (or merged over a cassette's exchanges): findings, or why skipped."""

    findings: list[Finding] = field(default_factory=list)
    skipped: str | None = None


@dataclass
class TransportError:
    """Why the driver stopped reading before the server closed the stream cleanly."""

    kind: str  # connect | first_byte_timeout | idle_timeout | total_timeout | byte_cap | event_cap | protocol
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message}


@dataclass
class Chunk:
    """Bytes as they arrived from the network, with the time since the request was sent."""

    t_ms: float
    data: bytes

    def to_json(self) -> dict[str, Any]:
        try:
            return {"t_ms": round(self.t_ms, 3), "data": self.data.decode("utf-8")}
        except UnicodeDecodeError:
            return {"t_ms": round(self.t_ms, 3), "b64": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Chunk:
        if "b64" in data:
            return cls(float(data["t_ms"]), base64.b64decode(data["b64"]))
        return cls(float(data["t_ms"]), str(data["data"]).encode("utf-8", "surrogatepass"))


@dataclass
class Exchange:
    """What really happened when one turn of a cassette ran against the proxy."""

    cassette_id: str
    turn: int
    url: str
    request: dict[str, Any]
    request_headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)
    transport_error: TransportError | None = None
    upstream_requests: list[dict[str, Any]] = field(default_factory=list)
    upstream_unmatched: list[dict[str, Any]] = field(default_factory=list)
    upstream_expected: int = 0
    live: bool = False
    mode: str = "stream"  # stream | nonstream: whether the request asked for a stream
    raw_body: str | None = None  # sent instead of ``request`` as JSON (malformed-request cassettes)

    @property
    def body(self) -> bytes:
        return b"".join(c.data for c in self.chunks)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "cassette_id": self.cassette_id,
            "turn": self.turn,
            "url": self.url,
            "request": self.request,
            "request_headers": self.request_headers,
            "status": self.status,
            "headers": self.headers,
            "chunks": [c.to_json() for c in self.chunks],
            "transport_error": self.transport_error.to_json() if self.transport_error else None,
            "upstream_requests": self.upstream_requests,
            "upstream_unmatched": self.upstream_unmatched,
            "upstream_expected": self.upstream_expected,
            "live": self.live,
            "mode": self.mode,
            "raw_body": self.raw_body,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Exchange:
        te = data.get("transport_error")
        return cls(
            cassette_id=data["cassette_id"],
            turn=data["turn"],
            url=data["url"],
            request=data["request"],
            request_headers=data.get("request_headers", {}),
            status=data.get("status"),
            headers=data.get("headers", {}),
            chunks=[Chunk.from_json(c) for c in data.get("chunks", [])],
            transport_error=TransportError(te["kind"], te["message"]) if te else None,
            upstream_requests=data.get("upstream_requests", []),
            upstream_unmatched=data.get("upstream_unmatched", []),
            upstream_expected=data.get("upstream_expected", 0),
            live=data.get("live", False),
            mode=data.get("mode", "stream"),
            raw_body=data.get("raw_body"),
        )
