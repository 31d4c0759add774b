"""The terminal report as a verdict: one screen that says whether the proxy works, then its problems.

Built from the report document alone (:meth:`conformance.run_report.RunReport.to_json`), so
``run``, ``check FILE`` and the pytest summary print the same thing; :func:`write` is the terminal
sink of :data:`conformance.report.SINKS`:

1. the verdict: target, profile, how many findings in how many problems by severity, the clients
   that break (when client impact is known), and the gate ("0 new problems; 12 known");
2. an index of every problem, most harmful first, one entry each;
3. the first problems in detail: what it breaks and for whom, the example (raw line, JSON
   pointer, expected vs actual), the consequences folded under it, and a short repro: the request
   body is written to a file under the report directory and sent with ``curl -d @file``, after
   ``responses-conformance replay CASSETTE`` has brought the fake upstream back;
4. the per-cassette grid, only when asked for (``--grid``).
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from conformance.exchange import Severity
from conformance.problems import (
    Impact,
    Problem,
    known_problem_ids,
    problems_from_report,
    problems_of_run,
)
from conformance.report.grid import render_grid
from conformance.report.sink import Output
from conformance.report.terminal import client_lines, safe
from conformance.run_report import SNAPSHOT_FAILURES, RunReport, impact_by_check

__all__ = ["gate_line", "render_verdict", "repro_dir", "repro_lines", "write", "write_repro_body"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_MARK = {Severity.ERROR: "✗", Severity.WARNING: "!", Severity.INFO: "i"}
_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"})


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _by_severity(problems: Sequence[Problem]) -> str:
    counts = {s: sum(1 for p in problems if p.severity is s) for s in Severity}
    return (
        f"{_plural(counts[Severity.ERROR], 'error')}, {_plural(counts[Severity.WARNING], 'warning')}, "
        f"{_plural(counts[Severity.INFO], 'note')}"
    )


def broken_clients(problems: Sequence[Problem]) -> dict[str, str]:
    """client -> worst verdict (ERR before LOSS) over every problem."""
    out: dict[str, str] = {}
    for p in problems:
        for client, verdict in p.impact.items():
            if out.get(client) != "ERR":
                out[client] = verdict.upper()
    return out


def _exchange(report: Mapping[str, Any], p: Problem) -> Mapping[str, Any] | None:
    ex = p.example
    mode = "nonstream" if ex.message.startswith("[non-stream] ") else "stream"
    for cassette in report.get("cassettes", []):
        if cassette["id"] != ex.cassette_id:
            continue
        for e in cassette.get("exchanges", []):
            if e.get("turn") == ex.turn and e.get("mode", "stream") == mode:
                return e  # type: ignore[no-any-return]
    return None


def repro_dir(report_path: str | Path | None) -> Path:
    """Where repro request bodies go: ``repro/`` beside the report, else a fresh temporary directory."""
    if report_path:
        return Path(report_path).resolve().parent / "repro"
    return Path(tempfile.mkdtemp(prefix="responses-conformance-repro-"))


def write_repro_body(directory: Path, p: Problem, exchange: Mapping[str, Any]) -> Path:
    """The example's request body, as sent, in ``directory/<problem id>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{p.id}.json"
    raw = exchange.get("raw_body")
    body = raw if isinstance(raw, str) else json.dumps(exchange.get("request"), ensure_ascii=False, indent=1) + "\n"
    path.write_text(body, "utf-8")
    return path


def repro_lines(
    p: Problem, exchange: Mapping[str, Any] | None, directory: Path | None, target: Mapping[str, Any] | None = None
) -> list[str]:
    """``replay`` + ``curl -d @file``: short, and still valid after the run."""
    if exchange is None:
        return []
    cassette = p.example.cassette_id
    replay = f"responses-conformance replay {shlex.quote(cassette)}"
    name = str((target or {}).get("name", ""))
    if target is not None and not target.get("command") and name.startswith("reference bridge"):
        faults = name.partition(" with faults ")[2]
        replay += " --reference" + "".join(f" --reference-fault {shlex.quote(x.strip())}" for x in faults.split(",") if x.strip())
        lines = [replay + "   # then send the curl to the bridge URL it prints"]
    else:
        lines = [replay + "   # the fake upstream again: point the proxy at it"]
    parts = ["curl", "-N", "-sS", str(exchange.get("url", "")), "-H", "Content-Type: application/json"]
    cmd = " ".join(shlex.quote(x) for x in parts)
    headers = {k.lower() for k in (exchange.get("request_headers") or {})}
    if headers & _SECRET_HEADERS:
        cmd += ' -H "Authorization: Bearer $OPENAI_API_KEY"'
    if directory is None:
        return [*lines, cmd + " -d @request.json   # the body: see the JSON report"]
    path = write_repro_body(directory, p, exchange)
    return [*lines, f"{cmd} -d @{shlex.quote(str(path))}"]


