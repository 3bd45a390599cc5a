"""Tests for gateway.translate.transactions: 1.6 transactions -> 2.0.1 TransactionEvent.

Expected payloads are written by hand from reference messages.md (§2.1, §2.3, §3.1, §4).
Every emitted payload is validated against the official schema of its action, and
every input is checked unmutated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from ocpp.v16.enums import ChargePointStatus, Reason
from ocpp.v201.enums import ChargingStateEnumType, ReasonEnumType, TriggerReasonEnumType

from gateway.errors import UnmappedValue
from gateway.ocppj import Payload, Version
from gateway.schemas import Kind
from gateway.schemas import validate as validate_in_place
from gateway.translate import transactions
from gateway.translate.transactions import EventFacts, StopReason

from .conftest import MakeContext


def validate(version: Version, action: str, kind: Kind, payload: Payload) -> None:
    """Validate a copy: fastjsonschema fills schema defaults (e.g. offline: false) into
    the payload it checks, which would hide what the converter really built."""
    validate_in_place(version, action, kind, copy.deepcopy(payload))


TX = "5c1d7f3e-8a0b-4c2d-9e6f-0a1b2c3d4e5f"  # a 2.0.1 transactionId (E01.FR.08: UUID)
T0 = "2024-05-01T10:00:00.000Z"
T1 = "2024-05-01T10:00:05.000Z"
T2 = "2024-05-01T10:15:00.000Z"
T3 = "2024-05-01T11:00:00.000Z"
T4 = "2024-05-01T11:15:00.000Z"
T5 = "2024-05-01T11:30:00.000Z"
TAG = "04A2B3C4"
TOKEN = {"idToken": TAG, "type": "ISO14443"}
REGISTER = "Energy.Active.Import.Register"


def _event_is_valid(event: Payload) -> Payload:
    validate(Version.V201, "TransactionEvent", Kind.REQUEST, event)
    return event


def _untouched(request: Payload, convert: Callable[[Payload], Any]) -> Any:
    """Run ``convert`` on a schema-checked copy and check it did not mutate it."""
    before = copy.deepcopy(request)
    result = convert(request)
    assert request == before, "the converter must not mutate its input"
    return result


def _start(**extra: Any) -> Payload:
    request = {"connectorId": 1, "idTag": TAG, "meterStart": 1000, "timestamp": T0, **extra}
    validate(Version.V16, "StartTransaction", Kind.REQUEST, request)
    return request


def _stop(**extra: Any) -> Payload:
    request = {"transactionId": 17, "meterStop": 5400, "timestamp": T3, **extra}
    validate(Version.V16, "StopTransaction", Kind.REQUEST, request)
    return request


def _meter_values(*meter_values: Payload, connector_id: int = 1, **extra: Any) -> Payload:
    request = {"connectorId": connector_id, "meterValue": list(meter_values), **extra}
    validate(Version.V16, "MeterValues", Kind.REQUEST, request)
    return request


def _energy(timestamp: str, value: str, context: str) -> Payload:
    """A 1.6 MeterValue with one Energy.Active.Import.Register sample (no unit: Wh)."""
    sample = {"value": value, "context": context, "measurand": REGISTER}
    return {"timestamp": timestamp, "sampledValue": [sample]}


def _energy_v201(timestamp: str, value: float, context: str) -> Payload:
    sample = {"value": value, "context": context, "measurand": REGISTER}
    return {"timestamp": timestamp, "sampledValue": [sample]}


# --- the §4.3 worked example, event by event ----------------------------------------


def test_worked_example_start_transaction_becomes_started(make_context: MakeContext) -> None:
    """StartTransaction(1, tag, 1000, t0) -> Started, seqNo 0, Authorized, meterStart as
    Transaction.Begin register reading (§4.3 row 3)."""
    event = _untouched(
        _start(),
        lambda request: transactions.transaction_event_from_start(
            request,
            make_context(),
            EventFacts(TX, 0),
            id_token=TOKEN,
            charging_state="EVConnected",
            remote_start_id=None,
        ),
    )
    assert _event_is_valid(event) == {
        "eventType": "Started",
        "timestamp": T0,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": TX, "chargingState": "EVConnected"},
        "evse": {"id": 1, "connectorId": 1},
        "idToken": {"idToken": TAG, "type": "ISO14443"},
        "meterValue": [
            {
                "timestamp": T0,
                "sampledValue": [
                    {"value": 1000, "context": "Transaction.Begin", "measurand": REGISTER}
                ],
            }
        ],
    }


def test_worked_example_charging_status_becomes_charging_state_changed(
    make_context: MakeContext,
) -> None:
    """StatusNotification(1, Charging) inside the transaction -> Updated, seqNo 1,
    ChargingStateChanged, chargingState Charging (§4.3 row 4, E02.FR.13)."""
    state = transactions.CHARGING_STATES["Charging"]
    assert state == "Charging"
    event = transactions.transaction_event_for_charging_state(
        make_context(), EventFacts(TX, 1), charging_state=state, timestamp=T1
    )
    assert _event_is_valid(event) == {
        "eventType": "Updated",
        "timestamp": T1,
        "triggerReason": "ChargingStateChanged",
        "seqNo": 1,
        "transactionInfo": {"transactionId": TX, "chargingState": "Charging"},
    }


def test_worked_example_periodic_meter_values_become_meter_value_periodic(
    make_context: MakeContext,
) -> None:
    """MeterValues(1, tx 17, Sample.Periodic) -> Updated, seqNo 2, MeterValuePeriodic,
    transactionId only: no evse, no idToken (§4.3 row 5, J02.FR.11)."""
    request = _meter_values(_energy(T2, "3200", "Sample.Periodic"), transactionId=17)
    events, dropped = _untouched(
        request,
        lambda r: transactions.transaction_events_from_meter_values(
            r, make_context(), EventFacts(TX, 2)
        ),
    )
    assert dropped == ()
    assert [_event_is_valid(event) for event in events] == [
        {
            "eventType": "Updated",
            "timestamp": T2,
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 2,
            "transactionInfo": {"transactionId": TX},
            "meterValue": [_energy_v201(T2, 3200, "Sample.Periodic")],
        }
    ]


def test_worked_example_finishing_keeps_ev_connected() -> None:
    """StatusNotification(Finishing) sends nothing; EVConnected is remembered (§4.3 row 6)."""
    assert transactions.CHARGING_STATES["Finishing"] == "EVConnected"


def test_worked_example_local_stop_becomes_ended_with_stop_authorized(
    make_context: MakeContext,
) -> None:
    """StopTransaction(tx 17, 5400, Local, tag) -> Ended, seqNo 3, StopAuthorized,
    stoppedReason Local, EVConnected, idToken, meterStop as Transaction.End (§4.3 row 7)."""
    event, dropped = _untouched(
        _stop(reason="Local", idTag=TAG),
        lambda request: transactions.transaction_event_from_stop(
            request, make_context(), EventFacts(TX, 3), id_token=TOKEN, charging_state="Charging"
        ),
    )
    assert dropped == ()
    assert _event_is_valid(event) == {
        "eventType": "Ended",
        "timestamp": T3,
        "triggerReason": "StopAuthorized",
        "seqNo": 3,
        "transactionInfo": {
            "transactionId": TX,
            "stoppedReason": "Local",
            "chargingState": "EVConnected",
        },
        "idToken": {"idToken": TAG, "type": "ISO14443"},
        "meterValue": [_energy_v201(T3, 5400, "Transaction.End")],
    }


# --- StartTransaction details -------------------------------------------------------


def test_remote_start_gives_remote_start_trigger_and_remote_start_id(
    make_context: MakeContext,
) -> None:
    """A start answering a RequestStartTransaction says RemoteStart and its remoteStartId
    (F01.FR.25, F02.FR.01)."""
    event = transactions.transaction_event_from_start(
        _start(),
        make_context(),
        EventFacts(TX, 0),
        id_token={"idToken": TAG, "type": "Central"},
        charging_state="Charging",
        remote_start_id=42,
    )
    _event_is_valid(event)
    assert event["triggerReason"] == "RemoteStart"
    assert event["transactionInfo"] == {
        "transactionId": TX,
        "chargingState": "Charging",
        "remoteStartId": 42,
    }
    assert event["idToken"] == {"idToken": TAG, "type": "Central"}


def test_start_with_reservation_carries_reservation_id(make_context: MakeContext) -> None:
    """A start consuming a reservation carries its reservationId (H01.FR.15)."""
    event = transactions.transaction_event_from_start(
        _start(reservationId=9),
        make_context(),
        EventFacts(TX, 0),
        id_token=TOKEN,
        charging_state="EVConnected",
        remote_start_id=None,
    )
    assert _event_is_valid(event)["reservationId"] == 9


def test_start_without_reservation_has_no_reservation_id(make_context: MakeContext) -> None:
    """No 1.6 reservationId, no 2.0.1 reservationId."""
    event = transactions.transaction_event_from_start(
        _start(),
        make_context(),
        EventFacts(TX, 0),
        id_token=TOKEN,
        charging_state="EVConnected",
        remote_start_id=None,
    )
    assert "reservationId" not in event


def test_offline_start_says_offline_true(make_context: MakeContext) -> None:
    """An event that happened while offline carries offline: true (E04.FR.03)."""
    event = transactions.transaction_event_from_start(
        _start(),
        make_context(),
        EventFacts(TX, 0, offline=True),
        id_token=TOKEN,
        charging_state="EVConnected",
        remote_start_id=None,
    )
    assert _event_is_valid(event)["offline"] is True


def test_online_events_leave_offline_out(make_context: MakeContext) -> None:
    """offline defaults to false in 2.0.1, so online events do not carry the key."""
    event = transactions.transaction_event_for_charging_state(
        make_context(), EventFacts(TX, 4), charging_state="SuspendedEV", timestamp=T1
    )
    assert "offline" not in event


def test_offline_flag_reaches_every_kind_of_event(make_context: MakeContext) -> None:
    """Updated and Ended events of an offline charger say offline too."""
    facts = EventFacts(TX, 5, offline=True)
    request = _meter_values(_energy(T2, "3200", "Sample.Periodic"), transactionId=17)
    updated, _ = transactions.transaction_events_from_meter_values(request, make_context(), facts)
    ended, _ = transactions.transaction_event_from_stop(
        _stop(), make_context(), facts, id_token=None, charging_state=None
    )
    state = transactions.transaction_event_for_charging_state(
        make_context(), facts, charging_state="Charging", timestamp=T1
    )
    for event in [*updated, ended, state]:
        assert _event_is_valid(event)["offline"] is True


def test_start_timestamp_is_normalised_to_utc_milliseconds(make_context: MakeContext) -> None:
    """A 1.6 timestamp with an offset and microseconds becomes UTC "Z" with 3 digits."""
    event = transactions.transaction_event_from_start(
        _start(timestamp="2024-05-01T12:00:00.123456+02:00"),
        make_context(),
        EventFacts(TX, 0),
        id_token=TOKEN,
        charging_state="EVConnected",
        remote_start_id=None,
    )
    _event_is_valid(event)
    assert event["timestamp"] == "2024-05-01T10:00:00.123Z"
    assert event["meterValue"][0]["timestamp"] == "2024-05-01T10:00:00.123Z"


def test_two_connector_layout_maps_the_start_to_its_evse(make_context: MakeContext) -> None:
    """With two plugs on one EVSE, 1.6 connector 2 starts on EVSE 1 connector 2 (§1.1)."""
    ctx = make_context(layout={1: (1, 1), 2: (1, 2)})
    event = transactions.transaction_event_from_start(
        _start(connectorId=2),
        ctx,
        EventFacts(TX, 0),
        id_token=TOKEN,
        charging_state="EVConnected",
        remote_start_id=None,
    )
    assert _event_is_valid(event)["evse"] == {"id": 1, "connectorId": 2}


def test_start_on_a_connector_outside_the_layout_is_unmapped(make_context: MakeContext) -> None:
    """A connector the layout does not list cannot be given an EVSE."""
    with pytest.raises(UnmappedValue):
        transactions.transaction_event_from_start(
            _start(connectorId=3),
            make_context(layout={1: (1, 1), 2: (2, 1)}),
            EventFacts(TX, 0),
            id_token=TOKEN,
            charging_state="EVConnected",
            remote_start_id=None,
        )


# --- CHARGING_STATES (§2.1) ---------------------------------------------------------

CHARGING_STATES_2_1 = {
    "Available": "Idle",
    "Preparing": "EVConnected",
    "Charging": "Charging",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
    "Finishing": "EVConnected",
    "Reserved": None,
    "Unavailable": None,
    "Faulted": None,
}


def test_charging_states_match_the_reference() -> None:
    """CHARGING_STATES is exactly the §2.1 table, for every 1.6 ChargePointStatus."""
    assert dict(transactions.CHARGING_STATES) == CHARGING_STATES_2_1
    assert set(transactions.CHARGING_STATES) == {status.value for status in ChargePointStatus}


def test_every_charging_state_is_a_2_0_1_charging_state() -> None:
    """Each mapped value is a 2.0.1 ChargingStateEnumType value."""
    known = {state.value for state in ChargingStateEnumType}
    assert {s for s in transactions.CHARGING_STATES.values() if s is not None} <= known


# --- StopTransaction: every reason of §2.3 ------------------------------------------

# (1.6 reason, stoppedReason, triggerReason, chargingState or None = "as known")
STOP_REASONS_2_3 = [
    ("Local", "Local", "StopAuthorized", "EVConnected"),
    ("Remote", "Remote", "RemoteStop", "EVConnected"),
    ("EVDisconnected", "EVDisconnected", "EVCommunicationLost", "Idle"),
    ("DeAuthorized", "DeAuthorized", "Deauthorized", "EVConnected"),
    ("HardReset", "ImmediateReset", "ResetCommand", "EVConnected"),
    ("SoftReset", "ImmediateReset", "ResetCommand", "EVConnected"),
    ("Reboot", "Reboot", "AbnormalCondition", None),
    ("PowerLoss", "PowerLoss", "AbnormalCondition", None),
    ("EmergencyStop", "EmergencyStop", "AbnormalCondition", None),
    ("UnlockCommand", "Other", "UnlockCommand", None),
    ("Other", "Other", "AbnormalCondition", None),
]


def test_stop_reasons_cover_every_1_6_reason() -> None:
    """STOP_REASONS has a row for each 1.6 Reason and only 2.0.1 enum values in it."""
    assert set(transactions.STOP_REASONS) == {reason.value for reason in Reason}
    for row in transactions.STOP_REASONS.values():
        assert row.stopped_reason in {r.value for r in ReasonEnumType}
        assert row.trigger_reason in {t.value for t in TriggerReasonEnumType}


@pytest.mark.parametrize(
    ("reason", "stopped", "trigger", "state"),
    STOP_REASONS_2_3,
    ids=[r[0] for r in STOP_REASONS_2_3],
)
def test_stop_reason_row_matches_the_reference(
    reason: str, stopped: str, trigger: str, state: str | None, make_context: MakeContext
) -> None:
    """Each 1.6 reason gives §2.3's stoppedReason, triggerReason and chargingState; rows
    without a state of their own keep the last known one."""
    assert transactions.STOP_REASONS[reason] == StopReason(stopped, trigger, state)
    event, _ = _untouched(
        _stop(reason=reason),
        lambda request: transactions.transaction_event_from_stop(
            request, make_context(), EventFacts(TX, 3), id_token=None, charging_state="SuspendedEV"
        ),
    )
    _event_is_valid(event)
    assert event["triggerReason"] == trigger
    assert event["transactionInfo"] == {
        "transactionId": TX,
        "stoppedReason": stopped,
        "chargingState": state or "SuspendedEV",
    }


def test_stop_without_reason_is_local(make_context: MakeContext) -> None:
    """An absent 1.6 reason means Local (1.6 §6.49); stoppedReason still says Local."""
    event, _ = transactions.transaction_event_from_stop(
        _stop(idTag=TAG), make_context(), EventFacts(TX, 3), id_token=TOKEN, charging_state=None
    )
    _event_is_valid(event)
    assert event["triggerReason"] == "StopAuthorized"
    assert event["transactionInfo"]["stoppedReason"] == "Local"
    assert event["idToken"] == TOKEN


def test_stop_with_unknown_state_and_stateless_reason_omits_charging_state(
    make_context: MakeContext,
) -> None:
    """PowerLoss says nothing about the cable; with no last known state, none is sent."""
    event, _ = transactions.transaction_event_from_stop(
        _stop(reason="PowerLoss"),
        make_context(),
        EventFacts(TX, 3),
        id_token=None,
        charging_state=None,
    )
    assert _event_is_valid(event)["transactionInfo"] == {
        "transactionId": TX,
        "stoppedReason": "PowerLoss",
    }


@pytest.mark.parametrize("reason", ["Remote", "HardReset", "SoftReset"])
def test_stop_by_csms_or_reset_omits_id_token(reason: str, make_context: MakeContext) -> None:
    """No idToken when RequestStopTransaction or a Reset ended it (2.0.1 §1.60.1), even
    when the charger sent an idTag."""
    event, _ = transactions.transaction_event_from_stop(
        _stop(reason=reason, idTag=TAG),
        make_context(),
        EventFacts(TX, 3),
        id_token=TOKEN,
        charging_state=None,
    )
    assert "idToken" not in _event_is_valid(event)


@pytest.mark.parametrize("reason", ["Local", "DeAuthorized", "EVDisconnected", "Other"])
def test_other_stops_keep_the_given_id_token(reason: str, make_context: MakeContext) -> None:
    """A stop not caused by the CSMS or a reset carries the stopping idToken (E07.FR.02)."""
    event, _ = transactions.transaction_event_from_stop(
        _stop(reason=reason, idTag=TAG),
        make_context(),
        EventFacts(TX, 3),
        id_token=TOKEN,
        charging_state=None,
    )
    assert _event_is_valid(event)["idToken"] == {"idToken": TAG, "type": "ISO14443"}


def test_stop_without_id_token_has_none(make_context: MakeContext) -> None:
    """No id_token given, no idToken sent."""
    event, _ = transactions.transaction_event_from_stop(
        _stop(reason="EVDisconnected"),
        make_context(),
        EventFacts(TX, 3),
        id_token=None,
        charging_state=None,
    )
    assert "idToken" not in _event_is_valid(event)


def test_stop_never_carries_evse(make_context: MakeContext) -> None:
    """evse is sent once, in Started (E01.FR.16)."""
    event, _ = transactions.transaction_event_from_stop(
        _stop(), make_context(), EventFacts(TX, 3), id_token=None, charging_state=None
    )
    assert "evse" not in _event_is_valid(event)


# --- StopTransaction: transactionData and meterStop ---------------------------------


def test_transaction_data_comes_first_and_meter_stop_is_appended(
    make_context: MakeContext,
) -> None:
    """transactionData is converted, then meterStop follows as the Transaction.End
    reading at the stop time (E06.FR.11, J02.FR.10)."""
    request = _stop(
        reason="EVDisconnected",
        transactionData=[
            _energy(T0, "1000", "Transaction.Begin"),
            _energy(T2, "3200", "Sample.Periodic"),
        ],
    )
    event, dropped = _untouched(
        request,
        lambda r: transactions.transaction_event_from_stop(
            r, make_context(), EventFacts(TX, 7), id_token=None, charging_state=None
        ),
    )
    assert dropped == ()
    assert _event_is_valid(event)["meterValue"] == [
        _energy_v201(T0, 1000, "Transaction.Begin"),
        _energy_v201(T2, 3200, "Sample.Periodic"),
        _energy_v201(T3, 5400, "Transaction.End"),
    ]


def test_meter_stop_is_not_duplicated_when_transaction_data_has_the_end_register(
    make_context: MakeContext,
) -> None:
    """A Transaction.End Energy.Active.Import.Register sample in transactionData already
    says what meterStop says: it is not repeated."""
    request = _stop(transactionData=[_energy(T3, "5400", "Transaction.End")])
    event, _ = transactions.transaction_event_from_stop(
        request, make_context(), EventFacts(TX, 3), id_token=None, charging_state=None
    )
    assert _event_is_valid(event)["meterValue"] == [_energy_v201(T3, 5400, "Transaction.End")]


def test_meter_stop_is_added_when_the_end_samples_are_other_readings(
    make_context: MakeContext,
) -> None:
    """Transaction.End readings of another measurand, or of one phase, are not the total
    register reading meterStop stands for."""
    soc = {"value": "80", "context": "Transaction.End", "measurand": "SoC", "unit": "Percent"}
    phase = {"value": "1800", "context": "Transaction.End", "measurand": REGISTER, "phase": "L1"}
    request = _stop(transactionData=[{"timestamp": T3, "sampledValue": [soc, phase]}])
    event, _ = transactions.transaction_event_from_stop(
        request, make_context(), EventFacts(TX, 3), id_token=None, charging_state=None
    )
    _event_is_valid(event)
    assert len(event["meterValue"]) == 2
    assert event["meterValue"][-1] == _energy_v201(T3, 5400, "Transaction.End")


def test_stop_reports_dropped_transaction_data_samples(make_context: MakeContext) -> None:
    """A Temperature sample has no 2.0.1 measurand (§2.9): dropped, and said so."""
    temperature = {"value": "31", "context": "Sample.Periodic", "measurand": "Temperature"}
    request = _stop(transactionData=[{"timestamp": T2, "sampledValue": [temperature]}])
    event, dropped = transactions.transaction_event_from_stop(
        request, make_context(), EventFacts(TX, 3), id_token=None, charging_state=None
    )
    assert len(dropped) == 1
    assert _event_is_valid(event)["meterValue"] == [_energy_v201(T3, 5400, "Transaction.End")]


# --- MeterValues in a transaction: one Updated per trigger ---------------------------


def test_meter_values_are_grouped_by_trigger_into_consecutive_events(
    make_context: MakeContext,
) -> None:
    """Consecutive meterValues with one trigger share an event; each change of trigger
    starts the next event, seqNos counting on without gaps (E03.FR.12, §E 1.3.2)."""
    request = _meter_values(
        _energy(T0, "1100", "Sample.Periodic"),
        _energy(T1, "1200", "Sample.Periodic"),
        _energy(T2, "1300", "Sample.Clock"),
        _energy(T3, "1400", "Sample.Periodic"),
        _energy(T4, "1500", "Trigger"),
        transactionId=17,
    )
    events, dropped = _untouched(
        request,
        lambda r: transactions.transaction_events_from_meter_values(
            r, make_context(), EventFacts(TX, 5)
        ),
    )
    assert dropped == ()
    assert [_event_is_valid(event) for event in events] == [
        {
            "eventType": "Updated",
            "timestamp": T1,
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 5,
            "transactionInfo": {"transactionId": TX},
            "meterValue": [
                _energy_v201(T0, 1100, "Sample.Periodic"),
                _energy_v201(T1, 1200, "Sample.Periodic"),
            ],
        },
        {
            "eventType": "Updated",
            "timestamp": T2,
            "triggerReason": "MeterValueClock",
            "seqNo": 6,
            "transactionInfo": {"transactionId": TX},
            "meterValue": [_energy_v201(T2, 1300, "Sample.Clock")],
        },
        {
            "eventType": "Updated",
            "timestamp": T3,
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 7,
            "transactionInfo": {"transactionId": TX},
            "meterValue": [_energy_v201(T3, 1400, "Sample.Periodic")],
        },
        {
            "eventType": "Updated",
            "timestamp": T4,
            "triggerReason": "Trigger",
            "seqNo": 8,
            "transactionInfo": {"transactionId": TX},
            "meterValue": [_energy_v201(T4, 1500, "Trigger")],
        },
    ]


def test_event_timestamp_is_the_latest_meter_value_even_out_of_order(
    make_context: MakeContext,
) -> None:
    """The event time is the latest reading it carries, not the last one listed."""
    request = _meter_values(
        _energy(T2, "1300", "Sample.Periodic"),
        _energy(T1, "1200", "Sample.Periodic"),
        transactionId=17,
    )
    events, _ = transactions.transaction_events_from_meter_values(
        request, make_context(), EventFacts(TX, 1)
    )
    assert [_event_is_valid(event)["timestamp"] for event in events] == [T2]


def test_meter_values_with_nothing_convertible_give_no_event(make_context: MakeContext) -> None:
    """Only Temperature/RPM samples: no Updated event (meterValue needs an item), and
    the drops are reported."""
    temperature = {"value": "31", "context": "Sample.Periodic", "measurand": "Temperature"}
    request = _meter_values({"timestamp": T2, "sampledValue": [temperature]}, transactionId=17)
    events, dropped = transactions.transaction_events_from_meter_values(
        request, make_context(), EventFacts(TX, 1)
    )
    assert events == []
    assert len(dropped) == 1


# --- MeterValues outside a transaction (§3.1 case A) --------------------------------


def test_meter_values_without_transaction_become_a_meter_values_request(
    make_context: MakeContext,
) -> None:
    """Connector n -> evseId n with the converted meterValue (§3.1 case A)."""
    request = _meter_values(_energy(T2, "3200", "Sample.Clock"), connector_id=2)
    payload, dropped = _untouched(
        request, lambda r: transactions.meter_values_request_from_meter_values(r, make_context())
    )
    assert dropped == ()
    assert payload == {"evseId": 2, "meterValue": [_energy_v201(T2, 3200, "Sample.Clock")]}
    validate(Version.V201, "MeterValues", Kind.REQUEST, payload)


def test_main_meter_values_go_to_evse_0(make_context: MakeContext) -> None:
    """1.6 connector 0 is the main meter, 2.0.1 evseId 0 (§1.1, 2.0.1 §1.32.1)."""
    request = _meter_values(_energy(T2, "99000", "Sample.Clock"), connector_id=0)
    payload, _ = transactions.meter_values_request_from_meter_values(request, make_context())
    assert payload == {"evseId": 0, "meterValue": [_energy_v201(T2, 99000, "Sample.Clock")]}
    validate(Version.V201, "MeterValues", Kind.REQUEST, payload)


def test_meter_values_request_follows_a_two_connector_layout(make_context: MakeContext) -> None:
    """With connectors 1 and 2 on EVSE 1, connector 2's readings belong to EVSE 1."""
    request = _meter_values(_energy(T2, "3200", "Sample.Clock"), connector_id=2)
    ctx = make_context(layout={1: (1, 1), 2: (1, 2)})
    payload, _ = transactions.meter_values_request_from_meter_values(request, ctx)
    assert payload is not None
    validate(Version.V201, "MeterValues", Kind.REQUEST, payload)
    assert payload["evseId"] == 1


