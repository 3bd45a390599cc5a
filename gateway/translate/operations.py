"""CSMS remote operations -> 1.6: Reset, ChangeAvailability, UnlockConnector,
TriggerMessage and ClearCache. Field-by-field facts: reference messages.md §2.5, §2.6,
§2.12, §2.13, §3.2 and §3.7.

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

Naming as in ``core``: ``<message>_req`` converts the CSMS's 2.0.1 request,
``<message>_conf`` the charger's 1.6 answer. 2.0.1 payloads are built field by field.

What 1.6 cannot express is answered by the gateway itself, never forwarded: a
per-EVSE Reset, an unknown EVSE or connector, an unlock during an authorized
transaction (forwarding it would end the session, 1.6 §5.18), a trigger with no 1.6
counterpart. Such a refusal carries ``statusInfo`` with a 2.0.1 reason code (Part 2
Appendix 5, ``StatusInfoReasonType``) and a short English explanation.
"""

from __future__ import annotations

from typing import Final

from gateway.errors import UnmappedValue
from gateway.ocppj import Payload
from gateway.translate import pnc
from gateway.translate.types import (
    AuthorizationCacheCleared,
    BootReasonExpected,
    Context,
    Effect,
    MessageTriggered,
    OutboundCall,
    Outcome,
    ResetScheduled,
    refused,
)

_STATION: Final = 0  # the 1.6 connectorId of the Charge Point as a whole (§1.1)


class _Refusal(Exception):
    """An EVSE reference 1.6 cannot address: which reason code, and why."""

    def __init__(self, reason_code: str, explanation: str) -> None:
        super().__init__(explanation)
        self.reason_code = reason_code
        self.explanation = explanation


def _connector_of(ctx: Context, evse: Payload) -> int:
    """The one 1.6 connectorId a 2.0.1 EVSEType names (evse id 0: the station, 0).

    Raises:
        _Refusal: the EVSE or connector is not in the station's layout.
    """
    evse_id: int = evse["id"]
    if evse_id == 0:
        return _STATION
    return _v16_connector(ctx, evse_id, evse.get("connectorId"))


def _v16_connector(ctx: Context, evse_id: int, connector_id: int | None) -> int:
    """``ctx.layout.to_v16``, its failure told as a 2.0.1 reason code.

    Raises:
        _Refusal: the EVSE (UnknownEvse) or its connector (UnknownConnectorId) is not
            in the station's layout.
    """
    try:
        return ctx.layout.to_v16(evse_id, connector_id)
    except UnmappedValue:
        pass
    if connector_id is None or not ctx.layout.connectors_of(evse_id):
        raise _Refusal("UnknownEvse", f"EVSE {evse_id} is not in this station's EVSE layout")
    raise _Refusal(
        "UnknownConnectorId",
        f"EVSE {evse_id} has no connector {connector_id} in this station's EVSE layout",
    )


# --- Reset (2.0.1 B11, B12; reference §2.5) -----------------------------------------


def reset_req(payload: Payload, ctx: Context) -> Outcome:
    if "evseId" in payload:
        return refused(
            "Rejected",
            "UnsupportedRequest",
            "an OCPP 1.6 charger can only reset as a whole, not one EVSE (B11.FR.09)",
        )
    if payload["type"] == "Immediate":
        return Outcome(forward=OutboundCall("Reset", {"type": ctx.immediate_reset}))
    if ctx.station.open_transactions:
        # OnIdle with transactions open: the gateway waits for their ends, then sends
        # Reset(Soft) itself (B12.FR.01/03).
        return Outcome(reply={"status": "Scheduled"}, effects=(ResetScheduled(),))
    return Outcome(forward=OutboundCall("Reset", {"type": "Soft"}))


def reset_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    if result["status"] == "Accepted":
        # The charger reboots: its next BootNotification goes up as RemoteReset.
        effects = (BootReasonExpected("RemoteReset"), ResetScheduled(pending=False))
        return Outcome(reply={"status": "Accepted"}, effects=effects)
    return Outcome(reply={"status": "Rejected"})


# --- ChangeAvailability (2.0.1 G03, G04; reference §2.6, §3.2) ----------------------


