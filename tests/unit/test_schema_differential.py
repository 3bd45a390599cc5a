"""Differential test: the gateway's validator against the ``ocpp`` package's validator.

The reference is ``ocpp.messages._validate_payload``, exactly what the ``ocpp``
package's ChargePoint runs: a jsonschema ``Draft4Validator`` for both versions (the
2.0.1 files say draft-06, the package reads them as draft 4), no format checker, and
floats parsed as ``Decimal`` for the 1.6 SetChargingProfile / RemoteStartTransaction
requests and the GetCompositeSchedule response (their ``multipleOf: 0.1``).

For every action in both versions and both directions (``gateway.schemas.known_actions``):

* the reference rejects  =>  ``gateway.schemas.validate`` raises ``InvalidPayload``;
* the reference accepts  =>  ours accepts too, unless the mutation is on
  :data:`STRICTER_THAN_OFFICIAL`, the short list of intentional differences.

Payloads come from a small strategy builder over the JSON schema (no
hypothesis-jsonschema dependency) and from single-fault mutations of valid payloads.
A deterministic sweep applies every mutation kind at every applicable place of a
"full" sample (every optional property present) of every schema, about 18,000
payloads; Hypothesis (derandomized, so CI sees the same examples) then varies the valid
payloads and draws one mutation each. Besides the verdicts, every single fault must get
the CALLERROR code of its rule, and each mutation kind must actually be refused
somewhere, so no part of the property holds vacuously.

The gateway decides with msgspec and explains a refusal with fastjsonschema (read as
draft 4); two white-box tests check that every refusal is explained by a failed rule
and that the fastjsonschema fallback (for a schema the converter cannot take) keeps the
same property and codes.
"""

from __future__ import annotations

import copy
import functools
import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import fastjsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, _validate_payload

from gateway import schemas
from gateway.errors import ErrorCode, InvalidPayload
from gateway.ocppj import Payload, Version
from gateway.schemas import Kind, UnsupportedSchema, known_actions, load_schema, validate

Path = tuple[str | int, ...]
Node = dict[str, Any]

SCHEMAS: Final = [
    (version, action, kind)
    for version in Version
    for action in sorted(known_actions(version))
    for kind in Kind
]
NOW: Final = "2024-05-01T12:00:00Z"

# Where our validator is deliberately stricter than the reference: mutation kind -> why.
STRICTER_THAN_OFFICIAL: Final = {
    "bad_date_time": (
        "the ocpp package builds Draft4Validator without a format_checker, so "
        '"format": "date-time" is never checked there; OCPP-J timestamps are RFC 3339 and '
        "the gateway answers a malformed one with PropertyConstraintViolation instead of "
        "forwarding a time the other side cannot parse (tests/unit/test_schemas.py pins it)"
    ),
    "bad_uri": (
        'same reason for "format": "uri" (1.6 GetDiagnostics and UpdateFirmware '
        "location): the reference does not check formats, the gateway does"
    ),
}

# The CALLERROR code each single-fault mutation must give (gateway.schemas._RULE_CODES).
EXPECTED_CODE: Final = {
    "drop_required": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "too_few_items": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "too_many_items": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "wrong_type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "int_as_float": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "bool_as_number": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "bad_enum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "too_long": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "below_minimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "above_maximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "not_multiple": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "bad_date_time": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "bad_uri": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "extra_property": ErrorCode.FORMAT_VIOLATION,
}
# Mutations that keep the payload valid: boundaries both validators must accept.
STILL_VALID: Final = frozenset(
    ("at_max_length", "open_object_extra", "int_as_number", "huge_integer")
)


# --- the two validators --------------------------------------------------------------


def official_rejects(version: Version, action: str, kind: Kind, payload: Payload) -> bool:
    """True when the ocpp package's validator refuses ``payload``."""
    ocpp_version = "1.6" if version is Version.V16 else "2.0.1"
    message = (
        Call("0", action, payload) if kind is Kind.REQUEST else CallResult("0", payload, action)
    )
    try:
        _validate_payload(message, ocpp_version)
    except OCPPError:
        return True
    return False


