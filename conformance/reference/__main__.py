"""``python -m conformance.reference``: run the reference bridge in the foreground."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._faults import FAULTS
from ._server import ReferenceBridge


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="python -m conformance.reference",
        description="A correct Responses -> Chat Completions bridge, with optional named faults.",
    )
    parser.add_argument(
        "--upstream-url", help="Chat Completions base URL, e.g. http://127.0.0.1:9000/v1"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="switch a fault on (repeatable)",
    )
    parser.add_argument(
        "--api-key", help="bearer token for the upstream (default: forward the client's)"
    )
    parser.add_argument("--list-faults", action="store_true", help="list the faults and exit")
    args = parser.parse_args(argv)
    if args.list_faults:
        try:
            for fault in FAULTS.values():
                checks = ",".join(sorted(fault.expected_checks))
                print(f"{fault.name:32} {fault.bug_class:4} {checks:60} {fault.description}", flush=True)
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if not args.upstream_url:
        parser.error("--upstream-url is required")
    try:
        bridge = ReferenceBridge(
            args.upstream_url, faults=args.fault, port=args.port, api_key=args.api_key
        )
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with bridge:
        print(f"listening on {bridge.url}", flush=True)
        while not stop.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
