"""The schemas in ``schemas/`` and their validator ``conformance.schema``.

The schemas are hand-written; these tests keep them honest: every file is a valid draft 2020-12
schema whose refs resolve, every ``required`` list equals the SDK model's non-Optional fields
(bar the documented deviations), events built by the SDK itself validate, and broken events give
violations at the right JSON pointers.
"""

from __future__ import annotations

import copy
import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import fastjsonschema
import jsonschema
import pytest
import referencing
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseError,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseOutputText,
    ResponseQueuedEvent,
    ResponseReasoningItem,
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseRefusalDeltaEvent,
    ResponseRefusalDoneEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses import response_content_part_added_event as content_part_added
from openai.types.responses import response_output_text as output_text
from openai.types.responses import response_reasoning_item as reasoning_item
from openai.types.responses import response_reasoning_summary_part_added_event as summary_part
from openai.types.responses import response_reasoning_summary_part_done_event as summary_part_done
from openai.types.responses import response_text_delta_event as text_delta
from openai.types.responses import response_text_done_event as text_done
from openai.types.responses import response_usage as usage
from pydantic import BaseModel, TypeAdapter
from referencing.jsonschema import DRAFT202012

from conformance.resources import package_root, schemas_dir
from conformance.schema import SCHEMA_BASE_URI, Schemas, SchemaViolation, load_schemas

SCHEMAS_DIR = schemas_dir()
SCHEMA_FILES = sorted(SCHEMAS_DIR.rglob("*.schema.json"))
CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "captures" / "codex-0.169.0"


class Deviation(NamedTuple):
    """A field the SDK requires that a schema does not (or the reverse), and why."""

    not_required: frozenset[str]
    also_required: frozenset[str]
    reason: str


# Every deliberate difference between a schema's `required` and the SDK model's required fields,
# keyed by (schema name, JSON pointer of the object schema). Mirrored in schemas/README.md.
DEVIATIONS: dict[tuple[str, str], Deviation] = {
    ("events/error", ""): Deviation(
        not_required=frozenset({"message"}),
        also_required=frozenset(),
        reason="Open Responses nests the error in an `error` object; openai-python and openai-node "
        "raise APIError on a top-level `error` key before building any model, so that shape is "
        "handled, not broken. The schema requires `message` or `error` (anyOf).",
    ),
}

# Event types with a schema that the SDK's ResponseStreamEvent union does not have.
OPEN_RESPONSES_ONLY_EVENTS = frozenset({"response.reasoning.delta", "response.reasoning.done"})


def sdk_event_models() -> list[type[BaseModel]]:
    union = typing.get_args(ResponseStreamEvent)[0]
    return list(typing.get_args(union))


def output_item_models() -> list[type[BaseModel]]:
    union = typing.get_args(Response.model_fields["output"].annotation)[0]
    return list(typing.get_args(typing.get_args(union)[0]))


def type_literal(model: type[BaseModel]) -> str:
    value: str = typing.get_args(model.model_fields["type"].annotation)[0]
    return value


def sdk_required(model: type[BaseModel]) -> set[str]:
    return {
        field.alias or name for name, field in model.model_fields.items() if field.is_required()
    }