def test_meter_values_request_with_nothing_convertible_is_none(make_context: MakeContext) -> None:
    """Only an RPM sample: nothing to send, the drop reported."""
    rpm = {"value": "1200", "context": "Sample.Clock", "measurand": "RPM"}
    request = _meter_values({"timestamp": T2, "sampledValue": [rpm]}, connector_id=1)
    payload, dropped = transactions.meter_values_request_from_meter_values(request, make_context())
    assert payload is None
    assert len(dropped) == 1


# --- unknown transactions (§4.2 step 7) ---------------------------------------------


def test_unknown_stop_gets_a_synthetic_started_then_its_ended(make_context: MakeContext) -> None:
    """A stop for a transaction never seen starting becomes Started (seqNo 0,
    AbnormalCondition, EVConnected, at the stop time, no evse, no meterValue) then Ended
    (seqNo 1), so the CSMS still hears of the energy."""
    request = _stop(transactionId=-1, reason="Local", idTag=TAG)
    started = _untouched(
        request,
        lambda r: transactions.synthetic_start_for_unknown(
            r, make_context(), EventFacts(TX, 0), id_token=TOKEN
        ),
    )
    ended, _ = transactions.transaction_event_from_stop(
        request, make_context(), EventFacts(TX, 1), id_token=TOKEN, charging_state=None
    )
    assert _event_is_valid(started) == {
        "eventType": "Started",
        "timestamp": T3,
        "triggerReason": "AbnormalCondition",
        "seqNo": 0,
        "transactionInfo": {"transactionId": TX, "chargingState": "EVConnected"},
        "idToken": {"idToken": TAG, "type": "ISO14443"},
    }
    assert (_event_is_valid(ended)["eventType"], ended["seqNo"]) == ("Ended", 1)


