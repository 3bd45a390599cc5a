"""The rest of the 1.6 message set end to end: smart charging, the local list,
reservations, firmware and logs, and the security extension (reference messages.md
§2.8-§2.17, §3.3-§3.6, §3.8).

The 2.0.1 CSMS sim talks to a real gateway over loopback websockets, and a 1.6 charger
sim answers (or sends). Each test checks the meaning on both sides: what the charger
received (or sent) and what the CSMS got, and both peers validate every payload against
the official schemas.

No sleeps: an answer from the gateway is the proof that what it forwarded arrived and
what it learnt is stored; a charger CALL the gateway forwards to the CSMS is answered
only after the CSMS answered it, so the CSMS has it when the charger's call returns.
Messages the gateway sends after its answer (ReportChargingProfiles) are waited for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.sim.charger import ChargerSim
from gateway.sim.configuration import standard_configuration
from gateway.sim.csms import CsmsSim
from tests.integration.test_operations import (
    answering,
    assert_refused,
    custom_charger,
    started_transaction,
)
from tests.integration.test_transactions import TAG, now

pytestmark = pytest.mark.integration

Payload = dict[str, Any]
MakeCharger = Callable[..., ChargerSim]

ACCEPTED: Payload = {"status": "Accepted"}
FAR_FUTURE = "2099-01-01T00:00:00.000Z"  # no reservation expires during a test


def actions(charger: ChargerSim) -> list[str]:
    """The actions the charger was sent, in order."""
    return [action for action, _ in charger.received_calls]


def only_payload(csms: CsmsSim, action: str) -> Payload:
    """The payload of the one ``action`` message the CSMS received."""
    (message,) = csms.received(action)
    return message.payload


async def extended_charger(
    make_charger: MakeCharger, csms: CsmsSim, **handlers: Callable[[Payload], Payload]
) -> ChargerSim:
    """A booted "CP-1" the gateway knows has the 1.6 security extension: the CSMS read
    SecurityCtrlr.SecurityProfile, a key only that extension defines, from the charger's
    real configuration (as test_operations' extended trigger test does)."""
    charger = make_charger("CP-1", handlers={**standard_configuration().handlers(), **handlers})
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    read = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}}
    answer = await csms.call("CP-1", "GetVariables", {"getVariableData": [read]})
    assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"
    assert answer["getVariableResult"][0]["attributeValue"] == "0"
    assert actions(charger) == ["GetConfiguration"]
    return charger


# --- SetChargingProfile, GetChargingProfiles (§2.8, §3.6, §6) --------------------------

TX_DEFAULT_PROFILE: Payload = {
    "id": 7,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "validFrom": "2024-05-01T00:00:00.000Z",
    "validTo": "2024-06-01T00:00:00.000Z",
    "chargingSchedule": [
        {
            "id": 1,
            "startSchedule": "2024-05-01T12:00:00.000Z",
            "duration": 3600,
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
                {"startPeriod": 1800, "limit": 10.5},
            ],
            "minChargingRate": 6.0,
        }
    ],
}

#: TX_DEFAULT_PROFILE as 1.6 csChargingProfiles: chargingProfileId, one chargingSchedule
#: object, the schedule's 2.0.1 id dropped.
TX_DEFAULT_PROFILE_V16: Payload = {
    "chargingProfileId": 7,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "validFrom": "2024-05-01T00:00:00.000Z",
    "validTo": "2024-06-01T00:00:00.000Z",
    "chargingSchedule": {
        "duration": 3600,
        "startSchedule": "2024-05-01T12:00:00.000Z",
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
            {"startPeriod": 1800, "limit": 10.5},
        ],
        "minChargingRate": 6.0,
    },
}

STATION_MAX_PROFILE: Payload = {
    "id": 8,
    "stackLevel": 1,
    "chargingProfilePurpose": "ChargingStationMaxProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": [
        {
            "id": 2,
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000.0}],
        }
    ],
}


def tx_profile(transaction_id: str, profile_id: int = 9) -> Payload:
    return {
        "id": profile_id,
        "stackLevel": 2,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "transactionId": transaction_id,
        "chargingSchedule": [
            {
                "id": 3,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8.0}],
            }
        ],
    }


async def smart_charger(make_charger: MakeCharger, **handlers: Any) -> ChargerSim:
    """A booted charger that accepts every smart charging request unless told."""
    defaults = {
        "SetChargingProfile": answering(ACCEPTED),
        "ClearChargingProfile": answering(ACCEPTED),
    }
    return await custom_charger(make_charger, **{**defaults, **handlers})


async def get_charging_profiles(
    csms: CsmsSim, request_id: int, criteria: Payload | None = None, **extra: Any
) -> Payload:
    request = {"requestId": request_id, "chargingProfile": criteria or {}, **extra}
    return await csms.call("CP-1", "GetChargingProfiles", request)


async def reports_of(csms: CsmsSim, request_id: int, count: int = 1) -> list[Payload]:
    """The ReportChargingProfiles payloads of ``request_id``, once ``count`` arrived."""
    messages = await csms.wait_for(
        "ReportChargingProfiles",
        where=lambda payload: payload["requestId"] == request_id,
        count=count,
    )
    return [message.payload for message in messages]


