"""Tests for gateway.translate.remote: RequestStart/StopTransaction -> 1.6 and back.

Expected payloads are written by hand from reference messages.md §2.7, §2.8, §3.2 and
§3.6. Every emitted payload is validated against the official schema of its action,
and every input is checked unmutated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from ocpp.v16.enums import ChargingProfilePurposeType
from ocpp.v201.enums import ChargingProfilePurposeEnumType

from gateway.errors import UnmappedValue
from gateway.ocppj import Payload, Version
from gateway.schemas import Kind
from gateway.schemas import validate as validate_in_place
from gateway.translate import remote

from .conftest import MakeContext


def validate(version: Version, action: str, kind: Kind, payload: Payload) -> None:
    """Validate a copy: fastjsonschema fills schema defaults (e.g. offline: false) into
    the payload it checks, which would hide what the converter really built."""
    validate_in_place(version, action, kind, copy.deepcopy(payload))


TAG = "04A2B3C4"


def _untouched(request: Payload, convert: Callable[[Payload], Any]) -> Any:
    """Run ``convert`` and check it did not mutate its input."""
    before = copy.deepcopy(request)
    result = convert(request)
    assert request == before, "the converter must not mutate its input"
    return result


def _request_start(**extra: Any) -> Payload:
    request = {"idToken": {"idToken": TAG, "type": "ISO14443"}, "remoteStartId": 7, **extra}
    validate(Version.V201, "RequestStartTransaction", Kind.REQUEST, request)
    return request


def _remote_start_is_valid(payload: Payload) -> Payload:
    validate(Version.V16, "RemoteStartTransaction", Kind.REQUEST, payload)
    return payload


def _schedule(**extra: Any) -> Payload:
    return {
        "id": 3,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
        **extra,
    }


def _profile(**extra: Any) -> Payload:
    return {
        "id": 12,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [_schedule()],
        **extra,
    }


# --- RequestStartTransaction -> RemoteStartTransaction ------------------------------


def test_remote_start_carries_the_id_tag_only(make_context: MakeContext) -> None:
    """idToken.idToken -> idTag; type and remoteStartId have no 1.6 field (§3.2)."""
    converted = _untouched(
        _request_start(),
        lambda request: remote.remote_start_transaction_from_request(request, make_context()),
    )
    assert _remote_start_is_valid(converted) == {"idTag": TAG}


def test_remote_start_on_an_evse_names_its_connector(make_context: MakeContext) -> None:
    """evseId n -> connectorId n under the default layout (§1.1)."""
    converted = remote.remote_start_transaction_from_request(
        _request_start(evseId=2), make_context()
    )
    assert _remote_start_is_valid(converted) == {"idTag": TAG, "connectorId": 2}


def test_remote_start_follows_a_two_connector_layout(make_context: MakeContext) -> None:
    """With 1.6 connector 1 as EVSE 2 and connector 2 as EVSE 1, EVSE 1 is connector 2."""
    ctx = make_context(layout={1: (2, 1), 2: (1, 1)})
    converted = remote.remote_start_transaction_from_request(_request_start(evseId=1), ctx)
    assert _remote_start_is_valid(converted) == {"idTag": TAG, "connectorId": 2}


def test_remote_start_on_an_evse_outside_the_layout_is_unmapped(
    make_context: MakeContext,
) -> None:
    """An EVSE the station does not have cannot be asked for; the reason code says so."""
    ctx = make_context(layout={1: (1, 1), 2: (2, 1)})
    with pytest.raises(UnmappedValue) as raised:
        remote.remote_start_transaction_from_request(_request_start(evseId=3), ctx)
    assert raised.value.details == {"reasonCode": "UnknownEvse"}


def test_remote_start_drops_the_group_id_token(make_context: MakeContext) -> None:
    """groupIdToken has no 1.6 field and is dropped (§3.2)."""
    request = _request_start(groupIdToken={"idToken": "FLEET-7", "type": "Central"})
    converted = remote.remote_start_transaction_from_request(request, make_context())
    assert _remote_start_is_valid(converted) == {"idTag": TAG}


def test_remote_start_with_a_20_character_token_is_forwarded(make_context: MakeContext) -> None:
    """20 characters is exactly what a 1.6 idTag holds."""
    request = _request_start(idToken={"idToken": "A" * 20, "type": "Central"})
    converted = remote.remote_start_transaction_from_request(request, make_context())
    assert _remote_start_is_valid(converted) == {"idTag": "A" * 20}


def test_remote_start_with_a_too_long_token_is_unmapped(make_context: MakeContext) -> None:
    """A 21-character (up to 36 in 2.0.1) token does not fit a 1.6 idTag (§1.2)."""
    request = _request_start(idToken={"idToken": "B" * 21, "type": "eMAID"})
    with pytest.raises(UnmappedValue) as raised:
        remote.remote_start_transaction_from_request(request, make_context())
    assert raised.value.details == {"reasonCode": "InvalidIdToken"}


def test_remote_start_with_a_charging_profile_converts_it(make_context: MakeContext) -> None:
    """The TxProfile travels field by field (§3.2, §3.6): no transactionId, schedule id,
    salesTariff or customData; one schedule object instead of a list."""
    profile = {
        "id": 12,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "validFrom": "2024-05-01T00:00:00.000Z",
        "validTo": "2024-05-02T00:00:00.000Z",
        "transactionId": "5c1d7f3e-8a0b-4c2d-9e6f-0a1b2c3d4e5f",
        "customData": {"vendorId": "ACME"},
        "chargingSchedule": [
            {
                "id": 3,
                "startSchedule": "2024-05-01T10:00:00.000Z",
                "duration": 3600,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 16, "numberPhases": 3},
                    {"startPeriod": 1800, "limit": 10.5},
                ],
                "minChargingRate": 6,
                "salesTariff": {
                    "id": 1,
                    "salesTariffEntry": [{"relativeTimeInterval": {"start": 0}}],
                },
            }
        ],
    }
    request = _request_start(evseId=1, chargingProfile=profile)
    converted = _untouched(
        request,
        lambda r: remote.remote_start_transaction_from_request(r, make_context()),
    )
    assert _remote_start_is_valid(converted) == {
        "idTag": TAG,
        "connectorId": 1,
        "chargingProfile": {
            "chargingProfileId": 12,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "validFrom": "2024-05-01T00:00:00.000Z",
            "validTo": "2024-05-02T00:00:00.000Z",
            "chargingSchedule": {
                "duration": 3600,
                "startSchedule": "2024-05-01T10:00:00.000Z",
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 16, "numberPhases": 3},
                    {"startPeriod": 1800, "limit": 10.5},
                ],
                "minChargingRate": 6,
            },
        },
    }


def test_remote_start_with_a_non_tx_profile_is_unmapped(make_context: MakeContext) -> None:
    """A remote start carries a TxProfile (1.6 §5.11); a TxDefaultProfile is refused."""
    request = _request_start(chargingProfile=_profile(chargingProfilePurpose="TxDefaultProfile"))
    with pytest.raises(UnmappedValue) as raised:
        remote.remote_start_transaction_from_request(request, make_context())
    assert raised.value.details == {"reasonCode": "InvalidProfile"}


def test_remote_start_with_several_schedules_is_unmapped(make_context: MakeContext) -> None:
    """1.6 carries exactly one chargingSchedule (§3.6, K01.FR.34)."""
    profile = _profile(chargingSchedule=[_schedule(id=1), _schedule(id=2)])
    request = _request_start(chargingProfile=profile)
    with pytest.raises(UnmappedValue) as raised:
        remote.remote_start_transaction_from_request(request, make_context())
    assert raised.value.details == {"reasonCode": "InvalidSchedule"}


# --- charging_profile_to_v16 --------------------------------------------------------


def _as_set_charging_profile(profile: Payload) -> Payload:
    """Check a converted profile against the 1.6 SetChargingProfile schema too."""
    validate(
        Version.V16,
        "SetChargingProfile",
        Kind.REQUEST,
        {"connectorId": 0, "csChargingProfiles": profile},
    )
    return profile


def test_recurring_profile_keeps_its_recurrency_kind() -> None:
    """recurrencyKind is identical in both versions (§2.8)."""
    profile = _profile(chargingProfileKind="Recurring", recurrencyKind="Daily")
    converted = _untouched(profile, remote.charging_profile_to_v16)
    assert _as_set_charging_profile(converted) == {
        "chargingProfileId": 12,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Recurring",
        "recurrencyKind": "Daily",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
        },
    }


def test_station_max_profile_becomes_charge_point_max_profile() -> None:
    """ChargingStationMaxProfile is 1.6's ChargePointMaxProfile (§2.8)."""
    converted = remote.charging_profile_to_v16(
        _profile(chargingProfilePurpose="ChargingStationMaxProfile")
    )
    assert _as_set_charging_profile(converted)["chargingProfilePurpose"] == "ChargePointMaxProfile"


