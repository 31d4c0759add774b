"""When the harness itself fails: a log file with the traceback, one line for the user, exit 3.

Exit codes tell apart who is broken: 0 clean, 1 findings (the proxy), 2 usage or setup (the
user's command), 3 the harness (a bug here). A bug met while checking one exchange does not end
the run: it becomes a ``harness.error`` finding on that exchange (:func:`harness_error_outcome`),
the other exchanges are still checked, and the run exits 3 at the end.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from conformance._safety import atomic_write, clip
from conformance._secrets import redact_text
from conformance.exchange import Finding, Severity
from conformance.http_server import plain_traceback

__all__ = [
    "EXIT_CLEAN",
    "EXIT_FINDINGS",
    "EXIT_HARNESS",
    "EXIT_USAGE",
    "HARNESS_ERROR",
    "crash_line",
    "harness_error_finding",
    "has_harness_error",
    "write_crash_log",
]

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_HARNESS = 0, 1, 2, 3
HARNESS_ERROR = "harness.error"


def write_crash_log(exc: BaseException, context: str = "") -> Path | None:
    """Write ``exc``'s traceback (secrets redacted) to a new file under the temp directory."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = Path(tempfile.gettempdir()) / f"responses-conformance-crash-{stamp}-{os.getpid()}-{id(exc) % 10000}.log"
    text = plain_traceback(exc)  # no ast.parse: this runs in cassette threads too
    try:
        atomic_write(path, redact_text(f"{context}\n{text}" if context else text))
    except OSError:
        return None
    return path


def _reason(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ").strip()
    return clip(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, 300)


def crash_line(exc: BaseException, context: str = "") -> str:
    """The one line printed when the harness fails; the log file holds the traceback."""
    path = write_crash_log(exc, context)
    where = f"; details in {path}" if path else ""
    return f"internal error (a bug in responses-conformance, exit 3): {_reason(exc)}{where}"


def harness_error_finding(exc: BaseException, cassette_id: str, turn: int) -> Finding:
    """The finding that stands for a harness bug met on one exchange."""
    path = write_crash_log(exc, f"cassette {cassette_id} turn {turn}")
    where = f"; details in {path}" if path else ""
    return Finding(
        HARNESS_ERROR,
        Severity.ERROR,
        f"the harness failed while checking this exchange (a bug in responses-conformance, not a "
        f"verdict on the proxy): {_reason(exc)}{where}",
        cassette_id=cassette_id,
        turn=turn,
    )


def has_harness_error(results: Iterable[Any]) -> bool:
    """Whether any result (``CassetteResult``-like, with ``outcomes``) holds a harness error."""
    for r in results:
        outcomes: Mapping[str, Any] = getattr(r, "outcomes", {}) or {}
        outcome = outcomes.get(HARNESS_ERROR)
        if outcome is not None and outcome.findings:
            return True
    return False
