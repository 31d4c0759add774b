"""Progress while exchanges run: a rich bar on a terminal, plain lines in CI, always on stderr.

On stderr so that the report (stdout) starts with the verdict, whatever the progress printed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["track"]

T = TypeVar("T")


def track(items: Sequence[T], label: Callable[[T], str], *, console: Console | None = None) -> Iterator[T]:
    """Yield ``items``; show a bar on a TTY, else one ``[n/N] label`` line per item (CI logs)."""
    err = console or Console(stderr=True)
    total = len(items)
    if err.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("cassettes", total=total)
            for item in items:
                progress.update(task, description=label(item)[:40])
                yield item
                progress.advance(task)
        return
    for n, item in enumerate(items, 1):
        err.print(f"[{n}/{total}] {label(item)}", highlight=False, markup=False, soft_wrap=True)
        err.file.flush() if hasattr(err.file, "flush") else None
        yield item
    sys.stderr.flush()
