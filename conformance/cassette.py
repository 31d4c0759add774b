"""Cassettes: load, validate against ``schemas/cassette.schema.json``, and save.

A malformed cassette is rejected at load with a :class:`CassetteError` that names the file and the
JSON path of the first problem, never with a traceback from deep inside the harness.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from conformance._safety import JSONFileError, read_json_file
from conformance.exceptions import CassetteError
from conformance.resources import cassettes_dir, schemas_dir
from conformance.schema import load_schemas

__all__ = [
    "Cassette",
    "CassetteError",
    "Interaction",
    "Turn",
    "chat_message_text",
    "load_cassette",
    "load_cassettes",
    "request_match_key",
]

MAX_CASSETTE_BYTES = 32 * 1024 * 1024


@dataclass
class Interaction:
    status: int
    headers: dict[str, str]
    chunks: list[tuple[float, bytes]]
    end: str = "clean"

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)


@dataclass
class Turn:
    index: int
    request: dict[str, Any]
    upstream: list[Interaction]
    match_key: str
    expect: dict[str, Any] = field(default_factory=dict)
    body: str | None = None

    @property
    def expected_error(self) -> dict[str, Any] | None:
        """``expect.error``: the non-2xx answer a correct proxy gives, or None."""
        err = self.expect.get("error")
        return err if isinstance(err, dict) else None

    @property
    def translation(self) -> dict[str, Any]:
        value = self.expect.get("translation")
        return value if isinstance(value, dict) else {}


@dataclass
class Cassette:
    id: str
    description: str
    tags: list[str]
    provenance: dict[str, Any]
    turns: list[Turn]
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return self.id


@cache
def file_validator(filename: str) -> jsonschema.protocols.Validator:
    """A validator for one of our file formats (``schemas/<filename>``), built once."""
    schema = json.loads((schemas_dir() / filename).read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def first_error(data: Any, filename: str) -> tuple[str, str, int] | None:
    """(JSON path, message, total count) of the first schema problem of ``data``, or None."""
    if load_schemas().is_valid(filename.removesuffix(".schema.json"), data):
        return None  # the compiled (and disk-cached) validator; jsonschema only to explain a no
    errors = sorted(file_validator(filename).iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if not errors:
        return None
    return _json_path(errors[0].absolute_path), errors[0].message, len(errors)


def _json_path(parts: Iterable[str | int]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _text_of(content: Any) -> str:
    """Text of a message's content: a string, or the text parts of a list, joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "".join(texts)
    return ""


def chat_message_text(message: Any) -> str:
    """Text of one Chat Completions message (what the fake upstream matches on)."""
    if not isinstance(message, dict):
        return ""
    return _text_of(message.get("content")).strip()


def request_match_key(request: dict[str, Any]) -> str:
    """The text the proxy's last upstream chat message should carry for this Responses request."""
    inp = request.get("input")
    if isinstance(inp, str):
        return inp.strip()
    if isinstance(inp, list) and inp:
        last = inp[-1]
        if isinstance(last, dict):
            if last.get("type") == "function_call_output":
                return _text_of(last.get("output")).strip()
            return _text_of(last.get("content")).strip()
    return ""


