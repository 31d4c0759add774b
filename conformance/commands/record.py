"""``responses-conformance record``: run the recording reverse proxy until interrupted.

Exit codes: 0 every recording was written; 1 some write was refused (a secret remained) or
failed; 2 the recorder could not start (bad option, port in use).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.console import Console

from conformance._listen import listen_problem
from conformance._secrets import remember_url
from conformance.cassette import Cassette, load_cassettes
from conformance.commands import wait_until_stopped
from conformance.recorder import RECORD_MODES, Recorder, Redactor

__all__ = ["register"]


def _address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT") from None
    if not 0 <= number < 65536:
        raise argparse.ArgumentTypeError(f"port {number} is out of range")
    return host.strip("[]") or "127.0.0.1", number


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace, Console], int]]:
    p = sub.add_parser(
        "record",
        help="record real traffic: the proxy's upstream leg as cassettes, or (--responses) the client leg as captures",
        description=(
            "A transparent recording reverse proxy. Upstream leg: point the proxy's OpenAI base URL at the "
            "printed URL; each chat request is forwarded to --upstream, streamed back chunk by chunk as it "
            "arrives, and written to --out as a cassette. Client leg (--responses): point the client at the "
            "printed URL; each Responses request is forwarded to --upstream (the proxy) and written as a "
            "capture; add --chat-upstream to record the proxy's upstream in the same capture. Credential "
            "headers are replaced before writing, and a write that would still hold a key-shaped value is "
            "refused. Stops on Ctrl-C or SIGTERM."
        ),
    )
    p.add_argument("--upstream", required=True, metavar="URL", help="where to forward: the real chat upstream, or with --responses the proxy under test (base URL, e.g. http://127.0.0.1:8080/v1)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the cassettes (or captures)")
    p.add_argument("--listen", type=_address, default=("127.0.0.1", 0), metavar="HOST:PORT", help="address to listen on (default 127.0.0.1, any free port)")
    p.add_argument("--mode", choices=RECORD_MODES, default="all", help="pytest-recording modes: all (default) records everything; once/new_episodes replay what --out already holds; rewrite starts each cassette afresh; none only replays")
    p.add_argument("--responses", action="store_true", help="record the client leg (Responses requests and streams) as captures")
    p.add_argument("--chat-upstream", metavar="URL", help="with --responses: also record the proxy's upstream leg, forwarding to this real chat upstream")
    p.add_argument("--chat-listen", type=_address, default=("127.0.0.1", 0), metavar="HOST:PORT", help="with --chat-upstream: where the proxy's upstream leg is received")
    p.add_argument("--cassettes", action="append", metavar="DIR", help="cassettes whose turns this session records (their ids and Responses requests are kept)")
    p.add_argument("--backend", metavar="NAME", help="provenance backend of the recordings (default: guessed from the answers)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="bug-class tag for new cassettes (repeatable)")
    p.add_argument("--redact-header", action="append", default=[], metavar="NAME", help="also replace this header's value (repeatable)")
    p.add_argument("--redact-query", action="append", default=[], metavar="NAME", help="also replace this query parameter's value (repeatable)")
    p.add_argument("--redact-pattern", action="append", default=[], metavar="REGEX", help="also refuse to write values matching this regular expression (repeatable)")
    p.add_argument("--allow-remote", action="store_true", help="allow --listen/--chat-listen on a non-loopback address (the recorder then forwards anyone's requests with your upstream's answers)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds (default: run until interrupted)")
    return {"record": _record}


def _record(args: argparse.Namespace, console: Console) -> int:
    def say(message: str) -> None:
        console.print(message, highlight=False, soft_wrap=True)

    if args.chat_upstream and not args.responses:
        say("error: --chat-upstream records the upstream leg next to a client leg; use it with --responses")
        return 2
    problem = listen_problem([args.listen[0], args.chat_listen[0]], args.allow_remote, say)  # hook (issue 13)
    if problem:
        say(f"error: {problem}")
        return 2
    for url in (args.upstream, args.chat_upstream):
        remember_url(url)  # hook (issue 13): a key in the upstream URL is redacted by value
    try:
        redactor = Redactor.with_extra(args.redact_header, args.redact_query, args.redact_pattern)
    except ValueError as exc:
        say(f"error: {exc}")
        return 2
    cassettes: list[Cassette] = []
    if args.cassettes:
        cassettes, load_errors = load_cassettes(args.cassettes)
        for err in load_errors:
            say(f"warning: {err}")
    recorders: list[Recorder] = []
    try:
        chat: Recorder | None = None
        if args.chat_upstream:
            chat = Recorder(
                args.chat_upstream, args.out, "all", redact=redactor, host=args.chat_listen[0], port=args.chat_listen[1],
                backend=args.backend, tags=args.tag, write=False, on_event=say,
            )
            recorders.append(chat.start())
        main = Recorder(
            args.upstream, args.out, args.mode, redact=redactor, cassettes=cassettes,
            leg="responses" if args.responses else "chat", pair=chat, host=args.listen[0], port=args.listen[1],
            backend=args.backend, tags=args.tag, on_event=say,
        )
        recorders.append(main.start())
    except (ValueError, OSError) as exc:
        for r in recorders:
            r.stop()
        say(f"error: cannot start the recorder: {exc}")
        return 2
    if args.responses:
        say(f"recording the client leg: point the client at {main.url} (forwarding to {args.upstream}); captures go to {args.out}")
        if chat is not None:
            say(f"recording the upstream leg: point the proxy's OpenAI base URL at {chat.url} (forwarding to {args.chat_upstream})")
    else:
        say(f"recording the upstream leg: point the proxy's OpenAI base URL at {main.url} (forwarding to {args.upstream}, mode {args.mode}); cassettes go to {args.out}")
    say("stop with Ctrl-C")
    console.file.flush()
    try:
        wait_until_stopped(args.duration)
    finally:
        for r in reversed(recorders):
            r.stop()
    written = [p for r in recorders for p in r.written]
    errors = [e for r in recorders for e in r.errors]
    say(f"stopped: {len(written)} files written, {len(errors)} problems")
    return 1 if errors else 0