@pytest.mark.covers("csms_to_charger:SetChargingProfile", "GetChargingProfiles")
async def test_set_tx_default_profile_on_evse_1_reaches_connector_1_and_is_reported(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await smart_charger(make_charger)
    request = {"evseId": 1, "chargingProfile": TX_DEFAULT_PROFILE}
    assert await csms.call("CP-1", "SetChargingProfile", request) == ACCEPTED
    assert charger.calls_of("SetChargingProfile") == [
        {"connectorId": 1, "csChargingProfiles": TX_DEFAULT_PROFILE_V16}
    ]

    # 1.6 has no GetChargingProfiles: the gateway answers from what the charger accepted.
    criteria = {"chargingProfilePurpose": "TxDefaultProfile"}
    assert await get_charging_profiles(csms, 42, criteria) == ACCEPTED
    assert await reports_of(csms, 42) == [
        {
            "requestId": 42,
            "chargingLimitSource": "CSO",
            "evseId": 1,
            "chargingProfile": [TX_DEFAULT_PROFILE],
        }
    ]
    assert actions(charger) == ["SetChargingProfile"]


@pytest.mark.covers("GetChargingProfiles", "csms_to_charger:SetChargingProfile")
async def test_get_charging_profiles_reports_each_evse_and_honours_the_criteria(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await smart_charger(make_charger)
    await csms.call(
        "CP-1", "SetChargingProfile", {"evseId": 1, "chargingProfile": TX_DEFAULT_PROFILE}
    )
    station_max = {"evseId": 0, "chargingProfile": STATION_MAX_PROFILE}
    assert await csms.call("CP-1", "SetChargingProfile", station_max) == ACCEPTED
    # ChargingStationMaxProfile is 1.6 ChargePointMaxProfile, on connector 0.
    assert charger.calls_of("SetChargingProfile")[1] == {
        "connectorId": 0,
        "csChargingProfiles": {
            "chargingProfileId": 8,
            "stackLevel": 1,
            "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000.0}],
            },
        },
    }

    # Every profile: one report per EVSE, all but the last "to be continued".
    assert await get_charging_profiles(csms, 1) == ACCEPTED
    assert await reports_of(csms, 1, count=2) == [
        {
            "requestId": 1,
            "chargingLimitSource": "CSO",
            "evseId": 0,
            "chargingProfile": [STATION_MAX_PROFILE],
            "tbc": True,
        },
        {
            "requestId": 1,
            "chargingLimitSource": "CSO",
            "evseId": 1,
            "chargingProfile": [TX_DEFAULT_PROFILE],
        },
    ]
    # By id, and by EVSE.
    assert await get_charging_profiles(csms, 2, {"chargingProfileId": [8]}) == ACCEPTED
    assert [r["chargingProfile"] for r in await reports_of(csms, 2)] == [[STATION_MAX_PROFILE]]
    assert await get_charging_profiles(csms, 3, evseId=1) == ACCEPTED
    assert [r["chargingProfile"] for r in await reports_of(csms, 3)] == [[TX_DEFAULT_PROFILE]]
    # Nothing matches: NoProfiles, and no report.
    assert await get_charging_profiles(csms, 4, {"stackLevel": 5}) == {"status": "NoProfiles"}
    other = {"chargingLimitSource": ["EMS"]}
    assert await get_charging_profiles(csms, 5, other) == {"status": "NoProfiles"}
    await csms.call("CP-1", "GetChargingProfiles", {"requestId": 6, "chargingProfile": {}})
    await reports_of(csms, 6, count=2)  # barrier: the reports go up in order
    assert {m.payload["requestId"] for m in csms.received("ReportChargingProfiles")} == {1, 2, 3, 6}
    assert actions(charger) == ["SetChargingProfile", "SetChargingProfile"]


@pytest.mark.covers("csms_to_charger:SetChargingProfile", "GetChargingProfiles")
@pytest.mark.parametrize(
    ("charger_status", "reason_code"), [("Rejected", None), ("NotSupported", "UnsupportedRequest")]
)
async def test_a_profile_the_charger_does_not_accept_is_rejected_and_not_reported(
    make_charger: MakeCharger, csms: CsmsSim, charger_status: str, reason_code: str | None
) -> None:
    charger = await smart_charger(
        make_charger, SetChargingProfile=answering({"status": charger_status})
    )
    request = {"evseId": 1, "chargingProfile": TX_DEFAULT_PROFILE}
    answer = await csms.call("CP-1", "SetChargingProfile", request)
    if reason_code is None:
        assert answer == {"status": "Rejected"}
    else:  # 2.0.1 has no NotSupported (§2.8)
        assert_refused(answer, "Rejected", reason_code)
    assert len(charger.calls_of("SetChargingProfile")) == 1
    assert await get_charging_profiles(csms, 9) == {"status": "NoProfiles"}


@pytest.mark.covers("csms_to_charger:SetChargingProfile", "GetChargingProfiles")
async def test_tx_profile_goes_down_with_the_1_6_transaction_id(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await smart_charger(make_charger)
    legacy_id = await started_transaction(charger, 1)
    (started,) = await csms.wait_for("TransactionEvent")
    transaction_id = started.payload["transactionInfo"]["transactionId"]
    assert isinstance(transaction_id, str)

    profile = tx_profile(transaction_id)
    request = {"evseId": 1, "chargingProfile": profile}
    assert await csms.call("CP-1", "SetChargingProfile", request) == ACCEPTED
    assert charger.calls_of("SetChargingProfile") == [
        {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 9,
                "transactionId": legacy_id,  # the integer StartTransaction was given
                "stackLevel": 2,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8.0}],
                },
            },
        }
    ]
    # Reported back as the CSMS sent it: with its own (string) transactionId.
    assert await get_charging_profiles(csms, 11, {"chargingProfilePurpose": "TxProfile"}) == (
        ACCEPTED
    )
    assert [r["chargingProfile"] for r in await reports_of(csms, 11)] == [[profile]]


