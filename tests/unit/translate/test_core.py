"""Tests for gateway.translate.core: golden pairs through ROUTES (core and operations
converters alike), plus table properties.

The golden pairs live in ``tests/data/<Action>/<case>.json`` (format: tests/data/README.md).
Every payload of every pair is validated against the official schema of its version.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.v16.enums import AuthorizationStatus, ChargePointErrorCode, ChargePointStatus
from ocpp.v201.enums import (
    AuthorizationStatusEnumType,
    ConnectorStatusEnumType,
    MessageTriggerEnumType,
    StatusInfoReasonType,
)

from gateway.ocppj import Payload, Version
from gateway.schemas import Kind, known_actions, validate
from gateway.translate import core
from gateway.translate.dispatch import ROUTES
from gateway.translate.tables import (
    IdTokenRule,
    IdTokenRules,
    Tier,
    TranslationTables,
    VendorIdTokenRules,
)
from gateway.translate.types import (
    ConnectorErrorChanged,
    Context,
    Direction,
    OutboundCall,
    Outcome,
    RegistrationChanged,
    StationView,
)

from .conftest import MakeContext

DATA = Path(__file__).resolve().parents[2] / "data"
NOW = "2024-05-01T12:00:00.000Z"  # Context.now() under the pinned clock (conftest)
TS = "2024-05-01T11:59:58Z"

#: (sender version, receiver version) of each direction.
VERSIONS = {
    Direction.CHARGER_TO_CSMS: (Version.V16, Version.V201),
    Direction.CSMS_TO_CHARGER: (Version.V201, Version.V16),
}

REQUIRED_KEYS = {"description", "direction", "received", "forwarded_action", "forwarded", "reply"}
OPTIONAL_KEYS = {"station", "immediate_reset", "answer", "then", "effects"}
STATION_KEYS = {
    "vendor",
    "model",
    "connector_errors",
    "layout",
    "registration",
    "connector_statuses",
    "open_transactions",
    "boot_reason",
    "security_extension",
    "legacy_transaction_ids",
    "firmware_request_id",
    "log_request_id",
}
REASON_CODES = {reason.value for reason in StatusInfoReasonType}

ERROR_CODES = sorted(code.value for code in ChargePointErrorCode if code.value != "NoError")


# --- golden pairs -------------------------------------------------------------------


def _golden_files() -> list[Path]:
    return sorted(DATA.glob("*/*.json"))


def _golden_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _effects_as_data(effects: list[Any]) -> list[list[Any]]:
    return [[type(effect).__name__, dataclasses.asdict(effect)] for effect in effects]


def _calls_as_data(calls: list[OutboundCall]) -> list[list[Any]]:
    return [[call.action, call.payload] for call in calls]


GOLDEN = [pytest.param(path, id=_golden_id(path)) for path in _golden_files()]


def test_golden_data_directory_has_cases() -> None:
    """The golden table is found and not empty (a wrong path would silently test nothing)."""
    assert len(GOLDEN) >= 40


@pytest.mark.parametrize("path", GOLDEN)
def test_golden_file_follows_the_documented_format(path: Path) -> None:
    """Each golden file has the keys tests/data/README.md documents, and no others."""
    case = _load(path)
    missing = REQUIRED_KEYS - case.keys()
    unknown = case.keys() - REQUIRED_KEYS - OPTIONAL_KEYS
    assert not missing, missing
    assert not unknown, unknown
    assert case["direction"] in {d.value for d in Direction}
    assert set(case.get("station", {})) <= STATION_KEYS
    forwarded = case["forwarded"] is not None
    assert forwarded == (case["forwarded_action"] is not None)
    assert forwarded == ("answer" in case), "an answer exists exactly when something is forwarded"


@pytest.mark.parametrize("path", GOLDEN)
def test_golden_pair_translates_exactly_and_every_payload_is_schema_valid(
    path: Path, make_context: MakeContext
) -> None:
    """received -> forwarded, answer -> reply, plus follow-up CALLs and effects, all valid."""
    case = _load(path)
    action = path.parent.name
    direction = Direction(case["direction"])
    sender, receiver = VERSIONS[direction]
    route = ROUTES[(direction, action)]
    station = case.get("station", {})
    ctx = make_context(
        layout={int(k): tuple(v) for k, v in station.get("layout", {}).items()},
        vendor=station.get("vendor"),
        model=station.get("model"),
        connector_errors={int(k): v for k, v in station.get("connector_errors", {}).items()},
        registration=station.get("registration", ""),
        connector_statuses={int(k): v for k, v in station.get("connector_statuses", {}).items()},
        open_transactions={int(k): v for k, v in station.get("open_transactions", {}).items()},
        boot_reason=station.get("boot_reason", "PowerUp"),
        security_extension=station.get("security_extension", False),
        legacy_transaction_ids=station.get("legacy_transaction_ids", {}),
        firmware_request_id=station.get("firmware_request_id"),
        log_request_id=station.get("log_request_id"),
        immediate_reset=case.get("immediate_reset", "Soft"),
    )
    received = case["received"]
    validate(sender, action, Kind.REQUEST, received)
    untouched = copy.deepcopy(received)

    outcome = route.request(received, ctx)
    then = list(outcome.then)
    effects = list(outcome.effects)
    if case["forwarded"] is None:
        assert outcome.forward is None
        reply = outcome.reply
    else:
        forwarded_action, answer = case["forwarded_action"], case["answer"]
        assert outcome.reply is None, "a forwarded CALL is replied from the answer"
        assert forwarded_action in (route.target, *route.also)
        assert outcome.forward == OutboundCall(forwarded_action, case["forwarded"])
        validate(receiver, forwarded_action, Kind.REQUEST, case["forwarded"])
        validate(receiver, forwarded_action, Kind.RESPONSE, answer)
        untouched_answer = copy.deepcopy(answer)
        answered = route.result(answer, received, ctx)
        assert answered.forward is None
        assert answer == untouched_answer, "the result converter must not mutate the answer"
        reply = answered.reply
        then += answered.then
        effects += answered.effects

    assert received == untouched, "the request converter must not mutate its input"
    assert reply is not None, "every received CALL gets a reply"
    assert reply == case["reply"]
    validate(sender, action, Kind.RESPONSE, reply)
    if "statusInfo" in reply:  # the schema allows any string of 20: check the enum
        assert reply["statusInfo"]["reasonCode"] in REASON_CODES
    assert _calls_as_data(then) == case.get("then", [])
    for call in then:  # follow-up CALLs always go to the 2.0.1 CSMS
        validate(Version.V201, call.action, Kind.REQUEST, call.payload)
    assert _effects_as_data(effects) == case.get("effects", [])


def test_every_route_has_at_least_one_golden_pair() -> None:
    """No row of ROUTES is left without a golden case in its direction."""
    covered = {(Direction(_load(path)["direction"]), path.parent.name) for path in _golden_files()}
    assert set(ROUTES) <= covered, set(ROUTES) - covered


def test_every_alternative_target_is_a_real_action_with_a_golden_pair() -> None:
    """Each action in a route's ``also`` exists for the receiver and is forwarded by a case."""
    forwarded = {
        (Direction(case["direction"]), path.parent.name, case["forwarded_action"])
        for path in _golden_files()
        for case in [_load(path)]
    }
    for (direction, action), route in ROUTES.items():
        _, receiver = VERSIONS[direction]
        for target in route.also:
            assert target in known_actions(receiver), target
            assert (direction, action, target) in forwarded, (action, target)


