"""Tests for gateway.translate.firmware: the status tables, the request-id helpers the
session uses, and properties over every schema-valid request (the golden pairs in
tests/data/{UpdateFirmware,GetLog,...} pin the individual rules).

Expected values come from reference messages.md §2.10, §2.11, §3.3 and §3.8.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ocppj import Payload, Version
from gateway.schemas import Kind, validate
from gateway.translate import firmware
from gateway.translate.types import Direction, RequestInProgress

from .conftest import MakeContext


def _enum(version: str, schema: str, *path: str) -> list[str]:
    """An enum of an official schema file of the ``ocpp`` package."""
    node: Any = json.loads(
        (importlib.resources.files("ocpp") / version / "schemas" / f"{schema}.json").read_text()
    )
    for key in path:
        node = node[key]
    values: list[str] = node["enum"]
    return values


DIAGNOSTICS_STATUS = _enum("v16", "DiagnosticsStatusNotification", "properties", "status")
LOG_STATUS_SEC = _enum("v16", "LogStatusNotification", "definitions", "UploadLogStatusEnumType")
LOG_STATUS_201 = _enum(
    "v201", "LogStatusNotificationRequest", "definitions", "UploadLogStatusEnumType"
)
FIRMWARE_STATUS = _enum("v16", "FirmwareStatusNotification", "properties", "status")
FIRMWARE_STATUS_SEC = _enum(
    "v16", "SignedFirmwareStatusNotification", "definitions", "FirmwareStatusEnumType"
)
FIRMWARE_STATUS_201 = _enum(
    "v201", "FirmwareStatusNotificationRequest", "definitions", "FirmwareStatusEnumType"
)
SIGNED_UPDATE_STATUS = _enum(
    "v16", "SignedUpdateFirmwareResponse", "definitions", "UpdateFirmwareStatusEnumType"
)
GET_LOG_STATUS = _enum("v16", "GetLogResponse", "definitions", "LogStatusEnumType")

CSMS_T = "2024-05-01T12:00:01.000Z"


# --- status tables ------------------------------------------------------------------


def test_upload_log_status_table_is_the_reference_table() -> None:
    """§2.10: the four DiagnosticsStatus values, UploadFailed renamed UploadFailure."""
    assert firmware.UPLOAD_LOG_STATUS == {
        "Idle": "Idle",
        "Uploading": "Uploading",
        "Uploaded": "Uploaded",
        "UploadFailed": "UploadFailure",
    }
    assert set(firmware.UPLOAD_LOG_STATUS) == set(DIAGNOSTICS_STATUS)


@pytest.mark.parametrize(
    ("action", "status"),
    [("DiagnosticsStatusNotification", s) for s in DIAGNOSTICS_STATUS]
    + [("LogStatusNotification", s) for s in LOG_STATUS_SEC],
)
def test_every_1_6_log_status_gives_a_valid_log_status_notification(
    action: str, status: str
) -> None:
    """Each 1.6 upload status (plain and security extension) is a 2.0.1 one; the
    extension's names are kept as they are."""
    notification = firmware.log_status_notification({"status": status}, 5)
    validate(Version.V201, "LogStatusNotification", Kind.REQUEST, notification)
    assert notification["requestId"] == 5
    if action == "LogStatusNotification":
        assert notification["status"] == status


@pytest.mark.parametrize("status", sorted(set(FIRMWARE_STATUS) | set(FIRMWARE_STATUS_SEC)))
def test_every_1_6_firmware_status_is_copied(status: str) -> None:
    """§2.11: the 2.0.1 enum is exactly the signed 1.6 one, a superset of the plain one."""
    notification = firmware.firmware_status_notification({"status": status}, None)
    assert notification == {"status": status}
    validate(Version.V201, "FirmwareStatusNotification", Kind.REQUEST, notification)


