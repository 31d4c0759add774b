"""Every option, defined once: the pytest plugin, the CLI and the README table are built from it."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.checks import PROFILES
from conformance.driver import Limits
from conformance.harness import Settings

__all__ = ["OPTIONS", "Option", "settings_from"]


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    kind: str = "str"  # str | int | float | flag | list
    default: Any = None
    metavar: str | None = None
    choices: Sequence[str] | None = None
    pytest_only: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def ini(self) -> str:
        return "conformance_" + self.dest


_L = Limits()
OPTIONS: tuple[Option, ...] = (
    Option("--conformance", "Run the conformance suite (implied by --proxy-url/--proxy-cmd); with no target, against the embedded reference bridge.", "flag", False, pytest_only=True),
    Option("--proxy-url", "Base URL of a running proxy under test (its Responses endpoint is URL + --responses-path). With --proxy-cmd: the URL to use, {port} filled in.", metavar="URL"),
    Option("--proxy-cmd", "Command that starts the proxy; placeholders {upstream_url}, {upstream_port}, {port}, {host}. The harness waits until it accepts connections and stops it at the end.", metavar="CMD"),
    Option("--proxy-startup-timeout", "Seconds to wait for --proxy-cmd to accept connections.", "float", 60.0, "SECONDS"),
    Option("--upstream-port", "Port of the fake upstream on 127.0.0.1 (0: any free port). Fix it when the proxy was started separately.", "int", 0, "PORT"),
    Option("--cassettes", "Directory (or file) of cassettes; repeatable. Default: the shipped set.", "list", None, "DIR"),
    Option("--checks", "Only these checks: ids, groups or prefixes with * (comma-separated).", "str", None, "IDS"),
    Option("--exclude-checks", "Skip these checks: ids, groups or prefixes with * (comma-separated).", "str", None, "IDS"),
    Option("--profile", "Which rules apply and how severe: " + ", ".join(PROFILES) + ".", "str", "openai", "NAME", PROFILES),
    Option("--model", "Model name to put in every request instead of the cassette's.", metavar="NAME"),
    Option("--api-key", "Sent as 'Authorization: Bearer KEY' to the proxy (default: $RESPONSES_CONFORMANCE_API_KEY).", metavar="KEY"),
    Option("--responses-path", "Path of the Responses endpoint below the proxy URL.", "str", "/responses", "PATH"),
    Option("--replay-timing", "Replay upstream chunks with their recorded timing (default: as fast as possible).", "flag", False),
    Option("--live", "Live mode: the target is a model server (e.g. llama.cpp); no fake upstream, only each cassette's first request, and checks that need the recorded upstream are skipped.", "flag", False),
    Option("--stream-only", "Send each request only as the cassette has it (streaming); skip the stream: false replay of single-turn cassettes and the checks of that body.", "flag", False),
    Option("--record-mode", "pytest-recording's modes for the upstream leg: none replays the cassettes; once, new_episodes, all and rewrite put a recorder between the proxy and --upstream-url and write what it answers to --record-dir (see `responses-conformance record --help`).", "str", "none", "MODE", ("none", "once", "new_episodes", "all", "rewrite")),
    Option("--upstream-url", "Base URL of a real Chat Completions upstream to record from (with --record-mode other than none).", metavar="URL"),
    Option("--record-dir", "Where --record-mode writes cassettes (one file per cassette id).", "str", "cassettes-recorded", "DIR"),
    Option("--reference-fault", "Run the embedded reference bridge with this named fault (repeatable; see `responses-conformance faults`).", "list", None, "NAME"),
    Option("--connect-timeout", "Seconds to connect to the proxy.", "float", _L.connect_timeout, "SECONDS"),
    Option("--first-byte-timeout", "Seconds until the first response byte.", "float", _L.first_byte_timeout, "SECONDS"),
    Option("--idle-timeout", "Longest allowed silence inside a stream, in seconds.", "float", _L.idle_timeout, "SECONDS"),
    Option("--total-timeout", "Longest allowed exchange, in seconds.", "float", _L.total_timeout, "SECONDS"),
    Option("--max-bytes", "Stop reading a response after this many bytes.", "int", _L.max_bytes, "N"),
    Option("--max-events", "Stop reading a response after this many SSE events.", "int", _L.max_events, "N"),
    Option("--fail-on", "Lowest severity that fails the run: error or warning.", "str", "error", "SEVERITY", ("error", "warning")),
    Option("--target-name", "Name of the target in reports, the matrix and a new expectation file (default: the program of --proxy-cmd, or --proxy-url).", metavar="NAME"),
    Option("--expectations", "Expectation file (JSON) of known failures, by cassette and check: they are reported as xfail and do not fail the run; a new failure does; a known failure that passes is reported as fixed.", metavar="FILE"),
    Option("--update-expectations", "Write the --expectations file from this run: failures added (with the first finding as reason), known failures that passed removed, existing reasons kept.", "flag", False),
    Option("--strict-expectations", "Also fail the run when a known failure passes (fixed) or an entry names no cassette or check of this run.", "flag", False),
    Option("--report-json", "Write the JSON report (schemas/report.schema.json): versions, every exchange with its raw stream, every check outcome and finding.", metavar="PATH"),
    Option("--grid", "Also print the per-cassette grid (cassettes × check groups) after the problems.", "flag", False),  # issue 10
    Option("--report-html", "Write a self-contained HTML report (summary, findings, raw exchanges).", metavar="PATH"),
    Option("--conformance-snapshots", "Add one snapshot test per cassette: its exchange, normalised (ids as stable placeholders, no timings), against the stored snapshot; accept changes with --snapshot-update (syrupy).", "flag", False, pytest_only=True),
    Option("--conformance-snapshot-dir", "Where the snapshots live, relative to the rootdir.", "str", "__snapshots__/responses-conformance", "DIR", pytest_only=True),
)


def _split(value: Any) -> list[str]:
    if not value:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [p.strip() for item in items for p in str(item).replace("\n", ",").split(",") if p.strip()]


def settings_from(get: Callable[[Option], Any], env: Mapping[str, str] = os.environ) -> Settings:
    """Build :class:`Settings` from a getter that returns each option's value (or None)."""

    def value(flag: str) -> Any:
        opt = next(o for o in OPTIONS if o.flag == flag)
        v = get(opt)
        return opt.default if v is None else v

    limits = Limits(
        connect_timeout=float(value("--connect-timeout")),
        first_byte_timeout=float(value("--first-byte-timeout")),
        idle_timeout=float(value("--idle-timeout")),
        total_timeout=float(value("--total-timeout")),
        max_bytes=int(value("--max-bytes")),
        max_events=int(value("--max-events")),
    )
    return Settings(
        proxy_url=value("--proxy-url") or None,
        proxy_cmd=value("--proxy-cmd") or None,
        proxy_startup_timeout=float(value("--proxy-startup-timeout")),
        upstream_port=int(value("--upstream-port")),
        cassette_dirs=_split(value("--cassettes")),
        checks=_split(value("--checks")),
        exclude_checks=_split(value("--exclude-checks")),
        profile=str(value("--profile")),
        model=value("--model") or None,
        api_key=value("--api-key") or env.get("RESPONSES_CONFORMANCE_API_KEY") or None,
        responses_path=str(value("--responses-path")),
        replay_timing=bool(value("--replay-timing")),
        reference_faults=_split(value("--reference-fault")),
        live=bool(value("--live")),
        upstream_url=(value("--upstream-url") or None) if value("--record-mode") != "none" else None,
        record_mode=str(value("--record-mode")),
        record_dir=str(value("--record-dir")),
        stream_only=bool(value("--stream-only")),
        limits=limits,
    )


def markdown_table() -> str:
    """The README's options table (``python -m conformance.options`` prints it)."""
    rows = ["| option | ini key | default | what |", "|---|---|---|---|"]
    for o in OPTIONS:
        default = "" if o.default in (None, False) else f"`{o.default}`"
        flag = o.flag + (f" {o.metavar}" if o.metavar else "")
        only = " (pytest only)" if o.pytest_only else ""
        rows.append(f"| `{flag}` | `{o.ini}` | {default} | {o.help.replace('|', '/')}{only} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
