"""Node clients: openai-node (raw and ``responses.stream()``) and the Vercel AI SDK (two majors).

Each runs the shipped script ``node/run_client.mjs`` inside its own npm directory in the cache
(``clients install`` fills it at the pinned versions below), as a subprocess with a hard timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.clients._carried import outcome_of_response
from conformance.clients._model import FIELDS, Outcome, ToolCall
from conformance.clients._spec import ClientError, ClientSpec

__all__ = ["NODE_CLIENTS", "NODE_ENVS", "NodeEnv", "cache_dir", "install", "node_missing"]

SCRIPT = Path(__file__).with_name("node") / "run_client.mjs"


@dataclass(frozen=True)
class NodeEnv:
    """One npm directory in the cache, with its packages pinned."""

    name: str
    packages: dict[str, str]

    @property
    def path(self) -> Path:
        return cache_dir() / "node" / self.name

    def installed(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for pkg in self.packages:
            meta = self.path / "node_modules" / pkg / "package.json"
            try:
                out[pkg] = str(json.loads(meta.read_text())["version"])
            except (OSError, ValueError, KeyError):
                out[pkg] = None
        return out

    def ready(self) -> bool:
        return self.installed() == self.packages


NODE_ENVS: dict[str, NodeEnv] = {
    e.name: e
    for e in (
        NodeEnv("openai-node", {"openai": "6.49.0"}),
        NodeEnv("ai-sdk-6", {"ai": "6.0.326", "@ai-sdk/openai": "3.0.141"}),
        NodeEnv("ai-sdk-7", {"ai": "7.0.173", "@ai-sdk/openai": "4.0.118"}),
        NodeEnv("codex", {"@openai/codex": "0.169.0"}),
    )
}


def cache_dir() -> Path:
    """Where npm installs go: $RESPONSES_CONFORMANCE_CACHE, else the user cache directory."""
    env = os.environ.get("RESPONSES_CONFORMANCE_CACHE")
    if env:
        return Path(env) / "clients"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "responses-conformance" / "clients"


def node_missing() -> str | None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found: install Node.js 20 or newer with npm (e.g. `apt-get install nodejs npm`)"
    return None


def install(names: list[str] | None = None, *, timeout: float = 900.0) -> list[tuple[str, bool, str]]:
    """npm-install each environment at its pinned versions; (name, ok, one line) per environment."""
    why = node_missing()
    if why:
        return [(name, False, why) for name in names or NODE_ENVS]
    results: list[tuple[str, bool, str]] = []
    for name in names or list(NODE_ENVS):
        env = NODE_ENVS[name]
        if env.ready():
            results.append((name, True, "already installed"))
            continue
        env.path.mkdir(parents=True, exist_ok=True)
        (env.path / "package.json").write_text(json.dumps({"private": True, "dependencies": env.packages}, indent=2) + "\n")
        cmd = ["npm", "install", "--no-audit", "--no-fund", "--save-exact", "--loglevel=error"]
        try:
            proc = subprocess.run(cmd, cwd=env.path, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            results.append((name, False, f"npm install did not finish within {timeout:.0f} s"))
            continue
        if proc.returncode != 0 or not env.ready():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            results.append((name, False, f"npm install failed: {tail}"))
        else:
            results.append((name, True, ", ".join(f"{k}@{v}" for k, v in env.packages.items())))
    return results


def _env_missing(env: NodeEnv) -> str | None:
    why = node_missing()
    if why:
        return why
    if not env.ready():
        return f"{env.name} is not installed: responses-conformance clients install"
    return None


def _run_script(env: NodeEnv, mode: str, base_url: str, timeout: float, tools: list[dict[str, Any]]) -> dict[str, Any]:
    target = env.path / SCRIPT.name
    source = SCRIPT.read_bytes()
    if not target.exists() or target.read_bytes() != source:
        target.write_bytes(source)
    try:
        proc = subprocess.run(
            ["node", str(target), mode, base_url, json.dumps(tools)], cwd=env.path, capture_output=True, text=True,
            timeout=timeout + 15, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ClientError(f"node did not finish within {timeout + 15:.0f} s", "timeout") from exc
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise ClientError(f"the node runner printed no result: {tail}", "node")
    result: dict[str, Any] = json.loads(lines[-1])
    if not result.get("ok"):
        raise ClientError(str(result.get("error")), str(result.get("where") or ""))
    return result


def _outcome(data: dict[str, Any]) -> Outcome:
    calls = data.get("tool_calls")
    return Outcome(
        text=data.get("text"),
        refusal=data.get("refusal"),
        reasoning=data.get("reasoning"),
        tool_calls=None if calls is None else [ToolCall.of(c.get("call_id"), c.get("name"), c.get("arguments")) for c in calls],
        status=data.get("status"),
        usage=data.get("usage"),
    )


def _runner(env: NodeEnv, mode: str) -> Any:
    def run(base_url: str, timeout: float, tools: list[dict[str, Any]]) -> Outcome:
        result = _run_script(env, mode, base_url, timeout, tools)
        if "response" in result:
            return outcome_of_response(result["response"])
        return _outcome(result["outcome"])

    return run


def _ai_sdk_view(expected: Outcome, got: Outcome) -> Outcome:
    """The AI SDK has no refusal field: a refusal arrives as text with finishReason
    content-filter, which also stands for a filtered (incomplete) answer."""
    if got.status == "content-filter":
        got.status = "completed" if expected.refusal else "incomplete"
    if expected.refusal and got.text == (expected.text or "") + expected.refusal:
        got.text = expected.text
    return got


def _node_client(
    name: str, env_name: str, mode: str, description: str, reports: tuple[str, ...] | None = None
) -> ClientSpec:
    env = NODE_ENVS[env_name]
    main = next(iter(env.packages))
    return ClientSpec(
        name, "node", description, _runner(env, mode),
        version=lambda: env.installed().get(main) or env.packages[main],
        missing=lambda: _env_missing(env),
        reports=reports or FIELDS,
        view=_ai_sdk_view if mode == "ai-sdk" else None,
    )


_AI_REPORTS = ("text", "reasoning", "tool_calls", "status", "usage")

NODE_CLIENTS: tuple[ClientSpec, ...] = (
    _node_client("openai-node.raw", "openai-node", "node-raw", "openai-node responses.create({stream: true}), iterated"),
    _node_client("openai-node.stream", "openai-node", "node-stream", "openai-node responses.stream() + finalResponse()"),
    _node_client("ai-sdk-6", "ai-sdk-6", "ai-sdk", "Vercel AI SDK 6 (@ai-sdk/openai 3) streamText(openai.responses(), tools)", _AI_REPORTS),
    _node_client("ai-sdk-7", "ai-sdk-7", "ai-sdk", "Vercel AI SDK 7 (@ai-sdk/openai 4) streamText(openai.responses(), tools)", _AI_REPORTS),
)
