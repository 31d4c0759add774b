"""Every option, defined once, and the settings a run is made of.

The pytest plugin, the CLI and the README table are built from :data:`OPTIONS`;
:func:`settings_from` turns option values into :class:`Settings` (what to run, against what) and
:func:`output_settings_from` into :class:`OutputSettings` (expectations, reports, exit rule).
Importing this module must stay cheap: the pytest plugin needs it in every pytest run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.exceptions import OptionError
from conformance.exchange import PROFILES, Severity

if TYPE_CHECKING:
    from conformance.driver import Limits
    from conformance.expectations import Expectations

__all__ = ["OPTIONS", "Option", "OutputSettings", "Settings", "output_settings_from", "settings_from"]


def _limits() -> Limits:
    from conformance.driver import Limits  # httpx: only when a run is really configured

    return Limits()


DEFAULT_CONCURRENCY = 4
"""Cassettes run at once by default: few enough that a proxy on a laptop keeps up."""


@dataclass
class Settings:
    """What a run does: the target, the upstream, the cassettes, the checks and the limits."""

    proxy_url: str | None = None
    proxy_cmd: str | None = None
    proxy_startup_timeout: float = 60.0
    upstream_url: str | None = None
    upstream_port: int = 0
    cassette_dirs: Sequence[str | Path] = ()
    checks: Sequence[str] = ()
    exclude_checks: Sequence[str] = ()
    profile: str = "openai"
    model: str | None = None
    api_key: str | None = None
    responses_path: str = "/responses"
    replay_timing: bool = False
    reference_faults: Sequence[str] = ()
    live: bool = False
    live_max_output_tokens: int = 256
    keep_alive: str = "auto"  # auto (on in live mode) | on | off
    stream_only: bool = False
    setup_probe: bool = True
    record_mode: str = "none"
    record_dir: str = "cassettes-recorded"
    clients: str | None = None  # --clients SET: replay every exchange into these real clients
    concurrency: int = 0  # --concurrency N: cassettes at once; 0: auto (see effective_concurrency)
    limits: Limits = field(default_factory=_limits)

    @property
    def effective_concurrency(self) -> int:
        """How many cassettes run at once: ``--concurrency``, or by default 4 when replaying and 1
        against a model server (live) or while recording (a real upstream, billed per call)."""
        if self.concurrency > 0:
            return self.concurrency
        return 1 if self.live or self.record_mode != "none" else DEFAULT_CONCURRENCY


@dataclass
class OutputSettings:
    """What happens with a run's result: target name, expectation file, report files, exit rule."""

    target_name: str | None = None
    report_json: str | None = None
    report_html: str | None = None
    report_junit: str | None = None  # issue 8: the JUnit XML sink
    report_matrix: str | None = None  # issue 8: the matrix sink's directory
    expectations: str | None = None
    update_expectations: bool = False
    strict_expectations: bool = False
    fail_on: Severity = Severity.ERROR
    grid: bool = False  # issue 10: the cassettes × groups grid after the problems
    snapshot_dir: str | None = None  # --snapshot-dir: the snapshot sink compares with DIR/<cassette>.json
    snapshot_update: bool = False  # --snapshot-update: it writes the missing and different ones

    def check(self) -> str | None:
        """A usage error, or None."""
        if self.update_expectations and not self.expectations:
            return "--update-expectations needs --expectations FILE (the file to write)"
        if self.snapshot_update and not self.snapshot_dir:
            return "--snapshot-update needs --snapshot-dir DIR (where the snapshots are)"
        return None

    def load_expectations(self) -> Expectations | None:
        """The expectation file (raises :class:`ExpectationsError`); empty if it is to be written."""
        if not self.expectations:
            return None
        from conformance.expectations import Expectations

        return Expectations.load(self.expectations, missing_ok=self.update_expectations)


