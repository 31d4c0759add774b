"""Expectation files: the known failures of one target, so a proxy can gate CI on *new* failures.

Large conformance suites (web-platform-tests, test262) gate this way: the suite is not expected to
pass everywhere, but it must never get worse. A file lists ``(cassette, check)`` pairs with an
optional reason::

    {"version": 1, "target": "litellm 1.106.2",
     "known_failures": [{"cassette": "openai-tool-call", "check": "seq.present", "reason": "…"}]}

Every ``(cassette, check)`` pair that ran gets a :class:`Verdict`: a failure not in the file fails
the run; a listed one is an expected failure (``xfail``); a listed pair that now passes is
``fixed`` (the run fails only with ``strict``). A file may also list problems by id
(``"known_problems": [{"id": "p-1a2b3c4d", "reason": "…"}]``, see :mod:`conformance.problems`):
every failure that belongs to one is known, on whichever cassette it shows up. :func:`updated` rewrites the file from a run,
keeping the reasons a person wrote. Nothing here knows about pytest: the plugin and
``responses-conformance run`` share it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance._safety import JSONFileError, atomic_write, read_json_file
from conformance._secrets import redact_text
from conformance.exceptions import ExpectationsError

__all__ = [
    "FORMAT_VERSION",
    "Expectations",
    "ExpectationsError",
    "Judgement",
    "Verdict",
    "judge",
    "judge_all",
    "updated",
]

FORMAT_VERSION = 1
MAX_EXPECTATIONS_BYTES = 64 * 1024 * 1024  # an expectation file is small; this only stops a runaway one
Pair = tuple[str, str]  # (cassette id, check id)


class Verdict(str, enum.Enum):
    """What one ``(cassette, check)`` pair did, judged against the expectation file."""

    PASS = "pass"
    FAIL = "fail"  # a failure the file does not list: fails the run
    XFAIL = "xfail"  # a failure the file lists: does not fail the run
    FIXED = "fixed"  # the file lists it, but it passed: fails the run only when strict
    SKIP = "skip"  # the check did not apply; the file's entry (if any) is kept


@dataclass
class Expectations:
    """The known failures of one target: ``known[(cassette, check)] = reason``."""

    target: str = ""
    known: dict[Pair, str] = field(default_factory=dict)
    path: Path | None = None
    known_problems: list[Any] = field(default_factory=list)  # issue 10: problem ids, kept as written

    @classmethod
    def load(cls, path: str | Path, *, missing_ok: bool = False) -> Expectations:
        """Read and validate a file; ``missing_ok`` gives an empty set for a file not written yet."""
        p = Path(path)
        if not p.exists() and not p.is_symlink():
            if missing_ok:
                return cls(path=p)
            raise ExpectationsError(f"expectation file {p} does not exist (write it with --update-expectations)")
        try:
            data = read_json_file(p, limit=MAX_EXPECTATIONS_BYTES, what="expectation file")
        except JSONFileError as exc:
            raise ExpectationsError(str(exc)) from None
        return cls.from_json(data, source=str(p), path=p)

    @classmethod
    def from_json(cls, data: Any, *, source: str = "<memory>", path: Path | None = None) -> Expectations:
        if not isinstance(data, dict):
            raise ExpectationsError(f"{source}: expected a JSON object with version, target and known_failures")
        if data.get("version") != FORMAT_VERSION:
            raise ExpectationsError(f"{source}: version must be {FORMAT_VERSION}, got {data.get('version')!r}")
        target = data.get("target", "")
        if not isinstance(target, str):
            raise ExpectationsError(f"{source}: target must be a string")
        entries = data.get("known_failures")
        if not isinstance(entries, list):
            raise ExpectationsError(f"{source}: known_failures must be a list")
        known: dict[Pair, str] = {}
        for i, entry in enumerate(entries):
            where = f"{source}: known_failures[{i}]"
            if not isinstance(entry, dict):
                raise ExpectationsError(f"{where} must be an object with cassette and check")
            cassette, check, reason = entry.get("cassette"), entry.get("check"), entry.get("reason", "")
            if not isinstance(cassette, str) or not cassette or not isinstance(check, str) or not check:
                raise ExpectationsError(f"{where} needs non-empty string fields cassette and check")
            if not isinstance(reason, str):
                raise ExpectationsError(f"{where}: reason must be a string")
            unknown = set(entry) - {"cassette", "check", "reason"}
            if unknown:
                raise ExpectationsError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
            if (cassette, check) in known:
                raise ExpectationsError(f"{where} lists {cassette} {check} a second time")
            known[(cassette, check)] = reason
        problems = data.get("known_problems", [])
        if not isinstance(problems, list):
            raise ExpectationsError(f"{source}: known_problems must be a list of {{\"id\": \"p-…\", \"reason\": …}}")
        return cls(target=target, known=known, path=path, known_problems=problems)

    def to_json(self) -> dict[str, Any]:
        """Sorted by cassette then check, so a rewrite changes only the lines that changed."""
        return {
            "version": FORMAT_VERSION,
            "target": self.target,
            "known_failures": [
                {"cassette": c, "check": k, "reason": self.known[(c, k)]} for c, k in sorted(self.known)
            ],
        }

    def dumps(self) -> str:
        # One entry per line: removing or adding a known failure is a one-line diff.
        doc = self.to_json()
        lines = [json.dumps(e, ensure_ascii=False) for e in doc["known_failures"]]
        body = ",\n    ".join(lines)
        entries = f"[\n    {body}\n  ]" if lines else "[]"
        return (
            "{\n"
            f'  "version": {FORMAT_VERSION},\n'
            f'  "target": {json.dumps(self.target, ensure_ascii=False)},\n'
            f'  "known_failures": {entries}'
            + (f',\n  "known_problems": {json.dumps(self.known_problems, ensure_ascii=False)}' if self.known_problems else "")
            + "\n}\n"
        )

    def save(self, path: str | Path | None = None) -> Path:
        p = Path(path or self.path or "expectations.json")
        # Hook (issue 13): secrets redacted (reasons quote the proxy), atomic, any string survives.
        return atomic_write(p, redact_text(self.dumps()))


def judge(*, known: bool, failing: bool, skipped: bool) -> Verdict:
    """The verdict of one pair. ``failing``: a finding at or above the run's ``--fail-on``."""
    if skipped:
        return Verdict.SKIP
    if failing:
        return Verdict.XFAIL if known else Verdict.FAIL
    return Verdict.FIXED if known else Verdict.PASS


