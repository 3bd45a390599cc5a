"""Core profile converters: BootNotification, Heartbeat, StatusNotification, Authorize,
DataTransfer. Field-by-field facts: reference messages.md §2.1, §2.2, §2.4, §3.1.

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

Naming: ``<message>_req`` converts a received request, ``<message>_conf`` converts the
other side's answer back (1.6 calls answers ".conf"). 2.0.1 schemas forbid unknown
properties, so every 2.0.1 payload is built field by field, never copied.
"""

from __future__ import annotations

from typing import Final

import orjson

from gateway.ocppj import Payload
from gateway.translate.tables import ErrorEvent, Tier
from gateway.translate.types import (
    AuthorizationSeen,
    ConnectorErrorChanged,
    Context,
    OutboundCall,
    Outcome,
    RegistrationChanged,
    normalise_datetime,
)

# --- BootNotification (2.0.1 B01) ---------------------------------------------------

# 1.6 field -> path under 2.0.1 chargingStation. meterType/meterSerialNumber have no
# 2.0.1 field (they belong in the device model) and are not copied.
_BOOT_FIELDS: Final = (
    ("chargePointModel", ("model",)),
    ("chargePointVendor", ("vendorName",)),
    ("firmwareVersion", ("firmwareVersion",)),
    ("iccid", ("modem", "iccid")),
    ("imsi", ("modem", "imsi")),
)


def boot_notification_req(payload: Payload, ctx: Context) -> Outcome:
    station: Payload = {}
    for source, path in _BOOT_FIELDS:
        if source in payload:
            target = station
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = payload[source]
    # chargeBoxSerialNumber is deprecated in 1.6 but older chargers only send that one.
    serial = payload.get("chargePointSerialNumber", payload.get("chargeBoxSerialNumber"))
    if serial is not None:
        station["serialNumber"] = serial
    # 1.6 gives no boot reason: the session knows it when the gateway caused the boot
    # (RemoteReset after a Reset, Triggered after a TriggerMessage), else PowerUp.
    forward = {"reason": ctx.station.boot_reason, "chargingStation": station}
    return Outcome(forward=OutboundCall("BootNotification", forward))


def boot_notification_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    reply = {
        "status": result["status"],
        "currentTime": result["currentTime"],
        "interval": result["interval"],
    }
    return Outcome(reply=reply, effects=(RegistrationChanged(result["status"], request),))


# --- Heartbeat ----------------------------------------------------------------------


def heartbeat_req(payload: Payload, ctx: Context) -> Outcome:
    return Outcome(forward=OutboundCall("Heartbeat", {}))


def heartbeat_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    return Outcome(reply={"currentTime": result["currentTime"]})


def heartbeat_local(payload: Payload, ctx: Context) -> Outcome:
    """Answer a heartbeat from the gateway's clock (before registration)."""
    return Outcome(reply={"currentTime": ctx.now()})


# --- StatusNotification (2.0.1 G01-G05; reference §2.1, §2.2, §5) -------------------

# 1.6 ChargePointStatus -> 2.0.1 ConnectorStatusEnumType. The five 1.6 "occupied"
# states collapse to Occupied (1.6 §4.9: Occupied was split into them).
CONNECTOR_STATUS: Final[dict[str, str]] = {
    "Available": "Available",
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEVSE": "Occupied",
    "SuspendedEV": "Occupied",
    "Finishing": "Occupied",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}

_NO_ERROR: Final = "NoError"
_TECH_CODE_MAX: Final = 50
_TECH_INFO_MAX: Final = 500


def status_notification_req(payload: Payload, ctx: Context) -> Outcome:
    connector_id: int = payload["connectorId"]
    # 1.6: an absent timestamp means the time of receipt.
    timestamp = normalise_datetime(payload["timestamp"]) if "timestamp" in payload else ctx.now()
    error = None if payload["errorCode"] == _NO_ERROR else payload["errorCode"]
    previous_error = ctx.station.connector_errors.get(connector_id)
    events = _status_events(payload, connector_id, timestamp, error, previous_error, ctx)
    then = (_notify_event(events, ctx),) if events else ()
    effects = (ConnectorErrorChanged(connector_id, error),) if error != previous_error else ()
    if connector_id == 0:
        # 2.0.1 StatusNotification is connector-level only (G03 note): the station's own
        # state travels as ChargingStation.AvailabilityState in the NotifyEvent.
        return Outcome(reply={}, then=then, effects=effects)
    evse_id, evse_connector = ctx.layout.to_v201(connector_id)
    forward = {
        "timestamp": timestamp,
        "connectorStatus": CONNECTOR_STATUS[payload["status"]],
        "evseId": evse_id,
        "connectorId": evse_connector,
    }
    return Outcome(forward=OutboundCall("StatusNotification", forward), then=then, effects=effects)


