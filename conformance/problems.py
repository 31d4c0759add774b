"""Problems, not findings: group a run's findings into the proxy's defects, most harmful first.

A *finding* is one rule broken at one place; a *problem* is one defect of the proxy, which
usually shows up as many findings (the same missing field on every event of every cassette).
Findings are grouped by check id and a *normalised reason*: the message with ids, numbers,
quoted values and long texts abstracted, so "item 'msg_1a…' was never closed" on sixty cassettes
is one problem. Its id is a hash of the check id and that reason, so it is stable from one run to
the next and CI can diff two runs (or name it in an expectation file).

One root cause fans out (no terminal event fails every check of the terminal output; a proxy that
empties the user's message gets an upstream mismatch and an error status). :data:`MOOTS` (each check
declares it in the registry: ``@check(..., moots=...)``) says which checks a failing check makes
moot *on the same exchange*; their findings are folded under
the cause as consequences instead of being problems of their own.

Problems are ranked by harm (:class:`Harm`): breaks a client (ERR before LOSS, from a measured
client-impact lookup when one is given), loses or changes what the upstream said (``oracle``),
sends the upstream what the client did not ask for (``translation``), contradicts itself
(``integrity``, stream vs ``stream: false``), breaks the protocol, then shape-only. Nothing here prints; :mod:`conformance.report.verdict` renders it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.checks import LENIENT, REGISTRY
from conformance.exchange import Finding, Severity
from conformance.expectations import Judgement, Verdict
from conformance.run_report import RunReport, impact_by_check

__all__ = [
    "MOOTS",
    "Harm",
    "Impact",
    "Problem",
    "forgive_known_problems",
    "group_findings",
    "harm_of",
    "known_pairs",
    "known_problem_ids",
    "known_problem_pairs",
    "moot_closure",
    "normalise",
    "problem_id",
    "problem_id_of",
    "problems_from_report",
    "problems_json",
    "problems_of_run",
]

NONSTREAM = "[non-stream] "
_MORE = re.compile(r"^… and \d+ more like the above$")

# check id -> checks (ids, or prefixes ending in ``*``) whose findings on the same exchange are
# consequences of it: declared with each check (``@check(..., moots=...)``), read from the registry.
MOOTS: dict[str, tuple[str, ...]] = {spec.id: spec.moots for spec in REGISTRY.values() if spec.moots}


class Harm(enum.IntEnum):
    """How much a problem hurts, most harmful first (the sort order of the report)."""

    CLIENT_ERR = 0  # a measured client raises or returns an error
    CLIENT_LOSS = 1  # a measured client finishes but loses or misreports data
    UPSTREAM_CHANGED = 2  # the answer differs from what the upstream said
    REQUEST_CHANGED = 3  # the upstream got something the client did not ask for (or nothing)
    INCONSISTENT = 4  # the answer contradicts itself (deltas vs done, stream vs stream: false)
    PROTOCOL = 5  # the HTTP/stream protocol is broken (status, terminal event, transport)
    SHAPE = 6  # the data is intact; a field or event is missing or malformed

    @property
    def label(self) -> str:
        return _HARM_LABEL[self]


_HARM_LABEL = {
    Harm.CLIENT_ERR: "breaks a client (error)",
    Harm.CLIENT_LOSS: "breaks a client (data loss)",
    Harm.UPSTREAM_CHANGED: "loses or changes what the upstream said",
    Harm.REQUEST_CHANGED: "sends the upstream what the client did not ask for",
    Harm.INCONSISTENT: "its answer contradicts itself: clients reading different parts see different data",
    Harm.PROTOCOL: "breaks the HTTP or stream protocol",
    Harm.SHAPE: "shape only: the data is intact",
}

_UPSTREAM_CHANGED = ("oracle.",)
_INCONSISTENT = ("integrity.", "nonstream.matches_stream", "nonstream.output_text")
_REQUEST_CHANGED = ("translation.", "upstream.", "request.")
_PROTOCOL = (
    "transport.", "http.", "errors.", "lifecycle.terminal_present", "lifecycle.single_terminal_last",
    "sse.data_json", "sse.done_after_terminal",
)
# Shape checks: every quoted value is abstracted (which field, which event varies; the defect not).
_SHAPE_GROUPS = ("schema.", "seq.", "sse.", "items.", "indices.", "ids.", "dialect.", "lifecycle.", "nonstream.body_is_response")

# Within a harm tier: what the upstream said before derived views of it (terminal output, the
# stream: false body), transport and terminal events before status codes and error envelopes.
_GROUP_ORDER = [
    "oracle", "integrity", "nonstream", "translation", "upstream", "request",
    "transport", "lifecycle", "sse", "http", "errors",
]

# Impact lookup: check id -> {client name: "ERR" | "LOSS" | "ok"} (the client-impact work).
Impact = Mapping[str, Mapping[str, str]]


def _matches(check_id: str, pattern: str) -> bool:
    return pattern == "*" or check_id == pattern or (pattern.endswith("*") and check_id.startswith(pattern[:-1]))


def moot_closure(cause: str, moots: Mapping[str, Sequence[str]] = MOOTS) -> tuple[str, ...]:
    """Every pattern ``cause`` makes moot, directly or through a check it makes moot."""
    seen: list[str] = []
    todo = list(moots.get(cause, ()))
    while todo:
        pattern = todo.pop(0)
        if pattern in seen:
            continue
        seen.append(pattern)
        for other, more in moots.items():
            if other != cause and _matches(other, pattern):
                todo.extend(m for m in more if m not in seen)
    return tuple(seen)


# -- normalisation ---------------------------------------------------------------------------
_ID = re.compile(
    r"(?<![\w-])(?:(?:resp|msg|fc|rs|item|call|ctc|ws|fs|ci|mcp|lc|cu|toolu|chatcmpl)[_-][A-Za-z0-9_-]{6,}"
    r"|chatcmpl-tool-[0-9a-f]{8,}|[0-9a-f]{16,})(?![\w-])"
)
_QUOTED = re.compile(r"(?<![\w])('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")(?![\w])")
_BACKTICK = re.compile(r"`[^`]*`")
_LITERAL = re.compile(r"\{[^{}]*\}|\[[^\[\]]*['\"][^\[\]]*\]")
_NUMBER = re.compile(r"(?<![\w<])-?\d+(?:\.\d+)?(?![\w>])")
_STATUS = re.compile(r"(?:HTTP |where )([1-5]\d\d)\b|\b([1-5]\d\d)(?= is right)")
_CUT = ("; body:", "; closest:", " closest:", " (and ")  # " (and N more like it)": the fold count
_TOKEN = re.compile(r"^[A-Za-z_][\w.\-/]{0,31}$")


# Per-check rewrites applied first, where one defect has many spellings: a missing status is one
# problem whatever the upstream's finish_reason was.
_REWRITES: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "oracle.status": [(re.compile(r"(says None);.*"), r"\1 (no status at all)")],
}


def _shape(check_id: str) -> bool:
    return check_id.startswith(_SHAPE_GROUPS)


def normalise(check_id: str, message: str) -> tuple[str, list[str]]:
    """The reason of a finding with its varying parts abstracted, and the abstracted values.

    Ids become ``<id>``, numbers ``<n>`` (HTTP status codes stay), dict/list literals ``<value>``,
    long or free texts ``<text>``. In shape checks every quoted or back-ticked value becomes
    ``<v>`` (which field or event is missing varies, the defect does not); in behavioural checks
    short enumerated values (``'completed'``, ``'length'``) stay, because they are the defect.
    """
    text = message.removeprefix(NONSTREAM).split("\n", 1)[0].strip()
    for marker in _CUT:
        head, sep, _ = text.partition(marker)
        if sep:
            text = head
    for pattern, replacement in _REWRITES.get(check_id, []):
        text = pattern.sub(replacement, text)
    values: list[str] = []
    text = _ID.sub("<id>", text)
    for _ in range(3):
        text = _LITERAL.sub("<value>", text)
    shape = _shape(check_id)

    def quoted(m: re.Match[str]) -> str:
        inner = m.group(0)[1:-1]
        if inner in ("<id>", "<value>"):
            return m.group(0)
        if shape:
            values.append(inner)
            return "<v>"
        if _TOKEN.match(inner) or inner == "":
            return m.group(0)
        values.append(inner)
        return "<text>"

    text = _QUOTED.sub(quoted, text)
    if shape:

        def tick(m: re.Match[str]) -> str:
            values.append(m.group(0)[1:-1])
            return "<v>"

        text = _BACKTICK.sub(tick, text)
    kept: dict[str, str] = {}

    def keep(m: re.Match[str]) -> str:
        key = f"\x00{chr(65 + len(kept))}\x00"
        kept[key] = m.group(0)
        return key

    text = _STATUS.sub(keep, text)
    text = _NUMBER.sub("<n>", text)
    for key, original in kept.items():
        text = text.replace(key, original)
    return re.sub(r"\s+", " ", text).strip(), values


def problem_id(check_id: str, reason: str) -> str:
    """Stable across runs: a hash of the check id and the normalised reason."""
    return "p-" + hashlib.sha256(f"{check_id}\n{reason}".encode("utf-8", "surrogatepass")).hexdigest()[:8]


def problem_id_of(f: Finding) -> str | None:
    """The problem id of one finding on its own (no folding); None for a "… and N more" marker."""
    if _MORE.match(f.message.removeprefix(NONSTREAM)):
        return None
    return problem_id(f.check_id, normalise(f.check_id, f.message)[0])


# -- problems --------------------------------------------------------------------------------
@dataclass
class Consequence:
    """Findings of a mooted check folded under a problem (per check and normalised reason)."""

    check_id: str
    reason: str
    count: int = 0


@dataclass
class Problem:
    """One defect of the proxy: every finding it explains, and what it breaks."""

    id: str
    check_id: str
    reason: str
    severity: Severity
    harm: Harm
    impact: dict[str, str]  # client -> ERR | LOSS
    occurrences: list[Finding] = field(default_factory=list)
    exchanges: set[tuple[str, int, str]] = field(default_factory=set)
    values: list[str] = field(default_factory=list)
    consequences: dict[tuple[str, str], Consequence] = field(default_factory=dict)
    folded_findings: list[Finding] = field(default_factory=list)
    known: bool = False  # every failing occurrence is a known failure (or the id is listed)
    known_reason: str | None = None
    new_in: list[str] = field(default_factory=list)  # cassettes where a failing occurrence is not known

    @property
    def example(self) -> Finding:
        return self.occurrences[0]

    @property
    def cassettes(self) -> list[str]:
        return list(dict.fromkeys(f.cassette_id for f in self.occurrences))

    @property
    def folded(self) -> int:
        return sum(c.count for c in self.consequences.values())

    @property
    def breaks(self) -> str:
        """One line: what it breaks and for whom."""
        if self.impact:
            bad = [f"{client} ({verdict})" for client, verdict in sorted(self.impact.items(), key=lambda kv: (kv[1], kv[0]))]
            return "breaks " + ", ".join(bad)
        hint = LENIENT.get(self.check_id, (None, ""))[1]
        return self.harm.label + (f"; clients.md (not measured): {hint}" if hint else "")

    def sort_key(self) -> tuple[Any, ...]:
        group = self.check_id.split(".", 1)[0]
        return (
            self.severity is Severity.INFO,
            int(self.harm),
            -self.severity.rank,
            _GROUP_ORDER.index(group) if group in _GROUP_ORDER else len(_GROUP_ORDER),
            -len(self.cassettes),
            -len(self.exchanges),
            self.check_id,
            self.id,
        )

    def to_json(self) -> dict[str, Any]:
        ex = self.example
        return {
            "id": self.id,
            "check": self.check_id,
            "severity": self.severity.value,
            "harm": self.harm.name.lower(),
            "impact": dict(sorted(self.impact.items())),
            "breaks": self.breaks,
            "reason": self.reason,
            "values": self.values[:20],
            "occurrences": {
                "findings": len(self.occurrences),
                "exchanges": len(self.exchanges),
                "cassettes": self.cassettes,
            },
            "example": {
                "cassette": ex.cassette_id,
                "turn": ex.turn,
                "message": ex.message,
                "event_index": ex.event_index,
                "raw": ex.raw,
                "pointer": ex.pointer,
                "expected": ex.expected,
                "actual": ex.actual,
            },
            "consequences": [
                {"check": c.check_id, "reason": c.reason, "count": c.count}
                for c in sorted(self.consequences.values(), key=lambda c: (-c.count, c.check_id, c.reason))
            ],
            "known": self.known,
        }


def harm_of(check_id: str, impact: Mapping[str, str] | None = None) -> Harm:
    verdicts = {v.upper() for v in (impact or {}).values()}
    if "ERR" in verdicts:
        return Harm.CLIENT_ERR
    if "LOSS" in verdicts:
        return Harm.CLIENT_LOSS
    if check_id.startswith(_UPSTREAM_CHANGED):
        return Harm.UPSTREAM_CHANGED
    if check_id.startswith(_REQUEST_CHANGED):
        return Harm.REQUEST_CHANGED
    if check_id.startswith(_INCONSISTENT):
        return Harm.INCONSISTENT
    if check_id.startswith(_PROTOCOL):
        return Harm.PROTOCOL
    return Harm.SHAPE


def _roots(fired: Sequence[str], moots: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """check -> the fired checks it is a consequence of, at the root of the chain.

    A check is moot when a fired check makes it moot directly, or through a chain of checks that
    all fired on this exchange (so "the conversation changed" folds "no upstream match" and what
    that broke, but not the stream's own shape when the upstream did match).
    """
    direct = {k: {c for c in fired if c != k and any(_matches(c, p) for p in moots.get(k, ()))} for k in fired}
    ancestors: dict[str, set[str]] = {c: set() for c in fired}
    for k in fired:
        todo, seen = list(direct[k]), set()
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            ancestors[c].add(k)
            todo.extend(direct[c])
    out: dict[str, list[str]] = {}
    for c, anc in ancestors.items():
        anc.discard(c)
        roots = sorted(a for a in anc if not (ancestors[a] - {a, c}))
        if anc:
            out[c] = roots or sorted(anc)
    return out


def _exchange_key(f: Finding) -> tuple[str, int, str]:
    return (f.cassette_id, f.turn, "nonstream" if f.message.startswith(NONSTREAM) else "stream")


def group_findings(
    findings: Iterable[Finding],
    *,
    impact: Impact | None = None,
    moots: Mapping[str, Sequence[str]] = MOOTS,
    known_ids: Mapping[str, str] | None = None,
) -> list[Problem]:
    """The problems behind ``findings``, most harmful first.

    ``impact``: check id -> {client: "ERR" | "LOSS" | "ok"}, from the client-impact work when it
    ran; clients marked ok are ignored. ``known_ids``: problem ids an expectation file lists.
    """
    items = [f for f in findings if not _MORE.match(f.message.removeprefix(NONSTREAM))]
    fired: dict[tuple[str, int, str], dict[str, Finding]] = {}
    for f in items:
        fired.setdefault(_exchange_key(f), {}).setdefault(f.check_id, f)
    problems: dict[str, Problem] = {}

    def problem_for(f: Finding) -> Problem:
        reason, values = normalise(f.check_id, f.message)
        pid = problem_id(f.check_id, reason)
        p = problems.get(pid)
        if p is None:
            hits = {c: v for c, v in ((impact or {}).get(f.check_id) or {}).items() if v.upper() in ("ERR", "LOSS")}
            p = problems[pid] = Problem(pid, f.check_id, reason, f.severity, harm_of(f.check_id, hits), hits)
        for v in values:
            if v not in p.values:
                p.values.append(v)
        return p

    folded: list[tuple[Finding, Finding]] = []
    roots_of: dict[tuple[str, int, str], dict[str, list[str]]] = {}
    for f in items:
        key = _exchange_key(f)
        if key not in roots_of:
            roots_of[key] = _roots(list(fired[key]), moots)
        here = fired[key]
        roots = roots_of[key].get(f.check_id, [])
        if roots:
            folded.append((f, here[roots[0]]))
            continue
        p = problem_for(f)
        p.occurrences.append(f)
        p.exchanges.add(_exchange_key(f))
        if f.severity.rank > p.severity.rank:
            p.severity = f.severity
    for f, cause in folded:
        p = problem_for(cause)
        reason, _ = normalise(f.check_id, f.message)
        c = p.consequences.setdefault((f.check_id, reason), Consequence(f.check_id, reason))
        c.count += 1
        p.folded_findings.append(f)
    out = [p for p in problems.values() if p.occurrences]
    for p in out:
        if known_ids and p.id in known_ids:
            p.known, p.known_reason = True, known_ids[p.id] or None
    return sorted(out, key=Problem.sort_key)


# -- from a run report or its JSON document (terminal, HTML report, matrix) ----------------------
def _known(
    findings: list[Finding],
    outcome: Mapping[tuple[str, str], str],
    fail_on: Severity,
    impact: Impact | None,
    known_ids: Mapping[str, str] | None,
) -> list[Problem]:
    """Group ``findings``; a problem whose failing occurrences are all known failures (``xfail``)
    of the expectation file is marked known."""
    problems = group_findings(findings, impact=impact, known_ids=known_ids)
    for p in problems:
        failing = [f for f in p.occurrences if f.severity.rank >= fail_on.rank]
        states = {outcome.get((f.cassette_id, f.check_id)) for f in failing}
        if failing and states <= {"xfail"}:
            p.known = True
        p.new_in = list(dict.fromkeys(f.cassette_id for f in failing if outcome.get((f.cassette_id, f.check_id)) == "fail"))
    return problems


def problems_from_report(
    report: Mapping[str, Any], *, impact: Impact | None = None, known_ids: Mapping[str, str] | None = None
) -> list[Problem]:
    """The problems of a report document (``RunReport.to_json()``, or a report read back)."""
    findings: list[Finding] = []
    outcome: dict[tuple[str, str], str] = {}
    for cassette in report.get("cassettes", []):
        for chk in cassette.get("checks", []):
            outcome[(cassette["id"], chk["id"])] = chk.get("outcome", "")
            findings += [Finding.from_json(f) for f in chk.get("findings", [])]
    return _known(findings, outcome, Severity(report.get("fail_on", "error")), impact, known_ids)


def problems_of_run(report: RunReport, *, impact: Impact | None = None) -> list[Problem]:
    """The problems of a :class:`RunReport` (no JSON round trip), known ids from its expectation file."""
    findings: list[Finding] = []
    outcome: dict[tuple[str, str], str] = {}
    for r in report.results:
        for check_id, o in r.outcomes.items():
            outcome[(r.cassette_id, check_id)] = report.verdict(r.cassette_id, check_id, o).value
            findings += o.findings
    path = report.judgement.path if report.judgement is not None else None
    if impact is None:  # the clients each check breaks: measured (--clients) or the lab's table
        impact = impact_by_check(report)
    return _known(findings, outcome, report.fail_on, impact, known_problem_ids(path))


def problems_json(report: Mapping[str, Any] | RunReport, *, impact: Impact | None = None) -> list[dict[str, Any]]:
    """The ``problems`` array of the report document (``schemas/report.schema.json``)."""
    if isinstance(report, RunReport):
        return [p.to_json() for p in problems_of_run(report, impact=impact)]
    exp = report.get("expectations") or {}
    known = known_problem_ids(exp.get("file")) if exp else {}
    return [p.to_json() for p in problems_from_report(report, impact=impact, known_ids=known)]


def known_problem_ids(path: str | Path | None) -> dict[str, str]:
    """``known_problems`` of an expectation file: ``[{"id": "p-…", "reason": "…"}]`` -> {id: reason}.

    The same file as the ``(cassette, check)`` known failures; a gate then says "new problem: …"
    once rather than once per cassette. A missing or unreadable file gives {} (the expectation
    loader reports it).
    """
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    entries = data.get("known_problems") if isinstance(data, dict) else None
    out: dict[str, str] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            out[entry["id"]] = str(entry.get("reason") or "")
        elif isinstance(entry, str):
            out[entry] = ""
    return out


def known_pairs(
    problems: Iterable[Problem], pairs: Iterable[tuple[str, str]], fail_on: Severity = Severity.ERROR
) -> set[tuple[str, str]]:
    """Of the failing ``(cassette, check)`` pairs, those whose every failing finding belongs to a
    known problem (listed by id in the expectation file): the gate treats them as known failures."""
    owner: dict[int, Problem] = {}
    by_pair: dict[tuple[str, str], list[Finding]] = {}
    for p in problems:
        for f in [*p.occurrences, *p.folded_findings]:
            owner[id(f)] = p
            if f.severity.rank >= fail_on.rank:
                by_pair.setdefault((f.cassette_id, f.check_id), []).append(f)
    out = set()
    for pair in pairs:
        failing = by_pair.get(pair, [])
        if failing and all(owner[id(f)].known for f in failing):
            out.add(pair)
    return out


def known_problem_pairs(
    findings: Iterable[Finding],
    pairs: Iterable[tuple[str, str]],
    known_ids: Mapping[str, str],
    fail_on: Severity = Severity.ERROR,
) -> set[tuple[str, str]]:
    """Of ``pairs``, those whose failing findings all belong to problems in ``known_ids``
    (the same rule for the gate and for a pytest item)."""
    if not known_ids:
        return set()
    return known_pairs(group_findings(findings, known_ids=known_ids), pairs, fail_on)


def forgive_known_problems(
    judgement: Judgement, results: Iterable[Any], path: str | Path | None, fail_on: Severity = Severity.ERROR
) -> Judgement:
    """The judgement with new failures that belong to problems the file lists by id made known.

    ``results``: objects with ``findings()`` (the harness's cassette results).
    """
    known_ids = known_problem_ids(path)
    new = judgement.new
    if not known_ids or not new:
        return judgement
    forgiven = known_problem_pairs([f for r in results for f in r.findings()], new, known_ids, fail_on)
    verdicts = {p: (Verdict.XFAIL if p in forgiven else v) for p, v in judgement.verdicts.items()}
    return Judgement(verdicts, judgement.stale, judgement.strict, judgement.path)
