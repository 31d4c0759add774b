"""Report sinks. Every sink formats findings with :func:`format_finding`."""

from __future__ import annotations

from conformance.report.terminal import format_finding, render_report

__all__ = ["format_finding", "render_report"]
