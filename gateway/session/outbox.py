"""Delivers one station's durable outbox to the CSMS: in order, one at a time, until answered.

Layer: session (asyncio only).

Every CSMS-bound message the CSMS must see (transaction events, meter values, statuses)
is committed to the store together with the state change that produced it, *before*
the charger is answered (DESIGN.md "Nothing is lost"). The courier then sends the oldest
undelivered message, waits for the CSMS's answer and only then removes it, so a crash at
any point leaves the message in the store to be sent again after the restart: delivery is
at least once, and a re-sent TransactionEvent carries the same seqNo and meaning.

Messages that waited while the CSMS was unreachable (including across a gateway restart)
are flagged offline, and TransactionEvents go up with ``offline: true`` (2.0.1 E11.FR.07:
"every message that is still in the queue SHALL be set Offline"). The one exception is a
message already transmitted once (sent, connection lost before the answer): it is sent
again exactly as before, since a re-delivery must keep its meaning (the CSMS may have
processed the first copy). Only the oldest message can be in that state, because the
courier sends one at a time; after a restart it is not known whether it was, so the
oldest keeps the flag it was stored with and every later one is flagged offline. The
flags are therefore derived, not stored, apart from the one set when a message is
appended while the CSMS is unreachable.

The courier remembers when each queued message was queued (``time.monotonic()``, in
memory only: after a restart a loaded message counts from its load) for the
``ocpp_gateway_outbox_oldest_age_seconds`` gauge, which asks the couriers with something
queued at scrape time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable

from gateway.errors import CallTimeout, GatewayError, PeerUnavailable, RemoteCallError
from gateway.lean import LeanEvent, loop_of
from gateway.metrics import GatewayMetrics, action_label
from gateway.ocppj import Payload
from gateway.session.calls import OutgoingCalls
from gateway.session.links import CsmsLink
from gateway.state import Change, OutboxMessage, StateError, Store

log = logging.getLogger(__name__)

# 2.0.1 E13: after MessageAttempts CALLERROR answers the station discards the message.
# Timeouts and lost connections are not attempts: the message waits for the CSMS.
MESSAGE_ATTEMPTS = 3
RETRY_INTERVAL = 5.0  # seconds between attempts (OCPPCommCtrlr.MessageAttemptInterval)

DeliveredHook = Callable[[OutboxMessage, Payload], Change]
"""Called with each message the CSMS answered and its answer; returns the state change
to commit together with the message's removal (e.g. an authorization cache entry)."""


