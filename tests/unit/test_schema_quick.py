"""The quick-accept test in front of the compiled validators never accepts an invalid event."""

from __future__ import annotations

import pytest
from test_schemas import delta_event, examples, mutations

from conformance.schema import Schemas, _quick_validator


def test_quick_accepts_only_what_jsonschema_accepts() -> None:
    schemas = Schemas()
    accepted = rejected = 0
    for example in examples(schemas):
        quick = _quick_validator(schemas.document(f"events/{example['type']}"))
        if quick is None:
            continue
        for mutant in [example, *mutations(example)]:
            if quick(mutant):
                accepted += 1
                assert schemas._violations(f"events/{example['type']}", mutant) == [], mutant
            else:
                rejected += 1
    assert accepted > 100 and rejected > 1000, (accepted, rejected)


def test_the_plain_delta_takes_the_quick_path() -> None:
    schemas = Schemas()
    quick = _quick_validator(schemas.document("events/response.output_text.delta"))
    assert quick is not None
    assert quick(delta_event())
    assert not quick(delta_event(logprobs=[{"token": "a", "logprob": -1.0}])), "left to the compiler"
    assert schemas.validate_event(delta_event(logprobs=[{"token": "a", "logprob": -1.0}])) == []
    assert not quick(delta_event(output_index=True)) and not quick(delta_event(output_index=-1))
    assert _quick_validator(schemas.document("events/response.completed")) is None, "has a $ref"


@pytest.mark.slow  # 1,500 mutants through jsonschema
def test_cassette_files_fast_yes_agrees_with_jsonschema() -> None:
    """first_error trusts the compiled validator's yes: it must never accept a file jsonschema
    rejects (one-change mutants of a shipped cassette)."""
    import itertools

    from conformance.cassette import file_validator, load_cassettes

    schemas = Schemas()
    cassettes, _ = load_cassettes()
    raw = next(c.raw for c in cassettes if len(c.turns) > 1)
    slow = file_validator("cassette.schema.json")
    accepted = 0
    for mutant in itertools.islice(mutations(raw), 1500):
        if schemas.is_valid("cassette", mutant):
            accepted += 1
            assert next(iter(slow.iter_errors(mutant)), None) is None, mutant
    assert accepted > 10
    assert not schemas.is_valid("cassette", {**raw, "format": "one"})
