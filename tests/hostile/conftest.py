"""The hostile tests read what the harness prints: a wide console keeps each line whole."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
