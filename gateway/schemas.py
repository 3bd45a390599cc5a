"""Validation against the official OCPP 1.6 and 2.0.1 JSON schemas.

Layer: bottom; imports ``gateway.errors`` and ``gateway.ocppj`` only. No I/O besides
reading the schema files shipped in the ``ocpp`` package, once per schema.

The accept / reject decision is msgspec's: each schema becomes nested ``msgspec.Struct``
types on first use (:func:`msgspec_type_for`), cached for the life of the process, and a
payload is checked with ``msgspec.convert(payload, type, strict=True)``. ``python -m
gateway.schema_candidates`` measured the candidates on ten hot messages (sum of the
medians, one run on a busy 2-core machine): fastjsonschema 68 µs, pydantic-core 20 µs,
msgspec 14 µs (4.7x; ``validate`` with its lookup 17 µs, 4.1x), the ``ocpp`` package's
jsonschema 1,580 µs. msgspec is 1.8-2.2x faster than pydantic-core on the big
MeterValues and TransactionEvent messages that dominate the traffic, slower on the
tiny ones (Heartbeat, StatusNotification).

A rejected payload is explained by fastjsonschema, compiled on the first rejection of
that schema: the failed rule picks the CALLERROR code (``_RULE_CODES``) and its name
the field. fastjsonschema also validates a schema using a keyword the converter does
not implement (none of the shipped 1.6 / 2.0.1 files does).

Semantics are those of the ``ocpp`` package's own validator (jsonschema
``Draft4Validator`` for both versions), which ``tests/unit/test_schema_differential.py``
checks for every action in both directions: an integer is an ``int`` (not ``1.0``, not
``True``), a number an int or a float, ``multipleOf`` is decided on the decimal value.
One intentional difference: the reference checks no ``format``; the gateway checks
``date-time`` and ``uri`` and refuses a malformed value (PropertyConstraintViolation).
"""

from __future__ import annotations

import decimal
import functools
import importlib.resources
import json
import keyword
import math
import re
import typing
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Final

import fastjsonschema
import msgspec

from gateway.errors import ErrorCode, InvalidPayload
from gateway.ocppj import Payload, Version


