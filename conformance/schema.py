"""Validate stream events and Responses objects against the JSON Schemas in ``schemas/``.

Two validators per schema, because the checker sees tens of thousands of events per second and
almost all of them are valid:

* the fast path: the schema bundled into one document (``Schemas.bundle``: every file it refers
  to copied into ``$defs``, refs rewritten), the refs then inlined, and the result compiled to
  Python by ``fastjsonschema`` (with the two union shapes our schemas use compiled to plain
  conditions, see ``_FastGenerator``); it only says valid or not;
* the slow path, run only when the fast path rejects: ``jsonschema``'s Draft 2020-12 validator
  over a ``referencing`` registry of all the files, which yields every violation with the JSON
  pointer into the instance and the file and pointer of the rule that failed.

The slow path has the last word: a rejection by the fast path that ``jsonschema`` does not confirm
gives no violation. (tests/unit/test_schemas.py checks the two agree on thousands of mutants.)
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import CodeType
from typing import Any, NamedTuple, cast
from urllib.parse import urljoin

import fastjsonschema
import jsonschema
import referencing
from fastjsonschema.draft2019 import CodeGeneratorDraft2019
from fastjsonschema.ref_resolver import RefResolver
from jsonschema.exceptions import ValidationError
from referencing.jsonschema import DRAFT202012

from conformance.resources import schemas_dir
from conformance.schema_cache import ValidatorCache, default_cache_dir, python_tag

__all__ = ["SCHEMA_BASE_URI", "SchemaViolation", "Schemas", "load_schemas"]

SCHEMA_BASE_URI = "https://responses-conformance.dev/schemas/"
"""Every file's ``$id`` is this plus its path under ``schemas/``."""

_SUFFIX = ".schema.json"
_ROOT_ONLY_KEYWORDS = frozenset({"$id", "$schema"})
_MISMATCH_KEYWORDS = frozenset({"type", "const", "enum"})
_ANNOTATION_KEYWORDS = frozenset({"title", "description", "$comment", "examples"})
_SCHEMA_KEYWORDS = frozenset(
    {"items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"}
)
_SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf"})
_SCHEMA_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_SCALARS = frozenset({str, int, float, bool, type(None)})

_FastValidator = Callable[[Any], Any]
_QuickValidator = Callable[[dict[str, Any]], bool]
_SLOW_CACHE_SIZE = 4096


class SchemaViolation(NamedTuple):
    """One rule of one schema that an instance breaks."""

    pointer: str
    """JSON pointer into the instance ("" is the root). For a missing property, where it should be."""
    message: str
    """What is wrong, e.g. "required property 'created_at' is missing"."""
    schema_path: str
    """The rule: file under ``schemas/`` and JSON pointer in it, e.g. "response.schema.json#/required"."""


