"""Tests for gateway.schemas: official-schema validation and the code each failed rule gives."""

from __future__ import annotations

import copy

import pytest

from gateway.errors import ErrorCode, InvalidPayload
from gateway.ocppj import Payload, Version
from gateway.schemas import Kind, known_actions, validate

V16, V201 = Version.V16, Version.V201
REQUEST, RESPONSE = Kind.REQUEST, Kind.RESPONSE
NOW = "2024-05-01T12:00:00.000Z"

VALID = [
    ("1.6 BootNotification", V16, "BootNotification", REQUEST,
     {"chargePointVendor": "ACME", "chargePointModel": "Wallbox"}),
    ("1.6 BootNotification.conf", V16, "BootNotification", RESPONSE,
     {"status": "Accepted", "currentTime": NOW, "interval": 300}),
    ("1.6 Heartbeat", V16, "Heartbeat", REQUEST, {}),
    ("1.6 StatusNotification", V16, "StatusNotification", REQUEST,
     {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": NOW}),
    ("1.6 StatusNotification.conf", V16, "StatusNotification", RESPONSE, {}),
    ("1.6 Authorize", V16, "Authorize", REQUEST, {"idTag": "x" * 20}),
    ("1.6 Authorize.conf", V16, "Authorize", RESPONSE,
     {"idTagInfo": {"status": "Accepted", "expiryDate": NOW, "parentIdTag": "P"}}),
    ("1.6 DataTransfer", V16, "DataTransfer", REQUEST, {"vendorId": "v", "data": "d"}),
    ("2.0.1 BootNotification", V201, "BootNotification", REQUEST,
     {"reason": "PowerUp", "chargingStation": {"model": "Wallbox", "vendorName": "ACME"}}),
    ("2.0.1 BootNotificationResponse", V201, "BootNotification", RESPONSE,
     {"status": "Pending", "currentTime": NOW, "interval": 0}),
    ("2.0.1 Heartbeat", V201, "Heartbeat", REQUEST, {}),
    ("2.0.1 StatusNotification", V201, "StatusNotification", REQUEST,
     {"timestamp": NOW, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}),
    ("2.0.1 Authorize", V201, "Authorize", REQUEST,
     {"idToken": {"idToken": "04A1B2C3", "type": "ISO14443"}}),
    ("2.0.1 DataTransfer object data", V201, "DataTransfer", REQUEST,
     {"vendorId": "v", "data": {"any": ["json", 1]}}),
    ("2.0.1 TransactionEventResponse", V201, "TransactionEvent", RESPONSE, {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("version", "action", "kind", "payload"),
    [pytest.param(v, a, k, p, id=name) for name, v, a, k, p in VALID],
)
def test_valid_payload_passes(version: Version, action: str, kind: Kind, payload: Payload) -> None:
    """A payload that follows the official schema validates without raising."""
    validate(version, action, kind, payload)


# (case, version, action, kind, payload, expected code, field named in the description)
INVALID = [
    # required property absent -> OccurrenceConstraintViolation
    ("1.6 missing idTag", V16, "Authorize", REQUEST, {},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, "idTag"),
    ("1.6 missing errorCode", V16, "StatusNotification", REQUEST,
     {"connectorId": 1, "status": "Available"},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, "errorCode"),
    ("2.0.1 missing reason", V201, "BootNotification", REQUEST,
     {"chargingStation": {"model": "m", "vendorName": "v"}},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, "reason"),
    ("2.0.1 nested missing model", V201, "BootNotification", REQUEST,
     {"reason": "PowerUp", "chargingStation": {"vendorName": "v"}},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, "chargingStation"),
    ("2.0.1 empty eventData", V201, "NotifyEvent", REQUEST,
     {"generatedAt": NOW, "seqNo": 0, "eventData": []},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, "eventData"),
    # wrong JSON type -> TypeConstraintViolation
    ("1.6 connectorId a string", V16, "StatusNotification", REQUEST,
     {"connectorId": "1", "errorCode": "NoError", "status": "Available"},
     ErrorCode.TYPE_CONSTRAINT_VIOLATION, "connectorId"),
    ("1.6 interval a string", V16, "BootNotification", RESPONSE,
     {"status": "Accepted", "currentTime": NOW, "interval": "300"},
     ErrorCode.TYPE_CONSTRAINT_VIOLATION, "interval"),
    ("2.0.1 evseId a float", V201, "StatusNotification", REQUEST,
     {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1.5, "connectorId": 1},
     ErrorCode.TYPE_CONSTRAINT_VIOLATION, "evseId"),
    ("2.0.1 idToken an array", V201, "Authorize", REQUEST, {"idToken": []},
     ErrorCode.TYPE_CONSTRAINT_VIOLATION, "idToken"),
    # bad enum value, too long, bad date-time -> PropertyConstraintViolation
    ("1.6 unknown status", V16, "StatusNotification", REQUEST,
     {"connectorId": 1, "errorCode": "NoError", "status": "Occupied"},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "status"),
    ("2.0.1 1.6 status value", V201, "StatusNotification", REQUEST,
     {"timestamp": NOW, "connectorStatus": "Charging", "evseId": 1, "connectorId": 1},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "connectorStatus"),
    ("1.6 idTag of 21 characters", V16, "Authorize", REQUEST, {"idTag": "x" * 21},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "idTag"),
    ("2.0.1 model of 21 characters", V201, "BootNotification", REQUEST,
     {"reason": "PowerUp", "chargingStation": {"model": "m" * 21, "vendorName": "v"}},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "model"),
    ("1.6 timestamp not a date-time", V16, "StatusNotification", REQUEST,
     {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "today"},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "timestamp"),
    ("2.0.1 currentTime without zone", V201, "Heartbeat", RESPONSE,
     {"currentTime": "2024-05-01 12:00"},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "currentTime"),
    # property the schema does not define -> FormatViolation
    ("1.6 extra property", V16, "Heartbeat", REQUEST, {"uptime": 5},
     ErrorCode.FORMAT_VIOLATION, "uptime"),
    ("2.0.1 extra property", V201, "Heartbeat", REQUEST, {"uptime": 5},
     ErrorCode.FORMAT_VIOLATION, "uptime"),
    ("2.0.1 1.6 field copied across", V201, "BootNotification", REQUEST,
     {"reason": "PowerUp",
      "chargingStation": {"model": "m", "vendorName": "v", "meterType": "x"}},
     ErrorCode.FORMAT_VIOLATION, "meterType"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("version", "action", "kind", "payload", "code", "field"),
    [pytest.param(v, a, k, p, c, f, id=name) for name, v, a, k, p, c, f in INVALID],
)
def test_invalid_payload_raises_the_code_of_the_failed_rule(
    version: Version, action: str, kind: Kind, payload: Payload, code: ErrorCode, field: str
) -> None:
    """Each failed schema rule gives its OCPP-J error code and names the offending field."""
    with pytest.raises(InvalidPayload) as caught:
        validate(version, action, kind, payload)
    assert caught.value.code is code
    assert field in caught.value.description
    assert action in caught.value.description


def test_request_and_response_schemas_are_distinct() -> None:
    """A BootNotification request is not a valid BootNotification response, nor vice versa."""
    request = {"chargePointVendor": "ACME", "chargePointModel": "Wallbox"}
    with pytest.raises(InvalidPayload):
        validate(V16, "BootNotification", RESPONSE, request)
    validate(V16, "BootNotification", REQUEST, request)


def test_unknown_action_raises_key_error() -> None:
    """An action without a schema in that version is a KeyError, not a payload error."""
    with pytest.raises(KeyError):
        validate(V16, "TransactionEvent", REQUEST, {})
    with pytest.raises(KeyError):
        validate(V201, "StartTransaction", REQUEST, {})


@pytest.mark.parametrize(
    "action",
    ["StartTransaction", "StopTransaction", "RemoteStartTransaction", "ChangeConfiguration",
     "GetConfiguration", "GetDiagnostics", "DiagnosticsStatusNotification"],
)  # fmt: skip
def test_known_actions_of_1_6_only(action: str) -> None:
    """Actions that exist only in OCPP 1.6 are known for 1.6 and not for 2.0.1."""
    assert action in known_actions(V16)
    assert action not in known_actions(V201)


@pytest.mark.parametrize(
    "action",
    ["TransactionEvent", "NotifyEvent", "GetVariables", "SetVariables", "RequestStartTransaction",
     "NotifyReport", "GetBaseReport"],
)  # fmt: skip
def test_known_actions_of_2_0_1_only(action: str) -> None:
    """Actions that exist only in OCPP 2.0.1 are known for 2.0.1 and not for 1.6."""
    assert action in known_actions(V201)
    assert action not in known_actions(V16)


@pytest.mark.parametrize(
    "action",
    ["BootNotification", "Heartbeat", "StatusNotification", "Authorize", "DataTransfer",
     "MeterValues", "Reset", "TriggerMessage"],
)  # fmt: skip
def test_known_actions_of_both_versions(action: str) -> None:
    """Actions both versions define are known for both."""
    assert action in known_actions(V16)
    assert action in known_actions(V201)


@pytest.mark.parametrize("version", list(Version))
def test_known_actions_are_bare_action_names(version: Version) -> None:
    """known_actions strips the file suffixes: no Request/Response names leak in."""
    actions = known_actions(version)
    assert actions
    assert not any(a.endswith(("Request", "Response", ".json")) for a in actions)


@pytest.mark.parametrize("version", list(Version))
def test_every_known_action_has_request_and_response_schemas(version: Version) -> None:
    """Each known action validates both ways; an empty payload can only lack required fields."""
    for action in sorted(known_actions(version)):
        for kind in Kind:
            try:
                validate(version, action, kind, {})
            except InvalidPayload as exc:
                assert exc.code is ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, (action, kind)


def test_validation_never_writes_schema_defaults_into_the_payload() -> None:
    """fastjsonschema fills defaults unless told not to; a validated payload is unchanged."""
    payload = {
        "connectorId": 1,
        "meterValue": [{"timestamp": "2024-05-01T11:59:58Z", "sampledValue": [{"value": "1"}]}],
    }
    before = copy.deepcopy(payload)
    validate(Version.V16, "MeterValues", Kind.REQUEST, payload)
    assert payload == before