@pytest.mark.parametrize("requested", [m.value for m in MessageTriggerEnumType])
def test_every_2_0_1_trigger_has_a_golden_pair(requested: str) -> None:
    """Each MessageTriggerEnumType value is pinned by at least one TriggerMessage case."""
    cases = [_load(path) for path in sorted(DATA.glob("TriggerMessage/*.json"))]
    assert any(case["received"]["requestedMessage"] == requested for case in cases)


# --- StatusNotification tables ------------------------------------------------------


def test_every_1_6_charge_point_status_has_a_connector_status() -> None:
    """CONNECTOR_STATUS covers exactly the 1.6 ChargePointStatus values."""
    assert set(core.CONNECTOR_STATUS) == {status.value for status in ChargePointStatus}


@pytest.mark.parametrize("status", [s.value for s in ChargePointStatus])
def test_each_charge_point_status_maps_to_a_2_0_1_connector_status(status: str) -> None:
    """Each 1.6 status maps to one of the five 2.0.1 ConnectorStatusEnumType values."""
    assert core.CONNECTOR_STATUS[status] in {s.value for s in ConnectorStatusEnumType}


@pytest.mark.parametrize("code", ERROR_CODES)
@pytest.mark.parametrize("connector_id", [0, 1])
def test_every_1_6_error_code_yields_a_schema_valid_notify_event(
    code: str, connector_id: int, make_context: MakeContext, tables: TranslationTables
) -> None:
    """Each errorCode but NoError raises its mapped component/variable in a valid NotifyEvent."""
    payload = {"connectorId": connector_id, "errorCode": code, "status": "Faulted", "timestamp": TS}
    outcome = core.status_notification_req(payload, make_context())
    assert [call.action for call in outcome.then] == ["NotifyEvent"]
    notify = outcome.then[0].payload
    validate(Version.V201, "NotifyEvent", Kind.REQUEST, notify)
    raised = notify["eventData"][-1]
    mapped = tables.error_events[code]
    assert raised["component"]["name"] == mapped.component
    assert raised["variable"] == {"name": mapped.variable}
    assert (raised["actualValue"], raised["trigger"]) == ("true", "Alerting")
    assert raised["techCode"] == code
    expected_evse = {
        Tier.STATION: None,
        Tier.EVSE: {"id": 1},
        Tier.CONNECTOR: {"id": 1, "connectorId": 1},
    }[mapped.tier]
    assert raised["component"].get("evse") == (expected_evse if connector_id else None)


