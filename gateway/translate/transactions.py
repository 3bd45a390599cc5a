"""1.6 transaction messages -> 2.0.1 TransactionEvent (and MeterValues outside a transaction).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

OCPP 1.6 reports a transaction as StartTransaction, MeterValues and StopTransaction;
2.0.1 reports it as one series of TransactionEvents, Started < Updated... < Ended,
numbered by seqNo without gaps (2.0.1 §E 1.3.2; reference messages.md §4). These
converters build one event each (or one per trigger reason for MeterValues) from facts
the session owns and hands in as :class:`EventFacts`: the 2.0.1 transactionId, the next
seqNo and whether the charger was offline. Allocating ids, counting seqNos and
remembering pending remote starts and charging states stay with the session.

2.0.1 schemas forbid unknown properties, so every payload is built field by field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

import orjson

from gateway.errors import UnmappedValue
from gateway.ocppj import Payload
from gateway.translate.core import id_tag_info_from_token_info
from gateway.translate.meter_values import meter_values_to_v201, trigger_reason_for
from gateway.translate.types import Context, normalise_datetime

# 1.6 ChargePointStatus -> 2.0.1 transactionInfo.chargingState while a transaction is
# open (reference §2.1). None: the status says nothing about charging (the connector is
# reserved, unavailable or faulted), so the last known state stands.
CHARGING_STATES: Final[Mapping[str, str | None]] = MappingProxyType(
    {
        "Available": "Idle",
        "Preparing": "EVConnected",
        "Charging": "Charging",
        "SuspendedEV": "SuspendedEV",
        "SuspendedEVSE": "SuspendedEVSE",
        # 1.6 Finishing follows StopTransaction; should a 2.0.1 transaction still be
        # open, the cable is still in (§2.1, §4.3).
        "Finishing": "EVConnected",
        "Reserved": None,
        "Unavailable": None,
        "Faulted": None,
    }
)


@dataclass(frozen=True, slots=True)
class StopReason:
    """How a 1.6 StopTransaction reason is told in a 2.0.1 Ended event."""

    stopped_reason: str  # transactionInfo.stoppedReason (ReasonEnumType)
    trigger_reason: str  # triggerReason (TriggerReasonEnumType)
    charging_state: str | None  # transactionInfo.chargingState; None: as last known


# 1.6 Reason -> Ended event, reference §2.3. The 2.0.1 texts behind each row: OCTT
# "StopAuthorized - Local" (E07), RemoteStop/Remote (F03.FR.03), EVCommunicationLost/
# Idle for an unplugged EV, Deauthorized (E05.FR.10), ResetCommand/ImmediateReset for
# both 1.6 resets (2.0.1 OnIdle never ends a transaction, B12.FR.03), AbnormalCondition
# for faults (E06.FR.16). UnlockCommand has no ReasonEnumType value: Other.
STOP_REASONS: Final[Mapping[str, StopReason]] = MappingProxyType(
    {
        "Local": StopReason("Local", "StopAuthorized", "EVConnected"),
        "Remote": StopReason("Remote", "RemoteStop", "EVConnected"),
        "EVDisconnected": StopReason("EVDisconnected", "EVCommunicationLost", "Idle"),
        "DeAuthorized": StopReason("DeAuthorized", "Deauthorized", "EVConnected"),
        "HardReset": StopReason("ImmediateReset", "ResetCommand", "EVConnected"),
        "SoftReset": StopReason("ImmediateReset", "ResetCommand", "EVConnected"),
        "Reboot": StopReason("Reboot", "AbnormalCondition", None),
        "PowerLoss": StopReason("PowerLoss", "AbnormalCondition", None),
        "EmergencyStop": StopReason("EmergencyStop", "AbnormalCondition", None),
        "UnlockCommand": StopReason("Other", "UnlockCommand", None),
        "Other": StopReason("Other", "AbnormalCondition", None),
    }
)

# 1.6 §6.49: an absent reason means Local.
_DEFAULT_STOP_REASON: Final = "Local"

# Stops the CSMS or a reset caused: the Ended event carries no idToken (2.0.1 §1.60.1
# "IdToken should not be present ... when a transaction is ended by a
# RequestStopTransactionRequest or a ResetRequest").
_STOPS_WITHOUT_ID_TOKEN: Final = frozenset({"Remote", "HardReset", "SoftReset"})

_ENERGY_REGISTER: Final = "Energy.Active.Import.Register"


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What the session knows about the transaction an event belongs to."""

    transaction_id: str  # 2.0.1 transactionId (E01.FR.08: station-generated)
    seq_no: int  # seqNo of the (first) event built
    offline: bool = False  # the event happened while offline (E04.FR.03)


