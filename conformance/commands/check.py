"""``check FILE``, ``cassette from-capture FILE…`` and ``cassettes lint DIR…``: work offline.

Exit codes: 0 clean; 1 findings at or above ``--fail-on`` (``check``) or lint errors
(``cassettes lint``); 2 the input cannot be used (one line saying why, never a traceback) or a
report file cannot be written; 3 the harness itself failed (a bug here: one line, a log file).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from conformance._safety import atomic_write, strict_json_dumps
from conformance._secrets import redact_doc
from conformance.capture import CaptureError, cassette_from_capture, check_capture, load_capture
from conformance.cassette import (
    CassetteError,
    load_cassette,
    request_match_key,
    scan_cassette_files,
)
from conformance.exceptions import UserError
from conformance.exchange import PROFILES, Severity
from conformance.options import OutputSettings
from conformance.pipeline import build_report, exit_code, select_clients_of, write_report
from conformance.recorder import Redactor, SecretError, write_json_safely
from conformance.report.sink import Output
from conformance.report.terminal import safe
from conformance.run_report import Target

__all__ = ["LintProblem", "lint", "register"]


def _split(values: Sequence[str] | None) -> list[str]:
    return [p.strip() for v in values or [] for p in v.split(",") if p.strip()]


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace, Console], int]]:
    c = sub.add_parser(
        "check",
        help="check a saved Responses stream offline: a capture, or an SSE file as `curl -N` saves it",
        description=(
            "Run every check that needs no live proxy on a saved stream and print the report. A capture "
            "with both legs (record --responses --chat-upstream) also runs the checks that compare with "
            "the upstream. `curl -i -N` output keeps the HTTP head, so the header checks run too."
        ),
    )
    c.add_argument("file", metavar="FILE")
    c.add_argument("--profile", choices=PROFILES, default="openai", help="which rules apply and how severe")
    c.add_argument("--checks", action="append", metavar="IDS", help="only these checks (ids, groups, prefixes with *)")
    c.add_argument("--exclude-checks", action="append", metavar="IDS", help="skip these checks")
    c.add_argument("--fail-on", choices=("error", "warning"), default="error", help="lowest severity that fails (exit 1)")
    c.add_argument("--clients", metavar="SET", help="also replay the exchange into these real clients (all, python, node, codex, names)")
    c.add_argument("--json", metavar="OUT", help="also write the result (exchange, outcomes) as JSON to OUT")
    # issue 8: the report sinks of `run` and pytest, here too
    c.add_argument("--report-json", metavar="PATH", help="write the JSON report (schemas/report.schema.json)")
    c.add_argument("--report-html", metavar="PATH", help="write a self-contained HTML report")
    c.add_argument("--report-junit", metavar="PATH", help="write a JUnit XML file (one testcase per check)")
    c.add_argument("--report-matrix", metavar="DIR", help="add this report to the matrix in DIR")

    one = sub.add_parser("cassette", help="make a cassette: `cassette from-capture FILE…`")
    one_sub = one.add_subparsers(dest="cassette_command", required=True)
    fc = one_sub.add_parser(
        "from-capture",
        help="turn two-leg captures into a cassette that replays their upstream leg (one turn per capture, in order)",
    )
    fc.add_argument("files", nargs="+", metavar="FILE")
    fc.add_argument("-o", "--out", metavar="PATH", help="file or directory to write (default: ./<id>.json)")
    fc.add_argument("--id", dest="cassette_id", metavar="ID", help="cassette id (default: from the prompt)")
    fc.add_argument("--description", metavar="TEXT")
    fc.add_argument("--backend", default="unknown", metavar="NAME", help="whose upstream this was (provenance)")
    fc.add_argument("--tag", action="append", default=[], metavar="TAG", help="bug-class tag (repeatable)")

    many = sub.add_parser("cassettes", help="work on cassette directories: `cassettes lint DIR…`")
    many_sub = many.add_subparsers(dest="cassettes_command", required=True)
    li = many_sub.add_parser(
        "lint",
        help="validate cassettes; report duplicates, turns the fake upstream cannot match, and secrets",
    )
    li.add_argument("dirs", nargs="+", metavar="DIR")
    return {"check": _check, "cassette": _from_capture, "cassettes": _lint}


def _error(console: Console, message: str) -> int:
    console.print(Text(safe(f"error: {message}"), style="bold red"), soft_wrap=True)
    return 2


def _check(args: argparse.Namespace, console: Console) -> int:
    try:
        capture = load_capture(args.file)
    except CaptureError as exc:
        return _error(console, str(exc))
    clients = []
    if args.clients:
        try:
            clients = select_clients_of(args.clients)
        except UserError as exc:
            return _error(console, str(exc))
    result = check_capture(capture, profile=args.profile, select=_split(args.checks), exclude=_split(args.exclude_checks))
    if clients:
        from conformance.clients.live import replay_result

        replay_result(result, None, clients)
    what = {"capture": "capture", "exchange": "saved exchange", "sse": "saved stream"}[capture.kind]
    legs = " (both legs)" if capture.upstream else ""
    threshold = Severity(args.fail_on)
    report = build_report(
        [result], target=Target(f"{what} {args.file}{legs}"), profile=args.profile, fail_on=threshold, runner="check"
    )
    report.clients = [c.name for c in clients]
    outputs = OutputSettings(
        fail_on=threshold,
        report_json=args.report_json,
        report_html=args.report_html,
        report_junit=args.report_junit,
        report_matrix=args.report_matrix,
    )
    write_report(report, Output(console, outputs))
    skipped: dict[str, list[str]] = {}
    for cid, outcome in sorted(result.outcomes.items()):
        if outcome.skipped:
            skipped.setdefault(outcome.skipped, []).append(cid)
    for reason, ids in skipped.items():
        console.print(Text(f"skipped {len(ids)}: {', '.join(ids)} ({reason})", style="dim"), soft_wrap=True)
    if args.json:
        try:
            doc = redact_doc(result.to_json())
            atomic_write(args.json, strict_json_dumps(doc, indent=2, note_key="json_notes") + "\n")
        except OSError as exc:
            return _error(console, f"cannot write {args.json}: {exc.strerror or exc}")
    code = exit_code(report, console)  # hook (issue 13): 2 a sink could not write, 3 a harness bug
    return code if code > 1 else (1 if result.failing(threshold) else 0)


def _from_capture(args: argparse.Namespace, console: Console) -> int:
    try:
        captures = [load_capture(f) for f in args.files]
        doc = cassette_from_capture(
            captures, cassette_id=args.cassette_id, description=args.description, backend=args.backend, tags=args.tag
        )
    except (CaptureError, CassetteError) as exc:
        return _error(console, str(exc))
    out = Path(args.out) if args.out else Path.cwd()
    path = out / f"{doc['id']}.json" if out.is_dir() or not out.suffix else out
    try:
        write_json_safely(path, doc, Redactor())
    except SecretError as exc:
        return _error(console, str(exc))
    except OSError as exc:
        return _error(console, f"cannot write {path}: {exc.strerror or exc}")
    turns = len(doc["turns"])
    console.print(f"wrote {path}: cassette {doc['id']!r}, {turns} turn{'s' if turns != 1 else ''}", highlight=False, soft_wrap=True)
    console.print(f"replay it: responses-conformance run --cassettes {path} --proxy-url …", highlight=False, soft_wrap=True)
    return 0


@dataclass
class LintProblem:
    level: str  # error | warning
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.path}: {self.message}"


def lint(paths: Sequence[str | Path], redactor: Redactor | None = None) -> tuple[int, list[LintProblem]]:
    """Every problem in the cassettes below ``paths``: (files read, problems)."""
    redactor = redactor or Redactor()
    problems: list[LintProblem] = []
    ids: dict[str, str] = {}
    keys: dict[str, tuple[str, int]] = {}
    files, scan_problems = scan_cassette_files(paths)
    for err in scan_problems:
        problems.append(LintProblem("error", str(err).split(": ", 1)[0], str(err).split(": ", 1)[-1]))
    for path in files:
        where = str(path)
        try:
            cassette = load_cassette(path)
        except CassetteError as exc:
            problems.append(LintProblem("error", where, str(exc).removeprefix(f"{where}: ")))
            continue
        if cassette.id in ids:
            problems.append(LintProblem("error", where, f"duplicate id {cassette.id!r}: also used by {ids[cassette.id]}"))
        else:
            ids[cassette.id] = where
        for turn in cassette.turns:
            other = keys.get(turn.match_key)
            if other is not None:
                problems.append(
                    LintProblem(
                        "error",
                        where,
                        f"turn {turn.index} cannot be matched: its upstream match key {turn.match_key[:80]!r} is "
                        f"also turn {other[1]} of cassette {other[0]!r}, so the fake upstream answers only one of them",
                    )
                )
            else:
                keys[turn.match_key] = (cassette.id, turn.index)
            derived = request_match_key(turn.request)
            if derived and derived != turn.match_key:
                problems.append(
                    LintProblem(
                        "warning",
                        where,
                        f"turn {turn.index}: match.last_message differs from the request's last input text, so it "
                        "matches only a proxy that sends that other text upstream",
                    )
                )
            if turn.request.get("stream") is not True:
                problems.append(LintProblem("warning", where, f"turn {turn.index}: the request does not set \"stream\": true"))
        found = redactor.scan(cassette.raw)
        if found:
            problems.append(LintProblem("error", where, f"{found[0]} holds {found[1]}: remove it before committing"))
    return len(files), problems


def _lint(args: argparse.Namespace, console: Console) -> int:
    missing = [d for d in args.dirs if not Path(d).exists()]
    if missing:
        return _error(console, f"no such file or directory: {', '.join(missing)}")
    count, problems = lint(args.dirs)
    for p in problems:
        console.print(Text(str(p), style="bold red" if p.level == "error" else "yellow"), soft_wrap=True)
    errors = sum(1 for p in problems if p.level == "error")
    warnings = len(problems) - errors
    style = "bold red" if errors else "bold green"
    console.print(Text(f"{count} cassette files: {errors} errors, {warnings} warnings", style=style))
    return 1 if errors else 0