class Schemas:
    """The schema files under one directory, with validators compiled on first use.

    Compiled fast validators are kept in ``cache`` (default: the user's cache directory, see
    :mod:`conformance.schema_cache`), keyed by a hash of every schema file under the root.
    """

    def __init__(self, root: Path | None = None, *, cache: ValidatorCache | None = None) -> None:
        self.root = (root if root is not None else schemas_dir()).resolve()
        self.cache = cache if cache is not None else ValidatorCache(default_cache_dir())
        self._digest = ""
        self._event_names: dict[str, str] = {
            path.name[: -len(_SUFFIX)]: f"events/{path.name[: -len(_SUFFIX)]}"
            for path in sorted((self.root / "events").glob(f"*{_SUFFIX}"))
        }
        self._event_types = frozenset(self._event_names)
        self._fast_events: dict[str, _FastValidator] = {}
        self._quick_events: dict[str, _QuickValidator | None] = {}
        self._fast: dict[str, _FastValidator] = {}
        self._slow: dict[str, jsonschema.protocols.Validator] = {}
        self._docs: dict[str, dict[str, Any]] | None = None
        self._names: dict[str, str] = {}
        self._uris: dict[str, str] = {}
        self._maskable: dict[str, dict[str, Callable[[Any], bool]]] = {}
        self._known_violations: dict[tuple[Any, ...], tuple[SchemaViolation, ...]] = {}
        self._registry: referencing.Registry[Any] | None = None

    # ------------------------------------------------------------------ public

    def known_event_types(self) -> frozenset[str]:
        """Every event type that has a schema (``schemas/events/<type>.schema.json``)."""
        return self._event_types

    def has_event_type(self, type_: str) -> bool:
        return type_ in self._event_types

    def validate_event(self, event: dict[str, Any]) -> list[SchemaViolation]:
        """Violations of the schema picked by ``event["type"]``; [] when valid.

        Events of an unknown type, and non-objects, give []: another check reports those.
        """
        if not isinstance(event, dict):
            return []
        type_ = event.get("type")
        if type(type_) is not str:
            return []
        fast = self._fast_events.get(type_) or self._event_validator(type_)
        if fast is None:
            return []
        quick = self._quick_events[type_]
        if quick is not None and quick(event):
            return []
        try:
            fast(event)
        except fastjsonschema.JsonSchemaValueException:
            return self._event_violations(type_, event)
        return []

    def quick_event_check(self, type_: str) -> Callable[[dict[str, Any]], bool] | None:
        """The test :meth:`validate_event` tries first on events of ``type_``: True only for a
        valid event (then ``validate_event`` gives []); None when there is none for the type.

        A caller with many events of one type calls it once and skips ``validate_event`` for every
        event it accepts."""
        if type_ not in self._quick_events and self._event_validator(type_) is None:
            return None
        return self._quick_events[type_]

    def _event_validator(self, type_: str) -> _FastValidator | None:
        """Compile (once) the validators of the event type; None for a type without a schema."""
        fast = self._fast_events.get(type_)
        if fast is None:
            name = self._event_names.get(type_)
            if name is None:
                return None
            self._quick_events[type_] = _quick_validator(self.document(name))
            fast = self._fast_events[type_] = self._fast_validator(name)
        return fast

    def validate(self, name: str, instance: Any) -> list[SchemaViolation]:
        """Violations of ``schemas/<name>.schema.json`` (e.g. "response", "items/message"); [] when valid.

        Raises KeyError when there is no such file.
        """
        fast = self._fast_validator(name)
        try:
            fast(instance)
        except fastjsonschema.JsonSchemaValueException:
            return self._violations(name, instance)
        return []

    def is_valid(self, name: str, instance: Any) -> bool:
        """True when the compiled validator accepts ``instance``: a fast yes, before asking a
        slower validator for the details of a no. False, not an error, for an unknown name."""
        try:
            self._fast_validator(name)(instance)
        except (fastjsonschema.JsonSchemaValueException, RecursionError, KeyError):
            return False
        return True

    def names(self) -> list[str]:
        """Every schema name under the root, e.g. "response", "events/error"."""
        return sorted(self._load()[1].values())

    def document(self, name: str) -> dict[str, Any]:
        """The parsed schema file ``<name>.schema.json``."""
        docs, _ = self._load()
        return docs[self._uri(name)]

    def registry(self) -> referencing.Registry[Any]:
        """A ``referencing`` registry holding every schema file, keyed by its ``$id``."""
        if self._registry is None:
            docs, _ = self._load()
            self._registry = referencing.Registry().with_resources(
                (uri, referencing.Resource.from_contents(doc, default_specification=DRAFT202012))
                for uri, doc in docs.items()
            )
        return self._registry

    def bundle(self, name: str) -> dict[str, Any]:
        """One self-contained schema: ``name`` with every file it refers to copied into ``$defs``."""
        docs, _ = self._load()
        root_uri = self._uri(name)
        prefixes: dict[str, str] = {root_uri: ""}
        pending = [root_uri]

        def local(ref: str, base: str) -> str:
            uri, _, fragment = urljoin(base, ref).partition("#")
            if uri not in docs:
                raise KeyError(
                    f"{self._rel(base)}: $ref {ref!r} names no schema file under {self.root}"
                )
            if uri not in prefixes:
                prefixes[uri] = "/$defs/" + self._rel(uri).replace("/", ".")
                pending.append(uri)
            return "#" + prefixes[uri] + fragment

        def rewrite(node: Any, base: str) -> Any:
            if isinstance(node, dict):
                return {
                    key: local(value, base)
                    if key == "$ref" and isinstance(value, str)
                    else rewrite(value, base)
                    for key, value in node.items()
                }
            if isinstance(node, list):
                return [rewrite(value, base) for value in node]
            return node

        out: dict[str, Any] = {}
        embedded: dict[str, Any] = {}
        while pending:
            uri = pending.pop()
            doc = {k: v for k, v in docs[uri].items() if k not in _ROOT_ONLY_KEYWORDS}
            rewritten = rewrite(doc, uri)
            if uri == root_uri:
                out = rewritten
            else:
                embedded[prefixes[uri].rsplit("/", 1)[1]] = rewritten
        if embedded:
            out["$defs"] = {**out.get("$defs", {}), **dict(sorted(embedded.items()))}
        return out

    # ------------------------------------------------------------------ internals

    def _load(self) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """All schema files, by ``$id`` (falling back to the base URI plus the path)."""
        if self._docs is None:
            docs: dict[str, dict[str, Any]] = {}
            digest = hashlib.sha256()
            for path in sorted(self.root.rglob(f"*{_SUFFIX}")):
                rel = path.relative_to(self.root).as_posix()
                raw = path.read_bytes()
                digest.update(b"%d:%s%d:" % (len(rel), rel.encode(), len(raw)) + raw)
                doc = json.loads(raw.decode("utf-8"))
                uri = doc.get("$id") or SCHEMA_BASE_URI + rel
                docs[uri] = doc
                self._names[uri] = rel[: -len(_SUFFIX)]
                self._uris[rel[: -len(_SUFFIX)]] = uri
            self._docs = docs
            self._digest = digest.hexdigest()
        return self._docs, self._names

    def _uri(self, name: str) -> str:
        self._load()
        uri = self._uris.get(name)
        if uri is None:
            raise KeyError(f"no schema {name!r}: {self.root / (name + _SUFFIX)} does not exist")
        return uri

    def _rel(self, uri: str) -> str:
        """The file of ``uri`` relative to the root, e.g. "items/message.schema.json"."""
        _, names = self._load()
        name = names.get(uri)
        return name + _SUFFIX if name is not None else uri

    def _fast_validator(self, name: str) -> _FastValidator:
        fast = self._fast.get(name)
        if fast is None:
            fast = self._fast[name] = self._build_fast(name)
        return fast

    def _build_fast(self, name: str) -> _FastValidator:
        """The compiled validator from the disk cache, or generated, compiled and cached."""
        self._uri(name)  # KeyError for an unknown name; loads the files (and their digest)
        key = hashlib.sha256(
            f"{self._digest}|{name}|{fastjsonschema.VERSION}|{_generator_version()}|{python_tag()}".encode()
        ).hexdigest()
        code = self.cache.load(key)
        if code is not None:
            validator = _run_module(code)
            if validator is not None:
                return validator
        schema = _fast_schema(self.bundle(name))
        source = _generate_fast(schema)
        if source is None:  # pragma: no cover - a fastjsonschema whose generator internals moved
            return cast(
                "_FastValidator",
                fastjsonschema.compile(schema, use_default=False, use_formats=False),
            )
        code = compile(source, f"<fast validator {name}>", "exec")
        validator = _run_module(code)
        if validator is None:  # pragma: no cover - generated code always defines it
            raise RuntimeError(f"the generated validator of {name!r} does not load")
        self.cache.store(key, code)
        return validator

    def _slow_validator(self, name: str) -> jsonschema.protocols.Validator:
        validator = self._slow.get(name)
        if validator is None:
            validator = self._slow[name] = jsonschema.Draft202012Validator(
                self.document(name), registry=self.registry()
            )
        return validator

    def _event_violations(self, type_: str, event: dict[str, Any]) -> list[SchemaViolation]:
        """The slow path, remembered per event shape.

        A non-conforming server usually breaks the same rule on every event (no
        ``sequence_number``, say), and the slow path costs ~100 µs. Events that differ only in
        top-level values no violation can mention (free-text strings, non-negative indices) share
        a result: those values are masked in the key.
        """
        maskable = self._maskable.get(type_)
        if maskable is None:
            maskable = self._maskable[type_] = _maskable_properties(
                self.document(self._event_names[type_])
            )
        parts: list[Any] = [type_]
        try:
            for name, value in event.items():
                if name in maskable and maskable[name](value):
                    parts.append((name,))
                elif type(value) in _SCALARS:
                    parts.append((name, type(value), value))
                else:
                    parts.append((name, json.dumps(value, sort_keys=True)))
        except (TypeError, ValueError):
            return self._violations(self._event_names[type_], event)
        key = tuple(parts)
        known = self._known_violations.get(key)
        if known is None:
            if len(self._known_violations) >= _SLOW_CACHE_SIZE:
                self._known_violations.clear()
            known = tuple(self._violations(self._event_names[type_], event))
            self._known_violations[key] = known
        return list(known)

    def _violations(self, name: str, instance: Any) -> list[SchemaViolation]:
        """Every violation, most precise form, sorted by pointer then schema path."""
        root_uri = self._uri(name)
        found = {
            self._violation(error, root_uri)
            for top in self._slow_validator(name).iter_errors(instance)
            for error in _leaves(top)
        }
        return sorted(found)

    def _violation(self, error: ValidationError, root_uri: str) -> SchemaViolation:
        pointer = _pointer(error.absolute_path)
        schema_path = self._schema_path(root_uri, list(error.absolute_schema_path))
        if error.validator == "required":
            missing = _missing_property(error)
            if missing is not None:
                pointer = f"{pointer}/{_escape(missing)}"
        return SchemaViolation(pointer, _message(error), schema_path)

    def _schema_path(self, root_uri: str, keys: list[str | int]) -> str:
        """Follow the keywords of a jsonschema error (which leaves out ``$ref``) through the files."""
        docs, _ = self._load()
        uri, tokens = root_uri, []
        node: Any = docs[root_uri]
        for key in keys:
            while isinstance(node, dict) and key not in node and isinstance(node.get("$ref"), str):
                uri, _, fragment = urljoin(uri, node["$ref"]).partition("#")
                tokens = [_unescape(t) for t in fragment.split("/")[1:]] if fragment else []
                node = docs[uri]
                for token in tokens:
                    node = _step(node, token)
            node = _step(node, key)
            tokens.append(str(key))
        return f"{self._rel(uri)}#{_pointer(tokens)}"


