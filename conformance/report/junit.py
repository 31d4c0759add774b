"""The JUnit XML sink (``--report-junit PATH``), and what goes into a test's JUnit properties.

One ``<testsuite>`` for the run, one ``<testcase>`` per cassette × check (``classname`` the
cassette id, ``name`` the check id): a ``<failure>`` for a new failure (its message the first
failing finding, its text every finding), a ``<skipped>`` for a skipped check and for a known
failure (``known failure: <reason>``), an ``<error>`` for a harness bug. Each testcase carries the
same ``<properties>`` the pytest items put in ``user_properties`` (so pytest's own ``--junitxml``
has them too): :func:`testcase_properties` is the one place that decides them. The suite's
``<properties>`` say the target, profile, tool version, problem count and verdict.

Every text goes through the same safety as the other report files: secrets redacted, characters
XML 1.0 cannot hold written as ``\\xNN`` escapes, the file written atomically.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from conformance._crash import HARNESS_ERROR
from conformance._safety import atomic_write, clip, terminal_text
from conformance._secrets import redact_text
from conformance.exchange import Finding, Outcome, Severity
from conformance.expectations import Verdict
from conformance.problems import problem_id_of
from conformance.report.sink import Output
from conformance.report.terminal import format_finding
from conformance.run_report import RunReport

__all__ = ["PROPERTY", "render_junit", "testcase_properties", "write", "write_junit"]

PROPERTY = "conformance"
"""The property holding a test's verdict as JSON; the pytest plugin's controller reads it back."""

_LEVELS = ("note", "warning", "error")
_MESSAGE_CHARS = 300
# Characters XML 1.0 cannot hold (terminal_text has already escaped the C0/C1 controls).
_NOT_XML = re.compile("[\ufffe\uffff]")


def testcase_properties(
    cassette_id: str,
    check_id: str,
    outcome: Outcome,
    verdict: Verdict,
    *,
    classes: Sequence[str],
    severity: Severity | None,
    fail_on: Severity,
) -> list[tuple[str, str]]:
    """The JUnit properties of one cassette × check, in order: the verdict as JSON (``conformance``),
    ``check``, ``cassette``, ``classes``, ``severity``, ``outcome``, and where there are findings
    ``problem`` (their problem ids) and ``impact`` (the worst client impact of its findings).

    The pytest items (``user_properties``) and the JUnit sink both take them from here.
    """
    failing = any(f.severity.rank >= fail_on.rank for f in outcome.findings)
    data = {
        "cassette": cassette_id,
        "check": check_id,
        "skipped": outcome.skipped,
        "failing": failing,
        "verdict": verdict.value,
        "findings": len(outcome.findings),
    }
    props = [
        (PROPERTY, json.dumps(data)),
        ("check", check_id),
        ("cassette", cassette_id),
        ("classes", " ".join(classes)),
        ("severity", severity.value if severity else "n/a"),
        ("outcome", verdict.value),
    ]
    if outcome.findings:  # issue 10: the problem ids, so CI can tie a test to a problem
        ids = dict.fromkeys(i for i in map(problem_id_of, outcome.findings) if i)
        props.append(("problem", " ".join(ids)))
    impacts = [f.impact for f in outcome.findings if f.impact is not None]
    if impacts:  # clients: the worst impact of this check's findings
        worst = max(impacts, key=lambda i: _LEVELS.index(i.level) if i.level in _LEVELS else 0)
        how = "measured" if worst.source == "live" else "lab table"
        props.append(("impact", f"{worst.level} ({how}): {worst.summary}"))
    return props


def _xml(text: object) -> str:
    """Report text as XML may hold it: secrets hidden, controls shown as ``\\xNN``."""
    out = terminal_text(redact_text(str(text)))
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", out)


def _properties(parent: ET.Element, pairs: Sequence[tuple[str, object]]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in pairs:
        ET.SubElement(props, "property", name=_xml(name), value=_xml(value))


def _first(findings: Sequence[Finding]) -> str:
    f = findings[0]
    return clip(f"[{f.severity.value}] {f.message}", _MESSAGE_CHARS)


def render_junit(report: RunReport) -> str:
    """The JUnit XML document of ``report`` as text."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    cases: list[ET.Element] = []
    for result in report.results:
        for check_id in sorted(result.outcomes):
            outcome = result.outcomes[check_id]
            verdict = report.verdict(result.cassette_id, check_id, outcome)
            info = report.catalog.get(check_id)
            case = ET.Element("testcase", classname=_xml(result.cassette_id), name=_xml(check_id), time="0")
            props = testcase_properties(
                result.cassette_id,
                check_id,
                outcome,
                verdict,
                classes=info.classes if info else (),
                severity=info.severity if info else None,
                fail_on=report.fail_on,
            )
            _properties(case, props)
            failing = [f for f in outcome.findings if f.severity.rank >= report.fail_on.rank]
            text = "\n\n".join(format_finding(f) for f in outcome.findings)
            counts["tests"] += 1
            if check_id == HARNESS_ERROR and outcome.findings:
                counts["errors"] += 1
                el = ET.SubElement(case, "error", message=_xml(_first(outcome.findings)), type="harness.error")
                el.text = _xml(text)
            elif verdict is Verdict.FAIL:
                counts["failures"] += 1
                found = failing or outcome.findings
                message = _first(found) if found else "failed"
                severity = found[0].severity.value if found else "error"
                el = ET.SubElement(case, "failure", message=_xml(message), type=_xml(severity))
                el.text = _xml(text)
            elif verdict is Verdict.XFAIL:
                counts["skipped"] += 1
                reason = report.reasons.get((result.cassette_id, check_id)) or "its problems are listed under known_problems"
                el = ET.SubElement(case, "skipped", type="xfail", message=_xml(f"known failure: {reason}"))
                el.text = _xml(text)
            elif verdict is Verdict.FIXED and report.judgement is not None and report.judgement.strict:
                counts["failures"] += 1
                message = "fixed: listed as a known failure but passed; remove the entry (or run with --update-expectations)"
                ET.SubElement(case, "failure", message=message, type="fixed")
            elif verdict is Verdict.SKIP:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=_xml(outcome.skipped or "skipped"))
            cases.append(case)
    for error in report.load_errors:  # a cassette that did not load: the run fails on it
        counts["tests"] += 1
        counts["errors"] += 1
        case = ET.Element("testcase", classname="cassettes", name="load", time="0")
        ET.SubElement(case, "error", message=_xml(clip(error, _MESSAGE_CHARS)), type="cassette").text = _xml(error)
        cases.append(case)

    name = f"responses-conformance: {report.target.name}"
    attrs = {k: str(v) for k, v in counts.items()}
    root = ET.Element("testsuites", {"name": "responses-conformance", **attrs})
    stamp = _xml(report.started_at or report.generated_at)
    suite = ET.SubElement(root, "testsuite", {"name": _xml(name), "timestamp": stamp, **attrs})
    summary = report.summary()
    _properties(
        suite,
        [
            ("target", report.target.name),
            *([("target_url", report.target.url)] if report.target.url else []),
            *([("target_command", report.target.command)] if report.target.command else []),
            ("profile", report.profile),
            ("fail_on", report.fail_on.value),
            ("runner", report.runner),
            ("version", report.versions.get("harness") or ""),
            ("problems", len(report.problems) if report.problems is not None else "not grouped"),
            ("verdict", "passed" if summary["ok"] else "failed"),
            ("cassettes", summary["cassettes"]),
        ],
    )
    suite.extend(cases)
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str | Path, report: RunReport) -> Path:
    """Write the JUnit XML of ``report`` to ``path`` atomically (every text already redacted)."""
    return atomic_write(path, render_junit(report))


def write(report: RunReport, out: Output) -> list[Path]:
    """Sink: the JUnit XML file to ``--report-junit``, when given."""
    path = out.options.report_junit
    return [write_junit(path, report)] if path else []
