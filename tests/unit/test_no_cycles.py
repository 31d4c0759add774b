"""Checking an exchange leaves no reference cycle behind.

A cycle through the check context keeps the whole stream analysis (one dict per event) alive
until the cyclic GC scans it; without cycles it is freed the moment ``run_checks`` returns.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from test_checks import CASES, clean_events, encode, exchange

from conformance.cassette import load_cassettes
from conformance.checks import Context, run_checks


@pytest.fixture
def gc_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _garbage_after(run: object) -> int:
    del run
    return gc.collect()


@pytest.fixture(autouse=True, scope="module")
def _warm() -> None:
    """Compile the schema validators and import every lazy module first (that garbage is not ours)."""
    run_checks(exchange(encode(clean_events())), profile="strict")
    for make, _ in CASES.values():
        run_checks(make(), profile="strict")


@pytest.mark.usefixtures("gc_off")
@pytest.mark.parametrize("case", ["clean", *sorted(CASES)[:12]])
def test_run_checks_leaves_no_cycle(case: str) -> None:
    ex = exchange(encode(clean_events())) if case == "clean" else CASES[case][0]()
    gc.collect()
    assert _garbage_after(run_checks(ex, profile="strict")) == 0


@pytest.mark.usefixtures("gc_off")
def test_a_cassette_context_leaves_no_cycle() -> None:
    cassettes, _ = load_cassettes()
    cassette = next(c for c in cassettes if c.turns and c.turns[0].upstream)
    turn = cassette.turns[0]
    ex = exchange(encode(clean_events()))
    ctx = Context(ex, cassette=cassette, turn=turn, interaction=turn.upstream[0])
    run_checks(ex, profile="strict", context=Context(ex, cassette=cassette, turn=turn, interaction=turn.upstream[0]))
    gc.collect()
    results = run_checks(ex, profile="strict", context=ctx)
    assert results
    del ctx
    assert _garbage_after(results) == 0
