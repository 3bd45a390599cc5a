"""Smart charging: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule
(reference §2.8, §3.6).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

Naming as in ``operations``: ``<message>_req`` converts the CSMS's 2.0.1 request,
``<message>_conf`` the charger's 1.6 answer. Payloads are built field by field (2.0.1
``customData`` never goes down). The profile itself is converted by
:func:`gateway.translate.remote.charging_profile_to_v16`, shared with
RequestStartTransaction.

A profile is never altered on its way down: what 1.6 cannot carry exactly (a second
chargingSchedule, ``phaseToUse``, ``salesTariff``, a limit finer than 0.1, the
ChargingStationExternalConstraints purpose) is refused by the gateway itself, with
``statusInfo`` naming a 2.0.1 reason code (Part 2 Appendix 5) and what went wrong.
So is a request 1.6 cannot address: an EVSE the layout lacks, or one of several 1.6
connectors when the request does not say which (1.6 addresses one connector at a time).

The station record keeps what the charger accepted (``ChargingProfileInstalled``,
``ChargingProfilesCleared``), for GetChargingProfiles, which the gateway answers itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from gateway.errors import UnmappedValue
from gateway.ocppj import Payload
from gateway.translate.remote import PROFILE_PURPOSES_V16, charging_profile_to_v16
from gateway.translate.types import (
    ChargingProfileInstalled,
    ChargingProfilesCleared,
    Context,
    Direction,
    OutboundCall,
    Outcome,
    Route,
    normalise_datetime,
    refused,
)

_STATION: Final = 0  # evseId 0 and 1.6 connectorId 0: the station as a whole (§1.1)
_TENTHS_EXPONENT: Final = -1  # 1.6 limit and minChargingRate: "multipleOf": 0.1
_EXTERNAL: Final = "ChargingStationExternalConstraints"


class _Refusal(Exception):
    """A request 1.6 cannot carry: which 2.0.1 reason code, and why."""

    def __init__(self, reason_code: str, explanation: str) -> None:
        super().__init__(explanation)
        self.reason_code = reason_code
        self.explanation = explanation


def _connector_for(ctx: Context, evse_id: int, doing: str, *, busy_one: bool = False) -> int:
    """The one 1.6 connectorId a request for 2.0.1 EVSE ``evse_id`` goes to (0: 0).

    An EVSE of several 1.6 connectors is one connector only if ``busy_one`` and a
    transaction is open on one of them (at most one per EVSE, E01.FR.14).

    Raises:
        _Refusal: the EVSE is not in the layout (UnknownEvse), or it has several 1.6
            connectors and none is singled out (UnsupportedParam).
    """
    if evse_id == _STATION:
        return _STATION
    connectors = ctx.layout.connectors_of(evse_id)
    if not connectors:
        raise _Refusal("UnknownEvse", f"EVSE {evse_id} is not in this station's EVSE layout")
    if len(connectors) == 1:
        return connectors[0]
    busy = [c for c in connectors if c in ctx.station.open_transactions]
    if busy_one and busy:
        return busy[0]
    listed = ", ".join(str(c) for c in connectors)
    raise _Refusal(
        "UnsupportedParam",
        f"EVSE {evse_id} has several OCPP 1.6 connectors ({listed}), and 1.6 {doing} "
        "one connector at a time",
    )


def _is_tenths(value: float) -> bool:
    """Whether 1.6 can carry ``value`` unchanged: a multiple of 0.1 (no finer digit)."""
    exponent = Decimal(str(value)).normalize().as_tuple().exponent
    return isinstance(exponent, int) and exponent >= _TENTHS_EXPONENT


# --- SetChargingProfile (2.0.1 K01; reference §2.8, §3.6) ---------------------------


def set_charging_profile_req(payload: Payload, ctx: Context) -> Outcome:
    """The route's request converter: the open transactions' ids come from the context."""
    return set_charging_profile_to_v16(payload, ctx, ctx.station.legacy_transaction_ids)


def set_charging_profile_to_v16(
    payload: Payload, ctx: Context, legacy_ids: Mapping[str, int]
) -> Outcome:
    """1.6 SetChargingProfile.req for a 2.0.1 SetChargingProfileRequest, or the
    gateway's own Rejected.

    Args:
        legacy_ids: 2.0.1 transactionId -> 1.6 transactionId of the station's open
            transactions; a TxProfile's transactionId must be one of them (K01.FR.33).
            ``ctx.station.open_transactions`` tells which connectors have one (K01.FR.09).
    """
    try:
        connector_id, profile = _profile_to_v16(payload, ctx, legacy_ids)
    except _Refusal as refusal:
        return refused("Rejected", refusal.reason_code, refusal.explanation)
    forward = {"connectorId": connector_id, "csChargingProfiles": profile}
    return Outcome(forward=OutboundCall("SetChargingProfile", forward))


def _profile_to_v16(
    payload: Payload, ctx: Context, legacy_ids: Mapping[str, int]
) -> tuple[int, Payload]:
    """(1.6 connectorId, 1.6 csChargingProfiles) for a SetChargingProfileRequest.

    Raises:
        _Refusal: the profile or its EVSE has no exact 1.6 form.
    """
    evse_id: int = payload["evseId"]
    profile: Payload = payload["chargingProfile"]
    purpose: str = profile["chargingProfilePurpose"]
    if purpose == _EXTERNAL:
        raise _Refusal(
            "InvalidProfile",
            f"a CSMS may not set a {_EXTERNAL} profile (K01.FR.22), and OCPP 1.6 has no such "
            "purpose",
        )
    try:
        converted = charging_profile_to_v16(profile)
    except UnmappedValue as error:
        reason_code = str(error.details.get("reasonCode", "UnsupportedParam"))
        raise _Refusal(
            reason_code, f"OCPP 1.6 cannot carry this profile: {error.description}"
        ) from None
    _check_carried_exactly(profile["chargingSchedule"][0])
    if purpose == "TxProfile":
        connector_id, legacy_id = _transaction_of(profile, evse_id, ctx, legacy_ids)
        return connector_id, {**converted, "transactionId": legacy_id}
    if "transactionId" in profile:
        raise _Refusal(
            "InvalidProfile",
            f"transactionId belongs on a TxProfile only, not on a {purpose}",
        )
    if purpose == "ChargingStationMaxProfile" and evse_id != _STATION:
        raise _Refusal(
            "InvalidValue",
            "a ChargingStationMaxProfile limits the whole station: evseId must be 0 "
            "(1.6 sets ChargePointMaxProfile on connectorId 0 only)",
        )
    return _connector_for(ctx, evse_id, "sets a charging profile on"), converted


def _check_carried_exactly(schedule: Payload) -> None:
    """Refuse what :func:`charging_profile_to_v16` would drop or round: the CSMS's
    schedule reaches the charger exactly, or not at all.

    Raises:
        _Refusal: a salesTariff, or a limit or minChargingRate finer than 0.1.
    """
    if "salesTariff" in schedule:
        raise _Refusal(
            "UnsupportedParam",
            "salesTariff has no OCPP 1.6 field: the profile cannot reach the charger as sent",
        )
    for index, period in enumerate(schedule["chargingSchedulePeriod"]):
        if not _is_tenths(period["limit"]):
            raise _Refusal(
                "InvalidSchedule",
                f"chargingSchedulePeriod {index} has limit {period['limit']}, and OCPP 1.6 "
                "limits are multiples of 0.1: rounding it would change the schedule",
            )
    if "minChargingRate" in schedule and not _is_tenths(schedule["minChargingRate"]):
        raise _Refusal(
            "InvalidSchedule",
            f"minChargingRate {schedule['minChargingRate']} is not a multiple of 0.1, "
            "as OCPP 1.6 requires: rounding it would change the schedule",
        )


def _transaction_of(
    profile: Payload, evse_id: int, ctx: Context, legacy_ids: Mapping[str, int]
) -> tuple[int, int]:
    """(1.6 connectorId, 1.6 transactionId) a TxProfile goes to.

    Raises:
        _Refusal: evseId 0 (K01.FR.16), no transactionId (K01.FR.03), an unknown EVSE,
            an unknown transaction (K01.FR.33) or none on the EVSE (K01.FR.09).
    """
    if evse_id == _STATION:
        raise _Refusal(
            "InvalidValue",
            "a TxProfile limits a transaction on one EVSE: evseId 0 is not allowed (K01.FR.16)",
        )
    if "transactionId" not in profile:
        raise _Refusal(
            "MissingParam",
            "a TxProfile names the transaction it limits: no transactionId (K01.FR.03)",
        )
    connectors = ctx.layout.connectors_of(evse_id)
    if not connectors:
        raise _Refusal("UnknownEvse", f"EVSE {evse_id} is not in this station's EVSE layout")
    transaction_id: str = profile["transactionId"]
    legacy_id = legacy_ids.get(transaction_id)
    if legacy_id is None:
        raise _Refusal(
            "TxNotFound", f"no ongoing transaction with transactionId {transaction_id!r}"
        )
    busy = [c for c in connectors if c in ctx.station.open_transactions]
    if not busy:
        raise _Refusal(
            "TxNotFound",
            f"transaction {transaction_id!r} is not ongoing on EVSE {evse_id} (K01.FR.09)",
        )
    return busy[0], legacy_id


def set_charging_profile_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    status: str = result["status"]
    if status == "Accepted":
        # Kept in its 2.0.1 form: GetChargingProfiles reports it (K09).
        installed = ChargingProfileInstalled(request["evseId"], request["chargingProfile"])
        return Outcome(reply={"status": "Accepted"}, effects=(installed,))
    if status == "NotSupported":  # §2.8
        return refused(
            "Rejected",
            "UnsupportedRequest",
            "the OCPP 1.6 charger answered NotSupported: it does not support this "
            "charging profile, or smart charging at all",
        )
    return Outcome(reply={"status": "Rejected"})


# --- ClearChargingProfile (2.0.1 K10; reference §2.8, §3.6) -------------------------


def clear_charging_profile_req(payload: Payload, ctx: Context) -> Outcome:
    criteria: Payload = payload.get("chargingProfileCriteria", {})
    purpose: str | None = criteria.get("chargingProfilePurpose")
    if purpose == _EXTERNAL:
        return refused(
            "Unknown",
            "NotFound",
            f"an OCPP 1.6 charger has no {_EXTERNAL} profiles: nothing to clear",
        )
    forward: Payload = {}
    if "chargingProfileId" in payload:
        forward["id"] = payload["chargingProfileId"]
    if "evseId" in criteria:
        try:
            # A TxProfile lives on the connector of the EVSE's transaction.
            forward["connectorId"] = _connector_for(
                ctx,
                criteria["evseId"],
                "clears the profiles of",
                busy_one=purpose == "TxProfile",
            )
        except _Refusal as refusal:
            return refused("Unknown", refusal.reason_code, refusal.explanation)
    if purpose is not None:
        forward["chargingProfilePurpose"] = PROFILE_PURPOSES_V16[purpose]
    if "stackLevel" in criteria:
        forward["stackLevel"] = criteria["stackLevel"]
    return Outcome(forward=OutboundCall("ClearChargingProfile", forward))


def clear_charging_profile_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    # ClearChargingProfileStatus and its 2.0.1 enum are identical (§2.8).
    status: str = result["status"]
    if status != "Accepted":
        return Outcome(reply={"status": status})
    criteria: Payload = request.get("chargingProfileCriteria", {})
    cleared = ChargingProfilesCleared(
        profile_id=request.get("chargingProfileId"),
        evse_id=criteria.get("evseId"),
        purpose=criteria.get("chargingProfilePurpose"),
        stack_level=criteria.get("stackLevel"),
    )
    return Outcome(reply={"status": "Accepted"}, effects=(cleared,))


# --- GetCompositeSchedule (2.0.1 K08; reference §2.8, §3.6) -------------------------


def get_composite_schedule_req(payload: Payload, ctx: Context) -> Outcome:
    try:
        # The EVSE's power flows through the connector of its transaction, if any.
        connector_id = _connector_for(
            ctx, payload["evseId"], "reports the composite schedule of", busy_one=True
        )
    except _Refusal as refusal:
        return refused("Rejected", refusal.reason_code, refusal.explanation)
    forward: Payload = {"connectorId": connector_id, "duration": payload["duration"]}
    if "chargingRateUnit" in payload:
        forward["chargingRateUnit"] = payload["chargingRateUnit"]
    return Outcome(forward=OutboundCall("GetCompositeSchedule", forward))


def get_composite_schedule_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    """2.0.1 GetCompositeScheduleResponse for the 1.6 answer (§3.6).

    Every CompositeScheduleType field is required, and the schedule "may only be
    omitted when ... status Rejected" (2.0.1 §1.20.2):

    - ``evseId``: the EVSE the CSMS asked for (the schedule is "for the EVSE for which
      the schedule is requested"; the 1.6 connectorId is the one the gateway asked).
    - ``duration``: the 1.6 schedule's, else the requested one (the charger computed
      the schedule for that interval, 1.6 §6.21).
    - ``scheduleStart``: the 1.6 scheduleStart, else the 1.6 schedule's startSchedule,
      else now: a 1.6 composite schedule starts when it is asked for (1.6 §5.7), and
      the answer has just arrived (**inferred**, reference §3.6 "request time").
    - ``minChargingRate`` and ``startSchedule`` have no CompositeScheduleType field.

    An Accepted answer without a schedule (or without periods) cannot be told in 2.0.1:
    Rejected, saying so.
    """
    if result["status"] != "Accepted":
        return Outcome(reply={"status": "Rejected"})
    schedule: Payload | None = result.get("chargingSchedule")
    if schedule is None or not schedule["chargingSchedulePeriod"]:
        return refused(
            "Rejected",
            "Unspecified",
            "the OCPP 1.6 charger answered Accepted without a composite schedule",
        )
    start = result.get("scheduleStart", schedule.get("startSchedule"))
    composite: Payload = {
        "evseId": request["evseId"],
        "duration": schedule.get("duration", request["duration"]),
        "scheduleStart": ctx.now() if start is None else normalise_datetime(start),
        "chargingRateUnit": schedule["chargingRateUnit"],
        "chargingSchedulePeriod": [_period_to_v201(p) for p in schedule["chargingSchedulePeriod"]],
    }
    return Outcome(reply={"status": "Accepted", "schedule": composite})


def _period_to_v201(period: Payload) -> Payload:
    converted: Payload = {"startPeriod": period["startPeriod"], "limit": period["limit"]}
    if "numberPhases" in period:
        converted["numberPhases"] = period["numberPhases"]
    return converted


CSMS_TO_CHARGER: Final = Direction.CSMS_TO_CHARGER

ROUTES: Final[dict[tuple[Direction, str], Route]] = {
    (CSMS_TO_CHARGER, "SetChargingProfile"): Route(
        "SetChargingProfile", set_charging_profile_req, set_charging_profile_conf
    ),
    (CSMS_TO_CHARGER, "ClearChargingProfile"): Route(
        "ClearChargingProfile", clear_charging_profile_req, clear_charging_profile_conf
    ),
    (CSMS_TO_CHARGER, "GetCompositeSchedule"): Route(
        "GetCompositeSchedule", get_composite_schedule_req, get_composite_schedule_conf
    ),
}