_LIMIT: Any = object()  # an Option default: the field of the same name of conformance.driver.Limits


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    kind: str = "str"  # str | int | float | flag | list
    default: Any = None
    metavar: str | None = None
    choices: Sequence[str] | None = None
    pytest_only: bool = False
    cli_only: bool = False  # not a pytest option (pytest has its own way: syrupy's --snapshot-update)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def ini(self) -> str:
        return "conformance_" + self.dest

    @property
    def pytest_flag(self) -> str:
        """The flag under pytest: every one starts with ``--conformance`` so it clashes with no other
        plugin (``--record-mode`` is pytest-recording's, ``--profile`` pytest-profiling's)."""
        return self.flag if self.flag.startswith("--conformance") else "--conformance-" + self.flag[2:]

    def convert(self, value: Any) -> Any:
        """``value`` (from the command line or, as text, from an ini file) as this option's type.

        Raises :class:`OptionError` with one line naming the option and its ini key.
        """
        where = f"{self.flag} (ini {self.ini})"
        if self.kind in ("int", "float") and not isinstance(value, (int, float)):
            try:
                value = int(str(value).strip()) if self.kind == "int" else float(str(value).strip())
            except ValueError:
                what = "a whole number" if self.kind == "int" else "a number"
                raise OptionError(f"{where}: {value!r} is not {what}") from None
        if self.choices and value not in self.choices:
            raise OptionError(f"{where}: unknown value {value!r}; choose one of {', '.join(self.choices)}")
        return value

    def initial(self) -> Any:
        """The default value (the limits' defaults are looked up in :class:`Limits` only now)."""
        return getattr(_limits(), self.dest) if self.default is _LIMIT else self.default


# The defaults of the six limits are conformance.driver.Limits' (looked up when asked for).
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
    Option("--live-max-output-tokens", "Live mode: cap each request's max_output_tokens at N (and set it where the cassette has none) so a model server answers in bounded time; 0 sends the cassettes' values.", "int", 256, "N"),
    Option("--keep-alive", "Send every request over one reused keep-alive connection: on, off, or auto (on in live mode, where llama.cpp's server dropped reused connections).", "str", "auto", "MODE", ("auto", "on", "off")),
    Option("--stream-only", "Send each request only as the cassette has it (streaming); skip the stream: false replay of single-turn cassettes and the checks of that body.", "flag", False),
    Option("--no-setup-probe", "Do not stop the run when the proxy answers the first exchange without calling the fake upstream (a proxy that serves canned answers on purpose); each exchange is then judged as usual.", "flag", False),
    Option("--record-mode", "pytest-recording's modes for the upstream leg: none replays the cassettes; once, new_episodes, all and rewrite put a recorder between the proxy and --upstream-url and write what it answers to --record-dir (see `responses-conformance record --help`).", "str", "none", "MODE", ("none", "once", "new_episodes", "all", "rewrite")),
    Option("--upstream-url", "Base URL of a real Chat Completions upstream to record from (with --record-mode other than none).", metavar="URL"),
    Option("--record-dir", "Where --record-mode writes cassettes (one file per cassette id).", "str", "cassettes-recorded", "DIR"),
    Option("--reference-fault", "Run the embedded reference bridge with this named fault (repeatable; see `responses-conformance faults`).", "list", None, "NAME"),
    Option("--clients", "Replay every exchange into these real clients (all, python, node, codex, or client names, comma-separated; `responses-conformance clients list`) and report what each did: ok, ERR (it raised) or LOSS (it lost or misreported data); findings get the measured impact. Needs the clients extra (Node clients: `clients install`).", metavar="SET"),
    Option("--concurrency", "Run up to N cassettes at once against the target (default: 4 when replaying; 1 in live and record modes). 1 runs them one after another, in order; the results are the same either way.", "int", 0, "N"),
    Option("--connect-timeout", "Seconds to connect to the proxy.", "float", _LIMIT, "SECONDS"),
    Option("--first-byte-timeout", "Seconds until the first response byte.", "float", _LIMIT, "SECONDS"),
    Option("--idle-timeout", "Longest allowed silence inside a stream, in seconds.", "float", _LIMIT, "SECONDS"),
    Option("--total-timeout", "Longest allowed exchange, in seconds.", "float", _LIMIT, "SECONDS"),
    Option("--max-bytes", "Stop reading a response after this many bytes.", "int", _LIMIT, "N"),
    Option("--max-events", "Stop reading a response after this many SSE events.", "int", _LIMIT, "N"),
    Option("--fail-on", "Lowest severity that fails the run: error or warning.", "str", "error", "SEVERITY", ("error", "warning")),
    Option("--target-name", "Name of the target in reports, the matrix and a new expectation file (default: the program of --proxy-cmd, or --proxy-url).", metavar="NAME"),
    Option("--expectations", "Expectation file (JSON) of known failures, by cassette and check: they are reported as xfail and do not fail the run; a new failure does; a known failure that passes is reported as fixed.", metavar="FILE"),
    Option("--update-expectations", "Write the --expectations file from this run: failures added (with the first finding as reason), known failures that passed removed, existing reasons kept.", "flag", False),
    Option("--strict-expectations", "Also fail the run when a known failure passes (fixed) or an entry names no cassette or check of this run.", "flag", False),
    Option("--report-json", "Write the JSON report (schemas/report.schema.json): versions, every exchange with its raw stream, every check outcome and finding.", metavar="PATH"),
    Option("--grid", "Also print the per-cassette grid (cassettes × check groups) after the problems.", "flag", False),  # issue 10
    Option("--report-html", "Write a self-contained HTML report (summary, findings, raw exchanges).", metavar="PATH"),
    Option("--report-junit", "Write a JUnit XML file: one testcase per cassette × check (failure, skipped for skipped checks and known failures), with the run's and each test's properties (problem ids, client impact, bug classes).", metavar="PATH"),  # issue 8
    Option("--report-matrix", "Save this run's JSON report as DIR/<target>.json and rebuild DIR/matrix.md and DIR/matrix.html from every report in DIR: each target adds or replaces its own column.", metavar="DIR"),  # issue 8
    Option("--conformance-snapshots", "Add one snapshot test per cassette: its exchange, normalised (ids as stable placeholders, no timings), against the stored snapshot; accept changes with --snapshot-update (syrupy).", "flag", False, pytest_only=True),
    Option("--conformance-items", "One test per cassette × check (check), or one per cassette that fails when any of its checks fails (cassette: 65 tests instead of thousands, which keeps pytest-xdist's per-test cost small).", "str", "check", "KIND", ("check", "cassette"), pytest_only=True),
    Option("--conformance-snapshot-dir", "Where the snapshots live, relative to the rootdir.", "str", "__conformance_snapshots__", "DIR", pytest_only=True),
    Option("--snapshot-dir", "Compare each cassette's exchange, normalised as --conformance-snapshots does, with DIR/<cassette>.json (the same file, syrupy's JSON format); a missing or different snapshot fails the run, with a short diff.", metavar="DIR", cli_only=True),
    Option("--snapshot-update", "With --snapshot-dir: write the missing and different snapshots instead of failing (syrupy's --snapshot-update under pytest).", "flag", False, cli_only=True),
    Option("--conformance-fuzz", "Add one test that fuzzes the target (the proxy of --proxy-url/--proxy-cmd, or the reference bridge with its faults) with N generated upstream streams (`responses-conformance fuzz`; needs the [fuzz] extra); each problem fails it, shrunk and saved under cassettes/found/.", "int", 0, "N", pytest_only=True),
    Option("--conformance-fuzz-seed", "Hypothesis seed of --conformance-fuzz.", "int", 0, "S", pytest_only=True),
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
        return opt.initial() if v is None else opt.convert(v)

    from conformance.driver import Limits

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
        setup_probe=not value("--no-setup-probe"),
        live_max_output_tokens=int(value("--live-max-output-tokens")),
        keep_alive=str(value("--keep-alive")),
        clients=value("--clients") or None,
        concurrency=int(value("--concurrency")),
        limits=limits,
    )