def sdk_fields(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def cross_checked() -> Iterator[tuple[str, str, type[BaseModel]]]:
    """(schema name, pointer to the object schema, SDK model) for every model the schemas mirror."""
    for model in sdk_event_models():
        yield f"events/{type_literal(model)}", "", model
    for model in output_item_models():
        yield f"items/{type_literal(model)}", "", model
    yield "response", "", Response
    yield "usage", "", ResponseUsage
    yield "usage", "/$defs/input_tokens_details", usage.InputTokensDetails
    yield "usage", "/$defs/output_tokens_details", usage.OutputTokensDetails
    yield "error", "", ResponseError
    yield "parts/output_text", "", ResponseOutputText
    yield "parts/output_text", "/$defs/logprob", output_text.Logprob
    yield "parts/output_text", "/$defs/top_logprob", output_text.LogprobTopLogprob
    for event, module in (
        ("response.output_text.delta", text_delta),
        ("response.output_text.done", text_done),
    ):
        yield f"events/{event}", "/properties/logprobs/items", module.Logprob
        yield (
            f"events/{event}",
            "/properties/logprobs/items/properties/top_logprobs/items",
            module.LogprobTopLogprob,
        )
    yield "parts/refusal", "", ResponseOutputRefusal
    yield "parts/reasoning_text", "", reasoning_item.Content
    yield "parts/reasoning_text", "", content_part_added.PartReasoningText
    yield "parts/summary_text", "", reasoning_item.Summary
    yield "parts/summary_text", "", summary_part.Part
    for model in (
        output_text.AnnotationFileCitation,
        output_text.AnnotationURLCitation,
        output_text.AnnotationContainerFileCitation,
        output_text.AnnotationFilePath,
    ):
        yield "annotation", f"/$defs/{type_literal(model)}", model


CROSS_CHECKED = list(cross_checked())


def at_pointer(document: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        document = document[token.replace("~1", "/").replace("~0", "~")]
    return document


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return load_schemas()


# ---------------------------------------------------------------- the files themselves


def test_schemas_dir_is_the_checkout() -> None:
    assert package_root() == Path(__file__).resolve().parents[2]
    assert package_root() / "schemas" == SCHEMAS_DIR
    assert len(SCHEMA_FILES) > 90


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.relative_to(SCHEMAS_DIR).as_posix())
def test_file_is_a_draft_2020_12_schema_with_id_mirroring_its_path(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == SCHEMA_BASE_URI + path.relative_to(SCHEMAS_DIR).as_posix()
    assert document.get("title") and document.get("description")


def walk(node: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            yield from walk(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{pointer}/{index}")


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.relative_to(SCHEMAS_DIR).as_posix())
def test_every_ref_resolves_and_stands_alone(path: Path, schemas: Schemas) -> None:
    document = json.loads(path.read_text("utf-8"))
    resolver = schemas.registry().resolver(base_uri=document["$id"])
    for pointer, node in walk(document):
        if isinstance(node.get("$ref"), str):
            resolver.lookup(node["$ref"])  # raises when it does not resolve
            siblings = set(node) - {"$ref", "title", "description", "$comment"}
            assert not siblings, f"{pointer}: fastjsonschema ignores {sorted(siblings)} beside $ref"
        unsupported = set(node) & {
            "prefixItems",
            "unevaluatedProperties",
            "unevaluatedItems",
            "$dynamicRef",
        }
        assert not unsupported, f"{pointer}: fastjsonschema does not know {sorted(unsupported)}"


def test_bundles_are_self_contained(schemas: Schemas) -> None:
    for name in ("events/response.completed", "events/error", "response", "items/message"):
        bundle = schemas.bundle(name)
        refs = [node["$ref"] for _, node in walk(bundle) if isinstance(node.get("$ref"), str)]
        assert refs and all(ref.startswith("#/$defs/") for ref in refs), refs
        resolver = referencing.Registry().with_resource(
            "urn:bundle", DRAFT202012.create_resource(bundle)
        )
        for ref in refs:
            resolver.resolver("urn:bundle").lookup(ref)


# ---------------------------------------------------------------- cross-check with the SDK


def test_every_sdk_event_type_has_a_schema(schemas: Schemas) -> None:
    sdk_types = {type_literal(model) for model in sdk_event_models()}
    assert len(sdk_types) == len(sdk_event_models()) >= 59
    assert schemas.known_event_types() == sdk_types | OPEN_RESPONSES_ONLY_EVENTS
    assert not OPEN_RESPONSES_ONLY_EVENTS & sdk_types


def test_every_output_item_type_has_a_schema(schemas: Schemas) -> None:
    item_types = {type_literal(model) for model in output_item_models()}
    assert {
        name.split("/", 1)[1] for name in schemas.names() if name.startswith("items/")
    } == item_types
    assert set(schemas.document("output_item")["properties"]["type"]["enum"]) == item_types


@pytest.mark.parametrize(
    "name", sorted({f"events/{t}" for t in load_schemas().known_event_types()})
)
def test_event_schema_type_const_matches_file_name(name: str, schemas: Schemas) -> None:
    document = schemas.document(name)
    assert document["properties"]["type"]["const"] == name.removeprefix("events/")
    assert document["properties"]["sequence_number"] == {
        "type": "integer",
        "minimum": 0,
        "description": document["properties"]["sequence_number"]["description"],
    }
    assert {"type", "sequence_number"} <= set(document["required"])
    assert document["additionalProperties"] is True


@pytest.mark.parametrize(
    ("name", "pointer", "model"),
    CROSS_CHECKED,
    ids=[f"{name}{pointer}:{model.__name__}" for name, pointer, model in CROSS_CHECKED],
)
def test_required_fields_match_the_sdk(
    name: str, pointer: str, model: type[BaseModel], schemas: Schemas
) -> None:
    schema = at_pointer(schemas.document(name), pointer)
    expected = sdk_required(model)
    deviation = DEVIATIONS.get((name, pointer))
    if deviation is not None:
        expected = (expected - deviation.not_required) | deviation.also_required
    required = schema.get("required", [])
    assert set(required) == expected
    assert len(required) == len(set(required))
    assert not set(required) - set(schema["properties"]), "required but not described"
    if (
        "type" in model.model_fields
        and typing.get_origin(model.model_fields["type"].annotation) is typing.Literal
    ):
        assert schema["properties"]["type"].get("const") == type_literal(model)


def test_listed_deviations_are_real_and_explained(schemas: Schemas) -> None:
    """A deviation that no longer differs from the SDK must be removed from the list."""
    models = {(name, pointer): model for name, pointer, model in CROSS_CHECKED}
    for (name, pointer), deviation in DEVIATIONS.items():
        model = models[(name, pointer)]
        required = sdk_required(model)
        assert deviation.reason.strip()
        assert deviation.not_required or deviation.also_required
        assert deviation.not_required <= required, (
            f"{name}: SDK does not require {deviation.not_required}"
        )
        assert not deviation.also_required & required, (
            f"{name}: SDK already requires {deviation.also_required}"
        )
        schema_required = set(at_pointer(schemas.document(name), pointer)["required"])
        assert not deviation.not_required & schema_required
        assert deviation.also_required <= schema_required


def test_schema_properties_are_sdk_fields_or_documented(schemas: Schemas) -> None:
    """Catches typos in property names: every property is an SDK field, or listed here."""
    extra_ok = {
        "obfuscation",  # Open Responses: padding on delta events
        "error",  # events/error: the Open Responses nested shape
    }
    for name, pointer, model in CROSS_CHECKED:
        properties = set(at_pointer(schemas.document(name), pointer)["properties"])
        unknown = properties - sdk_fields(model) - extra_ok
        assert not unknown, f"{name}{pointer}: {sorted(unknown)} are not fields of {model.__name__}"


# ---------------------------------------------------------------- valid events


def message_item(status: str = "completed", text: str = "Hello") -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_1",
        type="message",
        role="assistant",
        status=status,  # type: ignore[arg-type]
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def function_call_item() -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id="fc_1",
        type="function_call",
        call_id="call_1",
        name="get_weather",
        arguments='{"city":"Paris"}',
        status="completed",
    )


def reasoning() -> ResponseReasoningItem:
    return ResponseReasoningItem(
        id="rs_1",
        type="reasoning",
        summary=[reasoning_item.Summary(type="summary_text", text="Thinking.")],
        encrypted_content="gAAA",
    )


def response(
    status: str = "in_progress", output: list[Any] | None = None, with_usage: bool = False
) -> Response:
    return Response(
        id="resp_1",
        object="response",
        created_at=1_700_000_000,
        model="gpt-test",
        status=status,  # type: ignore[arg-type]
        output=output or [],
        parallel_tool_calls=True,
        tool_choice="auto",
        tools=[],
        usage=ResponseUsage(
            input_tokens=10,
            input_tokens_details=usage.InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
            output_tokens=5,
            output_tokens_details=usage.OutputTokensDetails(reasoning_tokens=0),
            total_tokens=15,
        )
        if with_usage
        else None,
    )


def sdk_built_events() -> list[BaseModel]:
    done = [reasoning(), message_item(), function_call_item()]
    return [
        ResponseCreatedEvent(type="response.created", sequence_number=0, response=response()),
        ResponseQueuedEvent(type="response.queued", sequence_number=0, response=response("queued")),
        ResponseInProgressEvent(
            type="response.in_progress", sequence_number=1, response=response()
        ),
        ResponseOutputItemAddedEvent(
            type="response.output_item.added",
            sequence_number=2,
            output_index=0,
            item=message_item("in_progress", ""),
        ),
        ResponseContentPartAddedEvent(
            type="response.content_part.added",
            sequence_number=3,
            item_id="msg_1",
            output_index=0,
            content_index=0,
            part=ResponseOutputText(type="output_text", text="", annotations=[]),
        ),
        ResponseTextDeltaEvent(
            type="response.output_text.delta",
            sequence_number=4,
            item_id="msg_1",
            output_index=0,
            content_index=0,
            delta="Hello",
            logprobs=[],
        ),
        ResponseTextDoneEvent(
            type="response.output_text.done",
            sequence_number=5,
            item_id="msg_1",
            output_index=0,
            content_index=0,
            text="Hello",
            logprobs=[],
        ),
        ResponseContentPartDoneEvent(
            type="response.content_part.done",
            sequence_number=6,
            item_id="msg_1",
            output_index=0,
            content_index=0,
            part=ResponseOutputText(type="output_text", text="Hello", annotations=[]),
        ),
        ResponseRefusalDeltaEvent(
            type="response.refusal.delta",
            sequence_number=7,
            item_id="msg_1",
            output_index=0,
            content_index=1,
            delta="No",
        ),
        ResponseRefusalDoneEvent(
            type="response.refusal.done",
            sequence_number=8,
            item_id="msg_1",
            output_index=0,
            content_index=1,
            refusal="No",
        ),
        ResponseOutputItemDoneEvent(
            type="response.output_item.done", sequence_number=9, output_index=0, item=message_item()
        ),
        ResponseOutputItemAddedEvent(
            type="response.output_item.added",
            sequence_number=10,
            output_index=1,
            item=function_call_item(),
        ),
        ResponseFunctionCallArgumentsDeltaEvent(
            type="response.function_call_arguments.delta",
            sequence_number=11,
            item_id="fc_1",
            output_index=1,
            delta='{"ci',
        ),
        ResponseFunctionCallArgumentsDoneEvent(
            type="response.function_call_arguments.done",
            sequence_number=12,
            item_id="fc_1",
            output_index=1,
            arguments='{"city":"Paris"}',
        ),
        ResponseOutputItemDoneEvent(
            type="response.output_item.done", sequence_number=13, output_index=2, item=reasoning()
        ),
        ResponseReasoningSummaryPartAddedEvent(
            type="response.reasoning_summary_part.added",
            sequence_number=14,
            item_id="rs_1",
            output_index=2,
            summary_index=0,
            part=summary_part.Part(type="summary_text", text=""),
        ),
        ResponseReasoningSummaryTextDeltaEvent(
            type="response.reasoning_summary_text.delta",
            sequence_number=15,
            item_id="rs_1",
            output_index=2,
            summary_index=0,
            delta="Thinking.",
        ),
        ResponseReasoningSummaryTextDoneEvent(
            type="response.reasoning_summary_text.done",
            sequence_number=16,
            item_id="rs_1",
            output_index=2,
            summary_index=0,
            text="Thinking.",
        ),
        ResponseReasoningSummaryPartDoneEvent(
            type="response.reasoning_summary_part.done",
            sequence_number=17,
            item_id="rs_1",
            output_index=2,
            summary_index=0,
            part=summary_part_done.Part(type="summary_text", text="Thinking."),
        ),
        ResponseCompletedEvent(
            type="response.completed",
            sequence_number=18,
            response=response("completed", done, with_usage=True),
        ),
        ResponseIncompleteEvent(
            type="response.incomplete",
            sequence_number=18,
            response=response("incomplete", done, with_usage=True),
        ),
        ResponseFailedEvent(
            type="response.failed",
            sequence_number=18,
            response=response("failed").model_copy(
                update={"error": ResponseError(code="server_error", message="upstream died")}
            ),
        ),
        ResponseErrorEvent(
            type="error",
            sequence_number=19,
            message="upstream died",
            code="server_error",
            param=None,
        ),
    ]


SDK_BUILT = sdk_built_events()


@pytest.mark.parametrize("model", SDK_BUILT, ids=[f"{i}:{m.type}" for i, m in enumerate(SDK_BUILT)])  # type: ignore[attr-defined]
def test_events_built_by_the_sdk_validate(model: BaseModel, schemas: Schemas) -> None:
    event = model.model_dump(mode="json")
    assert schemas.validate_event(event) == []
    sparse = model.model_dump(mode="json", exclude_unset=True, by_alias=True)
    assert schemas.validate_event(sparse) == []


def test_sdk_strict_validation_agrees_on_the_examples() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    for model in SDK_BUILT:
        adapter.validate_python(model.model_dump(mode="json"))


def test_open_responses_shapes_validate(schemas: Schemas) -> None:
    base = {"item_id": "rs_1", "output_index": 0, "content_index": 0}
    assert (
        schemas.validate_event(
            {"type": "response.reasoning.delta", "sequence_number": 1, **base, "delta": "x"}
        )
        == []
    )
    assert (
        schemas.validate_event(
            {"type": "response.reasoning.done", "sequence_number": 2, **base, "text": "x"}
        )
        == []
    )
    nested_error = {
        "type": "error",
        "sequence_number": 3,
        "error": {"type": "server_error", "code": None, "message": "boom", "param": None},
    }
    assert schemas.validate_event(nested_error) == []
    annotation = {
        "type": "response.output_text.annotation.added",
        "sequence_number": 4,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "annotation_index": 0,
        "annotation": {
            "type": "url_citation",
            "url": "https://x",
            "title": "x",
            "start_index": 0,
            "end_index": 1,
        },
    }
    assert schemas.validate_event(annotation) == []


def capture_events() -> list[dict[str, Any]]:
    events = []
    for path in sorted(CAPTURES.glob("*-response.sse")):
        for line in path.read_text("utf-8").splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[len("data: ") :]))
    return events


@pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared/captures not beside the checkout")
def test_streams_codex_accepted_validate(schemas: Schemas) -> None:
    events = capture_events()
    assert len(events) > 50
    for event in events:
        assert schemas.validate_event(event) == [], event["type"]


# ---------------------------------------------------------------- invalid events


def delta_event(**changes: Any) -> dict[str, Any]:
    event = SDK_BUILT[5].model_dump(mode="json")
    assert event["type"] == "response.output_text.delta"
    event.update(changes)
    return event


def event_of(type_: str) -> dict[str, Any]:
    return next(copy.deepcopy(m.model_dump(mode="json")) for m in SDK_BUILT if m.type == type_)  # type: ignore[attr-defined]


def test_missing_sequence_number(schemas: Schemas) -> None:
    event = delta_event()
    del event["sequence_number"]
    assert schemas.validate_event(event) == [
        SchemaViolation(
            "/sequence_number",
            "required property 'sequence_number' is missing",
            "events/response.output_text.delta.schema.json#/required",
        )
    ]


def test_created_at_missing_inside_response_created(schemas: Schemas) -> None:
    event = event_of("response.created")
    del event["response"]["created_at"]
    assert schemas.validate_event(event) == [
        SchemaViolation(
            "/response/created_at",
            "required property 'created_at' is missing",
            "response.schema.json#/required",
        )
    ]