@functools.lru_cache(maxsize=1)
def load_schemas() -> Schemas:
    """The shipped schemas, loaded once per process."""
    return Schemas()


def _quick_validator(schema: dict[str, Any]) -> _QuickValidator | None:
    """A test that says True only for valid instances of a flat object schema, in a fraction of a
    microsecond; None when the schema is not flat enough.

    Most events are a handful of strings and indices, and almost all are valid: this accepts the
    plain shape (strings as strings, indices as ints, an empty array where one is allowed) and
    leaves everything else, valid or not, to the compiled validator. It must never accept an
    invalid instance (tests/unit/test_schemas.py runs it on thousands of mutants).
    """
    if schema.get("type") != "object" or set(schema) - _QUICK_ROOT_KEYWORDS:
        return None
    if schema.get("additionalProperties", True) is not True:
        return None
    required, properties = schema.get("required", []), schema.get("properties", {})
    if not isinstance(required, list) or not isinstance(properties, dict):
        return None
    terms: list[str] = []
    for name, sub in properties.items():
        key = repr(name)
        test = _quick_test(sub)
        if test is None:
            if name in required:
                return None
            terms.append(f"{key} not in d")
        elif name in required:
            terms.append(test.format(v=f"g({key})"))
        else:
            terms.append(f"({test.format(v=f'g({key})')} or {key} not in d)")
    if any(name not in properties for name in required):
        return None
    source = "def quick(d):\n    g = d.get\n    return " + (" and ".join(terms) or "True") + "\n"
    state: dict[str, Any] = {}
    exec(compile(source, "<quick validator>", "exec"), state)
    quick: _QuickValidator = state["quick"]
    return quick


