"""Reservations: ReserveNow, CancelReservation (reference §2.15, §3.5), and the
ReservationStatusUpdate the gateway makes itself (1.6 has no such message, §6).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

Naming as in ``core``: ``<message>_req`` converts the CSMS's 2.0.1 request,
``<message>_conf`` the charger's 1.6 answer. What 1.6 cannot express is refused by the
gateway (status Rejected, ``statusInfo`` with a 2.0.1 reason code), never forwarded.

The session keeps the reservation table these converters cannot: which reservation
holds which 1.6 connector, until it is used, cancelled, removed or expires. Its
lifecycle in 2.0.1 (use cases H01-H04), and what the gateway sends for each end:

- used (H03): the transaction that uses it carries its ``reservationId`` (H01.FR.15);
  the 1.6 StartTransaction has the field, and the transaction desk copies it. No
  ReservationStatusUpdate.
- cancelled by the CSMS (H02): the CancelReservationResponse says it all. None.
- expired (H04.FR.01): ReservationStatusUpdate(Expired).
- its EVSE became Faulted or Unavailable (H01.FR.16/17): ReservationStatusUpdate(Removed).

:func:`reservation_outcome` reads the last two from a 1.6 StatusNotification, and
:func:`reservation_status_update` builds the message.
"""

from __future__ import annotations

from typing import Final

from gateway.ocppj import Payload
from gateway.translate.types import (
    Context,
    Direction,
    OutboundCall,
    Outcome,
    ReservationEnded,
    ReservationHeld,
    Route,
    refused,
)

_ID_TAG_MAX: Final = 20  # 1.6 IdToken (idTag, parentIdTag) is CiString20 (1.6 §7.28)
_ANY_CONNECTOR: Final = 0  # 1.6 ReserveNow connectorId 0: any connector (1.6 §5.13)


# --- ReserveNow (2.0.1 H01; reference §1.1, §1.2, §3.5) -----------------------------

# 2.0.1 -> 1.6:
#   id                    -> reservationId
#   expiryDateTime        -> expiryDate
#   idToken.idToken       -> idTag (at most 20 characters, else Rejected)
#   groupIdToken.idToken  -> parentIdTag (at most 20 characters, else Rejected: without
#                            it the group's other tokens could not use the reservation)
#   evseId                -> connectorId, per the EVSE layout; absent -> 0
#   connectorType         -> none (1.6 has no connector type), see reserve_now_req
# Dropped, 1.6 has no field for them: idToken.type, idToken.additionalInfo,
# groupIdToken.type, groupIdToken.additionalInfo, customData.


def reserve_now_req(payload: Payload, ctx: Context) -> Outcome:
    id_tag: str = payload["idToken"]["idToken"]
    if len(id_tag) > _ID_TAG_MAX:
        return refused(
            "Rejected",
            "InvalidIdToken",
            f"an idToken of {len(id_tag)} characters does not fit an OCPP 1.6 idTag "
            f"(at most {_ID_TAG_MAX})",
        )
    group: str | None = payload.get("groupIdToken", {}).get("idToken")
    if group is not None and len(group) > _ID_TAG_MAX:
        return refused(
            "Rejected",
            "InvalidIdToken",
            f"a groupIdToken of {len(group)} characters does not fit an OCPP 1.6 "
            f"parentIdTag (at most {_ID_TAG_MAX})",
        )
    evse_id: int | None = payload.get("evseId")
    if evse_id is None:
        if "connectorType" in payload:
            # "Any connector of this type": a 1.6 charger told connectorId 0 would hold
            # a connector of any type, and the gateway does not know the types.
            return refused(
                "Rejected",
                "UnsupportedParam",
                "OCPP 1.6 cannot reserve by connector type: name the EVSE",
            )
        # Any EVSE (H01.FR.18/19): 1.6 connectorId 0. The charger accepts it only with
        # ReserveConnectorZeroSupported, else answers Rejected (1.6 §5.13), which the
        # CSMS gets as is: it reads ReservationCtrlr.NonEvseSpecific first anyway.
        connector_id = _ANY_CONNECTOR
    else:
        connectors = ctx.layout.connectors_of(evse_id)
        if not connectors:
            return refused(
                "Rejected", "UnknownEvse", f"EVSE {evse_id} is not in this station's EVSE layout"
            )
        if len(connectors) > 1:
            # A 1.6 reservation holds one connector: the EVSE's others would stay free
            # for anyone, and a transaction there takes the reserved EVSE (E01.FR.14).
            return refused(
                "Rejected",
                "UnsupportedParam",
                f"EVSE {evse_id} has several OCPP 1.6 connectors, and a 1.6 reservation "
                "holds only one of them",
            )
        # A connectorType next to the evseId is dropped: the EVSE is named, and the
        # charger reserves its one connector whatever the type.
        connector_id = connectors[0]
    forward: Payload = {
        "connectorId": connector_id,
        "expiryDate": payload["expiryDateTime"],
        "idTag": id_tag,
        "reservationId": payload["id"],
    }
    if group is not None:
        forward["parentIdTag"] = group
    return Outcome(forward=OutboundCall("ReserveNow", forward))


