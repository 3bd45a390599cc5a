"""In-memory Store: unit tests only (nothing survives the process).

Layer: state. Same contract as the SQLite store, in dicts: a commit is checked whole
before any of it is applied (no await in between, so it is atomic on the event loop),
a legacy id is unique per station as under SQLite's UNIQUE constraint, and records go
in and out through the SQLite row conversion, so callers never share a payload with
the store and see exactly the values a real store would give back. Leases expire by
``time.time()``, like the SQLite store's.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import orjson

from gateway.ocppj import Payload
from gateway.state import rows
from gateway.state.base import (
    Change,
    CredentialRecord,
    OutboxMessage,
    RouteState,
    StaleLease,
    StateError,
    StationRecord,
    TransactionRecord,
)

T = TypeVar("T")


def _copied(copy: Callable[[], T]) -> T:
    try:
        return copy()
    except orjson.JSONEncodeError as exc:
        raise StateError(f"cannot store the value: {exc}") from exc


def _station(record: StationRecord) -> StationRecord:
    return _copied(lambda: rows.station_record(rows.station_row(record)))


def _transaction(record: TransactionRecord) -> TransactionRecord:
    return _copied(lambda: rows.transaction_record(rows.transaction_row(record)))


def _payload(payload: Payload) -> Payload:
    return _copied(lambda: rows.copy_payload(payload))


def _message(message: OutboxMessage) -> OutboxMessage:
    return replace(message, payload=_payload(message.payload))


def _credential(record: CredentialRecord) -> CredentialRecord:
    """The record as the other stores give it back: tuples of str, a float time."""
    return replace(
        record,
        password_hashes=tuple(record.password_hashes),
        previous_hashes=tuple(record.previous_hashes),
        updated_at=float(record.updated_at),
    )


def _route_state(state: RouteState) -> RouteState:
    """The state as the other stores give it back: a str route, a tuple of ints."""
    return replace(
        state,
        route=str(state.route),
        legacy_transactions=tuple(int(t) for t in state.legacy_transactions),
    )


@dataclass(slots=True)
class _Lease:
    """A station's lease: the newest token ever issued (never lowered, never expires)
    and the current holder, if any (``owner`` None once released)."""

    last_token: int = 0
    owner: str | None = None
    token: int = 0
    expires_at: float = 0.0


class MemoryStore:
    def __init__(self) -> None:
        self._stations: dict[str, StationRecord] = {}
        # station id -> transaction id -> record
        self._transactions: dict[str, dict[str, TransactionRecord]] = {}
        # station id -> position -> message; insertion order is position order
        self._outbox: dict[str, dict[int, OutboxMessage]] = {}
        self._positions = itertools.count(1)  # shared by all stations, never reused
        self._legacy_ids: dict[str, int] = {}
        self._authorizations: dict[tuple[str, str], Payload] = {}
        self._leases: dict[str, _Lease] = {}
        self._credentials: dict[str, CredentialRecord] = {}
        self._route_states: dict[str, RouteState] = {}
        self._routing: tuple[str, int] | None = None  # (text, version)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def get_station(self, station_id: str) -> StationRecord | None:
        record = self._stations.get(station_id)
        return None if record is None else _station(record)

    async def put_station(self, record: StationRecord) -> None:
        self._stations[record.station_id] = _station(record)

    async def commit(
        self, station_id: str, change: Change, *, fence: int | None = None
    ) -> tuple[int, ...]:
        rows.check_owner(station_id, change)
        if change == Change():
            return ()
        if fence is not None:
            self._check_fence(station_id, fence)
        # Everything is copied and checked first; only then is anything applied.
        station = None if change.station is None else _station(change.station)
        transactions = dict(self._transactions.get(station_id, {}))
        for record in change.transactions:
            holder = next(
                (tid for tid, held in transactions.items() if held.legacy_id == record.legacy_id),
                record.transaction_id,
            )
            if holder != record.transaction_id:
                raise StateError(
                    f"{station_id}: legacy id {record.legacy_id} is already {holder!r}'s"
                )
            transactions[record.transaction_id] = _transaction(record)
        appended = [_message(message) for message in change.append]
        authorizations = {
            (station_id, id_token.casefold()): _payload(info)
            for id_token, info in change.authorizations
        }
        if station is not None:
            self._stations[station_id] = station
        if change.transactions:
            self._transactions[station_id] = transactions
        outbox = self._outbox.setdefault(station_id, {})
        positions = []
        for message in appended:
            position = next(self._positions)
            outbox[position] = replace(message, position=position)
            positions.append(position)
        for position in change.delivered:
            outbox.pop(position, None)
        if change.clear_authorizations:
            for cached in [k for k in self._authorizations if k[0] == station_id]:
                del self._authorizations[cached]
        self._authorizations.update(authorizations)
        return tuple(positions)

    async def allocate_legacy_id(self, station_id: str) -> int:
        held = (record.legacy_id for record in self._transactions.get(station_id, {}).values())
        legacy_id = max(self._legacy_ids.get(station_id, 0), *held, 0) + 1
        self._legacy_ids[station_id] = legacy_id
        return legacy_id

    async def open_transactions(self, station_id: str) -> list[TransactionRecord]:
        records = self._transactions.get(station_id, {}).values()
        open_records = sorted((r for r in records if not r.ended), key=lambda r: r.legacy_id)
        return [_transaction(record) for record in open_records]

    async def find_transaction(
        self, station_id: str, *, legacy_id: int | None = None, transaction_id: str | None = None
    ) -> TransactionRecord | None:
        if (legacy_id is None) == (transaction_id is None):
            raise ValueError("give exactly one of legacy_id and transaction_id")
        records = self._transactions.get(station_id, {})
        if transaction_id is not None:
            found = records.get(transaction_id)
        else:
            found = next((r for r in records.values() if r.legacy_id == legacy_id), None)
        return None if found is None else _transaction(found)

    async def pending_outbox(self, station_id: str) -> list[OutboxMessage]:
        return [_message(message) for message in self._outbox.get(station_id, {}).values()]

    async def get_authorization(self, station_id: str, id_token: str) -> Payload | None:
        info = self._authorizations.get((station_id, id_token.casefold()))
        return None if info is None else _payload(info)

    async def prune(self, ended_before: float) -> int:
        pruned = 0
        for records in self._transactions.values():
            for transaction_id, record in list(records.items()):
                if record.ended and record.ended_at is not None and record.ended_at < ended_before:
                    del records[transaction_id]
                    pruned += 1
        return pruned

    # --- leases -----------------------------------------------------------------------

    def _check_fence(self, station_id: str, fence: int) -> None:
        last = self._leases.get(station_id, _Lease()).last_token
        if fence != last or last == 0:  # 0: no token was ever issued
            raise StaleLease(f"{station_id}: lease token {fence} is stale (newest {last})")

    async def acquire_lease(self, station_id: str, owner: str, ttl: float) -> int:
        rows.check_ttl(ttl)
        lease = self._leases.setdefault(station_id, _Lease())
        lease.last_token += 1
        lease.owner, lease.token = owner, lease.last_token
        lease.expires_at = time.time() + ttl
        return lease.token

    async def renew_lease(self, station_id: str, owner: str, token: int, ttl: float) -> bool:
        rows.check_ttl(ttl)
        lease = self._leases.get(station_id)
        if lease is None or (lease.owner, lease.token) != (owner, token):
            return False
        lease.expires_at = time.time() + ttl
        return True

    async def release_lease(self, station_id: str, owner: str, token: int) -> None:
        lease = self._leases.get(station_id)
        if lease is not None and (lease.owner, lease.token) == (owner, token):
            lease.owner = None

    async def lease_holder(self, station_id: str) -> tuple[str, int] | None:
        lease = self._leases.get(station_id)
        if lease is None or lease.owner is None or lease.expires_at <= time.time():
            return None
        return lease.owner, lease.token

    # --- charger credentials ------------------------------------------------------------

    async def get_credential(self, station_id: str) -> CredentialRecord | None:
        return self._credentials.get(station_id)

    async def put_credential(self, record: CredentialRecord) -> None:
        self._credentials[record.station_id] = _credential(record)

    async def delete_credential(self, station_id: str) -> bool:
        return self._credentials.pop(station_id, None) is not None

    async def list_credentials(self) -> list[CredentialRecord]:
        return [self._credentials[station_id] for station_id in sorted(self._credentials)]

    # --- migration routing ----------------------------------------------------------------

    async def get_route_state(self, station_id: str) -> RouteState | None:
        return self._route_states.get(station_id)

    async def put_route_state(self, state: RouteState) -> None:
        self._route_states[state.station_id] = _route_state(state)

    async def get_routing_document(self) -> tuple[str, int] | None:
        return self._routing

    async def put_routing_document(self, text: str, expected_version: int) -> int | None:
        version = 0 if self._routing is None else self._routing[1]
        if version != expected_version:
            return None
        self._routing = (str(text), version + 1)
        return version + 1
