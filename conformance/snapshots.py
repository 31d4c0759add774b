"""Snapshots of exchanges (syrupy): see exactly what changed in a proxy's stream between builds.

With ``--conformance-snapshots`` the plugin adds one test per cassette,
``conformance/<cassette>::snapshot``, that compares the cassette's exchange, normalised by
:func:`normalise_exchanges`, with ``<rootdir>/__conformance_snapshots__/<cassette>.json``
(``--conformance-snapshot-dir``). A missing or different snapshot fails with syrupy's diff; syrupy's
own ``--snapshot-update`` accepts the change. The snapshots belong to the proxy project (they sit
beside its tests), never to the harness. ``responses-conformance run --snapshot-dir DIR`` compares
the same files without pytest (the snapshot sink, :mod:`conformance.report.snapshot`).

Normalising keeps what a proxy decides and drops what changes on every run:

- ids (``id``, ``*_id`` keys, and UUIDs anywhere) become placeholders that keep their prefix and
  their identity: the same id is the same placeholder everywhere in the cassette (``resp_<1>``);
- timestamps (``created_at``, ``created``, ...) become ``"<timestamp>"`` (the field stays, so a
  proxy that stops sending it shows up); OpenAI's random ``obfuscation`` padding becomes
  ``"<obfuscation>"``;
- chunk boundaries and timings are dropped: the stream is kept as its SSE events, in order, one
  line each (``event: … data: {…}`` with the JSON compact), so a diff names the events that changed;
- compressed bodies (``Content-Encoding: gzip``) are decoded; of the response headers only those
  a client acts on are kept (content type and encoding, caching, buffering); ``date``,
  ``server``, lengths and per-request ids are not.
"""

from __future__ import annotations

import contextlib
import json
import re
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from syrupy.extensions.json import JSONSnapshotExtension
from syrupy.location import PyTestLocation

from conformance.cassette import Cassette
from conformance.exchange import Exchange
from conformance.sse import parse_sse

__all__ = ["ExchangeSnapshotExtension", "Normaliser", "SnapshotItem", "normalise_exchanges"]

TIMESTAMP_KEYS = frozenset(
    {"created_at", "completed_at", "created", "expires_at", "started_at", "failed_at", "cancelled_at", "timestamp"}
)
VOLATILE_KEYS = frozenset({"obfuscation"})
KEPT_HEADERS = ("content-type", "cache-control", "content-encoding", "x-accel-buffering")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9]*[_-])")


