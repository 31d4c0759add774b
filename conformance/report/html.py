"""The HTML report: one self-contained file (no scripts, no external styles) for a CI artifact.

Built from the JSON report document alone, so it shows exactly the same findings. The top is the
problems, most harmful first, each expandable (:mod:`conformance.report.problems_html`), then the
cassettes × groups grid; below them every finding, one ``<div class="finding">`` each
(with ``data-check``, ``data-cassette``, ``data-severity``, ``data-outcome`` attributes a script
can read), formatted by :func:`format_finding`; at the bottom every exchange's request, raw
response stream and upstream requests, folded.
"""

from __future__ import annotations

import html
import json
import re
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conformance._report_safety import prepare_report
from conformance._safety import atomic_write
from conformance.exchange import Chunk, Finding
from conformance.report.problems_html import PROBLEMS_CSS, grid_html, problems_html
from conformance.report.sink import Output
from conformance.report.terminal import client_text, format_finding
from conformance.run_report import RunReport

__all__ = ["render_html", "write", "write_html"]

MAX_STREAM_CHARS = 200_000

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}h3{font-size:1.05em}
table.meta td{padding:.1em .8em .1em 0;vertical-align:top}table.meta td:first-child{color:#666}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:12px;line-height:1.35;white-space:pre-wrap;word-break:break-all}
pre.terminal{background:#fff;white-space:pre;word-break:normal}
.finding{border-left:4px solid #999;margin:.6em 0;padding-left:.6em}
.finding.error{border-color:#c62828}.finding.warning{border-color:#ef6c00}.finding.info{border-color:#0277bd}
.finding.xfail{opacity:.75}.badge{font-size:11px;padding:1px 6px;border-radius:8px;background:#eee;margin-left:.4em}
.ok{color:#2e7d32}.bad{color:#c62828}details{margin:.3em 0}summary{cursor:pointer}
"""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _esc(value: Any) -> str:
    """Escaped for HTML; control characters (not allowed in HTML text) shown as ``\\xNN``."""
    return html.escape(_CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(value)), quote=True)


def _stream_text(exchange: Mapping[str, Any]) -> str:
    body = b"".join(Chunk.from_json(c).data for c in exchange.get("chunks", []))
    encoding = {k.lower(): v for k, v in (exchange.get("headers") or {}).items()}.get("content-encoding", "").lower()
    note = ""
    if encoding in ("gzip", "deflate"):
        try:
            body = zlib.decompress(body, 47)  # 47: gzip or zlib header, detected
            note = f"(Content-Encoding: {encoding}; decoded for this page)\n"
        except zlib.error:
            note = f"(Content-Encoding: {encoding}; could not be decoded)\n"
    text = note + body.decode("utf-8", "replace")
    if len(text) > MAX_STREAM_CHARS:
        text = text[:MAX_STREAM_CHARS] + f"\n… {len(text) - MAX_STREAM_CHARS} more characters in the JSON report"
    return text


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page as a string."""
    target, summary = report["target"], report["summary"]
    title = f"Responses conformance — {target['name']}"
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_CSS}{PROBLEMS_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
    ]
    verdict = '<span class="ok">passed</span>' if summary["ok"] else '<span class="bad">failed</span>'
    meta = [
        ("result", verdict),
        ("target", _esc(target.get("command") or target.get("url") or target["name"])),
        ("profile", _esc(report["profile"]) + f" (fails on {_esc(report['fail_on'])})"),
        ("versions", _esc(", ".join(f"{k} {v}" for k, v in report["versions"].items() if v))),
        ("generated", _esc(report["generated_at"])),
        (
            "checks",
            _esc(
                f"{summary['cassettes']} cassettes, {summary['checks_run']} checks run: {summary['passed']} passed, "
                f"{summary['failed']} failed, {summary['xfailed']} known failures, {summary['fixed']} fixed, "
                f"{summary['skipped']} skipped; {summary['errors']} errors, {summary['warnings']} warnings, "
                f"{summary['notes']} notes"
            ),
        ),
    ]
    exp = report.get("expectations")
    if exp:
        meta.append(
            (
                "expectations",
                _esc(
                    f"{exp.get('file') or '(none)'}: {len(exp['xfail'])} known failures, {len(exp['new'])} new, "
                    f"{len(exp['fixed'])} fixed, {len(exp['stale'])} stale" + (" (strict)" if exp["strict"] else "")
                ),
            )
        )
    out.append('<table class="meta">' + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in meta) + "</table>")
    for err in report.get("load_errors", []):
        out.append(f'<p class="bad">cassette error: {_esc(err)}</p>')
    # issue 10: problems first, then the grid (an HTML table with a legend; no header is cut)
    out.append(problems_html(report))
    out.append("<h2>Summary</h2>")
    out.append(grid_html(report))

    clients = report.get("clients")
    if clients:
        out.append("<h2>Clients</h2><ul>")
        summary_of = clients.get("summary") or {}
        for name in clients.get("selected") or []:
            entry = summary_of.get(name)
            text = client_text(name, entry) if entry else f"{name}: skipped"
            cls = "bad" if entry and entry["failed"] else "ok"
            out.append(f'<li class="{cls}" data-client="{_esc(name)}">{_esc(text)}</li>')
        out.append("</ul>")

    out.append("<h2>Findings</h2>")
    n = 0
    for cassette in report["cassettes"]:
        rows = [(chk, f) for chk in cassette["checks"] for f in chk["findings"]]
        if not rows:
            continue
        out.append(f'<h3 id="c-{_esc(cassette["id"])}">{_esc(cassette["id"])}</h3>')
        for chk, data in rows:
            n += 1
            f = Finding.from_json(data)
            outcome = chk["outcome"]
            badge = f'<span class="badge">{_esc(outcome)}</span>'
            reason = chk.get("known_failure_reason")
            if reason:
                badge += f'<span class="badge">known: {_esc(reason)}</span>'
            attrs = {
                "class": f"finding {f.severity.value} {outcome}",
                "data-check": f.check_id,
                "data-cassette": f.cassette_id,
                "data-severity": f.severity.value,
                "data-outcome": outcome,
                "data-turn": f.turn,
                "data-event-index": "" if f.event_index is None else f.event_index,
                "data-pointer": f.pointer or "",
                "data-impact": f.impact.level if f.impact is not None else "",
            }
            attr_text = " ".join(f'{k}="{_esc(v)}"' for k, v in attrs.items())
            out.append(f"<div {attr_text}>{badge}<pre>{_esc(format_finding(f))}</pre></div>")
    if not n:
        out.append('<p class="ok">No findings.</p>')

    out.append("<h2>Exchanges</h2>")
    for cassette in report["cassettes"]:
        for ex in cassette["exchanges"]:
            te = ex.get("transport_error")
            head = f"{cassette['id']} turn {ex.get('turn')}: HTTP {ex.get('status')}" + (f", {te['kind']}" if te else "")
            out.append(f"<details><summary>{_esc(head)}</summary>")
            out.append(f"<h4>request to {_esc(ex.get('url'))}</h4><pre>{_esc(json.dumps(ex.get('request'), indent=1, ensure_ascii=False))}</pre>")
            headers = "\n".join(f"{k}: {v}" for k, v in (ex.get("headers") or {}).items())
            out.append(f"<h4>response</h4><pre>HTTP {_esc(ex.get('status'))}\n{_esc(headers)}\n\n{_esc(_stream_text(ex))}</pre>")
            if te:
                out.append(f"<p>transport: {_esc(te['kind'])}: {_esc(te['message'])}</p>")
            for up in ex.get("upstream_requests") or []:
                body = json.dumps(up.get("body"), indent=1, ensure_ascii=False)
                out.append(f"<h4>upstream request {_esc(up.get('method', ''))} {_esc(up.get('path', ''))}</h4><pre>{_esc(body)}</pre>")
            out.append("</details>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_html(path: str | Path, report: Mapping[str, Any]) -> Path:
    # Hook (issue 13): secrets redacted, written atomically (any string survives: see atomic_write).
    return atomic_write(path, render_html(prepare_report(report)))


def write(report: RunReport, out: Output) -> list[Path]:
    """Sink: the HTML page to ``--report-html``, when given."""
    path = out.options.report_html
    return [write_html(path, report.to_json())] if path else []
