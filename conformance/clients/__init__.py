"""Client impact: replay a captured exchange into real client libraries and judge what they did.

``replay_exchange(exchange, clients)`` serves the exchange byte for byte from a replay server on
127.0.0.1 and returns one :class:`ClientVerdict` per client (``ok``, ``ERR`` with the message and
where it raised, ``LOSS`` with the evidence). ``impact_for(check_id)`` reads the impact table the
lab measured (``responses-conformance clients lab``).
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from conformance import impact
from conformance.clients._carried import carried, outcome_from_oracle
from conformance.clients._model import ClientVerdict, Outcome, ToolCall
from conformance.clients._node import NODE_ENVS, node_missing
from conformance.clients._node import install as install_node_clients
from conformance.clients._python import TOOL
from conformance.clients._registry import CLIENTS, ClientSelectionError, select_clients
from conformance.clients._replay import Capture, ReplayServer
from conformance.clients._spec import ClientSpec, run_client
from conformance.impact import TABLE_PATH, Impact, load_table

if TYPE_CHECKING:
    from conformance.exchange import Exchange

__all__ = [
    "CLIENTS",
    "NODE_ENVS",
    "TABLE_PATH",
    "Capture",
    "ClientSelectionError",
    "ClientSpec",
    "ClientVerdict",
    "Impact",
    "Outcome",
    "ReplayServer",
    "ToolCall",
    "capture_of",
    "impact_for",
    "impact_of_finding",
    "install_node_clients",
    "load_table",
    "node_missing",
    "outcome_from_oracle",
    "replay_capture",
    "replay_exchange",
    "select_clients",
    "tools_for",
]


def capture_of(exchange: Exchange) -> Capture:
    """The exchange as the replay server sends it: status, headers, the chunks, and how it ended."""
    error = exchange.transport_error
    cut = None
    if error is not None:
        cut = "stall" if error.kind == "idle_timeout" else "drop"
    return Capture(exchange.status or 502, dict(exchange.headers), [c.data for c in exchange.chunks], cut=cut)


def tools_for(expected: Outcome, request_tools: Any = None) -> list[dict[str, Any]]:
    """The function tools a client declares: the request's, plus any the answer calls that the
    request did not declare (an agent SDK rejects a call of a tool it does not have)."""
    if request_tools is None:
        tools = [dict(TOOL)]  # the lab's own streams call the tool every client declares
    else:
        tools = [dict(t) for t in request_tools if isinstance(t, dict) and t.get("type") == "function" and t.get("name")]
    names = {t["name"] for t in tools}
    for call in expected.tool_calls or []:
        if call.name and call.name not in names:
            names.add(call.name)
            tools.append({"type": "function", "name": call.name, "description": "",
                          "parameters": {"type": "object", "properties": {}, "additionalProperties": True}, "strict": False})
    return tools


def replay_capture(
    capture: Capture,
    clients: list[ClientSpec],
    *,
    stream: bool = True,
    expected: Outcome | None = None,
    tools: list[dict[str, Any]] | None = None,
    timeout: float = 20.0,
    workers: int = 2,
) -> list[ClientVerdict]:
    """Run every client (those that take this mode) against one replay server; verdicts in order.

    ``tools``: the function tools the clients declare (default: :func:`tools_for` the answer).
    """
    mode = "stream" if stream else "nonstream"
    body = b"".join(capture.chunks)
    if expected is not None:
        want = expected
    else:
        want = carried(body, stream=stream)
        if not 200 <= capture.status < 300:
            want.status = "failed"
    declared = tools if tools is not None else tools_for(want)
    chosen = [c for c in clients if mode in c.modes]
    with ReplayServer(capture) as server, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(run_client, c, server.base_url, want, capture=capture, tools=declared, timeout=timeout)
            for c in chosen
        ]
        return [f.result() for f in futures]


def replay_exchange(
    exchange: Exchange,
    clients: list[ClientSpec] | str | None = None,
    *,
    expected: Outcome | None = None,
    timeout: float = 20.0,
) -> list[ClientVerdict]:
    """Replay one captured exchange into each client (default: all installed); one verdict each.

    ``expected``: what the upstream said, when the caller knows it (``outcome_from_oracle(
    expect(interaction))`` for a cassette turn with one upstream interaction); by default the
    answer the stream itself carried. On a non-2xx answer a client that raises is ``ok``.
    Clients that cannot run here are reported as ``skipped`` with the reason.
    """
    chosen = clients if isinstance(clients, list) else select_clients(clients)
    capture = capture_of(exchange)
    stream = exchange.mode != "nonstream"
    want = dataclasses.replace(expected) if expected is not None else carried(b"".join(capture.chunks), stream=stream)
    if not 200 <= capture.status < 300:
        want.status = "failed"  # an error answer: raising is the client's right reaction
    tools = tools_for(want, exchange.request.get("tools") or [] if isinstance(exchange.request, dict) else [])
    return replay_capture(capture, chosen, stream=stream, expected=want, tools=tools, timeout=timeout)


def _rule(check_id: str) -> str:
    """The spec rule a check enforces: the first sentence of its doc."""
    from conformance.checks import REGISTRY

    spec = REGISTRY.get(check_id)
    return spec.summary if spec is not None else check_id


def impact_for(check_id: str, key: str | None = None, *, table: dict[str, Any] | None = None) -> Impact | None:
    """:func:`conformance.impact.impact_for`, a note's summary naming the check's rule."""
    return impact.impact_for(check_id, key, table=table, rule=_rule(check_id))


def impact_of_finding(check_id: str, pointer: str | None = None, message: str = "") -> Impact | None:
    """:func:`conformance.impact.impact_of_finding`, a note's summary naming the check's rule."""
    return impact.impact_of_finding(check_id, pointer, message, rule=_rule(check_id))
