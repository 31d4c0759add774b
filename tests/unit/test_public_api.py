"""The curated public API: ``__all__`` names what the package offers, and every type it returns."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
import typing
from typing import Any

import pytest

import conformance


def test_all_is_exactly_the_exported_names_and_each_resolves() -> None:
    assert sorted(conformance.__all__) == sorted(conformance._EXPORTS)
    assert len(set(conformance.__all__)) == len(conformance.__all__)
    for name in conformance.__all__:
        value = getattr(conformance, name)
        assert value is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        conformance.nosuch  # noqa: B018


def _package_types(annotation: Any) -> set[type]:
    """Every class of this package named in an annotation (through unions, generics, etc.)."""
    found: set[type] = set()
    if isinstance(annotation, type) and annotation.__module__.startswith("conformance"):
        found.add(annotation)
    for arg in typing.get_args(annotation):
        found |= _package_types(arg)
    return found


def _hints(obj: Any) -> dict[str, Any]:
    # Names imported for type checking only (``Limits`` in options) resolve through the API itself.
    from rich.console import Console

    api = {n: getattr(conformance, n) for n in conformance.__all__} | {"Console": Console}
    return typing.get_type_hints(obj, localns=api)


def _returned_types() -> dict[type, str]:
    """Classes reachable from the public API: return types, dataclass fields, properties."""
    seen: dict[type, str] = {}
    todo: list[tuple[Any, str]] = [(getattr(conformance, n), n) for n in conformance.__all__]
    while todo:
        obj, where = todo.pop()
        hints: dict[str, Any] = {}
        if inspect.isclass(obj):
            if obj in seen or not obj.__module__.startswith("conformance"):
                continue
            seen[obj] = where
            if dataclasses.is_dataclass(obj):
                hints.update(_hints(obj))
            for name, member in vars(obj).items():
                if name.startswith("_") and name != "__init__":
                    continue
                func = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                if inspect.isfunction(func):
                    ret = _hints(func).get("return")
                    if ret is not None:
                        hints[f"{name}()"] = ret
        elif inspect.isfunction(obj):
            ret = _hints(obj).get("return")
            if ret is not None:
                hints["return"] = ret
        for key, annotation in hints.items():
            todo += [(t, f"{where}.{key}") for t in _package_types(annotation)]
    return seen


def test_every_type_the_api_returns_is_exported() -> None:
    missing = {cls.__qualname__: where for cls, where in _returned_types().items() if cls.__name__ not in conformance.__all__}
    assert not missing, f"returned but not exported (add to conformance._EXPORTS): {missing}"


def test_importing_the_package_loads_almost_nothing() -> None:
    code = "import sys, conformance; print(sorted(m for m in sys.modules if m.startswith('conformance')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "conformance.checks" not in out and "conformance.harness" not in out, out
