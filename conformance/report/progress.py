"""Progress while exchanges run: a rich bar on a terminal, plain lines in CI, always on stderr.

On stderr so that the report (stdout) starts with the verdict, whatever the progress printed.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["ticker"]


@contextlib.contextmanager
def ticker(total: int, *, console: Console | None = None) -> Iterator[Callable[[str], None]]:
    """A ``tick(label)`` to call as each of ``total`` items finishes: a bar on a TTY, else one
    ``[n/N] label`` line per item (CI logs). Safe to call from several threads."""
    err = console or Console(stderr=True)
    lock = threading.Lock()
    if err.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("cassettes", total=total)

            def tick_bar(label: str) -> None:
                with lock:
                    progress.update(task, description=label[:40])
                    progress.advance(task)

            yield tick_bar
        return
    count = 0

    def tick_line(label: str) -> None:
        nonlocal count
        with lock:
            count += 1
            err.print(f"[{count}/{total}] {label}", highlight=False, markup=False, soft_wrap=True)
            with contextlib.suppress(AttributeError, OSError):
                err.file.flush()

    yield tick_line
    sys.stderr.flush()
