"""The transaction desk: 1.6 charging sessions as 2.0.1 transactions, never lost.

Layer: session. The pure converters in ``gateway.translate.transactions`` and
``gateway.translate.remote`` build every payload; this module owns the state around
them (open transactions, seqNo, the id map, pending remote starts) and the order of
writes: each charger message's state change and outbox messages are committed in one
store transaction before the charger is answered (DESIGN.md "Nothing is lost").

Algorithm: reference messages.md §4.2. The points where real chargers differ from the
textbook:

- StatusNotification(Charging) often arrives before StartTransaction: it is remembered
  and folded into Started's chargingState, never sent as an Updated before Started.
- StatusNotification(Finishing) comes before StopTransaction: it never ends anything.
- A re-sent StartTransaction/StopTransaction (the charger did not get our answer before
  a disconnect) is recognised by its digest and answered again, without a new event.
- A StopTransaction for a transaction the gateway never saw start (-1, 0, lost state) is
  reported as a synthetic Started+Ended rather than dropped (§4.2 step 7).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.errors import GatewayError, UnmappedValue
from gateway.metrics import GatewayMetrics
from gateway.ocppj import Payload
from gateway.session.authorization import OfflineAuthorizer
from gateway.session.calls import OutgoingCalls
from gateway.session.outbox import OutboxCourier
from gateway.session.reservations import updates_for_status, used_by_start
from gateway.session.station import StationState
from gateway.state import Change, OutboxMessage, StateError, Store, TransactionRecord
from gateway.translate import core, security
from gateway.translate.transactions import (
    CHARGING_STATES,
    EventFacts,
    id_tag_info_from_transaction_response,
    meter_values_request_from_meter_values,
    request_digest,
    synthetic_start_for_unknown,
    transaction_event_for_abandoned,
    transaction_event_for_charging_state,
    transaction_event_from_start,
    transaction_event_from_stop,
    transaction_events_from_meter_values,
)
from gateway.translate.types import ConnectorErrorChanged, Context, OutboundCall, normalise_datetime

log = logging.getLogger(__name__)

Reply = tuple[Payload, tuple[OutboundCall, ...]]

# A charger's clock, set from our BootNotification/Heartbeat answers, may run a little
# ahead or behind; a message stamped this much before the connection opened was queued
# by the charger while offline (reference §4.2 step 6).
OFFLINE_CLOCK_SLACK: Final = timedelta(seconds=2)

# 2.0.1 has no chargingState outside a transaction; a start implies a connected EV.
_DEFAULT_CHARGING_STATE: Final = "EVConnected"


class TransactionDesk:
    def __init__(
        self,
        *,
        station: StationState,
        store: Store,
        courier: OutboxCourier,
        to_charger: OutgoingCalls,
        context: Callable[[], Context],
        metrics: GatewayMetrics,
        authorizer: OfflineAuthorizer,
        answer_timeout: float,
        connected_at: datetime,
        check_charger_answer: Callable[[str, Payload], None],
    ) -> None:
        self._station = station
        self._store = store
        self._courier = courier
        self._to_charger = to_charger
        self._context = context
        self._metrics = metrics
        self._authorizer = authorizer
        self._answer_timeout = answer_timeout  # how long a charger waits for the CSMS
        self._connected_at = connected_at
        self._check_charger_answer = check_charger_answer
        self._open: dict[int, TransactionRecord] = {}  # by 1.6 connectorId
        # Whether ``_open`` counts in ocpp_gateway_active_transactions (until close()).
        self._counting = True

    async def load(self) -> None:
        for record in await self._store.open_transactions(self._station.station_id):
            self._keep_open(record)

    def close(self) -> None:
        """The session ends: its open transactions no longer count as active here (they
        stay open in the store for the station's next connection)."""
        if self._counting:
            self._counting = False
            self._metrics.active_transactions.dec(len(self._open))

    @property
    def open_transactions(self) -> tuple[TransactionRecord, ...]:
        return tuple(self._open.values())

    # --- charger -> CSMS ------------------------------------------------------------

    async def start_transaction(self, request: Payload) -> Reply:
        ctx = self._context()
        connector = request["connectorId"]
        evse_id, _ = ctx.layout.to_v201(connector)
        key = request_digest(request)
        previous = self._open.get(connector)
        if previous is not None and previous.start_key == key:
            return await self._start_answered_again(previous), ()
        appended: list[OutboxMessage] = []
        records: list[TransactionRecord] = []
        if previous is not None:
            # One transaction per EVSE (E01.FR.14): a new start means the charger lost
            # or never sent the previous StopTransaction.
            records.append(self._abandoned(previous, request["timestamp"], appended))
        legacy_id = await self._store.allocate_legacy_id(self._station.station_id)
        remote_start = self._station.take_remote_start(evse_id, request["idTag"])
        id_token = (
            remote_start["idToken"]
            if remote_start
            else core.id_token_from_tag(request["idTag"], ctx)
        )
        state = CHARGING_STATES.get(self._station.connector_statuses.get(connector, ""))
        if state in (None, "Idle"):
            state = _DEFAULT_CHARGING_STATE
        facts = EventFacts(ctx.new_transaction_id(), 0, offline=self._late(request["timestamp"]))
        event = transaction_event_from_start(
            request,
            ctx,
            facts,
            id_token=id_token,
            charging_state=state,
            remote_start_id=remote_start["remoteStartId"] if remote_start else None,
        )
        record = TransactionRecord(
            station_id=self._station.station_id,
            transaction_id=facts.transaction_id,
            legacy_id=legacy_id,
            connector_id=connector,
            evse_id=evse_id,
            next_seq_no=1,
            started_at=request["timestamp"],
            start_key=key,
            id_token=id_token,
            charging_state=state,
            meter_start=request["meterStart"],
            last_meter=event["meterValue"][-1],
        )
        records.append(record)
        appended.append(OutboxMessage("TransactionEvent", event, facts.transaction_id))
        used_by_start(self._station, request)
        queued = await self._commit(
            Change(
                station=self._station.record(), transactions=tuple(records), append=tuple(appended)
            )
        )
        self._keep_open(record)
        self._metrics.transactions.labels("started").inc()
        result = await self._csms_answer(queued[-1])
        if result is None:
            tag_info = await self._authorizer.tag_info(
                request["idTag"], trusted=remote_start is not None
            )
            self._metrics.offline_answers.labels("StartTransaction", tag_info["status"]).inc()
        else:
            tag_info = id_tag_info_from_transaction_response(result)
        record = dataclasses.replace(self._open.get(connector, record), id_tag_info=tag_info)
        await self._remember(record)
        return {"transactionId": legacy_id, "idTagInfo": tag_info}, ()

    async def _start_answered_again(self, record: TransactionRecord) -> Payload:
        """The charger did not get our answer (a disconnect, a gateway restart) and sends
        the same StartTransaction again: same transaction, same verdict, no new event."""
        log.info(
            "StartTransaction re-sent for transaction %d: answering it again", record.legacy_id
        )
        tag_info = record.id_tag_info
        if tag_info is None:
            # Never answered: the Started event may still wait in the outbox (its answer
            # is the CSMS's verdict), or was delivered just before a crash (the verdict
            # went into the authorization cache with the delivery).
            started = self._courier.queued(record.transaction_id, "Started")
            result = None if started is None else await self._csms_answer(started)
            if result is not None:
                tag_info = id_tag_info_from_transaction_response(result)
            else:
                id_tag = record.id_token["idToken"] if record.id_token else ""
                tag_info = await self._authorizer.verdict_on_record(
                    id_tag
                ) or await self._authorizer.tag_info(id_tag, trusted=False)
            await self._remember(dataclasses.replace(record, id_tag_info=tag_info))
        return {"transactionId": record.legacy_id, "idTagInfo": tag_info}

    def _abandoned(
        self, record: TransactionRecord, timestamp: str, appended: list[OutboxMessage]
    ) -> TransactionRecord:
        log.warning(
            "connector %d started a transaction while %d was open: ending %d upstream",
            record.connector_id,
            record.legacy_id,
            record.legacy_id,
        )
        facts = EventFacts(record.transaction_id, record.next_seq_no, offline=self._late(timestamp))
        event = transaction_event_for_abandoned(self._context(), facts, timestamp=timestamp)
        appended.append(OutboxMessage("TransactionEvent", event, record.transaction_id))
        self._metrics.transactions.labels("ended").inc()
        return dataclasses.replace(
            record, next_seq_no=record.next_seq_no + 1, ended=True, ended_at=time.time()
        )

    async def stop_transaction(self, request: Payload) -> Reply:
        ctx = self._context()
        legacy_id = request["transactionId"]
        if not -(2**63) <= legacy_id < 2**63:
            # Valid JSON, but no id the gateway gave, and none its store could keep.
            raise UnmappedValue(f"transactionId {legacy_id} is beyond 64 bits")
        key = request_digest(request)
        record = self._by_legacy_id(legacy_id)
        if record is None:
            known = await self._store.find_transaction(
                self._station.station_id, legacy_id=legacy_id
            )
            if known is not None and known.ended:
                if known.stop_key != key:
                    log.warning("second, different StopTransaction for ended %d", legacy_id)
                return _stop_reply(known.stop_id_tag_info), ()
            return await self._stop_unknown(request, ctx), ()
        id_token = self._stop_id_token(request, record, ctx)
        facts = EventFacts(
            record.transaction_id, record.next_seq_no, offline=self._late(request["timestamp"])
        )
        event, dropped = transaction_event_from_stop(
            request, ctx, facts, id_token=id_token, charging_state=record.charging_state
        )
        self._count_dropped(dropped)
        ended = dataclasses.replace(
            record,
            next_seq_no=record.next_seq_no + 1,
            charging_state=event["transactionInfo"].get("chargingState", record.charging_state),
            last_meter=event["meterValue"][-1] if event.get("meterValue") else record.last_meter,
            ended=True,
            ended_at=time.time(),
            stop_key=key,
        )
        # A TxProfile lives as long as its transaction (1.6 §3.13.4, 2.0.1 K01.FR.05).
        self._station.charging_profiles = [
            entry
            for entry in self._station.charging_profiles
            if not (
                entry["evseId"] == record.evse_id
                and entry["chargingProfile"]["chargingProfilePurpose"] == "TxProfile"
            )
        ]
        queued = await self._commit(
            Change(
                station=self._station.record(),
                transactions=(ended,),
                append=(OutboxMessage("TransactionEvent", event, record.transaction_id),),
            )
        )
        self._forget_open(record.connector_id)
        self._metrics.transactions.labels("ended").inc()
        tag_info: Payload | None = None
        if "idToken" in event:
            result = await self._csms_answer(queued[0])
            if result is not None and "idTokenInfo" in result:
                tag_info = core.id_tag_info_from_token_info(result["idTokenInfo"])
                await self._remember(dataclasses.replace(ended, stop_id_tag_info=tag_info))
            elif result is None:
                self._metrics.offline_answers.labels("StopTransaction", "none").inc()
        return _stop_reply(tag_info), ()

    def _stop_id_token(
        self, request: Payload, record: TransactionRecord, ctx: Context
    ) -> Payload | None:
        id_tag = request.get("idTag")
        if id_tag is None:
            return None
        started_with = record.id_token
        if started_with is not None and started_with["idToken"].casefold() == id_tag.casefold():
            return started_with  # keep the type the start used (a remote start's, say)
        return core.id_token_from_tag(id_tag, ctx)

    async def _stop_unknown(self, request: Payload, ctx: Context) -> Payload:
        legacy_id = request["transactionId"]
        log.warning(
            "StopTransaction for transaction %d, which the gateway never saw start: "
            "reporting it upstream as a transaction of its own",
            legacy_id,
        )
        self._metrics.unknown_transactions.labels("StopTransaction").inc()
        id_tag = request.get("idTag")
        id_token = core.id_token_from_tag(id_tag, ctx) if id_tag else None
        offline = self._late(request["timestamp"])
        transaction_id = ctx.new_transaction_id()
        started = synthetic_start_for_unknown(
            request, ctx, EventFacts(transaction_id, 0, offline=offline), id_token=id_token
        )
        ended, dropped = transaction_event_from_stop(
            request,
            ctx,
            EventFacts(transaction_id, 1, offline=offline),
            id_token=id_token,
            charging_state=None,
        )
        self._count_dropped(dropped)
        # Record it under the charger's id (when usable) so that id is never allocated
        # again and a re-sent StopTransaction is recognised.
        if legacy_id <= 0:
            legacy_id = await self._store.allocate_legacy_id(self._station.station_id)
        record = TransactionRecord(
            station_id=self._station.station_id,
            transaction_id=transaction_id,
            legacy_id=legacy_id,
            connector_id=0,
            evse_id=started.get("evse", {}).get("id", 0),
            next_seq_no=2,
            started_at=request["timestamp"],
            start_key="",
            id_token=id_token,
            ended=True,
            ended_at=time.time(),
            stop_key=request_digest(request),
        )
        await self._commit(
            Change(
                transactions=(record,),
                append=(
                    OutboxMessage("TransactionEvent", started, transaction_id),
                    OutboxMessage("TransactionEvent", ended, transaction_id),
                ),
            )
        )
        self._metrics.transactions.labels("synthetic").inc()
        return {}

    async def meter_values(self, request: Payload) -> Reply:
        ctx = self._context()
        connector = request["connectorId"]
        legacy_id = request.get("transactionId")
        record: TransactionRecord | None = None
        if legacy_id is not None:
            record = self._by_legacy_id(legacy_id)
            if record is None:
                # Ended, never seen, or -1/0: the values are still real measurements;
                # they go up outside a transaction rather than being dropped.
                self._metrics.unknown_transactions.labels("MeterValues").inc()
                log.warning("MeterValues for unknown or ended transaction %s", legacy_id)
        elif connector > 0:
            record = self._open.get(connector)  # §3.1 case B: a transaction is open there
        trigger = (
            self._station.take_trigger("MeterValues", connector) if _triggered(request) else None
        )
        if trigger == "MeterValues":
            # 2.0.1 F06: TriggerMessage(MeterValues) is answered by a MeterValuesRequest,
            # even during a transaction (TransactionEvent is its own trigger).
            record = None
        first = request["meterValue"][0]["timestamp"]
        if record is None:
            payload, dropped = meter_values_request_from_meter_values(request, ctx)
            self._count_dropped(dropped)
            if payload is not None:
                await self._commit(Change(append=(OutboxMessage("MeterValues", payload),)))
            return {}, ()
        facts = EventFacts(record.transaction_id, record.next_seq_no, offline=self._late(first))
        events, dropped = transaction_events_from_meter_values(request, ctx, facts)
        self._count_dropped(dropped)
        if events:
            updated = dataclasses.replace(
                record,
                next_seq_no=record.next_seq_no + len(events),
                last_meter=events[-1]["meterValue"][-1],
            )
            messages = tuple(
                OutboxMessage("TransactionEvent", event, record.transaction_id) for event in events
            )
            await self._commit(Change(transactions=(updated,), append=messages))
            self._keep_open(updated)
        return {}, ()

    async def status_notification(self, request: Payload) -> Reply:
        """StatusNotification up only when the 2.0.1 connector status changes; a change
        of charging state inside a transaction as TransactionEvent(Updated) (§5)."""
        ctx = self._context()
        outcome = core.status_notification_req(request, ctx)
        for effect in outcome.effects:
            if isinstance(effect, ConnectorErrorChanged):
                self._station.set_connector_error(effect.connector_id, effect.error_code)
        connector, status = request["connectorId"], request["status"]
        previous = self._station.connector_statuses.get(connector)
        self._station.connector_statuses[connector] = status
        # A triggered status goes up even unchanged: the CSMS asked for it (2.0.1 F06).
        triggered = self._station.take_trigger("StatusNotification", connector) is not None
        messages: list[OutboxMessage] = []
        if outcome.forward is not None and (
            triggered
            or previous is None
            or core.CONNECTOR_STATUS[previous] != core.CONNECTOR_STATUS[status]
        ):
            messages.append(OutboxMessage(outcome.forward.action, outcome.forward.payload))
        records: tuple[TransactionRecord, ...] = ()
        record = self._open.get(connector)
        state = CHARGING_STATES.get(status)
        # Finishing precedes StopTransaction in 1.6: the transaction ends on the stop,
        # with the stop's chargingState, never on Finishing (§2.1, §4.3).
        if (
            record is not None
            and state is not None
            and status != "Finishing"
            and state != record.charging_state
        ):
            timestamp = request.get("timestamp") or ctx.now()
            facts = EventFacts(
                record.transaction_id, record.next_seq_no, offline=self._late(timestamp)
            )
            event = transaction_event_for_charging_state(
                ctx, facts, charging_state=state, timestamp=normalise_datetime(timestamp)
            )
            messages.append(OutboxMessage("TransactionEvent", event, record.transaction_id))
            record = dataclasses.replace(
                record, next_seq_no=record.next_seq_no + 1, charging_state=state
            )
            records = (record,)
        messages += [OutboxMessage(call.action, call.payload) for call in outcome.then]
        messages += updates_for_status(self._station, connector, previous, status)
        await self._commit(
            Change(station=self._station.record(), transactions=records, append=tuple(messages))
        )
        if records:
            self._keep_open(records[0])
        return {}, ()

    async def security_event_notification(self, request: Payload) -> Reply:
        """Through the outbox: a 2.0.1 station queues security events while offline and
        sends them when back (A04.FR.02), so the charger's answer does not wait for the
        CSMS, and nothing is lost to an outage or a restart."""
        outcome = security.security_event_notification_req(request, self._context())
        assert outcome.forward is not None, "a security event always goes up"
        await self._commit(
            Change(append=(OutboxMessage(outcome.forward.action, outcome.forward.payload),))
        )
        return {}, ()

    async def authorize_offline(self, request: Payload) -> Payload:
        """Authorize while the CSMS is unreachable: the offline policy answers."""
        tag_info = await self._authorizer.tag_info(request["idTag"], trusted=False)
        self._metrics.offline_answers.labels("Authorize", tag_info["status"]).inc()
        return {"idTagInfo": tag_info}

    def on_delivered(self, message: OutboxMessage, result: Payload) -> Change:
        """The CSMS answered an outbox message: cache what it said about the idToken."""
        if message.action != "TransactionEvent" or "idTokenInfo" not in result:
            return Change()
        id_token = message.payload.get("idToken")
        if id_token is None:
            return Change()
        info = result["idTokenInfo"]
        if message.offline and info.get("status") != "Accepted":
            # The charger was answered by the offline policy; 1.6 has no way to tell it
            # now. The CSMS knows, and the cache will refuse the token next time.
            log.warning(
                "the CSMS answered %s for an idToken the gateway accepted offline",
                info.get("status"),
            )
        return Change(authorizations=((id_token["idToken"], info),))

    async def save_station(self) -> None:
        """Store the station record (pending remote starts, installed profiles)."""
        await self._commit(Change(station=self._station.record()))

    # --- helpers --------------------------------------------------------------------

    def _keep_open(self, record: TransactionRecord) -> None:
        """Record an open transaction of its connector; a new one counts as active."""
        if record.connector_id not in self._open and self._counting:
            self._metrics.active_transactions.inc()
        self._open[record.connector_id] = record

    def _forget_open(self, connector_id: int) -> None:
        if self._open.pop(connector_id, None) is not None and self._counting:
            self._metrics.active_transactions.dec()

    def _by_legacy_id(self, legacy_id: int) -> TransactionRecord | None:
        return next((r for r in self._open.values() if r.legacy_id == legacy_id), None)

    def _late(self, timestamp: str) -> bool:
        """Stamped before this connection opened: the charger queued it while offline."""
        try:
            moment = datetime.fromisoformat(timestamp)
        except ValueError:
            return False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment < self._connected_at - OFFLINE_CLOCK_SLACK

    async def _commit(self, change: Change) -> tuple[OutboxMessage, ...]:
        try:
            return await self._courier.commit(change)
        except StateError as exc:
            # Not stored means not answered: the charger keeps the message and retries.
            log.exception("cannot store a charger message; refusing it")
            raise GatewayError("the gateway cannot store this message now") from exc

    async def _remember(self, record: TransactionRecord) -> None:
        """Store what the charger was told (for answering a re-sent message the same)."""
        if not record.ended:
            self._keep_open(record)
        try:
            await self._store.commit(self._station.station_id, Change(transactions=(record,)))
        except StateError:
            log.exception("cannot store the answer given for transaction %d", record.legacy_id)

    async def _csms_answer(self, message: OutboxMessage) -> Payload | None:
        """The CSMS's answer, when it is reachable and answers in time; None otherwise."""
        if not await self._courier.reachable(self._answer_timeout):
            return None
        try:
            async with asyncio.timeout(self._answer_timeout):  # not wait_for: see calls.py
                return await asyncio.shield(self._courier.answer(message))
        except TimeoutError:
            return None

    def _count_dropped(self, dropped: tuple[str, ...]) -> None:
        for reason in dropped:
            log.warning("meter sample not sent upstream: %s", reason)
        if dropped:
            self._metrics.meter_samples_dropped.inc(len(dropped))


def _stop_reply(tag_info: Payload | None) -> Payload:
    return {} if tag_info is None else {"idTagInfo": tag_info}


def _triggered(request: Payload) -> bool:
    """Whether 1.6 MeterValues answer a TriggerMessage: their samples say so."""
    return any(
        sample.get("context") == "Trigger"
        for value in request["meterValue"]
        for sample in value["sampledValue"]
    )