def _decode_chunk(chunk: dict[str, Any], where: str) -> tuple[float, bytes]:
    if "b64" in chunk:
        try:
            return float(chunk["t_ms"]), base64.b64decode(chunk["b64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CassetteError(f"{where}.b64: not valid base64 ({exc})") from None
    # surrogatepass: a lone surrogate in a chunk is replayed as the bytes it stands for, not a crash.
    return float(chunk["t_ms"]), str(chunk["data"]).encode("utf-8", "surrogatepass")


decode_chunk = _decode_chunk  # public: the harness reads the recorder's log chunks with it


def parse_cassette(data: Any, source: str = "<memory>", path: Path | None = None) -> Cassette:
    """Validate a decoded cassette document and build the model."""
    problem = first_error(data, "cassette.schema.json")
    if problem is not None:
        where, message, count = problem
        more = f" (and {count - 1} more problems)" if count > 1 else ""
        raise CassetteError(f"{source}: {where}: {message}{more}")
    turns = []
    for t_index, turn in enumerate(data["turns"]):
        interactions = []
        for i_index, inter in enumerate(turn["upstream"]):
            where = f"{source}: $.turns[{t_index}].upstream[{i_index}]"
            chunks = [
                _decode_chunk(c, f"{where}.chunks[{c_index}]") for c_index, c in enumerate(inter["chunks"])
            ]
            interactions.append(
                Interaction(
                    status=inter["status"],
                    headers=dict(inter["headers"]),
                    chunks=chunks,
                    end=inter.get("end", "clean"),
                )
            )
        expect = dict(turn.get("expect", {}))
        if not interactions:
            refusal = expect.get("error")
            if not isinstance(refusal, dict) or refusal.get("success_allowed"):
                raise CassetteError(
                    f"{source}: $.turns[{t_index}].upstream: empty, so the proxy must refuse the request; "
                    "give `expect.error` (without `success_allowed`)"
                )
            key = request_match_key(turn["request"]) if isinstance(turn["request"].get("input"), (str, list)) else ""
        else:
            key = turn.get("match", {}).get("last_message") or request_match_key(turn["request"])
            if not key:
                raise CassetteError(
                    f"{source}: $.turns[{t_index}]: cannot derive the upstream match key from the "
                    "request's last input item; give `match.last_message`"
                )
        turns.append(Turn(t_index, turn["request"], interactions, key, expect, turn.get("body")))
    return Cassette(
        id=data["id"],
        description=data["description"],
        tags=list(data["tags"]),
        provenance=dict(data["provenance"]),
        turns=turns,
        path=path,
        raw=data,
    )


def load_cassette(path: str | Path) -> Cassette:
    path = Path(path)
    try:
        data = read_json_file(path, limit=MAX_CASSETTE_BYTES, what="cassette")
    except JSONFileError as exc:
        raise CassetteError(str(exc)) from None
    return parse_cassette(data, str(path), path)


def cassette_files(directories: Iterable[str | Path] | None = None) -> list[Path]:
    return scan_cassette_files(directories)[0]


def scan_cassette_files(directories: Iterable[str | Path] | None = None) -> tuple[list[Path], list[CassetteError]]:
    """Every ``*.json`` below the directories, and one error per symlink loop or dangling symlink.

    Symlinked directories are followed once each; a link back to a directory already on the way
    is a loop and is named, not walked forever or skipped without a word.
    """
    dirs = [Path(d) for d in directories] if directories else [cassettes_dir()]
    files: list[Path] = []
    problems: list[CassetteError] = []

    def walk(d: Path, seen: frozenset[tuple[int, int]]) -> None:
        try:
            st = d.stat()
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            problems.append(CassetteError(f"{d}: cannot read the directory ({exc.strerror or exc})"))
            return
        here = seen | {(st.st_dev, st.st_ino)}
        sub: list[Path] = []
        for entry in entries:
            p = Path(entry.path)
            try:
                if entry.is_symlink():
                    target = os.readlink(p)
                    if not p.exists():
                        if entry.name.endswith(".json") or not Path(target).suffix:
                            problems.append(CassetteError(f"{p}: dangling symlink to {target}; skipped"))
                        continue
                    if p.is_dir():
                        tst = p.stat()
                        if (tst.st_dev, tst.st_ino) in here:
                            problems.append(CassetteError(f"{p}: symlink loop (points back to {target}); not followed"))
                            continue
                if entry.is_dir():
                    sub.append(p)
                elif entry.name.endswith(".json") and entry.is_file():
                    files.append(p)
            except OSError as exc:  # ELOOP on a link cycle between files, permissions
                problems.append(CassetteError(f"{p}: cannot be read ({exc.strerror or exc}); skipped"))
        for p in sub:
            walk(p, here)

    for d in dirs:
        if d.is_file():
            files.append(d)
        elif d.is_symlink() and not d.exists():
            problems.append(CassetteError(f"{d}: dangling symlink to {os.readlink(d)}"))
        elif d.is_dir():
            walk(d, frozenset())
    return files, problems


def load_cassettes(
    directories: Iterable[str | Path] | None = None,
) -> tuple[list[Cassette], list[CassetteError]]:
    """Load every ``*.json`` below the directories; bad ones come back as errors, not exceptions.

    Duplicate ids and turns whose upstream match keys collide are errors too: the fake upstream
    could not tell them apart.
    """
    cassettes: list[Cassette] = []
    ids: dict[str, Path | None] = {}
    keys: dict[str, str] = {}
    paths, errors = scan_cassette_files(directories)
    for path in paths:
        try:
            cassette = load_cassette(path)
        except CassetteError as exc:
            errors.append(exc)
            continue
        if cassette.id in ids:
            errors.append(CassetteError(f"{path}: $.id: {cassette.id!r} is already used by {ids[cassette.id]}"))
            continue
        own = [t.match_key for t in cassette.turns if t.match_key and t.upstream]
        clash = next((keys[k] for k in own if k in keys), None)
        if clash is not None:
            errors.append(
                CassetteError(
                    f"{path}: $.turns: the upstream match key (last message text) equals one in "
                    f"cassette {clash!r}; make the prompt unique or set `match.last_message`"
                )
            )
            continue
        if len(own) != len(set(own)):
            errors.append(CassetteError(f"{path}: $.turns: two turns have the same upstream match key; make each prompt unique"))
            continue
        ids[cassette.id] = path
        for key in own:
            keys[key] = cassette.id
        cassettes.append(cassette)
    return cassettes, errors
