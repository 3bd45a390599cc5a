"""CSMS remote control -> 1.6: RequestStartTransaction and RequestStopTransaction.

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

Field-by-field facts: reference messages.md §2.7, §2.8, §3.2 and §3.6. The session
keeps what 1.6 cannot carry: the remoteStartId and idToken type of a pending remote
start (put into the next TransactionEvent, F01.FR.25/F02.FR.01) and the 2.0.1 <-> 1.6
transaction id map.

A request 1.6 cannot express raises :class:`~gateway.errors.UnmappedValue` whose
``details["reasonCode"]`` names the 2.0.1 reason code (Part 2 Appendix 5) for
:func:`request_start_rejected`, so the session may answer Rejected instead of a
CALLERROR.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final

from gateway.errors import UnmappedValue
from gateway.ocppj import Payload
from gateway.translate.types import (
    Context,
    status_info,
)

_ID_TAG_MAX: Final = 20  # 1.6 IdToken is CiString20 (1.6 §7.28)

# 2.0.1 ChargingProfilePurposeEnumType -> 1.6 ChargingProfilePurposeType (§2.8).
# ChargingStationExternalConstraints has no 1.6 value; the CSMS may not set it anyway
# (K01.FR.22).
PROFILE_PURPOSES_V16: Final[dict[str, str]] = {
    "ChargingStationMaxProfile": "ChargePointMaxProfile",
    "TxDefaultProfile": "TxDefaultProfile",
    "TxProfile": "TxProfile",
}

# 1.6 limits and rates are multiples of 0.1 (1.6 schema "multipleOf": 0.1).
_TENTH: Final = Decimal("0.1")


def _unmapped(description: str, reason_code: str) -> UnmappedValue:
    return UnmappedValue(description, details={"reasonCode": reason_code})


# --- RequestStartTransaction (F01, F02; reference §3.2) -----------------------------


def remote_start_transaction_from_request(request: Payload, ctx: Context) -> Payload:
    """1.6 RemoteStartTransaction.req for a 2.0.1 RequestStartTransactionRequest.

    ``remoteStartId`` has no 1.6 field (the session remembers it); ``groupIdToken`` is
    dropped (1.6 has no field; the charger learns parentIdTag from the authorisation).

    Raises:
        UnmappedValue: the idToken is longer than a 1.6 idTag (20 characters, §1.2),
            the evseId is not in the station's layout, or the chargingProfile cannot
            be expressed in 1.6 (see :func:`charging_profile_to_v16`).
    """
    id_tag: str = request["idToken"]["idToken"]
    if len(id_tag) > _ID_TAG_MAX:
        raise _unmapped(
            f"idToken of {len(id_tag)} characters does not fit a 1.6 idTag (at most {_ID_TAG_MAX})",
            "InvalidIdToken",
        )
    remote_start: Payload = {"idTag": id_tag}
    if "evseId" in request:
        try:
            remote_start["connectorId"] = ctx.layout.to_v16(request["evseId"])
        except UnmappedValue as error:
            raise _unmapped(error.description, "UnknownEvse") from None
    if "chargingProfile" in request:
        profile = request["chargingProfile"]
        # A remote start carries a TxProfile in both versions (1.6 §5.11, reference
        # §3.2); any other purpose would stay installed for later sessions.
        if profile["chargingProfilePurpose"] != "TxProfile":
            raise _unmapped(
                f"a remote start carries a TxProfile, not a {profile['chargingProfilePurpose']}",
                "InvalidProfile",
            )
        # No transactionId: the transaction does not exist yet (the 1.6 charger binds
        # the profile to the transaction it starts, 1.6 §5.11).
        remote_start["chargingProfile"] = charging_profile_to_v16(profile)
    return remote_start


def charging_profile_to_v16(profile: Payload) -> Payload:
    """1.6 ChargingProfile for a 2.0.1 ChargingProfileType (reference §3.6).

    ``transactionId`` is never copied: 2.0.1 names the transaction by its string id,
    1.6 by the integer the gateway allocated, which only the session can look up.

    2.0.1-only fields:

    - ``chargingSchedule.id`` is dropped: it only names the schedule, and 1.6 has
      exactly one per profile.
    - ``salesTariff`` is dropped: it is price information for an ISO 15118 EV, not a
      limit; without it the charger enforces the same schedule.
    - ``phaseToUse`` is rejected: it changes which phase the charger switches to, and
      a 1.6 charger told nothing would pick any phase (§3.6, **inferred**).
    - more than one ``chargingSchedule`` is rejected: 1.6 carries exactly one, and
      2.0.1 sends several only for ISO 15118 (K01.FR.34; §3.6 **inferred** Rejected).

    1.6 limits and rates are multiples of 0.1: a finer ``limit`` is rounded down, so
    the charger never exceeds the CSMS's limit, and a finer ``minChargingRate``
    rounded up, so it is never below the EV's real minimum.

    Raises:
        UnmappedValue: the purpose, schedule count or phaseToUse has no 1.6 form.
    """
    purpose = PROFILE_PURPOSES_V16.get(profile["chargingProfilePurpose"])
    if purpose is None:
        raise _unmapped(
            f"chargingProfilePurpose {profile['chargingProfilePurpose']} has no 1.6 value",
            "InvalidProfile",
        )
    schedules = profile["chargingSchedule"]
    if len(schedules) != 1:
        raise _unmapped(
            f"a 1.6 profile carries exactly one chargingSchedule, not {len(schedules)}",
            "InvalidSchedule",
        )
    converted: Payload = {
        "chargingProfileId": profile["id"],
        "stackLevel": profile["stackLevel"],
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": profile["chargingProfileKind"],
    }
    for field in ("recurrencyKind", "validFrom", "validTo"):
        if field in profile:
            converted[field] = profile[field]
    converted["chargingSchedule"] = _charging_schedule_to_v16(schedules[0])
    return converted


def _charging_schedule_to_v16(schedule: Payload) -> Payload:
    converted: Payload = {}
    for field in ("duration", "startSchedule"):
        if field in schedule:
            converted[field] = schedule[field]
    converted["chargingRateUnit"] = schedule["chargingRateUnit"]
    converted["chargingSchedulePeriod"] = [
        _charging_schedule_period_to_v16(period) for period in schedule["chargingSchedulePeriod"]
    ]
    if "minChargingRate" in schedule:
        converted["minChargingRate"] = _tenths(schedule["minChargingRate"], ROUND_CEILING)
    return converted


def _charging_schedule_period_to_v16(period: Payload) -> Payload:
    if "phaseToUse" in period:
        raise _unmapped("phaseToUse has no 1.6 field", "UnsupportedParam")
    converted: Payload = {
        "startPeriod": period["startPeriod"],
        "limit": _tenths(period["limit"], ROUND_FLOOR),
    }
    if "numberPhases" in period:
        converted["numberPhases"] = period["numberPhases"]
    return converted


def _tenths(value: float, rounding: str) -> float:
    """``value`` as a multiple of 0.1; unchanged (int stays int) when it already is."""
    exact = Decimal(str(value))
    rounded = exact.quantize(_TENTH, rounding=rounding)
    return value if rounded == exact else float(rounded)


def request_start_response(result: Payload) -> Payload:
    """RequestStartTransactionResponse for a 1.6 RemoteStartTransaction.conf.

    The status values are identical (§2.7). ``transactionId`` is omitted: with the
    1.6-compatible TxStartPoint no transaction exists before StartTransaction (§3.2).
    """
    return {"status": result["status"]}


def request_start_rejected(reason: str, *, reason_code: str = "UnsupportedParam") -> Payload:
    """RequestStartTransactionResponse Rejected by the gateway itself, for a request 1.6
    cannot carry (a long token, an EVSE the charger lacks, a profile 1.6 cannot hold).

    Args:
        reason: said in statusInfo.additionalInfo (cut to 512 characters).
        reason_code: a 2.0.1 reason code (Part 2 Appendix 5), e.g. the one an
            :class:`~gateway.errors.UnmappedValue` from this module carries.
    """
    return _rejected(reason, reason_code)


def _rejected(reason: str, reason_code: str) -> Payload:
    return {"status": "Rejected", "statusInfo": status_info(reason_code, reason)}


# --- RequestStopTransaction (F03; reference §3.2) -----------------------------------


def remote_stop_transaction_from_request(legacy_id: int) -> Payload:
    """1.6 RemoteStopTransaction.req for the 1.6 transaction the session mapped the
    2.0.1 transactionId to. The charger's StopTransaction (reason Remote) then becomes
    Ended with triggerReason RemoteStop (F03.FR.03)."""
    return {"transactionId": legacy_id}


def request_stop_response(result: Payload) -> Payload:
    """RequestStopTransactionResponse for a 1.6 RemoteStopTransaction.conf (§2.7)."""
    return {"status": result["status"]}


def request_stop_unknown_transaction(transaction_id: str) -> Payload:
    """RequestStopTransactionResponse Rejected by the gateway: no open transaction has
    this id (F03.FR.08), so there is nothing to ask the charger."""
    return _rejected(f"no ongoing transaction with transactionId {transaction_id!r}", "TxNotFound")
