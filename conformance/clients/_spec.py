"""The client registry: one :class:`ClientSpec` per real client mode, and running one safely."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conformance.clients._model import FIELDS, ClientVerdict, Outcome, judge
from conformance.clients._replay import Capture

__all__ = ["ClientError", "ClientSpec", "run_client", "where_of"]

TIMEOUT = 20.0


class ClientError(Exception):
    """A client failed loudly in another process (node, Codex): its message and where it raised."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class ClientSpec:
    """One way of consuming a Responses answer with a real client library.

    ``run(base_url, timeout, tools)`` drives the client (declaring those function tools) against
    the replay server and returns what the client produced; it raises whatever the client raises. ``reports``: the fields that client
    shows its user (the others are not compared). ``opt_in``: the non-default setting this mode
    turns on (its breakage is a warning, not an error). ``missing()``: None when the client can
    run here, else one line saying what to install.
    """

    name: str
    family: str  # python | node | codex
    description: str
    run: Callable[[str, float, list[dict[str, Any]]], Outcome]
    version: Callable[[], str | None]
    missing: Callable[[], str | None]
    reports: tuple[str, ...] = FIELDS
    modes: tuple[str, ...] = ("stream",)
    opt_in: str | None = None
    # Set for a client that must replay the capture itself (Codex, in its own namespace).
    run_capture: Callable[[Capture, float], Outcome] | None = None
    # Adapts what the client reports to the reference where the client shows the same thing its
    # own way (the AI SDK shows a refusal as text with finishReason content-filter).
    view: Callable[[Outcome, Outcome], Outcome] | None = None

    def label(self) -> str:
        version = self.version()
        return f"{self.name} {version}" if version else self.name


def where_of(exc: BaseException) -> str:
    """The exception type and the innermost frame inside the client library (not our runner)."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "site-packages" in f.filename or "node_modules" in f.filename]
    chosen = inside or list(frames)
    if not chosen:
        return type(exc).__name__
    frame = chosen[-1]
    path = frame.filename.split("site-packages/")[-1]
    return f"{type(exc).__name__} at {path}:{frame.lineno}"


def _message(exc: BaseException) -> str:
    """The exception's first line, plus its cause's (a validation error names the field)."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    out = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    cause = exc.__cause__
    closest = _closest_validation_errors(cause)
    if closest:
        out += f" ({closest})"
    elif cause is not None:
        lines = [line.strip() for line in str(cause).strip().splitlines() if line.strip()][:3]
        out += f" (cause: {type(cause).__name__}: {' / '.join(lines)})"
    return out[:400]


def _closest_validation_errors(cause: BaseException | None) -> str:
    """For a pydantic union failure: the member with the fewest errors, and those errors.

    A strict-validation failure lists every event model of the union; the member matching the
    event's type is the one that fails on the fewest fields, so its errors name the culprit.
    """
    errors_of = getattr(cause, "errors", None)
    if cause is None or not callable(errors_of):
        return ""
    try:
        errors = list(errors_of())
    except Exception:
        return ""
    groups: dict[str, list[str]] = {}
    other_type: set[str] = set()
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if not loc:
            continue
        if loc[1:] == ["type"] and err.get("type") == "literal_error":
            other_type.add(loc[0])  # a member for another event type
        groups.setdefault(loc[0], []).append(f"{'.'.join(loc[1:]) or loc[0]}: {err.get('msg', '')}")
    groups = {k: v for k, v in groups.items() if k not in other_type} or groups
    if not groups:
        return ""
    member, errs = min(groups.items(), key=lambda kv: (len(kv[1]), kv[0]))
    return f"{member}: " + "; ".join(errs[:3])


def _raising_is_right(expected: Outcome) -> str:
    """The answers a client may rightly turn into an exception: a failed one, one cut short
    (``response.incomplete``: openai-python's stream helper and the Agents SDK raise), and a
    bare refusal (the Agents SDK raises ModelRefusalError)."""
    if expected.status == "failed":
        return "a failed answer"
    if expected.status == "incomplete":
        return "an incomplete answer"
    if expected.refusal and not expected.text and not expected.tool_calls:
        return "a refusal"
    return ""


def run_client(
    spec: ClientSpec,
    base_url: str,
    expected: Outcome,
    *,
    capture: Capture | None = None,
    tools: list[dict[str, Any]] | None = None,
    timeout: float = TIMEOUT,
) -> ClientVerdict:
    """Run one client against the replay server and judge it; never raises, never hangs."""
    why = spec.missing()
    if why:
        return ClientVerdict(spec.name, "skipped", why)
    box: dict[str, object] = {}

    def target() -> None:
        try:
            if spec.run_capture is not None and capture is not None:
                box["outcome"] = spec.run_capture(capture, timeout)
            else:
                box["outcome"] = spec.run(base_url, timeout, tools or [])
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True, name=f"client-{spec.name}")
    worker.start()
    budget = 2 * timeout + 40
    worker.join(budget)
    if worker.is_alive():
        return ClientVerdict(spec.name, "ERR", f"the client did not finish within {budget:.0f} s", "timeout")
    error = box.get("error")
    if isinstance(error, BaseException):
        reason = _raising_is_right(expected)
        if reason:
            return ClientVerdict(spec.name, "ok", f"raised, as it does on {reason}: {_message(error)}")
        where = error.where if isinstance(error, ClientError) else where_of(error)
        return ClientVerdict(spec.name, "ERR", _message(error) if not isinstance(error, ClientError) else str(error)[:400], where)
    outcome = box["outcome"]
    assert isinstance(outcome, Outcome)
    if spec.view is not None:
        outcome = spec.view(expected, outcome)
    if expected.status == "failed" and outcome.status != "failed":
        return ClientVerdict(
            spec.name, "LOSS", f"the answer failed, the client reported success (status {outcome.status!r})",
            evidence={"got": outcome.to_json()},
        )
    verdict = judge(spec.name, expected, outcome, reports=spec.reports)
    if verdict.breaks:
        verdict.evidence["got_full"] = outcome.to_json()
    return verdict