def ours(version: Version, action: str, kind: Kind, payload: Payload) -> InvalidPayload | None:
    """The gateway's verdict: the InvalidPayload it raised, or None when it accepted."""
    try:
        validate(version, action, kind, payload)
    except InvalidPayload as exc:
        return exc
    return None


# --- walking a schema -----------------------------------------------------------------


def _resolve(node: Node, schema: Node) -> Node:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].removeprefix("#/definitions/")]
    return node


def full_sample(node: Node, schema: Node) -> Any:
    """A deterministic valid value for ``node`` with every optional property present."""
    node = _resolve(node, schema)
    if "enum" in node:
        return node["enum"][-1]
    kind = node.get("type")
    if kind == "object":
        return {name: full_sample(sub, schema) for name, sub in node.get("properties", {}).items()}
    if kind == "array":
        count = max(node.get("minItems", 1), 1)
        return [full_sample(node["items"], schema) for _ in range(count)]
    if kind == "string":
        if node.get("format") == "date-time":
            return NOW
        if node.get("format") == "uri":
            return "https://example.com/firmware.bin"
        return "s" * min(node.get("maxLength", 5), 5)
    if kind == "integer":
        return int(node.get("minimum", 1))
    if kind == "number":
        return 21.4 if "multipleOf" in node else 1.5
    if kind == "boolean":
        return True
    return {"free": ["form", 1]}  # no type: any JSON


_WRONG_TYPE: Final[dict[str, Any]] = {
    "string": "1",
    "integer": 2,
    "number": 2.5,
    "boolean": False,
    "null": None,
    "array": [],
    "object": {},
}
_ACCEPTS: Final = {"number": {"integer", "number"}, "integer": {"integer"}}
_BAD_DATE_TIMES: Final = (
    "today",
    "2024-05-01 12:00",
    "2024-05-01T12:00:00",
    "2024-05-01",
    "2024-13-01T12:00:00Z",
    "2024-02-30T12:00:00Z",
    "2024-05-01T25:00:00Z",
    "",
)


def _object_mutations(node: Node, value: Payload) -> Iterator[tuple[str, Any]]:
    for name in node.get("required", ()):
        if name in value:
            yield "drop_required", {k: v for k, v in value.items() if k != name}
    if node.get("additionalProperties") is False:
        yield "extra_property", {**value, "unknownProperty": 1}
    else:
        yield "open_object_extra", {**value, "vendorSpecific": {"any": [1]}}


def _string_mutations(node: Node, value: str) -> Iterator[tuple[str, Any]]:
    if "enum" in node:
        yield "bad_enum", "NotAnEnumValue"
        if value.swapcase() not in node["enum"]:
            yield "bad_enum", value.swapcase()
    if "maxLength" in node and "format" not in node:
        limit = node["maxLength"]
        yield "too_long", "x" * (limit + 1)
        yield "too_long", "é" * (limit + 1)
        yield "at_max_length", "é" * limit  # code points, not bytes, are counted
        yield "at_max_length", "😀" * limit  # nor UTF-16 units
    if node.get("format") == "date-time":
        for bad in _BAD_DATE_TIMES:
            yield "bad_date_time", bad
    if node.get("format") == "uri":
        yield "bad_uri", "not a uri"


def _number_mutations(node: Node, value: float) -> Iterator[tuple[str, Any]]:
    integer = node["type"] == "integer"
    as_type = int if integer else float
    if "minimum" in node:
        yield "below_minimum", as_type(node["minimum"]) - 1
    if "maximum" in node:
        yield "above_maximum", as_type(node["maximum"]) + 1
    yield "bool_as_number", True
    yield "bool_as_number", False
    if integer:
        yield "int_as_float", float(value)
    elif "multipleOf" in node:
        yield "int_as_number", 3
        yield "not_multiple", round(value + node["multipleOf"] / 2, 6)
        yield "not_multiple", 0.01
    else:
        yield "int_as_number", int(value)
    if "maximum" not in node and "multipleOf" not in node:
        yield "huge_integer", 2**70  # JSON integers have no size limit