def reserve_now_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    # Accepted | Faulted | Occupied | Rejected | Unavailable: identical (§2.15).
    reply = {"status": result["status"]}
    forwarded = reserve_now_req(request, ctx).forward  # pure: what the charger was sent
    if result["status"] != "Accepted" or forwarded is None:
        return Outcome(reply=reply)
    held = ReservationHeld(
        request["id"], forwarded.payload["connectorId"], request["expiryDateTime"]
    )
    return Outcome(reply=reply, effects=(held,))


# --- CancelReservation (2.0.1 H02; reference §3.5) ----------------------------------


def cancel_reservation_req(payload: Payload, ctx: Context) -> Outcome:
    forward = {"reservationId": payload["reservationId"]}
    return Outcome(forward=OutboundCall("CancelReservation", forward))


def cancel_reservation_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    # Accepted | Rejected: identical (§2.15). A cancelled reservation is not reported.
    if result["status"] == "Accepted":
        ended = ReservationEnded(request["reservationId"])
        return Outcome(reply={"status": "Accepted"}, effects=(ended,))
    return Outcome(reply={"status": result["status"]})


# --- ReservationStatusUpdate (2.0.1 H01.FR.16/17, H04.FR.01; reference §3.5, §6) ----

RESERVATION_UPDATE_STATUSES: Final = frozenset({"Expired", "Removed"})

_REMOVED_BY: Final = frozenset({"Faulted", "Unavailable"})


def reservation_status_update(reservation_id: int, status: str) -> Payload:
    """A 2.0.1 ReservationStatusUpdateRequest: the reservation ended without being used.

    Raises:
        ValueError: ``status`` is not a ReservationUpdateStatusEnumType (Expired, Removed).
    """
    if status not in RESERVATION_UPDATE_STATUSES:
        raise ValueError(f"not a ReservationUpdateStatusEnumType: {status!r}")
    return {"reservationId": reservation_id, "reservationUpdateStatus": status}


def reservation_outcome(
    previous_status: str | None, status: str, *, cancelled: bool = False
) -> str | None:
    """What a 1.6 StatusNotification on a reserved connector tells the CSMS.

    ``previous_status`` and ``status`` are the connector's last and new 1.6
    ChargePointStatus; the caller asks only for a connector that holds a reservation
    in its table. ``cancelled``: the charger accepted a CancelReservation for it.

    Returns the ReservationUpdateStatusEnumType to send, or None:

    - Reserved -> Available: "Expired" (H04.FR.01). A 1.6 reservation ends by a
      transaction of its idTag, by its expiryDate, by its connector becoming Faulted
      or Unavailable (1.6 §5.13), or by CancelReservation: back to Available with no
      cancel, it expired. None when ``cancelled``: a reservation the CSMS cancelled
      is not reported again (H02).
    - Reserved -> Faulted / Unavailable: "Removed" (H01.FR.16/17: the station ends a
      reservation whose EVSE becomes inoperative, and says so). None when ``cancelled``.
    - Reserved -> Preparing, Charging, SuspendedEV(SE), Finishing: None. The reserved
      driver is using it (H03): the transaction reports the reservationId instead
      (H01.FR.15, from the 1.6 StartTransaction), and nothing has ended yet if no
      transaction follows.
    - anything not leaving Reserved: None.

    **inferred** (reference §3.5): 1.6 sends no message when a reservation ends.
    """
    if previous_status != "Reserved" or status == "Reserved" or cancelled:
        return None
    if status == "Available":
        return "Expired"
    if status in _REMOVED_BY:
        return "Removed"
    return None  # Preparing, Charging, SuspendedEV(SE), Finishing: in use


ROUTES: Final[dict[tuple[Direction, str], Route]] = {
    (Direction.CSMS_TO_CHARGER, "ReserveNow"): Route(
        "ReserveNow", reserve_now_req, reserve_now_conf
    ),
    (Direction.CSMS_TO_CHARGER, "CancelReservation"): Route(
        "CancelReservation", cancel_reservation_req, cancel_reservation_conf
    ),
}