def output_settings_from(get: Callable[[Option], Any]) -> OutputSettings:
    """Build :class:`OutputSettings` from the same getter as :func:`settings_from`."""

    def value(flag: str) -> Any:
        opt = next(o for o in OPTIONS if o.flag == flag)
        v = get(opt)
        return opt.initial() if v is None else opt.convert(v)

    return OutputSettings(
        target_name=value("--target-name") or None,
        report_json=value("--report-json") or None,
        report_html=value("--report-html") or None,
        report_junit=value("--report-junit") or None,
        report_matrix=value("--report-matrix") or None,
        expectations=value("--expectations") or None,
        update_expectations=bool(value("--update-expectations")),
        strict_expectations=bool(value("--strict-expectations")),
        fail_on=Severity(value("--fail-on") or "error"),
        grid=bool(value("--grid")),
        snapshot_dir=value("--snapshot-dir") or None,
        snapshot_update=bool(value("--snapshot-update")),
    )


def markdown_table() -> str:
    """The README's options table (``python -m conformance.options`` prints it)."""
    rows = ["| pytest option | `run` option | ini key | default | what |", "|---|---|---|---|---|"]
    for o in OPTIONS:
        default = "" if o.initial() in (None, False) else f"`{o.initial()}`"
        meta = f" {o.metavar}" if o.metavar else ""
        run = "" if o.pytest_only else f"`{o.flag}`"
        if o.cli_only:
            rows.append(f"|  | {run} |  | {default} | {o.help.replace('|', '/')} |")
            continue
        rows.append(f"| `{o.pytest_flag}{meta}` | {run} | `{o.ini}` | {default} | {o.help.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
