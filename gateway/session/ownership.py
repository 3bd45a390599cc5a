"""One owner per station across replicas: the lease, its renewal, and fenced writes.

Layer: session. DESIGN.md: "one station, one upstream connection, also across
replicas (a lease in the store)". The replica serving a station's newest charger
connection takes the station's lease and a fencing token. Another replica still
holding an older connection (half-open: the charger moved on, the TCP socket has not
noticed) learns it lost the station in one of two ways, whichever comes first:

* its renewal fails (every ``ttl / 3`` seconds), or
* a write it makes is refused: every write of its session goes through
  :class:`FencedStore`, whose commits carry the token, and the store refuses a token
  older than the newest (``StaleLease``), atomically with the write.

Either way it closes both of its sockets for the station and stops writing; the new
owner carries on from the shared store (the outbox, the transactions). A replica that
dies holds its leases until they lapse; the next connection takes them anyway (a new
connection always wins), so a crash never locks a station out.

Leases are one replica-wide task renewing every held lease, not a task per station:
tens of thousands of idle chargers must cost little (DESIGN.md "Performance shape").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.metrics import GatewayMetrics
from gateway.ocppj import Payload
from gateway.state import (
    Change,
    CredentialRecord,
    OutboxMessage,
    RouteState,
    StaleLease,
    StateError,
    StationRecord,
    Store,
    TransactionRecord,
)

log = logging.getLogger(__name__)

_RENEWALS_IN_FLIGHT = 64  # concurrent renewals per round: bounded load on the store


@dataclass(eq=False)
class Lease:
    """This replica's hold on one station; ``lost`` runs once when it is gone."""

    station_id: str
    token: int
    on_lost: Callable[[str], None]
    renewed_at: float = field(default_factory=time.monotonic)
    gone: bool = False

    def lose(self, why: str) -> None:
        if not self.gone:
            self.gone = True
            self.on_lost(why)


