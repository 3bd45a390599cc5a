"""Tests for gateway.ocppj: OCPP-J framing and per-version error-code spellings."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import ErrorCode, FrameError
from gateway.ocppj import (
    MAX_ERROR_DESCRIPTION,
    MAX_UNIQUE_ID_LENGTH,
    Call,
    CallError,
    CallResult,
    Version,
    dump_call,
    dump_error,
    dump_result,
    error_code_for,
    parse,
    read_error_code,
)

# The complete CALLERROR code list of OCPP-J 1.6 §4.2.3, typos included (errata §5.1/5.2).
V16_ERROR_CODES = frozenset(
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

# The complete list of OCPP 2.0.1 Part 4 §4.3.
V201_ERROR_CODES = frozenset(
    {
        "FormatViolation",
        "GenericError",
        "InternalError",
        "MessageTypeNotSupported",
        "NotImplemented",
        "NotSupported",
        "OccurrenceConstraintViolation",
        "PropertyConstraintViolation",
        "ProtocolError",
        "RpcFrameworkError",
        "SecurityError",
        "TypeConstraintViolation",
    }
)

# The two codes 2.0.1 added; 1.6 has no spelling for them at all.
NEW_IN_2_0_1 = frozenset({ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED, ErrorCode.RPC_FRAMEWORK_ERROR})

FRAME_TYPES = (Call, CallResult, CallError)

# --- strategies ---------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
unique_ids = st.text(min_size=1, max_size=MAX_UNIQUE_ID_LENGTH)
# Anything that could sit in a frame's first element, the valid types included.
message_types = st.sampled_from([2, 3, 4]) | json_values


# --- round trips --------------------------------------------------------------------


def test_call_round_trips_through_dump_and_parse() -> None:
    """A CALL built by dump_call parses back to the same id, action and payload."""
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    text = dump_call("19223201", "StatusNotification", payload)
    assert orjson.loads(text) == [2, "19223201", "StatusNotification", payload]
    assert parse(text) == Call("19223201", "StatusNotification", payload)


def test_call_result_round_trips_through_dump_and_parse() -> None:
    """A CALLRESULT built by dump_result parses back to the same id and payload."""
    payload = {"currentTime": "2024-05-01T12:00:00.000Z"}
    text = dump_result("abc-1", payload)
    assert orjson.loads(text) == [3, "abc-1", payload]
    assert parse(text) == CallResult("abc-1", payload)


def test_call_error_round_trips_through_dump_and_parse() -> None:
    """A CALLERROR built by dump_error parses back with its code, description and details."""
    text = dump_error(
        "abc-2", ErrorCode.NOT_SUPPORTED, "no such thing", Version.V201, {"hint": "x"}
    )
    assert orjson.loads(text) == [4, "abc-2", "NotSupported", "no such thing", {"hint": "x"}]
    assert parse(text) == CallError("abc-2", "NotSupported", "no such thing", {"hint": "x"})


def test_parse_accepts_bytes_as_well_as_text() -> None:
    """A websocket binary message carrying the same JSON parses like the text one."""
    assert parse(b'[2,"id","Heartbeat",{}]') == Call("id", "Heartbeat", {})


def test_parse_accepts_an_id_of_exactly_36_characters() -> None:
    """36 characters is the maximum id length both versions allow, so it is valid."""
    unique_id = "x" * MAX_UNIQUE_ID_LENGTH
    assert parse(f'[3,"{unique_id}",{{}}]') == CallResult(unique_id, {})


@given(unique_id=unique_ids, action=st.text(min_size=1, max_size=30), payload=json_objects)
def test_any_call_round_trips(unique_id: str, action: str, payload: dict[str, object]) -> None:
    """Every CALL with a valid id, action and object payload survives dump then parse."""
    assert parse(dump_call(unique_id, action, payload)) == Call(unique_id, action, payload)


@given(unique_id=unique_ids, payload=json_objects)
def test_any_call_result_round_trips(unique_id: str, payload: dict[str, object]) -> None:
    """Every CALLRESULT with a valid id and object payload survives dump then parse."""
    assert parse(dump_result(unique_id, payload)) == CallResult(unique_id, payload)


# --- malformed frames ---------------------------------------------------------------

# (case id, frame text, unique_id the FrameError must carry, code it must carry)
MALFORMED = [
    ("not JSON", "[2, 'single quotes', 'Heartbeat', {}]", None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("truncated JSON", '[2, "id", "Heartbeat", {', None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("empty message", "", None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("trailing garbage", '[3, "id", {}] x', None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("an object", '{"id": "1"}', None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("a string", '"[2, \\"id\\"]"', None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("a number", "2", None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("empty array", "[]", None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("one element", "[2]", None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("id is a number", '[2, 1, "Heartbeat", {}]', None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("id is null", "[3, null, {}]", None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("id is empty", '[3, "", {}]', None, ErrorCode.RPC_FRAMEWORK_ERROR),
    ("id of 37 characters", f'[3, "{"x" * 37}", {{}}]', None, ErrorCode.RPC_FRAMEWORK_ERROR),
    (
        "unknown message type 5",
        '[5, "id-5", {}]',
        "id-5",
        ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
    ),
    (
        "message type as a string",
        '["2", "id-s", "Heartbeat", {}]',
        "id-s",
        ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
    ),
    (
        "message type as a boolean",
        '[true, "id-b", {}]',
        "id-b",
        ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
    ),
    (
        "message type as a float",
        '[2.0, "id-f", "Heartbeat", {}]',
        "id-f",
        ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
    ),
    ("CALL without payload", '[2, "c1", "Heartbeat"]', "c1", ErrorCode.RPC_FRAMEWORK_ERROR),
    ("CALL with 5 elements", '[2, "c2", "Heartbeat", {}, {}]', "c2", ErrorCode.RPC_FRAMEWORK_ERROR),
    ("CALL action not a string", '[2, "c3", 7, {}]', "c3", ErrorCode.RPC_FRAMEWORK_ERROR),
    ("CALL action empty", '[2, "c4", "", {}]', "c4", ErrorCode.RPC_FRAMEWORK_ERROR),
    ("CALL payload a list", '[2, "c5", "Heartbeat", []]', "c5", ErrorCode.RPC_FRAMEWORK_ERROR),
    ("CALL payload a string", '[2, "c6", "Heartbeat", "{}"]', "c6", ErrorCode.RPC_FRAMEWORK_ERROR),
    ("CALL payload null", '[2, "c7", "Heartbeat", null]', "c7", ErrorCode.RPC_FRAMEWORK_ERROR),
    ("CALLRESULT payload a list", '[3, "r1", []]', "r1", ErrorCode.RPC_FRAMEWORK_ERROR),
    ("CALLRESULT with 4 elements", '[3, "r2", {}, {}]', "r2", ErrorCode.RPC_FRAMEWORK_ERROR),
]


@pytest.mark.parametrize(
    ("text", "unique_id", "code"),
    [pytest.param(text, uid, code, id=name) for name, text, uid, code in MALFORMED],
)
def test_malformed_frame_raises_frame_error_keeping_a_readable_id(
    text: str, unique_id: str | None, code: ErrorCode
) -> None:
    """Each malformed shape raises FrameError, with the id when readable and the right code."""
    with pytest.raises(FrameError) as caught:
        parse(text)
    assert caught.value.unique_id == unique_id
    assert caught.value.code is code


def test_invalid_utf8_bytes_raise_frame_error_without_id() -> None:
    """Bytes that are not UTF-8 cannot be JSON, so parse raises FrameError with no id."""
    with pytest.raises(FrameError) as caught:
        parse(b'[2, "id", "Heartbeat", {"x": "\xff"}]')
    assert caught.value.unique_id is None


MALFORMED_CALLERROR = [
    ("CALLERROR with 4 elements", '[4, "e1", "GenericError", "oops"]'),
    ("CALLERROR code not a string", '[4, "e2", 500, "oops", {}]'),
    ("CALLERROR description not a string", '[4, "e3", "GenericError", null, {}]'),
    ("CALLERROR details a list", '[4, "e4", "GenericError", "oops", []]'),
]


@pytest.mark.parametrize(
    "text", [pytest.param(text, id=name) for name, text in MALFORMED_CALLERROR]
)
def test_malformed_call_error_raises_frame_error(text: str) -> None:
    """A CALLERROR of the wrong shape raises FrameError, never a partial CallError."""
    with pytest.raises(FrameError) as caught:
        parse(text)
    assert caught.value.code is ErrorCode.RPC_FRAMEWORK_ERROR


@pytest.mark.parametrize(
    "text", [pytest.param(text, id=name) for name, text in MALFORMED_CALLERROR]
)
def test_malformed_call_error_keeps_its_readable_id(text: str) -> None:
    """A malformed CALLERROR whose id was readable carries that id in the FrameError."""
    with pytest.raises(FrameError) as caught:
        parse(text)
    assert caught.value.unique_id == orjson.loads(text)[1]


def test_too_short_array_with_a_readable_id_keeps_it() -> None:
    """[2, "id"] is too short, but its id is readable and is carried in the FrameError."""
    with pytest.raises(FrameError) as caught:
        parse('[2, "short-1"]')
    assert caught.value.unique_id == "short-1"


# --- parse never raises anything but FrameError -------------------------------------


def _parse_only_frame_errors(data: str | bytes) -> None:
    try:
        frame = parse(data)
    except FrameError as exc:
        assert exc.code in {ErrorCode.RPC_FRAMEWORK_ERROR, ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED}
        assert exc.unique_id is None or 0 < len(exc.unique_id) <= MAX_UNIQUE_ID_LENGTH
    else:
        assert isinstance(frame, FRAME_TYPES)
        assert isinstance(frame.unique_id, str)
        assert 0 < len(frame.unique_id) <= MAX_UNIQUE_ID_LENGTH


@given(st.binary())
def test_parse_of_any_bytes_raises_only_frame_error(data: bytes) -> None:
    """Arbitrary bytes either parse to a frame or raise FrameError, nothing else."""
    _parse_only_frame_errors(data)


@given(st.text())
def test_parse_of_any_text_raises_only_frame_error(data: str) -> None:
    """Arbitrary text either parses to a frame or raises FrameError, nothing else."""
    _parse_only_frame_errors(data)


@given(json_values)
def test_parse_of_any_json_value_raises_only_frame_error(value: object) -> None:
    """Any JSON document either parses to a frame or raises FrameError, nothing else."""
    _parse_only_frame_errors(orjson.dumps(value))


@given(
    kind=message_types,
    unique_id=st.text(max_size=40) | json_values,
    rest=st.lists(json_values, max_size=4),
)
def test_parse_of_any_frame_shaped_array_raises_only_frame_error(
    kind: object, unique_id: object, rest: list[object]
) -> None:
    """Arrays shaped almost like frames either parse or raise FrameError, nothing else."""
    _parse_only_frame_errors(orjson.dumps([kind, unique_id, *rest]))


# --- error-code spellings -----------------------------------------------------------


def test_format_violation_is_spelled_formation_violation_for_1_6() -> None:
    """OCPP-J 1.6 keeps the typo FormationViolation (errata §5.1)."""
    assert error_code_for(ErrorCode.FORMAT_VIOLATION, Version.V16) == "FormationViolation"


def test_occurrence_violation_is_spelled_occurence_for_1_6() -> None:
    """OCPP-J 1.6 keeps the typo OccurenceConstraintViolation (errata §5.2)."""
    code = ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION
    assert error_code_for(code, Version.V16) == "OccurenceConstraintViolation"


def test_2_0_1_spellings_are_the_canonical_ones() -> None:
    """A 2.0.1 receiver gets FormatViolation and OccurrenceConstraintViolation."""
    assert error_code_for(ErrorCode.FORMAT_VIOLATION, Version.V201) == "FormatViolation"
    code = ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION
    assert error_code_for(code, Version.V201) == "OccurrenceConstraintViolation"


@pytest.mark.parametrize("code", sorted(NEW_IN_2_0_1))
def test_codes_new_in_2_0_1_become_a_1_6_code(code: ErrorCode) -> None:
    """MessageTypeNotSupported and RpcFrameworkError do not exist in 1.6 and are replaced."""
    assert error_code_for(code, Version.V16) in V16_ERROR_CODES


@given(st.sampled_from(ErrorCode))
def test_every_error_code_is_spelled_as_a_1_6_code_for_1_6(code: ErrorCode) -> None:
    """Whatever the gateway's code, a 1.6 charger receives one from the 1.6 list."""
    assert error_code_for(code, Version.V16) in V16_ERROR_CODES


