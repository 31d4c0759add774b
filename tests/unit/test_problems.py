"""Problems, not findings: grouping, stable ids, moot folding, harm ranking, and the 80-column
terminal report built from them."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.console import Console

from conformance.exchange import Finding, Severity
from conformance.expectations import Judgement, Verdict
from conformance.problems import (
    MOOTS,
    Harm,
    forgive_known_problems,
    group_findings,
    known_problem_ids,
    moot_closure,
    normalise,
    problem_id,
    problems_json,
)
from conformance.report.grid import CODES, render_grid
from conformance.report.verdict import render_verdict
from conformance.resources import schemas_dir

E, W, NOTE = Severity.ERROR, Severity.WARNING, Severity.INFO


def f(check: str, message: str, cassette: str = "c1", turn: int = 0, sev: Severity = E, **kw: Any) -> Finding:
    return Finding(check, sev, message, cassette, turn, **kw)


# -- grouping and normalisation ------------------------------------------------------------------
def test_the_same_defect_on_many_cassettes_is_one_problem() -> None:
    findings = [
        f("seq.present", f"`{event}` has no integer sequence_number", cassette=c)
        for c in ("a", "b", "c")
        for event in ("response.created", "response.output_item.added", "response.completed")
    ]
    [p] = group_findings(findings)
    assert p.check_id == "seq.present"
    assert p.reason == "<v> has no integer sequence_number"
    assert p.cassettes == ["a", "b", "c"] and len(p.exchanges) == 3 and len(p.occurrences) == 9
    assert p.values[:3] == ["response.created", "response.output_item.added", "response.completed"]
    assert p.example is findings[0]


def test_ids_numbers_and_long_texts_are_abstracted_but_enumerated_values_stay() -> None:
    reason, _ = normalise(
        "items.closed_once",
        "item 'msg_f8144941528b4c84998d54a3bea8aa8d' (output_index 3) was opened at event 12 and never closed",
    )
    assert reason == "item '<id>' (output_index <n>) was opened at event <n> and never closed"
    # behavioural: the statuses are the defect, the upstream's message is not
    reason, values = normalise(
        "oracle.status",
        "the terminal event says 'completed'; the upstream failed: 'the request exceeds the context size' means 'failed'",
    )
    assert reason == "the terminal event says 'completed'; the upstream failed: <text> means 'failed'"
    assert values == ["the request exceeds the context size"]
    # HTTP status codes stay, bodies go
    assert normalise("http.status_ok", "HTTP 422 for this request, where 400 is right; body: EOF at line 1 column 86")[0] == (
        "HTTP 422 for this request, where 400 is right"
    )
    # the stream and the stream: false leg of one defect are one problem
    assert normalise("translation.sampling", "[non-stream] top_p 0.9 went upstream as None")[0] == "top_p <n> went upstream as None"
    assert normalise("translation.tool_choice", "tool_choice {'type': 'function', 'name': 'x'} went upstream as None")[0] == (
        "tool_choice <value> went upstream as None"
    )


def test_more_markers_are_not_problems() -> None:
    problems = group_findings([f("schema.event", "`x`: required property 'a' is missing"), f("schema.event", "… and 6 more like the above")])
    assert [len(p.occurrences) for p in problems] == [1]


def test_problem_ids_are_stable_and_distinct() -> None:
    one = group_findings([f("oracle.usage", "the upstream reported usage; the response has none", cassette="x")])
    two = group_findings([f("oracle.usage", "the upstream reported usage; the response has none", cassette="y", turn=3)])
    assert one[0].id == two[0].id == problem_id("oracle.usage", "the upstream reported usage; the response has none")
    # a pinned value: changing the hash or the normalisation breaks every expectation file naming ids
    assert problem_id("oracle.usage", "the upstream reported usage; the response has none") == "p-a85ec05c"
    other = group_findings([f("oracle.text", "the upstream reported usage; the response has none")])
    assert other[0].id != one[0].id


# -- moot folding --------------------------------------------------------------------------------
def test_no_terminal_event_folds_the_terminal_output_checks_under_it() -> None:
    findings = [
        f("lifecycle.terminal_present", "the stream ended without a terminal event", cassette=c)
        for c in ("a", "b")
    ] + [
        f("integrity.terminal_output", "the terminal response has no `output` array", cassette=c) for c in ("a", "b")
    ] + [
        f("oracle.usage", "the upstream reported usage; the response has none", cassette="a"),
        # on another exchange, with a terminal event, the same usage defect is a problem of its own
        f("oracle.usage", "the upstream reported usage; the response has none", cassette="c"),
    ]
    problems = {p.check_id: p for p in group_findings(findings)}
    assert set(problems) == {"lifecycle.terminal_present", "oracle.usage"}
    root = problems["lifecycle.terminal_present"]
    assert root.folded == 3
    assert {(c.check_id, c.count) for c in root.consequences.values()} == {("integrity.terminal_output", 2), ("oracle.usage", 1)}
    assert problems["oracle.usage"].cassettes == ["c"]


def test_a_proxy_that_empties_user_messages_is_one_problem_with_its_consequences_folded() -> None:
    # What such a proxy gives on every exchange: the translation check names the emptied message;
    # the fake upstream cannot match it, so the proxy relays an error and its lifecycle breaks.
    findings = []
    for c in [f"cassette-{i}" for i in range(20)]:
        findings += [
            f("translation.messages", "input[0] went upstream as messages[1] with a different text", cassette=c),
            f("upstream.matched", "the proxy's upstream request matched no cassette: no cassette turn has last message ''", cassette=c),
            f("http.status_ok", "HTTP 502 for a valid request, where 2xx is right; body: {...}", cassette=c),
            f("lifecycle.created_first", "the first event is 'error'", cassette=c),
            f("lifecycle.terminal_present", "the stream ended without a terminal event", cassette=c),
            f("integrity.terminal_output", "the terminal response has no `output` array", cassette=c),
        ]
    [p] = group_findings(findings)
    assert p.check_id == "translation.messages" and len(p.cassettes) == 20
    assert p.folded == 100
    assert {c.check_id for c in p.consequences.values()} == {
        "upstream.matched", "http.status_ok", "lifecycle.created_first", "lifecycle.terminal_present", "integrity.terminal_output",
    }


def test_an_unopened_part_folds_its_deltas_and_dones() -> None:
    findings = [
        f("items.event_targets_open_part", "`response.output_text.delta` refers to content_index=0 of item 'msg_0123456789abcdef', but no `response.content_part.added` opened that part"),
        f("items.close_order", "message item 'msg_0123456789abcdef' is closed without a `response.content_part.done` before it"),
        f("indices.content_index_dense", "content_index 0 of item 'msg_0123456789abcdef' was never opened"),
    ]
    [p] = group_findings(findings)
    assert p.check_id == "items.event_targets_open_part" and p.folded == 2


def test_the_moot_map_is_acyclic_and_names_real_checks() -> None:
    from conformance.checks import REGISTRY

    for cause in MOOTS:
        assert cause in REGISTRY, cause
        closure = moot_closure(cause)
        for pattern in closure:
            assert pattern == "*" or any(c == pattern or (pattern.endswith("*") and c.startswith(pattern[:-1])) for c in REGISTRY), pattern
        # a cause never (transitively) makes itself moot, except the catch-all of transport.connect
        if "*" not in closure:
            assert not any(cause == p or (p.endswith("*") and cause.startswith(p[:-1])) for p in closure), cause


# -- ranking -------------------------------------------------------------------------------------
def test_ranking_client_err_then_loss_then_oracle_then_translation_then_protocol_then_shape() -> None:
    findings = [
        f("seq.present", "`response.created` has no integer sequence_number", cassette=c) for c in "abcdefgh"
    ] + [
        f("http.status_ok", "HTTP 500 for this request, where 400 is right"),
        f("translation.system_message", "a second system message at messages[1] (the first is messages[0])"),
        f("oracle.status", "the terminal event says 'completed'; upstream finish_reason 'length' means 'incomplete'"),
        f("items.sequential", "item 'msg_0123456789abcdef' is opened while another is open", sev=NOTE),
        f("schema.event", "`response.output_text.delta`: required property 'output_index' is missing"),
        f("ids.call_id", "function_call item 'fc_0123456789abcdef' has no call_id"),
    ]
    impact = {"schema.event": {"openai-node stream()": "ERR", "AI SDK 5": "ok"}, "ids.call_id": {"Codex CLI": "LOSS"}}
    order = [p.check_id for p in group_findings(findings, impact=impact)]
    assert order == [
        "schema.event", "ids.call_id", "oracle.status", "translation.system_message", "http.status_ok", "seq.present", "items.sequential",
    ]
    problems = {p.check_id: p for p in group_findings(findings, impact=impact)}
    assert problems["schema.event"].harm is Harm.CLIENT_ERR
    assert problems["schema.event"].breaks == "breaks openai-node stream() (ERR)"  # ok clients are not named
    assert problems["ids.call_id"].harm is Harm.CLIENT_LOSS
    assert problems["oracle.status"].breaks.startswith("loses or changes what the upstream said")
    assert "pi.dev" in problems["oracle.status"].breaks  # the hand-written clients.md note, marked as such


def test_within_a_tier_errors_come_before_warnings_and_wider_problems_first() -> None:
    findings = [
        f("oracle.reasoning", "the reasoning item's text differs from the upstream's reasoning", sev=W, cassette=c) for c in "abc"
    ] + [f("oracle.text", "the message text differs from the upstream's (3 vs 4 characters)")] + [
        f("oracle.usage", "the upstream reported usage; the response has none", cassette=c) for c in "ab"
    ]
    assert [p.check_id for p in group_findings(findings)] == ["oracle.usage", "oracle.text", "oracle.reasoning"]


# -- known problems in expectation files ---------------------------------------------------------
class _Result:
    def __init__(self, findings: list[Finding]) -> None:
        self._findings = findings

    def findings(self) -> list[Finding]:
        return self._findings


def test_an_expectation_file_may_name_problem_ids(tmp_path: Path) -> None:
    usage = [f("oracle.usage", "the upstream reported usage; the response has none", cassette=c) for c in "ab"]
    text = f("oracle.text", "the message text differs from the upstream's (3 vs 4 characters)", cassette="a")
    pid = problem_id("oracle.usage", "the upstream reported usage; the response has none")
    path = tmp_path / "exp.json"
    path.write_text(json.dumps({"version": 1, "target": "t", "known_failures": [], "known_problems": [{"id": pid, "reason": "no usage"}]}))
    assert known_problem_ids(path) == {pid: "no usage"}
    verdicts = {("a", "oracle.usage"): Verdict.FAIL, ("b", "oracle.usage"): Verdict.FAIL, ("a", "oracle.text"): Verdict.FAIL}
    judged = forgive_known_problems(Judgement(dict(verdicts), []), [_Result([*usage, text])], path)
    assert judged.new == [("a", "oracle.text")]
    assert judged.xfailed == [("a", "oracle.usage"), ("b", "oracle.usage")]
    assert known_problem_ids(tmp_path / "missing.json") == {}


# -- the report: JSON schema, 80-column terminal, grid ---------------------------------------------
def _report(findings: list[Finding], *, ok: bool = False, expectations: dict[str, Any] | None = None) -> dict[str, Any]:
    cassettes: dict[str, dict[str, Any]] = {}
    for x in findings:
        cas = cassettes.setdefault(x.cassette_id, {"id": x.cassette_id, "error": None, "exchanges": [], "checks": []})
        chk = next((c for c in cas["checks"] if c["id"] == x.check_id), None)
        if chk is None:
            chk = {"id": x.check_id, "outcome": "fail", "skipped": None, "known_failure_reason": None, "findings": []}
            cas["checks"].append(chk)
        chk["findings"].append(x.to_json())
    for cas in cassettes.values():
        cas["exchanges"] = [
            {"cassette_id": cas["id"], "turn": 0, "url": "http://127.0.0.1:9/v1/responses", "mode": "stream",
             "request": {"model": "m", "input": "hi", "stream": True}, "request_headers": {}, "status": 200,
             "headers": {}, "chunks": [], "transport_error": None, "upstream_requests": [], "upstream_unmatched": [],
             "upstream_expected": 1, "live": False, "raw_body": None}
        ]
        cas["checks"].append({"id": "translation.sampling", "outcome": "skip", "skipped": "no", "known_failure_reason": None, "findings": []})
    return {
        "report_format": 1, "generated_at": "now", "target": {"name": "codex-relay", "url": None, "command": None},
        "versions": {"harness": "0", "python": "3", "openai": None}, "profile": "openai", "fail_on": "error",
        "summary": {"ok": ok, "cassettes": len(cassettes), "checks_run": 1, "passed": 0, "failed": 1, "xfailed": 0,
                    "fixed": 0, "skipped": 0, "errors": 1, "warnings": 0, "notes": 0},
        "expectations": expectations, "load_errors": [], "checks": {}, "cassettes": list(cassettes.values()),
    }


LONG = "openai-tool-loop-previous-response-id-with-a-very-long-cassette-name"


def _sample() -> list[Finding]:
    return [
        f("oracle.status", "the terminal event says 'completed'; upstream finish_reason 'length' means 'incomplete'",
          cassette=LONG, event_index=19, pointer="/response/status", expected="incomplete", actual="completed",
          raw='event: response.completed\ndata: {"type":"response.completed","response":{"status":"completed"}}'),
        *[f("seq.present", "`response.created` has no integer sequence_number", cassette=c) for c in ("a", "b", LONG)],
        f("lifecycle.terminal_present", "the stream ended without a terminal event", cassette="b"),
        f("integrity.terminal_output", "the terminal response has no `output` array", cassette="b"),
    ]


def test_the_report_problems_match_the_schema() -> None:
    report = _report(_sample())
    report["problems"] = problems_json(report)
    schema = json.loads((schemas_dir() / "report.schema.json").read_text("utf-8"))
    jsonschema.validate(report, schema)
    assert [p["check"] for p in report["problems"]] == ["oracle.status", "lifecycle.terminal_present", "seq.present"]
    first = report["problems"][0]
    assert first["example"]["pointer"] == "/response/status" and first["example"]["expected"] == "incomplete"
    assert report["problems"][1]["consequences"] == [
        {"check": "integrity.terminal_output", "reason": "the terminal response has no `output` array", "count": 1}
    ]
    bad = dict(report, problems=[dict(first, id="P-NOT-AN-ID")])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def _render(report: dict[str, Any], tmp_path: Path, **kw: Any) -> str:
    console = Console(file=io.StringIO(), width=80, force_terminal=False, record=True, color_system=None)
    render_verdict(console, report, repro_dir=tmp_path / "repro", **kw)
    return console.export_text()


def test_the_verdict_fits_80_columns_and_puts_the_worst_problem_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    text = _render(_report(_sample()), tmp_path)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0] == "Responses conformance: codex-relay · profile openai"
    assert lines[1].startswith("3 cassettes, 3 exchanges: 6 findings in 3 problems (3 errors")
    assert "FAILED: 3 problems at or above error" in text
    first = next(i for i, line in enumerate(lines) if "problems, most harmful first" in line)
    assert lines[first + 1].startswith("1 ✗ oracle.status · 1 cassette · p-")
    assert any(line.startswith("2 ✗ lifecycle.terminal_present · 1 cassette") for line in lines[first:])
    # the repro is short: the body is in a file, the curl refers to it, once per problem
    assert text.count("curl -N") == 3
    body = tmp_path / "repro" / f"{problem_id('oracle.status', normalise('oracle.status', _sample()[0].message)[0])}.json"
    assert json.loads(body.read_text("utf-8"))["input"] == "hi"
    assert f"-d @{body}" in "".join(text.splitlines())  # folded at 80 columns, never cut
    assert "responses-conformance replay" in text


def test_a_gate_that_passes_on_known_problems_says_so_in_green(tmp_path: Path) -> None:
    findings = _sample()
    report = _report(findings, ok=True, expectations={"file": None, "strict": False, "xfail": [], "new": [], "fixed": [], "stale": []})
    for cas in report["cassettes"]:
        for chk in cas["checks"]:
            if chk["findings"]:
                chk["outcome"] = "xfail"
    console = Console(file=io.StringIO(), width=80, force_terminal=True, record=True, color_system="truecolor")
    render_verdict(console, report, repro_dir=tmp_path)
    assert "0 new problems; 3 known" in console.export_text(clear=False)
    html = console.export_html(inline_styles=True)
    assert "0 new problems; 3 known" in html and "color: #008000" in html and "font-weight: bold" in html


def test_the_grid_is_legible_at_80_columns() -> None:
    report = _report(_sample())
    console = Console(file=io.StringIO(), width=80, force_terminal=False, record=True, color_system=None)
    render_grid(console, report)
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "…" not in "".join(lines)  # nothing truncated
    header = lines[0].split()
    assert header[0] == "cassette" and set(header[1:]) == {CODES[g] for g in ("seq", "lifecycle", "integrity", "oracle", "translation")}
    # a cassette id too long for its column folds onto the next line: every character is there
    assert LONG in "".join(line.split(" ")[0] for line in lines)
    legend = " ".join(lines)
    for g in ("seq", "lifecycle", "integrity", "oracle", "translation"):
        assert f"{CODES[g]}={g}" in legend


def test_the_grid_is_only_shown_on_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    report = _report(_sample())
    assert "cassettes × check groups" not in _render(report, tmp_path)
    assert "cassettes × check groups" in _render(report, tmp_path, grid=True)


# -- the matrix ----------------------------------------------------------------------------------
def _check(cid: str, outcome: str, findings: Sequence[Finding] = (), skipped: str | None = None) -> dict[str, Any]:
    return {"id": cid, "outcome": outcome, "skipped": skipped, "known_failure_reason": None, "findings": [x.to_json() for x in findings]}


def _target(name: str, cassettes: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    report = _report([])
    report["target"]["name"] = name
    report["cassettes"] = [{"id": c, "error": None, "exchanges": [], "checks": checks} for c, checks in cassettes.items()]
    report["summary"]["cassettes"] = len(cassettes)
    return report


def test_matrix_rules_never_ran_is_not_passed_and_warnings_show() -> None:
    from conformance.report.matrix import build_matrix, matrix_html, matrix_markdown

    good = _target("good", {
        c: [_check("oracle.text", "pass"), _check("upstream.matched", "pass"),
            _check("oracle.reasoning", "pass", [f("oracle.reasoning", "the reasoning differs", cassette=c, sev=W)] if c == "a" else []),
            _check("lifecycle.in_progress_second", "pass", [f("lifecycle.in_progress_second", "no in_progress", cassette=c, sev=NOTE)])]
        for c in ("a", "b", "c")
    })
    # empties user messages: the upstream never matches, so the answer checks never run
    emptied = _target("emptier", {
        c: [_check("oracle.text", "skip", skipped="no stream to check: HTTP 502") if c != "a" else _check("oracle.text", "pass"),
            _check("upstream.matched", "fail" if c != "a" else "pass",
                   [f("upstream.matched", "the proxy's upstream request matched no cassette: no cassette turn has last message ''", cassette=c)] if c != "a" else []),
            _check("oracle.reasoning", "skip", skipped="no stream to check: HTTP 502"),
            _check("lifecycle.in_progress_second", "skip", skipped="no stream to check: HTTP 502")]
        for c in ("a", "b", "c")
    })
    m = build_matrix([good, emptied])
    cells = {cid: row for cid, _, row in m.rows}
    assert cells["oracle.text"] == ["✓", "– 1/3"]  # ran on 1 of the 3 cassettes it ran on for `good`
    assert cells["oracle.reasoning"] == ["! 3/3", "–"]  # a warning is not a ✓
    assert cells["lifecycle.in_progress_second"] == ["i 3/3", "–"]  # nor a note
    assert cells["upstream.matched"] == ["✓", "✗ 2/3"]
    assert m.passed == [(2, 4), (0, 2)]  # the emptier does not tie for best
    assert m.lines == [
        "good: 2 problems (0 errors, 1 warning, 1 note); clients broken: not measured or none",
        "emptier: 1 problem (1 error, 0 warnings, 0 notes); clients broken: not measured or none",
    ]
    md = matrix_markdown(m)
    assert "| `oracle.text` |  | ✓ | – 1/3 |" in md and "- emptier: 1 problem (1 error" in md
    page = matrix_html(m)
    assert "<th>emptier</th>" in page and "– 1/3" in page and "<script" not in page


def test_known_problems_survive_update_expectations(tmp_path: Path) -> None:
    from conformance.expectations import Expectations, ExpectationsError, updated

    path = tmp_path / "exp.json"
    path.write_text(json.dumps({"version": 1, "target": "t", "known_failures": [], "known_problems": [{"id": "p-0123abcd", "reason": "r"}]}))
    exp = Expectations.load(path)
    new = updated(exp, {("c", "oracle.text"): (True, False)}, reasons={("c", "oracle.text"): "why"})
    new.save(path)
    data = json.loads(path.read_text("utf-8"))
    assert data["known_problems"] == [{"id": "p-0123abcd", "reason": "r"}]
    assert data["known_failures"] == [{"cassette": "c", "check": "oracle.text", "reason": "why"}]
    assert known_problem_ids(path) == {"p-0123abcd": "r"}
    with pytest.raises(ExpectationsError, match="known_problems must be a list"):
        Expectations.from_json({"version": 1, "target": "", "known_failures": [], "known_problems": "p-1"})


def test_a_missing_status_is_one_problem_whatever_the_finish_reason() -> None:
    findings = [
        f("oracle.status", f"[non-stream] the body's status says None; upstream finish_reason '{r}' means '{s}'", cassette=r)
        for r, s in (("stop", "completed"), ("tool_calls", "completed"), ("length", "incomplete"))
    ]
    [p] = group_findings(findings)
    assert p.reason == "the body's status says None (no status at all)" and len(p.cassettes) == 3