def test_maximum_length_1_6_fields_still_give_a_valid_notify_event(
    make_context: MakeContext,
) -> None:
    """1.6 info, vendorId and vendorErrorCode at their maximum lengths still fit 2.0.1."""
    payload = {
        "connectorId": 1,
        "errorCode": "PowerSwitchFailure",
        "status": "Faulted",
        "timestamp": TS,
        "info": "i" * 50,
        "vendorId": "v" * 255,
        "vendorErrorCode": "c" * 50,
    }
    validate(Version.V16, "StatusNotification", Kind.REQUEST, payload)
    outcome = core.status_notification_req(payload, make_context())
    event = outcome.then[0].payload["eventData"][0]
    validate(Version.V201, "NotifyEvent", Kind.REQUEST, outcome.then[0].payload)
    assert event["techCode"] == "c" * 50
    assert event["techInfo"].startswith("errorCode=PowerSwitchFailure; " + "i" * 50)


status_payloads = st.fixed_dictionaries(
    {
        "connectorId": st.integers(0, 4),
        "errorCode": st.sampled_from([c.value for c in ChargePointErrorCode]),
        "status": st.sampled_from([s.value for s in ChargePointStatus]),
    },
    optional={
        "timestamp": st.just(TS),
        "info": st.text(max_size=50),
        "vendorId": st.text(max_size=255),
        "vendorErrorCode": st.text(max_size=50),
    },
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=status_payloads, previous=st.none() | st.sampled_from(ERROR_CODES))
def test_any_valid_1_6_status_notification_gives_valid_2_0_1_calls(
    payload: Payload, previous: str | None, make_context: MakeContext
) -> None:
    """Whatever a schema-valid 1.6 status says, every CALL the gateway makes of it is valid."""
    validate(Version.V16, "StatusNotification", Kind.REQUEST, payload)
    ctx = make_context(connector_errors={payload["connectorId"]: previous} if previous else {})
    outcome = core.status_notification_req(payload, ctx)
    calls = ([outcome.forward] if outcome.forward else []) + list(outcome.then)
    for call in calls:
        validate(Version.V201, call.action, Kind.REQUEST, call.payload)
    assert (outcome.forward is None) == (payload["connectorId"] == 0)
    if outcome.forward is None:
        assert outcome.reply == {}