def status_notification_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    return Outcome(reply={})


def _status_events(
    payload: Payload,
    connector_id: int,
    timestamp: str,
    error: str | None,
    previous_error: str | None,
    ctx: Context,
) -> list[Payload]:
    """NotifyEvent eventData for what a 2.0.1 StatusNotification cannot carry (§2.2)."""
    events: list[Payload] = []
    if connector_id == 0:
        # AvailabilityState's valuesList is the 2.0.1 connector status set; 1.6 allows
        # only Available/Unavailable/Faulted on connector 0, but map anything sent.
        tech = {} if error else _tech_fields(payload, None)
        state = CONNECTOR_STATUS[payload["status"]]
        station = ("ChargingStation", None)
        events.append(_event(ctx, timestamp, "Delta", state, station, "AvailabilityState", tech))
    if previous_error is not None and previous_error != error:
        # The fault reported earlier is gone (NoError, or another fault replaced it):
        # clear it (2.0.1 EventDataType.cleared), or it stays raised at the CSMS forever.
        mapped = ctx.tables.error_events[previous_error]
        component = (mapped.component, _component_evse(mapped, connector_id, ctx))
        tech = {"techCode": previous_error[:_TECH_CODE_MAX]}
        cleared = _event(ctx, timestamp, "Alerting", "false", component, mapped.variable, tech)
        cleared["cleared"] = True
        events.append(cleared)
    if error is not None:
        mapped = ctx.tables.error_events[error]
        component = (mapped.component, _component_evse(mapped, connector_id, ctx))
        tech = _tech_fields(payload, error)
        events.append(_event(ctx, timestamp, "Alerting", "true", component, mapped.variable, tech))
    elif previous_error is None and connector_id != 0 and (tech := _tech_fields(payload, None)):
        # NoError, yet the charger said something (info, vendorErrorCode): carry it on
        # the connector's AvailabilityState rather than drop it.
        component = ("Connector", _connector_evse(connector_id, ctx))
        state = CONNECTOR_STATUS[payload["status"]]
        events.append(_event(ctx, timestamp, "Delta", state, component, "AvailabilityState", tech))
    return events


def _tech_fields(payload: Payload, error: str | None) -> dict[str, str]:
    """techCode/techInfo: what the 1.6 status said that 2.0.1 has no field for."""
    vendor_code: str | None = payload.get("vendorErrorCode")
    code = vendor_code or error
    parts = [f"errorCode={error}"] if vendor_code and error else []
    if payload.get("info"):
        parts.append(payload["info"])
    if payload.get("vendorId"):
        parts.append(f"vendorId={payload['vendorId']}")
    tech: dict[str, str] = {}
    if code:
        tech["techCode"] = code[:_TECH_CODE_MAX]
    if parts:
        tech["techInfo"] = "; ".join(parts)[:_TECH_INFO_MAX]
    return tech


def _connector_evse(connector_id: int, ctx: Context) -> Payload:
    evse_id, evse_connector = ctx.layout.to_v201(connector_id)
    return {"id": evse_id, "connectorId": evse_connector}


def _component_evse(mapped: ErrorEvent, connector_id: int, ctx: Context) -> Payload | None:
    if connector_id == 0 or mapped.tier is Tier.STATION:
        return None
    evse = _connector_evse(connector_id, ctx)
    if mapped.tier is Tier.EVSE:
        del evse["connectorId"]
    return evse


def _event(
    ctx: Context,
    timestamp: str,
    trigger: str,
    actual_value: str,
    component: tuple[str, Payload | None],
    variable: str,
    tech: dict[str, str],
) -> Payload:
    name, evse = component
    event: Payload = {
        "eventId": ctx.next_event_id(),
        "timestamp": timestamp,
        "trigger": trigger,
        "actualValue": actual_value,
        "eventNotificationType": "HardWiredNotification",
        "component": {"name": name, **({"evse": evse} if evse else {})},
        "variable": {"name": variable},
        **tech,
    }
    return event


