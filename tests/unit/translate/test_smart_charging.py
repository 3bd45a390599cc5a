"""Tests for gateway.translate.smart_charging beyond the golden pairs: a TxProfile's
2.0.1 transactionId mapped to the 1.6 one (the golden harness has no legacy ids), the
route's use of the context's mapping, and what 1.6 can carry exactly.

Expected payloads are written by hand from reference messages.md §2.8 and §3.6. Every
payload is validated against the official schema of its version, and inputs are
checked unmutated.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ocppj import Payload, Version
from gateway.schemas import Kind
from gateway.schemas import validate as validate_in_place
from gateway.translate import smart_charging
from gateway.translate.dispatch import ROUTES
from gateway.translate.types import Context, Direction, Outcome

from .conftest import MakeContext

TX = "5b7c3f7e-2d1a-4c55-9f0e-0c1b2a3d4e5f"  # a 2.0.1 transactionId the gateway made
LEGACY = 42  # the 1.6 transactionId the gateway gave the charger for it
LAYOUT = {1: (1, 1), 2: (1, 2), 3: (2, 1)}  # EVSE 1 = 1.6 connectors 1 and 2


def validate(version: Version, action: str, kind: Kind, payload: Payload) -> None:
    """Validate a copy, so the validator cannot change what the converter built."""
    validate_in_place(version, action, kind, copy.deepcopy(payload))


def _tx_profile(**extra: Any) -> Payload:
    return {
        "id": 9,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "transactionId": TX,
        "chargingSchedule": [
            {
                "id": 2,
                "duration": 7200,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 32.0, "numberPhases": 3},
                    {"startPeriod": 3600, "limit": 10.1},
                ],
                "minChargingRate": 6.0,
            }
        ],
        **extra,
    }


def _request(evse_id: int = 1, **profile: Any) -> Payload:
    request = {"evseId": evse_id, "chargingProfile": _tx_profile(**profile)}
    validate(Version.V201, "SetChargingProfile", Kind.REQUEST, request)
    return request


def _convert(request: Payload, ctx: Context, legacy_ids: Mapping[str, int]) -> Outcome:
    before = copy.deepcopy(request)
    outcome = smart_charging.set_charging_profile_to_v16(request, ctx, legacy_ids)
    assert request == before, "the converter must not mutate its input"
    assert not outcome.then
    assert not outcome.effects
    return outcome


def _forwarded(outcome: Outcome) -> Payload:
    assert outcome.reply is None
    assert outcome.forward is not None
    assert outcome.forward.action == "SetChargingProfile"
    validate(Version.V16, "SetChargingProfile", Kind.REQUEST, outcome.forward.payload)
    return outcome.forward.payload


def _refusal(outcome: Outcome) -> tuple[str, str]:
    """(reasonCode, additionalInfo) of a Rejected the gateway gave itself."""
    assert outcome.forward is None
    assert outcome.reply is not None
    validate(Version.V201, "SetChargingProfile", Kind.RESPONSE, outcome.reply)
    assert outcome.reply["status"] == "Rejected"
    info: Payload = outcome.reply["statusInfo"]
    return info["reasonCode"], info["additionalInfo"]


# --- TxProfile: the 2.0.1 transactionId mapped to the 1.6 integer -------------------


def test_tx_profile_gets_the_1_6_transaction_id_of_its_open_transaction(
    make_context: MakeContext,
) -> None:
    """The mapped 1.6 transactionId goes down with the profile, on the EVSE's connector;
    the schedule id is dropped and everything else copied (§3.6)."""
    ctx = make_context(open_transactions={1: True})
    forwarded = _forwarded(_convert(_request(), ctx, {TX: LEGACY, "other": 7}))
    assert forwarded == {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 9,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "transactionId": LEGACY,
            "chargingSchedule": {
                "duration": 7200,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 32.0, "numberPhases": 3},
                    {"startPeriod": 3600, "limit": 10.1},
                ],
                "minChargingRate": 6.0,
            },
        },
    }


def test_tx_profile_goes_to_the_connector_of_the_evse_transaction(
    make_context: MakeContext,
) -> None:
    """EVSE 1 holds 1.6 connectors 1 and 2: the profile goes where the transaction runs."""
    ctx = make_context(layout=LAYOUT, open_transactions={2: False})
    forwarded = _forwarded(_convert(_request(), ctx, {TX: LEGACY}))
    assert forwarded["connectorId"] == 2
    assert forwarded["csChargingProfiles"]["transactionId"] == LEGACY


def test_tx_profile_with_unknown_transaction_id_is_refused(make_context: MakeContext) -> None:
    """A transactionId that is not an open transaction: Rejected, TxNotFound (K01.FR.33)."""
    ctx = make_context(open_transactions={1: True})
    outcome = _convert(_request(), ctx, {"another-transaction": 7})
    assert _refusal(outcome) == ("TxNotFound", f"no ongoing transaction with transactionId {TX!r}")


def test_tx_profile_for_a_transaction_on_no_connector_of_the_evse_is_refused(
    make_context: MakeContext,
) -> None:
    """The transaction is known but EVSE 2 has none: Rejected, TxNotFound (K01.FR.09)."""
    ctx = make_context(open_transactions={1: True})
    outcome = _convert(_request(evse_id=2), ctx, {TX: LEGACY})
    assert _refusal(outcome) == (
        "TxNotFound",
        f"transaction {TX!r} is not ongoing on EVSE 2 (K01.FR.09)",
    )


def test_tx_profile_on_an_evse_the_layout_lacks_is_refused(make_context: MakeContext) -> None:
    ctx = make_context(layout=LAYOUT, open_transactions={1: True})
    outcome = _convert(_request(evse_id=3), ctx, {TX: LEGACY})
    assert _refusal(outcome) == ("UnknownEvse", "EVSE 3 is not in this station's EVSE layout")


def test_mapped_tx_profile_still_refuses_what_1_6_cannot_carry(make_context: MakeContext) -> None:
    """A known transaction does not make a finer limit acceptable: never rounded."""
    ctx = make_context(open_transactions={1: True})
    schedule = _tx_profile()["chargingSchedule"][0]
    schedule["chargingSchedulePeriod"][1]["limit"] = 10.15
    outcome = _convert(_request(chargingSchedule=[schedule]), ctx, {TX: LEGACY})
    reason_code, explanation = _refusal(outcome)
    assert reason_code == "InvalidSchedule"
    assert "limit 10.15" in explanation


# --- the route reads the session's mapping from the context -------------------------


def test_route_converter_takes_the_legacy_ids_from_the_context(make_context: MakeContext) -> None:
    """ROUTES' converter is set_charging_profile_to_v16 with StationView.legacy_transaction_ids."""
    route = ROUTES[(Direction.CSMS_TO_CHARGER, "SetChargingProfile")]
    ctx = make_context(open_transactions={1: True})
    assert _refusal(route.request(_request(), ctx))[0] == "TxNotFound"  # no ids: unknown
    station = dataclasses.replace(ctx.station, legacy_transaction_ids={TX: LEGACY})
    forward = route.request(_request(), dataclasses.replace(ctx, station=station)).forward
    assert forward is not None
    assert forward.payload["csChargingProfiles"]["transactionId"] == LEGACY


