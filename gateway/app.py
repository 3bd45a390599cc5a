"""Composition root: builds the store, tables, metrics and servers, and runs sessions.

Layer: top (imports every other layer; nothing imports it but cli and demo).

One session per connected charger. A second connection with the same identity replaces
the first: the old session's upstream link is closed *before* the new one opens (real
CSMSs misroute when two connections carry one station id), then the old charger
connection is closed, as a charger reconnecting after a half-open TCP connection expects.

Routing (issue 9, ``gateway.fleet``): a 1.6 charger is translated to the 2.0.1 CSMS or
passed through untouched to the legacy 1.6 CSMS (``legacy_upstream``), as the routing
table decides at its connection, unless a transaction still open on the other route
pins it there until that ends; native 2.0.1 chargers always pass through. The table
(the config file's rules merged with the admin API's, kept in the store) and the moves
between routes are :class:`~gateway.fleet.GatewayFleet`'s, which the admin API drives.

Shutdown (SIGTERM, :meth:`Gateway.stop`) drains within ``shutdown_grace`` seconds: new
chargers are refused with HTTP 503 and ``/readyz`` fails at once; every station's outbox
gets up to half the grace to reach the CSMS (through a reconnect too); then the chargers
are closed with 1001 (going away) so they reconnect to another replica. What is still
undelivered stays in the store and goes up on the station's next connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from gateway.admin.api import admin_api
from gateway.config import Settings, masked_url
from gateway.fleet import (
    PASSTHROUGH,
    ConnectedCharger,
    GatewayFleet,
    MovableLink,
    Placement,
    idle_closer,
    translated_busy,
)
from gateway.lean import LeanEvent
from gateway.mappings import load_tables
from gateway.metrics import GatewayMetrics
from gateway.ocppj import Version
from gateway.ops_http import OpsServer
from gateway.routing import Route
from gateway.session.bridge import SessionSettings, TranslatingSession
from gateway.session.credentials import rotate_authorization_key
from gateway.session.legacy import LegacySession
from gateway.session.links import ChargerLink, CsmsLink, FrameObserver
from gateway.session.ownership import FencedStore, Lease, LeaseKeeper
from gateway.session.passthrough import PassThroughSession
from gateway.session.shadow import ShadowMirror
from gateway.state import InstrumentedStore, StateError, Store, open_store
from gateway.translate.layout import EvseLayout
from gateway.translate.tables import TranslationTables
from gateway.transport.charger_auth import BASIC_AUTH_PROFILES, ChargerAuthenticator
from gateway.transport.server import ChargerServer, WebsocketChargerLink, server_tls_context
from gateway.transport.upstream import Backoff, UpstreamLink
from gateway.transport.upstream_security import UpstreamSecurity, UpstreamSecurityFactory

log = logging.getLogger(__name__)

REPLACED = (1000, "replaced by a newer connection")
TRY_AGAIN_LATER = (1013, "gateway state unavailable")  # RFC 6455: try again later
OWNED_ELSEWHERE = (1000, "replaced by a newer connection to another gateway replica")
SHARED_STATE_SCHEMES = ("redis://", "rediss://")
ENDED_TRANSACTION_RETENTION = 30 * 24 * 3600.0  # seconds an ended transaction is remembered
# Share of shutdown_grace the outboxes get to drain; the rest is for closing the chargers.
DRAIN_SHARE = 0.5


# File descriptors kept for the store, the ops server, logs and the listener itself.
_RESERVED_FILES = 64


def _connections_the_file_limit_allows() -> int:
    """``max_connections`` 0: as many chargers as open files allow, two sockets each.
    The soft limit is raised to the hard one first, as most servers do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return 0  # no limit to respect
    return max(1, (soft - _RESERVED_FILES) // 2)


Session = TranslatingSession | PassThroughSession  # LegacySession is a PassThroughSession


@dataclass(slots=True)
class _Running:
    link: WebsocketChargerLink
    upstream: UpstreamLink
    session: Session
    charger: ConnectedCharger
    mirror: ShadowMirror | None = None
    done: LeanEvent = field(default_factory=LeanEvent)


class _DrainingChargerServer(ChargerServer):
    """The charger server, refusing new handshakes with HTTP 503 once the gateway drains
    (a load balancer or the charger then tries another replica, or again later)."""

    draining = False

    async def _check_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if self.draining:
            self._metrics.handshakes.labels("refused_draining").inc()
            log.info("refused a charger: the gateway is shutting down")
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "The gateway is shutting down; connect again.\n"
            )
        return await super()._check_request(connection, request)


