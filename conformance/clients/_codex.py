"""Codex CLI (``@openai/codex``): ``codex exec --json`` against a custom provider at the replay server.

Codex reaches for the internet at start (plugin sync), so it runs inside a fresh network
namespace with only loopback (``unshare -rn``), next to its own replay server
(:mod:`conformance.clients._netns`). What Codex made of the stream is read from what it did
next: the history it sends back after running the tool (the assistant message and the
function call it kept), else the ``agent_message`` items it printed; ``turn.failed`` is ERR.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from conformance.clients._carried import outcome_of_response
from conformance.clients._model import Outcome
from conformance.clients._netns import capture_to_json
from conformance.clients._node import NODE_ENVS, node_missing
from conformance.clients._replay import Capture
from conformance.clients._spec import ClientError, ClientSpec

__all__ = ["CODEX_CLIENTS", "run_codex"]

ENV = NODE_ENVS["codex"]
PORT = 8766  # inside the namespace, so always free
CONFIG = f"""\
model = "gpt-test"
model_provider = "local"
[model_providers.local]
name = "local"
base_url = "http://127.0.0.1:{PORT}/v1"
env_key = "LOCAL_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 8000
"""


@functools.lru_cache(maxsize=1)
def _namespace_missing() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "Codex needs `unshare` and `ip` (util-linux, iproute2) to run with loopback only"
    try:
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a network namespace for Codex: {exc}"
    if probe.returncode != 0:
        return f"cannot create a network namespace for Codex (unshare -rn: {probe.stderr.strip() or probe.returncode}); user namespaces may be disabled"
    return None


def _missing() -> str | None:
    why = node_missing()
    if why:
        return why
    if not ENV.ready():
        return "codex is not installed: responses-conformance clients install codex"
    return _namespace_missing()


def _version() -> str | None:
    return ENV.installed().get("@openai/codex") or ENV.packages["@openai/codex"]


def run_codex(capture: Capture, timeout: float = 90.0) -> Outcome:
    """One ``codex exec`` against the capture, in its own namespace; raises ClientError on failure."""
    with tempfile.TemporaryDirectory(prefix="rc-codex-") as tmp:
        home, work = Path(tmp) / "home", Path(tmp) / "work"
        home.mkdir()
        work.mkdir()
        (home / "config.toml").write_text(CONFIG)
        cap = Path(tmp) / "capture.json"
        cap.write_text(json.dumps(capture_to_json(capture)))
        codex = ENV.path / "node_modules" / ".bin" / "codex"
        cmd = [
            "unshare", "-rn", sys.executable, "-m", "conformance.clients._netns", str(cap), str(PORT), "--",
            str(codex), "exec", "--skip-git-repo-check", "--json", "-s", "read-only", "What is f of 1?",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
        env.update(CODEX_HOME=str(home), HOME=str(home), LOCAL_API_KEY="sk-replay", RUST_LOG="error")
        try:
            proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout + 30, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ClientError(f"codex did not finish within {timeout + 30:.0f} s", "timeout") from exc
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise ClientError(f"the Codex namespace runner printed nothing: {proc.stderr.strip()[-300:]}", "unshare")
    result: dict[str, Any] = json.loads(lines[-1])
    if "error" in result and "rc" not in result:
        raise ClientError(str(result["error"]), "netns")
    return _outcome(result)


def _outcome(result: dict[str, Any]) -> Outcome:
    events = [json.loads(line) for line in str(result.get("stdout", "")).splitlines() if line.startswith("{")]
    failed = [e for e in events if e.get("type") == "turn.failed"]
    if failed:
        message = str((failed[0].get("error") or {}).get("message") or "turn failed")
        raise ClientError(f"turn.failed: {message.splitlines()[0][:300]}", "codex exec --json")
    if not any(e.get("type") == "turn.completed" for e in events):
        tail = str(result.get("stderr", "")).strip().splitlines()[-1:] or [f"exit code {result.get('rc')}"]
        raise ClientError(f"codex ended without turn.completed: {tail[0][:300]}", "codex exec --json")
    requests = result.get("requests") or []
    if len(requests) >= 2 and isinstance(requests[1].get("body"), dict):
        first_len = len((requests[0].get("body") or {}).get("input") or [])
        history = [i for i in requests[1]["body"].get("input", [])[first_len:] if isinstance(i, dict)]
        kept = [i for i in history if i.get("type") == "function_call" or (i.get("type") == "message" and i.get("role") == "assistant")]
        out = outcome_of_response({"output": kept})
    else:
        texts = [str(e["item"].get("text") or "") for e in events
                 if e.get("type") == "item.completed" and (e.get("item") or {}).get("type") == "agent_message"]
        out = Outcome(text="".join(texts), tool_calls=[])
    out.status = "completed"
    return out


def _run(base_url: str, timeout: float, tools: list[dict[str, Any]]) -> Outcome:
    raise ClientError("Codex replays a capture in its own namespace: use run_codex(capture)", "codex")


CODEX_CLIENTS: tuple[ClientSpec, ...] = (
    ClientSpec(
        "codex", "codex", "Codex CLI codex exec --json, custom provider, network namespace with loopback only",
        _run, _version, _missing, reports=("text", "tool_calls", "status"),
        run_capture=lambda capture, timeout: run_codex(capture, max(timeout, 60.0)),
    ),
)
