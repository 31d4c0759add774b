"""The on-disk cache of compiled schema validators: reused, rebuilt when bad, never in the way."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from conformance.resources import schemas_dir
from conformance.schema import Schemas
from conformance.schema_cache import CACHE_ENV, ValidatorCache, default_cache_dir

DELTA: dict[str, Any] = {
    "type": "response.output_text.delta",
    "sequence_number": 3,
    "item_id": "msg_1",
    "output_index": 0,
    "content_index": 0,
    "delta": "hi",
    "logprobs": [],
}
BAD = {k: v for k, v in DELTA.items() if k != "item_id"}


def _judge(schemas: Schemas) -> tuple[list[Any], list[str]]:
    return schemas.validate_event(DELTA), [v.pointer for v in schemas.validate_event(BAD)]


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix == ".bin")


def test_a_second_process_reuses_the_cached_file(tmp_path: Path) -> None:
    first = Schemas(cache=ValidatorCache(tmp_path))
    assert _judge(first) == ([], ["/item_id"])
    assert (first.cache.hits, first.cache.writes) == (0, 1)
    (entry,) = _files(tmp_path)
    stamp = entry.stat().st_mtime_ns, entry.read_bytes()

    second = Schemas(cache=ValidatorCache(tmp_path))
    assert _judge(second) == ([], ["/item_id"])
    assert (second.cache.hits, second.cache.misses, second.cache.writes) == (1, 0, 0)
    assert (entry.stat().st_mtime_ns, entry.read_bytes()) == stamp, "a hit does not rewrite"


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: b"",
        lambda blob: blob[: len(blob) // 2],  # truncated
        lambda blob: b"garbage" + blob,  # another format
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),  # one bit flipped in the payload
    ],
    ids=["empty", "truncated", "foreign", "bitflip"],
)
def test_a_corrupt_cache_file_is_ignored_and_rebuilt(tmp_path: Path, damage: Any) -> None:
    _judge(Schemas(cache=ValidatorCache(tmp_path)))
    (entry,) = _files(tmp_path)
    good = entry.read_bytes()
    entry.write_bytes(damage(good))

    schemas = Schemas(cache=ValidatorCache(tmp_path))
    assert _judge(schemas) == ([], ["/item_id"])
    assert (schemas.cache.hits, schemas.cache.misses, schemas.cache.writes) == (0, 1, 1)
    assert entry.read_bytes() == good, "rebuilt in place"
    again = Schemas(cache=ValidatorCache(tmp_path))
    _judge(again)
    assert again.cache.hits == 1


def test_a_valid_file_with_the_wrong_code_is_rebuilt(tmp_path: Path) -> None:
    schemas = Schemas(cache=ValidatorCache(tmp_path))
    _judge(schemas)
    (entry,) = _files(tmp_path)
    schemas.cache.store(entry.stem, compile("x = 1", "<other>", "exec"))  # checksum fine, no validator
    again = Schemas(cache=ValidatorCache(tmp_path))
    assert _judge(again) == ([], ["/item_id"])
    assert again.cache.writes == 1


def test_an_unwritable_cache_falls_back_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    schemas = Schemas(cache=ValidatorCache(blocker / "validators"))
    assert _judge(schemas) == ([], ["/item_id"])
    assert schemas.cache.writes == 0
    assert schemas.validate_event(DELTA) == [] and schemas.cache.misses == 1, "compiled once"


def test_a_changed_schema_misses_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    root = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), root)
    _judge(Schemas(root, cache=ValidatorCache(cache)))
    target = root / "events" / "response.output_text.delta.schema.json"
    target.write_text(target.read_text() + "\n")  # same meaning, new bytes
    changed = Schemas(root, cache=ValidatorCache(cache))
    _judge(changed)
    assert (changed.cache.hits, changed.cache.writes) == (0, 1)
    assert len(_files(cache)) == 2


def test_concurrent_writers_leave_one_whole_file(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            assert _judge(Schemas(cache=ValidatorCache(tmp_path))) == ([], ["/item_id"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".bin"] == [], "no temporary left"
    reader = Schemas(cache=ValidatorCache(tmp_path))
    _judge(reader)
    assert reader.cache.hits == 1


def test_the_cache_directory_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "responses-conformance" / "validators"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    for off in ("", "off"):
        monkeypatch.setenv(CACHE_ENV, off)
        assert default_cache_dir() is None
    monkeypatch.setenv(CACHE_ENV, "off")
    schemas = Schemas()
    assert schemas.cache.directory is None
    assert _judge(schemas) == ([], ["/item_id"])


def test_a_directory_others_can_write_to_is_not_loaded_from(tmp_path: Path) -> None:
    _judge(Schemas(cache=ValidatorCache(tmp_path)))
    tmp_path.chmod(0o777)
    try:
        shared = Schemas(cache=ValidatorCache(tmp_path))
        assert _judge(shared) == ([], ["/item_id"])
        assert shared.cache.hits == 0 and not shared.cache.trusted()
    finally:
        tmp_path.chmod(0o700)
    assert ValidatorCache(tmp_path).trusted()
