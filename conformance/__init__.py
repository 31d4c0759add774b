"""responses-conformance: replay recorded Chat Completions traffic through a Responses API proxy
and check its ``/v1/responses`` stream.

Errors a caller can meet, from the outside in:

- :class:`HarnessError`: the run cannot happen (proxy unreachable, proxy command died).
- :class:`CassetteError`: a cassette file is malformed (the message names file and JSON path).

Everything the proxy does wrong is not an exception but a :class:`Finding`.
"""

from __future__ import annotations

from conformance.cassette import Cassette, CassetteError, load_cassette, load_cassettes
from conformance.checks import PROFILES, REGISTRY, CheckSpec, run_checks
from conformance.driver import Limits, drive
from conformance.exchange import Chunk, Exchange, Finding, Severity, TransportError
from conformance.harness import CassetteResult, Harness, HarnessError, Settings
from conformance.report import format_finding, render_report
from conformance.sse import SSEParser, parse_sse
from conformance.stream import analyze
from conformance.upstream import FakeUpstream

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "REGISTRY",
    "Cassette",
    "CassetteError",
    "CassetteResult",
    "CheckSpec",
    "Chunk",
    "Exchange",
    "FakeUpstream",
    "Finding",
    "Harness",
    "HarnessError",
    "Limits",
    "SSEParser",
    "Settings",
    "Severity",
    "TransportError",
    "analyze",
    "drive",
    "format_finding",
    "load_cassette",
    "load_cassettes",
    "parse_sse",
    "render_report",
    "run_checks",
]