def test_unknown_stop_without_token_starts_without_id_token(make_context: MakeContext) -> None:
    """No idTag on the stop, no idToken on the synthetic start."""
    started = transactions.synthetic_start_for_unknown(
        _stop(transactionId=0), make_context(), EventFacts(TX, 0, offline=True), id_token=None
    )
    assert _event_is_valid(started) == {
        "eventType": "Started",
        "timestamp": T3,
        "triggerReason": "AbnormalCondition",
        "seqNo": 0,
        "offline": True,
        "transactionInfo": {"transactionId": TX, "chargingState": "EVConnected"},
    }


def test_unknown_meter_values_get_a_synthetic_started_on_their_evse(
    make_context: MakeContext,
) -> None:
    """MeterValues naming an unknown transaction: Started on the connector's EVSE at the
    earliest reading, then the Updated events from seqNo 1."""
    request = _meter_values(
        _energy(T4, "2000", "Sample.Periodic"),
        _energy(T2, "1900", "Sample.Periodic"),
        connector_id=2,
        transactionId=99,
    )
    started = _untouched(
        request,
        lambda r: transactions.synthetic_start_for_unknown(
            r, make_context(), EventFacts(TX, 0), id_token=None
        ),
    )
    updated, _ = transactions.transaction_events_from_meter_values(
        request, make_context(), EventFacts(TX, 1)
    )
    assert _event_is_valid(started) == {
        "eventType": "Started",
        "timestamp": T2,
        "triggerReason": "AbnormalCondition",
        "seqNo": 0,
        "transactionInfo": {"transactionId": TX, "chargingState": "EVConnected"},
        "evse": {"id": 2, "connectorId": 1},
    }
    assert [(_event_is_valid(e)["seqNo"], e["timestamp"]) for e in updated] == [(1, T4)]