def gate_line(report: Mapping[str, Any], problems: Sequence[Problem]) -> tuple[str, str] | None:
    """("0 new problems; 12 known", style) when an expectation file judged the run, else None."""
    exp = report.get("expectations")
    if not exp:
        return None
    fail_on = Severity(report.get("fail_on", "error"))
    failing = [p for p in problems if p.severity.rank >= fail_on.rank]
    new = [p for p in failing if not p.known]
    known = len(failing) - len(new)
    extra = []
    if exp.get("fixed"):
        extra.append(f"{len(exp['fixed'])} fixed")
    if exp.get("stale"):
        extra.append(f"{len(exp['stale'])} stale entries")
    text = f"{len(new)} new problem{'' if len(new) == 1 else 's'}; {known} known" + (f"; {', '.join(extra)}" if extra else "")
    return text, ("bold green" if report["summary"]["ok"] else "bold red")


def render_verdict(
    console: Console,
    report: Mapping[str, Any],
    *,
    impact: Impact | None = None,
    repro_dir: Path | None = None,
    detail_limit: int = 8,
    grid: bool = False,
    problems: Sequence[Problem] | None = None,
) -> list[Problem]:
    """Print the verdict, the problem index and the first problems in detail; return the problems.

    Not on a terminal (CI logs), ``$COLUMNS`` sets the width when given, as a terminal would.
    """
    columns = os.environ.get("COLUMNS", "")
    if not console.is_terminal and columns.isdigit() and int(columns) >= 40:
        console = Console(file=console.file, width=int(columns), soft_wrap=False, force_terminal=False, no_color=console.no_color)
    exp = report.get("expectations") or {}
    known_ids = known_problem_ids(exp.get("file")) if exp else {}
    if problems is None:
        problems = problems_from_report(report, impact=impact, known_ids=known_ids)
    summary, target = report["summary"], report["target"]
    findings = sum(len(c["findings"]) for cas in report.get("cassettes", []) for c in cas.get("checks", []))
    exchanges = sum(len(cas.get("exchanges", [])) for cas in report.get("cassettes", []))
    ok = bool(summary["ok"])

    def say(text: str, style: str = "") -> None:
        # proxy text (reasons, messages, raw lines) is shown with secrets hidden and escapes escaped
        console.print(Text(safe(text), style=style), overflow="fold", highlight=False)

    say(f"Responses conformance: {target['name']} · profile {report['profile']}", "bold")
    found = f"{_plural(findings, 'finding')} in {_plural(len(problems), 'problem')} ({_by_severity(problems)})"
    say(f"{_plural(summary['cassettes'], 'cassette')}, {_plural(exchanges, 'exchange')}: " + (found if findings else "no findings"))
    clients = broken_clients(problems)
    if clients:
        say("clients that break: " + ", ".join(f"{c} ({v})" for c, v in sorted(clients.items(), key=lambda kv: (kv[1], kv[0]))), "bold red")
    elif impact is None:
        say("clients that break: not measured (no client-impact data in this run)", "dim")
    else:
        say("clients that break: none of the tested clients", "green")
    for err in report.get("load_errors", []):
        say(f"cassette error: {err}", "bold red")
    gate = gate_line(report, problems)
    if gate is not None:

        def gate_say(text: str, style: str) -> None:  # gate lines are not wrapped: CI greps them
            console.print(Text(safe(text), style=style), soft_wrap=True, highlight=False)

        in_file = f" in {exp['file']}" if exp.get("file") else ""
        gate_say(
            f"expectations{in_file}: {len(exp['xfail'])} known failures, {len(exp['new'])} new failures, "
            f"{len(exp['fixed'])} fixed, {len(exp['stale'])} stale entries",
            "bold",
        )
        gate_say(*gate)
        fail_on = Severity(report.get("fail_on", "error"))
        for p in problems:
            if not p.known and p.severity.rank >= fail_on.rank:
                new_in = p.new_in or p.cassettes
                cassettes = ", ".join(new_in[:3]) + (f", … (+{len(new_in) - 3})" if len(new_in) > 3 else "")
                gate_say(f"  new problem (not known{in_file}): {p.id} {p.check_id} on {cassettes}: {p.reason}", "red")
        tail = " (fails with --strict-expectations)" if not exp.get("strict") else ""
        for pair in exp.get("fixed", []):
            gate_say(f"  fixed (known failure that now passes; remove it from the file{tail}): cassette {pair['cassette']}, check {pair['check']}", "yellow")
        for pair in exp.get("stale", []):
            gate_say(f"  stale entry (no such cassette or check in this run): cassette {pair['cassette']}, check {pair['check']}", "yellow")
    else:
        failing = sum(1 for p in problems if p.severity.rank >= Severity(report.get("fail_on", "error")).rank)
        why = [f"{_plural(failing, 'problem')} at or above {report.get('fail_on', 'error')}"]
        snapshots = (report.get("snapshots") or {}).get("states", {})
        bad = sum(1 for state in snapshots.values() if state in SNAPSHOT_FAILURES)
        if bad:  # missing or different snapshots fail a run too
            why = [*why[: 1 if failing else 0], f"{_plural(bad, 'snapshot')} missing or different"]
        say(f"FAILED: {'; '.join(why)}" if not ok else "PASSED", "bold red" if not ok else "bold green")
    if not problems:
        return list(problems)

    console.rule(f"{_plural(len(problems), 'problem')}, most harmful first", style="dim")
    width = len(str(len(problems)))
    for n, p in enumerate(problems, 1):
        head = Text(f"{n:>{width}} ")
        head.append(_MARK[p.severity], style=_STYLE[p.severity])
        head.append(f" {p.check_id}", style="bold")
        head.append(f" · {_plural(len(p.cassettes), 'cassette')} · {p.id}" + (" · known" if p.known else ""), style="dim")
        console.print(head, overflow="fold")
        console.print(Text(" " * (width + 3) + safe(p.reason)), overflow="fold", highlight=False)

    shown = [p for p in problems if p.severity is not Severity.INFO][:detail_limit]
    for n, p in enumerate(shown, 1):
        console.rule(Text(f"{n}. {p.check_id} {p.id}", style=_STYLE[p.severity]), align="left", style="dim")
        say(p.reason, _STYLE[p.severity])
        say(p.breaks if p.breaks.startswith("breaks ") else f"breaks: {p.breaks}")
        if p.values:
            more = f" … ({len(p.values)} values)" if len(p.values) > 5 else ""
            say("varies: " + ", ".join(repr(v) for v in p.values[:5]) + more, "dim")
        say(
            f"occurs: {_plural(len(p.occurrences), 'finding')} on {_plural(len(p.exchanges), 'exchange')} of "
            f"{_plural(len(p.cassettes), 'cassette')}: " + ", ".join(p.cassettes[:4]) + (f", … (+{len(p.cassettes) - 4})" if len(p.cassettes) > 4 else "")
        )
        ex = p.example
        where = [f"cassette {ex.cassette_id}", f"turn {ex.turn}"]
        if ex.event_index is not None:
            where.append(f"event #{ex.event_index}")
        if ex.pointer:
            where.append(f"at {ex.pointer}")
        say("example: " + ", ".join(where))
        first, _, tail = ex.message.partition("\n")
        say("  " + first + (" …" if tail else ""), "dim")
        if ex.raw:
            say("  raw:      " + _short(ex.raw.replace("\n", "⏎"), 240))
        if ex.expected is not None or ex.actual is not None:
            say(f"  expected: {_short(ex.expected)}")
            say(f"  actual:   {_short(ex.actual)}")
        if p.consequences:
            by_check: dict[str, int] = {}
            for c in p.consequences.values():
                by_check[c.check_id] = by_check.get(c.check_id, 0) + c.count
            parts = [f"{c} ×{n}" for c, n in sorted(by_check.items(), key=lambda kv: (-kv[1], kv[0]))]
            say(f"folded: {_plural(p.folded, 'consequence')} ({', '.join(parts[:5])}{', …' if len(parts) > 5 else ''})", "dim")
        # a saved stream (`check FILE`) has no cassette to replay: the file itself is the repro
        offline = report.get("runner") == "check"
        lines = [] if offline else repro_lines(p, _exchange(report, p), repro_dir, report.get("target"))
        for i, line in enumerate(lines):
            say(("repro:  " if i == 0 else "        ") + line, "cyan")
    rest = len([p for p in problems if p.severity is not Severity.INFO]) - len(shown)
    if rest > 0:
        say(f"… {_plural(rest, 'more problem')} in the index above; every occurrence is in --report-html/--report-json", "dim")
    if grid:
        console.rule("cassettes × check groups", style="dim")
        render_grid(console, report)
    return list(problems)


