"""Codex CLI: placeholder until its runner lands (see _codex_run)."""

from __future__ import annotations

from conformance.clients._spec import ClientSpec

__all__ = ["CODEX_CLIENTS"]

CODEX_CLIENTS: tuple[ClientSpec, ...] = ()
