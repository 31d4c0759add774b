"""The snapshot sink: each cassette's normalised exchange against ``DIR/<cassette>.json``.

``responses-conformance run --snapshot-dir DIR`` compares what the pytest plugin compares with
``--conformance-snapshots``: the exchanges of each cassette, normalised by
:func:`conformance.snapshots.normalise_exchanges`, with the file of that cassette. The file is
serialised, read, compared and written by syrupy's own JSON extension (the one the pytest items
use), so a snapshot accepted with ``pytest --snapshot-update`` matches under the CLI and the
other way round.

Each cassette gets one state in ``report.snapshots`` (the words of the pytest items, so the
verdict line reads the same under both): ``matched``; ``missing`` (no file) and ``different``,
which fail the run (exit 1) as syrupy fails a test, the second with a short unified diff; with
``--snapshot-update`` those two are written instead and become ``created`` and ``updated``.

Under pytest this sink does nothing: there the snapshot items are the way (one failing test per
cassette with syrupy's diff), and their states are already in ``report.snapshots``; comparing a
second time would report every snapshot twice. syrupy (and pytest, which
:mod:`conformance.snapshots` imports) is loaded only when ``--snapshot-dir`` is given.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from conformance.exceptions import ReportError
from conformance.report.sink import Output
from conformance.report.terminal import safe
from conformance.run_report import RunReport

if TYPE_CHECKING:
    from conformance.snapshots import ExchangeSnapshotExtension

__all__ = ["DIFF_LINES", "DIFF_WIDTH", "SHOWN_DIFFS", "diff_lines", "write"]

DIFF_LINES = 40  # at most this many lines of diff per cassette
DIFF_WIDTH = 80  # each diff line clipped to this many columns, around the first change
SHOWN_DIFFS = 5  # diffs of at most this many cassettes; the others are named
_STYLE = {"-": "red", "+": "green", "@": "cyan"}


def write(report: RunReport, out: Output) -> list[Path]:
    """Sink: compare (and with ``--snapshot-update`` write) each cassette's snapshot; print the
    diffs. The states go into ``report.snapshots`` for the verdict sink and the exit code; the
    snapshot files are not reports, so none is returned."""
    o = out.options
    if not o.snapshot_dir or report.runner == "pytest":
        return []
    from conformance.snapshots import ExchangeSnapshotExtension, normalise_exchanges

    directory = Path(o.snapshot_dir)
    extension = ExchangeSnapshotExtension()
    report.snapshot_dir = str(directory)
    diffs: dict[str, list[str]] = {}
    for result in report.results:
        if not result.exchanges:  # the run of this cassette failed before any exchange
            continue
        cassette = result.cassette_id
        path = directory / f"{cassette}.json"
        new = str(extension.serialize(normalise_exchanges(result.exchanges)))  # JSON: text
        try:
            old = extension.read_snapshot_data_from_location(snapshot_location=str(path), snapshot_name=cassette, session_id="")
        except UnicodeDecodeError:
            raise ReportError(f"--snapshot-dir: {path} is not UTF-8 text (not a snapshot this tool wrote)") from None
        if old is not None and extension.matches(serialized_data=new, snapshot_data=old):
            report.snapshots[cassette] = "matched"
        elif o.snapshot_update:
            _save(extension, path, cassette, new)
            report.snapshots[cassette] = "created" if old is None else "updated"
        elif old is None:
            report.snapshots[cassette] = "missing"
        else:
            report.snapshots[cassette] = "different"
            diffs[cassette] = diff_lines(str(old), new)
    _print(report, out, directory, diffs)
    return []


def _save(extension: ExchangeSnapshotExtension, path: Path, cassette: str, text: str) -> None:
    """Write ``text`` to ``path`` as syrupy writes a single-file snapshot."""
    from syrupy.data import Snapshot, SnapshotCollection

    path.parent.mkdir(parents=True, exist_ok=True)
    collection = SnapshotCollection(location=str(path))
    collection.add(Snapshot(name=cassette, data=text))
    extension.write_snapshot_collection(snapshot_collection=collection)


def _print(report: RunReport, out: Output, directory: Path, diffs: dict[str, list[str]]) -> None:
    def say(text: str, style: str = "") -> None:
        out.console.print(Text(safe(text), style=style), soft_wrap=True, highlight=False)

    missing = [c for c, state in report.snapshots.items() if state == "missing"]
    if missing:
        names = ", ".join(missing[:SHOWN_DIFFS]) + (f", … (+{len(missing) - SHOWN_DIFFS})" if len(missing) > SHOWN_DIFFS else "")
        say(f"no stored snapshot in {directory} for {len(missing)} cassette{'' if len(missing) == 1 else 's'} ({names}): "
            f"write {'it' if len(missing) == 1 else 'them'} with --snapshot-update", "bold red")
    for cassette, lines in list(diffs.items())[:SHOWN_DIFFS]:
        say(f"snapshot {cassette} differs from {directory / (cassette + '.json')} (accept with --snapshot-update):", "bold red")
        for line in lines:
            say(line, _STYLE.get(line[:1], "dim"))
    rest = list(diffs)[SHOWN_DIFFS:]
    if rest:
        say(f"… {len(rest)} more different snapshots: {', '.join(rest)}", "bold red")


def diff_lines(old: str, new: str, *, limit: int = DIFF_LINES, width: int = DIFF_WIDTH) -> list[str]:
    """The unified diff of two snapshot texts, at most ``limit`` lines of at most ``width``
    columns: a long line (one SSE event) is cut to a window around its first change, the same
    window for a removed line and the added line that replaces it."""
    diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), n=1, lineterm=""))[2:]
    out: list[str] = []
    i = 0
    while i < len(diff):
        line = diff[i]
        if line.startswith("-"):
            removed = _run(diff, i, "-")
            added = _run(diff, i + len(removed), "+")
            for k in range(max(len(removed), len(added))):
                a = removed[k][1:] if k < len(removed) else None
                b = added[k][1:] if k < len(added) else None
                start = _window(a, b, width)
                if a is not None:
                    out.append("-" + _clip(a, start, width))
                if b is not None:
                    out.append("+" + _clip(b, start, width))
            i += len(removed) + len(added)
        else:
            out.append(line if line.startswith("@@") else line[:1] + _clip(line[1:], 0, width))
            i += 1
    if len(out) > limit:
        out = [*out[: limit - 1], f"… {len(out) - limit + 1} more diff lines"]
    return out


def _run(diff: list[str], start: int, mark: str) -> list[str]:
    """The lines from ``start`` on that begin with ``mark`` (a block of removed or added lines)."""
    end = start
    while end < len(diff) and diff[end].startswith(mark):
        end += 1
    return diff[start:end]


def _window(a: str | None, b: str | None, width: int) -> int:
    """Where to start showing a line: at its beginning, or, for a removed and an added line that
    do not fit and differ only far to the right, 20 columns before their first difference."""
    if a is None or b is None or max(len(a), len(b)) < width:
        return 0
    first = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return 0 if first < width - 20 else first - 20


def _clip(text: str, start: int, width: int) -> str:
    """``text`` from ``start`` on (``…`` marks a cut), at most ``width - 1`` columns (the diff
    mark takes one)."""
    room = width - 1
    if len(text) <= room:
        return text
    piece = ("…" + text[start:]) if start > 0 else text
    return piece if len(piece) <= room else piece[: room - 1] + "…"
