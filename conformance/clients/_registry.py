"""All client runners by name, and ``--clients SET`` selection (all, python, node, codex, names)."""

from __future__ import annotations

from conformance.clients._node import NODE_CLIENTS
from conformance.clients._python import PYTHON_CLIENTS
from conformance.clients._spec import ClientSpec
from conformance.exceptions import OptionError

__all__ = ["CLIENTS", "ClientSelectionError", "select_clients"]


def _all() -> dict[str, ClientSpec]:
    from conformance.clients._codex import CODEX_CLIENTS

    return {c.name: c for c in (*PYTHON_CLIENTS, *NODE_CLIENTS, *CODEX_CLIENTS)}


CLIENTS: dict[str, ClientSpec] = _all()


class ClientSelectionError(OptionError):
    """An unknown name in a client set (a user error: one line, a usage exit); lists the valid ones."""


def select_clients(spec: str | list[str] | None) -> list[ClientSpec]:
    """``all`` | ``python`` | ``node`` | ``codex`` | client names or name prefixes, comma-separated."""
    words = spec if isinstance(spec, list) else (spec or "all").split(",")
    chosen: dict[str, ClientSpec] = {}
    for raw in words:
        word = raw.strip()
        if not word:
            continue
        if word == "all":
            hits = list(CLIENTS.values())
        elif word in ("python", "node", "codex"):
            hits = [c for c in CLIENTS.values() if c.family == word]
        else:
            hits = [c for n, c in CLIENTS.items() if n == word or n.startswith(word + ".")]
        if not hits:
            valid = ", ".join(["all", "python", "node", "codex", *CLIENTS])
            raise ClientSelectionError(f"unknown client {word!r}; choose from: {valid}")
        for c in hits:
            chosen[c.name] = c
    return list(chosen.values())