# --- answers to the charger ---------------------------------------------------------


def test_id_tag_info_comes_from_id_token_info() -> None:
    """idTokenInfo -> idTagInfo per §2.4: status, expiry, parent (2.0.1-only fields go)."""
    result = {
        "idTokenInfo": {
            "status": "Accepted",
            "cacheExpiryDateTime": T5,
            "groupIdToken": {"idToken": "FLEET-7", "type": "Central"},
            "chargingPriority": 3,
        },
        "totalCost": 4.2,
    }
    validate(Version.V201, "TransactionEvent", Kind.RESPONSE, result)
    tag_info = _untouched(result, transactions.id_tag_info_from_transaction_response)
    assert tag_info == {"status": "Accepted", "expiryDate": T5, "parentIdTag": "FLEET-7"}
    validate(
        Version.V16, "StartTransaction", Kind.RESPONSE, {"idTagInfo": tag_info, "transactionId": 1}
    )
    validate(Version.V16, "StopTransaction", Kind.RESPONSE, {"idTagInfo": tag_info})


def test_id_tag_info_maps_a_2_0_1_only_status() -> None:
    """NotAtThisTime has no 1.6 twin: Invalid (§2.4)."""
    result = {"idTokenInfo": {"status": "NotAtThisTime"}}
    validate(Version.V201, "TransactionEvent", Kind.RESPONSE, result)
    tag_info = transactions.id_tag_info_from_transaction_response(result)
    assert tag_info == {"status": "Invalid"}
    validate(
        Version.V16, "StartTransaction", Kind.RESPONSE, {"idTagInfo": tag_info, "transactionId": 1}
    )


