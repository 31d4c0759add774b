"""Where the shipped data lives: ``schemas/`` and ``cassettes/``.

A wheel carries them under ``conformance/_data/`` (see
``[tool.hatch.build.targets.wheel.force-include]`` in ``pyproject.toml``); in a checkout (or an
editable install) they sit at the repository root, next to the ``conformance`` package, so edits
take effect without reinstalling. ``_data`` is checked first so that an unrelated top-level
``schemas`` directory in site-packages can never be mistaken for ours.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["cassettes_dir", "package_root", "schemas_dir"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def package_root() -> Path:
    """The directory holding ``schemas/`` and ``cassettes/``: the checkout root or ``_data``."""
    data = _PACKAGE_DIR / "_data"
    if data.is_dir():
        return data
    return _PACKAGE_DIR.parent


def schemas_dir() -> Path:
    """The JSON Schemas of the stream, the Response object, items, parts and cassettes."""
    return package_root() / "schemas"


def cassettes_dir() -> Path:
    """The shipped cassettes."""
    return package_root() / "cassettes"
