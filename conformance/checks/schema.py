"""Schema checks: every event, and every response, item and part embedded in it, has the fields
the SDK types require. Violations are split by where they point, so a thin ``response.created``
object and a part without ``annotations`` show up as different checks."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

from conformance.checks._registry import Context, Issue, check
from conformance.schema import SchemaViolation, load_schemas


def _area(pointer: str) -> str:
    head = pointer.split("/", 2)[1] if pointer.count("/") else ""  # `/item_id` is the event's, not the item's
    return head if head in ("response", "item", "part") else "event"


class _Violations:
    """Schema violations of one stream, computed once and shared by the four schema checks."""

    def __init__(self, ctx: Context) -> None:
        # The analysis, not ctx: ctx holds this object, and a cycle would keep the whole analysis
        # alive until a full GC pass (16-28 % of checking time on long streams).
        self.analysis = ctx.analysis

    @cached_property
    def by_area(self) -> dict[str, list[tuple[int, str, SchemaViolation]]]:
        schemas = load_schemas()
        out: dict[str, list[tuple[int, str, SchemaViolation]]] = {"event": [], "response": [], "item": [], "part": []}
        # One event type at a time, its quick test looked up once; then back into stream order
        # (a stable sort: one event's violations keep their order).
        for type_, events in self.analysis.by_type.items():
            if not schemas.has_event_type(type_):
                continue
            quick = schemas.quick_event_check(type_)
            for ev in events:
                if ev.data is None or (quick is not None and quick(ev.data)):
                    continue
                for v in schemas.validate_event(ev.data):
                    out[_area(v.pointer)].append((ev.index, ev.type, v))  # type: ignore[arg-type]
        for found in out.values():
            found.sort(key=_first)
        return out


def _first(entry: tuple[int, str, SchemaViolation]) -> int:
    return entry[0]


# Fields with a dedicated check of their own: reported there, once, not again as a schema error.
_OWNED_ELSEWHERE = frozenset({"/sequence_number"})


# Usage details the SDK types declare but no tested client reads (issue 12: missing from every
# proxy and from valid streams): a note of their own, not a schema error.
_OPTIONAL_USAGE_DETAILS = frozenset({"cache_write_tokens", "cache_write_tokens_details"})


def optional_usage_detail(pointer: str) -> bool:
    """The violation is about an optional usage detail (``…/usage/input_tokens_details/cache_write_tokens``)."""
    parts = pointer.split("/")
    return "usage" in parts and any(p in _OPTIONAL_USAGE_DETAILS for p in parts[parts.index("usage") :])


def _violations(ctx: Context, area: str, optional: bool = False) -> Iterator[Issue]:
    holder = ctx.__dict__.setdefault("_schema_violations", _Violations(ctx))
    for index, type_, v in holder.by_area[area]:
        if v.pointer in _OWNED_ELSEWHERE or optional_usage_detail(v.pointer) != optional:
            continue
        yield Issue(f"`{type_}`: {v.message} (schema {v.schema_path})", index, pointer=v.pointer)


@check("schema.known_event_type", classes=("S5",), profiles={"lenient": "info"})
def known_event_type(ctx: Context) -> Iterator[Issue]:
    """Every event ``type`` is a Responses streaming event type.

    openai-node's ``responses.stream()`` throws on unknown types (assertNever) and async-openai
    yields an error item for each; vendor events should be off by default.
    """
    schemas = load_schemas()
    a = ctx.analysis
    unknown = [t for t in a.by_type if not schemas.has_event_type(t)]
    for ev in a.of_types(*unknown) if unknown else ():
        yield Issue(f"unknown event type {ev.type!r}", ev.index, pointer="/type", actual=ev.type)


@check("schema.event", classes=("I4", "R4"))
def event_schema(ctx: Context) -> Iterator[Issue]:
    """Every event has the fields its type requires (``item_id``, ``output_index``, ``content_index``, ``delta``, ``logprobs`` …), with the right JSON types.

    Typed clients (async-openai, openai-java/go/dotnet, Grok CLI) fail to decode an event with a
    missing required field and abort the turn.
    """
    yield from _violations(ctx, "event")


@check("schema.response", classes=("R3",))
def response_schema(ctx: Context) -> Iterator[Issue]:
    """Every embedded Response object (created, in_progress, terminal) is complete: ``id``, ``object``, ``created_at``, ``model``, ``status``, ``output``, ``tools``, ``tool_choice``, ``parallel_tool_calls`` ….

    Grok CLI: ``missing field `created_at```; goose: ``Failed to parse Responses stream event``;
    Codex: ``failed to parse ResponseCompleted: missing field 'id'``. ``created_at`` is an
    integer in the SDK types: a float (``1712345678.25``) fails integer decoders (async-openai).
    """
    yield from _violations(ctx, "response")
    for ev, resp in ctx.analysis.responses:
        value = resp.get("created_at")
        if isinstance(value, float):
            yield Issue(f"`{ev.type}`: response.created_at is the float {value!r}; the SDK types say integer seconds", ev.index, pointer="/response/created_at", expected=int(value), actual=value)


@check("schema.item", classes=("R4",))
def item_schema(ctx: Context) -> Iterator[Issue]:
    """Every output item in ``output_item.added``/``done`` is complete (message: id, role, status, content; function_call: call_id, name, arguments as a string; reasoning: id, summary).

    Codex fails to parse the item (``failed to parse ResponseItem``) and then drops every delta
    for it; async-openai requires ``status``.
    """
    yield from _violations(ctx, "item")


@check("schema.part", classes=("R4",))
def part_schema(ctx: Context) -> Iterator[Issue]:
    """Every content part in ``content_part.added``/``done`` is complete (output_text: text and annotations; refusal: refusal).

    Grok CLI and async-openai require ``annotations``: ``missing field `annotations```.
    """
    yield from _violations(ctx, "part")


@check("schema.usage_details", severity="info", classes=("U1",), needs_stream=False, profiles={"strict": "error"})
def usage_details(ctx: Context) -> Iterator[Issue]:
    """Optional usage details the SDK types declare (``input_tokens_details.cache_write_tokens``) are present and well-typed.

    openai-python declares ``cache_write_tokens``, but no tested client reads it and valid
    upstream streams have nothing to fill it with: its absence is a note, never an error.
    """
    ex = ctx.exchange
    if ex.mode == "nonstream":
        body, _ = ctx.final
        if body is None:
            return
        for v in load_schemas().validate("response", body):
            if optional_usage_detail(v.pointer):
                yield Issue(f"{v.message} (schema {v.schema_path})", pointer=v.pointer)
        return
    if ex.status is None or not 200 <= ex.status < 300:
        return
    yield from _violations(ctx, "response", optional=True)