def _event(event_type: str, timestamp: str, trigger_reason: str, facts: EventFacts) -> Payload:
    """The fields every TransactionEventRequest has; transactionInfo holds the id only."""
    event: Payload = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger_reason,
        "seqNo": facts.seq_no,
        "transactionInfo": {"transactionId": facts.transaction_id},
    }
    if facts.offline:  # "offline" defaults to false: said only when true
        event["offline"] = True
    return event


def _id_token(token: Payload) -> Payload:
    # The charger only knows an idTag: the type (§1.2) is all the token adds to it.
    return {"idToken": token["idToken"], "type": token["type"]}


def _evse(connector_id: int, ctx: Context) -> Payload:
    evse_id, evse_connector = ctx.layout.to_v201(connector_id)
    return {"id": evse_id, "connectorId": evse_connector}


def _register_reading(timestamp: str, value: int, context: str) -> Payload:
    """meterStart/meterStop as a 2.0.1 MeterValueType (reference §4.2 step 8: both
    versions count them in Wh, the default unit, so no unitOfMeasure)."""
    sample = {"value": value, "context": context, "measurand": _ENERGY_REGISTER}
    return {"timestamp": timestamp, "sampledValue": [sample]}


def _moment(timestamp: str) -> datetime:
    """A dateTime for ordering; an unreadable one counts as the earliest possible."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- StartTransaction -> Started (E01, F02; reference §3.1, §4.2 step 1) -------------


def transaction_event_from_start(
    request: Payload,
    ctx: Context,
    facts: EventFacts,
    *,
    id_token: Payload,
    charging_state: str,
    remote_start_id: int | None,
) -> Payload:
    """TransactionEvent(Started) for a 1.6 StartTransaction.req.

    Args:
        id_token: the 2.0.1 IdTokenType for the request's idTag (E03.FR.01).
        charging_state: the state the last 1.6 StatusNotification gave, default
            EVConnected: a Started event always has one (E02.FR.13).
        remote_start_id: the remoteStartId of the RequestStartTransaction this start
            answers, if any; it makes the trigger RemoteStart (F01.FR.25, F02.FR.01).
    """
    if not -(2**63) <= request["meterStart"] < 2**63:  # what the state store can hold
        raise UnmappedValue(f"meterStart {request['meterStart']} is beyond 64 bits")
    timestamp = normalise_datetime(request["timestamp"])
    trigger = "Authorized" if remote_start_id is None else "RemoteStart"
    event = _event("Started", timestamp, trigger, facts)
    event["transactionInfo"]["chargingState"] = charging_state
    if remote_start_id is not None:
        event["transactionInfo"]["remoteStartId"] = remote_start_id
    event["evse"] = _evse(request["connectorId"], ctx)  # E01.FR.16: in the first event
    event["idToken"] = _id_token(id_token)
    if "reservationId" in request:  # H01.FR.15: the event that consumes the reservation
        event["reservationId"] = request["reservationId"]
    # E01.FR.09: the start register reading has context Transaction.Begin.
    event["meterValue"] = [_register_reading(timestamp, request["meterStart"], "Transaction.Begin")]
    return event


# --- MeterValues -> Updated, or MeterValuesRequest (J01, J02; reference §3.1) --------


def transaction_events_from_meter_values(
    request: Payload, ctx: Context, facts: EventFacts
) -> tuple[list[Payload], tuple[str, ...]]:
    """TransactionEvent(Updated)s for a 1.6 MeterValues.req of an open transaction.

    "Transaction related MeterValues are never transmitted in MeterValuesRequest"
    (2.0.1 §J 2.1). Each event has one triggerReason, so consecutive meterValues with
    the same trigger form one event and a change of trigger starts the next (E03.FR.12:
    separate events for separate causes); their seqNos count up from ``facts.seq_no``.
    Only the transactionId is repeated: evse and idToken were sent with Started (§4.2).

    Returns:
        The events (empty when no sample could be converted) and one reason per 1.6
        sample that was dropped (Temperature, RPM, unreadable values: §2.9).
    """
    conversion = meter_values_to_v201(request["meterValue"])
    groups: list[tuple[str, list[Payload]]] = []
    for meter_value in conversion.meter_values:
        trigger = trigger_reason_for(meter_value)
        if groups and groups[-1][0] == trigger:
            groups[-1][1].append(meter_value)
        else:
            groups.append((trigger, [meter_value]))
    events = []
    for offset, (trigger, meter_values) in enumerate(groups):
        seq_facts = EventFacts(facts.transaction_id, facts.seq_no + offset, facts.offline)
        # J02.FR.10: the values lie within the interval the event reports.
        timestamp = max((mv["timestamp"] for mv in meter_values), key=_moment)
        event = _event("Updated", timestamp, trigger, seq_facts)
        event["meterValue"] = meter_values
        events.append(event)
    return events, conversion.dropped


def meter_values_request_from_meter_values(
    request: Payload, ctx: Context
) -> tuple[Payload | None, tuple[str, ...]]:
    """MeterValuesRequest for a 1.6 MeterValues.req outside any transaction (§3.1 case A).

    Connector 0 is the main meter, 2.0.1 evseId 0 (§1.1, 2.0.1 §1.32.1).

    Returns:
        The request, or None when no sample could be converted (``meterValue`` has
        minItems 1), and one reason per dropped 1.6 sample.
    """
    conversion = meter_values_to_v201(request["meterValue"])
    if not conversion.meter_values:
        return None, conversion.dropped
    connector_id: int = request["connectorId"]
    evse_id = 0 if connector_id == 0 else ctx.layout.to_v201(connector_id)[0]
    return {"evseId": evse_id, "meterValue": list(conversion.meter_values)}, conversion.dropped


# --- StatusNotification inside a transaction (E02.FR.13, §4.2 step 3) ---------------


def transaction_event_for_charging_state(
    ctx: Context, facts: EventFacts, *, charging_state: str, timestamp: str
) -> Payload:
    """TransactionEvent(Updated, ChargingStateChanged) for a 1.6 status change that
    stays within Occupied: "whenever the charging state changes, the Charging Station
    must send a TransactionEventRequest containing chargingState" (E02.FR.13, E01.FR.18).
    """
    event = _event("Updated", normalise_datetime(timestamp), "ChargingStateChanged", facts)
    event["transactionInfo"]["chargingState"] = charging_state
    return event


def transaction_event_for_abandoned(ctx: Context, facts: EventFacts, *, timestamp: str) -> Payload:
    """Ended for a transaction the charger replaced with a new start on the same
    connector without a StopTransaction (lost, or never sent). At most one transaction
    per EVSE (E01.FR.14), so the old one ends where the new one starts; nothing known
    says why, hence AbnormalCondition / Other, and no meter value is invented."""
    event = _event("Ended", normalise_datetime(timestamp), "AbnormalCondition", facts)
    event["transactionInfo"]["stoppedReason"] = "Other"
    return event


# --- StopTransaction -> Ended (E06, E07; reference §2.3, §3.1, §4.2 step 4) ----------


def _has_end_register(meter_values: Sequence[Payload]) -> bool:
    """Whether a total Energy.Active.Import.Register reading with context Transaction.End
    is already there (a per-phase reading is not the total meterStop stands for)."""
    return any(
        sample.get("context") == "Transaction.End"
        and sample.get("measurand", _ENERGY_REGISTER) == _ENERGY_REGISTER
        and "phase" not in sample
        for meter_value in meter_values
        for sample in meter_value["sampledValue"]
    )


def transaction_event_from_stop(
    request: Payload,
    ctx: Context,
    facts: EventFacts,
    *,
    id_token: Payload | None,
    charging_state: str | None,
) -> tuple[Payload, tuple[str, ...]]:
    """TransactionEvent(Ended) for a 1.6 StopTransaction.req.

    stoppedReason and triggerReason follow :data:`STOP_REASONS`; stoppedReason is sent
    even for Local, which 2.0.1 allows to omit (§2.48), so the CSMS never has to guess.

    Args:
        id_token: the 2.0.1 IdTokenType for the request's idTag, if it has one. It is
            left out when the CSMS or a reset ended the transaction (2.0.1 §1.60.1).
        charging_state: the last known charging state, used when the reason does not
            itself tell the state (reboot, power loss, ...); None omits it.

    Returns:
        The event, and one reason per transactionData sample that was dropped.
    """
    timestamp = normalise_datetime(request["timestamp"])
    reason_name = request.get("reason", _DEFAULT_STOP_REASON)
    reason = STOP_REASONS[reason_name]
    event = _event("Ended", timestamp, reason.trigger_reason, facts)
    info = event["transactionInfo"]
    info["stoppedReason"] = reason.stopped_reason
    state = reason.charging_state or charging_state
    if state is not None:
        info["chargingState"] = state
    if id_token is not None and reason_name not in _STOPS_WITHOUT_ID_TOKEN:
        event["idToken"] = _id_token(id_token)  # E07.FR.02: the token that ended it
    conversion = meter_values_to_v201(request.get("transactionData", ()))
    meter_values = list(conversion.meter_values)
    # E06.FR.11: the end register reading has context Transaction.End; J02.FR.10: an
    # Ended event may carry several intervals, so transactionData goes first.
    if not _has_end_register(meter_values):
        meter_values.append(_register_reading(timestamp, request["meterStop"], "Transaction.End"))
    event["meterValue"] = meter_values
    return event, conversion.dropped


# --- transactions the gateway never saw start (reference §4.2 step 7) ---------------


def synthetic_start_for_unknown(
    request: Payload, ctx: Context, facts: EventFacts, *, id_token: Payload | None
) -> Payload:
    """TransactionEvent(Started) for a 1.6 transaction the gateway has no record of.

    A StopTransaction or MeterValues may name a transactionId the gateway does not
    know: -1 or 0 from stacks that never got a StartTransaction.conf, or an id from
    before a loss of gateway state (§4.2 step 7). The charger must still be answered
    and the CSMS must still hear of the energy, so the session opens a 2.0.1
    transaction here first: this Started event with ``facts.seq_no`` (0), then the
    converted Ended or Updated event(s) with seqNo 1 onwards, keeping the series
    complete (2.0.1 §E 1.3.2).

    The trigger is AbnormalCondition: the start itself was never observed. The event
    has no meterValue (meterStart is unknown) and chargingState EVConnected (energy
    flowed, so an EV was connected).

    ``request`` is the StopTransaction.req (timestamp: the stop time; no connectorId,
    so no evse) or the MeterValues.req (timestamp: its earliest meterValue; evse from
    its connectorId unless that is 0).
    """
    if "connectorId" in request:  # MeterValues.req
        timestamps = [normalise_datetime(mv["timestamp"]) for mv in request["meterValue"]]
        timestamp = min(timestamps, key=_moment)
    else:  # StopTransaction.req
        timestamp = normalise_datetime(request["timestamp"])
    event = _event("Started", timestamp, "AbnormalCondition", facts)
    event["transactionInfo"]["chargingState"] = "EVConnected"
    connector_id = request.get("connectorId", 0)
    if connector_id != 0:
        event["evse"] = _evse(connector_id, ctx)
    if id_token is not None:
        event["idToken"] = _id_token(id_token)
    return event


# --- answers to the charger ----------------------------------------------------------


def id_tag_info_from_transaction_response(result: Payload) -> Payload:
    """1.6 idTagInfo from a TransactionEventResponse.

    1.6 StartTransaction.conf requires idTagInfo while 2.0.1 sends idTokenInfo only
    when an idToken was in the event; without one the CSMS raised no objection, so
    the answer is Accepted (reference §3.1, **inferred**).
    """
    if "idTokenInfo" in result:
        return id_tag_info_from_token_info(result["idTokenInfo"])
    return {"status": "Accepted"}


def request_digest(request: Payload) -> str:
    """A stable digest of a 1.6 request payload, independent of key order.

    A 1.6 charger re-sends an unanswered StartTransaction, StopTransaction or
    MeterValues after a reconnect (1.6 §4.x offline queueing); the session compares
    digests to answer such a replay without creating a second transaction or event.
    """
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()