# --- StatusNotification effects -----------------------------------------------------


def test_new_error_code_yields_connector_error_changed(make_context: MakeContext) -> None:
    """A connector's errorCode changing is recorded, so a later NoError can clear it."""
    payload = {"connectorId": 3, "errorCode": "OverVoltage", "status": "Faulted", "timestamp": TS}
    outcome = core.status_notification_req(payload, make_context())
    assert outcome.effects == (ConnectorErrorChanged(3, "OverVoltage"),)


def test_repeated_error_code_yields_no_effect(make_context: MakeContext) -> None:
    """The same errorCode again changes nothing in the station record."""
    payload = {"connectorId": 3, "errorCode": "OverVoltage", "status": "Faulted", "timestamp": TS}
    ctx = make_context(connector_errors={3: "OverVoltage"})
    assert core.status_notification_req(payload, ctx).effects == ()


def test_no_error_without_previous_error_yields_no_effect_and_no_event(
    make_context: MakeContext,
) -> None:
    """A plain NoError status with nothing to clear sends only the StatusNotification."""
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": TS}
    outcome = core.status_notification_req(payload, make_context())
    assert outcome.effects == ()
    assert outcome.then == ()
    assert outcome.forward is not None


def test_error_on_another_connector_is_not_cleared(make_context: MakeContext) -> None:
    """NoError on connector 1 does not clear a fault recorded for connector 2."""
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": TS}
    outcome = core.status_notification_req(
        payload, make_context(connector_errors={2: "WeakSignal"})
    )
    assert outcome.then == ()
    assert outcome.effects == ()


def test_changed_error_code_clears_the_previous_one(make_context: MakeContext) -> None:
    """A connector reports one errorCode at a time: a new one means the old fault is gone."""
    payload = {"connectorId": 1, "errorCode": "OverVoltage", "status": "Faulted", "timestamp": TS}
    outcome = core.status_notification_req(
        payload, make_context(connector_errors={1: "GroundFailure"})
    )
    events = outcome.then[0].payload["eventData"]
    cleared = [e for e in events if e.get("cleared")]
    assert [(e["component"]["name"], e["variable"]["name"]) for e in cleared] == [
        ("RCD", "Tripped")
    ]
    raised = [e for e in events if e["actualValue"] == "true"]
    assert [(e["component"]["name"], e["variable"]["name"]) for e in raised] == [
        ("ElectricalFeed", "Problem")
    ]


# --- BootNotification and before-acceptance converters ------------------------------


def test_boot_notification_answer_yields_registration_changed(make_context: MakeContext) -> None:
    """The CSMS's answer to a boot is recorded with the 1.6 boot request as station record."""
    boot = {"chargePointVendor": "ACME", "chargePointModel": "Wallbox 22"}
    answer = {"status": "Accepted", "currentTime": NOW, "interval": 300}
    outcome = core.boot_notification_conf(answer, boot, make_context())
    assert outcome.effects == (RegistrationChanged("Accepted", boot),)


def test_heartbeat_before_acceptance_is_answered_from_the_pinned_clock(
    make_context: MakeContext,
) -> None:
    """Before registration a heartbeat is not forwarded; the gateway's clock answers it."""
    outcome = core.heartbeat_local({}, make_context())
    assert outcome == Outcome(reply={"currentTime": NOW})
    validate(Version.V16, "Heartbeat", Kind.RESPONSE, outcome.reply or {})


