"""The curated public API: ``__all__`` lists exactly the public names of the package."""

from __future__ import annotations

import inspect

import conformance


def test_all_is_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(conformance).items()
        if not name.startswith("_") and name != "annotations" and not inspect.ismodule(value)
    }
    assert public == set(conformance.__all__)
