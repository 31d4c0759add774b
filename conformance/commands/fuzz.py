"""``fuzz``: generated upstream streams against a target; each problem shrunk and saved as a cassette.

Exit codes: 0 nothing found; 1 at least one problem (each written to ``--out``); 2 the run could
not happen (bad option, proxy unreachable, proxy command died) — one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from conformance.checks import PROFILES
from conformance.driver import Limits
from conformance.exceptions import HarnessError, OptionError, UserError
from conformance.options import Settings

if TYPE_CHECKING:
    from conformance.fuzz.runner import FuzzReport

__all__ = ["assert_no_problems", "register", "run_fuzz"]

# Generated streams are small: a stuck exchange must not hold a campaign for the default minutes.
FUZZ_LIMITS = Limits(connect_timeout=5, first_byte_timeout=10, idle_timeout=5, total_timeout=30, max_bytes=8_000_000, max_events=20_000)


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace, Console], int]]:
    f = sub.add_parser(
        "fuzz",
        help="generate upstream streams, judge the target's answers, save each problem as a shrunk cassette",
        description=(
            "Property-based run: hypothesis generates Chat Completions upstream streams in the shapes real "
            "backends send (and cuts them into network reads), the fake upstream replays each to the target, "
            "and every check judges the answer. Each distinct problem is shrunk to a minimal stream and "
            "written as OUT/<problem-id>.json, a normal cassette. Default target: the reference bridge."
        ),
    )
    f.add_argument("--proxy-url", metavar="URL", help="a running proxy (point its upstream at --upstream-port)")
    f.add_argument("--proxy-cmd", metavar="CMD", help="a proxy to launch ({upstream_url}, {port}, {host} filled in)")
    f.add_argument("--reference-fault", action="append", metavar="NAME", help="reference bridge fault (repeatable)")
    f.add_argument("--upstream-port", type=int, default=0, metavar="PORT", help="fixed port of the fake upstream")
    f.add_argument("--responses-path", default="/responses", metavar="PATH")
    f.add_argument("--api-key", metavar="KEY", help="sent as Bearer to the proxy (never written anywhere)")
    f.add_argument("--examples", type=int, default=200, metavar="N", help="generated examples, shrinking included (default 200)")
    f.add_argument("--seed", type=int, default=0, metavar="S", help="hypothesis seed (default 0)")
    f.add_argument("--out", default="cassettes/found", metavar="DIR", help="where shrunk cassettes go (default cassettes/found)")
    f.add_argument("--time-budget", type=float, default=None, metavar="SECONDS", help="stop generating after this long")
    f.add_argument("--shrink-seconds", type=float, default=120.0, metavar="S", help="cap on shrinking time per round (default 120)")
    f.add_argument("--backend", metavar="NAME", help="only imitate this backend (openai, azure, deepseek, vllm, ollama, ...)")
    f.add_argument("--profile", choices=PROFILES, default="openai", help="which rules apply and how severe")
    f.add_argument("--database", default=".hypothesis/conformance-fuzz", metavar="DIR", help="hypothesis example database (replays earlier failures first)")
    f.add_argument("--no-database", action="store_true", help="do not read or write the example database")
    f.add_argument("--json", metavar="OUT", help="also write the campaign report as JSON")
    return {"fuzz": _command}


def run_fuzz(
    *,
    proxy_url: str | None = None,
    proxy_cmd: str | None = None,
    faults: list[str] | None = None,
    examples: int = 200,
    seed: int = 0,
    out: str | Path | None = "cassettes/found",
    time_budget: float | None = None,
    database: str | Path | None = ".hypothesis/conformance-fuzz",
    backend: str | None = None,
    profile: str = "openai",
    upstream_port: int = 0,
    responses_path: str = "/responses",
    api_key: str | None = None,
    progress: Callable[[str], None] | None = None,
    shrink_seconds: float = 120.0,
) -> FuzzReport:
    """One campaign; the pytest option and the CLI both call this. Raises HarnessError.

    hypothesis is imported here, not at CLI start: it is only needed to fuzz (extra ``[fuzz]``).
    """
    try:
        from conformance.fuzz.runner import FuzzConfig, fuzz
        from conformance.fuzz.strategies import BACKENDS
    except ImportError as exc:
        raise HarnessError(f"fuzz needs hypothesis ({exc}): pip install 'responses-conformance[fuzz]'") from None
    if backend is not None and backend not in BACKENDS:
        raise OptionError(f"unknown --backend {backend!r}; known: {', '.join(sorted(BACKENDS))}")
    settings = Settings(
        proxy_url=proxy_url,
        proxy_cmd=proxy_cmd,
        reference_faults=tuple(faults or ()),
        profile=profile,
        upstream_port=upstream_port,
        responses_path=responses_path,
        api_key=api_key,
        limits=FUZZ_LIMITS,
    )
    config = FuzzConfig(
        settings=settings,
        examples=examples,
        seed=seed,
        out_dir=Path(out) if out else None,
        time_budget=time_budget,
        database=Path(database) if database else None,
        backend=backend,
        progress=progress,
        shrink_seconds=shrink_seconds,
    )
    return fuzz(config)


def print_report(report: FuzzReport, console: Console) -> None:
    console.print(
        f"fuzz: {report.examples} examples, {report.exchanges} exchanges in {report.elapsed:.1f} s "
        f"({report.rate:.1f} exchanges/s), seed {report.seed}, {report.rounds} round(s), stopped by {report.stopped}",
        highlight=False,
        soft_wrap=True,
    )
    if not report.problems:
        console.print("no problems found", style="green")
    else:
        table = Table(title=f"{len(report.problems)} distinct problem(s)", show_lines=False)
        for col in ("problem", "first seen", "chunks", "cassette", "message"):
            table.add_column(col, overflow="fold")
        for p in report.problems:
            replay = "" if p.replayed is None else (" (replays)" if p.replayed else " (does NOT replay)")
            table.add_row(p.id, str(p.first_seen), str(p.chunks), f"{p.cassette or '-'}{replay}", p.message[:200])
        console.print(table)
    for line in report.flaky:
        console.print(f"flaky (not saved): {line}", style="yellow", highlight=False, soft_wrap=True)


def _command(args: argparse.Namespace, console: Console) -> int:
    if args.examples < 1:
        console.print("error: --examples must be at least 1", style="bold red")
        return 2
    try:
        report = run_fuzz(
            proxy_url=args.proxy_url,
            proxy_cmd=args.proxy_cmd,
            faults=args.reference_fault,
            examples=args.examples,
            seed=args.seed,
            out=args.out,
            time_budget=args.time_budget,
            database=None if args.no_database else args.database,
            backend=args.backend,
            profile=args.profile,
            upstream_port=args.upstream_port,
            responses_path=args.responses_path,
            api_key=args.api_key,
            shrink_seconds=args.shrink_seconds,
            progress=lambda line: console.print(line, highlight=False, soft_wrap=True),
        )
    except (UserError, ValueError) as exc:
        console.print(f"error: {exc}", style="bold red", highlight=False, soft_wrap=True)
        return 2
    print_report(report, console)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    return 1 if report.problems else 0


def assert_no_problems(**kwargs: Any) -> FuzzReport:
    """For a pytest test (or the plugin's ``--conformance-fuzz N`` item): run :func:`run_fuzz`
    with these keyword arguments and fail with one line per problem and its shrunk cassette."""
    report = run_fuzz(**kwargs)
    if report.problems:
        lines = [f"{p.id}: {p.message[:200]} -> {p.cassette}" for p in report.problems]
        raise AssertionError(f"fuzz found {len(report.problems)} problem(s) in {report.examples} examples:\n" + "\n".join(lines))
    return report
