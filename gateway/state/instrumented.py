"""A Store that times every call of another Store: ``InstrumentedStore(store, histogram)``.

Layer: state. Same protocol as the store it wraps; each data operation is observed in
the histogram (``ocpp_gateway_store_operation_duration_seconds``) under the Store method's
name, whether it returned or raised, and exceptions pass through unchanged. ``open`` and
``close`` run once per process and are not timed; nor are the lease calls, made once per
connection and on a renewal cadence, never per message. The credential calls are timed
(:data:`CREDENTIAL_OPERATIONS`): a slow store shows in every charger's login. So are
the migration routing calls (:data:`ROUTING_OPERATIONS`), made on every 1.6 charger's
connection and transaction start or stop, and on an admin API change.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Final, TypeVar

from prometheus_client import Histogram

from gateway.ocppj import Payload
from gateway.state.base import (
    Change,
    CredentialRecord,
    OutboxMessage,
    RouteState,
    StationRecord,
    Store,
    TransactionRecord,
)

T = TypeVar("T")

#: The ``operation`` label values: the timed Store methods.
OPERATIONS: Final = (
    "get_station",
    "put_station",
    "commit",
    "allocate_legacy_id",
    "open_transactions",
    "find_transaction",
    "pending_outbox",
    "get_authorization",
    "prune",
    "ping",
)
#: Also timed, apart from :data:`OPERATIONS` (the per-message ones): once per charger
#: login (get_credential), on a rotation (put_credential) and from the CLI.
CREDENTIAL_OPERATIONS: Final = (
    "get_credential",
    "put_credential",
    "delete_credential",
    "list_credentials",
)
#: Also timed, apart from :data:`OPERATIONS`: the migration routing calls (issue 9).
ROUTING_OPERATIONS: Final = (
    "get_route_state",
    "put_route_state",
    "get_routing_document",
    "put_routing_document",
)


class InstrumentedStore:
    """Wraps ``store``; times each operation in ``histogram`` (one label: ``operation``)."""

    def __init__(self, store: Store, histogram: Histogram) -> None:
        self.inner = store
        # One child per operation, made up front: the hot path skips the label lookup,
        # and every operation is exported (count 0) before its first call.
        self._timers = {
            operation: histogram.labels(operation)
            for operation in (*OPERATIONS, *CREDENTIAL_OPERATIONS, *ROUTING_OPERATIONS)
        }

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self._timers[operation].observe(time.perf_counter() - started)

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self._timed("ping", self.inner.ping())

    async def get_station(self, station_id: str) -> StationRecord | None:
        return await self._timed("get_station", self.inner.get_station(station_id))

    async def put_station(self, record: StationRecord) -> None:
        await self._timed("put_station", self.inner.put_station(record))

    async def commit(
        self, station_id: str, change: Change, *, fence: int | None = None
    ) -> tuple[int, ...]:
        return await self._timed("commit", self.inner.commit(station_id, change, fence=fence))

    async def allocate_legacy_id(self, station_id: str) -> int:
        return await self._timed("allocate_legacy_id", self.inner.allocate_legacy_id(station_id))

    async def open_transactions(self, station_id: str) -> list[TransactionRecord]:
        return await self._timed("open_transactions", self.inner.open_transactions(station_id))

    async def find_transaction(
        self, station_id: str, *, legacy_id: int | None = None, transaction_id: str | None = None
    ) -> TransactionRecord | None:
        return await self._timed(
            "find_transaction",
            self.inner.find_transaction(
                station_id, legacy_id=legacy_id, transaction_id=transaction_id
            ),
        )

    async def pending_outbox(self, station_id: str) -> list[OutboxMessage]:
        return await self._timed("pending_outbox", self.inner.pending_outbox(station_id))

    async def get_authorization(self, station_id: str, id_token: str) -> Payload | None:
        return await self._timed(
            "get_authorization", self.inner.get_authorization(station_id, id_token)
        )

    async def prune(self, ended_before: float) -> int:
        return await self._timed("prune", self.inner.prune(ended_before))

    async def acquire_lease(self, station_id: str, owner: str, ttl: float) -> int:
        return await self.inner.acquire_lease(station_id, owner, ttl)

    async def renew_lease(self, station_id: str, owner: str, token: int, ttl: float) -> bool:
        return await self.inner.renew_lease(station_id, owner, token, ttl)

    async def release_lease(self, station_id: str, owner: str, token: int) -> None:
        await self.inner.release_lease(station_id, owner, token)

    async def lease_holder(self, station_id: str) -> tuple[str, int] | None:
        return await self.inner.lease_holder(station_id)

    async def get_credential(self, station_id: str) -> CredentialRecord | None:
        return await self._timed("get_credential", self.inner.get_credential(station_id))

    async def put_credential(self, record: CredentialRecord) -> None:
        await self._timed("put_credential", self.inner.put_credential(record))

    async def delete_credential(self, station_id: str) -> bool:
        return await self._timed("delete_credential", self.inner.delete_credential(station_id))

    async def list_credentials(self) -> list[CredentialRecord]:
        return await self._timed("list_credentials", self.inner.list_credentials())

    async def get_route_state(self, station_id: str) -> RouteState | None:
        return await self._timed("get_route_state", self.inner.get_route_state(station_id))

    async def put_route_state(self, state: RouteState) -> None:
        await self._timed("put_route_state", self.inner.put_route_state(state))

    async def get_routing_document(self) -> tuple[str, int] | None:
        return await self._timed("get_routing_document", self.inner.get_routing_document())

    async def put_routing_document(self, text: str, expected_version: int) -> int | None:
        return await self._timed(
            "put_routing_document", self.inner.put_routing_document(text, expected_version)
        )
