"""Fuzzing the gateway's pure layers in process: OCPP-J framing and the translate routes.

* :func:`gateway.ocppj.parse` is fed hostile text and bytes (deep nesting, numbers out of
  double range, NaN and Infinity tokens, lone surrogate escapes, huge and odd message
  ids, every message type id) and must raise nothing but :class:`FrameError`, read the
  message id exactly when OCPP-J says it is readable, and lead to a CALLERROR that is
  well-formed for either version. Unlike ``test_ocppj.py`` (arbitrary text, arbitrary JSON)
  this checks the outcome against an independent reading of the frame.
* Every row of ``gateway.translate.dispatch.ROUTES`` is given payloads that are valid
  against the official schema of the sender (generated from the schema itself by
  :func:`from_schema`), in varied station contexts, and answers valid against the
  receiver's response schema. A converter either refuses with a
  :class:`~gateway.errors.GatewayError` (which the session turns into a CALLERROR) or
  produces payloads that are valid on the wire: serialised as the session serialises them
  (orjson), read back with the stdlib, and checked with the reference ``jsonschema``
  validator the test peers use as well as with the gateway's own validator.

Hypothesis runs derandomized and without an example database, so CI is reproducible.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import fastjsonschema
import orjson
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator  # type: ignore[import-untyped]

from gateway import schemas
from gateway.errors import ErrorCode, FrameError, GatewayError
from gateway.mappings import load_tables
from gateway.ocppj import (
    MAX_ERROR_DESCRIPTION,
    MAX_UNIQUE_ID_LENGTH,
    Call,
    CallError,
    CallResult,
    Payload,
    Version,
    dump_call,
    dump_error,
    dump_result,
    parse,
)
from gateway.schemas import Kind
from gateway.sim.wire import Kind as WireKind
from gateway.sim.wire import Version as WireVersion
from gateway.sim.wire import default_validator
from gateway.translate import pnc
from gateway.translate.dispatch import ROUTES
from gateway.translate.layout import EvseLayout
from gateway.translate.tables import TranslationTables
from gateway.translate.types import Context, Direction, Outcome, StationView

#: Bounded, derandomized, database-free: the same examples on every run, in CI too.
FUZZ: Final = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

V16_CODES: Final = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
)
V201_CODES: Final = frozenset(code.value for code in ErrorCode)

#: (sender, receiver) versions of each direction.
VERSIONS: Final = {
    Direction.CHARGER_TO_CSMS: (Version.V16, Version.V201),
    Direction.CSMS_TO_CHARGER: (Version.V201, Version.V16),
}
_WIRE_VERSION: Final[dict[Version, WireVersion]] = {Version.V16: "1.6", Version.V201: "2.0.1"}
_SCHEMA_DIRS: Final = {Version.V16: "v16", Version.V201: "v201"}

# Integers the gateway can receive: orjson reads anything beyond 64 bits as a float.
MIN_WIRE_INT: Final = -(2**63)
MAX_WIRE_INT: Final = 2**64 - 1


# =========================================================================== schemas


@functools.cache
def load_schema(version: Version, action: str, kind: Kind) -> dict[str, Any]:
    """The official schema of ``action`` (as shipped in the ``ocpp`` package)."""
    if kind is Kind.RESPONSE:
        name = f"{action}Response.json"
    else:
        name = f"{action}.json" if version is Version.V16 else f"{action}Request.json"
    path = importlib.resources.files("ocpp") / _SCHEMA_DIRS[version] / "schemas" / name
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return schema


def gateway_accepts(version: Version, action: str, kind: Kind, payload: object) -> bool:
    """Whether the gateway's own validator (``gateway.schemas``) accepts ``payload``."""
    if not isinstance(payload, dict):
        return False
    try:
        schemas.validate(version, action, kind, payload)
    except GatewayError:
        return False
    return True


def reference_errors(version: Version, action: str, kind: Kind, payload: object) -> list[str]:
    """What the reference validator of the test peers (``gateway.sim.wire``) objects to."""
    wire_kind: WireKind = "request" if kind is Kind.REQUEST else "response"
    return default_validator().errors(_WIRE_VERSION[version], action, wire_kind, payload)


