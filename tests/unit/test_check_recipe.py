"""Adding a check is one place, and this test says what a new check still lacks and where to add it.

A check is its function with ``@check(...)`` in ``conformance/checks/<group>.py``. Beside it, it
needs: a doc (the docstring), bug classes, a proof that it can fire (a named fault of the
reference bridge, or a crafted stream), and a deliberate severity under ``lenient`` (one line in
``LENIENT`` naming the client that breaks). See CONTRIBUTING.md, "Adding a check".
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from conformance.checks import REGISTRY, check
from conformance.checks._profiles import LENIENT
from conformance.exchange import PROFILES
from conformance.reference import FAULTS

# Proven by a crafted stream where no fault of the bridge can produce it (a bridge that never
# answers cannot be a running bridge; an endless stream is cut by the harness's cap).
PROVEN_BY_CRAFTED = frozenset({"transport.connect"})
KNOWN_CLASSLESS = frozenset({"transport.connect", "transport.cap"})  # harness limits, not proxy bugs


def lacking(check_id: str) -> list[str]:
    """What ``check_id`` still lacks, each with where to add it (empty: complete)."""
    spec = REGISTRY[check_id]
    where = inspect.getsourcefile(spec.func) or "conformance/checks/"
    if "conformance/checks/" in where:
        where = where[where.index("conformance/checks/") :]
    out = []
    if spec.doc == check_id or len(spec.summary) < 20:
        out.append(f"doc: a docstring on {spec.func.__name__} in {where} (first paragraph: what it guards and why)")
    if not spec.classes and check_id not in KNOWN_CLASSLESS:
        out.append(f"classes: classes=(...) in its @check in {where} (bug classes of shared/catalog/bug-classes.md)")
    proven = set().union(*(f.expected_checks for f in FAULTS.values())) | PROVEN_BY_CRAFTED
    if check_id not in proven:
        out.append(
            "proof: a named fault in conformance/reference/_faults.py whose expected_checks include it "
            "(tests/integration/test_fault_zoo.py then proves it fires exactly), or, if no bridge fault "
            "can produce it, a crafted stream in tests/unit/test_checks.py (CASES) and its id in PROVEN_BY_CRAFTED here"
        )
    if check_id not in LENIENT:
        out.append(
            f'lenient severity: a line "{check_id}": (severity or None, which client breaks and how) in '
            "LENIENT, conformance/checks/_profiles.py"
        )
    missing = [p for p in PROFILES if p not in spec.severities]
    if missing:
        out.append(f"severity for profile(s) {', '.join(missing)}: profiles= in its @check in {where}")
    return out


def test_every_check_is_complete() -> None:
    report = {cid: lacking(cid) for cid in sorted(REGISTRY)}
    problems = {cid: items for cid, items in report.items() if items}
    assert not problems, "\n".join(f"{cid} lacks:\n  - " + "\n  - ".join(items) for cid, items in problems.items())


@pytest.fixture
def new_check() -> Iterator[str]:
    """A check registered the way a contributor starts: decorator and function, nothing else."""

    @check("lifecycle.zz_new_rule")
    def zz_new_rule(ctx: object) -> Iterator[object]:
        yield from ()

    try:
        yield "lifecycle.zz_new_rule"
    finally:
        del REGISTRY["lifecycle.zz_new_rule"]


def test_a_new_check_is_told_everything_it_lacks_and_where(new_check: str) -> None:
    items = lacking(new_check)
    assert [i.split(":", 1)[0] for i in items] == ["doc", "classes", "proof", "lenient severity"]
    text = "\n".join(items)
    assert "on zz_new_rule in " in items[0] and "test_check_recipe.py" in items[0]  # where the function is
    assert "conformance/reference/_faults.py" in text and "expected_checks" in text
    assert "tests/unit/test_checks.py (CASES)" in text
    assert f'"{new_check}": (severity or None' in text and "conformance/checks/_profiles.py" in text