def test_id_tag_info_without_id_token_info_is_accepted() -> None:
    """1.6 requires idTagInfo; a CSMS that sent none raised no objection: Accepted (§3.1)."""
    result: Payload = {}
    validate(Version.V201, "TransactionEvent", Kind.RESPONSE, result)
    tag_info = transactions.id_tag_info_from_transaction_response(result)
    assert tag_info == {"status": "Accepted"}
    validate(
        Version.V16, "StartTransaction", Kind.RESPONSE, {"idTagInfo": tag_info, "transactionId": 1}
    )
    validate(Version.V16, "StopTransaction", Kind.RESPONSE, {"idTagInfo": tag_info})


# --- request_digest -----------------------------------------------------------------


def test_request_digest_ignores_key_order() -> None:
    """The same request with its keys (also nested ones) in another order, same digest."""
    one = {"connectorId": 1, "transactionId": 17, "meterValue": [_energy(T2, "1", "Trigger")]}
    sample = {"measurand": REGISTER, "context": "Trigger", "value": "1"}
    other = {
        "meterValue": [{"sampledValue": [sample], "timestamp": T2}],
        "transactionId": 17,
        "connectorId": 1,
    }
    assert transactions.request_digest(one) == transactions.request_digest(other)


def test_request_digest_is_a_sha256_hex_string() -> None:
    """64 lowercase hex characters, the same on every call."""
    digest = transactions.request_digest(_start())
    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")
    assert transactions.request_digest(_start()) == digest