def _notify_event(events: list[Payload], ctx: Context) -> OutboundCall:
    # One message per report: seqNo 0, nothing to be continued (2.0.1 N07).
    payload = {"generatedAt": ctx.now(), "seqNo": 0, "tbc": False, "eventData": events}
    return OutboundCall("NotifyEvent", payload)


# --- Authorize (2.0.1 C01; reference §1.2, §2.4) ------------------------------------

# 2.0.1 AuthorizationStatusEnumType -> 1.6 AuthorizationStatus. 1.6 "Invalid" means
# "unknown or not allowed", so every 2.0.1 refusal without a 1.6 twin becomes Invalid.
AUTHORIZATION_STATUS_V16: Final[dict[str, str]] = {
    "Accepted": "Accepted",
    "Blocked": "Blocked",
    "ConcurrentTx": "ConcurrentTx",
    "Expired": "Expired",
    "Invalid": "Invalid",
    "NoCredit": "Invalid",
    "NotAllowedTypeEVSE": "Invalid",
    "NotAtThisLocation": "Invalid",
    "NotAtThisTime": "Invalid",
    "Unknown": "Invalid",
}

_ID_TAG_MAX: Final = 20  # 1.6 IdToken is CiString20


def id_token_from_tag(id_tag: str, ctx: Context) -> Payload:
    """A 2.0.1 IdTokenType for a 1.6 idTag, its type inferred from the tag's form."""
    rules = ctx.tables.id_token_rules_for(ctx.station.vendor, ctx.station.model)
    return {"idToken": id_tag, "type": rules.infer(id_tag)}


def id_tag_info_from_token_info(info: Payload) -> Payload:
    """1.6 IdTagInfo from a 2.0.1 IdTokenInfoType (2.0.1-only fields are dropped)."""
    tag_info: Payload = {"status": AUTHORIZATION_STATUS_V16[info["status"]]}
    if "cacheExpiryDateTime" in info:
        tag_info["expiryDate"] = info["cacheExpiryDateTime"]
    group = info.get("groupIdToken", {}).get("idToken")
    if group is not None and len(group) <= _ID_TAG_MAX:
        tag_info["parentIdTag"] = group
    return tag_info


def authorize_req(payload: Payload, ctx: Context) -> Outcome:
    forward = {"idToken": id_token_from_tag(payload["idTag"], ctx)}
    return Outcome(forward=OutboundCall("Authorize", forward))


def authorize_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    info = result["idTokenInfo"]
    return Outcome(
        reply={"idTagInfo": id_tag_info_from_token_info(info)},
        effects=(AuthorizationSeen(request["idTag"], info),),
    )


# --- DataTransfer (both directions; reference §3.1) ---------------------------------

_DATA_TRANSFER_FIELDS: Final = ("vendorId", "messageId", "data")


def _data_transfer_copy(payload: Payload) -> Payload:
    return {key: payload[key] for key in _DATA_TRANSFER_FIELDS if key in payload}


def _data_as_v16_string(data: object) -> str:
    """1.6 ``data`` is a string; 2.0.1 allows any JSON value, which is sent as JSON text."""
    return data if isinstance(data, str) else orjson.dumps(data).decode()


def data_transfer_from_charger_req(payload: Payload, ctx: Context) -> Outcome:
    # A 1.6 string is a valid 2.0.1 anyType: copied as is.
    return Outcome(forward=OutboundCall("DataTransfer", _data_transfer_copy(payload)))


def data_transfer_from_charger_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    reply: Payload = {"status": result["status"]}
    if "data" in result:
        reply["data"] = _data_as_v16_string(result["data"])
    return Outcome(reply=reply)


def data_transfer_from_csms_req(payload: Payload, ctx: Context) -> Outcome:
    forward = _data_transfer_copy(payload)
    if "data" in forward:
        forward["data"] = _data_as_v16_string(forward["data"])
    return Outcome(forward=OutboundCall("DataTransfer", forward))


def data_transfer_from_csms_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    # A 1.6 answer's data is a string, a valid 2.0.1 anyType.
    reply: Payload = {"status": result["status"]}
    if "data" in result:
        reply["data"] = result["data"]
    return Outcome(reply=reply)