def test_firmware_status_enums_are_as_the_reference_says() -> None:
    """The 2.0.1 FirmwareStatusEnumType is the signed 1.6 set, which contains the plain one."""
    assert set(FIRMWARE_STATUS_201) == set(FIRMWARE_STATUS_SEC)
    assert set(FIRMWARE_STATUS) <= set(FIRMWARE_STATUS_SEC)


def test_final_statuses_are_2_0_1_values() -> None:
    """The statuses after which the session forgets the request id exist in 2.0.1."""
    assert set(FIRMWARE_STATUS_201) >= firmware.FIRMWARE_FINAL_STATUSES
    assert set(LOG_STATUS_201) >= firmware.LOG_FINAL_STATUSES
    assert {"Installed", "InstallationFailed", "DownloadFailed"} <= firmware.FIRMWARE_FINAL_STATUSES
    assert {"Uploaded", "UploadFailure"} <= firmware.LOG_FINAL_STATUSES


# --- the request id the session supplies --------------------------------------------


@pytest.mark.parametrize(
    "convert", [firmware.firmware_status_notification, firmware.log_status_notification]
)
def test_session_request_id_fills_in_a_missing_one(convert: Any) -> None:
    """Plain 1.6 notifications carry no requestId: the one the session passes is used."""
    payload = {"status": "Idle"}
    assert convert(payload, 42)["requestId"] == 42
    assert "requestId" not in convert(payload, None)
    assert payload == {"status": "Idle"}


@pytest.mark.parametrize(
    "convert", [firmware.firmware_status_notification, firmware.log_status_notification]
)
def test_charger_request_id_wins_over_the_session_one(convert: Any) -> None:
    """The security extension's own requestId is the charger's word: it is kept."""
    assert convert({"status": "Idle", "requestId": 7}, 42)["requestId"] == 7


def test_route_request_converters_send_no_request_id(make_context: MakeContext) -> None:
    """Without the station record the routes cannot know the id: they send none."""
    outcome = firmware.firmware_status_notification_req({"status": "Installed"}, make_context())
    assert outcome.forward is not None
    assert outcome.forward.payload == {"status": "Installed"}
    outcome = firmware.log_status_notification_req({"status": "Uploaded"}, make_context())
    assert outcome.forward is not None
    assert outcome.forward.payload == {"status": "Uploaded"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [("Accepted", 7), ("AcceptedCanceled", 7), ("Rejected", None)]
    + [(s, None) for s in ("InvalidCertificate", "RevokedCertificate")],
)
def test_started_request_id_only_for_a_started_request(status: str, expected: int | None) -> None:
    """The session keeps the requestId of an UpdateFirmware/GetLog the charger took on."""
    request = {"requestId": 7, "logType": "DiagnosticsLog", "log": {"remoteLocation": "ftp://x/"}}
    assert firmware.started_request_id({"status": status}, request) == expected


# --- answers ------------------------------------------------------------------------


@pytest.mark.parametrize("status", SIGNED_UPDATE_STATUS)
def test_every_signed_update_firmware_status_is_copied(
    status: str, make_context: MakeContext
) -> None:
    """§2.16: UpdateFirmwareStatusEnumType is identical in the extension and 2.0.1."""
    outcome = firmware.update_firmware_conf({"status": status}, {"requestId": 7}, make_context())
    assert outcome.reply == {"status": status}
    reply = outcome.reply
    # Accepted (and AcceptedCanceled: a new update replaces one) start request 7.
    started = status in ("Accepted", "AcceptedCanceled")
    assert outcome.effects == ((RequestInProgress("firmware", 7),) if started else ())
    validate(Version.V201, "UpdateFirmware", Kind.RESPONSE, reply)


@pytest.mark.parametrize("status", GET_LOG_STATUS)
def test_every_get_log_status_is_copied(status: str, make_context: MakeContext) -> None:
    """§2.16: LogStatusEnumType is identical in the extension and 2.0.1."""
    outcome = firmware.get_log_conf({"status": status}, {"requestId": 8}, make_context())
    assert outcome.reply == {"status": status}
    reply = outcome.reply
    started = status in ("Accepted", "AcceptedCanceled")
    assert outcome.effects == ((RequestInProgress("log", 8),) if started else ())
    validate(Version.V201, "GetLog", Kind.RESPONSE, reply)


