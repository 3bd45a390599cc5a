"""Tests for the sims' independent OCPP-J framing and schema validation."""

from __future__ import annotations

import json

import pytest

from gateway.sim.wire import (
    Call,
    CallError,
    CallResult,
    Frame,
    FrameError,
    SchemaValidator,
    decode,
    encode,
    is_rfc3339_date_time,
    new_message_id,
    utc_now,
)


@pytest.fixture(scope="module")
def validator() -> SchemaValidator:
    """One validator for the module (it caches compiled schemas)."""
    return SchemaValidator()


def test_valid_1_6_status_notification_has_no_errors(validator: SchemaValidator) -> None:
    """A complete 1.6 StatusNotification validates cleanly."""
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    assert validator.errors("1.6", "StatusNotification", "request", payload) == []


def test_1_6_status_notification_missing_error_code_is_invalid(
    validator: SchemaValidator,
) -> None:
    """A 1.6 StatusNotification without errorCode is reported."""
    payload = {"connectorId": 1, "status": "Available"}
    errors = validator.errors("1.6", "StatusNotification", "request", payload)
    assert len(errors) == 1
    assert "errorCode" in errors[0]


def test_1_6_response_schema_is_the_action_response_file(validator: SchemaValidator) -> None:
    """1.6 responses are checked against <Action>Response.json."""
    valid = {"currentTime": utc_now(), "interval": 300, "status": "Accepted"}
    assert validator.errors("1.6", "BootNotification", "response", valid) == []
    invalid = {**valid, "status": "Maybe"}
    assert validator.errors("1.6", "BootNotification", "response", invalid)


def test_valid_2_0_1_boot_notification_request_has_no_errors(
    validator: SchemaValidator,
) -> None:
    """A minimal 2.0.1 BootNotificationRequest validates cleanly."""
    payload = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
    assert validator.errors("2.0.1", "BootNotification", "request", payload) == []


def test_2_0_1_boot_notification_request_errors_are_all_listed(
    validator: SchemaValidator,
) -> None:
    """Missing vendorName and an extra property are both reported with their paths."""
    payload = {"reason": "PowerUp", "chargingStation": {"model": "M"}, "extra": 1}
    errors = validator.errors("2.0.1", "BootNotification", "request", payload)
    assert len(errors) == 2
    assert any(error.startswith("$.chargingStation") and "vendorName" in error for error in errors)
    assert any("extra" in error for error in errors)


def test_bad_date_time_is_invalid_in_both_versions(validator: SchemaValidator) -> None:
    """date-time formats are enforced (1.6 draft-04 and 2.0.1 draft-06 schemas)."""
    v16 = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "now"}
    assert validator.errors("1.6", "StatusNotification", "request", v16)
    v201 = {
        "timestamp": "2024-02-30T10:00:00Z",
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    }
    assert validator.errors("2.0.1", "StatusNotification", "request", v201)
    v201["timestamp"] = "2024-02-29T10:00:00.123+01:00"
    assert validator.errors("2.0.1", "StatusNotification", "request", v201) == []


def test_unknown_action_has_no_schema(validator: SchemaValidator) -> None:
    """An action without a schema is an error, never a silent pass."""
    assert validator.errors("2.0.1", "NoSuchAction", "request", {}) == [
        "no schema for OCPP 2.0.1 NoSuchAction request"
    ]
    assert not validator.has_schema("1.6", "../v201/schemas/Heartbeat", "request")
    assert not validator.has_schema("1.6", "HeartbeatResponse", "request")
    assert not validator.has_schema("1.6", "TransactionEvent", "request")
    assert validator.has_schema("2.0.1", "TransactionEvent", "request")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2024-01-01T00:00:00Z", True),
        ("2024-01-01t00:00:00.5z", True),
        ("2024-01-01T00:00:00-05:30", True),
        ("2016-12-31T23:59:60Z", True),
        ("2024-01-01T00:00:00", False),
        ("2024-01-01 00:00:00Z", False),
        ("2024-13-01T00:00:00Z", False),
        ("2024-01-01T24:00:00Z", False),
        ("2024-01-01T00:00:00+24:00", False),
        ("\uff12\uff10\uff12\uff14-01-01T00:00:00Z", False),  # non-ASCII digits
        (12, True),
    ],
)
def test_rfc3339_date_time_checker(value: object, valid: bool) -> None:
    """The date-time checker follows RFC 3339 (non-strings are left to the type check)."""
    assert is_rfc3339_date_time(value) is valid


def test_frames_round_trip_through_encode_and_decode() -> None:
    """Every frame kind survives encode -> decode unchanged."""
    message_id = new_message_id()
    frames: list[Frame] = [
        Call(message_id, "Heartbeat", {}),
        CallResult(message_id, {"currentTime": "2024-01-01T00:00:00Z"}),
        CallError(message_id, "NotImplemented", "nope", {"a": 1}),
    ]
    for frame in frames:
        assert decode(encode(frame)) == frame
    assert json.loads(encode(frames[0])) == [2, message_id, "Heartbeat", {}]
    assert len(message_id) <= 36


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{}",
        "[]",
        '[5, "1", {}]',
        '[true, "1", "Heartbeat", {}]',
        '[2, 1, "Heartbeat", {}]',
        '[2, "1", "Heartbeat"]',
        '[2, "1", "Heartbeat", []]',
        '[3, "1", "x"]',
        '[4, "1", "GenericError", "d"]',
        '[4, "1", "GenericError", "d", []]',
    ],
)
def test_malformed_frames_are_rejected(text: str) -> None:
    """decode() refuses anything that is not a well-formed OCPP-J message."""
    with pytest.raises(FrameError):
        decode(text)
