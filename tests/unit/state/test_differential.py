"""The three stores, driven through the same random histories, answer the same.

Hypothesis writes histories of commits (transactions moving between legacy ids, ending,
colliding; appends and deliveries; cached authorizations in any case), prunes and
charger credentials stored, replaced or revoked; after every step the memory, SQLite
and Redis stores must agree on what failed and on everything readable. Outbox positions
are compared by the message they name: the stores number them differently (Redis per
station), only their order is the contract.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.state import (
    Change,
    CredentialRecord,
    OutboxMessage,
    StateError,
    Store,
    TransactionRecord,
)
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from gateway.state.sqlite import SqliteStore

STATIONS = ("CP1", "CP2")
TRANSACTION_IDS = ("tx-1", "tx-2", "tx-3")
TOKENS = ("Tag", "TAG", "other")
HASHES = ("$scrypt$ln=14,r=8,p=1$one$one", "$scrypt$ln=14,r=8,p=1$two$two", "$scrypt$x")


@dataclass(frozen=True)
class Commit:
    station_id: str
    transactions: tuple[tuple[str, int, bool, float | None], ...]
    appends: int
    delivered: tuple[int, ...]  # indexes into the station's appended messages so far
    authorizations: tuple[tuple[str, str], ...]
    clear: bool


@dataclass(frozen=True)
class Prune:
    ended_before: float


@dataclass(frozen=True)
class PutCredential:
    record: CredentialRecord


@dataclass(frozen=True)
class RevokeCredential:
    station_id: str


commits = st.builds(
    Commit,
    station_id=st.sampled_from(STATIONS),
    transactions=st.lists(
        st.tuples(
            st.sampled_from(TRANSACTION_IDS),
            st.integers(1, 3),
            st.booleans(),
            st.sampled_from([None, 10.0, 30.0]),
        ),
        max_size=2,
    ).map(tuple),
    appends=st.integers(0, 2),
    delivered=st.lists(st.integers(0, 8), max_size=2).map(tuple),
    authorizations=st.lists(
        st.tuples(st.sampled_from(TOKENS), st.sampled_from(["Accepted", "Blocked"])), max_size=2
    ).map(tuple),
    clear=st.booleans(),
)
hashes = st.lists(st.sampled_from(HASHES), max_size=2).map(tuple)
credentials = st.builds(
    CredentialRecord,
    station_id=st.sampled_from(STATIONS),
    password_hashes=hashes,
    previous_hashes=hashes,
    updated_at=st.sampled_from([0.0, 1714564800.5]),
).map(PutCredential)
Step = Commit | Prune | PutCredential | RevokeCredential
histories = st.lists(
    st.one_of(
        commits,
        st.builds(Prune, st.sampled_from([20.0, 40.0])),
        credentials,
        st.builds(RevokeCredential, st.sampled_from(STATIONS)),
    ),
    max_size=12,
)


@dataclass
class Replay:
    """One store and the outbox positions it gave each station's messages, in order."""

    store: Store
    positions: dict[str, list[int]] = field(default_factory=dict)

    def change(self, step: Commit, serial: int) -> Change:
        given = self.positions.get(step.station_id, [])
        return Change(
            transactions=tuple(
                TransactionRecord(
                    step.station_id,
                    tid,
                    legacy,
                    1,
                    1,
                    serial,
                    "2024-05-01T12:00:00Z",
                    "start",
                    ended=ended,
                    ended_at=ended_at,
                )
                for tid, legacy, ended, ended_at in step.transactions
            ),
            append=tuple(
                OutboxMessage("MeterValues", {"serial": serial, "n": n})
                for n in range(step.appends)
            ),
            delivered=tuple(given[i] for i in step.delivered if i < len(given)),
            authorizations=tuple(
                (token, {"status": status}) for token, status in step.authorizations
            ),
            clear_authorizations=step.clear,
        )

    async def apply(self, step: Step, serial: int) -> Any:
        try:
            if isinstance(step, Prune):
                return await self.store.prune(step.ended_before)
            if isinstance(step, PutCredential):
                return await self.store.put_credential(step.record)
            if isinstance(step, RevokeCredential):
                return await self.store.delete_credential(step.station_id)
            positions = await self.store.commit(step.station_id, self.change(step, serial))
        except StateError:
            return "StateError"
        self.positions.setdefault(step.station_id, []).extend(positions)
        return len(positions)

    async def view(self) -> Any:
        """Everything readable, positions left out."""
        seen: dict[str, Any] = {}
        for station_id in STATIONS:
            store = self.store
            seen[station_id] = (
                await store.open_transactions(station_id),
                [
                    await store.find_transaction(station_id, transaction_id=t)
                    for t in TRANSACTION_IDS
                ],
                [await store.find_transaction(station_id, legacy_id=n) for n in (1, 2, 3)],
                [replace(m, position=0) for m in await store.pending_outbox(station_id)],
                [await store.get_authorization(station_id, token) for token in TOKENS],
                await store.get_credential(station_id),
            )
        seen["credentials"] = await self.store.list_credentials()
        return seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories)
def test_the_three_stores_agree_on_every_history(redis_url: str, history: list[Step]) -> None:
    """Same outcomes, same reads, after every step of any history."""
    prefix = f"ocppgw-test:{uuid.uuid4().hex}:"

    async def run(directory: str) -> None:
        replays = [
            Replay(MemoryStore()),
            Replay(SqliteStore(f"{directory}/state.db")),
            Replay(RedisStore(redis_url, prefix=prefix)),
        ]
        for replay in replays:
            await replay.store.open()
        try:
            for serial, step in enumerate(history):
                outcomes = [await replay.apply(step, serial) for replay in replays]
                assert outcomes[1:] == outcomes[:-1], (step, outcomes)
                views = [await replay.view() for replay in replays]
                assert views[1:] == views[:-1], step
        finally:
            for replay in replays:
                await replay.store.close()

    try:
        with tempfile.TemporaryDirectory() as directory:
            asyncio.run(run(directory))
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
