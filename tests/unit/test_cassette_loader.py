"""Bad cassettes are rejected with the file and the JSON path, never with a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.cassette import CassetteError, load_cassette, load_cassettes, request_match_key


def good(cid: str = "good-one", prompt: str = "Say hi") -> dict[str, Any]:
    return {
        "format": 1,
        "id": cid,
        "description": "minimal",
        "tags": ["S1"],
        "provenance": {"source": "authored", "backend": "openai"},
        "turns": [
            {
                "request": {"model": "m", "input": [{"role": "user", "content": prompt}], "stream": True},
                "upstream": [
                    {
                        "status": 200,
                        "headers": {"content-type": "text/event-stream"},
                        "chunks": [{"t_ms": 0, "data": "data: [DONE]\n\n"}, {"t_ms": 1, "b64": "/w=="}],
                    }
                ],
            }
        ],
    }


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), "utf-8")
    return path


def test_good_cassette_loads(tmp_path: Path) -> None:
    cassette = load_cassette(write(tmp_path, "good.json", good()))
    assert cassette.id == "good-one"
    assert cassette.turns[0].match_key == "Say hi"
    assert cassette.turns[0].upstream[0].chunks[1] == (1.0, b"\xff")


def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.json", '{"format": 1,\n  "id": }')
    with pytest.raises(CassetteError, match=r"broken\.json: invalid JSON at line 2 column 9"):
        load_cassette(path)


def test_schema_violation_names_json_path(tmp_path: Path) -> None:
    data = good()
    data["turns"][0]["upstream"][0]["status"] = "200"
    with pytest.raises(CassetteError, match=r"bad\.json: \$\.turns\[0\]\.upstream\[0\]\.status: '200' is not of type 'integer'"):
        load_cassette(write(tmp_path, "bad.json", data))


def test_missing_field(tmp_path: Path) -> None:
    data = good()
    del data["provenance"]
    with pytest.raises(CassetteError, match=r"\$: 'provenance' is a required property"):
        load_cassette(write(tmp_path, "bad.json", data))


def test_bad_base64(tmp_path: Path) -> None:
    data = good()
    data["turns"][0]["upstream"][0]["chunks"][1]["b64"] = "not base64!"
    with pytest.raises(CassetteError, match=r"chunks\[1\]\.b64: not valid base64"):
        load_cassette(write(tmp_path, "bad.json", data))


def test_not_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CassetteError, match=r"bin\.json: not UTF-8"):
        load_cassette(path)


def test_directory_load_collects_errors_and_keeps_going(tmp_path: Path) -> None:
    write(tmp_path, "a.json", good("first", "Prompt A"))
    write(tmp_path, "b.json", "garbage")
    write(tmp_path, "c.json", good("first", "Prompt C"))
    write(tmp_path, "d.json", good("other", "Prompt A"))
    write(tmp_path, "e.json", good("fine", "Prompt E"))
    cassettes, errors = load_cassettes([tmp_path])
    assert [c.id for c in cassettes] == ["first", "fine"]
    messages = [str(e) for e in errors]
    assert any("b.json: invalid JSON" in m for m in messages)
    assert any("c.json: $.id: 'first' is already used" in m for m in messages)
    assert any("d.json: $.turns: the upstream match key" in m for m in messages)


@pytest.mark.parametrize(
    ("request_body", "key"),
    [
        ({"input": "  plain string "}, "plain string"),
        ({"input": [{"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]}]}, "ab"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": "42"}]}, "42"),
        ({"input": []}, ""),
    ],
)
def test_match_key(request_body: dict[str, Any], key: str) -> None:
    assert request_match_key(request_body) == key