class Kind(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"


_SCHEMA_DIRS: Final = {Version.V16: "v16", Version.V201: "v201"}

# Which CALLERROR a failed schema rule becomes (OCPP-J 1.6 §4.2.3 definitions).
_RULE_CODES: Final[dict[str, ErrorCode]] = {
    "required": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "enum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maxLength": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minLength": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "format": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
}

# fastjsonschema 2.22's format regexes, the checks the gateway has always made. A
# calendar date: the day exists in its month, 29 February only in a leap year.
# Year 0001-9999 (no year 0000: RFC 3339 dates are Gregorian years a datetime can hold).
_YEAR: Final = r"(?!0000)\d{4}"
_DATE: Final = (
    rf"{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
    r"|02-(?:0[1-9]|1\d|2[0-8]))"
    r"|(?:\d\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29"
)
FORMAT_PATTERNS: Final[dict[str, str]] = {
    "date-time": (
        rf"^(?!0000)(?:{_DATE})(t|T)(?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d+)?"
        r"(?:[+-](?:[01]\d|2[0-3]):[0-5]\d|z|Z)\Z"  # RFC 3339 §5.6: the offset has a colon
    ),
    "uri": r"^\w+:(\/?\/?)[^\s]+\Z",
}

# Keywords the converter implements, and annotations that validate nothing.
_KEYWORDS: Final = frozenset(
    ("type", "properties", "required", "additionalProperties", "enum", "maxLength",
     "minLength", "minimum", "maximum", "multipleOf", "minItems", "maxItems", "items",
     "additionalItems", "format", "$ref"))  # fmt: skip
_ANNOTATIONS: Final = frozenset(
    ("$schema", "$id", "id", "title", "description", "comment", "javaType", "definitions",
     "default"))  # fmt: skip
_DRAFT_04: Final = "http://json-schema.org/draft-04/schema#"
_NOT_NAME: Final = re.compile(r"\W")


def _schema_file(version: Version, action: str, kind: Kind) -> str:
    if kind is Kind.RESPONSE:
        return f"{action}Response.json"
    return f"{action}.json" if version is Version.V16 else f"{action}Request.json"


@functools.cache
def known_actions(version: Version) -> frozenset[str]:
    """Every action the official schemas of ``version`` define (both directions)."""
    root = importlib.resources.files("ocpp") / _SCHEMA_DIRS[version] / "schemas"
    names = (entry.name.removesuffix(".json") for entry in root.iterdir())
    if version is Version.V16:
        return frozenset(n for n in names if not n.endswith("Response"))
    return frozenset(n.removesuffix("Request") for n in names if n.endswith("Request"))


def load_schema(version: Version, action: str, kind: Kind) -> Payload:
    """The official JSON schema of ``action`` in ``version``, as the ``ocpp`` package ships it."""
    path = (
        importlib.resources.files("ocpp")
        / _SCHEMA_DIRS[version]
        / "schemas"
        / _schema_file(version, action, kind)
    )
    schema: Payload = json.loads(path.read_text(encoding="utf-8-sig"))
    return schema


# --- JSON Schema -> msgspec ------------------------------------------------------------


class UnsupportedSchema(ValueError):
    """The schema uses JSON Schema the converters do not implement."""


def check_keywords(node: Payload) -> None:
    """Refuse a schema node using anything the converters would silently drop."""
    unknown = node.keys() - _KEYWORDS - _ANNOTATIONS
    if unknown:
        raise UnsupportedSchema(f"unsupported JSON Schema keywords {sorted(unknown)}")
    if "additionalItems" in node and not isinstance(node.get("items"), dict):
        raise UnsupportedSchema("tuple-form items are not supported")
    if node.get("format") not in (None, *FORMAT_PATTERNS):
        raise UnsupportedSchema(f"unsupported format {node['format']!r}")
    if "enum" in node and (
        node.get("type") != "string" or not all(isinstance(v, str) for v in node["enum"])
    ):
        raise UnsupportedSchema("enum is supported on strings only")
    if "multipleOf" in node and node.get("type") != "number":
        raise UnsupportedSchema("multipleOf is supported on numbers only")


def decimal_multiple(value: float, step: float) -> bool:
    """fastjsonschema's multipleOf rule: the decimal quotient of the reprs is whole.

    The reference parses these payloads with ``parse_float=Decimal``, so 21.4 is a
    multiple of 0.1 although ``21.4 % 0.1`` in floats says otherwise. A value whose
    quotient overflows a float is refused, as fastjsonschema refuses it (the reference
    raises decimal.InvalidOperation there).
    """
    try:
        if not math.isfinite(value / step):  # fastjsonschema: "infinity reached"; NaN
            return False
    except OverflowError:  # an int too large for a float
        return False
    quotient = decimal.Decimal(repr(value)) / decimal.Decimal(repr(step))
    return int(quotient) == quotient


def _multiples_check(steps: dict[str, tuple[str, float]]) -> Callable[[Any], None]:
    # msgspec's own multiple_of works in floats; this runs as the Struct's __post_init__.
    def __post_init__(self: Any) -> None:
        for attr, (name, step) in steps.items():
            value = getattr(self, attr)
            if value is not msgspec.UNSET and not decimal_multiple(value, step):
                raise ValueError(f"`{name}` must be a multiple of {step}")

    return __post_init__


def _meta(tp: Any, **constraints: Any) -> Any:
    kept = {k: v for k, v in constraints.items() if v is not None}
    return typing.Annotated[tp, msgspec.Meta(**kept)] if kept else tp


def _scalar_type(node: Payload) -> Any:
    """The msgspec type of a string, integer, number, boolean or untyped schema node."""
    kind = node.get("type")
    if kind == "string":
        return _meta(
            str,
            max_length=node.get("maxLength"),
            min_length=node.get("minLength"),
            pattern=FORMAT_PATTERNS.get(node.get("format", "")),
        )
    if kind in ("integer", "number"):
        number: Any = int if kind == "integer" else float
        low, high = node.get("minimum"), node.get("maximum")
        return _meta(
            number,
            ge=None if low is None else number(low),
            le=None if high is None else number(high),
        )
    if kind == "boolean":
        return bool
    if kind is None:
        return Any
    raise UnsupportedSchema(f"unsupported type {kind!r}")


def msgspec_type_for(schema: Payload) -> Any:
    """A msgspec type accepting exactly what the official JSON ``schema`` accepts.

    Implements the subset of draft 4 the OCPP files use: object (properties, required,
    additionalProperties false), string (enum, maxLength, minLength, format date-time /
    uri), integer, number (minimum, maximum, multipleOf), boolean, array (items,
    minItems, maxItems), untyped (anything) and local ``$ref``; an object becomes a
    ``Struct`` (``forbid_unknown_fields`` when closed), an absent optional property
    ``UNSET``. Raises UnsupportedSchema on anything else, so no rule is dropped silently.
    """
    definitions: dict[str, Payload] = schema.get("definitions", {})
    built: dict[str, Any] = {}
    counter = iter(range(1, 1_000_000))
    unset: Any = msgspec.UnsetType

    def resolve(node: Payload) -> Payload:
        while "$ref" in node:
            node = definitions[node["$ref"].removeprefix("#/definitions/")]
        return node

    def build(node: Payload, name: str, *, multiple_checked: bool = False) -> Any:
        check_keywords(node)
        if "multipleOf" in resolve(node) and not multiple_checked:
            # Only the enclosing object's __post_init__ checks it (see build_object).
            raise UnsupportedSchema("multipleOf is supported on object properties only")
        ref = node.get("$ref")
        if ref is not None:
            target = ref.removeprefix("#/definitions/")
            if target not in built:
                built[target] = build(definitions[target], target, multiple_checked=True)
            return built[target]
        kind = node.get("type")
        if "enum" in node:
            return typing.Literal.__getitem__(tuple(node["enum"]))
        if kind == "object":
            return build_object(node, name)
        if kind == "array":
            return _meta(
                list.__class_getitem__(build(node["items"], f"{name}Item")),
                min_length=node.get("minItems"),
                max_length=node.get("maxItems"),
            )
        return _scalar_type(node)

    def build_object(node: Payload, name: str) -> Any:
        required = set(node.get("required", ()))
        properties: dict[str, Payload] = node.get("properties", {})
        if required - properties.keys():
            raise UnsupportedSchema("a required property the schema does not define")
        fields: list[Any] = []
        rename: dict[str, str] = {}
        multiples: dict[str, tuple[str, float]] = {}
        for i, (prop, sub) in enumerate(properties.items()):
            attr = prop
            if not prop.isidentifier() or keyword.iskeyword(prop) or prop.startswith("_"):
                attr = f"field_{i}"
                rename[attr] = prop
            tp = build(sub, prop, multiple_checked=True)
            if "multipleOf" in resolve(sub):
                multiples[attr] = (prop, resolve(sub)["multipleOf"])
            if prop in required:
                fields.append((attr, tp))
            else:
                fields.append((attr, typing.Union.__getitem__((tp, unset)), msgspec.UNSET))
        struct_name = _NOT_NAME.sub("", name) or "Object"
        return msgspec.defstruct(
            f"{struct_name}_{next(counter)}",
            fields,
            kw_only=True,
            forbid_unknown_fields=node.get("additionalProperties") is False,
            rename=rename or None,
            namespace={"__post_init__": _multiples_check(multiples)} if multiples else None,
        )

    return build(schema, schema.get("title", "Payload"))


# --- the validators ---------------------------------------------------------------------


def _build(version: Version, action: str, kind: Kind) -> Callable[[Payload], object]:
    try:
        tp = msgspec_type_for(load_schema(version, action, kind))
    except UnsupportedSchema:
        return _explainer(version, action, kind)
    convert = msgspec.convert

    def check(payload: Payload) -> object:
        return convert(payload, tp, strict=True)

    return check


_checks: dict[tuple[Version, str, Kind], Callable[[Payload], object]] = {}


@functools.cache
def _explainer(version: Version, action: str, kind: Kind) -> Callable[[Payload], object]:
    """fastjsonschema for the schema, read as draft 4 like the ocpp package reads it.

    The 2.0.1 files say draft-06, where 1.0 would be an integer. The formats are ours, so
    whatever fastjsonschema version is installed explains what msgspec refused.
    use_default=False: validation must not write schema defaults into the payload.
    """
    schema = {**load_schema(version, action, kind), "$schema": _DRAFT_04}
    compiled: Callable[[Payload], object] = fastjsonschema.compile(
        schema, formats=FORMAT_PATTERNS, use_default=False
    )
    return compiled


def _from_fastjsonschema(
    action: str, kind: Kind, exc: fastjsonschema.JsonSchemaValueException
) -> InvalidPayload:
    code = _RULE_CODES.get(exc.rule or "", ErrorCode.FORMAT_VIOLATION)
    where = (exc.name or "data").removeprefix("data").lstrip(".") or "payload"
    return InvalidPayload(f"{action} {kind}: {where}: {exc.message}", code=code)


def _explain(
    version: Version, action: str, kind: Kind, payload: Payload, exc: msgspec.ValidationError
) -> InvalidPayload:
    try:
        _explainer(version, action, kind)(payload)
    except fastjsonschema.JsonSchemaValueException as explained:
        return _from_fastjsonschema(action, kind, explained)
    except (ValueError, TypeError, ArithmeticError):  # fastjsonschema on NaN, say
        pass
    # msgspec refused what fastjsonschema accepts (the differential test checks this never
    # happens for JSON): msgspec's words, InvalidPayload's default code.
    message, _, where = str(exc).partition(" - at `$")
    return InvalidPayload(
        f"{action} {kind}: {where.rstrip('`').lstrip('.') or 'payload'}: {message}"
    )


def validate(version: Version, action: str, kind: Kind, payload: Payload) -> None:
    """Check ``payload`` against the official schema.

    Raises:
        InvalidPayload: naming the failing field, with the code for the failed rule.
        KeyError: the action has no schema in ``version`` (callers check
            :func:`known_actions` first).
    """
    key = (version, action, kind)
    check = _checks.get(key)
    if check is None:
        if action not in known_actions(version):
            raise KeyError(action)
        check = _checks[key] = _build(version, action, kind)
    try:
        check(payload)
    except msgspec.ValidationError as exc:
        raise _explain(version, action, kind, payload, exc) from None
    except fastjsonschema.JsonSchemaValueException as exc:  # the fallback validator
        raise _from_fastjsonschema(action, kind, exc) from None