class Gateway:
    def __init__(
        self,
        settings: Settings,
        *,
        metrics: GatewayMetrics | None = None,
        store: Store | None = None,
        tables: TranslationTables | None = None,
        observer: FrameObserver | None = None,
    ) -> None:
        self.settings = settings
        self.upstream_url = settings.require_upstream()
        self.metrics = metrics or GatewayMetrics()
        self.store: Store = InstrumentedStore(
            store or open_store(settings.state), self.metrics.store_duration
        )
        self._tables = tables
        self._observer = observer
        self._sessions: dict[str, _Running] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._draining = False
        host, port = settings.listen_host_port()
        self.authenticator = ChargerAuthenticator(settings, self.store)
        tls = None
        if settings.tls_cert is not None and settings.tls_key is not None:
            tls = server_tls_context(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
        self._chargers = _DrainingChargerServer(
            host=host,
            port=port,
            metrics=self.metrics,
            on_charger=self._serve_charger,
            max_frame_bytes=settings.max_frame_bytes,
            ping_interval=settings.ping_interval,
            authenticator=self.authenticator,
            tls=tls,
            max_connections=settings.max_connections or _connections_the_file_limit_allows(),
            max_connections_per_address=settings.max_connections_per_address,
            handshake_timeout=settings.handshake_timeout,
            max_message_rate=settings.max_message_rate,
            message_burst=settings.message_burst,
        )
        self._ops: OpsServer | None = None
        # Reads the upstream certificates now: a bad file fails start-up, not a station.
        self._upstream_security = UpstreamSecurityFactory(settings)
        self._session_settings = SessionSettings(
            response_timeout=settings.response_timeout,
            upstream_wait=settings.upstream_wait,
            max_queued_calls=settings.max_queued_calls,
            validate_inbound=settings.validate_inbound,
            validate_outbound=settings.validate_outbound,
            offline_mode=settings.offline_mode,
            offline_grace=settings.offline_grace,
            offline_authorization=settings.offline_authorization,
            immediate_reset=settings.immediate_reset.capitalize(),
            max_frame_bytes=settings.max_frame_bytes,
        )
        self._pruning: asyncio.Task[None] | None = None
        # One owner per station across replicas: only a shared store has other replicas.
        self._leases: LeaseKeeper | None = None
        if settings.state.startswith(SHARED_STATE_SCHEMES):
            self._leases = LeaseKeeper(
                self.store,
                owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
                ttl=settings.lease_ttl,
                metrics=self.metrics,
            )
        self._renewing: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        #: The routing table, the connected chargers, moves and traces (the admin API's
        #: :class:`gateway.admin.fleet.Fleet`).
        self.fleet = GatewayFleet(
            store=self.store,
            metrics=self.metrics,
            config_rules=settings.routes,
            default_route=Route(settings.default_route),
            legacy_available=settings.legacy_upstream is not None,
            observer=observer,
        )

    # --- lifecycle ------------------------------------------------------------------

    @property
    def charger_port(self) -> int:
        return self._chargers.port

    @property
    def ops_port(self) -> int | None:
        return self._ops.port if self._ops else None

    @property
    def connected_stations(self) -> frozenset[str]:
        return frozenset(self._sessions)

    async def start(self) -> None:
        if self._tables is None:
            directory = Path(self.settings.mappings) if self.settings.mappings else None
            self._tables = load_tables(directory)
        await self.store.open()
        await self.fleet.load()
        self._pruning = asyncio.create_task(self._prune_ended_transactions())
        if self._leases is not None:
            self._renewing = asyncio.create_task(self._leases.run())
        ops = self.settings.metrics_host_port()
        if ops is not None:
            self._ops = OpsServer(
                host=ops[0],
                port=ops[1],
                registry=self.metrics.registry,
                readiness=self.ready,
                admin=admin_api(self.fleet, self.settings.admin_token),
            )
            await self._ops.start()
        profile = await self.authenticator.resolve_default_profile()
        await self._chargers.start()
        if profile == 0:
            log.warning(
                "charger authentication is off (security profile 0): any charger that "
                "knows the URL is accepted; see docs/security.md"
            )
        log.info(
            "listening for chargers on port %d (%s, security profile %d by default), upstream %s",
            self.charger_port,
            "wss" if self.settings.tls else "ws",
            profile,
            self.upstream_url,
        )
        if self.settings.legacy_upstream is not None:
            log.info(
                "legacy upstream %s; default route %s",
                masked_url(self.settings.legacy_upstream),
                self.settings.default_route,
            )

    async def wait_until_gone(self, station_id: str) -> None:
        """Return once the station's current connection here (if any) has ended."""
        running = self._sessions.get(station_id)
        if running is not None:
            await running.done.wait()

    async def ready(self) -> tuple[bool, str]:
        """/readyz: the store answers and the gateway is not draining."""
        if self._draining:
            return False, "draining"
        try:
            await self.store.ping()
        except StateError as exc:
            return False, f"state store unreachable: {exc}"
        return True, f"{len(self._sessions)} chargers connected"

    async def stop(self) -> None:
        """Drain within ``shutdown_grace``: refuse new chargers (HTTP 503, /readyz fails),
        let the outboxes reach the CSMS, close chargers with 1001 so they reconnect
        elsewhere, flush state."""
        if self._draining:
            return
        self._draining = True
        self._chargers.draining = True
        grace = self.settings.shutdown_grace
        deadline = asyncio.get_running_loop().time() + grace
        await self._drain_outboxes(grace * DRAIN_SHARE)
        try:
            async with asyncio.timeout_at(deadline):  # not wait_for: see session/calls.py
                await self._chargers.close()
        except TimeoutError:
            log.warning("chargers still open after %.1f s; exiting anyway", grace)
        if self._ops is not None:
            await self._ops.stop()
        for task in (self._pruning, self._renewing):
            if task is not None:
                task.cancel()
        await self.store.close()

    async def _drain_outboxes(self, within: float) -> None:
        """Give every connected station's outbox up to ``within`` seconds to be delivered."""
        sessions = [
            running.session
            for running in self._sessions.values()
            if isinstance(running.session, TranslatingSession)
        ]
        if not sessions or within <= 0:
            return
        log.info("shutting down: delivering the outboxes of %d station(s)", len(sessions))
        drained = await asyncio.gather(*(session.drain(within) for session in sessions))
        if left := drained.count(False):
            log.warning(
                "%d station(s) still have undelivered messages after %.1f s: they stay "
                "stored and go to the CSMS on the station's next connection",
                left,
                within,
            )

    async def _prune_ended_transactions(self) -> None:
        """Ended transactions are kept so late or re-sent messages are recognised, for a
        while; then forgotten so the store does not grow without bound."""
        while True:
            try:
                pruned = await self.store.prune(time.time() - ENDED_TRANSACTION_RETENTION)
            except StateError:
                log.exception("cannot prune ended transactions")
            else:
                if pruned:
                    log.info("forgot %d transactions ended over 30 days ago", pruned)
            await asyncio.sleep(3600)

    # --- sessions -------------------------------------------------------------------

    async def _serve_charger(self, link: WebsocketChargerLink) -> None:
        station_id = link.station_id
        lock = self._locks.setdefault(station_id, asyncio.Lock())
        async with lock:
            previous = self._sessions.get(station_id)
            if previous is not None:
                await self._replace(previous)
            try:
                lease = await self._take_lease(link)
            except StateError:
                log.exception("cannot take the station's lease; refusing the charger for now")
                await link.close(*TRY_AGAIN_LATER)
                return
            store = self.store
            if lease is not None:
                assert self._leases is not None
                store = FencedStore(self.store, self._leases, lease)
            try:
                running = await self._start(link, store)
            except StateError:
                log.exception("cannot read the station's route; refusing the charger for now")
                if lease is not None and self._leases is not None:
                    await self._leases.release(lease)
                await link.close(*TRY_AGAIN_LATER)
                return
            if lease is not None:
                lease.on_lost = lambda _why: self._owned_elsewhere(running)
            self._sessions[station_id] = running
            self.fleet.register(running.charger)
        mirroring = (
            asyncio.create_task(running.mirror.run()) if running.mirror is not None else None
        )
        try:
            await running.session.run()
        finally:
            self.fleet.unregister(running.charger)
            if running.mirror is not None and mirroring is not None:
                await running.mirror.close()
                mirroring.cancel()
                await asyncio.gather(mirroring, return_exceptions=True)
            if lease is not None and self._leases is not None:
                await self._leases.release(lease)
            if self._sessions.get(station_id) is running:
                del self._sessions[station_id]
            running.done.set()

    async def _start(self, link: WebsocketChargerLink, store: Store) -> _Running:
        """The charger's route, upstream link and session. StateError: the store could
        not tell the route (the charger is refused, to reconnect later)."""
        station_id = link.station_id
        if link.protocol is Version.V201:
            charger = ConnectedCharger(
                station_id=station_id, protocol=link.protocol, route=PASSTHROUGH
            )
            upstream = self._upstream(station_id, self.upstream_url, Version.V201)
            session: Session = PassThroughSession(
                charger=link,
                csms=upstream,
                metrics=self.metrics,
                upstream_wait=self.settings.upstream_wait,
                observer=self.fleet.observer_for(charger),
                validate_inbound=self.settings.validate_inbound,
            )
            return _Running(link, upstream, session, charger)
        placement = await self.fleet.place(station_id, store)
        boot = placement.boot
        charger = ConnectedCharger(
            station_id=station_id,
            protocol=link.protocol,
            route=placement.route.value,
            shadow=placement.shadow,
            rule=placement.rule,
            vendor=_text(boot.get("chargePointVendor")),
            model=_text(boot.get("chargePointModel")),
            firmware=_text(boot.get("firmwareVersion")),
            pending=placement.pending,
        )
        mirror = self._mirror(station_id, placement) if placement.shadow else None
        observer = self.fleet.observer_for(charger, mirror.observe if mirror else None)
        movable = MovableLink(link)
        if placement.route is Route.LEGACY:
            assert self.settings.legacy_upstream is not None, "placed on legacy only with one"
            upstream = self._upstream(
                station_id,
                self.settings.legacy_upstream,
                Version.V16,
                # Passed through untouched: the legacy CSMS checks the charger's own
                # credentials, as it did before the gateway stood in between.
                security=UpstreamSecurity(
                    headers=(("Authorization", link.authorization),) if link.authorization else ()
                ),
            )
            legacy = LegacySession(
                charger=movable,
                csms=upstream,
                store=store,
                metrics=self.metrics,
                upstream_wait=self.settings.upstream_wait,
                observer=observer,
                validate_inbound=self.settings.validate_inbound,
                transactions=placement.legacy_transactions,
            )

            async def legacy_busy() -> bool:
                return legacy.busy

            charger.close_if_idle = idle_closer(charger, movable, legacy_busy)
            return _Running(link, upstream, legacy, charger, mirror)
        upstream = self._upstream(station_id, self.upstream_url, Version.V201, reconnect=True)

        async def translated() -> bool:
            return await translated_busy(store, station_id)

        charger.close_if_idle = idle_closer(charger, movable, translated)
        session = self._translating(movable, upstream, store, observer)
        return _Running(link, upstream, session, charger, mirror)

    def _upstream(
        self,
        station_id: str,
        url: str,
        version: Version,
        *,
        reconnect: bool = False,
        security: UpstreamSecurity | None = None,
    ) -> UpstreamLink:
        """Translated chargers' links reconnect; a pass-through mirrors the connection
        (2.0.1 Part 4 §6.3): the charger is closed when its CSMS drops it."""
        legacy = version is Version.V16
        return UpstreamLink(
            url=url,
            station_id=station_id,
            metrics=self.metrics,
            reconnect=reconnect,
            backoff=Backoff(self.settings.backoff_initial, self.settings.backoff_max),
            max_frame_bytes=self.settings.max_frame_bytes,
            ping_interval=self.settings.ping_interval,
            # The configured upstream credentials are the 2.0.1 CSMS's.
            security=security
            or (UpstreamSecurity() if legacy else self._upstream_security.for_station(station_id)),
            subprotocol=version,
        )

    def _mirror(self, station_id: str, placement: Placement) -> ShadowMirror | None:
        """Shadow mode: the charger's traffic mirrored, read-only, to the other CSMS."""
        assert self._tables is not None, "start() loads the tables"
        legacy_url = self.settings.legacy_upstream
        if legacy_url is None:
            return None  # the config and the admin API refuse shadow without it
        layout = self.settings.layout_for(station_id)

        def connect(station: str, version: Version) -> CsmsLink:
            url = self.upstream_url if version is Version.V201 else legacy_url
            return self._upstream(station, url, version, reconnect=True)

        return ShadowMirror(
            station_id=station_id,
            primary=placement.route,
            shadow_url=self.upstream_url if placement.route is Route.LEGACY else legacy_url,
            metrics=self.metrics,
            tables=self._tables,
            settings=self._session_settings,
            layout=EvseLayout(layout) if layout else None,
            connect=connect,
        )

    async def _take_lease(self, link: WebsocketChargerLink) -> Lease | None:
        """The station's lease (None: a store without other replicas). StateError when
        the store is unreachable: the charger is refused, to reconnect later."""
        if self._leases is None:
            return None
        return await self._leases.acquire(link.station_id, on_lost=lambda _why: None)

    def _owned_elsewhere(self, running: _Running) -> None:
        """Another replica serves the station's newer connection: close both sockets
        here (the fenced store already refuses this session's writes)."""

        async def close() -> None:
            await running.upstream.close()
            await running.link.close(*OWNED_ELSEWHERE)

        task = asyncio.create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _replace(self, previous: _Running) -> None:
        log.warning(
            "station %s connected again: replacing its previous connection",
            previous.link.station_id,
        )
        self.metrics.replaced.inc()
        await previous.upstream.close()
        await previous.link.close(*REPLACED)
        await previous.done.wait()

    def _password_follower(
        self, station_id: str, store: Store
    ) -> Callable[[str], Awaitable[None]] | None:
        """Where a new AuthorizationKey goes: the stored password, for a charger that
        logs in with one (profiles 1 and 2); nowhere for the others (storing one would
        make `--security-profile auto` demand passwords from every charger)."""
        if self.authenticator.profile_for(station_id) not in BASIC_AUTH_PROFILES:
            return None
        charger = self.settings.charger(station_id)
        configured = charger.password_hash if charger is not None else None

        async def follow(key_hex: str) -> None:
            await rotate_authorization_key(store, station_id, key_hex, configured_hash=configured)

        return follow

    def _translating(
        self,
        link: ChargerLink,
        upstream: UpstreamLink,
        store: Store,
        observer: FrameObserver,
    ) -> TranslatingSession:
        assert self._tables is not None, "start() loads the tables"
        layout = self.settings.layout_for(link.station_id)
        return TranslatingSession(
            on_authorization_key=self._password_follower(link.station_id, store),
            charger=link,
            csms=upstream,
            store=store,
            tables=self._tables,
            metrics=self.metrics,
            settings=self._session_settings,
            layout=EvseLayout(layout) if layout else None,
            observer=observer,
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
