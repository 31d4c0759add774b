"""Defences against hostile input and fragile output: bounded JSON, safe text, strict JSON, atomic files.

Everything the harness reads comes, by assumption, from broken software. Python's own JSON
decoder and every recursive check crash with ``RecursionError`` on deep nesting, so documents are
measured with a flat scan first (:func:`json_depth`, linear, no recursion) and refused above
:data:`MAX_DEPTH`. Everything the harness writes must survive any string the proxy sent: lone
surrogates, control characters and terminal escape sequences (:func:`terminal_text`), NaN
(:func:`strict_json_dumps`), and a crash half way through writing (:func:`atomic_write`).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_MESSAGE_CHARS",
    "MAX_RAW_CHARS",
    "DepthError",
    "JSONFileError",
    "atomic_write",
    "cap_finding_text",
    "cap_value",
    "clip",
    "json_depth",
    "loads_bounded",
    "read_json_file",
    "strict_json_dumps",
    "terminal_text",
    "too_deep",
    "utf8_safe",
]

# Real Responses events and cassettes nest at most ~20 levels (a JSON schema inside a tool inside a
# response); 64 leaves room and keeps every recursive consumer far from Python's recursion limit.
MAX_DEPTH = 64
MAX_MESSAGE_CHARS = 2_000
MAX_RAW_CHARS = 4_000

_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.S)
_OPENERS = frozenset("[{")


class DepthError(ValueError):
    """A JSON document nests deeper than the limit; nothing recursive was attempted on it."""

    def __init__(self, depth: int, limit: int, offset: int) -> None:
        super().__init__(f"JSON nested more than {limit} levels deep (at character {offset}); not parsed")
        self.depth, self.limit, self.offset = depth, limit, offset


def json_depth(text: str | bytes, limit: int = MAX_DEPTH) -> tuple[int, int]:
    """(depth reached, offset where it passed ``limit`` or -1): a linear scan that skips strings.

    Counting brackets is cheap in C (``str.count``): a text with at most ``limit`` opening
    brackets cannot nest deeper, which spares the token scan for nearly every real event.
    """
    s = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if s.count("[") + s.count("{") <= limit:
        return 0, -1
    levels = _levels(s, limit)
    if levels is not None:
        return levels, -1
    return _token_depth(s, limit)


def _token_depth(s: str, limit: int) -> tuple[int, int]:
    """The scan of record: every string and bracket token in order (a string that never ends runs
    to the end of the text)."""
    depth = deepest = 0
    for m in _TOKENS.finditer(s):
        tok = m.group()
        if tok in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if depth > limit:
                    return depth, m.start()
        elif tok in ("]", "}"):
            depth -= 1
    return deepest, -1


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")


def _levels(s: str, limit: int) -> int | None:
    """The nesting depth of ``s`` when it is at most ``limit``, found in C: strings and every
    other character removed, then one level of empty pairs per pass. None when the brackets do
    not pair up that way (or nest deeper): the token scan then decides, and says where."""
    outside = _STRING.sub("", s)
    if '"' in outside:  # a string that never ends: the token scan reads it as the scan of record
        return None
    brackets = _NOT_BRACKET.sub("", outside)
    for level in range(limit + 1):
        if not brackets:
            return level
        fewer = _EMPTY_PAIR.sub("", brackets)  # one scan: one level (chained replaces took two)
        if fewer == brackets:
            return None
        brackets = fewer
    return None


def too_deep(text: str | bytes, limit: int = MAX_DEPTH) -> bool:
    return json_depth(text, limit)[1] >= 0


def loads_bounded(text: str | bytes, limit: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads`` that raises :class:`DepthError` (a ``ValueError``) instead of recursing deep."""
    depth, offset = json_depth(text, limit)
    if offset >= 0:
        raise DepthError(depth, limit, offset)
    try:
        return json.loads(text, **kwargs)
    except RecursionError:  # a limit above the interpreter's: still one clear error
        raise DepthError(limit + 1, limit, 0) from None


class JSONFileError(ValueError):
    """A JSON file that cannot be read, is over its size limit, is not UTF-8, nests too deep or is
    not JSON; the message is one line that names the file. Loaders re-raise it as their own error."""


def read_json_file(path: str | Path, *, limit: int, what: str = "file") -> Any:
    """The JSON document in ``path``: read at most ``limit`` bytes, decoded as UTF-8, parsed with
    the nesting bound. The one reader behind cassettes and expectation files."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise JSONFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > limit:
        raise JSONFileError(f"{path}: more than {limit} bytes, over the {what} limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return loads_bounded(text)
    except DepthError as exc:
        raise JSONFileError(f"{path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise JSONFileError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def clip(text: str, limit: int, what: str = "characters") -> str:
    """``text`` cut to about ``limit`` characters, with a note of how much was cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return f"{text[:limit]}… [{cut} more {what} cut]"


def cap_value(value: Any) -> Any:
    """A finding's expected/actual value: a long string cut (with a note); others as they are."""
    if isinstance(value, str) and len(value) > MAX_RAW_CHARS:
        return clip(value, MAX_RAW_CHARS)
    return value


def cap_finding_text(message: str, raw: str | None) -> tuple[str, str | None]:
    """A finding's message and raw excerpt within their caps, each noting what was cut."""
    if isinstance(message, str) and len(message) > MAX_MESSAGE_CHARS:
        message = clip(message, MAX_MESSAGE_CHARS)
    if isinstance(raw, str) and len(raw) > MAX_RAW_CHARS:
        raw = clip(raw, MAX_RAW_CHARS)
    return message, raw


_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_safe(text: str) -> str:
    """``text`` with each lone surrogate written as ``\\udXXX`` so it can be encoded as UTF-8."""
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# C0 controls except TAB and LF, DEL, C1 controls, and the bidi overrides that reorder what a
# reader sees. ESC (and with it every ANSI/OSC sequence) is among them.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def terminal_text(text: str, *, keep_newlines: bool = True) -> str:
    """Text from a proxy made safe to print: escapes and controls shown as ``\\x1b``, never acted on.

    The result is plain text (rich markup in it is never interpreted when printed as a ``Text``).
    """
    out = _UNSAFE.sub(_escape, text)
    if not keep_newlines:
        out = out.replace("\n", "\\n")
    return out


def _finite(value: Any, notes: list[str], path: str, depth: int) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(path)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if depth > 4 * MAX_DEPTH:  # report structures are shallow; anything deeper is dropped, not recursed
        return "[too deep]"
    if isinstance(value, dict):
        return {str(k): _finite(v, notes, f"{path}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, notes, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    return value


def strict_json_dumps(doc: Any, *, indent: int | None = 1, note_key: str | None = None) -> str:
    """Strict JSON text of ``doc``: NaN/Infinity become strings, lone surrogates ``\\udXXX`` escapes.

    With ``note_key`` and a dict ``doc``, the JSON paths of replaced numbers are listed under that key.
    """
    try:
        text = json.dumps(doc, ensure_ascii=False, indent=indent, allow_nan=False)
    except ValueError:
        notes: list[str] = []
        doc = _finite(doc, notes, "$", 0)
        if note_key and isinstance(doc, dict) and notes:
            doc[note_key] = {"non_finite_numbers_written_as_strings": notes[:100]}
        text = json.dumps(doc, ensure_ascii=False, indent=indent, allow_nan=False)
    return utf8_safe(text)


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename.

    A crash leaves either the old file or the new one, and no ``.tmp`` behind.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    raw = utf8_safe(data).encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, p)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise
    return p


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True

