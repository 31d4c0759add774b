"""``serve-upstream [CASSETTE …]``: the fake upstream alone, to debug a proxy by hand.

It serves the recorded upstream answers of the chosen cassettes (default: every cassette of
``--cassettes``, or the shipped set) on 127.0.0.1 and prints its URL; point the proxy's OpenAI
base URL there and send the cassettes' requests to the proxy with any client. Each request is
logged on one line. Ctrl-C or SIGTERM stops it cleanly (exit 0).

Exit codes: 0 stopped normally; 2 unknown cassette, no cassette, unusable port (one line).
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from rich.console import Console

from conformance.cassette import Cassette, CassetteError, load_cassettes
from conformance.commands.replay import find_cassette
from conformance.upstream import FakeUpstream

__all__ = ["register", "select_cassettes"]


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace, Console], int]]:
    p = sub.add_parser(
        "serve-upstream",
        help="serve the fake upstream alone on 127.0.0.1 (all or chosen cassettes) to debug a proxy by hand",
        description=(
            "Start the fake upstream with the chosen cassettes (default: all of --cassettes, or the shipped "
            "set), print its URL and wait. Point the proxy's OpenAI base URL at it and send the cassettes' "
            "requests to the proxy. Stops on Ctrl-C or SIGTERM."
        ),
    )
    p.add_argument("cassette", nargs="*", metavar="CASSETTE", help="cassette ids (of --cassettes) or cassette files")
    p.add_argument("--cassettes", action="append", metavar="DIR", help="where the cassettes live (repeatable; default: the shipped set)")
    p.add_argument("--port", type=int, default=0, metavar="PORT", help="port on 127.0.0.1 (default: any free port)")
    p.add_argument("--replay-timing", action="store_true", help="replay chunks with their recorded timing")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds (default: until stopped)")
    return {"serve-upstream": _serve}


def select_cassettes(names: list[str], dirs: list[str] | None) -> list[Cassette]:
    """The cassettes named (ids or files), or every cassette of ``dirs``; CassetteError if none."""
    if names:
        return [find_cassette(n, dirs) for n in names]
    cassettes, broken = load_cassettes(dirs or None)
    if not cassettes:
        where = ", ".join(dirs) if dirs else "the shipped set"
        why = f": {broken[0]}" if broken else ""
        raise CassetteError(f"no cassette in {where}{why}")
    return list(cassettes)


def _serve(args: argparse.Namespace, console: Console) -> int:
    def say(message: str) -> None:
        console.print(message, highlight=False, soft_wrap=True, markup=False)
        console.file.flush()

    if not 0 <= args.port <= 65535:
        say(f"error: --port {args.port} is not a port number (0-65535)")
        return 2
    try:
        cassettes = select_cassettes(list(args.cassette), args.cassettes)
    except CassetteError as exc:
        say(f"error: {exc}")
        return 2
    try:
        upstream = FakeUpstream(cassettes, port=args.port, replay_timing=args.replay_timing).start()
    except OSError as exc:
        say(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}")
        return 2
    turns = sum(len(c.turns) for c in cassettes)
    say(f"fake upstream: {upstream.url} ({len(cassettes)} cassettes, {turns} turns)")
    say("point the proxy's OpenAI base URL at it; stop with Ctrl-C")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    seen = 0
    try:
        while not stop.wait(0.2):
            log = upstream.log()
            for entry in log[seen:]:
                where = f"{entry.cassette_id} turn {entry.turn}" if entry.cassette_id else "no match"
                say(f"{entry.method} {entry.path} -> {where}")
            seen = len(log)
            if args.duration is not None and args.duration <= 0:
                break
            if args.duration is not None:
                args.duration -= 0.2
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        upstream.stop()
    say("fake upstream stopped")
    return 0
