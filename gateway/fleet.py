"""The migration in waves, as the running gateway applies it (issue 9).

Layer: top (with ``gateway.app``, which builds and uses it; nothing else imports it but
the admin API through the :class:`gateway.admin.fleet.Fleet` Protocol it implements).

:class:`GatewayFleet` holds the routing table in force (the config file's ``[[routes]]``
merged with the rules the admin API stored, :meth:`RoutingTable.merged`), places each
connecting 1.6 charger on a route, keeps the list of connected chargers and their live
traces, and moves chargers when the table changes.

The safe point. A charger changes CSMS only when no transaction is open on the CSMS it
talks to, so a transaction ends on the CSMS that started it and the two CSMSs never both
own one:

- at connection (:meth:`GatewayFleet.place`): the table decides a route; if the *other*
  route still has an open transaction, the charger stays there (pinned) and the move is
  recorded as pending; else it goes where decided, and the station's RouteState says so.
  Open on legacy: the stored ``RouteState.legacy_transactions`` is not empty. Open on
  translate: ``open_transactions`` is not empty, or the outbox still holds a message of
  a transaction (a TransactionEvent Ended not yet delivered: that transaction has not
  ended on the 2.0.1 CSMS yet);
- a table change (:meth:`set_route`, :meth:`clear_route`, :meth:`set_wave`): every
  connected charger whose decision changed is closed at once with 1012 (RFC 6455:
  service restart) and reason "moved to route X", if it is at a safe point; it
  reconnects and is placed on its new route. Otherwise the move waits: after each frame
  the gateway sends the charger (the answer to a StopTransaction comes after the
  transaction's end was stored) and once a second, the charger's current route is asked
  again, and it is closed as soon as nothing is open there.

  A safe point is also between two of the charger's exchanges: no CALL of the charger
  awaits its answer (one unanswered for CALL_ANSWER_LIMIT seconds is given up), and
  none arrived while the store was read. The legacy relay counts a StartTransaction
  awaiting its answer as open. Once a charger is found idle its link is held in the same
  step (:class:`MovableLink`: later frames are not read into the session; the charger
  sends them again after it reconnected, to its new route), then closed.

A shadow-only change (same route, shadow on or off) reconnects the charger at the same
safe points, without counting a move. Native 2.0.1 chargers are never moved.

Replicas. The rules live in the state store (compare-and-set, retried on conflict); a
replica reads them again at every charger connection, so another replica's change
reaches a charger at its next connection there. A change does not move the chargers
connected to other replicas until they reconnect (there is no pub/sub between replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import Gauge

from gateway.admin.fleet import ChargerInfo, RouteChange
from gateway.metrics import GatewayMetrics
from gateway.ocppj import Payload, Version
from gateway.routing import (
    Decision,
    Route,
    RouteRule,
    RoutingTable,
    document_from_rules,
    rules_from_document,
)
from gateway.session.links import ChargerLink, FrameObserver, Side, TraceEvent
from gateway.state import RouteState, StateError, Store

log = logging.getLogger(__name__)

PASSTHROUGH: Final = "passthrough"  # the route of a native 2.0.1 charger
MOVED_CODE: Final = 1012  # RFC 6455 §7.4.1 "service restart": the charger reconnects
TRACE_QUEUE_SIZE: Final = 1000  # frames a slow trace reader may fall behind by
RECHECK_INTERVAL: Final = 1.0  # seconds between safe-point checks of a pending move
DOCUMENT_ATTEMPTS: Final = 5  # compare-and-set tries of a routing document change
CALL_ANSWER_LIMIT: Final = 120.0  # seconds after which an unanswered CALL is given up
_MAX_CALLS_TRACKED: Final = 32  # OCPP-J allows one CALL at a time; a margin for misuse
# The type and message id at the start of an OCPP-J frame (no full parse per frame).
_FRAME_HEAD: Final = re.compile(r'\s*\[\s*([234])\s*,\s*"([^"\\]*)"')


async def _never_idle(_reason: str, _moving: Callable[[], None]) -> bool:
    return False


@dataclass(eq=False, slots=True, kw_only=True)
class ConnectedCharger:
    """One connected charger, as the fleet sees it."""

    station_id: str
    protocol: Version
    route: str  # "translate" | "legacy" | "passthrough"
    shadow: bool = False
    rule: str = ""
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    connected_since: float = field(default_factory=time.time)
    last_message_at: float | None = None
    # The charger's CALLs not answered yet (message id -> monotonic time received) and
    # how many it sent: a charger is moved only between two of its exchanges.
    calls_in_flight: dict[str, float] = field(default_factory=dict)
    calls_seen: int = 0
    # Close the charger for a move if it is at a safe point (``reason``: the close
    # reason; ``moving()`` is called once it is decided, before the close); False,
    # changing nothing, when a transaction is open on its route.
    close_if_idle: Callable[[str, Callable[[], None]], Awaitable[bool]] = _never_idle
    pending: Decision | None = None  # a move waiting for its safe point
    closing: bool = False  # closed for a move: reconnecting onto its new route
    # Set after each frame to the charger while a move is pending (made only then: an
    # asyncio.Event costs most of a KiB, and most chargers never wait for a move).
    activity: asyncio.Event | None = None
    mover: asyncio.Task[None] | None = None

    def call_received(self, unique_id: str) -> None:
        self.calls_seen += 1
        self.calls_in_flight[unique_id] = time.monotonic()
        if len(self.calls_in_flight) > _MAX_CALLS_TRACKED:
            del self.calls_in_flight[next(iter(self.calls_in_flight))]

    def calls_waiting(self) -> bool:
        """A CALL of the charger awaits its answer (one unanswered for
        CALL_ANSWER_LIMIT seconds no longer counts: it never will be answered)."""
        limit = time.monotonic() - CALL_ANSWER_LIMIT
        return any(received > limit for received in self.calls_in_flight.values())

    def info(self) -> ChargerInfo:
        return ChargerInfo(
            station_id=self.station_id,
            protocol=self.protocol.value,
            route=self.route,
            shadow=self.shadow,
            vendor=self.vendor,
            model=self.model,
            firmware=self.firmware,
            connected_since=self.connected_since,
            last_message_at=self.last_message_at,
            pending_route=None if self.pending is None else self.pending.route.value,
        )


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a connecting 1.6 charger goes, and why."""

    route: Route
    shadow: bool
    rule: str
    pending: Decision | None  # pinned: the decided move, waiting for the safe point
    legacy_transactions: tuple[int, ...]  # open on the legacy CSMS (for its relay)
    boot: Payload  # its last BootNotification known ({}: none)