def write(report: RunReport, out: Output) -> list[Path]:
    """Sink: the verdict and the problems on the console, then the expectation file rewritten and
    the snapshot states. The repro bodies go beside ``--report-json``/``--report-html`` (else a
    temporary directory, made only when there is a problem to reproduce)."""
    console = out.console
    if report.results or report.load_errors:
        impact = impact_by_check(report)
        problems = problems_of_run(report, impact=impact)
        o = out.options
        directory = repro_dir(o.report_json or o.report_html) if problems and report.runner != "check" else None
        render_verdict(console, report.to_json(), impact=impact, repro_dir=directory, grid=o.grid, problems=problems)
    if report.clients:
        client_lines(console, report)
    if report.expectations_written:
        console.print(
            f"expectations written: {report.expectations_written} ({report.known_failures} known failures)",
            highlight=False,
            soft_wrap=True,
        )
    if report.snapshots:
        counts: dict[str, int] = {}
        for state in report.snapshots.values():
            counts[state] = counts.get(state, 0) + 1
        text = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        hint = " (accept with --snapshot-update)" if report.snapshot_failures else ""
        style = "bold red" if report.snapshot_failures else "bold"
        console.print(Text(f"conformance snapshots in {report.snapshot_dir}: {text}{hint}", style=style), soft_wrap=True)
    return []