class Normaliser:
    """Replaces ids by placeholders that keep identity across everything it sees."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def placeholder(self, value: str) -> str:
        if value not in self.ids:
            m = _PREFIX.match(value)
            prefix = m.group(1) if m and len(m.group(1)) < len(value) else ""
            self.ids[value] = f"{prefix}<{len(self.ids) + 1}>"
        return self.ids[value]

    @staticmethod
    def is_id_key(key: str) -> bool:
        return key == "id" or key.endswith("_id") or key == "system_fingerprint"

    def text(self, value: str) -> str:
        if value in self.ids:
            return self.ids[value]
        return _UUID.sub(lambda m: self.placeholder(m.group(0)), value)

    def value(self, data: Any, key: str | None = None) -> Any:
        if isinstance(data, dict):
            return {k: self.value(v, k) for k, v in data.items()}
        if isinstance(data, list):
            return [self.value(v, key) for v in data]
        if key in TIMESTAMP_KEYS and isinstance(data, (int, float, str)) and not isinstance(data, bool):
            return "<timestamp>"
        if key in VOLATILE_KEYS and data is not None:
            return f"<{key}>"
        if isinstance(data, str):
            if key is not None and self.is_id_key(key) and data:
                return self.placeholder(data)
            return self.text(data)
        return data


def _compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _body(exchange: Exchange, norm: Normaliser) -> dict[str, Any]:
    """The stream as one line per SSE event (a diff then shows exactly the events that changed)."""
    ctype = (exchange.header("content-type") or "").lower()
    raw = exchange.body
    encoding = (exchange.header("content-encoding") or "").lower()
    if encoding in ("gzip", "deflate"):
        # Compression output differs between runs (gzip headers, levels); the content does not.
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw, 47)
    if "event-stream" in ctype or (exchange.mode == "stream" and raw.lstrip()[:5] in (b"data:", b"event")):
        events, parser = parse_sse([raw] if encoding else [c.data for c in exchange.chunks])
        lines: list[str] = []
        for ev in events:
            head = f"event: {ev.event} " if ev.event is not None else ""
            if ev.id is not None:
                head += f"id: {norm.text(ev.id)} "
            try:
                data = _compact(norm.value(json.loads(ev.data)))
            except ValueError:
                data = norm.text(ev.data)
            lines.append(f"{head}data: {data}")
        body: dict[str, Any] = {"events": lines}
        issues = sorted({i.kind for i in parser.issues})
        if issues:
            body["framing_issues"] = issues
        return body
    text = raw.decode("utf-8", "replace")
    try:
        return {"body": norm.value(json.loads(text))}
    except ValueError:
        return {"body_text": norm.text(text)}


def normalise_exchanges(exchanges: Sequence[Exchange]) -> dict[str, Any]:
    """The stable picture of one cassette's exchanges (one entry per turn); see the module doc.

    Ordered dicts keep this order in the snapshot file (syrupy sorts plain dicts' keys).
    """
    norm = Normaliser()
    turns = []
    for ex in exchanges:
        turn: dict[str, Any] = OrderedDict(turn=ex.turn, request=norm.value(ex.request), status=ex.status)
        headers = {k.lower(): v for k, v in ex.headers.items()}
        turn["headers"] = {k: norm.text(headers[k]) for k in KEPT_HEADERS if k in headers}
        if ex.transport_error is not None:
            turn["transport_error"] = ex.transport_error.kind
        if ex.status is not None:
            turn.update(_body(ex, norm))
        turn["upstream_requests"] = [
            OrderedDict(method=u.get("method"), path=u.get("path"), body=norm.value(u.get("body")))
            for u in ex.upstream_requests
        ]
        turns.append(turn)
    return OrderedDict(cassette=exchanges[0].cassette_id if exchanges else None, turns=turns)


class ExchangeSnapshotExtension(JSONSnapshotExtension):
    """syrupy's JSON extension, one file per cassette in the directory the item names."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        return str(test_location.item.snapshot_dir)

    @classmethod
    def get_snapshot_name(cls, *, test_location: Any, index: Any = 0) -> str:
        return str(test_location.item.cassette.id)


class _Location(PyTestLocation):
    """The snapshot of a :class:`SnapshotItem` is its cassette's file, whatever the node is called."""

    def matches_snapshot_name(self, snapshot_name: str) -> bool:
        cassette_id: str = self.item.cassette.id  # type: ignore[attr-defined]
        return snapshot_name == cassette_id

    def matches_snapshot_location(self, snapshot_location: str) -> bool:
        path: Path = self.item.location_path  # type: ignore[attr-defined]
        return Path(snapshot_location) == path


def _snapshot_target() -> None:
    """Stands in for a test function where syrupy asks for one (module and name)."""


class SnapshotMismatch(Exception):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("snapshot differs")
        self.lines = lines


class SnapshotItem(pytest.Item):
    """``conformance/<cassette>::snapshot``: the normalised exchange against its stored snapshot."""

    def __init__(self, *, cassette: Cassette, suite: Any, snapshot_dir: Path, **kw: Any) -> None:
        super().__init__(**kw)
        self.cassette = cassette
        self.suite = suite
        self.snapshot_dir = snapshot_dir
        self.add_marker(pytest.mark.conformance)

    @property
    def obj(self) -> Any:
        return _snapshot_target

    @property
    def location_path(self) -> Path:
        return self.snapshot_dir / f"{self.cassette.id}.json"

    def _session(self) -> Any:
        from syrupy.session import SnapshotSession

        key = "_conformance_syrupy"
        session = getattr(self.config, key, None)
        if session is None:
            # A session of our own: syrupy's unused-snapshot bookkeeping only knows real test
            # functions, and must never delete (or count as unused) these files.
            session = SnapshotSession(pytest_session=self.session)
            session.start()
            setattr(self.config, key, session)
        return session

    def runtest(self) -> None:
        from syrupy.assertion import SnapshotAssertion
        from syrupy.terminal import disable_color

        result = self.suite.result(self.cassette)
        data = normalise_exchanges(result.exchanges)
        option = self.config.option
        session = self._session()
        assertion = SnapshotAssertion(
            update_snapshots=bool(getattr(option, "update_snapshots", False)),
            update_new_snapshots_only=bool(getattr(option, "update_new_snapshots_only", False)),
            extension_class=ExchangeSnapshotExtension,
            test_location=_Location(self),
            session=session,
        )
        matched = assertion == data
        session.flush_snapshot_write_queue()
        execution = assertion.executions[0]
        if execution.created:
            state = "created"
        elif execution.updated:
            state = "updated"
        elif matched:
            state = "matched"
        else:
            state = "missing" if execution.recalled_data is None else "different"
        self.user_properties.append(("conformance_snapshot", json.dumps({"cassette": self.cassette.id, "state": state})))
        if state == "missing":
            raise SnapshotMismatch(["there is no stored snapshot yet: write it with --snapshot-update"])
        if not matched:
            with disable_color():
                lines = list(assertion.get_assert_diff())
            raise SnapshotMismatch(lines)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, SnapshotMismatch):
            head = (
                f"the normalised exchange of cassette {self.cassette.id} differs from {self.location_path} "
                "(accept the change with --snapshot-update):"
            )
            return "\n".join([head, *excinfo.value.lines])
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return str(self.location_path), None, f"{self.cassette.id}::snapshot"