@pytest.mark.parametrize(
    "changed",
    [_start(meterStart=1001), _start(timestamp=T1), _start(connectorId=2), _start(reservationId=1)],
    ids=["meterStart", "timestamp", "connectorId", "reservationId"],
)
def test_request_digest_differs_for_different_requests(changed: Payload) -> None:
    """Any change in content gives another digest."""
    assert transactions.request_digest(changed) != transactions.request_digest(_start())


def test_request_digest_does_not_mutate_its_input() -> None:
    """Digesting leaves the request as it was."""
    _untouched(_stop(reason="Local"), transactions.request_digest)


def test_abandoned_transaction_ends_abnormally_without_an_invented_reading(
    make_context: MakeContext,
) -> None:
    """A new start on a busy connector ends the old transaction: AbnormalCondition, Other,
    at the new start's time, seqNo continuing, no meter value."""
    facts = EventFacts("tx-old", 4, offline=True)
    event = transactions.transaction_event_for_abandoned(
        make_context(), facts, timestamp="2024-05-01T11:59:58.123456+00:00"
    )
    assert event == {
        "eventType": "Ended",
        "timestamp": "2024-05-01T11:59:58.123Z",
        "triggerReason": "AbnormalCondition",
        "seqNo": 4,
        "offline": True,
        "transactionInfo": {"transactionId": "tx-old", "stoppedReason": "Other"},
    }
    validate(Version.V201, "TransactionEvent", Kind.REQUEST, event)
