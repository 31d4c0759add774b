"""Every exception the package raises on purpose, in one place.

::

    ConformanceError                  anything raised on purpose by this package
    ├── UserError                     the user can fix it: one line, exit 2 (CLI), usage error (pytest)
    │   ├── OptionError               a bad option or ini value, or options that do not go together
    │   ├── CassetteError             a cassette file cannot be used (names file and JSON path)
    │   ├── CaptureError              a file is not a capture, saved exchange or SSE stream
    │   ├── ExpectationsError         an expectation file cannot be used
    │   ├── ReportError               a file is not a report this version reads
    │   ├── SecretError               a recording still holds a key-shaped value; nothing written
    │   └── HarnessError              the run cannot happen (proxy unreachable, proxy command died,
    │       │                         or a harness server thread raised: a harness bug, exit 2)
    │       └── SetupError            the proxy never called the fake upstream (wrong base URL)
    └── PlaceholderError              a later turn refers to a value an earlier answer lacks
                                      (caught by the harness: the cassette's error, not a crash)

What a proxy does wrong is never an exception: it is a :class:`~conformance.exchange.Finding`.
The user errors keep their old builtin bases (``ValueError``, ``RuntimeError``) so ``except``
clauses written against those still work.
"""

from __future__ import annotations

__all__ = [
    "CaptureError",
    "CassetteError",
    "ConformanceError",
    "ExpectationsError",
    "HarnessError",
    "OptionError",
    "PlaceholderError",
    "ReportError",
    "SecretError",
    "SetupError",
    "UserError",
]


class ConformanceError(Exception):
    """Base of every exception this package raises on purpose."""


class UserError(ConformanceError):
    """Something the user can fix; its message is the one line shown (exit 2 / pytest usage error)."""


class OptionError(UserError, ValueError):
    """A bad option or ini value, or two options that do not go together."""


class CassetteError(UserError, ValueError):
    """A cassette file that cannot be used; the message says which file and where."""


class CaptureError(UserError, ValueError):
    """A file that is not a capture, an exchange or an SSE stream; the message says why."""


class ExpectationsError(UserError, ValueError):
    """An expectation file that cannot be used; the message names the file and the problem."""


class ReportError(UserError, ValueError):
    """A file that is not a report this version can read; the message names the file."""


class SecretError(UserError, ValueError):
    """A document still holds a key-shaped value after redaction; nothing was written."""


class HarnessError(UserError, RuntimeError):
    """The harness cannot run at all (target unreachable, proxy command died); one clear line."""


class SetupError(HarnessError):
    """The proxy is not wired to the fake upstream (it never called it): one line, exit 2."""


class PlaceholderError(ConformanceError, ValueError):
    """A later turn refers to a value an earlier turn's answer does not have."""