@dataclass
class Judgement:
    """A whole run against one expectation file."""

    verdicts: dict[Pair, Verdict]
    stale: list[Pair]  # listed, but naming a cassette or check this run does not have
    strict: bool = False
    path: str | None = None

    def pairs(self, verdict: Verdict) -> list[Pair]:
        return sorted(p for p, v in self.verdicts.items() if v is verdict)

    @property
    def new(self) -> list[Pair]:
        return self.pairs(Verdict.FAIL)

    @property
    def xfailed(self) -> list[Pair]:
        return self.pairs(Verdict.XFAIL)

    @property
    def fixed(self) -> list[Pair]:
        return self.pairs(Verdict.FIXED)

    @property
    def failed(self) -> bool:
        """True when the run fails: a new failure, or (strict) a fixed or stale entry."""
        return bool(self.new) or (self.strict and bool(self.fixed or self.stale))

    def lines(self) -> list[str]:
        """What a person needs: every new failure and every fixed entry by cassette and check."""
        where = f" in {self.path}" if self.path else ""
        out = [
            f"expectations{where}: {len(self.xfailed)} known failures, {len(self.new)} new failures, "
            f"{len(self.fixed)} fixed, {len(self.stale)} stale entries"
        ]
        for c, k in self.new:
            out.append(f"  new failure (not a known failure{where}): cassette {c}, check {k}")
        fixed_tail = " (fails with --strict-expectations)" if not self.strict else ""
        for c, k in self.fixed:
            out.append(f"  fixed (known failure that now passes; remove it from the file{fixed_tail}): cassette {c}, check {k}")
        for c, k in self.stale:
            out.append(f"  stale entry (no such cassette or check in this run): cassette {c}, check {k}")
        return out

    def to_json(self) -> dict[str, Any]:
        def pairs(ps: Iterable[Pair]) -> list[dict[str, str]]:
            return [{"cassette": c, "check": k} for c, k in ps]

        return {
            "file": self.path,
            "strict": self.strict,
            "xfail": pairs(self.xfailed),
            "new": pairs(self.new),
            "fixed": pairs(self.fixed),
            "stale": pairs(self.stale),
        }


def judge_all(
    expectations: Expectations,
    outcomes: Mapping[Pair, tuple[bool, bool]],
    *,
    cassettes: Iterable[str],
    checks: Iterable[str],
    strict: bool = False,
) -> Judgement:
    """Judge every pair that ran: ``outcomes[(cassette, check)] = (failing, skipped)``.

    ``cassettes`` and ``checks`` are every id this run knows (ran or deselected), so that an entry
    naming something that no longer exists is reported as stale, while an entry for a pair that was
    merely deselected (``-k``, ``--checks``) is left alone.
    """
    known_cassettes, known_checks = set(cassettes), set(checks)
    verdicts = {
        pair: judge(known=pair in expectations.known, failing=failing, skipped=skipped)
        for pair, (failing, skipped) in outcomes.items()
    }
    stale = sorted(p for p in expectations.known if p[0] not in known_cassettes or p[1] not in known_checks)
    path = str(expectations.path) if expectations.path else None
    return Judgement(verdicts, stale, strict, path)


def updated(
    expectations: Expectations,
    outcomes: Mapping[Pair, tuple[bool, bool]],
    *,
    reasons: Mapping[Pair, str] | None = None,
    target: str = "",
) -> Expectations:
    """The file after this run: its failures added, its passes removed, everything else kept.

    Reasons already in the file are kept; a new entry gets ``reasons[pair]`` (the first finding's
    message) so a reviewer sees what failed. Pairs that did not run (deselected, skipped) keep their
    entries, so a partial run never forgets known failures.
    """
    known = dict(expectations.known)
    for pair, (failing, skipped) in outcomes.items():
        if skipped:
            continue
        if failing:
            known.setdefault(pair, (reasons or {}).get(pair, ""))
        else:
            known.pop(pair, None)
    return Expectations(
        target=expectations.target or target, known=known, path=expectations.path, known_problems=expectations.known_problems
    )