def test_message_item_without_status(schemas: Schemas) -> None:
    event = event_of("response.output_item.added")
    del event["item"]["status"]
    assert schemas.validate_event(event) == [
        SchemaViolation(
            "/item/status",
            "required property 'status' is missing",
            "items/message.schema.json#/required",
        )
    ]


def test_output_text_part_without_annotations(schemas: Schemas) -> None:
    event = event_of("response.content_part.added")
    del event["part"]["annotations"]
    assert schemas.validate_event(event) == [
        SchemaViolation(
            "/part/annotations",
            "required property 'annotations' is missing",
            "parts/output_text.schema.json#/required",
        )
    ]
    completed = event_of("response.completed")
    del completed["response"]["output"][1]["content"][0]["annotations"]
    assert [v.pointer for v in schemas.validate_event(completed)] == [
        "/response/output/1/content/0/annotations"
    ]


def test_wrong_type_const(schemas: Schemas) -> None:
    violations = schemas.validate(
        "events/response.output_text.delta", delta_event(type="response.output_text.deltas")
    )
    assert violations == [
        SchemaViolation(
            "/type",
            '"response.output_text.deltas" is not "response.output_text.delta"',
            "events/response.output_text.delta.schema.json#/properties/type/const",
        )
    ]


def test_unknown_item_type_is_a_violation(schemas: Schemas) -> None:
    event = event_of("response.output_item.added")
    event["item"]["type"] = "function"
    (violation,) = schemas.validate_event(event)
    assert violation.pointer == "/item/type"
    assert violation.schema_path == "output_item.schema.json#/properties/type/enum"


