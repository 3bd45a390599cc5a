"""Charging sessions end to end: a 1.6 charger sim, the real gateway, the 2.0.1 CSMS sim.

Both peers validate every payload against the official schemas; ``ledger`` checks what a
strict CSMS checks about TransactionEvents (order, seqNo contiguity, one meaning per seqNo).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from tests.integration.helpers import metric
from tests.integration.ledger import only_transaction, transactions, wait_ended

pytestmark = pytest.mark.integration

TAG = "04A2B3C4"  # an ISO14443 4-byte UID


def now(offset: float = 0.0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def periodic(value: str, timestamp: str | None = None, **fields: Any) -> dict[str, Any]:
    sample = {"value": value, "context": "Sample.Periodic", **fields}
    return {"timestamp": timestamp or now(), "sampledValue": [sample]}


def statuses(csms: CsmsSim, station_id: str = "CP-1") -> list[tuple[int, str]]:
    return [
        (m.payload["evseId"], m.payload["connectorStatus"])
        for m in csms.received("StatusNotification", station_id=station_id)
    ]


@pytest.mark.covers(
    "StartTransaction",
    "charger_to_csms:MeterValues",
    "StopTransaction",
    "charger_to_csms:StatusNotification",
    "charger_to_csms:Authorize",
)
async def test_worked_example_session_reaches_the_csms_event_by_event(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """Reference §4.3: the normal RFID session, message by message."""
    await booted.status(1, "Preparing")
    await csms.wait_for("StatusNotification", count=1)
    assert (await booted.authorize(TAG))["idTagInfo"]["status"] == "Accepted"
    started_at = now()
    answer = await booted.start_transaction(1, TAG, 1000, started_at)
    assert answer["idTagInfo"] == {"status": "Accepted"}
    legacy_id = answer["transactionId"]
    assert isinstance(legacy_id, int) and legacy_id > 0
    await booted.status(1, "Charging")
    await booted.meter_values(1, [periodic("2400.5", unit="Wh")], transaction_id=legacy_id)
    await booted.status(1, "Finishing")  # before StopTransaction, as real chargers do
    stop = await booted.stop_transaction(legacy_id, 5400, now(), idTag=TAG, reason="Local")
    assert stop["idTagInfo"]["status"] == "Accepted"
    await booted.status(1, "Available")
    await csms.wait_for("StatusNotification", count=2)

    events = only_transaction(csms, "CP-1")
    started, charging, metered, ended = events  # exactly four: Finishing sent nothing
    assert started["triggerReason"] == "Authorized"
    assert started["evse"] == {"id": 1, "connectorId": 1}
    assert started["idToken"] == {"idToken": TAG, "type": "ISO14443"}
    assert started["transactionInfo"]["chargingState"] == "EVConnected"
    assert started["meterValue"] == [
        {
            "timestamp": started_at,
            "sampledValue": [
                {
                    "value": 1000,
                    "context": "Transaction.Begin",
                    "measurand": "Energy.Active.Import.Register",
                }
            ],
        }
    ]
    assert (charging["eventType"], charging["triggerReason"]) == ("Updated", "ChargingStateChanged")
    assert charging["transactionInfo"]["chargingState"] == "Charging"
    assert metered["triggerReason"] == "MeterValuePeriodic"
    assert metered["meterValue"][0]["sampledValue"][0]["value"] == 2400.5
    assert "evse" not in metered and "idToken" not in metered
    assert ended["triggerReason"] == "StopAuthorized"
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert ended["idToken"]["idToken"] == TAG
    end_samples = [s for mv in ended["meterValue"] for s in mv["sampledValue"]]
    assert {"value": 5400, "context": "Transaction.End"}.items() <= end_samples[-1].items()
    assert not any(event.get("offline") for event in events)
    # Preparing, Charging and Finishing are all "Occupied": one StatusNotification each way.
    assert statuses(csms) == [(1, "Occupied"), (1, "Available")]
    ids = {e["transactionInfo"]["transactionId"] for e in events}
    assert len(ids) == 1
    assert metric(gateway, "ocpp_gateway_transactions_total", event="started") == 1
    assert metric(gateway, "ocpp_gateway_transactions_total", event="ended") == 1


@pytest.mark.covers("charger_to_csms:StatusNotification", "StartTransaction", "StopTransaction")
async def test_charging_reported_before_the_start_is_answered_is_folded_into_started(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """Chargers send Charging before StartTransaction.conf: never an Updated before Started."""
    await booted.status(1, "Preparing")
    await booted.status(1, "Charging")
    answer = await booted.start_transaction(1, TAG, 0, now())
    await booted.stop_transaction(answer["transactionId"], 10, now(), reason="EVDisconnected")
    await wait_ended(csms)
    events = only_transaction(csms, "CP-1")
    assert [e["eventType"] for e in events] == ["Started", "Ended"]
    assert events[0]["transactionInfo"]["chargingState"] == "Charging"
    assert events[1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert events[1]["triggerReason"] == "EVCommunicationLost"
    assert "idToken" not in events[1]


@pytest.mark.covers("StartTransaction", "StopTransaction")
async def test_rejected_token_reaches_the_charger_and_its_deauthorized_stop_the_csms(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    csms.id_token_info = lambda token: {
        "status": "Invalid" if token["idToken"] == "BADBAD" else "Accepted"
    }
    charger = make_charger()
    await charger.connect()
    await charger.boot()
    answer = await charger.start_transaction(1, "BADBAD", 0, now())
    assert answer["idTagInfo"]["status"] == "Invalid"
    await charger.stop_transaction(answer["transactionId"], 0, now(), reason="DeAuthorized")
    await wait_ended(csms)
    started, ended = only_transaction(csms, "CP-1")
    assert started["idToken"]["idToken"] == "BADBAD"
    assert ended["triggerReason"] == "Deauthorized"
    assert ended["transactionInfo"]["stoppedReason"] == "DeAuthorized"


@pytest.mark.covers("StartTransaction", "charger_to_csms:MeterValues", "StopTransaction")
async def test_two_connectors_charge_at_once_as_two_evses(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    first = await booted.start_transaction(1, TAG, 100, now())
    second = await booted.start_transaction(2, "0A0B0C0D", 200, now())
    assert first["transactionId"] != second["transactionId"]
    for round_ in range(3):
        await booted.meter_values(1, [periodic(str(110 + round_))], first["transactionId"])
        await booted.meter_values(2, [periodic(str(210 + round_))], second["transactionId"])
    await booted.stop_transaction(second["transactionId"], 300, now())
    await booted.stop_transaction(first["transactionId"], 150, now())
    await wait_ended(csms, count=2)
    by_id = transactions(csms, "CP-1")
    assert len(by_id) == 2
    evses = set()
    for events in by_id.values():
        assert [e["eventType"] for e in events] == [
            "Started",
            "Updated",
            "Updated",
            "Updated",
            "Ended",
        ]
        assert [e["seqNo"] for e in events] == [0, 1, 2, 3, 4]
        evses.add(events[0]["evse"]["id"])
        readings = [e["meterValue"][0]["sampledValue"][0]["value"] for e in events[1:4]]
        base = events[0]["meterValue"][0]["sampledValue"][0]["value"]
        assert readings == [base + 10, base + 11, base + 12]
    assert evses == {1, 2}


@pytest.mark.covers(
    "RequestStartTransaction",
    "GetTransactionStatus",
    "RequestStopTransaction",
    "StartTransaction",
    "StopTransaction",
)
async def test_remote_start_and_stop_round_trip(booted: ChargerSim, csms: CsmsSim) -> None:
    token = {"idToken": "CENTRAL-42", "type": "Central"}
    answer = await csms.call(
        "CP-1", "RequestStartTransaction", {"evseId": 2, "remoteStartId": 42, "idToken": token}
    )
    assert answer["status"] == "Accepted"
    (remote,) = booted.calls_of("RemoteStartTransaction")
    assert remote == {"connectorId": 2, "idTag": "CENTRAL-42"}
    start = await booted.start_transaction(2, "CENTRAL-42", 0, now())
    (started,) = await csms.wait_for("TransactionEvent")
    assert started.payload["triggerReason"] == "RemoteStart"
    assert started.payload["transactionInfo"]["remoteStartId"] == 42
    assert started.payload["idToken"] == token  # the CSMS's own type, not an inferred one
    transaction_id = started.payload["transactionInfo"]["transactionId"]

    status = await csms.call("CP-1", "GetTransactionStatus", {"transactionId": transaction_id})
    assert status == {"ongoingIndicator": True, "messagesInQueue": False}
    stop = await csms.call("CP-1", "RequestStopTransaction", {"transactionId": transaction_id})
    assert stop["status"] == "Accepted"
    assert booted.calls_of("RemoteStopTransaction") == [{"transactionId": start["transactionId"]}]
    await booted.stop_transaction(
        start["transactionId"], 500, now(), reason="Remote", idTag="CENTRAL-42"
    )
    await wait_ended(csms)
    ended = only_transaction(csms, "CP-1")[-1]
    assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == (
        "RemoteStop",
        "Remote",
    )
    assert "idToken" not in ended  # §3.1: never when ended by RequestStopTransaction
    status = await csms.call("CP-1", "GetTransactionStatus", {"transactionId": transaction_id})
    assert status["ongoingIndicator"] is False


@pytest.mark.covers("RequestStopTransaction")
async def test_stop_for_unknown_or_finished_transaction_is_rejected_without_the_charger(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    answer = await csms.call("CP-1", "RequestStopTransaction", {"transactionId": "no-such-tx"})
    assert answer["status"] == "Rejected"
    assert booted.calls_of("RemoteStopTransaction") == []


@pytest.mark.covers("RequestStartTransaction")
async def test_remote_start_with_a_token_too_long_for_1_6_is_rejected_by_the_gateway(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    token = {"idToken": "X" * 21, "type": "Central"}
    answer = await csms.call(
        "CP-1", "RequestStartTransaction", {"remoteStartId": 1, "idToken": token}
    )
    assert answer["status"] == "Rejected"
    assert booted.calls_of("RemoteStartTransaction") == []


@pytest.mark.covers("GetChargingProfiles", "RequestStartTransaction")
async def test_charging_profiles_report_what_the_gateway_installed(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    criteria: dict[str, Any] = {"requestId": 7, "chargingProfile": {}}
    assert (await csms.call("CP-1", "GetChargingProfiles", criteria)) == {"status": "NoProfiles"}
    profile = {
        "id": 5,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
            }
        ],
    }
    token = {"idToken": TAG, "type": "ISO14443"}
    request = {"evseId": 1, "remoteStartId": 3, "idToken": token, "chargingProfile": profile}
    assert (await csms.call("CP-1", "RequestStartTransaction", request))["status"] == "Accepted"
    (remote,) = booted.calls_of("RemoteStartTransaction")
    assert remote["chargingProfile"]["chargingProfileId"] == 5
    assert (await csms.call("CP-1", "GetChargingProfiles", criteria)) == {"status": "Accepted"}
    (report,) = await csms.wait_for("ReportChargingProfiles")
    assert report.payload == {
        "requestId": 7,
        "chargingLimitSource": "CSO",
        "evseId": 1,
        "chargingProfile": [profile],
    }
    other_purpose = {
        "requestId": 8,
        "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"},
    }
    assert (await csms.call("CP-1", "GetChargingProfiles", other_purpose))["status"] == "NoProfiles"


@pytest.mark.covers("StopTransaction")
async def test_stop_for_a_transaction_the_gateway_never_saw_is_still_reported(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """§4.2 step 7: answered, and reported as a transaction of its own, not dropped."""
    answer = await booted.stop_transaction(-1, 777, now(), reason="PowerLoss")
    assert answer == {}
    await wait_ended(csms)
    started, ended = only_transaction(csms, "CP-1")
    assert started["triggerReason"] == "AbnormalCondition"
    assert ended["transactionInfo"]["stoppedReason"] == "PowerLoss"
    samples = [s for mv in ended["meterValue"] for s in mv["sampledValue"]]
    assert samples[-1]["value"] == 777
    assert metric(gateway, "ocpp_gateway_unknown_transactions_total", action="StopTransaction") == 1


@pytest.mark.covers("StartTransaction", "StopTransaction")
async def test_re_sent_start_gets_the_same_answer_and_no_second_event(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """A charger that lost our answer re-sends StartTransaction: same id, one Started."""
    stamp = now()
    first = await booted.start_transaction(1, TAG, 42, stamp)
    again = await booted.start_transaction(1, TAG, 42, stamp)
    assert again == first
    stop_stamp = now()
    await booted.stop_transaction(first["transactionId"], 50, stop_stamp)
    await wait_ended(csms)
    again_stop = await booted.stop_transaction(first["transactionId"], 50, stop_stamp)
    assert again_stop == {}
    events = only_transaction(csms, "CP-1")
    assert [e["eventType"] for e in events] == ["Started", "Ended"]


@pytest.mark.covers("charger_to_csms:MeterValues")
async def test_meter_values_outside_a_transaction_go_up_as_meter_values(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    await booted.meter_values(0, [periodic("123456", measurand="Energy.Active.Import.Register")])
    (message,) = await csms.wait_for("MeterValues")
    assert message.payload["evseId"] == 0
    assert message.payload["meterValue"][0]["sampledValue"][0]["value"] == 123456
    assert csms.received("TransactionEvent") == []


@pytest.mark.covers("charger_to_csms:MeterValues")
async def test_numeric_meter_values_are_repaired_counted_and_delivered(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """A number where 1.6 wants a string: normalised by the default rule, never dropped."""
    start = await booted.start_transaction(1, TAG, 0, now())
    raw = {
        "connectorId": 1,
        "transactionId": start["transactionId"],
        "meterValue": [{"timestamp": now(), "sampledValue": [{"value": 12.5, "unit": "kWh"}]}],
    }
    assert await booted.call("MeterValues", raw, validate=False) == {}
    await csms.wait_for("TransactionEvent", count=2)
    events = only_transaction(csms, "CP-1", ended=False)
    assert events[-1]["meterValue"][0]["sampledValue"][0] == {
        "value": 12.5,
        "unitOfMeasure": {"unit": "kWh"},
    }
    assert metric(gateway, "ocpp_gateway_meter_normalisations_total", rule="numeric_values") == 1


@pytest.mark.covers("StartTransaction", "StopTransaction")
async def test_a_new_start_on_a_busy_connector_ends_the_abandoned_transaction_first(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """One transaction per EVSE (E01.FR.14): a start on a connector whose transaction
    never got a StopTransaction ends that one upstream (AbnormalCondition / Other)."""
    first = await booted.start_transaction(1, TAG, 100, now())
    second = await booted.start_transaction(1, TAG, 200, now())
    assert second["transactionId"] != first["transactionId"]
    await wait_ended(csms)
    await booted.stop_transaction(second["transactionId"], 300, now())
    await wait_ended(csms, count=2)
    by_id = transactions(csms, "CP-1")
    abandoned, current = by_id.values()
    assert [e["eventType"] for e in abandoned] == ["Started", "Ended"]
    assert abandoned[1]["triggerReason"] == "AbnormalCondition"
    assert abandoned[1]["transactionInfo"]["stoppedReason"] == "Other"
    assert "meterValue" not in abandoned[1]  # no reading is invented
    assert [e["eventType"] for e in current] == ["Started", "Ended"]
    assert current[0]["meterValue"][0]["sampledValue"][0]["value"] == 200
    actions = [
        (m.payload["transactionInfo"]["transactionId"], m.payload["eventType"])
        for m in csms.received("TransactionEvent")
    ]
    old_id, new_id = (
        abandoned[0]["transactionInfo"]["transactionId"],
        current[0]["transactionInfo"]["transactionId"],
    )
    assert actions.index((old_id, "Ended")) < actions.index((new_id, "Started"))
