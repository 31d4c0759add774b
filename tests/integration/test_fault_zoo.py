"""Every check is proven: the reference bridge passes it on every cassette (every turn, streamed
and ``stream: false``), and a named fault of the same bridge, on a real HTTP exchange, makes
exactly the expected checks fire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.cassette import Cassette, load_cassettes
from conformance.checks import PROFILES, REGISTRY
from conformance.driver import Limits
from conformance.harness import Harness
from conformance.options import Settings
from conformance.reference import FAULTS
from conformance.report import format_finding
from conformance.run_report import CassetteResult
from conformance.upstream import FakeUpstream

CASSETTES, _ = load_cassettes()
BY_ID = {c.id: c for c in CASSETTES}
DEFAULT_CASSETTE = "groq-kimi-text-then-tools"
FAULT_CASSETTE = {
    "T4-cumulative-arguments": "openai-tool-call",
    "X2-upstream-text-lost": "openai-text-include-usage",
    "RS1-reasoning-dropped": "deepseek-reasoner-keepalive",
    "RS1-reasoning-as-text": "deepseek-reasoner-keepalive",
    "RS1-reasoning-text-events": "deepseek-reasoner-keepalive",
    "RS1-reasoning-dot-events": "vllm-reasoning-field",
    "T2-first-name-fragment-only": "mlx-tool-name-split",
    "T4-argument-fragment-lost": "openai-tool-call",
    "I3-call-id-reminted": "openai-parallel-tools",
    "F1-length-as-completed": "openai-length-max-output-tokens",
    "U1-usage-dropped": "openai-text-include-usage",
    "S6-cut-reported-completed": "vllm-connection-cut-mid-stream",
    "S6-upstream-message-lost": "openai-error-mid-stream",
    "S6-error-event-on-healthy-stream": "openai-text-include-usage",
    "S6-flat-error-event": "openrouter-finish-reason-error",
    "S7-detail-error-body": "openai-429-before-stream",
    "S7-500-on-invalid-request": "malformed-input-wrong-type",
    "S7-200-on-upstream-error": "openai-500-before-stream",
    "Q1-developer-role-forwarded": "instructions-developer-system-merge",
    "Q1-instructions-dropped": "instructions-developer-system-merge",
    "Q2-tool-history-split": "openai-parallel-tools-outputs-reordered",
    "Q2-history-dropped": "ide-history-shapes",
    "Q2-tool-result-dropped": "openai-tool-loop-full-history",
    "Q3-400-on-string-input": "input-plain-string",
    "Q4-400-on-metadata": "optional-params-everything",
    "Q4-tool-choice-dropped": "tool-choice-named-no-parallel",
    "Q4-sampling-dropped": "optional-params-everything",
    "Q4-responses-fields-leaked": "optional-params-everything",
    "Q5-response-format-dropped": "text-format-json-schema",
    "Q7-previous-response-id-ignored": "openai-tool-loop-previous-response-id",
    "Q7-refusal-without-param": "openai-tool-loop-previous-response-id",
    "T5-400-on-custom-tool": "codex-gpt55-tool-loop-custom-tools",
    "T5-builtin-tool-forwarded": "codex-exec-tool-loop-vllm",
    "RS2-400-on-null-reasoning-content": "codex-summary-detailed-replay",
    "RS2-reasoning-history-dropped": "deepseek-reasoner-tool-loop-reasoning-replay",
    "U1-no-include-usage": "openai-text-include-usage",
    "R5-nonstream-empty-output": "openai-text-include-usage",
    "R5-nonstream-wrong-output-text": "openai-text-include-usage",
    "R5-nonstream-no-created-at": "openai-text-include-usage",
}
# Faults of a profile-specific rule run under that profile; every other fault under "strict".
FAULT_PROFILE = {
    "RS1-reasoning-text-events": "open-responses",
    "S6-flat-error-event": "open-responses",
    "X-no-done-sentinel": "open-responses",
}
# Why a check may skip on a clean run: it does not apply to this exchange, never a failure to run.
ALLOWED_SKIPS = (
    "not part of the",
    "does not apply to",
    "no stream to check: HTTP",
    "no answer to compare: HTTP",
    "no body to check: HTTP",
    "this turn",
    "the upstream failed before any chunk",
    "there is no streamed exchange",
)
LIMITS = Limits(connect_timeout=2, first_byte_timeout=3, idle_timeout=1.0, total_timeout=6, max_bytes=2_000_000, max_events=500)
# Checks whose proof is a crafted stream or condition rather than a bridge fault (tests/unit/test_checks.py).
PROVEN_BY_CRAFTED = {"transport.connect"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(CASSETTES) as server:
        yield server


def run(upstream: FakeUpstream, cassette: Cassette, faults: tuple[str, ...] = (), profile: str = "strict") -> CassetteResult:
    dirs = [cassette.path] if cassette.path is not None else []  # load just this one: loading all is slow
    harness = Harness(Settings(upstream_url=upstream.url, reference_faults=faults, profile=profile, limits=LIMITS, cassette_dirs=dirs))
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
    """Under ``strict`` every rule of ``openai`` applies (findings do not depend on severity)."""
    cassette = BY_ID[cassette_id]
    result = run(upstream, cassette, profile="strict")
    assert fired(result) == set(), explain(result)
    assert result.error is None
    odd = {cid: o.skipped for cid, o in result.outcomes.items() if o.skipped and not o.skipped.startswith(ALLOWED_SKIPS)}
    assert odd == {}
    single = len(cassette.turns) == 1 and cassette.turns[0].body is None
    assert [e.mode for e in result.exchanges] == (["stream", "nonstream"] if single else ["stream"] * len(cassette.turns))


# The open-responses-only rules ([DONE], nested error events, reasoning event names) on the
# cassettes where they have something to judge.
OPEN_RESPONSES_CASSETTES = (
    "deepseek-reasoner-keepalive",
    "llamacpp-b7010-reasoning-tool",
    "openai-error-mid-stream",
    "openrouter-finish-reason-error",
    "codex-exec-tool-loop-vllm",
    "openai-tool-loop-previous-response-id",
    "openai-429-before-stream",
)


@pytest.mark.parametrize("cassette_id", OPEN_RESPONSES_CASSETTES)
def test_reference_bridge_is_clean_under_open_responses(upstream: FakeUpstream, cassette_id: str) -> None:
    result = run(upstream, BY_ID[cassette_id], profile="open-responses")
    assert fired(result) == set(), explain(result)


@pytest.mark.parametrize("profile", PROFILES)
def test_reference_bridge_is_clean_under_every_profile(upstream: FakeUpstream, profile: str) -> None:
    result = run(upstream, BY_ID["llamacpp-b7010-reasoning-tool"], profile=profile)
    assert result.findings() == [], explain(result)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_fires_exactly_its_checks(upstream: FakeUpstream, fault: str) -> None:
    cassette = BY_ID[FAULT_CASSETTE.get(fault, DEFAULT_CASSETTE)]
    result = run(upstream, cassette, (fault,), profile=FAULT_PROFILE.get(fault, "strict"))
    assert fired(result) == set(FAULTS[fault].expected_checks), explain(result)


def test_fault_cassettes_exist() -> None:
    assert set(FAULT_CASSETTE) <= set(FAULTS)
    assert set(FAULT_CASSETTE.values()) <= set(BY_ID)
    assert set(FAULT_PROFILE) <= set(FAULTS)


def test_every_check_is_proven_by_a_fault_or_a_crafted_stream() -> None:
    proven = set().union(*(f.expected_checks for f in FAULTS.values())) | PROVEN_BY_CRAFTED
    assert set(REGISTRY) - proven == set()
    assert proven - set(REGISTRY) == set(), "a fault names a check that does not exist"