def test_profile_purposes_cover_every_2_0_1_purpose_but_external_constraints() -> None:
    """Each settable 2.0.1 purpose has a 1.6 ChargingProfilePurposeType (§2.8, K01.FR.22)."""
    settable = {p.value for p in ChargingProfilePurposeEnumType} - {
        "ChargingStationExternalConstraints"
    }
    assert set(remote.PROFILE_PURPOSES_V16) == settable
    assert set(remote.PROFILE_PURPOSES_V16.values()) == {
        p.value for p in ChargingProfilePurposeType
    }


def test_external_constraints_profile_is_unmapped() -> None:
    """ChargingStationExternalConstraints has no 1.6 value."""
    with pytest.raises(UnmappedValue):
        remote.charging_profile_to_v16(
            _profile(chargingProfilePurpose="ChargingStationExternalConstraints")
        )


def test_phase_to_use_is_unmapped() -> None:
    """phaseToUse would change what the charger does and has no 1.6 field (§3.6)."""
    schedule = _schedule(
        chargingSchedulePeriod=[{"startPeriod": 0, "limit": 16, "numberPhases": 1, "phaseToUse": 2}]
    )
    with pytest.raises(UnmappedValue) as raised:
        remote.charging_profile_to_v16(_profile(chargingSchedule=[schedule]))
    assert raised.value.details == {"reasonCode": "UnsupportedParam"}