def test_usage_without_cache_write_tokens(schemas: Schemas) -> None:
    event = event_of("response.completed")
    del event["response"]["usage"]["input_tokens_details"]["cache_write_tokens"]
    assert schemas.validate_event(event) == [
        SchemaViolation(
            "/response/usage/input_tokens_details/cache_write_tokens",
            "required property 'cache_write_tokens' is missing",
            "usage.schema.json#/$defs/input_tokens_details/required",
        )
    ]


def test_wrong_types_and_values_anywhere(schemas: Schemas) -> None:
    event = delta_event(sequence_number=-1, output_index="0", delta=None)
    assert schemas.validate_event(event) == [
        SchemaViolation(
            "/delta",
            "null is not of type string",
            "events/response.output_text.delta.schema.json#/properties/delta/type",
        ),
        SchemaViolation(
            "/output_index",
            '"0" is not of type integer',
            "events/response.output_text.delta.schema.json#/properties/output_index/type",
        ),
        SchemaViolation(
            "/sequence_number",
            "-1 is less than the minimum of 0",
            "events/response.output_text.delta.schema.json#/properties/sequence_number/minimum",
        ),
    ]


def test_nullable_field_reports_the_inner_error(schemas: Schemas) -> None:
    event = event_of("response.failed")
    event["response"]["error"] = {"message": "boom"}
    assert schemas.validate_event(event) == [
        SchemaViolation(
            "/response/error/code",
            "required property 'code' is missing",
            "error.schema.json#/required",
        )
    ]