@given(st.sampled_from(ErrorCode))
def test_every_error_code_is_spelled_as_a_2_0_1_code_for_2_0_1(code: ErrorCode) -> None:
    """Whatever the gateway's code, a 2.0.1 CSMS receives it unchanged from the 2.0.1 list."""
    assert error_code_for(code, Version.V201) == code.value
    assert code.value in V201_ERROR_CODES


@given(st.sampled_from(ErrorCode), st.sampled_from(Version))
def test_reading_a_spelled_code_gives_back_a_code_of_the_same_meaning(
    code: ErrorCode, version: Version
) -> None:
    """Reading what error_code_for wrote returns the code, except where 1.6 lacks it."""
    wire = error_code_for(code, version)
    read = read_error_code(wire)
    if version is Version.V16 and code in NEW_IN_2_0_1:
        assert read is not code  # replaced by a 1.6 code, which reads as itself
        assert error_code_for(read, Version.V16) == wire
    else:
        assert read is code


def test_error_code_enum_is_exactly_the_2_0_1_list() -> None:
    """ErrorCode has one member per 2.0.1 code, no more and no less."""
    assert {code.value for code in ErrorCode} == V201_ERROR_CODES


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        ("FormationViolation", ErrorCode.FORMAT_VIOLATION),
        ("FormatViolation", ErrorCode.FORMAT_VIOLATION),
        ("OccurenceConstraintViolation", ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
        ("OccurrenceConstraintViolation", ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
        ("NotImplemented", ErrorCode.NOT_IMPLEMENTED),
        ("SecurityError", ErrorCode.SECURITY_ERROR),
        ("RpcFrameworkError", ErrorCode.RPC_FRAMEWORK_ERROR),
    ],
)
def test_read_error_code_accepts_both_versions_spellings(wire: str, code: ErrorCode) -> None:
    """A received code in either version's spelling reads as the canonical code."""
    assert read_error_code(wire) is code