def assert_valid_on_the_wire(version: Version, action: str, kind: Kind, payload: Payload) -> None:
    """``payload`` as the peer receives it is valid for the gateway and for the peer.

    Serialised with orjson as the session does (``ocppj.dump_*``), read back with the
    stdlib as the peers do: an int that became a float, or a value orjson cannot write,
    fails here exactly as it would fail on the wire.
    """
    text = dump_call("fuzz", action, payload)  # raises for what orjson cannot serialise
    received = json.loads(text)[3]
    errors = reference_errors(version, action, kind, received)
    assert not errors, f"{version} {action} {kind} invalid for the peer: {errors}: {text}"
    schemas.validate(version, action, kind, orjson.loads(text)[3])


# =========================================================================== strategies

_CHARS: Final = st.characters(codec="utf-8")  # every code point a websocket text frame carries
_FILLERS: Final = "aZ9 é€\U0001f50c-_.:/\\\"'\t"


def _long_text(max_length: int) -> st.SearchStrategy[str]:
    """A string of one repeated character, up to ``max_length`` long (the edge of a limit)."""
    return st.builds(
        lambda char, count: char * count,
        st.sampled_from(_FILLERS),
        st.integers(0, max_length),
    )


#: Edge dateTimes both validators accept: the limits of Python's datetime, leap seconds,
#: lower-case separators, nanoseconds, the "unknown local offset" -00:00.
EDGE_DATE_TIMES: Final = (
    "2024-05-01T11:59:58Z",
    "2024-05-01t11:59:58z",
    "2024-05-01T11:59:58.123456789+05:30",
    "2016-12-31T23:59:60Z",
    "2024-02-29T00:00:00.5-00:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999Z",
)
#: Valid RFC 3339 dateTimes that are out of Python's datetime range once in UTC: the
#: converters refuse them with PropertyConstraintViolation (normalise_datetime), so
#: they are not in EDGE_DATE_TIMES, whose values must translate.
OVERFLOWING_DATE_TIMES: Final = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")
#: dateTimes that RFC 3339 and the reference validator of the test peers refuse: an
#: offset without its colon, year 0000. The gateway's validator refuses them too.
LENIENT_DATE_TIMES: Final = (
    "2024-05-01T11:59:58-0800",
    "2024-05-01T11:59:58+0000",
    "0000-01-01T00:00:00Z",
)


@st.composite
def date_times(draw: st.DrawFn) -> str:
    """RFC 3339 date-times in the spellings chargers and CSMSs really send."""
    moment = draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 12, 31)))
    separator = draw(st.sampled_from("Tt"))
    fraction = draw(st.sampled_from(["", ".0", ".123", ".123456", ".123456789"]))
    zone = draw(st.sampled_from(["Z", "z", "+00:00", "+01:00", "-05:30", "+14:00", "-12:00"]))
    return moment.strftime("%Y-%m-%d") + separator + moment.strftime("%H:%M:%S") + fraction + zone