def test_error_event_needs_a_message_somewhere(schemas: Schemas) -> None:
    (violation,) = schemas.validate_event({"type": "error", "sequence_number": 0})
    assert violation.pointer == ""
    assert violation.schema_path == "events/error.schema.json#/anyOf"
    assert "'message'" in violation.message and "'error'" in violation.message


def test_unknown_types_and_non_objects_are_left_to_other_checks(schemas: Schemas) -> None:
    assert schemas.validate_event({"type": "response.vendor.thing", "x": 1}) == []
    assert schemas.validate_event({"no": "type"}) == []
    assert schemas.validate_event({"type": ["response.created"]}) == []
    assert schemas.validate_event([1, 2]) == []  # type: ignore[arg-type]
    assert schemas.has_event_type("response.created")
    assert not schemas.has_event_type("response.vendor.thing")


def test_violations_are_sorted_and_deterministic(schemas: Schemas) -> None:
    event = event_of("response.completed")
    for key in ("id", "model", "tools"):
        del event["response"][key]
    del event["response"]["output"][0]["summary"]
    first = schemas.validate_event(event)
    assert first == sorted(first)
    assert first == Schemas().validate_event(event)
    assert [v.pointer for v in first] == [
        "/response/id",
        "/response/model",
        "/response/output/0/summary",
        "/response/tools",
    ]


def test_validate_by_name(schemas: Schemas) -> None:
    assert schemas.validate("items/message", message_item().model_dump(mode="json")) == []
    assert schemas.validate("usage", {"input_tokens": 1}) != []
    assert [v.pointer for v in schemas.validate("response", {})][:2] == ["/created_at", "/id"]
    with pytest.raises(KeyError):
        schemas.validate("no/such/schema", {})


