"""``replay CASSETTE``: bring the fake upstream back for one cassette, so a repro works after the run.

The report prints, for each problem, ``responses-conformance replay CASSETTE`` and a ``curl -d
@file`` line. This command serves that cassette's recorded upstream answers on 127.0.0.1 (and,
with ``--reference``, the reference bridge in front of it, with its faults) until Ctrl-C, SIGTERM
or ``--duration``; point the proxy's upstream at the printed URL and send the curl line.

Exit codes: 0 stopped normally; 2 unknown cassette, unusable port or fault (one line).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from conformance.cassette import Cassette, CassetteError, load_cassette, load_cassettes
from conformance.commands import wait_until_stopped
from conformance.upstream import FakeUpstream

__all__ = ["register", "serve"]


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace, Console], int]]:
    p = sub.add_parser(
        "replay",
        help="serve one cassette's recorded upstream on 127.0.0.1 again (for a problem's curl repro)",
        description=(
            "Bring the fake upstream back for one cassette: point the proxy's OpenAI base URL at the "
            "printed URL and send the repro's curl line to the proxy. Stops on Ctrl-C."
        ),
    )
    p.add_argument("cassette", metavar="CASSETTE", help="a cassette id (of --cassettes, default: the shipped set) or a cassette file")
    p.add_argument("--cassettes", action="append", metavar="DIR", help="where to look the id up (repeatable)")
    p.add_argument("--port", type=int, default=0, metavar="PORT", help="port on 127.0.0.1 (default: any free port)")
    p.add_argument("--replay-timing", action="store_true", help="replay chunks with their recorded timing")
    p.add_argument("--reference", action="store_true", help="also start the reference bridge in front of the fake upstream")
    p.add_argument("--reference-fault", action="append", default=[], metavar="NAME", help="with --reference: a named fault (repeatable)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds (default: until interrupted)")
    return {"replay": _replay}


def find_cassette(name: str, dirs: list[str] | None) -> Cassette:
    """The cassette with id ``name`` (or the file ``name``); :class:`CassetteError` naming what exists."""
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return load_cassette(path)
    cassettes, _ = load_cassettes(dirs or None)
    for c in cassettes:
        if c.id == name:
            return c
    import difflib

    close = difflib.get_close_matches(name, [c.id for c in cassettes], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise CassetteError(f"no cassette with id {name!r} in {', '.join(dirs) if dirs else 'the shipped set'}{hint}")


def serve(cassette: Cassette, *, port: int = 0, replay_timing: bool = False) -> FakeUpstream:
    """A started fake upstream serving ``cassette`` only."""
    return FakeUpstream([cassette], port=port, replay_timing=replay_timing).start()


def _replay(args: argparse.Namespace, console: Console) -> int:
    def say(message: str) -> None:
        console.print(message, highlight=False, soft_wrap=True, markup=False)

    if args.reference_fault and not args.reference:
        say("error: --reference-fault needs --reference")
        return 2
    try:
        cassette = find_cassette(args.cassette, args.cassettes)
    except CassetteError as exc:
        say(f"error: {exc}")
        return 2
    stoppers: list[Callable[[], None]] = []
    try:
        upstream = serve(cassette, port=args.port, replay_timing=args.replay_timing)
    except OSError as exc:
        say(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}")
        return 2
    stoppers.append(upstream.stop)
    say(f"fake upstream for cassette {cassette.id!r} ({len(cassette.turns)} turns): {upstream.url}")
    if args.reference:
        from conformance.reference import FAULTS, ReferenceBridge

        unknown = [f for f in args.reference_fault if f not in FAULTS]
        if unknown:
            upstream.stop()
            say(f"error: unknown fault {', '.join(unknown)} (see `responses-conformance faults`)")
            return 2
        bridge = ReferenceBridge(upstream.url, faults=args.reference_fault)
        bridge.start()
        stoppers.append(bridge.stop)
        say(f"reference bridge: {bridge.url} (send the repro's curl here: {bridge.url.rstrip('/')}/responses)")
    else:
        say("point the proxy's OpenAI base URL at it, then send the repro's curl line to the proxy")
    say("stop with Ctrl-C")
    console.file.flush()
    try:
        wait_until_stopped(args.duration)
    finally:
        for s in reversed(stoppers):
            s()
    return 0
