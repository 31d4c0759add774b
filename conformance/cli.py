"""``responses-conformance``: run the suite and print the report; list checks and faults.

Exit codes: 0 nothing at or above ``--fail-on``; 1 findings at or above it (or broken
cassettes); 2 the run could not happen (bad option, proxy unreachable, proxy command died, a
harness server thread raised) or a report file could not be written; 3 the harness itself failed
(a bug here: one line, a log file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table
from rich.text import Text

from conformance._crash import crash_line
from conformance.checks import PROFILES, REGISTRY
from conformance.commands import check as check_command
from conformance.commands import classes as classes_command
from conformance.commands import clients as clients_command
from conformance.commands import fuzz as fuzz_command
from conformance.commands import record as record_command
from conformance.commands import replay as replay_command
from conformance.commands import report as report_command
from conformance.commands import serve_upstream as serve_upstream_command
from conformance.exceptions import UserError
from conformance.options import OPTIONS, Option, output_settings_from, settings_from
from conformance.report.terminal import safe

__all__ = ["main"]


def _add_options(parser: argparse.ArgumentParser) -> None:
    for opt in OPTIONS:
        if opt.pytest_only:
            continue
        kwargs: dict[str, Any] = {"help": opt.help, "dest": opt.dest}
        if opt.kind == "flag":
            kwargs["action"] = "store_true"
        elif opt.kind == "list":
            kwargs.update(action="append", metavar=opt.metavar)
        else:
            kwargs.update(type={"int": int, "float": float}.get(opt.kind, str), metavar=opt.metavar)
            if opt.choices:
                kwargs["choices"] = list(opt.choices)
        parser.add_argument(opt.flag, **kwargs)


def _run(args: argparse.Namespace, console: Console) -> int:
    """Thin adapter: options -> :class:`Pipeline` -> results -> report -> sinks -> exit code."""
    from conformance.pipeline import Pipeline, exit_code
    from conformance.report.progress import ticker  # issue 10

    def get(opt: Option) -> Any:
        return getattr(args, opt.dest, None)

    try:
        pipeline = Pipeline(settings_from(get), output_settings_from(get), runner="cli")
    except UserError as exc:
        return _error(console, str(exc))
    try:
        pipeline.start()
        # issue 11: the fake upstream's URL first; a proxy that never calls it is one setup error
        from conformance.setup_check import announce_upstream, probe

        # its error line names the upstream URL itself
        probed = probe(pipeline) if pipeline.settings.setup_probe else {}
        announce_upstream(pipeline)
        # issue 10: progress on stderr; the verdict is the terminal sink (report.SINKS)
        rest = [c for c in pipeline.cassettes if c.id not in probed]
        with ticker(len(pipeline.cassettes)) as tick:
            for cid in probed:
                tick(cid)
            # issue 15: --concurrency cassettes at once, the results in cassette order
            ran = dict(zip((c.id for c in rest), pipeline.run_many(rest, done=lambda c: tick(c.id)), strict=True))
        results = [probed.get(c.id) or ran[c.id] for c in pipeline.cassettes]
    except UserError as exc:
        return _error(console, str(exc))
    finally:
        pipeline.stop()
    report = pipeline.report(results)
    pipeline.write(report, console)
    return exit_code(report, console)  # hook (issue 13): 3 when the harness itself failed


def _error(console: Console, message: str) -> int:
    """A user error: one line, exit 2."""
    console.print(Text(safe(f"error: {message}"), style="bold red"), soft_wrap=True)  # hook (issue 13)
    return 2


def _checks(console: Console, verbose: bool) -> int:
    table = Table(title="Checks", title_justify="left", show_lines=verbose)
    table.add_column("id", no_wrap=True)
    for profile in PROFILES:
        table.add_column(profile)
    table.add_column("classes")
    table.add_column("doc" if verbose else "summary")
    for spec in sorted(REGISTRY.values(), key=lambda s: s.id):
        sev = [(spec.severity(p).value if spec.severity(p) else "-") for p in PROFILES]  # type: ignore[union-attr]
        table.add_row(spec.id, *sev, " ".join(spec.classes), spec.doc if verbose else spec.summary)
    console.print(table)
    return 0


def _faults(console: Console) -> int:
    from conformance.reference import FAULTS

    table = Table(title="Reference bridge faults", title_justify="left")
    table.add_column("fault", no_wrap=True)
    table.add_column("class")
    table.add_column("fires")
    table.add_column("description")
    for name, fault in sorted(FAULTS.items()):
        table.add_row(name, fault.bug_class, " ".join(sorted(fault.expected_checks)), fault.description)
    console.print(table)
    return 0


# More subcommands: each entry adds its parsers to the subparsers object and returns
# {command name: handler(args, console) -> exit code}. Keep each command in its own module.
_EXTRA_COMMANDS: list[Callable[[Any], dict[str, Callable[[argparse.Namespace, Console], int]]]] = [
    record_command.register,
    check_command.register,
    report_command.register,
    replay_command.register,  # issue 10: `replay CASSETTE`
    fuzz_command.register,
    clients_command.register,
    serve_upstream_command.register,  # issue 11: `serve-upstream [CASSETTE…]`
    classes_command.register,  # issue 11: `classes [ID]`
]


def _version_line() -> str:
    """The installed distribution's version (the package's own when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    from conformance.run_report import VERSION

    try:
        return f"responses-conformance {version('responses-conformance')}"
    except PackageNotFoundError:
        return f"responses-conformance {VERSION}"


class _Parser(argparse.ArgumentParser):
    """No abbreviated options (``--profil`` is a typo, not ``--profile``), in every subcommand:
    argparse gives subparsers the parser class of their parent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """A usage mistake is one line on stderr and exit 2 (argparse adds a usage block first)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        prog="responses-conformance",
        description="Check an OpenAI Responses API server or proxy against recorded upstream traffic.",
    )
    parser.add_argument("-V", "--version", action="version", version=_version_line())  # issue 11
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the suite and print the report (default target: the embedded reference bridge)")
    _add_options(run)
    checks = sub.add_parser("checks", help="list every check with its severity per profile and its doc")
    checks.add_argument("-v", "--verbose", action="store_true", help="print each check's whole doc")
    sub.add_parser("faults", help="list the reference bridge's named faults")
    handlers: dict[str, Any] = {}
    for register in _EXTRA_COMMANDS:
        handlers.update(register(sub))
    args = parser.parse_args(argv)
    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console = Console(soft_wrap=False, width=max(console.width, 150))
    try:
        if args.command == "run":
            return _run(args, console)
        if args.command == "checks":
            return _checks(console, args.verbose)
        if args.command in handlers:
            return int(handlers[args.command](args, console))
        return _faults(console)
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except Exception as exc:  # hook (issue 13): the harness failed: one line, a log file, exit 3
        console.print(Text(crash_line(exc, f"responses-conformance {args.command}"), style="bold red"), soft_wrap=True)
        return 3


if __name__ == "__main__":
    sys.exit(main())