def change_availability_req(payload: Payload, ctx: Context) -> Outcome:
    evse: Payload | None = payload.get("evse")
    connector_id = _STATION
    if evse is not None and evse["id"] != 0:
        if "connectorId" not in evse and len(ctx.layout.connectors_of(evse["id"])) > 1:
            return refused(
                "Rejected",
                "UnsupportedParam",
                f"EVSE {evse['id']} has several OCPP 1.6 connectors, and 1.6 changes the "
                "availability of one connector at a time: name the connector",
            )
        try:
            connector_id = _connector_of(ctx, evse)
        except _Refusal as refusal:
            return refused("Rejected", refusal.reason_code, refusal.explanation)
    forward = {"connectorId": connector_id, "type": payload["operationalStatus"]}
    return Outcome(forward=OutboundCall("ChangeAvailability", forward))


def change_availability_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    # AvailabilityStatus and ChangeAvailabilityStatusEnumType are identical (§2.6).
    return Outcome(reply={"status": result["status"]})


# --- UnlockConnector (2.0.1 F05; reference §2.13, §3.2) -----------------------------


def unlock_connector_req(payload: Payload, ctx: Context) -> Outcome:
    try:
        connector_id = _v16_connector(ctx, payload["evseId"], payload["connectorId"])
    except _Refusal as refusal:
        return refused("UnknownConnector", refusal.reason_code, refusal.explanation)
    if ctx.station.open_transactions.get(connector_id) is True:
        # F05.FR.02; a 1.6 charger would end the transaction first (1.6 §5.18).
        return refused(
            "OngoingAuthorizedTransaction",
            "TxInProgress",
            "an authorized transaction is ongoing on this connector (F05.FR.02)",
        )
    return Outcome(forward=OutboundCall("UnlockConnector", {"connectorId": connector_id}))


def unlock_connector_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    status: str = result["status"]
    if status == "NotSupported":
        # The connector is known to the gateway, so the charger has no lock (a fixed
        # cable, say) or cannot unlock remotely (§2.13).
        return refused(
            "UnlockFailed",
            "UnsupportedRequest",
            "the OCPP 1.6 charger answered NotSupported: it has no connector lock, "
            "or does not support unlocking it",
        )
    return Outcome(reply={"status": status})  # Unlocked | UnlockFailed


# --- TriggerMessage (2.0.1 F06; reference §2.12, §3.7) ------------------------------

# 2.0.1 MessageTriggerEnumType -> (1.6 action carrying the trigger, its requestedMessage).
# BootNotification and TransactionEvent have their own rules in trigger_message_req.
TRIGGERS: Final[dict[str, tuple[str, str]]] = {
    "BootNotification": ("TriggerMessage", "BootNotification"),
    "Heartbeat": ("TriggerMessage", "Heartbeat"),
    "MeterValues": ("TriggerMessage", "MeterValues"),
    "StatusNotification": ("TriggerMessage", "StatusNotification"),
    "FirmwareStatusNotification": ("TriggerMessage", "FirmwareStatusNotification"),
    "LogStatusNotification": ("TriggerMessage", "DiagnosticsStatusNotification"),
    # The 1.6 security extension's trigger (SEC §6.16); its answer has the same statuses.
    "SignChargingStationCertificate": ("ExtendedTriggerMessage", "SignChargePointCertificate"),
    "TransactionEvent": ("TriggerMessage", "MeterValues"),
}

# 2.0.1 triggers with no 1.6 counterpart at all (a combined certificate, Local Controller
# firmware). SignV2GCertificate goes through the ISO 15118 PnC tunnel (reference §6).
NOT_IMPLEMENTED_TRIGGERS: Final = frozenset(
    {"SignCombinedCertificate", "PublishFirmwareStatusNotification"}
)

# The 1.6 action a charger sends for a triggered requestedMessage, where the names
# differ (MessageTriggered.message is that action).
_TRIGGERED_ACTION: Final[dict[str, str]] = {"SignChargePointCertificate": "SignCertificate"}


