"""``--clients``: replay each exchange of a run into the selected clients, in the one pipeline.

The verdicts are kept per exchange (:attr:`CassetteResult.clients`), and each finding's impact
becomes what the clients did with that turn's answer (``source: live``) instead of the lab's
table: a measured fact about this target beats a measurement on a crafted stream.
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance.cassette import Cassette
from conformance.clients import ClientSpec, ClientVerdict, outcome_from_oracle, replay_exchange
from conformance.exchange import FindingImpact
from conformance.expected import expect
from conformance.run_report import CassetteResult

__all__ = ["live_impact", "replay_result"]

_WORST = {"ok": 0, "LOSS": 1, "ERR": 2}


def replay_result(
    result: CassetteResult, cassette: Cassette | None, clients: list[ClientSpec], *, live: bool = False, timeout: float = 20.0
) -> None:
    """Replay every exchange of ``result`` into ``clients``; store the verdicts, set findings' impact.

    The reference for LOSS is what the upstream said (the cassette's oracle) when the turn has
    one upstream interaction and this is not live mode; else (no cassette: ``check FILE``) what
    the stream itself carried.
    """
    turns = {t.index: t for t in cassette.turns} if cassette is not None else {}
    by_turn: dict[int, list[ClientVerdict]] = {}
    for i, exchange in enumerate(result.exchanges):
        turn = turns.get(exchange.turn)
        expected = None
        if turn is not None and len(turn.upstream) == 1 and not live and not exchange.live:
            expected = outcome_from_oracle(expect(turn.upstream[0]))
        verdicts = replay_exchange(exchange, clients, expected=expected, timeout=timeout)
        result.clients[i] = [v.to_json() for v in verdicts]
        by_turn.setdefault(exchange.turn, []).extend(verdicts)
    opt_in = {c.name for c in clients if c.opt_in}
    for finding in result.findings():
        measured = by_turn.get(finding.turn)
        if measured:
            finding.impact = live_impact(measured, opt_in)


def live_impact(verdicts: Sequence[ClientVerdict], opt_in: set[str] | frozenset[str] = frozenset()) -> FindingImpact:
    """What the replayed clients did with one turn's answer(s), the worst verdict per client."""
    worst: dict[str, ClientVerdict] = {}
    for v in verdicts:
        if v.verdict in _WORST and (v.client not in worst or _WORST[v.verdict] > _WORST[worst[v.client].verdict]):
            worst[v.client] = v
    broke = [v for v in worst.values() if v.breaks]
    default = [v for v in broke if v.client not in opt_in]
    level = "error" if default else "warning" if broke else "note"
    ordered = sorted(broke, key=lambda v: (v.client in opt_in, v.verdict != "ERR", v.client))
    if ordered:
        summary = "breaks " + "; ".join(f"{v.client} ({v.verdict}: {v.message[:90]})" for v in ordered)
        if not default:
            summary = "breaks only opt-in modes: " + summary.removeprefix("breaks ")
    else:
        summary = f"no replayed client broke on this answer ({len(worst)} clients)"
    return FindingImpact(
        level, tuple(v.client for v in ordered), summary, "live", {name: v.verdict for name, v in sorted(worst.items())}
    )