_QUICK_ROOT_KEYWORDS = frozenset(
    {"type", "required", "properties", "additionalProperties"}
    | _ANNOTATION_KEYWORDS
    | _ROOT_ONLY_KEYWORDS
)


def _quick_test(schema: Any) -> str | None:
    """An expression over ``{v}`` (evaluated once) true only when it is valid; None if complex.

    Every test is false for ``None``, which ``d.get`` gives for a missing property.
    """
    if not isinstance(schema, dict):
        return None
    rules = {k: v for k, v in schema.items() if k not in _ANNOTATION_KEYWORDS}
    kind = rules.get("type")
    if set(rules) == {"const"} and type(rules["const"]) is str:
        return "{v} == " + repr(rules["const"])
    if rules == {"type": "string"}:
        return "type({v}) is str"
    if kind == "integer" and set(rules) <= {"type", "minimum"}:
        minimum = rules.get("minimum")
        if minimum is None:
            return "type({v}) is int"
        if type(minimum) is int:
            return f"(type(x := {{v}}) is int and x >= {minimum})"
        return None
    if kind == "array" and set(rules) <= {"type", "items"}:
        return "{v} == []"  # an empty list; any other array goes to the compiled validator
    if rules in ({"type": ["string", "null"]}, {"type": ["null", "string"]}):
        return "(type(x := {v}) is str or x is None)"
    return None


