"""An on-disk cache of the compiled fast schema validators, so each is generated once per machine.

Generating a validator (schema bundle, fastjsonschema code generation, Python compile) costs
~12 ms per event type, ~0.8 s for all of them, again in every process and every xdist worker. The
cache keeps the compiled module code (``marshal``), keyed by a hash of every schema file, the
schema name, the code generator's version and the Python version: a changed schema or upgrade
simply misses.

Where: ``$RESPONSES_CONFORMANCE_CACHE_DIR`` if set (empty or ``off``: no disk cache), else
``$XDG_CACHE_HOME/responses-conformance/validators``, else ``~/.cache/responses-conformance/
validators``. Safe under concurrent workers: a file is written under a unique temporary name and
renamed into place (atomic on POSIX and Windows), so a reader sees a whole file or none. A file
that is truncated, corrupt or of another format fails its checksum and is rebuilt; a directory
that cannot be written leaves the cache in memory only. Like ``__pycache__``, the files hold code
this process runs: the directory is created with mode 0700, and one that belongs to someone else
or that others may write to is not used at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
import tempfile
from pathlib import Path
from types import CodeType

__all__ = ["CACHE_ENV", "ValidatorCache", "default_cache_dir"]

CACHE_ENV = "RESPONSES_CONFORMANCE_CACHE_DIR"
_MAGIC = b"responses-conformance validator 1\n"


def default_cache_dir() -> Path | None:
    """The cache directory the environment asks for; None when the disk cache is turned off."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip() in ("", "off") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "responses-conformance" / "validators"


def python_tag() -> str:
    """What compiled code depends on besides the source: the interpreter and marshal format."""
    return f"{sys.implementation.cache_tag}-m{marshal.version}"


class ValidatorCache:
    """Compiled code objects on disk, by key; every failure is a miss, never an error."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._trusted: bool | None = None
        self.hits = 0
        self.misses = 0
        self.writes = 0

    def path(self, key: str) -> Path | None:
        return self.directory / f"{key}.bin" if self.directory is not None else None

    def trusted(self) -> bool:
        """Whether code may be loaded from the directory: ours, and nobody else can write to it.

        A directory that does not exist yet is trusted (``store`` creates it with mode 0700).
        """
        if self._trusted is None:
            self._trusted = self.directory is not None and _private(self.directory)
        return self._trusted

    def load(self, key: str) -> CodeType | None:
        path = self.path(key)
        if path is None:
            return None
        if not self.trusted():
            self.misses += 1
            return None
        try:
            blob = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        code = _decode(blob)
        if code is None:
            self.misses += 1
            return None
        self.hits += 1
        return code

    def store(self, key: str, code: CodeType) -> None:
        path = self.path(key)
        if path is None or not self.trusted():
            return
        payload = marshal.dumps(code)
        blob = _MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(blob)
            os.replace(tmp, path)
            tmp = None
            self.writes += 1
        except OSError:
            pass  # read-only or full disk: the validator lives in memory for this process
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _private(directory: Path) -> bool:
    getuid = getattr(os, "getuid", None)
    try:
        st = directory.stat()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if getuid is None:  # pragma: no cover - Windows: per-user profile directories
        return True
    return st.st_uid == getuid() and not st.st_mode & 0o022


def _decode(blob: bytes) -> CodeType | None:
    if not blob.startswith(_MAGIC):
        return None
    digest, sep, payload = blob[len(_MAGIC) :].partition(b"\n")
    if not sep or hashlib.sha256(payload).hexdigest().encode() != digest:
        return None
    try:
        code = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None