def _string(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    fmt = node.get("format")
    if fmt == "date-time":
        return date_times() | st.sampled_from(EDGE_DATE_TIMES)
    if fmt == "uri":
        return st.sampled_from(
            ["https://example.com/firmware.bin", "ftp://user:pw@10.0.0.1/logs", "file:///tmp/x"]
        )
    max_length = node.get("maxLength")
    short = st.text(_CHARS, max_size=min(max_length or 16, 16))
    if max_length is None:
        return short | _long_text(2000)
    return short | _long_text(max_length) | st.text(_CHARS, max_size=max_length)


def _integer(node: dict[str, Any]) -> st.SearchStrategy[int]:
    low = max(MIN_WIRE_INT, int(node.get("minimum", MIN_WIRE_INT)))
    high = min(MAX_WIRE_INT, int(node.get("maximum", MAX_WIRE_INT)))
    edges = [
        v for v in (MIN_WIRE_INT, -1, 0, 1, 2**31 - 1, 2**63 - 1, MAX_WIRE_INT) if low <= v <= high
    ]
    return (
        st.integers(max(low, -2), min(high, 4))
        | st.integers(max(low, -(2**31)), min(high, 2**31 - 1))
        | st.sampled_from(edges or [low])
    )


def _number(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    multiple = node.get("multipleOf")
    if multiple is not None:
        step = Decimal(str(multiple))
        tenths = st.integers(-(10**7), 10**7).map(lambda k: float(k * step))
        valid = _multiple_checker(node)
        return (tenths | st.integers(-1000, 1000)).filter(valid)
    return (
        st.integers(-1000, 10**6)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.sampled_from([0.0, -0.0, 0.1, 0.3, 1e-7, 5e-324, 1.7976931348623157e308, -1e308])
    )


def _multiple_checker(node: dict[str, Any]) -> Callable[[object], bool]:
    """Whether a number is a multipleOf for fastjsonschema and jsonschema alike (floats
    make them disagree: 0.3 is a multiple of 0.1 for the first, not for the second)."""
    fragment = {"type": "number", "multipleOf": node["multipleOf"]}
    gateway_check = fastjsonschema.compile(fragment)
    reference = Draft4Validator(fragment)

    def check(value: object) -> bool:
        try:
            gateway_check(value)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return bool(reference.is_valid(value))

    return check


#: Any JSON value (what a schema without a type allows).
JSON_VALUES: Final = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(MIN_WIRE_INT, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_CHARS, max_size=12),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(_CHARS, max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


def schema_strategy(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for values of ``node`` (a JSON schema fragment of ``root``).

    Supports what the OCPP 1.6 and 2.0.1 schemas use: ``$ref`` to ``#/definitions``,
    object / properties / required (additional properties are never generated),
    enum, string with maxLength and the date-time and uri formats, integer and number
    with minimum / maximum / multipleOf, boolean, array with items / minItems / maxItems.
    Values are drawn near their limits on purpose; callers filter with a validator
    where exact validity matters (multipleOf on floats, say).
    """
    ref = node.get("$ref")
    if ref is not None:
        assert ref.startswith("#/definitions/"), ref
        return schema_strategy(root["definitions"][ref.removeprefix("#/definitions/")], root)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        properties = node.get("properties", {})
        required = set(node.get("required", ()))
        return st.fixed_dictionaries(
            {
                name: schema_strategy(sub, root)
                for name, sub in properties.items()
                if name in required
            },
            optional={
                name: schema_strategy(sub, root)
                for name, sub in properties.items()
                if name not in required
            },
        )
    if kind == "array":
        min_items = int(node.get("minItems", 0))
        max_items = min(int(node.get("maxItems", min_items + 2)), min_items + 2)
        items = schema_strategy(node["items"], root)
        # Mostly the fewest items allowed (1.6 carries one charging schedule, say).
        return st.lists(items, min_size=min_items, max_size=max(min_items, 1)) | st.lists(
            items, min_size=min_items, max_size=max_items
        )
    if kind == "string":
        return _string(node)
    if kind == "integer":
        return _integer(node)
    if kind == "number":
        return _number(node)
    if kind == "boolean":
        return st.booleans()
    if kind is None:  # DataTransfer data: any JSON value
        return JSON_VALUES
    raise AssertionError(f"schema construct not supported: {node}")


@functools.cache
def from_schema(version: Version, action: str, kind: Kind) -> st.SearchStrategy[Payload]:
    """Payloads of ``action`` valid for the gateway's validator and the reference one.

    (Where the two disagree, LENIENT_DATE_TIMES, a separate test applies.)
    """
    schema = load_schema(version, action, kind)
    strategy: st.SearchStrategy[Payload] = schema_strategy(schema, schema)
    return strategy.filter(
        lambda payload: (
            gateway_accepts(version, action, kind, payload)
            and not reference_errors(version, action, kind, payload)
        )
    )


# =========================================================================== framing

#: Message type ids: the three OCPP-J ones and what a broken peer might send instead.
MESSAGE_TYPES: Final = [
    "2",
    "3",
    "4",
    "0",
    "5",
    "-1",
    "2.0",
    "2e0",
    "true",
    "null",
    '"2"',
    "[2]",
    str(2**70),
    "1e400",
]
#: JSON texts for message ids: readable ones (1 to 36 characters) and unreadable ones.
_ID_TEXTS: Final = st.one_of(
    st.text(_CHARS, min_size=1, max_size=MAX_UNIQUE_ID_LENGTH).map(json.dumps),
    st.text(_CHARS, min_size=MAX_UNIQUE_ID_LENGTH + 1, max_size=400).map(json.dumps),
    st.sampled_from(['""', "1", "null", "{}", '["id"]', '"\\ud800"', '"a\\u0000b"', '"-1"']),
)
#: Hostile JSON values: out-of-range and non-JSON numbers, deep nesting, odd escapes.
_HOSTILE_VALUES: Final = st.one_of(
    st.sampled_from(
        [
            "{}",
            "[]",
            '""',
            "1e308",
            "-1e308",
            "1e400",
            "NaN",
            "-Infinity",
            "-0",
            "123456789012345678901234567890",
            '"\\ud83d\\udd0c"',
            '"\\udc00"',
            '{"a":1,"a":2}',
            '{"x":"\\u0000"}',
        ]
    ),
    st.integers(1, 1100).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 1100).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(_CHARS, max_size=8),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(_CHARS, max_size=6), children, max_size=3)
        ),
        max_leaves=8,
    ).map(lambda value: json.dumps(value, allow_nan=True)),
)


@st.composite
def frame_texts(draw: st.DrawFn) -> str:
    """Arrays shaped like OCPP-J frames with hostile elements, sometimes not quite JSON."""
    kind = draw(st.sampled_from(MESSAGE_TYPES))
    unique_id = draw(_ID_TEXTS)
    action = draw(st.sampled_from(['"Heartbeat"', '""', "7", '"FlyToTheMoon"']) | _HOSTILE_VALUES)
    rest = draw(st.lists(_HOSTILE_VALUES, max_size=3))
    elements = draw(st.sampled_from([[kind], [kind, unique_id], [kind, unique_id, action]]))
    text = "[" + ",".join([*elements, *rest]) + "]"
    return draw(
        st.sampled_from(
            [text, text, text + " ", " " + text, text[:-1], "\ufeff" + text, text + "]"]
        )
    )


_OBJECTS: Final = st.dictionaries(st.text(_CHARS, max_size=8), JSON_VALUES, max_size=3)
_ANY_ID: Final = st.text(_CHARS, min_size=0, max_size=40)


def well_formed_frames() -> st.SearchStrategy[str]:
    """Frames of the right shape (and near misses) with arbitrary ids, actions and payloads."""
    return st.one_of(
        st.tuples(st.just(2), _ANY_ID, st.text(_CHARS, max_size=20), _OBJECTS),
        st.tuples(st.just(3), _ANY_ID, _OBJECTS),
        st.tuples(st.just(4), _ANY_ID, st.text(_CHARS, max_size=30), st.text(_CHARS), _OBJECTS),
        st.tuples(st.sampled_from([2, 3, 4]), _ANY_ID, JSON_VALUES, JSON_VALUES),
    ).map(lambda frame: json.dumps(list(frame)))


def readable_id(value: object) -> str | None:
    """The message id OCPP-J lets a receiver read from a decoded message (None: none)."""
    if not isinstance(value, list) or len(value) < 2:
        return None
    unique_id = value[1]
    if isinstance(unique_id, str) and 0 < len(unique_id) <= MAX_UNIQUE_ID_LENGTH:
        return unique_id
    return None


def check_call_error(text: str, unique_id: str, codes: frozenset[str]) -> None:
    """``text`` is a well-formed CALLERROR for ``unique_id`` with a code from ``codes``."""
    frame = json.loads(text)
    assert isinstance(frame, list)
    assert len(frame) == 5
    assert frame[0] == 4
    assert frame[1] == unique_id
    assert frame[2] in codes
    assert isinstance(frame[3], str)
    assert len(frame[3]) <= MAX_ERROR_DESCRIPTION
    assert isinstance(frame[4], dict)


def check_parse(data: str | bytes) -> None:
    """parse() against an independent reading of the same frame.

    JSON acceptance is orjson's (NaN, lone surrogates, numbers beyond a double and
    nesting beyond 1024 levels are refused: RFC 8259 leaves those to the parser). Given
    what orjson decodes, the message id must be read exactly when OCPP-J says it is
    readable, the frame type decided by the first element, and the CALLERROR the session
    would answer must be well-formed in both versions' spellings.
    """
    try:
        decoded: object = orjson.loads(data)
        is_json = True
    except orjson.JSONDecodeError:
        decoded, is_json = None, False
    try:
        frame = parse(data)
    except FrameError as exc:
        event(f"FrameError {exc.code}, id {'read' if exc.unique_id else 'unreadable'}")
        assert exc.unique_id == (readable_id(decoded) if is_json else None)
        if exc.unique_id is not None and isinstance(decoded, list):
            kind = decoded[0]
            is_answer = type(kind) is int and kind in (3, 4)
            assert exc.answerable is not is_answer, "answers are never answered, CALLs are"
        for version, codes in ((Version.V16, V16_CODES), (Version.V201, V201_CODES)):
            reply = dump_error(exc.unique_id or "-1", exc.code, exc.description, version)
            check_call_error(reply, exc.unique_id or "-1", codes)
        return
    # Parsed: it is exactly the frame the independent reading sees.
    assert is_json
    assert isinstance(decoded, list)
    event(f"parsed {type(frame).__name__}")
    assert frame.unique_id == readable_id(decoded)
    if isinstance(frame, Call):
        assert decoded == [2, frame.unique_id, frame.action, frame.payload]
        assert frame.action
        assert parse(dump_call(frame.unique_id, frame.action, frame.payload)) == frame
    elif isinstance(frame, CallResult):
        assert decoded == [3, frame.unique_id, frame.payload]
        assert parse(dump_result(frame.unique_id, frame.payload)) == frame
    else:
        assert isinstance(frame, CallError)
        assert decoded == [4, frame.unique_id, frame.code, frame.description, frame.details]


@settings(FUZZ, max_examples=400)
@given(frame_texts() | well_formed_frames())
@example('[2,"' + "x" * 36 + '","Heartbeat",' + "[" * 1024 + "]" * 1024 + "]")
@example('[2,"deep","Heartbeat",' + "[" * 1030 + "]" * 1030 + "]")
@example('[2,"big","Heartbeat",{"n":1e400}]')
@example('[2,"nan","Heartbeat",{"n":NaN}]')
@example('[2,"sur","Heartbeat",{"s":"\\ud800"}]')
@example('[3,"' + "y" * 37 + '",{}]')
@example('[99,"t",{}]')
@example('[true,"b",{}]')
def test_hostile_frame_texts_get_a_frame_or_a_frame_error_reading_the_id_per_ocpp_j(
    text: str,
) -> None:
    """Hostile frame-shaped text: a frame, or FrameError with the id exactly when readable."""
    check_parse(text)


@settings(FUZZ, max_examples=200)
@given((frame_texts() | well_formed_frames()).map(str.encode) | st.binary(max_size=64))
@example(b'[2,"bin","Heartbeat",{"x":"\xff"}]')
@example(b'\xef\xbb\xbf[2,"bom","Heartbeat",{}]')
def test_hostile_binary_frames_get_a_frame_or_a_frame_error(data: bytes) -> None:
    """Bytes (a binary websocket message): the same contract as text."""
    check_parse(data)


# =========================================================================== routes


@functools.cache
def shipped_tables() -> TranslationTables:
    return load_tables()


FIXED_NOW: Final = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
LAYOUTS: Final[tuple[dict[int, tuple[int, int]], ...]] = (
    {},  # the default: 1.6 connector n is EVSE n, connector 1
    {1: (1, 1), 2: (1, 2)},  # two plugs on one EVSE
    {1: (1, 1), 2: (2, 1), 3: (3, 1)},
)


#: Station facts converters read, in combinations a running station can have; drawn as
#: plain data (a readable falsifying example), made into a Context by make_context.
STATION_FACTS: Final = st.fixed_dictionaries(
    {
        "vendor_model": st.sampled_from(
            [(None, None), ("ACME", "Wallbox 22"), ("ExampleVendor", "Example Model")]
        ),
        "layout": st.sampled_from(range(len(LAYOUTS))),
        "connector_errors": st.dictionaries(
            st.integers(0, 3), st.sampled_from(["GroundFailure", "OverVoltage"]), max_size=2
        ),
        "registration": st.sampled_from(["Accepted", "Pending", ""]),
        "connector_statuses": st.dictionaries(
            st.integers(0, 3), st.sampled_from(["Available", "Charging", "Reserved"]), max_size=2
        ),
        "open_transactions": st.dictionaries(st.integers(0, 3), st.booleans(), max_size=2),
        "boot_reason": st.sampled_from(["PowerUp", "RemoteReset", "Triggered"]),
        "security_extension": st.booleans(),
        "legacy_transaction_ids": st.dictionaries(
            st.sampled_from(["tx-1", "tx-2", ""]), st.integers(0, 2**31), max_size=2
        ),
        "firmware_request_id": st.none() | st.integers(0, 100),
        "log_request_id": st.none() | st.integers(0, 100),
        "immediate_reset": st.sampled_from(["Soft", "Hard"]),
    }
)


#: A booted station with nothing going on.
FACTS_AT_REST: Final[dict[str, Any]] = {
    "vendor_model": (None, None),
    "layout": 0,
    "connector_errors": {},
    "registration": "Accepted",
    "connector_statuses": {},
    "open_transactions": {},
    "boot_reason": "PowerUp",
    "security_extension": False,
    "legacy_transaction_ids": {},
    "firmware_request_id": None,
    "log_request_id": None,
    "immediate_reset": "Soft",
}


def make_context(facts: dict[str, Any]) -> Context:
    vendor, model = facts["vendor_model"]
    station = StationView(
        vendor=vendor,
        model=model,
        connector_errors=facts["connector_errors"],
        registration=facts["registration"],
        connector_statuses=facts["connector_statuses"],
        open_transactions=facts["open_transactions"],
        boot_reason=facts["boot_reason"],
        security_extension=facts["security_extension"],
        legacy_transaction_ids=facts["legacy_transaction_ids"],
        firmware_request_id=facts["firmware_request_id"],
        log_request_id=facts["log_request_id"],
    )
    event_ids = itertools.count(1)
    return Context(
        station_id="CP-FUZZ",
        tables=shipped_tables(),
        layout=EvseLayout(LAYOUTS[facts["layout"]]),
        station=station,
        clock=lambda: FIXED_NOW,
        next_event_id=lambda: next(event_ids),
        new_transaction_id=lambda: "00000000-0000-4000-8000-000000000000",
        immediate_reset=facts["immediate_reset"],
    )


def _tunnelled_request() -> st.SearchStrategy[Payload]:
    """A charger's DataTransfer carrying an ISO 15118 message in the PnC tunnel."""
    inner = st.sampled_from(pnc.FROM_CHARGER).flatmap(
        lambda action: st.tuples(
            st.just(action),
            from_schema(Version.V201, action, Kind.REQUEST).map(json.dumps)
            | st.sampled_from(["", "not json", "[]", "{}", "null"]),
        )
    )
    return inner.map(
        lambda pair: {"vendorId": pnc.PNC_VENDOR_ID, "messageId": pair[0], "data": pair[1]}
    ) | st.fixed_dictionaries(
        {"vendorId": st.just(pnc.PNC_VENDOR_ID)},
        optional={"messageId": st.text(_CHARS, max_size=50), "data": st.text(_CHARS, max_size=20)},
    )


def requests(direction: Direction, action: str) -> st.SearchStrategy[Payload]:
    sender, _ = VERSIONS[direction]
    strategy = from_schema(sender, action, Kind.REQUEST)
    if (direction, action) == (Direction.CHARGER_TO_CSMS, "DataTransfer"):
        strategy = strategy | _tunnelled_request()
    return strategy


def answers(
    receiver: Version, forwarded_action: str, forwarded: Payload
) -> st.SearchStrategy[Payload]:
    """Schema-valid answers of the receiver; a tunnelled request also gets real tunnel answers."""
    strategy = from_schema(receiver, forwarded_action, Kind.RESPONSE)
    if forwarded_action == "DataTransfer" and pnc.is_tunnelled(forwarded):
        inner_action = forwarded.get("messageId")
        if isinstance(inner_action, str) and inner_action in schemas.known_actions(Version.V201):
            strategy = strategy | from_schema(Version.V201, inner_action, Kind.RESPONSE).map(
                lambda inner: {"status": "Accepted", "data": json.dumps(inner)}
            )
    return strategy


def converted(convert: Callable[[], Outcome], what: str) -> Outcome | None:
    """Run a converter; None when it refuses with the documented GatewayError."""
    try:
        return convert()
    except GatewayError as refusal:
        event(f"{what} refused: {type(refusal).__name__} {refusal.code}")
        return None


def check_route(
    direction: Direction, action: str, received: Payload, ctx: Context, data: st.DataObject
) -> None:
    """One received CALL through its route: refused, or valid on the wire all the way."""
    route = ROUTES[(direction, action)]
    sender, receiver = VERSIONS[direction]
    untouched = copy.deepcopy(received)
    converters = [("request", route.request)]
    if route.before_accepted is not None and route.before_accepted is not route.request:
        converters.append(("before_accepted", route.before_accepted))
    for name, request_converter in converters:
        outcome = converted(lambda: request_converter(received, ctx), name)  # noqa: B023
        if outcome is None:
            continue
        then = list(outcome.then)
        if outcome.forward is None:
            event(f"{name} answered by the gateway")
            reply = outcome.reply or {}  # as TranslatingSession._translate_call
        else:
            forward = outcome.forward
            event(f"{name} forwarded as {forward.action}")
            assert forward.action in (route.target, *route.also), forward.action
            assert_valid_on_the_wire(receiver, forward.action, Kind.REQUEST, forward.payload)
            answer = data.draw(answers(receiver, forward.action, forward.payload), label="answer")
            untouched_answer = copy.deepcopy(answer)
            answered = converted(lambda: route.result(answer, received, ctx), "result")  # noqa: B023
            assert answer == untouched_answer, "the result converter mutated the answer"
            if answered is None:
                continue
            assert answered.forward is None
            reply = answered.reply or {}
            then += answered.then
        assert_valid_on_the_wire(sender, action, Kind.RESPONSE, reply)
        for call in then:  # follow-up CALLs always go to the 2.0.1 CSMS
            assert_valid_on_the_wire(Version.V201, call.action, Kind.REQUEST, call.payload)
    assert received == untouched, "a converter mutated the received payload"


ROUTE_KEYS: Final = [
    pytest.param(direction, action, id=f"{direction.value}:{action}")
    for direction, action in ROUTES
]


@pytest.mark.parametrize(("direction", "action"), ROUTE_KEYS)
@FUZZ
@given(data=st.data())
def test_a_schema_valid_request_is_refused_or_translated_into_valid_payloads(
    direction: Direction, action: str, data: st.DataObject
) -> None:
    """Every route, schema-valid input from the schema itself: a GatewayError refusal,
    or a forwarded CALL, reply and follow-up CALLs that are all valid on the wire."""
    received = data.draw(requests(direction, action), label="received")
    ctx = make_context(data.draw(STATION_FACTS, label="station facts"))
    check_route(direction, action, received, ctx, data)


# =========================================================================== found bugs

# Regression tests for the bugs this fuzzing found (each was a strict xfail until fixed).

_STATUS = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}


@pytest.mark.parametrize("timestamp", OVERFLOWING_DATE_TIMES)
@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("StatusNotification", _STATUS),
        ("SecurityEventNotification", {"type": "FirmwareUpdated"}),
    ],
)
def test_a_date_time_at_the_end_of_the_calendar_is_refused_not_crashed(
    action: str, payload: Payload, timestamp: str
) -> None:
    """Valid for both validators, but not representable in UTC: the converter refuses
    with PropertyConstraintViolation (it raised OverflowError before)."""
    received = {**payload, "timestamp": timestamp}
    assert gateway_accepts(Version.V16, action, Kind.REQUEST, received)
    assert not reference_errors(Version.V16, action, Kind.REQUEST, received)
    ctx = make_context(FACTS_AT_REST)
    with pytest.raises(GatewayError) as refused:
        ROUTES[(Direction.CHARGER_TO_CSMS, action)].request(received, ctx)
    assert refused.value.code == "PropertyConstraintViolation"


@pytest.mark.parametrize("moment", LENIENT_DATE_TIMES)
def test_the_gateway_refuses_the_date_times_rfc_3339_refuses(moment: str) -> None:
    """Year 0000 and offsets without a colon were accepted by the gateway's date-time
    pattern and then forwarded unchanged (found by fuzzing): now they are refused where
    they come in, from a charger and from the CSMS."""
    status = {**_STATUS, "timestamp": moment}
    assert not gateway_accepts(Version.V16, "StatusNotification", Kind.REQUEST, status)
    answer = {"currentTime": moment}
    assert not gateway_accepts(Version.V201, "Heartbeat", Kind.RESPONSE, answer)