def test_smart_charging_routes_are_in_the_dispatch_table() -> None:
    """The module's three routes, CSMS to charger, are merged into dispatch.ROUTES."""
    for key, route in smart_charging.ROUTES.items():
        assert key[0] is Direction.CSMS_TO_CHARGER
        assert ROUTES[key] is route
    assert {action for _, action in smart_charging.ROUTES} == {
        "SetChargingProfile",
        "ClearChargingProfile",
        "GetCompositeSchedule",
    }


def test_accepted_tx_profile_is_kept_in_its_2_0_1_form(make_context: MakeContext) -> None:
    """The kept profile is the CSMS's (string transactionId), for GetChargingProfiles."""
    request = _request()
    outcome = smart_charging.set_charging_profile_conf(
        {"status": "Accepted"}, request, make_context()
    )
    assert outcome.reply == {"status": "Accepted"}
    assert [dataclasses.asdict(e) for e in outcome.effects] == [
        {"evse_id": 1, "profile": _tx_profile()}
    ]


# --- limits: exactly carried, or refused --------------------------------------------

_limits = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**7), max_value=10**7).map(lambda n: n / 10),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=_limits)
def test_a_limit_is_forwarded_unchanged_and_valid_or_refused(
    limit: float, make_context: MakeContext
) -> None:
    """Whatever the 2.0.1 limit, the charger gets exactly it (1.6-schema valid), or the
    CSMS gets Rejected with InvalidSchedule: never a rounded value."""
    profile = {
        "id": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            }
        ],
    }
    request = {"evseId": 1, "chargingProfile": profile}
    outcome = _convert(request, make_context(), {})
    exact = Decimal(str(limit)) % Decimal("0.1") == 0
    if exact:
        forwarded = _forwarded(outcome)
        period = forwarded["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]
        assert period["limit"] == limit
        assert type(period["limit"]) is type(limit)
    else:
        assert _refusal(outcome)[0] == "InvalidSchedule"


@pytest.mark.parametrize(
    ("limit", "carried"),
    [(16, True), (16.0, True), (16.1, True), (0.3, True), (-5.5, True), (16.05, False)],
)
def test_tenths_are_carried_and_hundredths_refused(
    limit: float, carried: bool, make_context: MakeContext
) -> None:
    ctx = make_context(open_transactions={1: True})
    schedule = _tx_profile()["chargingSchedule"][0]
    schedule["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": limit}]
    outcome = _convert(_request(chargingSchedule=[schedule]), ctx, {TX: LEGACY})
    if carried:
        schedule = _forwarded(outcome)["csChargingProfiles"]["chargingSchedule"]
        assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": limit}]
    else:
        assert _refusal(outcome)[0] == "InvalidSchedule"