def trigger_message_req(payload: Payload, ctx: Context) -> Outcome:
    requested: str = payload["requestedMessage"]
    if requested in NOT_IMPLEMENTED_TRIGGERS:
        return refused(
            "NotImplemented",
            "UnsupportedRequest",
            f"OCPP 1.6 has no message for a {requested} trigger",
        )
    if requested == "SignChargingStationCertificate" and not ctx.station.security_extension:
        return refused(
            "NotImplemented",
            "UnsupportedRequest",
            "the OCPP 1.6 charger does not implement the security extension (§3.7)",
        )
    if requested == "SignV2GCertificate":
        return Outcome(forward=pnc.wrap("TriggerMessage", payload))
    evse: Payload | None = payload.get("evse")
    if requested == "TransactionEvent":
        return _trigger_transaction_event(evse, ctx)
    if requested == "BootNotification" and ctx.station.registration == "Accepted":
        return refused(
            "Rejected",
            "UnsupportedRequest",
            "the BootNotification was already accepted (F06.FR.17)",
        )
    action, message = TRIGGERS[requested]
    forward: Payload = {"requestedMessage": message}
    if evse is not None:
        try:
            forward["connectorId"] = _connector_of(ctx, evse)
        except _Refusal as refusal:
            return refused("Rejected", refusal.reason_code, refusal.explanation)
    return Outcome(forward=OutboundCall(action, forward))


def _trigger_transaction_event(evse: Payload | None, ctx: Context) -> Outcome:
    """2.0.1 TransactionEvent trigger: the charger is asked for MeterValues of the
    connector with the open transaction, which the session sends up as the triggered
    TransactionEvent (F06.FR.07, §3.7)."""
    open_on = ctx.station.open_transactions
    if evse is None:
        candidates = sorted(open_on)
    elif evse["id"] == 0:
        candidates = [_STATION]
    elif "connectorId" in evse:
        try:
            candidates = [_connector_of(ctx, evse)]
        except _Refusal as refusal:
            return refused("Rejected", refusal.reason_code, refusal.explanation)
    else:
        # A transaction runs on an EVSE, on whichever of its connectors (E01.FR.14).
        candidates = ctx.layout.connectors_of(evse["id"])
        if not candidates:
            return refused(
                "Rejected", "UnknownEvse", f"EVSE {evse['id']} is not in this station's EVSE layout"
            )
    with_transaction = [connector for connector in candidates if connector in open_on]
    if not with_transaction:
        where = "on the station" if evse is None else f"on EVSE {evse['id']}"
        return refused("Rejected", "TxNotFound", f"no ongoing transaction {where}")
    forward = {"requestedMessage": "MeterValues", "connectorId": with_transaction[0]}
    return Outcome(forward=OutboundCall("TriggerMessage", forward))


def trigger_message_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    if request["requestedMessage"] == "SignV2GCertificate":
        return pnc.reply_from_tunnel("TriggerMessage", result, "NotImplemented")
    # TriggerMessageStatus is identical in 1.6, its security extension and 2.0.1 (§2.12).
    status: str = result["status"]
    if status != "Accepted":
        return Outcome(reply={"status": status})
    requested: str = request["requestedMessage"]
    # The request converter is pure: run again, it names what the charger was asked.
    # Should the station have changed meanwhile (the transaction ended before the
    # charger answered), the trigger is kept without a connector.
    forwarded = trigger_message_req(request, ctx).forward
    if forwarded is not None:
        message: str = forwarded.payload["requestedMessage"]
        connector: int | None = forwarded.payload.get("connectorId")
    else:
        message, connector = TRIGGERS[requested][1], None
    effects: tuple[Effect, ...] = ()
    if requested == "BootNotification":
        effects = (BootReasonExpected("Triggered"),)
    triggered = MessageTriggered(_TRIGGERED_ACTION.get(message, message), requested, connector)
    return Outcome(reply={"status": status}, effects=(*effects, triggered))


# --- ClearCache (2.0.1 C11; reference §3.2) -----------------------------------------


def clear_cache_req(payload: Payload, ctx: Context) -> Outcome:
    return Outcome(forward=OutboundCall("ClearCache", {}))


def clear_cache_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    if result["status"] == "Accepted":
        return Outcome(reply={"status": "Accepted"}, effects=(AuthorizationCacheCleared(),))
    return Outcome(reply={"status": "Rejected"})