# ---------------------------------------------------------------- fast path == slow path


def minimal_instance(schema: dict[str, Any], schemas: Schemas) -> Any:
    """A small instance of an event schema's non-$ref properties (refs get SDK-built examples)."""
    if "anyOf" in schema:
        return None
    out: dict[str, Any] = {}
    for name in schema["required"]:
        prop = schema["properties"][name]
        if "const" in prop:
            out[name] = prop["const"]
        elif "$ref" in prop or "anyOf" in prop:
            return None
        else:
            kind = prop.get("type", "string")
            kind = kind[0] if isinstance(kind, list) else kind
            out[name] = {
                "string": "x",
                "integer": 0,
                "number": 0.5,
                "array": [],
                "object": {},
                "boolean": True,
            }[kind]
    return out


def examples(schemas: Schemas) -> list[dict[str, Any]]:
    built = [m.model_dump(mode="json") for m in SDK_BUILT]
    made = [
        minimal_instance(schemas.document(f"events/{t}"), schemas)
        for t in sorted(schemas.known_event_types())
    ]
    return built + [e for e in made if e is not None]


REPLACEMENTS: tuple[Any, ...] = (None, "x", -1, 1.5, [], {}, True, [{}])


def mutations(event: Any, path: tuple[Any, ...] = ()) -> Iterator[Any]:
    """Copies of ``event`` with one value removed or replaced, at every depth."""
    if isinstance(event, dict):
        for key, value in event.items():
            if key == "type" and not path:
                continue
            without = {k: v for k, v in event.items() if k != key}
            yield without
            for replacement in REPLACEMENTS:
                yield {**event, key: replacement}
            for changed in mutations(value, (*path, key)):
                yield {**event, key: changed}
    elif isinstance(event, list):
        for index, value in enumerate(event):
            for changed in mutations(value, (*path, index)):
                yield [*event[:index], changed, *event[index + 1 :]]


@pytest.mark.slow
def test_fast_path_agrees_with_jsonschema(schemas: Schemas) -> None:
    """The compiled validator rejects exactly what jsonschema rejects, and the remembered slow
    path gives what a fresh one gives, on thousands of one-change mutants of valid events."""
    fresh = Schemas()
    checked = 0
    for example in examples(schemas):
        assert schemas.validate_event(example) == [], example["type"]
        name = f"events/{example['type']}"
        fast = schemas._fast_validator(name)
        for mutant in mutations(example):
            expected = fresh._violations(name, mutant)
            try:
                fast(mutant)
                fast_rejects = False
            except fastjsonschema.JsonSchemaValueException:
                fast_rejects = True
            assert fast_rejects == bool(expected), (name, mutant, expected)
            assert schemas.validate_event(mutant) == expected, (name, mutant)
            checked += 1
    assert checked > 5000


def test_remembered_violations_depend_only_on_what_they_mention(schemas: Schemas) -> None:
    fresh = Schemas()
    base = delta_event()
    del base["sequence_number"]
    variants = [
        {**base, "delta": "a", "item_id": "msg_1"},
        {**base, "delta": "something else", "item_id": "msg_2", "output_index": 7},
        {**base, "output_index": -1},
        {**base, "output_index": -2},
        {**base, "output_index": True},
        {**base, "output_index": 1.5},
        {**base, "delta": 5},
        {**base, "delta": 6},
    ]
    for event in variants * 2:
        assert schemas.validate_event(event) == fresh._violations(
            "events/response.output_text.delta", event
        )
    messages = {v.message for event in variants for v in schemas.validate_event(event)}
    assert {"-1 is less than the minimum of 0", "-2 is less than the minimum of 0"} <= messages
    assert {"5 is not of type string", "6 is not of type string"} <= messages


def test_fast_path_uses_the_dispatch_aware_compiler(schemas: Schemas) -> None:
    schemas.validate_event(event_of("response.completed"))
    assert getattr(schemas._fast_events["response.completed"], "dispatch_aware", False)


def test_load_schemas_is_a_singleton() -> None:
    assert load_schemas() is load_schemas()
