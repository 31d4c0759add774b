"""Bounded input, safe output and exit codes that tell who is broken, through the real CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance import harness as harness_module
from conformance._safety import (
    MAX_MESSAGE_CHARS,
    atomic_write,
    json_depth,
    loads_bounded,
    strict_json_dumps,
    terminal_text,
)
from conformance.cassette import load_cassettes
from conformance.cli import main
from conformance.exchange import Finding, Severity
from conformance.resources import cassettes_dir

ROOT = Path(__file__).resolve().parents[2]
TEXT = cassettes_dir() / "usage" / "openai-text-include-usage.json"
N = 100_000


def run_cli(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(argv)
    return rc, buf.getvalue()


def strict(path: Path) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(name)

    return json.loads(path.read_bytes().decode("utf-8"), parse_constant=refuse)


# -- nesting -----------------------------------------------------------------------------------
def test_100k_nested_arrays_in_an_event_are_a_finding(tmp_path: Path) -> None:
    f = tmp_path / "deep.sse"
    f.write_bytes(b'data: {"type":"response.created","response":' + b"[" * N + b"]" * N + b"}\n\n")
    rc, out = run_cli(["check", str(f), "--json", str(tmp_path / "out.json")])
    assert rc == 1, out
    assert "transport.cap" in out and "nests more than 64 levels deep" in out
    assert "Traceback" not in out
    strict(tmp_path / "out.json")


def test_100k_nested_file_and_cassette_are_one_line(tmp_path: Path) -> None:
    f = tmp_path / "deep.json"
    f.write_text("[" * N + "]" * N, "utf-8")
    rc, out = run_cli(["check", str(f)])
    assert rc == 2 and out.count("\n") == 1 and "nested more than 64 levels" in out
    cdir = tmp_path / "cassettes"
    cdir.mkdir()
    doc = json.loads(TEXT.read_text("utf-8"))
    doc["id"] = "deep-request"
    text = json.dumps(doc).replace('"stream": true', '"stream": true, "metadata": ' + "[" * 500 + "]" * 500, 1)
    (cdir / "deep.json").write_text(text, "utf-8")
    cassettes, errors = load_cassettes([cdir])
    assert cassettes == [] and len(errors) == 1 and "nested more than 64 levels" in str(errors[0])
    rc, out = run_cli(["cassettes", "lint", str(cdir)])
    assert rc == 1 and "nested more than 64 levels" in out and "Traceback" not in out


def test_depth_scan_is_exact_and_skips_strings() -> None:
    assert json_depth('["[[[[", {"a": [1]}]', 2) == (3, 15)
    assert json_depth('["[[[[", {"a": [1]}]', 3) == (3, -1)
    assert json_depth('["[[[[", {"a": [1]}]', 64) == (0, -1)  # few brackets: not even scanned
    assert loads_bounded("[[1]]") == [[1]]
    with pytest.raises(ValueError, match="nested more than 3"):
        loads_bounded("[[[[1]]]]", 3)


# -- output ------------------------------------------------------------------------------------
def test_any_string_survives_every_sink(tmp_path: Path) -> None:
    f = tmp_path / "s.sse"
    f.write_bytes(
        b'data: {"type":"response.output_text.delta","delta":"\\ud800 \\u001b]0;t\\u0007 [bold]x[/]",'
        b'"sequence_number":NaN,"item_id":"m","output_index":0,"content_index":0}\n\n'
    )
    rc, out = run_cli(["check", str(f), "--json", str(tmp_path / "o.json")])
    assert rc == 1, out
    assert "Traceback" not in out and "\x1b" not in out
    strict(tmp_path / "o.json")
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_terminal_text_escapes_controls_and_keeps_text() -> None:
    assert terminal_text("a\x1b[31mb\x07\u202e\ud800\n") == "a\\x1b[31mb\\x07\\u202e\\ud800\n"
    assert terminal_text("日本語 ok") == "日本語 ok"


def test_strict_json_writes_non_finite_numbers_as_strings_and_notes_them(tmp_path: Path) -> None:
    text = strict_json_dumps({"a": [float("nan"), float("inf")], "s": "\ud800"}, note_key="json_notes")
    doc = json.loads(text, parse_constant=lambda n: (_ for _ in ()).throw(ValueError(n)))
    assert doc["a"] == ["NaN", "Infinity"] and doc["s"] == "\ud800"
    assert doc["json_notes"]["non_finite_numbers_written_as_strings"] == ["$.a[0]", "$.a[1]"]
    atomic_write(tmp_path / "x.json", text)
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_finding_text_is_capped_with_a_note() -> None:
    f = Finding("x.y", Severity.ERROR, "m" * 5_000_000, raw="r" * 5_000_000, actual="a" * 5_000_000)
    assert len(f.message) < MAX_MESSAGE_CHARS + 100 and f.message.endswith("more characters cut]")
    assert len(f.raw or "") < 5_000 and len(f.actual) < 5_000


@pytest.mark.slow
def test_a_crashed_sink_does_not_lose_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import conformance.report.html as html

    def boom(path: Any, report: Any) -> Path:
        raise RuntimeError("html sink bug")

    monkeypatch.setattr(html, "write_html", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    rc, out = run_cli(["run", "--cassettes", str(TEXT), "--report-json", str(tmp_path / "r.json"), "--report-html", str(tmp_path / "r.html")])
    assert rc == 3, out
    assert (tmp_path / "r.json").exists() and not (tmp_path / "r.html").exists()
    assert "the html sink failed" in out and "details in" in out


def test_a_sink_that_cannot_write_is_exit_2_and_the_others_still_write(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory", "utf-8")
    rc, out = run_cli(
        ["run", "--cassettes", str(TEXT), "--report-json", str(tmp_path / "file" / "r.json"), "--report-html", str(tmp_path / "r.html")]
    )
    assert rc == 2, out
    assert "the data sink could not write" in out and "Traceback" not in out
    assert (tmp_path / "r.html").exists()


# -- exit codes --------------------------------------------------------------------------------
def test_a_harness_bug_on_one_exchange_is_a_finding_and_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = harness_module.run_checks
    calls = {"n": 0}

    def flaky(exchange: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RecursionError("maximum recursion depth exceeded (planted)")
        return real(exchange, **kw)

    monkeypatch.setattr(harness_module, "run_checks", flaky)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    other = cassettes_dir() / "text" / "openai-refusal.json"
    rc, out = run_cli(["run", "--cassettes", str(TEXT), "--cassettes", str(other), "--report-json", str(tmp_path / "r.json")])
    assert rc == 3, out
    assert "harness.error" in out and "planted" in out
    # the problem's reason abstracts numbers (<n>); the example below it names the real log file
    log = re.search(r"details in ([^\s<>]+\.log)", out)
    assert log and "RecursionError" in Path(log.group(1)).read_text("utf-8")
    report = strict(tmp_path / "r.json")
    assert len(report["cassettes"]) == 2  # the run went on
    assert report["checks"]["harness.error"]["group"] == "harness"  # registered in the RunReport
    jsonschema.validate(report, json.loads((ROOT / "schemas" / "report.schema.json").read_text("utf-8")))
    assert calls["n"] == 4  # two cassettes, stream and non-stream each


def test_a_harness_bug_is_never_written_as_a_known_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(exchange: Any, **kw: Any) -> Any:
        raise RuntimeError("planted")

    monkeypatch.setattr(harness_module, "run_checks", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    exp = tmp_path / "expectations.json"
    rc, out = run_cli(["run", "--cassettes", str(TEXT), "--expectations", str(exp), "--update-expectations"])
    assert rc == 3, out
    assert exp.exists() and "harness.error" not in exp.read_text("utf-8")


def test_a_crash_outside_any_exchange_is_exit_3_with_a_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import conformance.cli as cli

    def boom(console: Any, verbose: bool) -> int:
        raise KeyError("planted")

    monkeypatch.setattr(cli, "_checks", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    rc, out = run_cli(["checks"])
    assert rc == 3 and out.count("\n") == 1 and "internal error" in out
    assert "Traceback" in Path(re.search(r"details in (\S+)", out).group(1)).read_text("utf-8")  # type: ignore[union-attr]


def test_usage_errors_are_exit_2() -> None:
    rc, _ = run_cli(["check", "/nonexistent/file.sse"])
    assert rc == 2


def test_symlink_loop_and_dangling_symlink_are_named(tmp_path: Path) -> None:
    d = tmp_path / "c"
    (d / "sub").mkdir(parents=True)
    (d / "ok.json").write_text(TEXT.read_text("utf-8"), "utf-8")
    os.symlink("..", d / "sub" / "loop")
    os.symlink(tmp_path / "gone.json", d / "dangling.json")
    cassettes, errors = load_cassettes([d])
    assert [c.id for c in cassettes] == ["openai-text-include-usage"]
    messages = sorted(str(e) for e in errors)
    assert len(messages) == 2
    assert "dangling symlink" in messages[0] and "symlink loop" in messages[1]
    rc, out = run_cli(["run", "--cassettes", str(d)])
    assert rc == 1  # broken cassette files fail the run, as a bad cassette does
    assert "dangling symlink" in out and "symlink loop" in out and "Traceback" not in out


def test_lone_surrogate_in_a_cassette_chunk_loads(tmp_path: Path) -> None:
    doc = json.loads(TEXT.read_text("utf-8"))
    doc["turns"][0]["upstream"][0]["chunks"][0]["data"] = "data: \ud800\n\n"
    (tmp_path / "s.json").write_text(json.dumps(doc), "utf-8")
    cassettes, errors = load_cassettes([tmp_path])
    assert errors == [] and cassettes[0].turns[0].upstream[0].chunks[0][1] == b"data: \xed\xa0\x80\n\n"


# -- caps on what `check` reads ------------------------------------------------------------------
@pytest.mark.slow
def test_check_caps_piped_input_with_bounded_memory(tmp_path: Path) -> None:
    code = (
        "import resource, sys\n"
        "from conformance.cli import main\n"
        "rc = main(['check', '-'])\n"
        "hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
        "peak = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print('RC', rc, peak // 1024)\n"
    )
    big = tmp_path / "big.sse"
    with open(big, "wb") as fh:
        fh.write(b"data: " + b"x" * (66 << 20) + b"\n\n")
    with open(big, "rb") as stdin:
        proc = subprocess.run([sys.executable, "-c", code], stdin=stdin, capture_output=True, text=True, timeout=60, cwd=ROOT)
    rc_line = proc.stdout.strip().splitlines()[-1]
    _, rc, peak_mb = rc_line.split()
    assert rc == "2" and "over the 64 MiB input limit" in proc.stdout, proc.stdout[-500:]
    assert int(peak_mb) < 250, peak_mb


def test_pytest_shows_a_harness_bug_as_failures_not_skips(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def boom(exchange: Any, **kw: Any) -> Any:
        raise RuntimeError("planted harness bug")

    monkeypatch.setattr(harness_module, "run_checks", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = pytester.runpytest("--conformance", "--conformance-cassettes", str(TEXT), "--conformance-checks", "seq", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "harness.error" in out and "planted harness bug" in out and "Traceback" not in out


def test_the_depth_shortcut_agrees_with_the_token_scan() -> None:
    """json_depth finds most depths in C (strings out, one level of empty pairs per pass); on
    nested documents with brackets and quotes inside strings, cut, unbalanced or with a string
    that never ends, it gives the token scan's answer, depth and offset alike."""
    import random

    from conformance._safety import _token_depth, json_depth

    rng = random.Random(15)

    def doc(levels: int) -> object:
        if levels == 0 or rng.random() < 0.25:
            return rng.choice(["a[b{", 1, None, 'x\\"]', "]]}}", "\\\\", '\\\\"'])
        if rng.random() < 0.5:
            return [doc(levels - 1) for _ in range(rng.randint(0, 3))]
        return {f"k{i}[": doc(levels - 1) for i in range(rng.randint(0, 3))}

    compared = 0
    for _ in range(600):
        text = json.dumps(doc(rng.randint(1, 9)))
        for variant in (text, text[: len(text) // 2], text + "]]", "[[[" + text, text.replace('"', "", 1), '"' + text):
            for limit in (2, 3, 5, 64):
                expected = _token_depth(variant, limit)
                if expected[1] < 0 and variant.count("[") + variant.count("{") <= limit:
                    expected = (0, -1)  # the bracket count alone proves it shallow
                assert json_depth(variant, limit) == expected, (variant[:80], limit)
                compared += 1
    assert compared == 600 * 6 * 4
