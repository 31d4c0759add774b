"""What a client made of a stream, what the stream carried, and the verdict comparing the two.

A runner turns a client's own return value into an :class:`Outcome` (the fields a user of that
client sees). :func:`judge` compares it with the :class:`Outcome` the stream carried (or the
upstream said): a raised error is ``ERR``, any difference in a field the client reports is
``LOSS`` with the evidence, else ``ok``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FIELDS", "ClientVerdict", "Outcome", "ToolCall", "judge"]

FIELDS = ("text", "refusal", "reasoning", "tool_calls", "status", "usage")


@dataclass(frozen=True)
class ToolCall:
    call_id: str | None
    name: str | None
    arguments: Any  # the JSON value when the arguments parse, else the raw string

    @classmethod
    def of(cls, call_id: Any, name: Any, arguments: Any) -> ToolCall:
        """Normalise: arguments compared as JSON values, so `{"a": 1}` equals `{"a":1}`."""
        value = arguments
        if isinstance(arguments, str):
            try:
                value = json.loads(arguments)
            except ValueError:
                value = arguments
        return cls(call_id if call_id is None else str(call_id), name if name is None else str(name), value)

    def to_json(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "name": self.name, "arguments": self.arguments}


@dataclass
class Outcome:
    """The answer as one consumer sees it; a field left None is one that consumer does not report."""

    text: str | None = None
    refusal: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] | None = None
    status: str | None = None
    usage: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "refusal": self.refusal,
            "reasoning": self.reasoning,
            "tool_calls": None if self.tool_calls is None else [t.to_json() for t in self.tool_calls],
            "status": self.status,
            "usage": self.usage,
        }


@dataclass
class ClientVerdict:
    """One client's verdict on one exchange: ``ok``, ``ERR`` or ``LOSS``, with the evidence."""

    client: str
    verdict: str  # ok | ERR | LOSS | skipped
    message: str = ""
    where: str = ""  # ERR: the exception type and the frame (or script line) that raised it
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def breaks(self) -> bool:
        return self.verdict in ("ERR", "LOSS")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"client": self.client, "verdict": self.verdict, "message": self.message}
        if self.where:
            out["where"] = self.where
        if self.evidence:
            out["evidence"] = self.evidence
        return out


def _usage_differs(expected: dict[str, int], got: dict[str, int]) -> bool:
    """Input and output counts must match; the total only where the client reports one."""
    return any(
        got.get(k) != expected.get(k)
        for k in ("input_tokens", "output_tokens", "total_tokens")
        if k in got or k != "total_tokens"
    )


def judge(client: str, expected: Outcome, got: Outcome, *, reports: tuple[str, ...] = FIELDS) -> ClientVerdict:
    """LOSS for every reported field that differs from what the stream carried, else ok."""
    diffs: dict[str, Any] = {}
    for name in reports:
        want = getattr(expected, name)
        have = getattr(got, name)
        if name == "usage":
            if want is not None and (have is None or _usage_differs(want, have)):
                diffs[name] = {"expected": want, "got": have}
            continue
        if name == "tool_calls":
            want_j = [t.to_json() for t in want or []]
            have_j = None if have is None else [t.to_json() for t in have]
            if have_j is not None:  # upstream sent no call id: the proxy must mint one, any will do
                for w, h in zip(want_j, have_j, strict=False):
                    if not w["call_id"] and h["call_id"]:
                        h["call_id"] = w["call_id"]
            if have_j != want_j:
                diffs[name] = {"expected": want_j, "got": have_j}
            continue
        if (want or None) != (have or None):
            diffs[name] = {"expected": want, "got": have}
    if not diffs:
        return ClientVerdict(client, "ok")
    parts = []
    for name, d in diffs.items():
        parts.append(f"{name}: expected {_short(d['expected'])}, got {_short(d['got'])}")
    return ClientVerdict(client, "LOSS", "; ".join(parts), evidence=diffs)


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"