@pytest.mark.covers("csms_to_charger:SetChargingProfile")
async def test_tx_profile_for_no_ongoing_transaction_is_rejected_by_the_gateway(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """K01.FR.09/33: an unknown transaction, or one not on that EVSE."""
    charger = await smart_charger(make_charger)
    unknown = {"evseId": 1, "chargingProfile": tx_profile("no-such-transaction")}
    assert_refused(await csms.call("CP-1", "SetChargingProfile", unknown), "Rejected", "TxNotFound")

    await started_transaction(charger, 1)
    (started,) = await csms.wait_for("TransactionEvent")
    transaction_id = started.payload["transactionInfo"]["transactionId"]
    elsewhere = {"evseId": 2, "chargingProfile": tx_profile(transaction_id)}
    assert_refused(
        await csms.call("CP-1", "SetChargingProfile", elsewhere), "Rejected", "TxNotFound"
    )
    assert charger.calls_of("SetChargingProfile") == []


@pytest.mark.covers("csms_to_charger:SetChargingProfile", "GetChargingProfiles")
async def test_installed_profiles_are_still_reported_after_a_reconnect(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """The profiles are part of the stored station record, not of one connection."""
    charger = await smart_charger(make_charger)
    request = {"evseId": 1, "chargingProfile": TX_DEFAULT_PROFILE}
    assert await csms.call("CP-1", "SetChargingProfile", request) == ACCEPTED
    await charger.close()
    await csms.wait_disconnected("CP-1")
    await charger.connect()  # a reconnect, not a reboot: no BootNotification
    await charger.heartbeat()
    assert await get_charging_profiles(csms, 12) == ACCEPTED
    assert [r["chargingProfile"] for r in await reports_of(csms, 12)] == [[TX_DEFAULT_PROFILE]]


@pytest.mark.covers("csms_to_charger:SetChargingProfile", "GetChargingProfiles")
async def test_a_tx_profile_ends_with_its_transaction(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """1.6 §3.13.4: the charger drops a TxProfile when the transaction ends; so does the
    gateway's record, and a TxDefaultProfile stays."""
    charger = await smart_charger(make_charger)
    legacy_id = await started_transaction(charger, 1)
    (started,) = await csms.wait_for("TransactionEvent")
    transaction_id = started.payload["transactionInfo"]["transactionId"]
    await csms.call(
        "CP-1", "SetChargingProfile", {"evseId": 1, "chargingProfile": TX_DEFAULT_PROFILE}
    )
    profile = tx_profile(transaction_id)
    await csms.call("CP-1", "SetChargingProfile", {"evseId": 1, "chargingProfile": profile})
    assert await get_charging_profiles(csms, 13, evseId=1) == ACCEPTED
    (report,) = await reports_of(csms, 13)
    assert report["chargingProfile"] == [TX_DEFAULT_PROFILE, profile]

    assert await charger.stop_transaction(legacy_id, 2000, now(), reason="Local") == {}
    assert await get_charging_profiles(csms, 14) == ACCEPTED
    assert [r["chargingProfile"] for r in await reports_of(csms, 14)] == [[TX_DEFAULT_PROFILE]]


REMOTE_TX_PROFILE: Payload = {
    "id": 31,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": [
        {
            "id": 1,
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 13.0}],
        }
    ],
}


async def remote_start_with_profile(charger: ChargerSim, csms: CsmsSim, **evse: int) -> None:
    """RequestStartTransaction with a TxProfile; the charger starts on connector 1, stops."""
    request = {
        "remoteStartId": 5,
        "idToken": {"idToken": TAG, "type": "ISO14443"},
        "chargingProfile": REMOTE_TX_PROFILE,
        **evse,
    }
    assert await csms.call("CP-1", "RequestStartTransaction", request) == ACCEPTED
    (remote_start,) = charger.calls_of("RemoteStartTransaction")
    assert remote_start["chargingProfile"]["chargingProfilePurpose"] == "TxProfile"
    legacy_id = await started_transaction(charger, 1)
    assert await charger.stop_transaction(legacy_id, 1500, now(), reason="Local") == {}


@pytest.mark.covers("RequestStartTransaction", "GetChargingProfiles")
async def test_a_remote_start_tx_profile_for_an_evse_ends_with_its_transaction(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await smart_charger(make_charger)
    await remote_start_with_profile(charger, csms, evseId=1)
    assert await get_charging_profiles(csms, 15) == {"status": "NoProfiles"}


@pytest.mark.covers("RequestStartTransaction", "GetChargingProfiles")
async def test_a_remote_start_tx_profile_without_an_evse_ends_with_its_transaction(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await smart_charger(make_charger)
    await remote_start_with_profile(charger, csms)
    assert await get_charging_profiles(csms, 16) == {"status": "NoProfiles"}


# --- ClearChargingProfile (§2.8, §3.6) ------------------------------------------------


@pytest.mark.covers("csms_to_charger:ClearChargingProfile", "GetChargingProfiles")
async def test_clear_charging_profile_by_id_clears_it_on_the_charger_and_in_the_report(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await smart_charger(make_charger)
    await csms.call(
        "CP-1", "SetChargingProfile", {"evseId": 1, "chargingProfile": TX_DEFAULT_PROFILE}
    )
    await csms.call(
        "CP-1", "SetChargingProfile", {"evseId": 0, "chargingProfile": STATION_MAX_PROFILE}
    )

    answer = await csms.call("CP-1", "ClearChargingProfile", {"chargingProfileId": 7})
    assert answer == ACCEPTED
    assert charger.calls_of("ClearChargingProfile") == [{"id": 7}]
    assert await get_charging_profiles(csms, 21) == ACCEPTED
    (report,) = await reports_of(csms, 21)
    assert (report["evseId"], report["chargingProfile"]) == (0, [STATION_MAX_PROFILE])
    assert "tbc" not in report

    assert await csms.call("CP-1", "ClearChargingProfile", {"chargingProfileId": 8}) == ACCEPTED
    assert charger.calls_of("ClearChargingProfile") == [{"id": 7}, {"id": 8}]
    assert await get_charging_profiles(csms, 22) == {"status": "NoProfiles"}


@pytest.mark.covers("csms_to_charger:ClearChargingProfile", "GetChargingProfiles")
async def test_clear_charging_profile_by_criteria_maps_evse_and_purpose(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await smart_charger(make_charger)
    await csms.call(
        "CP-1", "SetChargingProfile", {"evseId": 0, "chargingProfile": STATION_MAX_PROFILE}
    )
    criteria = {"evseId": 0, "chargingProfilePurpose": "ChargingStationMaxProfile", "stackLevel": 1}
    request = {"chargingProfileCriteria": criteria}
    assert await csms.call("CP-1", "ClearChargingProfile", request) == ACCEPTED
    assert charger.calls_of("ClearChargingProfile") == [
        {"connectorId": 0, "chargingProfilePurpose": "ChargePointMaxProfile", "stackLevel": 1}
    ]
    assert await get_charging_profiles(csms, 23) == {"status": "NoProfiles"}


@pytest.mark.covers("csms_to_charger:ClearChargingProfile", "GetChargingProfiles")
async def test_clear_charging_profile_the_charger_does_not_know_keeps_the_profile(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await smart_charger(
        make_charger, ClearChargingProfile=answering({"status": "Unknown"})
    )
    await csms.call(
        "CP-1", "SetChargingProfile", {"evseId": 1, "chargingProfile": TX_DEFAULT_PROFILE}
    )
    answer = await csms.call("CP-1", "ClearChargingProfile", {"chargingProfileId": 7})
    assert answer == {"status": "Unknown"}
    assert charger.calls_of("ClearChargingProfile") == [{"id": 7}]
    assert await get_charging_profiles(csms, 24) == ACCEPTED
    assert [r["chargingProfile"] for r in await reports_of(csms, 24)] == [[TX_DEFAULT_PROFILE]]


@pytest.mark.covers("csms_to_charger:ClearChargingProfile")
async def test_clear_external_constraints_is_unknown_without_the_charger(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await smart_charger(make_charger)
    criteria = {"chargingProfilePurpose": "ChargingStationExternalConstraints"}
    answer = await csms.call("CP-1", "ClearChargingProfile", {"chargingProfileCriteria": criteria})
    assert_refused(answer, "Unknown", "NotFound")
    assert charger.received_calls == []


# --- GetCompositeSchedule (§2.8, §3.6) ------------------------------------------------

COMPOSITE_V16: Payload = {
    "status": "Accepted",
    "connectorId": 1,
    "scheduleStart": "2024-05-01T14:00:00.123456+02:00",
    "chargingSchedule": {
        "duration": 900,
        "startSchedule": "2024-05-01T14:00:00+02:00",
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 11000.0, "numberPhases": 3},
            {"startPeriod": 600, "limit": 7400.5},
        ],
        "minChargingRate": 1400.0,
    },
}


@pytest.mark.covers("csms_to_charger:GetCompositeSchedule")
async def test_get_composite_schedule_is_converted_back(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, GetCompositeSchedule=answering(COMPOSITE_V16))
    request = {"duration": 1200, "evseId": 1, "chargingRateUnit": "W"}
    answer = await csms.call("CP-1", "GetCompositeSchedule", request)
    assert charger.calls_of("GetCompositeSchedule") == [
        {"connectorId": 1, "duration": 1200, "chargingRateUnit": "W"}
    ]
    assert answer == {
        "status": "Accepted",
        "schedule": {
            "evseId": 1,
            "duration": 900,  # the charger's, not the requested 1200
            "scheduleStart": "2024-05-01T12:00:00.123Z",  # UTC, milliseconds
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 11000.0, "numberPhases": 3},
                {"startPeriod": 600, "limit": 7400.5},
            ],
        },
    }


@pytest.mark.covers("csms_to_charger:GetCompositeSchedule")
async def test_get_composite_schedule_fills_start_and_duration_the_charger_left_out(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    schedule = {
        "startSchedule": "2024-05-01T12:30:00Z",
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}],
    }
    reply = {"status": "Accepted", "connectorId": 0, "chargingSchedule": schedule}
    charger = await custom_charger(make_charger, GetCompositeSchedule=answering(reply))
    answer = await csms.call("CP-1", "GetCompositeSchedule", {"duration": 3600, "evseId": 0})
    assert charger.calls_of("GetCompositeSchedule") == [{"connectorId": 0, "duration": 3600}]
    assert answer == {
        "status": "Accepted",
        "schedule": {
            "evseId": 0,
            "duration": 3600,
            "scheduleStart": "2024-05-01T12:30:00Z",
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}],
        },
    }