def _array_mutations(node: Node, value: list[Any]) -> Iterator[tuple[str, Any]]:
    if node.get("minItems", 0) > 0:
        yield "too_few_items", value[: node["minItems"] - 1]
    if "maxItems" in node and value:
        yield "too_many_items", value + [value[0]] * (node["maxItems"] + 1 - len(value))


def mutations_of(node: Node, value: Any) -> Iterator[tuple[str, Any]]:
    """(mutation kind, replacement value) for one place; each is wrong in that place only."""
    kind = node.get("type")
    if kind is not None:
        accepted = _ACCEPTS.get(kind, {kind})
        for name, wrong in _WRONG_TYPE.items():
            if name not in accepted:
                yield "wrong_type", wrong
    if kind == "object" and isinstance(value, dict):
        yield from _object_mutations(node, value)
    elif kind == "string" and isinstance(value, str):
        yield from _string_mutations(node, value)
    elif kind in ("integer", "number") and isinstance(value, int | float):
        yield from _number_mutations(node, value)
    elif kind == "array" and isinstance(value, list):
        yield from _array_mutations(node, value)


def places(
    value: Any, node: Node, schema: Node, path: Path = ()
) -> Iterator[tuple[Path, Node, Any]]:
    """Every (path, schema node, value) in a payload valid for ``node``."""
    node = _resolve(node, schema)
    yield path, node, value
    if node.get("type") == "object" and isinstance(value, dict):
        properties = node.get("properties", {})
        for name, item in value.items():
            if name in properties:
                yield from places(item, properties[name], schema, (*path, name))
    elif node.get("type") == "array" and isinstance(value, list):
        for i, item in enumerate(value):
            yield from places(item, node["items"], schema, (*path, i))


def all_mutations(payload: Payload, schema: Node) -> list[tuple[str, Path, Any]]:
    out = []
    for path, node, value in places(payload, schema, schema):
        for kind, new in mutations_of(node, value):
            if path or kind != "wrong_type":  # validate() takes a dict; the root stays one
                out.append((kind, path, new))
    return out


def replaced(payload: Payload, path: Path, new: Any) -> Payload:
    if not path:
        result: Payload = new
        return result
    out = copy.deepcopy(payload)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return out


def _where(path: Path) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}"
    return text.lstrip(".") or "payload"


# --- the property ----------------------------------------------------------------------


@dataclass
class Verdict:
    """What the two validators said about one payload."""

    official_rejected: bool
    ours: InvalidPayload | None

    @property
    def ours_rejected(self) -> bool:
        return self.ours is not None


def judge(version: Version, action: str, kind: Kind, payload: Payload) -> Verdict:
    official = official_rejects(version, action, kind, copy.deepcopy(payload))
    return Verdict(official, ours(version, action, kind, payload))


def divergence(verdict: Verdict, mutation: str | None) -> str | None:
    """Why ``verdict`` breaks the property, or None when it holds."""
    if verdict.official_rejected and not verdict.ours_rejected:
        return "the ocpp package rejects it, the gateway accepts it"
    if not verdict.official_rejected and verdict.ours_rejected:
        if mutation in STRICTER_THAN_OFFICIAL:
            return None
        return f"the gateway rejects what the ocpp package accepts: {verdict.ours}"
    return None


@dataclass
class Sweep:
    """Every mutation of every schema's full sample, judged by both validators."""

    divergences: list[str] = field(default_factory=list)
    wrong_codes: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)
    tried: Counter[str] = field(default_factory=Counter)
    official_rejected: Counter[str] = field(default_factory=Counter)
    ours_rejected: Counter[str] = field(default_factory=Counter)