# --- Authorize tables ---------------------------------------------------------------

# Reference messages.md §2.4, 2.0.1 -> 1.6.
AUTHORIZATION_V16 = {
    "Accepted": "Accepted",
    "Blocked": "Blocked",
    "ConcurrentTx": "ConcurrentTx",
    "Expired": "Expired",
    "Invalid": "Invalid",
    "Unknown": "Invalid",
    "NoCredit": "Invalid",
    "NotAllowedTypeEVSE": "Invalid",
    "NotAtThisLocation": "Invalid",
    "NotAtThisTime": "Invalid",
}


def test_authorization_table_matches_the_reference() -> None:
    """core.AUTHORIZATION_STATUS_V16 is exactly the §2.4 table."""
    assert core.AUTHORIZATION_STATUS_V16 == AUTHORIZATION_V16


@given(st.sampled_from(AuthorizationStatusEnumType))
def test_every_2_0_1_authorization_status_maps_to_a_1_6_status(
    status: AuthorizationStatusEnumType,
) -> None:
    """Every 2.0.1 AuthorizationStatusEnumType has a 1.6 AuthorizationStatus counterpart."""
    mapped = core.AUTHORIZATION_STATUS_V16[status.value]
    assert mapped in {s.value for s in AuthorizationStatus}
    tag_info = core.id_tag_info_from_token_info({"status": status.value})
    validate(Version.V16, "Authorize", Kind.RESPONSE, {"idTagInfo": tag_info})


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(id_tag=st.text(max_size=20))
def test_any_1_6_id_tag_becomes_a_valid_2_0_1_authorize(
    id_tag: str, make_context: MakeContext
) -> None:
    """Every 1.6 idTag (CiString20) forwards as a schema-valid 2.0.1 AuthorizeRequest."""
    outcome = core.authorize_req({"idTag": id_tag}, make_context())
    assert outcome.forward is not None
    validate(Version.V201, "Authorize", Kind.REQUEST, outcome.forward.payload)
    assert outcome.forward.payload["idToken"]["idToken"] == id_tag


def test_id_token_type_follows_the_station_vendor(tables: TranslationTables) -> None:
    """A station whose vendor has an override gets that vendor's token type."""
    acme = VendorIdTokenRules(
        "ACME", None, IdTokenRules((IdTokenRule(re.compile("[0-9]{10}"), "ISO14443"),), "KeyCode")
    )
    with_vendor = dataclasses.replace(tables, vendor_id_tokens=(acme,))
    for vendor, expected in [("acme", "ISO14443"), ("Other", "Local")]:
        ctx = Context(
            station_id="CP-001", tables=with_vendor, station=StationView(vendor=vendor, model="X")
        )
        assert core.id_token_from_tag("0123456789", ctx) == {
            "idToken": "0123456789",
            "type": expected,
        }


# --- DataTransfer property ----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=10,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=json_values)
def test_any_2_0_1_data_transfer_data_reaches_1_6_as_a_string(
    data: object, make_context: MakeContext
) -> None:
    """Any JSON value as 2.0.1 data forwards as a valid 1.6 DataTransfer whose data is text."""
    received = {"vendorId": "com.acme", "data": data}
    validate(Version.V201, "DataTransfer", Kind.REQUEST, received)
    outcome = core.data_transfer_from_csms_req(received, make_context())
    assert outcome.forward is not None
    forwarded = outcome.forward.payload
    validate(Version.V16, "DataTransfer", Kind.REQUEST, forwarded)
    if isinstance(data, str):
        assert forwarded["data"] == data  # already a 1.6 string: not quoted again
    else:
        assert isinstance(forwarded["data"], str)
        assert json.loads(forwarded["data"]) == data  # JSON text of the same value
