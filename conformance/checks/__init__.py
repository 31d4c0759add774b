"""Every check the harness runs. Importing this package registers them all in ``REGISTRY``."""

from __future__ import annotations

from conformance.checks import (
    dialect,
    errors,
    framing,
    integrity,
    items,
    lifecycle,
    nonstream,
    oracle,
    schema,
    translation,
    transport,
)
from conformance.checks._registry import (
    PROFILES,
    REGISTRY,
    CheckSpec,
    Context,
    Issue,
    Outcome,
    Skip,
    check,
    curl_command,
    run_checks,
    selected_checks,
    status_matches,
)

__all__ = [
    "PROFILES",
    "REGISTRY",
    "CheckSpec",
    "Context",
    "Issue",
    "Outcome",
    "Skip",
    "check",
    "curl_command",
    "dialect",
    "errors",
    "framing",
    "integrity",
    "items",
    "lifecycle",
    "nonstream",
    "oracle",
    "run_checks",
    "schema",
    "selected_checks",
    "status_matches",
    "translation",
    "transport",
]