class LeaseKeeper:
    """Takes, renews and releases this replica's station leases."""

    def __init__(self, store: Store, *, owner: str, ttl: float, metrics: GatewayMetrics) -> None:
        self._store = store
        self.owner = owner
        self.ttl = ttl
        self._metrics = metrics
        self._held: dict[str, Lease] = {}

    @property
    def held(self) -> int:
        return len(self._held)

    async def acquire(self, station_id: str, on_lost: Callable[[str], None]) -> Lease:
        """Take the station (a new connection always wins); StateError if the store
        cannot be reached, as the session could not work without it anyway."""
        token = await self._store.acquire_lease(station_id, self.owner, self.ttl)
        previous = self._held.get(station_id)
        if previous is not None:  # this replica's older connection: replaced already
            previous.gone = True
        else:
            self._metrics.leases.inc()
        lease = Lease(station_id, token, on_lost)
        self._held[station_id] = lease
        return lease

    async def release(self, lease: Lease) -> None:
        """The connection ended: let the next one (anywhere) take the station at once."""
        if self._held.get(lease.station_id) is lease:
            del self._held[lease.station_id]
            self._metrics.leases.dec()
        if lease.gone:
            return
        lease.gone = True
        try:
            await self._store.release_lease(lease.station_id, self.owner, lease.token)
        except StateError as exc:
            log.warning("could not release the lease of %s: %s", lease.station_id, exc)

    def lost(self, lease: Lease, why: str) -> None:
        """Another replica owns the station now."""
        if self._held.get(lease.station_id) is lease:
            del self._held[lease.station_id]
            self._metrics.leases.dec()
        if not lease.gone:
            log.warning(
                "station %s is owned elsewhere now (%s): closing here", lease.station_id, why
            )
            self._metrics.leases_lost.inc()
            lease.lose(why)

    async def run(self) -> None:
        """Renew every held lease each third of the TTL, for as long as the replica runs."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            await self.renew_all()

    async def renew_all(self) -> None:
        """One round of renewals; a lease someone else took is lost."""
        limit = asyncio.Semaphore(_RENEWALS_IN_FLIGHT)
        leases = list(self._held.values())
        await asyncio.gather(*(self._renew(lease, limit) for lease in leases))

    async def _renew(self, lease: Lease, limit: asyncio.Semaphore) -> None:
        async with limit:
            if lease.gone:
                return
            try:
                renewed = await self._store.renew_lease(
                    lease.station_id, self.owner, lease.token, self.ttl
                )
            except StateError as exc:
                # The store is away: keep serving while the lease may still be ours; past
                # its TTL another replica may have taken the station, so stop.
                if time.monotonic() - lease.renewed_at >= self.ttl:
                    self.lost(lease, f"lease not renewed for {self.ttl:g} s: {exc}")
                return
            if renewed:
                lease.renewed_at = time.monotonic()
            else:
                self.lost(lease, "another replica took the lease")


class FencedStore:
    """One station's view of the store for a session that owns it: every write carries
    the lease's fencing token, so a session that lost the station cannot write over its
    successor (the store refuses it atomically). Reads pass through."""

    def __init__(self, store: Store, keeper: LeaseKeeper, lease: Lease) -> None:
        self._store = store
        self._keeper = keeper
        self._lease = lease

    async def open(self) -> None:  # the app opens and closes the shared store
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        await self._store.ping()

    async def get_station(self, station_id: str) -> StationRecord | None:
        return await self._store.get_station(station_id)

    async def put_station(self, record: StationRecord) -> None:
        await self.commit(record.station_id, Change(station=record))

    async def commit(
        self, station_id: str, change: Change, *, fence: int | None = None
    ) -> tuple[int, ...]:
        """Always fenced with the lease's token (a caller's ``fence`` is not needed)."""
        try:
            return await self._store.commit(station_id, change, fence=self._lease.token)
        except StaleLease:
            self._keeper.lost(self._lease, "a newer owner's fencing token refused a write")
            raise

    async def allocate_legacy_id(self, station_id: str) -> int:
        # Unfenced: an id allocated and never used is harmless (the counter only grows).
        return await self._store.allocate_legacy_id(station_id)

    async def open_transactions(self, station_id: str) -> list[TransactionRecord]:
        return await self._store.open_transactions(station_id)

    async def find_transaction(
        self, station_id: str, *, legacy_id: int | None = None, transaction_id: str | None = None
    ) -> TransactionRecord | None:
        return await self._store.find_transaction(
            station_id, legacy_id=legacy_id, transaction_id=transaction_id
        )

    async def pending_outbox(self, station_id: str) -> list[OutboxMessage]:
        return await self._store.pending_outbox(station_id)

    async def get_authorization(self, station_id: str, id_token: str) -> Payload | None:
        return await self._store.get_authorization(station_id, id_token)

    async def prune(self, ended_before: float) -> int:
        return await self._store.prune(ended_before)

    async def acquire_lease(self, station_id: str, owner: str, ttl: float) -> int:
        return await self._store.acquire_lease(station_id, owner, ttl)

    async def renew_lease(self, station_id: str, owner: str, token: int, ttl: float) -> bool:
        return await self._store.renew_lease(station_id, owner, token, ttl)

    async def release_lease(self, station_id: str, owner: str, token: int) -> None:
        await self._store.release_lease(station_id, owner, token)

    async def lease_holder(self, station_id: str) -> tuple[str, int] | None:
        return await self._store.lease_holder(station_id)

    # Unfenced: credentials are the operator's and the login's, not session writes a lease owns.

    async def get_credential(self, station_id: str) -> CredentialRecord | None:
        return await self._store.get_credential(station_id)

    async def put_credential(self, record: CredentialRecord) -> None:
        await self._store.put_credential(record)

    async def delete_credential(self, station_id: str) -> bool:
        return await self._store.delete_credential(station_id)

    async def list_credentials(self) -> list[CredentialRecord]:
        return await self._store.list_credentials()

    # --- migration routing ----------------------------------------------------------------

    async def get_route_state(self, station_id: str) -> RouteState | None:
        return await self._store.get_route_state(station_id)

    async def put_route_state(self, state: RouteState) -> None:
        # Unfenced: only commit takes a fence, and a Change carries no route state.
        await self._store.put_route_state(state)

    # Unfenced: the routing document is the operator's, shared by every station, and
    # guarded by its own compare-and-set.

    async def get_routing_document(self) -> tuple[str, int] | None:
        return await self._store.get_routing_document()

    async def put_routing_document(self, text: str, expected_version: int) -> int | None:
        return await self._store.put_routing_document(text, expected_version)
