"""responses-conformance: replay recorded Chat Completions traffic through a Responses API proxy
and check its ``/v1/responses`` stream.

The public API is :data:`__all__`; every type it returns is exported too. Names load on first
use, so ``import conformance`` (and the pytest plugin) stays cheap.

Errors a caller can meet are :class:`UserError` subclasses (one line, exit 2); the hierarchy is
drawn in :mod:`conformance.exceptions`. Everything the proxy does wrong is not an exception but a
:class:`Finding`.

Layers, lowest first. A module imports only from its own layer or below, never from a private
module (``_name``) or a private name of another package, and no two modules import each other
(``tests/unit/test_architecture.py`` enforces all three; a package name covers its modules):

1. exceptions, resources, slugs, http_server, schema_cache, _safety, _secrets, _listen, bug_classes
2. exchange, expectations, impact, _bounds, _crash, _report_safety, _rundir
3. sse, cassette, schema, run_report
4. stream, expected
5. final_response
6. checks
7. problems
8. driver, upstream, reference, clients
9. capture, recorder
10. options
11. harness
12. report, snapshots, fuzz
13. pipeline, setup_check
14. _pytest_items, commands, fixtures, asgi
15. cli, plugin

The fake upstream (8) knows cassettes and what the upstream said (:mod:`conformance.expected`),
not the checks; the reference bridge imports nothing of the package outside itself but the HTTP
server base all harness servers share (:mod:`conformance.http_server`, which imports nothing of
the package).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from conformance.run_report import VERSION

if TYPE_CHECKING:
    from conformance.cassette import Cassette, Interaction, Turn, load_cassette, load_cassettes
    from conformance.checks import PROFILES, REGISTRY, CheckSpec, Context, Issue, run_checks
    from conformance.driver import Limits, drive
    from conformance.exceptions import (
        CaptureError,
        CassetteError,
        ConformanceError,
        ExpectationsError,
        HarnessError,
        OptionError,
        ReportError,
        SecretError,
        UserError,
    )
    from conformance.exchange import (
        Chunk,
        Exchange,
        Finding,
        FindingImpact,
        Outcome,
        Severity,
        TransportError,
    )
    from conformance.expectations import Expectations, Judgement, Verdict
    from conformance.harness import Harness
    from conformance.options import OutputSettings, Settings
    from conformance.pipeline import Pipeline
    from conformance.report import SINKS, Output, format_finding, render_report
    from conformance.run_report import CassetteResult, CheckInfo, RunReport, Target
    from conformance.sse import FramingIssue, SSEEvent, SSEParser, parse_sse
    from conformance.stream import Analysis, Anomaly, Event, Item, Part, analyze
    from conformance.upstream import FakeUpstream, UpstreamLogEntry

__version__ = VERSION

_EXPORTS: dict[str, str] = {
    # data: what was sent, what came back, what the checks found, the whole run
    "Chunk": "conformance.exchange",
    "Exchange": "conformance.exchange",
    "Finding": "conformance.exchange",
    "FindingImpact": "conformance.exchange",
    "Outcome": "conformance.exchange",
    "Severity": "conformance.exchange",
    "TransportError": "conformance.exchange",
    "CassetteResult": "conformance.run_report",
    "CheckInfo": "conformance.run_report",
    "RunReport": "conformance.run_report",
    "Target": "conformance.run_report",
    # cassettes
    "Cassette": "conformance.cassette",
    "Interaction": "conformance.cassette",
    "Turn": "conformance.cassette",
    "load_cassette": "conformance.cassette",
    "load_cassettes": "conformance.cassette",
    # checks
    "PROFILES": "conformance.checks",
    "REGISTRY": "conformance.checks",
    "CheckSpec": "conformance.checks",
    "Context": "conformance.checks",
    "Issue": "conformance.checks",
    "run_checks": "conformance.checks",
    "Analysis": "conformance.stream",
    "Anomaly": "conformance.stream",
    "Event": "conformance.stream",
    "Item": "conformance.stream",
    "Part": "conformance.stream",
    "analyze": "conformance.stream",
    "FramingIssue": "conformance.sse",
    "SSEEvent": "conformance.sse",
    "SSEParser": "conformance.sse",
    "parse_sse": "conformance.sse",
    # expectation files
    "Expectations": "conformance.expectations",
    "Judgement": "conformance.expectations",
    "Verdict": "conformance.expectations",
    # running
    "Settings": "conformance.options",
    "OutputSettings": "conformance.options",
    "Pipeline": "conformance.pipeline",
    "Harness": "conformance.harness",
    "FakeUpstream": "conformance.upstream",
    "UpstreamLogEntry": "conformance.upstream",
    "Limits": "conformance.driver",
    "drive": "conformance.driver",
    # reporting
    "SINKS": "conformance.report",
    "Output": "conformance.report",
    "format_finding": "conformance.report",
    "render_report": "conformance.report",
    # errors
    "ConformanceError": "conformance.exceptions",
    "UserError": "conformance.exceptions",
    "OptionError": "conformance.exceptions",
    "CassetteError": "conformance.exceptions",
    "CaptureError": "conformance.exceptions",
    "ExpectationsError": "conformance.exceptions",
    "ReportError": "conformance.exceptions",
    "SecretError": "conformance.exceptions",
    "HarnessError": "conformance.exceptions",
}

__all__ = [
    "PROFILES",
    "REGISTRY",
    "SINKS",
    "Analysis",
    "Anomaly",
    "CaptureError",
    "Cassette",
    "CassetteError",
    "CassetteResult",
    "CheckInfo",
    "CheckSpec",
    "Chunk",
    "ConformanceError",
    "Context",
    "Event",
    "Exchange",
    "Expectations",
    "ExpectationsError",
    "FakeUpstream",
    "Finding",
    "FindingImpact",
    "FramingIssue",
    "Harness",
    "HarnessError",
    "Interaction",
    "Issue",
    "Item",
    "Judgement",
    "Limits",
    "OptionError",
    "Outcome",
    "Output",
    "OutputSettings",
    "Part",
    "Pipeline",
    "ReportError",
    "RunReport",
    "SSEEvent",
    "SSEParser",
    "SecretError",
    "Settings",
    "Severity",
    "Target",
    "TransportError",
    "Turn",
    "UpstreamLogEntry",
    "UserError",
    "Verdict",
    "analyze",
    "drive",
    "format_finding",
    "load_cassette",
    "load_cassettes",
    "parse_sse",
    "render_report",
    "run_checks",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conformance' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
