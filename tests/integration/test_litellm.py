"""The committed LiteLLM expectation file stays honest without LiteLLM installed.

`nox -s proxy-litellm` is the live gate (it installs LiteLLM); these checks keep the file it
uses readable, canonical, classified by hand and free of entries that no longer mean anything.
"""

from __future__ import annotations

import re
from pathlib import Path

from conformance.cassette import load_cassettes
from conformance.checks import REGISTRY
from conformance.expectations import Expectations

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "reports" / "expectations" / "litellm.json"
# A reason starts with the catalog class(es) of a real deviation ("I1: …", "S2/R3: …") or says it
# is a false alarm of the harness, with the evidence, until the check is fixed.
REASON = re.compile(r"^(FALSE ALARM: .{20,}|[A-Z][A-Z0-9]{0,3}(/[A-Z][A-Z0-9]{0,3})*: .{20,})")


def test_file_is_valid_and_canonical() -> None:
    exp = Expectations.load(FILE)
    assert exp.known, "the gate expects LiteLLM's known failures"
    assert FILE.read_text("utf-8") == exp.dumps(), "write it with --update-expectations (sorted, one entry per line)"


def test_every_entry_is_classified_by_hand() -> None:
    exp = Expectations.load(FILE)
    bad = {pair: reason for pair, reason in exp.known.items() if not REASON.match(reason)}
    assert not bad, bad


def test_no_stale_entries() -> None:
    exp = Expectations.load(FILE)
    cassettes, errors = load_cassettes()
    assert not errors
    ids = {c.id for c in cassettes}
    stale = sorted(p for p in exp.known if p[0] not in ids or p[1] not in REGISTRY)
    assert not stale, f"entries for cassettes or checks that no longer exist: {stale}"


def test_target_names_the_pinned_version() -> None:
    pinned = re.search(r'LITELLM = "litellm\[proxy\]==([^"]+)"', (ROOT / "noxfile.py").read_text("utf-8"))
    assert pinned is not None
    assert Expectations.load(FILE).target == f"litellm {pinned.group(1)}"