class GatewayFleet:
    """Implements :class:`gateway.admin.fleet.Fleet` for one gateway process."""

    def __init__(
        self,
        *,
        store: Store,
        metrics: GatewayMetrics,
        config_rules: tuple[RouteRule, ...],
        default_route: Route,
        legacy_available: bool,
        observer: FrameObserver | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._config = RoutingTable(rules=config_rules, default=default_route)
        self._legacy_available = legacy_available
        self._observer = observer
        self._stored: tuple[RouteRule, ...] = ()
        self._version = 0  # of the stored routing document (0: none stored)
        self._table = self._config
        self._document_lock = asyncio.Lock()
        self._connected: dict[str, ConnectedCharger] = {}
        self._traces: dict[str, weakref.WeakSet[asyncio.Queue[TraceEvent]]] = {}
        # Boots seen by this process, by station: the decision's vendor and model for a
        # charger whose boot the store does not keep (the legacy route stores none).
        self._boots: dict[str, Payload] = {}

    # --- the routing table ------------------------------------------------------------

    async def load(self) -> None:
        """Read the stored rules (start-up). StateError when the store cannot be read or
        the stored document is unreadable: routing without it would move chargers."""
        current = await self._store.get_routing_document()
        if current is None:
            return
        text, version = current
        try:
            stored = rules_from_document(text)
        except ValueError as exc:
            raise StateError(f"cannot use the stored routing rules: {exc}") from None
        self._use(stored, version)
        log.info(
            "routing: %d rule(s) from the config file, %d stored by the admin API (version "
            "%d), default route %s",
            len(self._config.rules),
            len(stored),
            version,
            self._table.default,
        )

    async def refresh(self) -> None:
        """Read the stored rules again (another replica may have changed them); keep the
        table in force when the store cannot be read or the document is unreadable."""
        try:
            current = await self._store.get_routing_document()
        except StateError as exc:
            log.warning("cannot read the stored routing rules, keeping those in force: %s", exc)
            return
        text, version = current if current is not None else ("", 0)
        if version == self._version:
            return
        try:
            stored = rules_from_document(text) if current is not None else ()
        except ValueError as exc:
            log.error("ignoring the stored routing rules (version %d): %s", version, exc)
            return
        log.info("routing rules changed elsewhere: version %d -> %d", self._version, version)
        self._use(stored, version)

    def _use(self, stored: tuple[RouteRule, ...], version: int) -> None:
        self._stored, self._version = stored, version
        self._table = self._config.merged(stored)

    def rules(self) -> tuple[tuple[RouteRule, ...], Route]:
        return self._table.rules, self._table.default

    async def _change(self, edit: Callable[[RoutingTable], RoutingTable]) -> None:
        """Apply ``edit`` to the stored rules, compare-and-set, retried on conflict."""
        async with self._document_lock:
            for _ in range(DOCUMENT_ATTEMPTS):
                current = await self._store.get_routing_document()
                text, version = current if current is not None else ("", 0)
                try:
                    stored = rules_from_document(text) if current is not None else ()
                except ValueError as exc:
                    raise StateError(f"cannot change the stored routing rules: {exc}") from None
                base = RoutingTable(rules=stored, default=self._config.default)
                changed = edit(base).rules
                written = await self._store.put_routing_document(
                    document_from_rules(changed), version
                )
                if written is not None:
                    self._use(changed, written)
                    return
                log.info("the routing rules changed concurrently; trying again")
            raise StateError(
                f"the routing rules kept changing concurrently ({DOCUMENT_ATTEMPTS} tries)"
            )

    def _check_available(self, route: Route, shadow: bool) -> None:
        if self._legacy_available:
            return
        if route is Route.LEGACY:
            raise ValueError("route legacy needs legacy_upstream (--legacy-upstream)")
        if shadow:
            raise ValueError("shadow of a translated charger needs legacy_upstream")

    # --- Fleet ------------------------------------------------------------------------

    def chargers(self) -> list[ChargerInfo]:
        return [self._connected[key].info() for key in sorted(self._connected)]

    async def set_route(self, station_id: str, route: Route, *, shadow: bool) -> RouteChange:
        route = Route(route)
        self._check_available(route, shadow)
        await self._change(lambda table: table.with_charger_rule(station_id, route, shadow))
        log.info("route of station %s set to %s%s", station_id, route, " (shadow)" * shadow)
        applied = await self._reconsider(station_id)
        return RouteChange(station_id, route, shadow, applied)

    async def clear_route(self, station_id: str) -> RouteChange:
        await self._change(lambda table: table.without_charger_rule(station_id))
        charger = self._connected.get(station_id)
        vendor, model = (charger.vendor, charger.model) if charger else self._known(station_id)
        decision = self._table.decide(station_id, vendor=vendor, model=model)
        log.info("route rule of station %s cleared: %s decides", station_id, decision.rule)
        applied = await self._reconsider(station_id)
        return RouteChange(station_id, decision.route, decision.shadow, applied)

    async def set_wave(self, name: str, percent: float, route: Route, *, shadow: bool) -> int:
        route = Route(route)
        self._check_available(route, shadow)
        await self._change(lambda table: table.with_wave(name, percent, route, shadow))
        log.info(
            "wave %s: %g%% of the chargers to %s%s", name, percent, route, " (shadow)" * shadow
        )
        applied = await asyncio.gather(*(self._reconsider(key) for key in list(self._connected)))
        return sum(1 for outcome in applied if outcome in ("now", "after_transaction"))

    def trace(self, station_id: str) -> AsyncIterator[TraceEvent]:
        """Subscribed from this call on (not from the first iteration); unsubscribed
        when the iterator is closed or dropped."""
        queue: asyncio.Queue[TraceEvent] = asyncio.Queue(TRACE_QUEUE_SIZE)
        self._traces.setdefault(station_id, weakref.WeakSet()).add(queue)
        return self._follow(station_id, queue)

    async def _follow(
        self, station_id: str, queue: asyncio.Queue[TraceEvent]
    ) -> AsyncIterator[TraceEvent]:
        try:
            while True:
                yield await queue.get()
        finally:
            subscribers = self._traces.get(station_id)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._traces[station_id]

    # --- placing a connecting charger -------------------------------------------------

    def _known(self, station_id: str) -> tuple[str | None, str | None]:
        boot = self._boots.get(station_id, {})
        return boot.get("chargePointVendor"), boot.get("chargePointModel")

    async def place(self, station_id: str, store: Store) -> Placement:
        """Decide a connecting 1.6 charger's route and take the safe point (module
        docstring); store its RouteState unless pinned. StateError: the store failed."""
        boot: Payload = self._boots.get(station_id, {})
        if not self._legacy_available:
            # No legacy CSMS, no routing: every 1.6 charger is translated, and the store
            # is not asked (a reconnect storm of 10,000 chargers would pay three reads
            # and a durable write each for nothing). Transactions left open on a legacy
            # CSMS that was configured before are not looked for.
            return Placement(Route.TRANSLATE, False, "default", None, (), boot)
        await self.refresh()
        if not boot:
            record = await store.get_station(station_id)
            boot = dict(record.boot) if record is not None else {}
        decision = self._table.decide(
            station_id, vendor=boot.get("chargePointVendor"), model=boot.get("chargePointModel")
        )
        if decision.route is Route.LEGACY and not self._legacy_available:
            log.warning(
                "station %s: rule %s routes it to legacy, but no legacy_upstream is set: "
                "translating it",
                station_id,
                decision.rule,
            )
            decision = Decision(Route.TRANSLATE, False, decision.rule)
        state = await store.get_route_state(station_id)
        legacy_open = state.legacy_transactions if state is not None else ()
        pinned: Route | None = None
        if decision.route is Route.TRANSLATE and legacy_open:
            if self._legacy_available:
                pinned = Route.LEGACY
            else:
                log.warning(
                    "station %s: transaction(s) %s are still open on the legacy CSMS, but "
                    "no legacy_upstream is set: they are abandoned there",
                    station_id,
                    ", ".join(map(str, legacy_open)),
                )
                legacy_open = ()
        elif decision.route is Route.LEGACY and await translated_busy(store, station_id):
            pinned = Route.TRANSLATE
        if pinned is not None:
            log.info(
                "station %s: route %s pinned by a transaction still open there; it moves to "
                "%s (rule %s) once that ends",
                station_id,
                pinned,
                decision.route,
                decision.rule,
            )
            return Placement(pinned, False, decision.rule, decision, legacy_open, boot)
        log.info(
            "station %s: route %s%s (rule %s)",
            station_id,
            decision.route,
            " with shadow" if decision.shadow else "",
            decision.rule,
        )
        kept = legacy_open if decision.route is Route.LEGACY else ()
        new_state = RouteState(station_id, decision.route.value, kept)
        if state != new_state:
            await store.put_route_state(new_state)
        return Placement(decision.route, decision.shadow, decision.rule, None, kept, boot)

    # --- connected chargers -----------------------------------------------------------

    def register(self, charger: ConnectedCharger) -> None:
        self._connected[charger.station_id] = charger
        if charger.protocol is Version.V16:
            self._gauge(charger).inc()
        if charger.pending is not None:
            charger.mover = asyncio.create_task(self._move_when_idle(charger))

    def unregister(self, charger: ConnectedCharger) -> None:
        if self._connected.get(charger.station_id) is charger:
            del self._connected[charger.station_id]
        if charger.protocol is Version.V16:
            self._gauge(charger).dec()
        if charger.mover is not None:
            charger.mover.cancel()

    def _gauge(self, charger: ConnectedCharger) -> Gauge:
        return self._metrics.chargers_by_route.labels(
            charger.route, "true" if charger.shadow else "false"
        )

    def observer_for(
        self, charger: ConnectedCharger, mirror: FrameObserver | None = None
    ) -> FrameObserver:
        """The frame observer of the charger's session: its connection facts, the
        gateway's own observer, the shadow mirror (charger-side frames), live traces."""
        outer = self._observer
        traces = self._traces
        station_id = charger.station_id

        def observe(event: TraceEvent) -> None:
            if event.side is Side.CHARGER:
                head = _FRAME_HEAD.match(event.text)
                if event.direction == "in":
                    charger.last_message_at = time.time()
                    if head is not None and head[1] == "2":
                        charger.call_received(head[2])
                        if '"BootNotification"' in event.text:
                            self._learn_boot(charger, event.text)
                else:
                    if head is not None and head[1] != "2":
                        charger.calls_in_flight.pop(head[2], None)
                    if charger.pending is not None and charger.activity is not None:
                        charger.activity.set()  # an answer went out: a safe point?
                if mirror is not None:
                    mirror(event)
            if outer is not None:
                outer(event)
            subscribers = traces.get(station_id)
            if subscribers:
                for queue in list(subscribers):
                    if queue.full():
                        queue.get_nowait()  # the slow reader loses the oldest frame
                    queue.put_nowait(event)

        return observe

    def _learn_boot(self, charger: ConnectedCharger, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            return
        if not (
            isinstance(frame, list)
            and len(frame) == 4
            and frame[0] == 2
            and frame[2] == "BootNotification"
            and isinstance(frame[3], dict)
        ):
            return
        payload: Payload = frame[3]
        if charger.protocol is Version.V16:
            charger.vendor = _text(payload.get("chargePointVendor"))
            charger.model = _text(payload.get("chargePointModel"))
            charger.firmware = _text(payload.get("firmwareVersion"))
            self._boots[charger.station_id] = payload
        else:
            station = payload.get("chargingStation")
            if isinstance(station, dict):
                charger.vendor = _text(station.get("vendorName"))
                charger.model = _text(station.get("model"))
                charger.firmware = _text(station.get("firmwareVersion"))

    # --- moves ------------------------------------------------------------------------

    async def _reconsider(self, station_id: str) -> str:
        """Apply the table to a connected charger: RouteChange.applied."""
        charger = self._connected.get(station_id)
        if charger is None:
            return "not_connected"
        if charger.protocol is not Version.V16:
            return "unchanged"  # native 2.0.1 chargers always pass through
        if charger.closing:
            return "now"
        decision = self._table.decide(station_id, vendor=charger.vendor, model=charger.model)
        if decision.route is Route.LEGACY and not self._legacy_available:
            decision = Decision(Route.TRANSLATE, False, decision.rule)
        if decision.route == charger.route and decision.shadow == charger.shadow:
            if charger.pending is not None:
                log.info("station %s: pending move cancelled, it stays on %s", *_ids(charger))
                charger.pending = None
                if charger.mover is not None:
                    charger.mover.cancel()
                    charger.mover = None
            return "unchanged"
        charger.pending = decision
        if charger.mover is not None and not charger.mover.done():
            return "after_transaction"  # the running mover moves it to the new decision
        if await self._move_if_idle(charger, "now"):
            return "now"
        log.info(
            "station %s: a transaction is open on route %s; it moves to %s when it ends",
            *_ids(charger),
            decision.route,
        )
        charger.mover = asyncio.create_task(self._move_when_idle(charger))
        return "after_transaction"

    async def _move_if_idle(self, charger: ConnectedCharger, when: str) -> bool:
        decision = charger.pending
        if decision is None:
            return False

        def moving() -> None:
            charger.closing = True
            if decision.route != charger.route:
                self._metrics.route_moves.labels(decision.route.value, when).inc()
            log.info(
                "station %s moves from route %s to %s (rule %s, %s): closing it with %d, "
                "it reconnects",
                charger.station_id,
                charger.route,
                decision.route,
                decision.rule,
                when.replace("_", " "),
                MOVED_CODE,
            )

        try:
            return await charger.close_if_idle(f"moved to route {decision.route}", moving)
        except StateError as exc:
            log.warning(
                "station %s: cannot check for open transactions: %s", charger.station_id, exc
            )
            return False

    async def _move_when_idle(self, charger: ConnectedCharger) -> None:
        """Close the charger for its pending move at the first safe point."""
        activity = charger.activity = charger.activity or asyncio.Event()
        while charger.pending is not None and not charger.closing:
            activity.clear()
            if await self._move_if_idle(charger, "after_transaction"):
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECHECK_INTERVAL):  # not wait_for: see calls.py
                    await activity.wait()


class MovableLink:
    """A 1.6 charger's link, which the gateway can hold when it moves the charger: from
    then on the charger's frames are no longer read into the session (the charger gets
    no answer and sends them again after it reconnected, to its new route)."""

    def __init__(self, link: ChargerLink) -> None:
        self._link = link
        self.station_id = link.station_id
        self.protocol = link.protocol
        self._held = False

    def hold(self) -> None:
        self._held = True

    async def frames(self) -> AsyncIterator[str]:
        async for text in self._link.frames():
            if self._held:
                log.info("not reading a frame of a charger being moved: %.80s", text)
                continue
            yield text

    async def send(self, text: str) -> None:
        await self._link.send(text)

    async def close(self, code: int, reason: str) -> None:
        await self._link.close(code, reason)


def idle_closer(
    charger: ConnectedCharger, link: MovableLink, busy: Callable[[], Awaitable[bool]]
) -> Callable[[str, Callable[[], None]], Awaitable[bool]]:
    """``ConnectedCharger.close_if_idle`` for a charger whose route has a transaction
    open while ``busy()``: between two of the charger's exchanges, with nothing open
    (checked again if the charger sent anything while ``busy()`` read the store), the
    link is held at once and closed with 1012."""

    async def close_if_idle(reason: str, moving: Callable[[], None]) -> bool:
        if charger.closing:
            return True
        if charger.calls_waiting():
            return False
        seen = charger.calls_seen
        if await busy() or charger.calls_seen != seen or charger.calls_waiting():
            return False
        if charger.closing:  # a concurrent change closed it meanwhile
            return True
        link.hold()
        moving()
        await link.close(MOVED_CODE, reason)
        return True

    return close_if_idle


async def translated_busy(store: Store, station_id: str) -> bool:
    """A transaction is open on the translate route: not ended, or its end (or another
    of its messages) is still in the outbox, not yet delivered to the 2.0.1 CSMS."""
    if await store.open_transactions(station_id):
        return True
    return any(m.transaction_id is not None for m in await store.pending_outbox(station_id))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _ids(charger: ConnectedCharger) -> tuple[str, str]:
    return charger.station_id, charger.route
