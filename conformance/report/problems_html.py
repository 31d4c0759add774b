"""HTML for the problems: the section that opens the HTML report, and the legible grid.

Each problem is a ``<details class="problem">`` (``data-problem``, ``data-check``,
``data-severity``, ``data-harm``) whose summary says what it is and what it breaks; opened, it
shows the example with its raw exchange, the consequences folded under it and every occurrence.
The grid is an HTML table with two-letter group codes and a legend: no header is ever cut.
No scripts, no external styles: the file stays a self-contained CI artifact.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

from conformance.exchange import Chunk
from conformance.problems import Problem, known_problem_ids, problems_from_report
from conformance.report.grid import CODES, grid_rows

__all__ = ["PROBLEMS_CSS", "grid_html", "problems_html"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MAX_RAW = 20_000

PROBLEMS_CSS = """
details.problem{border-left:4px solid #999;margin:.5em 0;padding:.2em .6em}
details.problem.error{border-color:#c62828}details.problem.warning{border-color:#ef6c00}details.problem.info{border-color:#0277bd}
details.problem>summary{font-weight:600}details.problem .breaks{font-weight:400;color:#444;display:block;margin-left:1.2em}
table.grid{border-collapse:collapse;font-family:ui-monospace,monospace;font-size:12px}
table.grid th,table.grid td{padding:1px 5px;text-align:center;white-space:nowrap;border-bottom:1px solid #eee}
table.grid th:first-child,table.grid td:first-child{text-align:left;white-space:normal;overflow-wrap:anywhere}
.c-error{color:#c62828;font-weight:700}.c-warning{color:#ef6c00}.c-info{color:#0277bd}.c-pass{color:#2e7d32}.c-skip{color:#999}
ol.occ{font-size:12px}
"""

_CELL = {"error": "✗", "warning": "!", "info": "i", "pass": "·", "skip": "–"}


def _esc(value: Any) -> str:
    return html.escape(_CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(value)), quote=True)


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)


def _exchange(report: Mapping[str, Any], p: Problem) -> Mapping[str, Any] | None:
    ex = p.example
    mode = "nonstream" if ex.message.startswith("[non-stream] ") else "stream"
    for cassette in report.get("cassettes", []):
        if cassette["id"] == ex.cassette_id:
            for e in cassette.get("exchanges", []):
                if e.get("turn") == ex.turn and e.get("mode", "stream") == mode:
                    return e  # type: ignore[no-any-return]
    return None


def _raw_exchange(e: Mapping[str, Any]) -> str:
    body = b"".join(Chunk.from_json(c).data for c in e.get("chunks", [])).decode("utf-8", "replace")
    if len(body) > MAX_RAW:
        body = body[:MAX_RAW] + f"\n… {len(body) - MAX_RAW} more characters in the JSON report"
    headers = "\n".join(f"{k}: {v}" for k, v in (e.get("headers") or {}).items())
    request = json.dumps(e.get("request"), ensure_ascii=False, indent=1)
    return f"POST {e.get('url')}\n{request}\n\nHTTP {e.get('status')}\n{headers}\n\n{body}"


def _problem(report: Mapping[str, Any], n: int, p: Problem) -> str:
    sev = p.severity.value
    attrs = (
        f'class="problem {sev}" data-problem="{p.id}" data-check="{_esc(p.check_id)}" '
        f'data-severity="{sev}" data-harm="{p.harm.name.lower()}" data-known="{str(p.known).lower()}"'
    )
    counts = f"{len(p.cassettes)} cassette{'s' if len(p.cassettes) != 1 else ''}, {len(p.occurrences)} findings"
    known = ' <span class="badge">known</span>' if p.known else ""
    out = [
        f"<details {attrs}><summary>{n}. [{sev}] {_esc(p.check_id)}: {_esc(p.reason)} "
        f'<span class="badge">{counts}</span><span class="badge">{p.id}</span>{known}'
        f'<span class="breaks">{_esc(p.breaks)}</span></summary>'
    ]
    ex = p.example
    where = [f"cassette {ex.cassette_id}", f"turn {ex.turn}"]
    if ex.event_index is not None:
        where.append(f"event #{ex.event_index}")
    if ex.pointer:
        where.append(f"at {ex.pointer}")
    lines = [f"example: {', '.join(where)}", ex.message]
    if ex.raw:
        lines.append(f"raw:      {ex.raw}")
    if ex.expected is not None or ex.actual is not None:
        lines += [f"expected: {_json(ex.expected)}", f"actual:   {_json(ex.actual)}"]
    if p.values:
        lines.append("varies:   " + ", ".join(p.values[:20]))
    out.append(f"<pre>{_esc(chr(10).join(lines))}</pre>")
    if p.consequences:
        items = "".join(
            f"<li>{_esc(c.check_id)} ×{c.count}: {_esc(c.reason)}</li>"
            for c in sorted(p.consequences.values(), key=lambda c: -c.count)
        )
        out.append(f"<p>Consequences folded under this problem:</p><ul>{items}</ul>")
    exchange = _exchange(report, p)
    if exchange is not None:
        out.append(f"<details><summary>raw exchange of the example</summary><pre>{_esc(_raw_exchange(exchange))}</pre></details>")
    occ = "".join(
        f"<li>{_esc(f.cassette_id)} turn {f.turn}" + (f" event #{f.event_index}" if f.event_index is not None else "")
        + f": {_esc(f.message)}</li>"
        for f in p.occurrences[:500]
    )
    more = f"<p>… {len(p.occurrences) - 500} more in the JSON report</p>" if len(p.occurrences) > 500 else ""
    out.append(f"<details><summary>all {len(p.occurrences)} occurrences</summary><ol class=\"occ\">{occ}</ol>{more}</details>")
    out.append("</details>")
    return "".join(out)


def problems_html(report: Mapping[str, Any]) -> str:
    """``<section id="problems">``: every problem, most harmful first, each expandable."""
    exp = report.get("expectations") or {}
    problems = problems_from_report(report, known_ids=known_problem_ids(exp.get("file")) if exp else None)
    findings = sum(len(c["findings"]) for cas in report.get("cassettes", []) for c in cas.get("checks", []))
    head = f"<h2>Problems</h2><p>{findings} findings in {len(problems)} problems, most harmful first.</p>"
    if not problems:
        return f'<section id="problems">{head}<p class="ok">No problems.</p></section>'
    body = "".join(_problem(report, n, p) for n, p in enumerate(problems, 1))
    return f'<section id="problems">{head}{body}</section>'


def grid_html(report: Mapping[str, Any]) -> str:
    """Cassettes × check groups with two-letter codes (legend below): nothing is truncated."""
    groups, rows = grid_rows(report)
    if not rows:
        return ""
    head = "".join(f'<th title="{_esc(g)}">{_esc(CODES.get(g, g[:2]))}</th>' for g in groups)
    body = []
    for cassette_id, cells in rows:
        tds = "".join(
            f'<td class="c-{cells[g]}">{_CELL[cells[g]]}</td>' if g in cells else "<td></td>" for g in groups
        )
        body.append(f"<tr><td>{_esc(cassette_id)}</td>{tds}</tr>")
    legend = ", ".join(f"{_esc(CODES.get(g, g[:2]))} = {_esc(g)}" for g in groups)
    return (
        f'<table class="grid"><thead><tr><th>cassette</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        f"<p>{legend}. ✗ error, ! warning, i note, · passed, – did not run.</p>"
    )