def _explained(version: Version, action: str, kind: Kind, payload: Payload) -> bool:
    # White box: msgspec decides, fastjsonschema (read as draft 4) explains the refusal
    # with the failed rule; a refusal it cannot explain would get no rule's code.
    try:
        schemas._explainer(version, action, kind)(payload)
    except fastjsonschema.JsonSchemaValueException:
        return True
    return False


def run_sweep(cases: list[tuple[Version, str, Kind]]) -> Sweep:
    result = Sweep()
    for version, action, kind in cases:
        schema = load_schema(version, action, kind)
        sample = full_sample(schema, schema)
        for mutation, path, new in all_mutations(sample, schema):
            mutated = replaced(sample, path, new)
            verdict = judge(version, action, kind, mutated)
            case = f"{version} {action} {kind} {mutation} at {_where(path)} = {new!r:.40}"
            result.tried[mutation] += 1
            result.official_rejected[mutation] += verdict.official_rejected
            result.ours_rejected[mutation] += verdict.ours_rejected
            problem = divergence(verdict, mutation)
            if problem:
                result.divergences.append(f"{case}: {problem}")
            elif verdict.ours is not None and verdict.ours.code is not EXPECTED_CODE[mutation]:
                result.wrong_codes.append(f"{case}: {verdict.ours.code} ({verdict.ours})")
            if verdict.ours is not None and not _explained(version, action, kind, mutated):
                result.unexplained.append(f"{case}: {verdict.ours}")
    return result


@functools.cache
def sweep() -> Sweep:
    return run_sweep(SCHEMAS)


# --- strategies from the schema ---------------------------------------------------------

_JSON_LEAVES: Final = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
_ANY_JSON: Final = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=4,
)


def _date_time() -> st.SearchStrategy[str]:
    # RFC 3339 date-times (what OCPP-J requires): T or t, optional fraction, Z or an offset.
    return st.builds(
        lambda t, sep, fraction, zone: (
            f"{t.year:04}-{t.month:02}-{t.day:02}{sep}{t.hour:02}:{t.minute:02}:{t.second:02}"
            f"{fraction}{zone}"
        ),
        st.datetimes(),
        st.sampled_from("Tt"),
        st.sampled_from(["", ".5", ".123", ".123456"]),
        st.sampled_from(["Z", "z", "+00:00", "+02:00", "-05:30"]),  # RFC 3339: hh:mm offsets
    )


_URIS: Final = st.sampled_from(
    ["https://example.com/firmware.bin", "ftp://user@host:21/diag", "urn:isbn:0451450523"]
)
_TEXT: Final = st.characters(codec="utf-8", exclude_categories=("Cs",))


def _strategy(node: Node, schema: Node) -> st.SearchStrategy[Any]:
    node = _resolve(node, schema)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        properties = node.get("properties", {})
        required = set(node.get("required", ()))
        fixed = st.fixed_dictionaries(
            {name: _strategy(properties[name], schema) for name in properties if name in required},
            optional={
                name: _strategy(sub, schema)
                for name, sub in properties.items()
                if name not in required
            },
        )
        if node.get("additionalProperties") is False:
            return fixed
        extras = st.dictionaries(
            st.text(string.ascii_letters, min_size=1, max_size=6).filter(
                lambda key: key not in properties
            ),
            _ANY_JSON,
            max_size=2,
        )
        return st.builds(lambda known, more: {**more, **known}, fixed, extras)
    if kind == "array":
        low = node.get("minItems", 0)
        high = min(node.get("maxItems", low + 2), low + 2)
        return st.lists(_strategy(node["items"], schema), min_size=low, max_size=high)
    if kind == "string":
        if node.get("format") == "date-time":
            return _date_time()
        if node.get("format") == "uri":
            return _URIS
        return st.text(_TEXT, min_size=node.get("minLength", 0), max_size=node.get("maxLength", 40))
    if kind == "integer":
        return st.integers(
            min_value=node.get("minimum", -(2**40)), max_value=node.get("maximum", 2**40)
        )
    if kind == "number":
        if "multipleOf" in node:
            return st.integers(-100_000, 100_000).map(lambda tenths: tenths / 10)
        return st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    return _ANY_JSON


