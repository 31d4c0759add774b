"""Property: ``responses-conformance check`` on any bytes, or any mutation of a real exchange, ends
with exit 0, 1 or 2 and never a traceback or an internal error (exit 3). Fixed budget, derandomized."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.cli import main
from conformance.harness import Harness, Settings
from conformance.resources import cassettes_dir

pytestmark = pytest.mark.slow
BUDGET = settings(
    max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec=None), max_size=30),
    st.sampled_from(["", "response.completed", "response.output_text.delta", "message", "\ud800", "\x1b[31m"]),
)
json_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@pytest.fixture(scope="module")
def exchange() -> dict[str, Any]:
    cassette = cassettes_dir() / "tools" / "openai-tool-call.json"
    with Harness(Settings(cassette_dirs=[str(cassette)], stream_only=True)) as h:
        result = h.run(h.cassettes[0])
    doc: dict[str, Any] = result.exchanges[0].to_json()
    return doc


def check(tmp_path: Path, data: bytes) -> tuple[int, str]:
    f = tmp_path / "input"
    f.write_bytes(data)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(["check", str(f), "--json", str(tmp_path / "out.json")])
    return rc, buf.getvalue()


def assert_clean(rc: int, out: str) -> None:
    assert rc in (0, 1, 2), out[-3000:]
    assert "Traceback" not in out and "internal error" not in out, out[-3000:]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:6]):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@BUDGET
@given(data=st.binary(max_size=3000))
def test_check_survives_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    assert_clean(*check(tmp_path, data))


@BUDGET
@given(prefix=st.sampled_from([b"", b"data: ", b"HTTP/1.1 200 OK\r\n\r\ndata: ", b"{", b"event: x\n"]), body=st.binary(max_size=2000))
def test_check_survives_sse_shaped_noise(tmp_path: Path, prefix: bytes, body: bytes) -> None:
    assert_clean(*check(tmp_path, prefix + body))


@BUDGET
@given(choice=st.data(), value=json_values, delete=st.booleans())
def test_check_survives_mutated_exchange_dumps(tmp_path: Path, exchange: dict[str, Any], choice: st.DataObject, value: Any, delete: bool) -> None:
    doc = copy.deepcopy(exchange)
    path = choice.draw(st.sampled_from(_paths(doc)[1:]))
    doc = _mutate(doc, path, value, delete)
    assert_clean(*check(tmp_path, json.dumps(doc).encode("utf-8", "surrogatepass")))


@BUDGET
@given(choice=st.data(), value=json_values, delete=st.booleans())
def test_check_survives_mutated_events(tmp_path: Path, exchange: dict[str, Any], choice: st.DataObject, value: Any, delete: bool) -> None:
    body = "".join(c.get("data", "") for c in exchange["chunks"])
    events = [json.loads(line[6:]) for line in body.split("\n") if line.startswith("data: {")]
    i = choice.draw(st.integers(0, len(events) - 1))
    path = choice.draw(st.sampled_from(_paths(events[i])))
    events[i] = _mutate(events[i], path, value, delete)
    stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    assert_clean(*check(tmp_path, stream.encode("utf-8", "surrogatepass")))
