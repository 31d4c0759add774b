"""Every check the harness runs. Importing this package registers them all in ``REGISTRY``."""

from __future__ import annotations

from conformance.checks import framing, integrity, items, lifecycle, schema, transport
from conformance.checks._registry import (
    PROFILES,
    REGISTRY,
    CheckSpec,
    Context,
    Issue,
    Outcome,
    check,
    curl_command,
    run_checks,
)

__all__ = [
    "PROFILES",
    "REGISTRY",
    "CheckSpec",
    "Context",
    "Issue",
    "Outcome",
    "check",
    "curl_command",
    "framing",
    "integrity",
    "items",
    "lifecycle",
    "run_checks",
    "schema",
    "transport",
]
