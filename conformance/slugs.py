"""File-name-safe ids from free text (cassette and capture ids), shared by the recorder and captures."""

from __future__ import annotations

import re

__all__ = ["slug"]


def slug(text: str, limit: int = 40) -> str:
    """Lower-case words joined by ``-``, at most ``limit`` characters; ``empty`` for no words."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "empty"