@pytest.mark.parametrize("wire", ["", "Whatever", "formatviolation", "NoError", "Timeout"])
def test_read_error_code_maps_unknown_codes_to_generic_error(wire: str) -> None:
    """A code neither version defines (case matters on the wire) reads as GenericError."""
    assert read_error_code(wire) is ErrorCode.GENERIC_ERROR


# --- dump_error ---------------------------------------------------------------------


def test_dump_error_truncates_the_description_to_255_characters() -> None:
    """ErrorDescription is string[255] (2.0.1 Part 4 §4.2.3): longer text is cut."""
    description = "é" * 300
    frame = orjson.loads(dump_error("x", ErrorCode.INTERNAL_ERROR, description, Version.V201))
    assert frame[3] == "é" * MAX_ERROR_DESCRIPTION


def test_dump_error_keeps_a_description_of_255_characters() -> None:
    """A description at the limit is sent whole."""
    description = "d" * MAX_ERROR_DESCRIPTION
    frame = orjson.loads(dump_error("x", ErrorCode.INTERNAL_ERROR, description, Version.V16))
    assert frame[3] == description


def test_dump_error_spells_the_code_for_the_receiver_version() -> None:
    """The same error is FormationViolation to a 1.6 charger, FormatViolation to the CSMS."""
    v16 = orjson.loads(dump_error("x", ErrorCode.FORMAT_VIOLATION, "bad", Version.V16))
    v201 = orjson.loads(dump_error("x", ErrorCode.FORMAT_VIOLATION, "bad", Version.V201))
    assert v16[2] == "FormationViolation"
    assert v201[2] == "FormatViolation"


def test_dump_error_sends_empty_details_when_none_given() -> None:
    """errorDetails is required on the wire; without details it is an empty object."""
    frame = orjson.loads(dump_error("x", ErrorCode.GENERIC_ERROR, "", Version.V201))
    assert frame == [4, "x", "GenericError", "", {}]