# --- properties over every schema-valid CSMS request --------------------------------

datetimes = st.sampled_from(
    [CSMS_T, "2024-05-01T13:00:00+01:00", "2024-05-02T00:00:00Z", "2024-04-30T23:59:59.5Z"]
)
locations = st.sampled_from(
    ["https://fw.example.com/a.bin", "ftp://u:p@h/dir/", "fw.example.com/a.bin", "", "x y:z"]
)
counts = st.integers(0, 10)

firmware_types = st.fixed_dictionaries(
    {"location": locations, "retrieveDateTime": datetimes},
    optional={
        "installDateTime": datetimes,
        "signingCertificate": st.just("-----BEGIN CERTIFICATE-----\nMII\n"),
        "signature": st.just("MEUCIQD"),
    },
)
update_requests = st.fixed_dictionaries(
    {"requestId": st.integers(0, 1000), "firmware": firmware_types},
    optional={"retries": counts, "retryInterval": counts},
)
log_requests = st.fixed_dictionaries(
    {
        "logType": st.sampled_from(["DiagnosticsLog", "SecurityLog"]),
        "requestId": st.integers(0, 1000),
        "log": st.fixed_dictionaries(
            {"remoteLocation": locations},
            optional={"oldestTimestamp": datetimes, "latestTimestamp": datetimes},
        ),
    },
    optional={"retries": counts, "retryInterval": counts},
)


def _check(action: str, received: Payload, extension: bool, make_context: MakeContext) -> Any:
    """Translate ``received``: a schema-valid 1.6 CALL, or a valid 2.0.1 refusal."""
    validate(Version.V201, action, Kind.REQUEST, received)
    untouched = copy.deepcopy(received)
    route = firmware.ROUTES[(Direction.CSMS_TO_CHARGER, action)]
    outcome = route.request(received, make_context(security_extension=extension))
    assert received == untouched
    if outcome.forward is None:
        assert outcome.reply is not None
        validate(Version.V201, action, Kind.RESPONSE, outcome.reply)
        assert outcome.reply["status"] == "Rejected"
        return None
    assert outcome.forward.action in (route.target, *route.also)
    validate(Version.V16, outcome.forward.action, Kind.REQUEST, outcome.forward.payload)
    return outcome.forward


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(received=update_requests, extension=st.booleans())
def test_any_update_firmware_gives_a_valid_1_6_call_or_a_refusal(
    received: Payload, extension: bool, make_context: MakeContext
) -> None:
    """Whatever the CSMS asks, the charger gets a valid CALL or the CSMS a valid
    refusal; a signature is never dropped, and only the extension gets one."""
    forward = _check("UpdateFirmware", received, extension, make_context)
    signed = {"signature", "signingCertificate"} & received["firmware"].keys()
    if forward is None:
        return
    if signed:
        assert extension
        assert forward.action == "SignedUpdateFirmware"
        assert forward.payload == received
    else:
        assert forward.action == "UpdateFirmware"
        assert forward.payload["location"] == received["firmware"]["location"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(received=log_requests, extension=st.booleans())
def test_any_get_log_gives_a_valid_1_6_call_or_a_refusal(
    received: Payload, extension: bool, make_context: MakeContext
) -> None:
    """The extension gets GetLog unchanged; else a DiagnosticsLog becomes GetDiagnostics
    and a SecurityLog is refused."""
    forward = _check("GetLog", received, extension, make_context)
    if extension:
        assert forward is not None
        assert (forward.action, forward.payload) == ("GetLog", received)
    elif received["logType"] == "SecurityLog":
        assert forward is None
    elif forward is not None:
        assert forward.action == "GetDiagnostics"
