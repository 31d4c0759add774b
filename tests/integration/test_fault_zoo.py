"""Every check is proven: the reference bridge passes it on every cassette, and a named fault of
the same bridge, on a real HTTP stream, makes exactly the expected checks fire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.cassette import Cassette, load_cassettes
from conformance.checks import PROFILES, REGISTRY
from conformance.driver import Limits
from conformance.harness import CassetteResult, Harness, Settings
from conformance.reference import FAULTS
from conformance.report import format_finding
from conformance.upstream import FakeUpstream

CASSETTES, _ = load_cassettes()
BY_ID = {c.id: c for c in CASSETTES}
DEFAULT_CASSETTE = "groq-kimi-text-then-tools"
FAULT_CASSETTE = {"T4-cumulative-arguments": "openai-tool-call"}
LIMITS = Limits(connect_timeout=2, first_byte_timeout=3, idle_timeout=1.0, total_timeout=6, max_bytes=2_000_000, max_events=500)
# Checks whose proof is a crafted stream or condition rather than a bridge fault (tests/unit/test_checks.py).
PROVEN_BY_CRAFTED = {"transport.connect"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(CASSETTES) as server:
        yield server


def run(upstream: FakeUpstream, cassette: Cassette, faults: tuple[str, ...] = (), profile: str = "strict") -> CassetteResult:
    harness = Harness(Settings(upstream_url=upstream.url, reference_faults=faults, profile=profile, limits=LIMITS))
    harness.start()
    try:
        return harness.run(cassette)
    finally:
        harness.stop()


def fired(result: CassetteResult) -> set[str]:
    return {cid for cid, outcome in result.outcomes.items() if outcome.findings}


def explain(result: CassetteResult) -> str:
    return "\n".join(format_finding(f, repro=False) for f in result.findings())


@pytest.mark.parametrize("cassette_id", sorted(BY_ID))
def test_reference_bridge_is_clean(upstream: FakeUpstream, cassette_id: str) -> None:
    result = run(upstream, BY_ID[cassette_id])
    assert fired(result) == set(), explain(result)
    assert all(not o.skipped for o in result.outcomes.values())


@pytest.mark.parametrize("profile", PROFILES)
def test_reference_bridge_is_clean_under_every_profile(upstream: FakeUpstream, profile: str) -> None:
    result = run(upstream, BY_ID["llamacpp-b7010-reasoning-tool"], profile=profile)
    assert result.findings() == [], explain(result)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_fires_exactly_its_checks(upstream: FakeUpstream, fault: str) -> None:
    cassette = BY_ID[FAULT_CASSETTE.get(fault, DEFAULT_CASSETTE)]
    result = run(upstream, cassette, (fault,))
    assert fired(result) == set(FAULTS[fault].expected_checks), explain(result)


def test_every_check_is_proven_by_a_fault_or_a_crafted_stream() -> None:
    proven = set().union(*(f.expected_checks for f in FAULTS.values())) | PROVEN_BY_CRAFTED
    assert set(REGISTRY) - proven == set()
    assert proven - set(REGISTRY) == set(), "a fault names a check that does not exist"