@pytest.mark.covers("csms_to_charger:GetCompositeSchedule")
async def test_get_composite_schedule_rejected_by_the_charger(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(
        make_charger, GetCompositeSchedule=answering({"status": "Rejected"})
    )
    answer = await csms.call("CP-1", "GetCompositeSchedule", {"duration": 60, "evseId": 2})
    assert answer == {"status": "Rejected"}
    assert charger.calls_of("GetCompositeSchedule") == [{"connectorId": 2, "duration": 60}]


# --- SendLocalList, GetLocalListVersion (§2.14, §3.4) --------------------------------

LOCAL_LIST: Payload = {
    "versionNumber": 3,
    "updateType": "Full",
    "localAuthorizationList": [
        {
            "idToken": {"idToken": TAG, "type": "ISO14443"},
            "idTokenInfo": {
                "status": "Accepted",
                "cacheExpiryDateTime": "2030-01-01T00:00:00.000Z",
                "groupIdToken": {"idToken": "FLEET-1", "type": "Central"},
                "language1": "nl",
            },
        },
        {
            "idToken": {"idToken": "DEADBEEF", "type": "ISO15693"},
            "idTokenInfo": {"status": "NoCredit"},  # no 1.6 value: Invalid (§2.4)
        },
    ],
}

LOCAL_LIST_V16: Payload = {
    "listVersion": 3,
    "updateType": "Full",
    "localAuthorizationList": [
        {
            "idTag": TAG,
            "idTagInfo": {
                "status": "Accepted",
                "expiryDate": "2030-01-01T00:00:00.000Z",
                "parentIdTag": "FLEET-1",
            },
        },
        {"idTag": "DEADBEEF", "idTagInfo": {"status": "Invalid"}},
    ],
}


@pytest.mark.covers("csms_to_charger:SendLocalList")
@pytest.mark.parametrize("status", ["Accepted", "Failed", "VersionMismatch"])
async def test_send_local_list_full_with_two_entries(
    make_charger: MakeCharger, csms: CsmsSim, status: str
) -> None:
    charger = await custom_charger(make_charger, SendLocalList=answering({"status": status}))
    assert await csms.call("CP-1", "SendLocalList", LOCAL_LIST) == {"status": status}
    assert charger.calls_of("SendLocalList") == [LOCAL_LIST_V16]


@pytest.mark.covers("csms_to_charger:SendLocalList")
async def test_send_local_list_the_charger_does_not_support_fails_with_the_reason(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(
        make_charger, SendLocalList=answering({"status": "NotSupported"})
    )
    answer = await csms.call("CP-1", "SendLocalList", LOCAL_LIST)
    assert_refused(answer, "Failed", "UnsupportedRequest")
    assert charger.calls_of("SendLocalList") == [LOCAL_LIST_V16]


@pytest.mark.covers("csms_to_charger:SendLocalList")
async def test_send_local_list_1_6_cannot_hold_is_not_sent_at_all(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, SendLocalList=answering(ACCEPTED))
    too_long = {
        "versionNumber": 4,
        "updateType": "Differential",
        "localAuthorizationList": [
            {"idToken": {"idToken": "A" * 21, "type": "Central"}, "idTokenInfo": ACCEPTED}
        ],
    }
    assert_refused(await csms.call("CP-1", "SendLocalList", too_long), "Failed", "InvalidIdToken")
    assert charger.received_calls == []


@pytest.mark.covers("csms_to_charger:SendLocalList")
async def test_send_local_list_full_without_entries_empties_the_list(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, SendLocalList=answering(ACCEPTED))
    request = {"versionNumber": 4, "updateType": "Full"}
    assert await csms.call("CP-1", "SendLocalList", request) == ACCEPTED
    assert charger.calls_of("SendLocalList") == [{"listVersion": 4, "updateType": "Full"}]


@pytest.mark.covers("csms_to_charger:SendLocalList")
async def test_send_local_list_differential_entry_without_info_deletes_it(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, SendLocalList=answering(ACCEPTED))
    request = {
        "versionNumber": 5,
        "updateType": "Differential",
        "localAuthorizationList": [{"idToken": {"idToken": TAG, "type": "ISO14443"}}],
    }
    assert await csms.call("CP-1", "SendLocalList", request) == ACCEPTED
    assert charger.calls_of("SendLocalList") == [
        {"listVersion": 5, "updateType": "Differential", "localAuthorizationList": [{"idTag": TAG}]}
    ]


@pytest.mark.covers("csms_to_charger:GetLocalListVersion")
@pytest.mark.parametrize(("list_version", "version_number"), [(3, 3), (0, 0), (-1, 0)])
async def test_get_local_list_version(
    make_charger: MakeCharger, csms: CsmsSim, list_version: int, version_number: int
) -> None:
    """1.6 -1 ("no local list support") has no 2.0.1 value: 0 (§3.4)."""
    charger = await custom_charger(
        make_charger, GetLocalListVersion=answering({"listVersion": list_version})
    )
    answer = await csms.call("CP-1", "GetLocalListVersion", {})
    assert answer == {"versionNumber": version_number}
    assert charger.calls_of("GetLocalListVersion") == [{}]


# --- ReserveNow, CancelReservation (§2.15, §3.5) -------------------------------------


def reservation(reservation_id: int, **extra: Any) -> Payload:
    return {
        "id": reservation_id,
        "expiryDateTime": FAR_FUTURE,
        "idToken": {"idToken": TAG, "type": "ISO14443"},
        **extra,
    }


@pytest.mark.covers("csms_to_charger:ReserveNow")
async def test_reserve_now_for_an_evse_reserves_its_connector(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, ReserveNow=answering(ACCEPTED))
    request = reservation(11, evseId=2, groupIdToken={"idToken": "FLEET-1", "type": "Central"})
    assert await csms.call("CP-1", "ReserveNow", request) == ACCEPTED
    assert charger.calls_of("ReserveNow") == [
        {
            "connectorId": 2,
            "expiryDate": FAR_FUTURE,
            "idTag": TAG,
            "reservationId": 11,
            "parentIdTag": "FLEET-1",
        }
    ]


@pytest.mark.covers("csms_to_charger:ReserveNow")
async def test_reserve_now_without_an_evse_is_connector_0(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, ReserveNow=answering(ACCEPTED))
    assert await csms.call("CP-1", "ReserveNow", reservation(12)) == ACCEPTED
    assert charger.calls_of("ReserveNow") == [
        {"connectorId": 0, "expiryDate": FAR_FUTURE, "idTag": TAG, "reservationId": 12}
    ]


@pytest.mark.covers("csms_to_charger:ReserveNow")
@pytest.mark.parametrize("status", ["Occupied", "Faulted", "Unavailable", "Rejected"])
async def test_reserve_now_answer_of_the_charger_is_copied(
    make_charger: MakeCharger, csms: CsmsSim, status: str
) -> None:
    charger = await custom_charger(make_charger, ReserveNow=answering({"status": status}))
    assert await csms.call("CP-1", "ReserveNow", reservation(13, evseId=1)) == {"status": status}
    assert [call["connectorId"] for call in charger.calls_of("ReserveNow")] == [1]


@pytest.mark.covers("csms_to_charger:ReserveNow")
async def test_reserve_now_by_connector_type_alone_is_rejected_by_the_gateway(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, ReserveNow=answering(ACCEPTED))
    answer = await csms.call("CP-1", "ReserveNow", reservation(14, connectorType="cType2"))
    assert_refused(answer, "Rejected", "UnsupportedParam")
    assert charger.received_calls == []


@pytest.mark.covers("csms_to_charger:CancelReservation")
@pytest.mark.parametrize("status", ["Accepted", "Rejected"])
async def test_cancel_reservation(make_charger: MakeCharger, csms: CsmsSim, status: str) -> None:
    charger = await custom_charger(
        make_charger,
        ReserveNow=answering(ACCEPTED),
        CancelReservation=answering({"status": status}),
    )
    assert await csms.call("CP-1", "ReserveNow", reservation(15, evseId=1)) == ACCEPTED
    answer = await csms.call("CP-1", "CancelReservation", {"reservationId": 15})
    assert answer == {"status": status}
    assert charger.calls_of("CancelReservation") == [{"reservationId": 15}]


# --- UpdateFirmware, FirmwareStatusNotification (§2.11, §3.1, §3.3, §3.8) -------------

FIRMWARE_LOCATION = "https://firmware.example.com/wallbox-2.1.bin"
RETRIEVE = "2024-05-01T12:00:00.000Z"
SIGNING_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBfirmwaresigner\n-----END CERTIFICATE-----\n"
SIGNATURE = "c2lnbmF0dXJlIG9mIHRoZSBmaXJtd2FyZQ=="


def update_firmware(request_id: int, *, signed: bool = False) -> Payload:
    firmware: Payload = {"location": FIRMWARE_LOCATION, "retrieveDateTime": RETRIEVE}
    if signed:
        firmware["installDateTime"] = "2024-05-01T13:00:00.000Z"
        firmware["signingCertificate"] = SIGNING_CERTIFICATE
        firmware["signature"] = SIGNATURE
    return {"requestId": request_id, "retries": 2, "retryInterval": 30, "firmware": firmware}


async def firmware_status(charger: ChargerSim, status: str) -> None:
    assert await charger.call("FirmwareStatusNotification", {"status": status}) == {}


def firmware_statuses(csms: CsmsSim) -> list[Payload]:
    return [message.payload for message in csms.received("FirmwareStatusNotification")]


def boot_reasons(csms: CsmsSim) -> list[str]:
    return [message.payload["reason"] for message in csms.received("BootNotification")]


@pytest.mark.covers(
    "csms_to_charger:UpdateFirmware",
    "charger_to_csms:FirmwareStatusNotification",
    "csms_to_charger:TriggerMessage",
)
async def test_update_firmware_to_a_plain_charger_and_its_status_carries_the_request_id(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, UpdateFirmware=answering({}))
    assert await csms.call("CP-1", "UpdateFirmware", update_firmware(77)) == ACCEPTED
    assert charger.calls_of("UpdateFirmware") == [
        {"location": FIRMWARE_LOCATION, "retrieveDate": RETRIEVE, "retries": 2, "retryInterval": 30}
    ]

    await firmware_status(charger, "Downloading")
    await firmware_status(charger, "Installed")
    assert firmware_statuses(csms) == [
        {"status": "Downloading", "requestId": 77},
        {"status": "Installed", "requestId": 77},
    ]

    # The update is over: a triggered Idle goes up without a requestId (2.0.1 §1.15.1).
    answer = await csms.call(
        "CP-1", "TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"}
    )
    assert answer == ACCEPTED
    assert charger.calls_of("TriggerMessage") == [
        {"requestedMessage": "FirmwareStatusNotification"}
    ]
    await firmware_status(charger, "Idle")
    assert firmware_statuses(csms)[-1] == {"status": "Idle"}


@pytest.mark.covers(
    "csms_to_charger:UpdateFirmware",
    "charger_to_csms:FirmwareStatusNotification",
    "charger_to_csms:BootNotification",
)
async def test_installing_firmware_makes_the_next_boot_a_firmware_update(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, UpdateFirmware=answering({}))
    assert await csms.call("CP-1", "UpdateFirmware", update_firmware(78)) == ACCEPTED
    for status in ("Downloading", "Downloaded", "Installing"):
        await firmware_status(charger, status)

    assert (await charger.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "FirmwareUpdate"]
    # The update goes on across the reboot: its last status still names the request.
    await firmware_status(charger, "Installed")
    assert firmware_statuses(csms) == [
        {"status": status, "requestId": 78}
        for status in ("Downloading", "Downloaded", "Installing", "Installed")
    ]
    # The reason was spent on that boot.
    assert (await charger.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "FirmwareUpdate", "PowerUp"]


@pytest.mark.covers("csms_to_charger:UpdateFirmware", "charger_to_csms:FirmwareStatusNotification")
async def test_a_failed_download_ends_the_update(make_charger: MakeCharger, csms: CsmsSim) -> None:
    charger = await custom_charger(make_charger, UpdateFirmware=answering({}))
    assert await csms.call("CP-1", "UpdateFirmware", update_firmware(79)) == ACCEPTED
    await firmware_status(charger, "DownloadFailed")
    await firmware_status(charger, "Idle")  # the charger's own, no update ongoing
    assert firmware_statuses(csms) == [
        {"status": "DownloadFailed", "requestId": 79},
        {"status": "Idle"},
    ]
    assert (await charger.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "PowerUp"]


@pytest.mark.covers("csms_to_charger:UpdateFirmware", "charger_to_csms:FirmwareStatusNotification")
async def test_signed_firmware_to_a_charger_without_the_extension_is_rejected(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """The signature is never dropped (§3.3): nothing reaches the charger."""
    charger = await custom_charger(
        make_charger,
        UpdateFirmware=answering({}),
        SignedUpdateFirmware=answering(ACCEPTED),
    )
    answer = await csms.call("CP-1", "UpdateFirmware", update_firmware(80, signed=True))
    assert_refused(answer, "Rejected", "UnsupportedRequest")
    assert charger.received_calls == []
    # No update started: the charger's status goes up without a requestId.
    await firmware_status(charger, "Idle")
    assert firmware_statuses(csms) == [{"status": "Idle"}]


@pytest.mark.covers("csms_to_charger:UpdateFirmware", "SignedFirmwareStatusNotification")
@pytest.mark.parametrize("status", ["Accepted", "InvalidCertificate"])
async def test_signed_firmware_to_a_charger_with_the_extension_is_signed_update_firmware(
    make_charger: MakeCharger, csms: CsmsSim, status: str
) -> None:
    charger = await extended_charger(
        make_charger, csms, SignedUpdateFirmware=answering({"status": status})
    )
    answer = await csms.call("CP-1", "UpdateFirmware", update_firmware(81, signed=True))
    assert answer == {"status": status}
    assert charger.calls_of("SignedUpdateFirmware") == [
        {
            "requestId": 81,
            "retries": 2,
            "retryInterval": 30,
            "firmware": {
                "location": FIRMWARE_LOCATION,
                "retrieveDateTime": RETRIEVE,
                "installDateTime": "2024-05-01T13:00:00.000Z",
                "signingCertificate": SIGNING_CERTIFICATE,
                "signature": SIGNATURE,
            },
        }
    ]
    assert charger.calls_of("UpdateFirmware") == []
    # Only an update the charger took on has a requestId for its statuses.
    assert await charger.call("SignedFirmwareStatusNotification", {"status": "Idle"}) == {}
    expected = {"status": "Idle", "requestId": 81} if status == "Accepted" else {"status": "Idle"}
    assert firmware_statuses(csms) == [expected]


@pytest.mark.covers(
    "csms_to_charger:UpdateFirmware",
    "SignedFirmwareStatusNotification",
    "charger_to_csms:BootNotification",
)
async def test_signed_firmware_status_without_request_id_gets_the_kept_one(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await extended_charger(make_charger, csms, SignedUpdateFirmware=answering(ACCEPTED))
    assert await csms.call("CP-1", "UpdateFirmware", update_firmware(82, signed=True)) == ACCEPTED
    for status in ("Downloading", "SignatureVerified", "InstallRebooting"):
        assert await charger.call("SignedFirmwareStatusNotification", {"status": status}) == {}
    assert firmware_statuses(csms) == [
        {"status": "Downloading", "requestId": 82},
        {"status": "SignatureVerified", "requestId": 82},
        {"status": "InstallRebooting", "requestId": 82},
    ]
    assert (await charger.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "FirmwareUpdate"]


@pytest.mark.covers("csms_to_charger:UpdateFirmware")
async def test_the_learnt_security_extension_survives_a_reconnect(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await extended_charger(make_charger, csms, SignedUpdateFirmware=answering(ACCEPTED))
    await charger.close()
    await csms.wait_disconnected("CP-1")
    await charger.connect()  # a reconnect of the same charger, no reboot
    await charger.heartbeat()
    answer = await csms.call("CP-1", "UpdateFirmware", update_firmware(83, signed=True))
    assert answer == ACCEPTED
    assert len(charger.calls_of("SignedUpdateFirmware")) == 1


# --- GetLog, DiagnosticsStatusNotification (§2.10, §3.1, §3.3) ----------------------

LOG_LOCATION = "ftp://logs.example.com/cp-1/"
T_OLDEST = "2024-04-30T00:00:00.000Z"
T_LATEST = "2024-05-01T00:00:00.000Z"


def get_log(request_id: int, log_type: str = "DiagnosticsLog") -> Payload:
    return {
        "logType": log_type,
        "requestId": request_id,
        "retries": 1,
        "retryInterval": 60,
        "log": {
            "remoteLocation": LOG_LOCATION,
            "oldestTimestamp": T_OLDEST,
            "latestTimestamp": T_LATEST,
        },
    }


async def diagnostics_status(charger: ChargerSim, status: str) -> None:
    assert await charger.call("DiagnosticsStatusNotification", {"status": status}) == {}


def log_statuses(csms: CsmsSim) -> list[Payload]:
    return [message.payload for message in csms.received("LogStatusNotification")]


@pytest.mark.covers(
    "csms_to_charger:GetLog", "DiagnosticsStatusNotification", "csms_to_charger:TriggerMessage"
)
async def test_get_log_to_a_plain_charger_is_get_diagnostics_and_its_status_carries_the_id(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(
        make_charger, GetDiagnostics=answering({"fileName": "diagnostics-cp-1.zip"})
    )
    answer = await csms.call("CP-1", "GetLog", get_log(5))
    assert answer == {"status": "Accepted", "filename": "diagnostics-cp-1.zip"}
    assert charger.calls_of("GetDiagnostics") == [
        {
            "location": LOG_LOCATION,
            "retries": 1,
            "retryInterval": 60,
            "startTime": T_OLDEST,
            "stopTime": T_LATEST,
        }
    ]

    await diagnostics_status(charger, "Uploading")
    await diagnostics_status(charger, "Uploaded")
    assert log_statuses(csms) == [
        {"status": "Uploading", "requestId": 5},
        {"status": "Uploaded", "requestId": 5},
    ]
    # The upload is over: a triggered Idle has no request to name.
    answer = await csms.call(
        "CP-1", "TriggerMessage", {"requestedMessage": "LogStatusNotification"}
    )
    assert answer == ACCEPTED
    assert charger.calls_of("TriggerMessage") == [
        {"requestedMessage": "DiagnosticsStatusNotification"}
    ]
    await diagnostics_status(charger, "Idle")
    assert log_statuses(csms)[-1] == {"status": "Idle"}


@pytest.mark.covers("csms_to_charger:GetLog", "DiagnosticsStatusNotification")
async def test_a_failed_upload_is_upload_failure(make_charger: MakeCharger, csms: CsmsSim) -> None:
    charger = await custom_charger(make_charger, GetDiagnostics=answering({}))
    # No fileName: accepted, but no file to name (2.0.1 omits filename the same way).
    assert await csms.call("CP-1", "GetLog", get_log(6)) == ACCEPTED
    await diagnostics_status(charger, "Uploading")
    await diagnostics_status(charger, "UploadFailed")
    assert log_statuses(csms) == [
        {"status": "Uploading", "requestId": 6},
        {"status": "UploadFailure", "requestId": 6},
    ]


@pytest.mark.covers("csms_to_charger:GetLog")
async def test_get_security_log_from_a_plain_charger_is_rejected_by_the_gateway(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, GetDiagnostics=answering({}))
    answer = await csms.call("CP-1", "GetLog", get_log(7, "SecurityLog"))
    assert_refused(answer, "Rejected", "UnsupportedRequest")
    assert charger.received_calls == []


@pytest.mark.covers("csms_to_charger:GetLog", "charger_to_csms:LogStatusNotification")
async def test_get_log_to_a_charger_with_the_extension_is_the_extension_get_log(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await extended_charger(
        make_charger, csms, GetLog=answering({"status": "Accepted", "filename": "security.log"})
    )
    answer = await csms.call("CP-1", "GetLog", get_log(8, "SecurityLog"))
    assert answer == {"status": "Accepted", "filename": "security.log"}
    assert charger.calls_of("GetLog") == [get_log(8, "SecurityLog")]
    assert charger.calls_of("GetDiagnostics") == []
    # The extension's LogStatusNotification, here without its optional requestId.
    assert await charger.call("LogStatusNotification", {"status": "Uploaded"}) == {}
    assert log_statuses(csms) == [{"status": "Uploaded", "requestId": 8}]


# --- SecurityEventNotification, SignCertificate, InstallCertificate (§2.16, §2.17, §3.8)


@pytest.mark.covers("charger_to_csms:SecurityEventNotification")
@pytest.mark.parametrize(
    ("name_v16", "name_v201"),
    [
        ("InvalidCentralSystemCertificate", "InvalidCsmsCertificate"),
        ("FailedToAuthenticationAtCentralSystem", "FailedToAuthenticateAtCsms"),
        ("CentralSystemFailedToAuthentication", "CsmsFailedToAuthenticate"),
        ("InvalidChargePointCertificate", "InvalidChargingStationCertificate"),
        ("StartupOfTheDevice", "StartupOfTheDevice"),  # the same in both
    ],
)
async def test_security_event_notification_gets_its_2_0_1_name(
    booted: ChargerSim, csms: CsmsSim, name_v16: str, name_v201: str
) -> None:
    event = {
        "type": name_v16,
        "timestamp": "2024-05-01T14:00:00.5+02:00",
        "techInfo": "TLS handshake failed",
    }
    assert await booted.call("SecurityEventNotification", event) == {}
    await csms.wait_for("SecurityEventNotification")  # through the outbox, after the answer
    assert only_payload(csms, "SecurityEventNotification") == {
        "type": name_v201,
        "timestamp": "2024-05-01T12:00:00.500Z",
        "techInfo": "TLS handshake failed",
    }


CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBchargepoint\n-----END CERTIFICATE REQUEST-----\n"
ROOT_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBcsmsroot\n-----END CERTIFICATE-----\n"


@pytest.mark.covers("charger_to_csms:SignCertificate")
@pytest.mark.parametrize("status", ["Accepted", "Rejected"])
async def test_sign_certificate_is_for_the_charging_station_certificate(
    booted: ChargerSim, csms: CsmsSim, status: str
) -> None:
    csms.handlers["SignCertificate"] = lambda _station, _payload: {"status": status}
    assert await booted.call("SignCertificate", {"csr": CSR}) == {"status": status}
    assert only_payload(csms, "SignCertificate") == {
        "csr": CSR,
        "certificateType": "ChargingStationCertificate",
    }


@pytest.mark.covers("csms_to_charger:InstallCertificate")
@pytest.mark.parametrize(
    ("certificate_type", "certificate_type_v16"),
    [
        ("CSMSRootCertificate", "CentralSystemRootCertificate"),
        ("ManufacturerRootCertificate", "ManufacturerRootCertificate"),
    ],
)
async def test_install_certificate_to_a_charger_with_the_extension(
    make_charger: MakeCharger, csms: CsmsSim, certificate_type: str, certificate_type_v16: str
) -> None:
    charger = await extended_charger(make_charger, csms, InstallCertificate=answering(ACCEPTED))
    request = {"certificateType": certificate_type, "certificate": ROOT_CERTIFICATE}
    assert await csms.call("CP-1", "InstallCertificate", request) == ACCEPTED
    assert charger.calls_of("InstallCertificate") == [
        {"certificateType": certificate_type_v16, "certificate": ROOT_CERTIFICATE}
    ]


@pytest.mark.covers("csms_to_charger:InstallCertificate")
async def test_install_certificate_the_charger_refuses(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await extended_charger(
        make_charger, csms, InstallCertificate=answering({"status": "Failed"})
    )
    request = {"certificateType": "CSMSRootCertificate", "certificate": ROOT_CERTIFICATE}
    assert await csms.call("CP-1", "InstallCertificate", request) == {"status": "Failed"}
    assert len(charger.calls_of("InstallCertificate")) == 1


@pytest.mark.covers("csms_to_charger:InstallCertificate")
async def test_install_certificate_without_the_extension_is_rejected_by_the_gateway(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, InstallCertificate=answering(ACCEPTED))
    request = {"certificateType": "CSMSRootCertificate", "certificate": ROOT_CERTIFICATE}
    answer = await csms.call("CP-1", "InstallCertificate", request)
    assert_refused(answer, "Rejected", "UnsupportedRequest")
    assert charger.received_calls == []


@pytest.mark.covers("csms_to_charger:InstallCertificate")
async def test_install_an_iso_15118_certificate_never_goes_to_the_extension(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """The security extension has no V2G root: it goes through the PnC tunnel (test_pnc),
    which this charger refuses, so the CSMS hears Rejected and why."""
    charger = await extended_charger(
        make_charger,
        csms,
        InstallCertificate=answering(ACCEPTED),
        DataTransfer=answering({"status": "UnknownVendorId"}),
    )
    request = {"certificateType": "V2GRootCertificate", "certificate": ROOT_CERTIFICATE}
    answer = await csms.call("CP-1", "InstallCertificate", request)
    assert_refused(answer, "Rejected", "UnsupportedRequest")
    assert actions(charger) == ["GetConfiguration", "DataTransfer"]


@pytest.mark.covers(
    "csms_to_charger:CertificateSigned",
    "csms_to_charger:GetInstalledCertificateIds",
    "csms_to_charger:DeleteCertificate",
)
async def test_own_certificates_and_roots_use_the_security_extension(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """The Charge Point certificate, one 1.6 root type and a found hash each take exactly
    one 1.6 security-extension CALL (SEC §6), answered field by field; the PnC tunnel is
    never asked when the extension answers (test_pnc covers the tunnel)."""
    hash_data = {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": "8f2a4b6c",
        "issuerKeyHash": "1d3e5f70",
        "serialNumber": "0a1b2c",
    }
    charger = await extended_charger(
        make_charger,
        csms,
        CertificateSigned=answering(ACCEPTED),
        GetInstalledCertificateIds=answering(
            {"status": "Accepted", "certificateHashData": [hash_data]}
        ),
        DeleteCertificate=answering(ACCEPTED),
    )
    chain = ROOT_CERTIFICATE + ROOT_CERTIFICATE
    signed = await csms.call(
        "CP-1",
        "CertificateSigned",
        {"certificateChain": chain, "certificateType": "ChargingStationCertificate"},
    )
    ids = await csms.call(
        "CP-1", "GetInstalledCertificateIds", {"certificateType": ["ManufacturerRootCertificate"]}
    )
    deleted = await csms.call("CP-1", "DeleteCertificate", {"certificateHashData": hash_data})

    assert signed == ACCEPTED
    assert ids == {
        "status": "Accepted",
        "certificateHashDataChain": [
            {"certificateType": "ManufacturerRootCertificate", "certificateHashData": hash_data}
        ],
    }
    assert deleted == ACCEPTED
    assert charger.received_calls[1:] == [
        ("CertificateSigned", {"certificateChain": chain}),
        ("GetInstalledCertificateIds", {"certificateType": "ManufacturerRootCertificate"}),
        ("DeleteCertificate", {"certificateHashData": hash_data}),
    ]
