"""The pytest plugin's shared run directory: private, never holding a secret, removed on every exit.

Results are shared between pytest-xdist workers through files; they are written redacted (see
:mod:`conformance._secrets`), so even a SIGKILL, which no process can clean up after, leaves no
key on disk. Normal exit, an exception, SIGTERM and SIGHUP all remove the directory.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from conformance._safety import atomic_write, strict_json_dumps
from conformance._secrets import redact_doc

__all__ = ["make_run_dir", "remove_run_dir", "write_shared_result"]

_dirs: set[Path] = set()
_installed = False


def remove_run_dir(path: Path | None) -> None:
    if path is None:
        return
    shutil.rmtree(path, ignore_errors=True)
    _dirs.discard(path)


def _remove_all() -> None:
    for path in list(_dirs):
        remove_run_dir(path)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _remove_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def make_run_dir() -> Path:
    """A new private (0700) temporary directory, removed at exit and on SIGTERM/SIGHUP."""
    global _installed
    path = Path(tempfile.mkdtemp(prefix="responses-conformance-"))
    _dirs.add(path)
    if not _installed:
        _installed = True
        atexit.register(_remove_all)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) in (signal.SIG_DFL, None):
                    signal.signal(sig, _on_signal)
    return path


def write_shared_result(path: Path, doc: Any) -> None:
    """A worker's result for the others: redacted, strict JSON, atomic."""
    atomic_write(path, strict_json_dumps(redact_doc(doc), indent=None))