def _maskable_properties(schema: dict[str, Any]) -> dict[str, Callable[[Any], bool]]:
    """Top-level properties whose value, when it passes the given test, is valid whatever it is."""
    out: dict[str, Callable[[Any], bool]] = {}
    for name, prop in schema.get("properties", {}).items():
        if not isinstance(prop, dict):
            continue
        rules = {k: v for k, v in prop.items() if k not in _ANNOTATION_KEYWORDS}
        if rules == {"type": "string"}:
            out[name] = _is_str
        elif rules == {"type": "integer", "minimum": 0}:
            out[name] = _is_index
    return out


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_index(value: Any) -> bool:
    return type(value) is int and value >= 0


def _step(node: Any, key: str | int) -> Any:
    """``node[key]`` for a JSON object or array, None when there is no such member."""
    if isinstance(node, dict):
        return node.get(str(key))
    if isinstance(node, list):
        try:
            return node[int(key)]
        except (ValueError, IndexError):
            return None
    return None


def _fast_schema(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle as fastjsonschema should see it: local refs inlined, annotations dropped.

    fastjsonschema compiles a ``$ref`` to a function call that formats the instance path for
    every array element, which costs more than the checks; inlined, the path is only built when
    a check fails. Annotations would only bloat the schema literal each failure exception
    carries. Recursive refs (none today) are kept, with the ``$defs`` they point into.
    """
    kept_refs = False

    def target(ref: str) -> Any:
        node: Any = bundle
        for token in ref[2:].split("/"):
            node = node[_unescape(token)]
        return node

    def schema(node: Any, active: tuple[str, ...]) -> Any:
        nonlocal kept_refs
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            if ref in active:
                kept_refs = True
                return {"$ref": ref}
            resolved = schema(target(ref), (*active, ref))
            rest = schema({k: v for k, v in node.items() if k != "$ref"}, active)
            return {"allOf": [resolved, rest]} if rest else resolved
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _ANNOTATION_KEYWORDS or key == "$defs":
                continue
            if key in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
                out[key] = {name: schema(sub, active) for name, sub in value.items()}
            elif key in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
                out[key] = [schema(sub, active) for sub in value]
            elif key in _SCHEMA_KEYWORDS:
                out[key] = schema(value, active)
            else:
                out[key] = value
        return out

    result: dict[str, Any] = schema(bundle, ())
    if kept_refs:
        result["$defs"] = bundle["$defs"]
    return result


def _generate_fast(schema: dict[str, Any]) -> str | None:
    """Python source of a module defining ``_VALIDATOR``, by the dispatch-aware generator.

    None when fastjsonschema's generator internals changed (the caller compiles plainly then:
    slower, still correct).
    """
    try:
        resolver = RefResolver.from_schema(schema, handlers={}, store={})
        generator = _FastGenerator(  # type: ignore[no-untyped-call]
            schema, resolver=resolver, use_default=False, use_formats=False
        )
        code: str = generator.func_code
        state: str = generator.global_state_code
        return f"{state}\n{code}\n\n_VALIDATOR = {resolver.get_scope_name()}\n"
    except (AttributeError, TypeError, KeyError, NameError):  # pragma: no cover
        return None


def _run_module(code: CodeType) -> _FastValidator | None:
    """Execute a compiled validator module; None when it does not define a callable validator."""
    state: dict[str, Any] = {}
    try:
        exec(code, state)
    except Exception:  # a stale or foreign cache entry: the caller regenerates it
        return None
    validator = state.get("_VALIDATOR")
    if not callable(validator):
        return None
    validator.dispatch_aware = True  # type: ignore[attr-defined]
    return cast("_FastValidator", validator)


@functools.lru_cache(maxsize=1)
def _generator_version() -> str:
    """A hash of this module's source: any change to the generator invalidates cached validators."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


