"""Subcommands of ``responses-conformance`` beyond ``run``, one module each.

Each module has ``register(subparsers) -> {command name: handler(args, console) -> exit code}``,
appended to ``_EXTRA_COMMANDS`` in :mod:`conformance.cli`.
"""


def wait_until_stopped(duration: float | None) -> None:
    """Block until Ctrl-C, SIGTERM or ``duration`` seconds (None: no limit), for the commands
    that serve until the user stops them; the previous SIGTERM handler comes back."""
    import signal
    import threading
    from types import FrameType

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        stop.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