def test_limits_finer_than_a_tenth_are_rounded_safely() -> None:
    """1.6 limits are multiples of 0.1: a finer limit rounds down (never above the
    CSMS's cap), a finer minChargingRate rounds up; others are untouched."""
    schedule = _schedule(
        chargingRateUnit="W",
        chargingSchedulePeriod=[
            {"startPeriod": 0, "limit": 11000},
            {"startPeriod": 600, "limit": 7.7},
            {"startPeriod": 1200, "limit": 10.25},
            {"startPeriod": 1800, "limit": 4.99},
        ],
        minChargingRate=6.01,
    )
    converted = remote.charging_profile_to_v16(_profile(chargingSchedule=[schedule]))
    assert _as_set_charging_profile(converted)["chargingSchedule"] == {
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 11000},
            {"startPeriod": 600, "limit": 7.7},
            {"startPeriod": 1200, "limit": 10.2},
            {"startPeriod": 1800, "limit": 4.9},
        ],
        "minChargingRate": 6.1,
    }


# --- answers to the CSMS ------------------------------------------------------------


@pytest.mark.parametrize("status", ["Accepted", "Rejected"])
def test_remote_start_answer_keeps_its_status(status: str) -> None:
    """RemoteStartStopStatus and RequestStartStopStatusEnumType are identical (§2.7)."""
    result = {"status": status}
    validate(Version.V16, "RemoteStartTransaction", Kind.RESPONSE, result)
    response = _untouched(result, remote.request_start_response)
    assert response == {"status": status}
    validate(Version.V201, "RequestStartTransaction", Kind.RESPONSE, response)


def test_request_start_rejected_explains_itself() -> None:
    """The gateway's own Rejected carries statusInfo with a reason code and the reason."""
    response = remote.request_start_rejected(
        "idToken of 21 characters does not fit a 1.6 idTag", reason_code="InvalidIdToken"
    )
    assert response == {
        "status": "Rejected",
        "statusInfo": {
            "reasonCode": "InvalidIdToken",
            "additionalInfo": "idToken of 21 characters does not fit a 1.6 idTag",
        },
    }
    validate(Version.V201, "RequestStartTransaction", Kind.RESPONSE, response)


def test_request_start_rejected_cuts_long_reasons_to_512_characters() -> None:
    """additionalInfo is at most 512 characters in 2.0.1."""
    response = remote.request_start_rejected("x" * 600)
    validate(Version.V201, "RequestStartTransaction", Kind.RESPONSE, response)
    assert response["statusInfo"] == {"reasonCode": "UnsupportedParam", "additionalInfo": "x" * 512}


def test_unmapped_request_start_becomes_a_valid_rejection(make_context: MakeContext) -> None:
    """The UnmappedValue a remote start raises carries what request_start_rejected needs."""
    request = _request_start(idToken={"idToken": "C" * 36, "type": "eMAID"})
    with pytest.raises(UnmappedValue) as raised:
        remote.remote_start_transaction_from_request(request, make_context())
    response = remote.request_start_rejected(
        raised.value.description, reason_code=raised.value.details["reasonCode"]
    )
    validate(Version.V201, "RequestStartTransaction", Kind.RESPONSE, response)
    assert response["statusInfo"]["reasonCode"] == "InvalidIdToken"


# --- RequestStopTransaction -> RemoteStopTransaction --------------------------------


def test_remote_stop_names_the_1_6_transaction() -> None:
    """The session's mapped integer id is the 1.6 transactionId (§3.2)."""
    converted = remote.remote_stop_transaction_from_request(17)
    assert converted == {"transactionId": 17}
    validate(Version.V16, "RemoteStopTransaction", Kind.REQUEST, converted)


@pytest.mark.parametrize("status", ["Accepted", "Rejected"])
def test_remote_stop_answer_keeps_its_status(status: str) -> None:
    """Identical status values (§2.7)."""
    result = {"status": status}
    validate(Version.V16, "RemoteStopTransaction", Kind.RESPONSE, result)
    response = _untouched(result, remote.request_stop_response)
    assert response == {"status": status}
    validate(Version.V201, "RequestStopTransaction", Kind.RESPONSE, response)


def test_stop_of_an_unknown_transaction_is_rejected_locally() -> None:
    """No open transaction with that id: Rejected without asking the charger (F03.FR.08)."""
    transaction_id = "5c1d7f3e-8a0b-4c2d-9e6f-0a1b2c3d4e5f"
    response = remote.request_stop_unknown_transaction(transaction_id)
    assert response == {
        "status": "Rejected",
        "statusInfo": {
            "reasonCode": "TxNotFound",
            "additionalInfo": f"no ongoing transaction with transactionId '{transaction_id}'",
        },
    }
    validate(Version.V201, "RequestStopTransaction", Kind.RESPONSE, response)