class _FastGenerator(CodeGeneratorDraft2019):  # type: ignore[misc]
    """fastjsonschema's generator, minus the exceptions it raises to try out subschemas.

    It evaluates ``if`` and every ``anyOf`` branch by running it and catching the exception,
    which costs microseconds each: a Response with a few output items went through 28
    ``if type == ...`` trials per item. The two shapes our schemas use are compiled to plain
    conditions instead, with the same meaning:

    * ``{"if": {"required": ["type"], "properties": {"type": {"const": T}}}, "then": S}``:
      ``if not isinstance(x, dict) or x.get("type") == T: <S>``;
    * ``{"anyOf": [{"type": "null"}, S]}`` (either order): ``if x is not None: <S>``.
    """

    def generate_if_then_else(self) -> None:
        definition = cast("dict[str, Any]", self._definition)
        tag = _dispatch_tag(definition.get("if"))
        if tag is None or "else" in definition or "then" not in definition:
            super().generate_if_then_else()  # type: ignore[no-untyped-call]
            return
        with self.l(
            "if not isinstance({variable}, dict) or {variable}.get('type') == {}:", repr(tag)
        ):
            self._generate_block(definition["then"])

    def generate_any_of(self) -> None:
        branches = cast("dict[str, Any]", self._definition)["anyOf"]
        others = [b for b in branches if b != {"type": "null"}]
        if len(branches) != 2 or len(others) != 1:
            super().generate_any_of()  # type: ignore[no-untyped-call]
            return
        with self.l("if {variable} is not None:"):
            self._generate_block(others[0])

    def _generate_block(self, definition: Any) -> None:
        code_len = len(self._code)
        self.generate_func_code_block(  # type: ignore[no-untyped-call]
            definition, self._variable, self._variable_name, clear_variables=True
        )
        if len(self._code) == code_len:
            self.l("pass")


def _dispatch_tag(condition: Any) -> str | None:
    """T when ``condition`` is exactly ``{"required": ["type"], "properties": {"type": {"const": T}}}``."""
    if not isinstance(condition, dict) or set(condition) != {"required", "properties"}:
        return None
    if condition["required"] != ["type"]:
        return None
    properties = condition["properties"]
    if not isinstance(properties, dict) or set(properties) != {"type"}:
        return None
    test = properties["type"]
    if not isinstance(test, dict) or set(test) != {"const"} or not isinstance(test["const"], str):
        return None
    tag: str = test["const"]
    return tag


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """Replace an anyOf/oneOf error by the errors of the one branch the instance was meant for.

    A branch whose only complaint is a type/const/enum mismatch at its root (the ``null`` branch
    of a nullable field, say) was not meant; when exactly one branch is left, its errors are the
    useful ones.
    """
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        meant = [
            subs
            for subs in branches.values()
            if not all(
                sub.validator in _MISMATCH_KEYWORDS and not sub.relative_path for sub in subs
            )
        ]
        if len(meant) == 1:
            for sub in meant[0]:
                yield from _leaves(sub)
            return
    yield error


def _missing_property(error: ValidationError) -> str | None:
    instance, required = error.instance, error.validator_value
    if not isinstance(instance, Mapping) or not isinstance(required, list):
        return None
    for name in required:
        if (
            isinstance(name, str)
            and name not in instance
            and error.message == f"{name!r} is a required property"
        ):
            return name
    return None


def _message(error: ValidationError) -> str:
    """jsonschema's message, with the instance abbreviated (it may be a whole Response)."""
    value = _short(error.instance)
    if error.validator == "required":
        missing = _missing_property(error)
        if missing is not None:
            return f"required property {missing!r} is missing"
    if error.validator == "type":
        expected = error.validator_value
        wanted = " or ".join(expected) if isinstance(expected, list) else str(expected)
        return f"{value} is not of type {wanted}"
    if error.validator == "const":
        return f"{value} is not {json.dumps(error.validator_value)}"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in cast("list[Any]", error.validator_value))
        return f"{value} is not one of {allowed}"
    if error.validator in ("anyOf", "oneOf"):
        reasons = "; ".join(sorted({_message(sub) for sub in error.context or []}))
        subject = f"{value} matches" if error.absolute_path else "matches"
        return f"{subject} none of the allowed forms ({reasons})"
    if error.validator == "minimum":
        return f"{value} is less than the minimum of {error.validator_value}"
    return error.message if len(error.message) <= 200 else error.message[:197] + "..."


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pointer(tokens: Any) -> str:
    return "".join("/" + _escape(str(token)) for token in tokens)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")
