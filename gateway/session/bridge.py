"""The per-station bridge between a 1.6J charger and its 2.0.1 upstream connection.

Layer: session. Imports translate, state, metrics; never websockets (links are
Protocols). This is the one place where exceptions become CALLERROR frames.

Each direction has a worker that handles received CALLs one at a time, in arrival
order, so a charger's messages reach the CSMS in the order it sent them; the readers
never block on a translation, because answers to the gateway's own CALLs must keep
flowing while a worker waits for the other side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway import schemas
from gateway.errors import (
    ActionNotSupported,
    CallTimeout,
    FrameError,
    GatewayError,
    NotRegistered,
    Overloaded,
    PeerUnavailable,
    UnknownAction,
)
from gateway.lean import LeanEvent, LeanQueue
from gateway.logs import message_context, station_context
from gateway.metrics import GatewayMetrics
from gateway.ocppj import (
    Call,
    CallError,
    CallResult,
    Payload,
    Version,
    dump_error,
    dump_result,
    parse,
    read_error_code,
)
from gateway.schemas import Kind
from gateway.session.authorization import OfflineAuthorizer
from gateway.session.calls import OutgoingCalls
from gateway.session.certificates import CertificateDesk
from gateway.session.device_model import DeviceModelDesk, DeviceModelLimits
from gateway.session.keeper import StationKeeper
from gateway.session.links import ChargerLink, CsmsLink, FrameObserver, Side, TraceEvent
from gateway.session.outbox import OutboxCourier
from gateway.session.remote_control import RemoteControl
from gateway.session.reservations import ReservationExpiry
from gateway.session.station import StationState
from gateway.session.transactions import Reply, TransactionDesk
from gateway.state import StateError, Store
from gateway.translate import core
from gateway.translate.dispatch import ROUTES, SESSION_ROUTES, Route
from gateway.translate.layout import EvseLayout
from gateway.translate.meter_repair import repair_meter_payload
from gateway.translate.tables import TranslationTables
from gateway.translate.types import (
    Context,
    Direction,
    OutboundCall,
    RequestConverter,
)

log = logging.getLogger(__name__)

_VERSIONS = {
    Direction.CHARGER_TO_CSMS: (Version.V16, Version.V201),
    Direction.CSMS_TO_CHARGER: (Version.V201, Version.V16),
}
_UNREADABLE_ID = "-1"  # 2.0.1 Part 4 §4.2.3: answer id for a message whose id is unreadable
# Requests whose meter values vendor quirk rules may repair before validation.
_METER_CARRIERS = frozenset({"MeterValues", "StopTransaction"})
# Requests the gateway answers itself (buffer mode) when the CSMS is unreachable.
_ANSWERED_OFFLINE = frozenset({"Heartbeat", "Authorize"})
_TRY_AGAIN_LATER = 1013  # RFC 6455 close code: the service is temporarily unavailable

# The actions the session's desks handle (SESSION_ROUTES), as (desk attribute, method):
# one table for all sessions, where a dict of bound methods per session cost ~1.6 KiB
# of every connected charger's memory.
_DESK_HANDLERS: dict[tuple[Direction, str], tuple[str, str]] = {
    (Direction.CHARGER_TO_CSMS, "StartTransaction"): ("_desk", "start_transaction"),
    (Direction.CHARGER_TO_CSMS, "MeterValues"): ("_desk", "meter_values"),
    (Direction.CHARGER_TO_CSMS, "StopTransaction"): ("_desk", "stop_transaction"),
    (Direction.CHARGER_TO_CSMS, "StatusNotification"): ("_desk", "status_notification"),
    (Direction.CHARGER_TO_CSMS, "SecurityEventNotification"): (
        "_desk",
        "security_event_notification",
    ),
    (Direction.CSMS_TO_CHARGER, "RequestStartTransaction"): (
        "_remote",
        "request_start_transaction",
    ),
    (Direction.CSMS_TO_CHARGER, "RequestStopTransaction"): ("_remote", "request_stop_transaction"),
    (Direction.CSMS_TO_CHARGER, "GetTransactionStatus"): ("_remote", "get_transaction_status"),
    (Direction.CSMS_TO_CHARGER, "GetChargingProfiles"): ("_remote", "get_charging_profiles"),
    (Direction.CSMS_TO_CHARGER, "GetInstalledCertificateIds"): (
        "_certificates",
        "get_installed_certificate_ids",
    ),
    (Direction.CSMS_TO_CHARGER, "DeleteCertificate"): ("_certificates", "delete_certificate"),
    (Direction.CSMS_TO_CHARGER, "GetVariables"): ("_device", "get_variables"),
    (Direction.CSMS_TO_CHARGER, "SetVariables"): ("_device", "set_variables"),
    (Direction.CSMS_TO_CHARGER, "GetBaseReport"): ("_device", "get_base_report"),
    (Direction.CSMS_TO_CHARGER, "GetReport"): ("_device", "get_report"),
}
assert _DESK_HANDLERS.keys() == SESSION_ROUTES.keys()


@dataclass(frozen=True, slots=True)
class SessionSettings:
    response_timeout: float = 30.0
    upstream_wait: float = 10.0
    max_queued_calls: int = 16
    validate_inbound: bool = True
    validate_outbound: bool = False
    offline_mode: str = "buffer"  # buffer | mirror
    offline_grace: float = 60.0
    offline_authorization: str = "cache"
    immediate_reset: str = "Soft"  # 1.6 Reset type for a 2.0.1 Reset(Immediate)
    max_frame_bytes: int = 1048576


class TranslatingSession:
    """Bridges one 1.6J charger to the CSMS as a 2.0.1 station."""

    def __init__(
        self,
        *,
        charger: ChargerLink,
        csms: CsmsLink,
        store: Store,
        tables: TranslationTables,
        metrics: GatewayMetrics,
        settings: SessionSettings,
        layout: EvseLayout | None = None,
        observer: FrameObserver | None = None,
        on_authorization_key: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``on_authorization_key`` is called with a new 1.6 AuthorizationKey (hex) once
        the charger took it: the charger's password, when it authenticates with one."""
        self.station_id = charger.station_id
        self._charger = charger
        self._csms = csms
        self._store = store
        self._tables = tables
        self._metrics = metrics
        self._settings = settings
        self._layout = layout or EvseLayout()
        self._observer = observer
        self._state = StationState(self.station_id)
        self._event_ids = 0
        self._csms_epoch = 0  # bumped per upstream disconnect: answers to stale CALLs drop
        self._csms_lost = LeanEvent()
        self._charger_gone = False
        self._csms_busy = False  # the CSMS worker is handling a CALL

        def calls_to(side: Side, send: Callable[[str], Awaitable[None]]) -> OutgoingCalls:
            return OutgoingCalls(
                side=side,
                send=send,
                timeout=settings.response_timeout,
                max_queued=settings.max_queued_calls,
                metrics=metrics,
            )

        self._to_csms = calls_to(Side.CSMS, self._send_to_csms)
        self._to_charger = calls_to(Side.CHARGER, self._send_to_charger)
        size = settings.max_queued_calls
        self._charger_calls: LeanQueue[Call] = LeanQueue(size)
        self._csms_calls: LeanQueue[tuple[int, Call]] = LeanQueue(size)
        self._courier = OutboxCourier(
            station_id=self.station_id,
            store=store,
            calls=self._to_csms,
            csms=csms,
            metrics=metrics,
            can_send=lambda: self._state.registered,
            # The desk is built next, so its method is looked up at call time.
            on_delivered=lambda message, result: self._desk.on_delivered(message, result),  # noqa: PLW0108
            check=self._check_outbox_message,
        )
        self._reservations = ReservationExpiry(station=self._state, courier=self._courier)
        self._keeper = StationKeeper(
            state=self._state,
            store=store,
            layout=self._layout,
            to_charger=self._to_charger,
            check_charger_answer=self._check_charger_answer,
            on_registered=self._courier.wake,  # accepted: the outbox may go up now
            tables=tables,
            on_reservations_changed=self._reservations.wake,
        )
        self._authorizer = OfflineAuthorizer(
            station_id=self.station_id, store=store, policy=settings.offline_authorization
        )
        self._desk = TransactionDesk(
            station=self._state,
            store=store,
            courier=self._courier,
            to_charger=self._to_charger,
            context=self._context,
            metrics=metrics,
            authorizer=self._authorizer,
            answer_timeout=settings.response_timeout,
            connected_at=datetime.now(UTC),
            check_charger_answer=self._check_charger_answer,
        )
        desk = self._desk
        remote = RemoteControl(
            station=self._state,
            desk=desk,
            courier=self._courier,
            to_charger=self._to_charger,
            context=self._context,
            check_charger_answer=self._check_charger_answer,
        )
        certificates = CertificateDesk(
            to_charger=self._to_charger,
            context=self._context,
            check_charger_answer=self._check_charger_answer,
        )
        device = DeviceModelDesk(
            station=self._state,
            tables=tables,
            layout=self._layout,
            to_charger=self._to_charger,
            context=self._context,
            check_charger_answer=self._check_charger_answer,
            limits=DeviceModelLimits(
                message_timeout=settings.response_timeout,
                bytes_per_message=settings.max_frame_bytes,
            ),
            metrics=metrics,
            on_learnt=self._keeper.changed,
            on_authorization_key=on_authorization_key,
        )
        self._remote, self._certificates, self._device = remote, certificates, device

    # --- lifecycle ------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the station until the charger disconnects; then close the upstream."""
        with station_context(self.station_id):
            if not await self._load_station():
                await self._charger.close(_TRY_AGAIN_LATER, "gateway state unavailable")
                return
            async with asyncio.TaskGroup() as tasks:
                upstream = tasks.create_task(
                    self._csms.run(self._on_csms_frame, self._on_csms_disconnect)
                )
                workers = [
                    tasks.create_task(self._work_charger_calls()),
                    tasks.create_task(self._work_csms_calls()),
                    tasks.create_task(self._courier.run()),
                    tasks.create_task(self._reservations.run()),
                ]
                if self._settings.offline_mode == "mirror":
                    workers.append(tasks.create_task(self._mirror_csms_outages()))
                try:
                    async for text in self._charger.frames():
                        await self._on_charger_frame(text)
                finally:
                    await self._finish(workers, csms_worker=workers[1])
                    await upstream

    async def _finish(
        self, workers: list[asyncio.Task[None]], csms_worker: asyncio.Task[None]
    ) -> None:
        """The charger is gone, so is its upstream link (2.0.1 Part 4 §6.3). A CSMS CALL
        the charger answered just before it went still gets its answer, and what the
        answer changed is stored: a 1.6 charger accepting a Reset drops the connection
        to reboot, and the CSMS must learn it accepted (and the boot that RemoteReset)."""
        self._charger_gone = True
        for worker in workers:
            if worker is not csms_worker or not self._csms_busy:
                worker.cancel()
        # Cancel first, then fail: a cancelled worker must not see a failed CALL it
        # could handle and carry on from.
        self._to_charger.fail(PeerUnavailable("charger disconnected"))
        await asyncio.wait({csms_worker}, timeout=self._settings.upstream_wait)
        csms_worker.cancel()
        self._courier.close()
        self._desk.close()
        await self._csms.close()

    async def _load_station(self) -> bool:
        """Load what the store knows of the station. Without its transactions and
        outbox the gateway could answer wrongly, so a store failure refuses the charger
        (it reconnects later) rather than serving it from nothing."""
        try:
            record = await self._store.get_station(self.station_id)
            await self._desk.load()
            await self._courier.load()
        except StateError:
            log.exception("cannot read the station's state; refusing the charger for now")
            self._desk.close()
            return False
        if record is not None:
            self._state.load(record)  # in place: the desk and courier share this state
            self._keeper.learn_model()
        return True

    async def drain(self, within: float) -> bool:
        """Gateway shutdown: give the outbox up to ``within`` seconds to reach the CSMS
        (through a reconnect too) before the charger is closed; whether it did."""
        return await self._courier.flush(within)

    async def _mirror_csms_outages(self) -> None:
        """Mirror mode: without the CSMS for offline_grace seconds, close the charger so
        it queues its own messages (2.0.1 Part 4 §6.3, reference §0)."""
        grace = self._settings.offline_grace
        while True:
            if self._csms.connected:
                self._csms_lost.clear()
                await self._csms_lost.wait()
                continue
            try:
                async with asyncio.timeout(grace):  # not wait_for: see calls.py
                    await self._csms.wait_connected()
            except TimeoutError:
                log.warning("no CSMS connection for %g s: closing the charger (mirror)", grace)
                self._metrics.charger_disconnects.labels("csms_unreachable").inc()
                await self._charger.close(_TRY_AGAIN_LATER, "CSMS unreachable")
                return

    # --- frames in ------------------------------------------------------------------

    async def _on_charger_frame(self, text: str) -> None:
        self._observe(Side.CHARGER, "in", text)
        frame = await self._parse(text, Side.CHARGER, Version.V16, self._send_to_charger)
        if isinstance(frame, Call):
            self._metrics.count_message(Side.CHARGER, "in", "call", frame.action)
            try:
                self._charger_calls.put_nowait(frame)
            except asyncio.QueueFull:
                self._metrics.limit_breaches.labels("queued_calls").inc()
                error = Overloaded("too many CALLs waiting; OCPP-J allows one at a time")
                await self._answer_error(Side.CHARGER, frame, error)
        elif frame is not None:
            self._deliver_answer(Side.CHARGER, self._to_charger, frame)

    async def _on_csms_frame(self, text: str) -> None:
        self._observe(Side.CSMS, "in", text)
        frame = await self._parse(text, Side.CSMS, Version.V201, self._send_to_csms_now)
        if isinstance(frame, Call):
            self._metrics.count_message(Side.CSMS, "in", "call", frame.action)
            try:
                self._csms_calls.put_nowait((self._csms_epoch, frame))
            except asyncio.QueueFull:
                error = Overloaded("too many CALLs waiting; OCPP-J allows one at a time")
                await self._answer_error(Side.CSMS, frame, error)
        elif frame is not None:
            self._deliver_answer(Side.CSMS, self._to_csms, frame)

    async def _parse(
        self, text: str, side: Side, version: Version, send: Callable[[str], Awaitable[None]]
    ) -> Call | CallResult | CallError | None:
        try:
            return parse(text)
        except FrameError as exc:
            self._metrics.invalid_frames.labels(side).inc()
            log.warning("invalid frame from the %s: %s", side, exc.description)
            if not exc.answerable or (exc.unique_id is None and version is Version.V16):
                return None  # never answer an answer; 1.6 defines no id-less answer
            reply = dump_error(exc.unique_id or _UNREADABLE_ID, exc.code, exc.description, version)
            await self._send_quietly(send, reply, side)
            self._metrics.call_errors.labels(side, "out", exc.code).inc()
            return None

    def _deliver_answer(
        self, side: Side, calls: OutgoingCalls, frame: CallResult | CallError
    ) -> None:
        message_type = "result" if isinstance(frame, CallResult) else "error"
        action = calls.pending_action(frame.unique_id) or "unknown"
        self._metrics.count_message(side, "in", message_type, action)
        if isinstance(frame, CallError):
            self._metrics.call_errors.labels(side, "in", read_error_code(frame.code)).inc()
        if not calls.resolve(frame):
            # Late (after a timeout), duplicated, or never ours: nobody waits for it.
            self._metrics.unmatched_responses.labels(side).inc()
            log.warning("answer from the %s matches no pending CALL: id %s", side, frame.unique_id)

    def _on_csms_disconnect(self) -> None:
        self._csms_epoch += 1
        self._csms_lost.set()
        self._courier.went_offline()
        self._to_csms.fail(PeerUnavailable("CSMS connection lost before it answered"))

    # --- workers --------------------------------------------------------------------

    async def _work_charger_calls(self) -> None:
        while True:
            call = await self._charger_calls.get()
            with message_context(call.unique_id):  # on every log line about this CALL
                await self._handle_charger_call(call)
            if self._state.reset_scheduled:
                await self._keeper.reset_when_idle(busy=bool(self._desk.open_transactions))

    async def _handle_charger_call(self, call: Call) -> None:
        then: tuple[OutboundCall, ...] = ()
        try:
            reply, then = await self._translate_guarded(Direction.CHARGER_TO_CSMS, call)
        except GatewayError as exc:
            await self._keeper.store()
            await self._answer_error(Side.CHARGER, call, exc)
        else:
            await self._keeper.store()
            await self._answer(Side.CHARGER, call, reply)
        await self._send_followups(then)

    async def _work_csms_calls(self) -> None:
        while not self._charger_gone:
            epoch, call = await self._csms_calls.get()
            self._csms_busy = True
            try:
                with message_context(call.unique_id):
                    await self._handle_csms_call(epoch, call)
            finally:
                self._csms_busy = False

    async def _handle_csms_call(self, epoch: int, call: Call) -> None:
        try:
            reply, then = await self._translate_guarded(Direction.CSMS_TO_CHARGER, call)
        except GatewayError as exc:
            await self._keeper.store()
            if epoch == self._csms_epoch:
                await self._answer_error(Side.CSMS, call, exc)
            return
        await self._keeper.store()  # e.g. the boot reason a Reset leads to
        if epoch != self._csms_epoch:
            log.info("dropping the answer to %s: asked on a closed CSMS connection", call.action)
            return
        await self._answer(Side.CSMS, call, reply)
        await self._send_followups(then)

    async def _translate_guarded(
        self, direction: Direction, call: Call
    ) -> tuple[Payload, tuple[OutboundCall, ...]]:
        """:meth:`_translate_call`, with any unexpected exception turned into a CALLERROR
        for this CALL alone: a converter bug, or, with ``validate_inbound`` off, a payload
        the converters cannot read, must not end the station's session."""
        try:
            return await self._translate_call(direction, call)
        except GatewayError:
            raise
        except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            source = _VERSIONS[direction][0]
            if not self._settings.validate_inbound:
                # Validate only now that translation failed: the CALLERROR names the
                # broken field with the code its schema rule calls for.
                schemas.validate(source, call.action, Kind.REQUEST, call.payload)
            log.exception("cannot translate %s %s", source, call.action)
            raise GatewayError(f"the gateway could not translate {call.action}") from exc

    async def _translate_call(
        self, direction: Direction, call: Call
    ) -> tuple[Payload, tuple[OutboundCall, ...]]:
        """Translate one received CALL, forward it, and translate the answer back."""
        source, target = _VERSIONS[direction]
        started = time.perf_counter()
        handler = self._desk_handler(direction, call.action)
        payload = call.payload
        if handler is not None and call.action in _METER_CARRIERS:
            payload = self._repair_meter_values(payload)
        route = None if handler is not None else self._route(direction, call.action, source)
        if self._settings.validate_inbound:
            schemas.validate(source, call.action, Kind.REQUEST, payload)
        convert = self._converter(direction, call.action, route)
        if handler is not None:
            # Only validation is timed: the desk's own time is mostly store and CSMS I/O.
            self._metrics.translation_timer(direction).observe(time.perf_counter() - started)
            reply, then = await handler(payload)
            self._check(source, call.action, Kind.RESPONSE, reply)
            return reply, then
        assert route is not None and convert is not None, "a route without the desk"
        ctx = self._context()
        outcome = convert(payload, ctx)
        self._keeper.apply(outcome.effects)
        self._metrics.translation_timer(direction).observe(time.perf_counter() - started)
        if outcome.forward is None:
            reply = outcome.reply or {}
            then = outcome.then
        else:
            self._check(target, outcome.forward.action, Kind.REQUEST, outcome.forward.payload)
            if direction is Direction.CHARGER_TO_CSMS:
                result = await self._call_csms(call.action, outcome.forward)
                if result is None:  # unreachable: the gateway answers (buffer mode)
                    return await self._answer_offline(call.action, payload, ctx), ()
            else:
                result = await self._to_charger.call(
                    outcome.forward.action, outcome.forward.payload
                )
            self._check_answer(target, outcome.forward.action, result)
            answer = route.result(result, payload, ctx)
            self._keeper.apply(answer.effects)
            reply = answer.reply or {}
            then = outcome.then + answer.then
        self._check(source, call.action, Kind.RESPONSE, reply)
        return reply, then

    async def _call_csms(self, action: str, forward: OutboundCall) -> Payload | None:
        """Forward a charger request; None when the CSMS is unreachable and the gateway
        may answer it itself. Outbox messages from before go first, in order."""
        offline_capable = action in _ANSWERED_OFFLINE
        if offline_capable and not await self._courier.reachable(self._settings.upstream_wait):
            return None
        await self._courier.wait_drained(self._settings.upstream_wait)
        try:
            return await self._to_csms.call(forward.action, forward.payload)
        except (PeerUnavailable, CallTimeout):
            if offline_capable:
                return None
            raise

    async def _answer_offline(self, action: str, payload: Payload, ctx: Context) -> Payload:
        if action == "Authorize":
            return await self._desk.authorize_offline(payload)
        self._metrics.offline_answers.labels(action, "none").inc()
        return core.heartbeat_local(payload, ctx).reply or {}

    def _repair_meter_values(self, payload: Payload) -> Payload:
        """Vendor quirk rules fix known meter value defects before validation; each
        repair is counted, so an operator sees which chargers need them."""
        boot = self._state.boot
        quirks = self._tables.meter_quirks_for(
            boot.get("chargePointVendor"), boot.get("chargePointModel")
        )
        repaired, rules = repair_meter_payload(payload, quirks)
        for rule in rules:
            self._metrics.meter_normalisations.labels(rule).inc()
        if rules:
            log.info("meter values repaired by vendor rules: %s", ", ".join(sorted(set(rules))))
        return repaired

    def _desk_handler(
        self, direction: Direction, action: str
    ) -> Callable[[Payload], Awaitable[Reply]] | None:
        found = _DESK_HANDLERS.get((direction, action))
        if found is None:
            return None
        desk, method = found
        handler: Callable[[Payload], Awaitable[Reply]] = getattr(getattr(self, desk), method)
        return handler

    def _converter(
        self, direction: Direction, action: str, route: Route | None
    ) -> RequestConverter | None:
        """The request converter to use (None: the desk handles the action). Until the
        CSMS accepts the boot, a charger CALL uses the route's ``before_accepted`` one, or
        is refused (2.0.1 B01.FR.08); the desk's actions wait in the outbox meanwhile."""
        if direction is Direction.CSMS_TO_CHARGER or self._state.registered:
            return None if route is None else route.request
        if not self._state.boot and action != "BootNotification":
            # A reconnecting charger does not boot again: after a gateway restart
            # without state, the gateway has to ask for the boot (1.6 §5.17).
            self._keeper.boot_wanted = True
        if route is not None and route.before_accepted is None:
            raise NotRegistered(f"{action} before the CSMS accepted the BootNotification")
        if route is None or route.before_accepted is not route.request:
            self._metrics.held_messages.labels(action).inc()  # answered by the gateway
        return None if route is None else route.before_accepted

    def _route(self, direction: Direction, action: str, version: Version) -> Route:
        route = ROUTES.get((direction, action))
        if route is not None:
            return route
        if action in schemas.known_actions(version):
            other = "OCPP 1.6" if version is Version.V201 else "the 2.0.1 CSMS"
            raise ActionNotSupported(f"{action} has no equivalent in {other}")
        raise UnknownAction(f"{action} is not an OCPP {version.removeprefix('ocpp')} action")

    def _check(self, version: Version, action: str, kind: Kind, payload: Payload) -> None:
        """Validate what the gateway emits, when configured (tests, demo)."""
        if self._settings.validate_outbound:
            try:
                schemas.validate(version, action, kind, payload)
            except GatewayError as exc:
                log.error("translation produced an invalid %s %s: %s", action, kind, exc)
                raise GatewayError(f"internal translation error for {action}") from exc

    def _check_outbox_message(self, action: str, payload: Payload) -> None:
        self._check(Version.V201, action, Kind.REQUEST, payload)

    def _check_charger_answer(self, action: str, result: Payload) -> None:
        self._check_answer(Version.V16, action, result)

    def _check_answer(self, version: Version, action: str, result: Payload) -> None:
        """The other side's answer must be valid before it is translated back (unless
        ``validate_inbound`` is off: then :meth:`_translate_guarded` catches what the
        converters cannot read)."""
        if not self._settings.validate_inbound:
            return
        try:
            schemas.validate(version, action, Kind.RESPONSE, result)
        except GatewayError as exc:
            side = "CSMS" if version is Version.V201 else "charger"
            raise GatewayError(f"the {side} answered {action} invalidly: {exc}") from exc

    def _context(self) -> Context:
        records = self._desk.open_transactions
        open_transactions = {r.connector_id: _authorized(r.id_tag_info) for r in records}
        legacy_ids = {r.transaction_id: r.legacy_id for r in records}
        return Context(
            station_id=self.station_id,
            tables=self._tables,
            layout=self._layout,
            station=self._state.view(open_transactions, legacy_ids),
            next_event_id=self._next_event_id,
            immediate_reset=self._settings.immediate_reset,
        )

    def _next_event_id(self) -> int:
        self._event_ids += 1
        return self._event_ids

    async def _send_followups(self, then: tuple[OutboundCall, ...]) -> None:
        """After the reply: ask for a boot if needed, then send extra CALLs."""
        await self._keeper.request_boot_if_wanted()
        for extra in then:
            try:
                self._check(Version.V201, extra.action, Kind.REQUEST, extra.payload)
                await self._to_csms.call(extra.action, extra.payload)
            except GatewayError as exc:
                log.warning("the CSMS did not take %s: %s", extra.action, exc.description)

    # --- frames out -----------------------------------------------------------------

    async def _answer(self, side: Side, call: Call, payload: Payload) -> None:
        send = self._send_to_charger if side is Side.CHARGER else self._send_to_csms_now
        if await self._send_quietly(send, dump_result(call.unique_id, payload), side):
            self._metrics.count_message(side, "out", "result", call.action)

    async def _answer_error(self, side: Side, call: Call, error: GatewayError) -> None:
        version = Version.V16 if side is Side.CHARGER else Version.V201
        send = self._send_to_charger if side is Side.CHARGER else self._send_to_csms_now
        log.info("answering %s %s with %s: %s", side, call.action, error.code, error.description)
        frame = dump_error(call.unique_id, error.code, error.description, version, error.details)
        if await self._send_quietly(send, frame, side):
            self._metrics.count_message(side, "out", "error", call.action)
            self._metrics.call_errors.labels(side, "out", error.code).inc()

    async def _send_quietly(
        self, send: Callable[[str], Awaitable[None]], text: str, side: Side
    ) -> bool:
        try:
            await send(text)
        except PeerUnavailable as exc:
            log.info("could not send to the %s: %s", side, exc.description)
            return False
        return True

    async def _send_to_charger(self, text: str) -> None:
        self._observe(Side.CHARGER, "out", text)
        await self._charger.send(text)

    async def _send_to_csms(self, text: str) -> None:
        """Send a CALL upstream, waiting (bounded) for the connection."""
        await self._csms.send(text, wait=self._settings.upstream_wait)
        self._observe(Side.CSMS, "out", text)

    async def _send_to_csms_now(self, text: str) -> None:
        """Send an answer upstream: no waiting, a stale answer is worthless."""
        await self._csms.send(text, wait=0)
        self._observe(Side.CSMS, "out", text)

    def _observe(self, side: Side, direction: str, text: str) -> None:
        if self._observer is not None:
            self._observer(TraceEvent(self.station_id, side, direction, text))


def _authorized(id_tag_info: Payload | None) -> bool:
    """Whether a transaction counts as authorized (2.0.1 F05.FR.02): its idTag was
    accepted, or is still being checked (no answer yet)."""
    return id_tag_info is None or id_tag_info.get("status") == "Accepted"