@functools.cache
def strategy_for(version: Version, action: str, kind: Kind) -> st.SearchStrategy[Any]:
    schema = load_schema(version, action, kind)
    return _strategy(schema, schema)


def _id(case: tuple[Version, str, Kind]) -> str:
    version, action, kind = case
    return f"{version.value.removeprefix('ocpp')}-{action}-{kind}"


# --- tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", SCHEMAS, ids=[_id(c) for c in SCHEMAS])
def test_full_and_minimal_samples_pass_both_validators(case: tuple[Version, str, Kind]) -> None:
    """The generator's fixed samples are valid, so the mutations start from valid payloads."""
    version, action, kind = case
    schema = load_schema(version, action, kind)
    full = full_sample(schema, schema)
    minimal = {name: full[name] for name in schema.get("required", ())}
    for payload in (full, minimal):
        verdict = judge(version, action, kind, payload)
        assert not verdict.official_rejected, payload
        assert verdict.ours is None, verdict.ours


def test_every_mutation_of_every_schema_keeps_the_property() -> None:
    """Each mutation kind at each place of each full sample: official rejects => ours does."""
    result = sweep()
    assert not result.divergences, "\n".join(result.divergences[:40])


def test_every_single_fault_gives_the_code_of_its_rule() -> None:
    """A payload wrong in one place gets the CALLERROR code of the rule it breaks."""
    result = sweep()
    assert not result.wrong_codes, "\n".join(result.wrong_codes[:40])


def test_every_refusal_is_explained_by_a_failed_rule() -> None:
    """What msgspec refuses, the draft-4 fastjsonschema explainer refuses too (the
    code comes from its failed rule), so no refusal falls back to a generic code."""
    result = sweep()
    assert not result.unexplained, "\n".join(result.unexplained[:40])


FALLBACK_CASES: Final = [
    (Version.V16, "MeterValues", Kind.REQUEST),
    (Version.V16, "SetChargingProfile", Kind.REQUEST),
    (Version.V16, "GetDiagnostics", Kind.REQUEST),
    (Version.V201, "TransactionEvent", Kind.REQUEST),
    (Version.V201, "BootNotification", Kind.RESPONSE),
    (Version.V201, "NotifyEVChargingNeeds", Kind.REQUEST),
]


def test_the_fastjsonschema_fallback_keeps_the_property(monkeypatch: pytest.MonkeyPatch) -> None:
    """A schema the converter cannot take is validated by fastjsonschema, read as
    draft 4: same property, same codes."""

    def unsupported(schema: Payload) -> object:
        raise UnsupportedSchema("pretend a keyword is new")

    monkeypatch.setattr(schemas, "msgspec_type_for", unsupported)
    monkeypatch.setattr(schemas, "_checks", {})
    result = run_sweep(FALLBACK_CASES)
    assert sum(result.tried.values()) > 500
    assert not result.divergences, "\n".join(result.divergences[:40])
    assert not result.wrong_codes, "\n".join(result.wrong_codes[:40])


@pytest.mark.parametrize(
    "node",
    [
        {"type": "string", "pattern": "^[A-Z]+$"},
        {"type": "object", "oneOf": []},
        {"type": "integer", "exclusiveMinimum": 0},
        {"type": "string", "format": "email"},
        {"type": "array", "items": [{"type": "string"}], "additionalItems": False},
        {"type": "integer", "enum": [1, 2]},
        {"type": "integer", "multipleOf": 2},
        {"type": "object", "required": ["a"], "properties": {}},
    ],
)
def test_the_converter_refuses_what_it_would_drop(node: Node) -> None:
    """Any JSON Schema the converter does not implement is refused, never ignored."""
    with pytest.raises(UnsupportedSchema):
        schemas.msgspec_type_for({"type": "object", "properties": {"x": node}})


