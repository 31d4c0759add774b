"""The state machine: one omission gives one finding, not a cascade."""

from __future__ import annotations

from test_checks import clean_events, encode, exchange, fired


def test_missing_indices_are_schema_findings_only() -> None:
    """llama.cpp's stream shape: no sequence_number, output_index, content_index or logprobs."""
    events = clean_events()
    for ev in events:
        for key in ("output_index", "content_index", "logprobs"):
            ev.pop(key, None)
    body = encode(events, renumber=False)
    assert fired(exchange(body)) == {"seq.present", "schema.event"}


def test_missing_content_index_follows_the_latest_part() -> None:
    events = clean_events()
    for ev in events:
        ev.pop("content_index", None)
    assert fired(exchange(encode(events))) == {"schema.event"}