class OutboxCourier:
    def __init__(
        self,
        *,
        station_id: str,
        store: Store,
        calls: OutgoingCalls,
        csms: CsmsLink,
        metrics: GatewayMetrics,
        can_send: Callable[[], bool],
        on_delivered: DeliveredHook,
        check: Callable[[str, Payload], None] = lambda _action, _payload: None,
        retry_interval: float = RETRY_INTERVAL,
    ) -> None:
        self._station_id = station_id
        self._store = store
        self._calls = calls
        self._csms = csms
        self._metrics = metrics
        self._can_send = can_send
        self._on_delivered = on_delivered
        self._check = check
        self._retry_interval = retry_interval
        self._queue: deque[OutboxMessage] = deque()
        self._enqueued: dict[int, float] = {}  # position -> time.monotonic() when queued
        self._answers: dict[int, asyncio.Future[Payload | None]] = {}
        self._wake = LeanEvent()
        self._loop: asyncio.AbstractEventLoop | None = None  # see gateway.lean.loop_of
        self._drained = LeanEvent()
        self._drained.set()
        self._transmitted: set[int] = set()  # positions sent at least once (maybe)
        # Until the CSMS connection is first lost (or never comes), a message may wait
        # for it: a charger connecting speaks at once, while the upstream link is opening.
        self._lost = False

    # --- queue ----------------------------------------------------------------------

    async def load(self) -> None:
        """Take over what an earlier connection or process left undelivered."""
        pending = await self._store.pending_outbox(self._station_id)
        if not pending:
            return
        # The station's upstream connection ended with them still queued: offline, but
        # for the oldest, which may have been transmitted before the restart.
        head, *rest = pending
        self._transmitted.add(head.position)
        self._queue.append(head)
        self._queue.extend(dataclasses.replace(message, offline=True) for message in rest)
        self._loop = loop = loop_of(self._loop)
        now = time.monotonic()
        for message in pending:
            self._answers[message.position] = loop.create_future()
            self._enqueued[message.position] = now
        self._metrics.outbox_pending.inc(len(pending))
        self._metrics.watch_outbox(self)
        self._drained.clear()
        log.info("%d undelivered message(s) from before: replaying them first", len(pending))
        self._wake.set()

    async def commit(self, change: Change) -> tuple[OutboxMessage, ...]:
        """Write ``change`` atomically; queue its outbox messages for delivery.

        Messages appended while the CSMS is unreachable are flagged offline from the
        start. Raises StateError when the store refuses, and GatewayError when ``check``
        (outbound validation, when configured) refuses a message: nothing is queued then.
        """
        for message in change.append:
            self._check(message.action, message.payload)  # nothing invalid is stored
        offline = not self._csms.connected
        if offline and change.append:
            appended = tuple(dataclasses.replace(m, offline=True) for m in change.append)
            change = dataclasses.replace(change, append=appended)
        positions = await self._store.commit(self._station_id, change)
        queued = tuple(
            message.at(position) for message, position in zip(change.append, positions, strict=True)
        )
        if queued:
            self._loop = loop = loop_of(self._loop)
            now = time.monotonic()
            for message in queued:
                self._answers[message.position] = loop.create_future()
                self._enqueued[message.position] = now
            self._queue.extend(queued)
            self._metrics.outbox_pending.inc(len(queued))
            self._metrics.watch_outbox(self)
            self._drained.clear()
            self._wake.set()
        return queued

    def answer(self, message: OutboxMessage) -> asyncio.Future[Payload | None]:
        """The CSMS's answer to a queued message (None: discarded after CALLERRORs)."""
        return self._answers[message.position]

    def queued(self, transaction_id: str, event_type: str) -> OutboxMessage | None:
        """The undelivered TransactionEvent of that type for a transaction, if any."""
        for message in self._queue:
            if (
                message.transaction_id == transaction_id
                and message.payload.get("eventType") == event_type
            ):
                return message
        return None

    def oldest_enqueued(self) -> float | None:
        """When the oldest undelivered message was queued (monotonic), None when none."""
        return self._enqueued.get(self._queue[0].position) if self._queue else None

    def pending(self, transaction_id: str) -> int:
        """Undelivered messages of one transaction (GetTransactionStatus, E14)."""
        return sum(1 for message in self._queue if message.transaction_id == transaction_id)

    def pending_transaction_messages(self) -> int:
        """Undelivered messages that belong to a transaction (GetTransactionStatus, E14)."""
        return sum(1 for message in self._queue if message.transaction_id is not None)

    @property
    def online(self) -> bool:
        """Whether a message queued now can be delivered without waiting for the CSMS."""
        return self._csms.connected and self._can_send()

    async def reachable(self, within: float) -> bool:
        """Whether the CSMS can answer now; while the link is still opening for the
        first time, wait up to ``within`` seconds for it. After an outage, answer at once:
        the charger should not wait for a CSMS that is known to be away."""
        if self.online:
            return True
        if self._lost or not self._can_send():
            return False
        try:
            async with asyncio.timeout(within):  # not wait_for: see calls.py
                await self._csms.wait_connected()
        except TimeoutError:
            self._lost = True
            return False
        return self.online

    async def wait_drained(self, within: float) -> bool:
        """Wait (bounded) until everything queued was delivered, while deliverable."""
        if not self._queue or not self.online:
            return not self._queue
        try:
            async with asyncio.timeout(within):
                await self._drained.wait()
        except TimeoutError:
            return False
        return True

    async def flush(self, within: float) -> bool:
        """Shutdown: wait up to ``within`` seconds for everything queued to be delivered,
        through a CSMS reconnect too, or for the session to end; False on timeout."""
        if not self._queue:
            return True
        try:
            async with asyncio.timeout(within):  # not wait_for: see calls.py
                await self._drained.wait()
        except TimeoutError:
            return False
        return True

    def wake(self) -> None:
        """Something the courier waits for changed (registration, connection)."""
        self._wake.set()

    def went_offline(self) -> None:
        """The CSMS connection dropped: what is still queued is now offline, except a
        message already transmitted, which must be re-sent unchanged."""
        self._lost = True
        self._queue = deque(
            m if m.position in self._transmitted else dataclasses.replace(m, offline=True)
            for m in self._queue
        )

    # --- delivery -------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver forever; the session cancels this task when the charger leaves."""
        attempts = 0
        while True:
            self._wake.clear()
            if not (self._queue and self._can_send()):
                await self._wake.wait()
                continue
            if not self._csms.connected:
                await self._csms.wait_connected()
                continue
            message = self._queue[0]
            self._transmitted.add(message.position)
            try:
                result = await self._calls.call(message.action, _as_sent(message))
            except PeerUnavailable:
                continue  # went_offline() flagged the queue; wait for the next connection
            except CallTimeout:
                await self._pause()  # the CSMS is slow or lost it: same message again
                continue
            except RemoteCallError as exc:
                attempts += 1
                if attempts < MESSAGE_ATTEMPTS:
                    log.warning(
                        "the CSMS refused %s (%s), attempt %d of %d",
                        message.action,
                        exc.code,
                        attempts,
                        MESSAGE_ATTEMPTS,
                    )
                    await self._pause()
                    continue
                log.error(
                    "the CSMS refused %s %d times (%s: %s); discarding it: %s",
                    message.action,
                    attempts,
                    exc.code,
                    exc.description,
                    message.payload,
                )
                self._metrics.outbox_discarded.labels(action_label(message.action)).inc()
                await self._finish(message, None, Change(delivered=(message.position,)))
                attempts = 0
                continue
            except GatewayError as exc:  # Overloaded: the lock queue is full; try again
                log.warning("cannot send %s yet: %s", message.action, exc.description)
                await self._pause()
                continue
            attempts = 0
            try:
                change = self._on_delivered(message, result)
            except Exception:  # a bad answer must not block the queue forever
                log.exception("cannot process the CSMS's answer to %s", message.action)
                change = Change()
            change = change.and_delivered(message.position)
            self._metrics.delivery_counter(
                action_label(message.action), str(message.offline).lower()
            ).inc()
            await self._finish(message, result, change)

    async def _finish(self, message: OutboxMessage, result: Payload | None, change: Change) -> None:
        while True:
            try:
                await self._store.commit(self._station_id, change)
                break
            except StateError:
                # Not removed from the store means sent again later: never lost, at worst
                # delivered twice (with the same seqNo, which a CSMS can recognise).
                log.exception("cannot record the delivery of %s; retrying", message.action)
                await self._pause()
        self._queue.popleft()
        self._transmitted.discard(message.position)
        self._enqueued.pop(message.position, None)
        self._metrics.outbox_pending.dec()
        answer = self._answers.pop(message.position, None)
        if answer is not None and not answer.done():
            answer.set_result(result)
        if not self._queue:
            self._metrics.unwatch_outbox(self)
            self._drained.set()

    async def _pause(self) -> None:
        await asyncio.sleep(self._retry_interval)

    def close(self) -> None:
        """The session ends: what is still queued stays in the store for the next one."""
        self._metrics.outbox_pending.dec(len(self._queue))
        self._metrics.unwatch_outbox(self)
        self._queue.clear()
        self._enqueued.clear()
        self._drained.set()  # a shutdown waiting in flush() need not wait any longer
        for answer in self._answers.values():
            if not answer.done():
                answer.set_result(None)
        self._answers.clear()


def _as_sent(message: OutboxMessage) -> Payload:
    """The payload as it goes up: TransactionEvents that waited carry ``offline: true``."""
    if message.offline and message.action == "TransactionEvent":
        return {**message.payload, "offline": True}
    return message.payload