def test_multiple_of_is_checked_through_a_ref_and_refused_in_an_array() -> None:
    """multipleOf lives in the enclosing Struct's __post_init__: it follows a $ref, and
    where no object property carries it (an array of numbers) the converter refuses."""
    tenths = {"type": "number", "multipleOf": 0.1}
    schema: Node = {
        "type": "object",
        "definitions": {"Tenths": tenths},
        "properties": {"limit": {"$ref": "#/definitions/Tenths"}},
    }
    tp = schemas.msgspec_type_for(schema)
    msgspec.convert({"limit": 21.4}, tp, strict=True)
    with pytest.raises(msgspec.ValidationError, match=r"multiple of 0\.1"):
        msgspec.convert({"limit": 4.11}, tp, strict=True)
    for items in (tenths, {"$ref": "#/definitions/Tenths"}):
        array = {"type": "array", "items": items}
        with pytest.raises(UnsupportedSchema):
            schemas.msgspec_type_for({**schema, "properties": {"limits": array}})


@pytest.mark.parametrize("mutation", sorted(EXPECTED_CODE))
def test_each_mutation_kind_produces_rejections(mutation: str) -> None:
    """No mutation kind is a dead letter: ours rejects it somewhere, and so does the
    reference unless the kind is an intentional strictness difference."""
    result = sweep()
    assert result.tried[mutation] > 0
    assert result.ours_rejected[mutation] == result.tried[mutation]
    if mutation in STRICTER_THAN_OFFICIAL:
        assert result.official_rejected[mutation] == 0  # else the allowlist entry is stale
    else:
        assert result.official_rejected[mutation] == result.tried[mutation]


@pytest.mark.parametrize("mutation", sorted(STILL_VALID))
def test_boundary_values_pass_both_validators(mutation: str) -> None:
    """Strings of exactly maxLength (multi-byte, astral), extras in open objects, ints for
    numbers: accepted by both."""
    result = sweep()
    assert result.tried[mutation] > 0
    assert result.official_rejected[mutation] == 0
    assert result.ours_rejected[mutation] == 0


@pytest.mark.parametrize("case", SCHEMAS, ids=[_id(c) for c in SCHEMAS])
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_generated_payloads_and_their_mutations(
    case: tuple[Version, str, Kind], data: st.DataObject
) -> None:
    """A generated valid payload passes both; one mutation of it keeps the property."""
    version, action, kind = case
    schema = load_schema(version, action, kind)
    payload = data.draw(strategy_for(version, action, kind), label="valid payload")
    verdict = judge(version, action, kind, payload)
    assert not verdict.official_rejected, "the generator made an invalid payload"
    assert verdict.ours is None, verdict.ours
    mutation, path, new = data.draw(st.sampled_from(all_mutations(payload, schema)))
    mutated = judge(version, action, kind, replaced(payload, path, new))
    case = f"{mutation} at {_where(path)} = {new!r:.60}"
    problem = divergence(mutated, mutation)
    assert problem is None, f"{case}: {problem}"
    if mutated.ours is not None:
        assert mutated.ours.code is EXPECTED_CODE[mutation], f"{case}: {mutated.ours}"


def test_the_reference_decides_multiple_of_on_decimals() -> None:
    """Sanity of the harness: it calls the reference as the ocpp package does, Decimal
    path included, so 21.4 is a multiple of 0.1 for both validators and 4.11 for neither."""
    good = {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {
            "chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 21.4}]}}}  # fmt: skip
    bad = replaced(
        good, ("csChargingProfiles", "chargingSchedule", "chargingSchedulePeriod", 0, "limit"), 4.11
    )
    assert judge(Version.V16, "SetChargingProfile", Kind.REQUEST, good) == Verdict(False, None)
    verdict = judge(Version.V16, "SetChargingProfile", Kind.REQUEST, bad)
    assert verdict.official_rejected and verdict.ours_rejected
