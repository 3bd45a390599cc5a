"""The Store contract, run against the memory store, a real SQLite file and a real Redis
server (tests/redis_server.py finds or starts one; under CI a missing one fails)."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.metrics import GatewayMetrics
from gateway.ocppj import Payload
from gateway.state import (
    Change,
    CredentialRecord,
    InstrumentedStore,
    OutboxMessage,
    RouteState,
    StaleLease,
    StateError,
    StationRecord,
    Store,
    TransactionRecord,
    open_store,
)
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from gateway.state.rows import TRANSACTION_COLUMNS
from gateway.state.sqlite import _MIGRATIONS, SqliteStore

LATEST_SCHEMA = len(_MIGRATIONS)

BOOT = {"chargePointVendor": "Acme", "chargePointModel": "Volt 22"}
TOKEN = {"idToken": "04A1B2C3", "type": "ISO14443"}
PROFILE = {
    "evseId": 1,
    "chargingProfile": {
        "id": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
            }
        ],
    },
}


def transaction(
    transaction_id: str = "tx-1", legacy_id: int = 1, station_id: str = "CP1", **changes: Any
) -> TransactionRecord:
    values: dict[str, Any] = {
        "connector_id": 1,
        "evse_id": 1,
        "next_seq_no": 0,
        "started_at": "2024-05-01T12:00:00Z",
        "start_key": f"start-{transaction_id}",
    } | changes
    return TransactionRecord(station_id, transaction_id, legacy_id, **values)


def station(station_id: str = "CP1", **changes: Any) -> StationRecord:
    return StationRecord(station_id, BOOT, "Accepted", **changes)


def message(action: str = "TransactionEvent", n: int = 0, **changes: Any) -> OutboxMessage:
    return OutboxMessage(action, {"seqNo": n, "eventType": "Updated"}, **changes)


Factory = Callable[[], Store]


def factory(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """Builds unopened stores of ``kind``; for sqlite and redis each one sees the state
    the ones before it left (the same file, the same server and key prefix)."""
    if kind == "memory":
        return MemoryStore
    if kind == "sqlite":
        return lambda: SqliteStore(str(tmp_path / "state.db"))
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return lambda: RedisStore(url, prefix=prefix)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made = factory(request.param, request, tmp_path)()
    await made.open()
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture(params=["sqlite", "redis"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """A factory of stores whose state survives close and reopen."""
    return factory(request.param, request, tmp_path)


async def opened(make: Factory) -> Store:
    store = make()
    await store.open()
    return store


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "state.db")


async def reopened(path: str) -> SqliteStore:
    store = SqliteStore(path)
    await store.open()
    return store


# --- station records ----------------------------------------------------------------


async def test_station_record_round_trips_every_field(store: Store) -> None:
    """A stored station record comes back equal, int connector keys and tuples included."""
    record = StationRecord(
        "CP1",
        BOOT,
        "Pending",
        connector_errors={1: "GroundFailure", 2: "OverVoltage"},
        connector_statuses={0: "Available", 1: "Faulted", 2: "Charging"},
        remote_starts=(
            {"remoteStartId": 4, "evseId": 1, "idToken": TOKEN},
            {"remoteStartId": 5, "idToken": TOKEN},
        ),
        charging_profiles=(PROFILE,),
        boot_reason="RemoteReset",
        reset_scheduled=True,
        firmware_request_id=41,
        log_request_id=42,
        reservations=(
            {"reservationId": 3, "connectorId": 0, "expiryDateTime": "2099-01-01T00:00:00Z"},
        ),
        security_extension=True,
    )
    await store.put_station(record)

    loaded = await store.get_station("CP1")

    assert loaded == record
    assert loaded is not None
    assert isinstance(loaded.remote_starts, tuple)
    assert isinstance(loaded.charging_profiles, tuple)
    assert all(isinstance(connector, int) for connector in loaded.connector_statuses)


async def test_unknown_station_has_no_record(store: Store) -> None:
    """get_station of a station never stored is None."""
    assert await store.get_station("nobody") is None


async def test_put_station_replaces_the_whole_record(store: Store) -> None:
    """A second put replaces every field, including emptied ones."""
    await store.put_station(
        station(connector_statuses={1: "Charging"}, charging_profiles=(PROFILE,))
    )
    await store.put_station(station(connector_statuses={1: "Available"}))

    assert await store.get_station("CP1") == station(connector_statuses={1: "Available"})


async def test_callers_never_share_payloads_with_the_store(store: Store) -> None:
    """Mutating what was stored or what was read back leaves the stored state as it was."""
    boot: Payload = {"chargePointModel": "Volt 22", "extra": {"firmware": "1.0"}}
    info: Payload = {"status": "Accepted"}
    sent: Payload = {"seqNo": 0, "eventType": "Updated"}
    token: Payload = dict(TOKEN)
    await store.put_station(StationRecord("CP1", boot, "Accepted"))
    change = Change(
        transactions=(transaction(id_token=token),),
        append=(OutboxMessage("TransactionEvent", sent),),
        authorizations=(("tag", info),),
    )
    await store.commit("CP1", change)
    boot["extra"]["firmware"] = "changed"
    info["status"] = "changed"
    sent["seqNo"] = 99
    token["type"] = "changed"

    loaded = await store.get_station("CP1")
    assert loaded is not None
    loaded.boot["chargePointModel"] = "changed"
    (pending,) = await store.pending_outbox("CP1")
    pending.payload["seqNo"] = 99
    cached = await store.get_authorization("CP1", "tag")
    assert cached is not None
    cached["status"] = "changed"

    assert await store.get_station("CP1") == StationRecord(
        "CP1", {"chargePointModel": "Volt 22", "extra": {"firmware": "1.0"}}, "Accepted"
    )
    assert [m.payload for m in await store.pending_outbox("CP1")] == [message().payload]
    assert await store.get_authorization("CP1", "tag") == {"status": "Accepted"}
    assert await store.open_transactions("CP1") == [transaction(id_token=TOKEN)]


# --- commit -------------------------------------------------------------------------


async def test_commit_applies_every_part_of_a_change(store: Store) -> None:
    """Station, transaction, outbox entries and authorization of one change all land."""
    record = transaction(id_token=TOKEN, meter_start=1200, id_tag_info={"status": "Accepted"})
    change = Change(
        station=station(connector_statuses={1: "Charging"}),
        transactions=(record,),
        append=(message(n=0), message(n=1, transaction_id="tx-1")),
        authorizations=(("04a1b2c3", {"status": "Accepted"}),),
    )

    positions = await store.commit("CP1", change)

    assert len(positions) == 2
    assert positions[0] < positions[1]
    assert await store.get_station("CP1") == change.station
    assert await store.find_transaction("CP1", transaction_id="tx-1") == record
    assert await store.find_transaction("CP1", legacy_id=1) == record
    assert await store.pending_outbox("CP1") == [
        message(n=0, position=positions[0]),
        message(n=1, transaction_id="tx-1", position=positions[1]),
    ]
    assert await store.get_authorization("CP1", "04A1B2C3") == {"status": "Accepted"}


async def test_commit_upserts_a_transaction_by_its_transaction_id(store: Store) -> None:
    """Committing a transaction again replaces it: ended, stop key and seqNo move on."""
    await store.commit("CP1", Change(transactions=(transaction(next_seq_no=1),)))
    ended = transaction(
        next_seq_no=5,
        ended=True,
        ended_at=1000.0,
        stop_key="stop",
        stop_id_tag_info={"status": "Accepted"},
        charging_state="Idle",
        last_meter={"timestamp": "2024-05-01T13:00:00Z", "sampledValue": [{"value": 9.5}]},
    )

    await store.commit("CP1", Change(transactions=(ended,)))

    assert await store.find_transaction("CP1", transaction_id="tx-1") == ended
    assert await store.open_transactions("CP1") == []


async def test_an_empty_change_commits_nothing(store: Store) -> None:
    """An empty Change returns no positions and creates no station."""
    assert await store.commit("CP1", Change()) == ()
    assert await store.get_station("CP1") is None


async def test_commit_refuses_records_of_another_station(store: Store) -> None:
    """A Change holding another station's records is a caller bug: ValueError, nothing kept."""
    with pytest.raises(ValueError, match="CP2"):
        await store.commit("CP1", Change(transactions=(transaction(station_id="CP2"),)))
    with pytest.raises(ValueError, match="CP2"):
        await store.commit("CP1", Change(station=station("CP2")))

    assert await store.find_transaction("CP2", transaction_id="tx-1") is None
    assert await store.get_station("CP2") is None


async def test_a_change_that_fails_half_way_leaves_nothing(store: Store) -> None:
    """A legacy id collision fails the commit: its station, transactions and outbox never show."""
    before = station(connector_statuses={1: "Available"})
    held = transaction("tx-1", legacy_id=1)
    (first,) = await store.commit(
        "CP1", Change(station=before, transactions=(held,), append=(message(n=0),))
    )
    failing = Change(
        station=station(connector_statuses={1: "Charging"}),
        transactions=(transaction("tx-2", legacy_id=2), transaction("tx-3", legacy_id=1)),
        append=(message(n=1),),
        delivered=(first,),
        authorizations=(("tag", {"status": "Accepted"}),),
    )

    with pytest.raises(StateError):
        await store.commit("CP1", failing)

    assert await store.get_station("CP1") == before
    assert await store.open_transactions("CP1") == [held]
    assert await store.find_transaction("CP1", transaction_id="tx-2") is None
    assert await store.pending_outbox("CP1") == [message(n=0, position=first)]
    assert await store.get_authorization("CP1", "tag") is None
    # The store is still usable: the failed transaction was rolled back, not left open.
    (later,) = await store.commit("CP1", Change(append=(message(n=2),)))
    assert later > first


async def test_an_unstorable_payload_fails_the_whole_change(store: Store) -> None:
    """A payload JSON cannot hold raises StateError and nothing of its change is kept."""
    change = Change(
        station=station(),
        transactions=(transaction(),),
        append=(message(), OutboxMessage("DataTransfer", {"data": object()})),
    )

    with pytest.raises(StateError):
        await store.commit("CP1", change)

    assert await store.get_station("CP1") is None
    assert await store.open_transactions("CP1") == []
    assert await store.pending_outbox("CP1") == []


# --- outbox -------------------------------------------------------------------------


async def test_outbox_keeps_append_order_across_commits(store: Store) -> None:
    """Messages come back in the order appended, positions strictly increasing."""
    positions = [
        *await store.commit("CP1", Change(append=(message(n=0), message(n=1)))),
        *await store.commit("CP1", Change(append=(message("StatusNotification", 2),))),
        *await store.commit("CP1", Change(append=(message(n=3),))),
    ]

    pending = await store.pending_outbox("CP1")

    assert [m.payload["seqNo"] for m in pending] == [0, 1, 2, 3]
    assert [m.position for m in pending] == positions == sorted(set(positions))


async def test_positions_are_never_reused_after_delivery(store: Store) -> None:
    """Once every message is delivered, new messages still get fresh, higher positions."""
    old = await store.commit("CP1", Change(append=(message(n=0), message(n=1))))
    await store.commit("CP1", Change(delivered=old))
    assert await store.pending_outbox("CP1") == []

    new = await store.commit("CP1", Change(append=(message(n=2),)))

    assert min(new) > max(old)


async def test_positions_are_never_reused_after_reopen(durable: Factory) -> None:
    """Delivering the highest position and reopening the store does not give it out again."""
    store = await opened(durable)
    old = await store.commit("CP1", Change(append=(message(n=0), message(n=1), message(n=2))))
    await store.commit("CP1", Change(delivered=old[1:]))
    await store.close()

    store = await opened(durable)
    try:
        (new,) = await store.commit("CP1", Change(append=(message(n=3),)))
        assert new > max(old)
        assert [m.position for m in await store.pending_outbox("CP1")] == [old[0], new]
    finally:
        await store.close()


async def test_delivered_removes_only_that_stations_positions(store: Store) -> None:
    """A station acknowledging another station's position leaves that message pending."""
    (mine,) = await store.commit("CP1", Change(append=(message(n=0),)))
    (theirs,) = await store.commit("CP2", Change(append=(message(n=0),)))

    await store.commit("CP1", Change(delivered=(mine, theirs)))

    assert await store.pending_outbox("CP1") == []
    assert await store.pending_outbox("CP2") == [message(n=0, position=theirs)]


async def test_an_offline_flag_given_on_append_is_kept(store: Store) -> None:
    """A message appended while the CSMS is down can be stored offline already."""
    await store.commit("CP1", Change(append=(message(offline=True),)))

    assert [m.offline for m in await store.pending_outbox("CP1")] == [True]


# --- transactions -------------------------------------------------------------------


async def test_open_transactions_are_the_unended_ones_by_legacy_id(store: Store) -> None:
    """Ended transactions are left out; the rest come oldest (lowest legacy id) first."""
    records = (
        transaction("tx-c", 3),
        transaction("tx-a", 1),
        transaction("tx-b", 2, ended=True, ended_at=10.0),
        transaction("tx-d", 4, station_id="CP2"),
    )
    await store.commit("CP1", Change(transactions=records[:3]))
    await store.commit("CP2", Change(transactions=records[3:]))

    assert await store.open_transactions("CP1") == [records[1], records[0]]
    assert await store.open_transactions("CP2") == [records[3]]


async def test_find_transaction_sees_ended_ones_and_only_that_station(store: Store) -> None:
    """Lookup by either id finds open and ended transactions, never another station's."""
    ended = transaction("tx-1", 1, ended=True, ended_at=5.0)
    await store.commit("CP1", Change(transactions=(ended,)))

    assert await store.find_transaction("CP1", legacy_id=1) == ended
    assert await store.find_transaction("CP1", transaction_id="tx-1") == ended
    assert await store.find_transaction("CP2", legacy_id=1) is None
    assert await store.find_transaction("CP2", transaction_id="tx-1") is None
    assert await store.find_transaction("CP1", legacy_id=2) is None


@pytest.mark.parametrize(
    "ids", [{}, {"legacy_id": 1, "transaction_id": "tx-1"}], ids=["neither", "both"]
)
async def test_find_transaction_needs_exactly_one_id(store: Store, ids: dict[str, Any]) -> None:
    """Giving neither or both ids is a caller bug."""
    with pytest.raises(ValueError, match="exactly one"):
        await store.find_transaction("CP1", **ids)


async def test_the_same_ids_may_be_used_by_two_stations(store: Store) -> None:
    """Transaction and legacy ids are per station: two stations may both have tx-1 / 1."""
    await store.commit("CP1", Change(transactions=(transaction(station_id="CP1"),)))
    await store.commit("CP2", Change(transactions=(transaction(station_id="CP2"),)))

    assert [r.station_id for r in await store.open_transactions("CP1")] == ["CP1"]
    assert [r.station_id for r in await store.open_transactions("CP2")] == ["CP2"]


async def test_a_legacy_id_a_transaction_moved_off_is_free_again(store: Store) -> None:
    """Upserting a transaction with another legacy id frees its old one, even for a later
    record of the same change (the change applies in order, as SQLite's upserts do)."""
    await store.commit("CP1", Change(transactions=(transaction("tx-1", 1),)))

    await store.commit("CP1", Change(transactions=(transaction("tx-1", 2), transaction("tx-2", 1))))

    assert await store.find_transaction("CP1", legacy_id=1) == transaction("tx-2", 1)
    assert await store.find_transaction("CP1", legacy_id=2) == transaction("tx-1", 2)
    assert await store.open_transactions("CP1") == [transaction("tx-2", 1), transaction("tx-1", 2)]


async def test_a_legacy_id_taken_earlier_in_the_same_change_collides(store: Store) -> None:
    """Two records of one change claiming one legacy id fail the change whole."""
    with pytest.raises(StateError):
        await store.commit(
            "CP1", Change(transactions=(transaction("tx-1", 1), transaction("tx-2", 1)))
        )

    assert await store.open_transactions("CP1") == []


async def test_prune_forgets_only_transactions_ended_before(store: Store) -> None:
    """Ended before the cut: gone. Ended after, or still open: kept."""
    old = transaction("tx-old", 1, ended=True, ended_at=100.0)
    recent = transaction("tx-new", 2, ended=True, ended_at=300.0)
    running = transaction("tx-open", 3, ended_at=50.0)  # open, whatever ended_at says
    elsewhere = transaction("tx-old", 1, station_id="CP2", ended=True, ended_at=50.0)
    await store.commit("CP1", Change(transactions=(old, recent, running)))
    await store.commit("CP2", Change(transactions=(elsewhere,)))

    assert await store.prune(200.0) == 2

    assert await store.find_transaction("CP1", transaction_id="tx-old") is None
    assert await store.find_transaction("CP2", transaction_id="tx-old") is None
    assert await store.find_transaction("CP1", transaction_id="tx-new") == recent
    assert await store.open_transactions("CP1") == [running]
    assert await store.prune(200.0) == 0


# --- legacy ids ---------------------------------------------------------------------


async def test_legacy_ids_count_from_one_per_station(store: Store) -> None:
    """Each station has its own counter: 1, 2, 3..."""
    first = [await store.allocate_legacy_id("CP1") for _ in range(3)]
    other = await store.allocate_legacy_id("CP2")

    assert first == [1, 2, 3]
    assert other == 1


async def test_allocation_skips_ids_held_by_stored_transactions(store: Store) -> None:
    """An id already used by a transaction (an older layout, say) is never handed out."""
    await store.commit("CP1", Change(transactions=(transaction(legacy_id=7),)))

    assert await store.allocate_legacy_id("CP1") == 8
    assert await store.allocate_legacy_id("CP2") == 1


async def test_concurrent_allocations_are_distinct(store: Store) -> None:
    """Allocations racing on the event loop never return the same id."""
    ids = await asyncio.gather(*(store.allocate_legacy_id("CP1") for _ in range(50)))

    assert sorted(ids) == list(range(1, 51))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(st.one_of(st.sampled_from(["CP1", "CP2", "cp1"]), st.none()), max_size=30),
    backend=st.sampled_from(["memory", "sqlite"]),
)
def test_legacy_id_allocation_is_injective(steps: list[str | None], backend: str) -> None:
    """Whatever the interleaving of stations and reopen points (None), no id repeats."""

    async def scenario(directory: str) -> dict[str, list[int]]:
        store: Store = MemoryStore() if backend == "memory" else SqliteStore(f"{directory}/s.db")
        await store.open()
        given_out: dict[str, list[int]] = {}
        for step in steps:
            if step is None:
                await store.close()
                if backend == "sqlite":
                    store = SqliteStore(f"{directory}/s.db")
                await store.open()
            else:
                given_out.setdefault(step, []).append(await store.allocate_legacy_id(step))
        await store.close()
        return given_out

    with tempfile.TemporaryDirectory() as directory:
        given_out = asyncio.run(scenario(directory))

    for ids in given_out.values():
        assert len(set(ids)) == len(ids)
        assert ids == list(range(1, len(ids) + 1))


# --- authorization cache ------------------------------------------------------------


async def test_authorizations_are_cached_case_insensitively_per_station(store: Store) -> None:
    """idTags that differ only in case are one token (1.6); a newer answer replaces the old."""
    await store.commit("CP1", Change(authorizations=(("AbC1", {"status": "Accepted"}),)))
    assert await store.get_authorization("CP1", "aBc1") == {"status": "Accepted"}

    await store.commit("CP1", Change(authorizations=(("ABC1", {"status": "Blocked"}),)))

    assert await store.get_authorization("CP1", "abc1") == {"status": "Blocked"}
    assert await store.get_authorization("CP2", "abc1") is None
    assert await store.get_authorization("CP1", "other") is None


async def test_clearing_authorizations_empties_only_that_station_s_cache(store: Store) -> None:
    """ClearCache (2.0.1 C11): the station's entries go first, then the change's own."""
    await store.commit("CP1", Change(authorizations=(("A1", {"status": "Accepted"}),)))
    await store.commit("CP2", Change(authorizations=(("A1", {"status": "Accepted"}),)))

    await store.commit(
        "CP1",
        Change(authorizations=(("B2", {"status": "Blocked"}),), clear_authorizations=True),
    )

    assert await store.get_authorization("CP1", "A1") is None
    assert await store.get_authorization("CP1", "B2") == {"status": "Blocked"}
    assert await store.get_authorization("CP2", "A1") == {"status": "Accepted"}


# --- leases (one station, one upstream connection, across replicas) -----------------

LONG = 60.0  # a ttl no test outlives
TINY = 0.05  # a ttl that lapses while the test polls for it

#: Lapsing is awaited by polling the store (no bare sleeps): this often, at most this long.
POLL_INTERVAL = 0.01
POLL_BOUND = 10.0


async def eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    deadline = asyncio.get_running_loop().time() + POLL_BOUND
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(POLL_INTERVAL)


async def lapsed(store: Store, station_id: str = "CP1") -> None:
    async def no_holder() -> bool:
        return await store.lease_holder(station_id) is None

    await eventually(no_holder)


FULL_CHANGE = Change(
    station=station(connector_statuses={1: "Charging"}),
    transactions=(transaction("tx-9", legacy_id=9),),
    append=(message(n=7),),
    authorizations=(("tag", {"status": "Accepted"}),),
)


async def test_every_acquire_gives_a_greater_token(store: Store) -> None:
    """Tokens only grow per station, whoever acquires; the newest acquirer holds it."""
    tokens = [
        await store.acquire_lease("CP1", "replica-a", LONG),
        await store.acquire_lease("CP1", "replica-a", LONG),
        await store.acquire_lease("CP1", "replica-b", LONG),
    ]
    other = await store.acquire_lease("CP2", "replica-a", LONG)

    assert tokens == sorted(set(tokens))
    assert await store.lease_holder("CP1") == ("replica-b", tokens[-1])
    assert await store.lease_holder("CP2") == ("replica-a", other)
    assert await store.lease_holder("CP3") is None


async def test_a_newer_acquire_supersedes_the_holder(store: Store) -> None:
    """The newest connection wins: the old holder cannot renew, nor commit fenced."""
    (first,) = await store.commit("CP1", Change(station=station(), append=(message(n=0),)))
    old = await store.acquire_lease("CP1", "replica-a", LONG)
    new = await store.acquire_lease("CP1", "replica-b", LONG)

    assert await store.renew_lease("CP1", "replica-a", old, LONG) is False
    with pytest.raises(StaleLease):
        await store.commit("CP1", replace(FULL_CHANGE, delivered=(first,)), fence=old)

    assert await store.lease_holder("CP1") == ("replica-b", new)
    assert await store.get_station("CP1") == station()
    assert await store.find_transaction("CP1", transaction_id="tx-9") is None
    assert await store.pending_outbox("CP1") == [message(n=0, position=first)]
    assert await store.get_authorization("CP1", "tag") is None
    # The new holder's fenced commit goes through.
    assert len(await store.commit("CP1", FULL_CHANGE, fence=new)) == 1
    assert await store.find_transaction("CP1", legacy_id=9) == transaction("tx-9", legacy_id=9)


async def test_a_stale_lease_error_is_a_state_error(store: Store) -> None:
    """Callers that handle StateError handle a stale lease too; a fence never issued is stale."""
    with pytest.raises(StateError):
        await store.commit("CP1", FULL_CHANGE, fence=1)
    with pytest.raises(StaleLease):
        await store.commit("CP1", FULL_CHANGE, fence=0)

    assert await store.get_station("CP1") is None


async def test_an_unfenced_commit_ignores_leases(store: Store) -> None:
    """fence=None keeps the behaviour callers had before leases."""
    await store.acquire_lease("CP1", "replica-b", LONG)

    assert len(await store.commit("CP1", FULL_CHANGE)) == 1


async def test_renewing_keeps_the_lease(store: Store) -> None:
    """The holder's renewal succeeds and leaves holder and token as they were."""
    token = await store.acquire_lease("CP1", "replica-a", LONG)

    assert await store.renew_lease("CP1", "replica-a", token, LONG) is True
    assert await store.renew_lease("CP1", "replica-b", token, LONG) is False
    assert await store.renew_lease("CP1", "replica-a", token + 1, LONG) is False
    assert await store.lease_holder("CP1") == ("replica-a", token)


async def test_release_by_a_stale_holder_is_a_no_op(store: Store) -> None:
    """Only the current holder can release: a superseded one leaves its successor be."""
    old = await store.acquire_lease("CP1", "replica-a", LONG)
    new = await store.acquire_lease("CP1", "replica-b", LONG)

    await store.release_lease("CP1", "replica-a", old)
    await store.release_lease("CP1", "replica-a", new)  # the right token, the wrong owner
    assert await store.lease_holder("CP1") == ("replica-b", new)

    await store.release_lease("CP1", "replica-b", new)
    assert await store.lease_holder("CP1") is None
    assert await store.renew_lease("CP1", "replica-b", new, LONG) is False


async def test_a_lease_lapses_after_its_ttl(store: Store) -> None:
    """Unrenewed, the lease lapses; the next acquire gets a greater token and the old
    holder can neither renew nor commit fenced any more."""
    old = await store.acquire_lease("CP1", "replica-a", TINY)

    await lapsed(store)
    new = await store.acquire_lease("CP1", "replica-b", LONG)

    assert new > old
    assert await store.renew_lease("CP1", "replica-a", old, LONG) is False
    with pytest.raises(StaleLease):
        await store.commit("CP1", FULL_CHANGE, fence=old)


async def test_a_lapsed_lease_nobody_took_is_renewed(store: Store) -> None:
    """A late renewal wins the lease back when no one else took it; the token stays."""
    token = await store.acquire_lease("CP1", "replica-a", TINY)
    await lapsed(store)

    assert await store.commit("CP1", FULL_CHANGE, fence=token)
    assert await store.renew_lease("CP1", "replica-a", token, LONG) is True
    assert await store.lease_holder("CP1") == ("replica-a", token)


@pytest.mark.parametrize("ttl", [0.0, -1.0, float("nan")])
async def test_a_lease_ttl_must_be_positive(store: Store, ttl: float) -> None:
    """A zero, negative or NaN ttl is a caller bug."""
    with pytest.raises(ValueError, match="ttl"):
        await store.acquire_lease("CP1", "replica-a", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.renew_lease("CP1", "replica-a", 1, ttl)


async def test_lease_tokens_survive_reopen(durable: Factory) -> None:
    """Tokens never repeat across restarts, even after the lease was released."""
    store = await opened(durable)
    try:
        await store.acquire_lease("CP1", "replica-a", LONG)
        held = await store.acquire_lease("CP1", "replica-a", LONG)
        gone = await store.acquire_lease("CP2", "replica-a", LONG)
        await store.release_lease("CP2", "replica-a", gone)
    finally:
        await store.close()

    store = await opened(durable)
    try:
        assert await store.lease_holder("CP1") == ("replica-a", held)
        assert await store.lease_holder("CP2") is None
        assert await store.acquire_lease("CP1", "replica-b", LONG) > held
        assert await store.acquire_lease("CP2", "replica-b", LONG) > gone
        with pytest.raises(StaleLease):
            await store.commit("CP1", FULL_CHANGE, fence=held)
    finally:
        await store.close()


# --- charger credentials (security profiles 1 and 2) -------------------------------------

# Stores keep hashes as opaque strings: PHC-shaped ones, without paying for the KDF.
HASH_A = "$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
HASH_B = "$scrypt$ln=14,r=8,p=1$dGxhc3RsYXN0bGFzdHRsYQ$eWVreWVreWVreWVreWVreWVreWVreWVreWU"
HASH_C = "$scrypt$ln=15,r=8,p=1$b3RoZXJvdGhlcm90aGVyb3Q$b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm8"


def credential(station_id: str = "CP1", **changes: Any) -> CredentialRecord:
    values: dict[str, Any] = {"password_hashes": (HASH_A,), "updated_at": 1714564800.25} | changes
    return CredentialRecord(station_id, **values)


async def test_a_credential_round_trips_every_field(store: Store) -> None:
    """Hashes come back in their order, previous ones and the time included."""
    record = credential(password_hashes=(HASH_A, HASH_B), previous_hashes=(HASH_C,))

    await store.put_credential(record)

    assert await store.get_credential("CP1") == record


async def test_a_credential_without_previous_hashes_has_an_empty_tuple(store: Store) -> None:
    """No rotation pending: previous_hashes is () (not None, not a list)."""
    await store.put_credential(CredentialRecord("CP1", (HASH_A,)))

    found = await store.get_credential("CP1")
    assert found == CredentialRecord("CP1", (HASH_A,), (), 0.0)
    assert found is not None and found.previous_hashes == ()


async def test_unknown_station_has_no_credential(store: Store) -> None:
    """Nothing stored: None, and an empty list."""
    assert await store.get_credential("CP1") is None
    assert await store.list_credentials() == []


async def test_put_credential_replaces_the_whole_record(store: Store) -> None:
    """A second put is the record: a rotation's previous hashes go when the new has none."""
    await store.put_credential(credential(password_hashes=(HASH_A,), previous_hashes=(HASH_B,)))
    replacement = credential(password_hashes=(HASH_C,), updated_at=1714568400.0)

    await store.put_credential(replacement)

    assert await store.get_credential("CP1") == replacement
    assert await store.list_credentials() == [replacement]


async def test_delete_credential_says_whether_there_was_one(store: Store) -> None:
    """Revoke: True the first time, False after; the record is gone from get and list."""
    await store.put_credential(credential())

    assert await store.delete_credential("CP1") is True
    assert await store.delete_credential("CP1") is False
    assert await store.get_credential("CP1") is None
    assert await store.list_credentials() == []


async def test_credentials_are_listed_by_station_id(store: Store) -> None:
    """Every record, in station id order (as strings: CP10 before CP2)."""
    for station_id in ("CP3", "CP10", "CP1", "CP2"):
        await store.put_credential(credential(station_id))

    listed = await store.list_credentials()

    assert [record.station_id for record in listed] == ["CP1", "CP10", "CP2", "CP3"]
    assert listed[0] == credential("CP1")


async def test_two_stations_credentials_are_independent(store: Store) -> None:
    """One station's put and revoke leave another's record (and station record) alone."""
    await store.put_station(station("CP1"))
    await store.put_credential(credential("CP1", password_hashes=(HASH_A,)))
    await store.put_credential(credential("CP2", password_hashes=(HASH_B,)))

    await store.put_credential(credential("CP1", password_hashes=(HASH_C,)))
    assert await store.get_credential("CP2") == credential("CP2", password_hashes=(HASH_B,))

    assert await store.delete_credential("CP2") is True
    assert await store.get_credential("CP1") == credential("CP1", password_hashes=(HASH_C,))
    assert await store.get_station("CP1") == station("CP1")
    assert await store.delete_credential("CP3") is False


async def test_credentials_survive_close_and_reopen(durable: Factory) -> None:
    """A stored, replaced and revoked credential reads the same after a restart."""
    kept = credential("CP1", password_hashes=(HASH_B, HASH_C), previous_hashes=(HASH_A,))
    store = await opened(durable)
    try:
        await store.put_credential(credential("CP1"))
        await store.put_credential(kept)
        await store.put_credential(credential("CP2"))
        await store.delete_credential("CP2")
    finally:
        await store.close()

    store = await opened(durable)
    try:
        assert await store.get_credential("CP1") == kept
        assert await store.get_credential("CP2") is None
        assert await store.list_credentials() == [kept]
        assert await store.delete_credential("CP2") is False
    finally:
        await store.close()


async def test_credentials_survive_reopening_the_sqlite_file(path: str) -> None:
    """SQLite: the record is in the file, under the latest schema."""
    store = await reopened(path)
    try:
        await store.put_credential(credential(previous_hashes=(HASH_B,)))
    finally:
        await store.close()

    store = await reopened(path)
    try:
        assert await store.list_credentials() == [credential(previous_hashes=(HASH_B,))]
    finally:
        await store.close()
    assert _user_version(path) == LATEST_SCHEMA


async def test_a_corrupt_stored_credential_is_a_state_error_that_does_not_show_it(
    path: str,
) -> None:
    """A column that is not a JSON array of strings: StateError naming the station only."""
    store = await reopened(path)
    await store.close()
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO credentials (station_id, password_hashes, previous_hashes, updated_at) "
        "VALUES ('CP1', ?, '[]', 0)",
        (HASH_A,),  # a bare hash, not an array of them
    )
    db.commit()
    db.close()

    store = await reopened(path)
    try:
        with pytest.raises(StateError, match="CP1") as raised:
            await store.get_credential("CP1")
    finally:
        await store.close()
    assert HASH_A not in str(raised.value)


# --- migration routing (issue 9) -------------------------------------------------------

RULES_V1 = '{"version": 1, "rules": [{"route": "legacy", "pattern": "ACME-*"}]}'
RULES_V2 = '{"version": 1, "rules": [{"route": "legacy", "percent": 25.0, "name": "w1"}]}'


async def test_a_route_state_round_trips_every_field(store: Store) -> None:
    """Route and the legacy CSMS's open transactions come back as stored, as a tuple."""
    state = RouteState("CP1", "legacy", (17, 3, 2**40))

    await store.put_route_state(state)

    found = await store.get_route_state("CP1")
    assert found == state
    assert found is not None and isinstance(found.legacy_transactions, tuple)
    assert await store.get_route_state("CP2") is None


async def test_put_route_state_replaces_the_whole_state(store: Store) -> None:
    """A second put is the state: transactions gone when the new one has none."""
    await store.put_route_state(RouteState("CP1", "legacy", (1, 2)))
    await store.put_route_state(RouteState("CP2", "legacy", (5,)))

    await store.put_route_state(RouteState("CP1", "translate"))

    assert await store.get_route_state("CP1") == RouteState("CP1", "translate", ())
    assert await store.get_route_state("CP2") == RouteState("CP2", "legacy", (5,))


async def test_route_states_of_odd_station_ids_are_kept_apart(store: Store) -> None:
    """Ids with braces, percent signs and non-ASCII (Redis hash tags) do not collide."""
    ids = ["CP{1}", "CP%7B1%7D", "Ladesäule 1", ""]
    for n, station_id in enumerate(ids):
        await store.put_route_state(RouteState(station_id, "legacy", (n,)))

    for n, station_id in enumerate(ids):
        assert await store.get_route_state(station_id) == RouteState(station_id, "legacy", (n,))


async def test_no_routing_document_until_one_is_stored(store: Store) -> None:
    assert await store.get_routing_document() is None


async def test_routing_document_versions_grow_by_one_per_write(store: Store) -> None:
    """The first write expects version 0 and makes 1; each later one expects the last."""
    assert await store.put_routing_document(RULES_V1, 0) == 1
    assert await store.get_routing_document() == (RULES_V1, 1)

    assert await store.put_routing_document(RULES_V2, 1) == 2
    assert await store.get_routing_document() == (RULES_V2, 2)


@pytest.mark.parametrize("stale", [0, 1, 3])
async def test_a_stale_expected_version_writes_nothing(store: Store, stale: int) -> None:
    """Compare-and-set: any other version than the stored one gives None, no change."""
    await store.put_routing_document(RULES_V1, 0)
    await store.put_routing_document(RULES_V1, 1)

    assert await store.put_routing_document(RULES_V2, stale) is None

    assert await store.get_routing_document() == (RULES_V1, 2)


async def test_a_first_write_expecting_a_version_writes_nothing(store: Store) -> None:
    assert await store.put_routing_document(RULES_V1, 1) is None
    assert await store.get_routing_document() is None


async def test_of_two_writers_expecting_the_same_version_one_wins(durable: Factory) -> None:
    """Two replicas (two stores on one file or server) racing: exactly one succeeds, and
    the stored text is the winner's."""
    first, second = await opened(durable), await opened(durable)
    try:
        await first.put_routing_document(RULES_V1, 0)
        for _ in range(5):
            (_, version) = await first.get_routing_document() or ("", 0)
            results = await asyncio.gather(
                first.put_routing_document(f'{{"by": "first", "n": {version}}}', version),
                second.put_routing_document(f'{{"by": "second", "n": {version}}}', version),
            )
            assert sorted(results, key=lambda r: r is None) == [version + 1, None]
            winner = "first" if results[0] is not None else "second"
            assert await second.get_routing_document() == (
                f'{{"by": "{winner}", "n": {version}}}',
                version + 1,
            )
    finally:
        await first.close()
        await second.close()


async def test_routing_survives_close_and_reopen(durable: Factory) -> None:
    """Route states and the routing document (text and version) are kept."""
    store = await opened(durable)
    try:
        await store.put_route_state(RouteState("CP1", "legacy", (4, 9)))
        await store.put_routing_document(RULES_V1, 0)
        await store.put_routing_document(RULES_V2, 1)
    finally:
        await store.close()

    store = await opened(durable)
    try:
        assert await store.get_route_state("CP1") == RouteState("CP1", "legacy", (4, 9))
        assert await store.get_routing_document() == (RULES_V2, 2)
        assert await store.put_routing_document(RULES_V1, 1) is None
        assert await store.put_routing_document(RULES_V1, 2) == 3
    finally:
        await store.close()


async def test_routing_tables_are_in_the_sqlite_file_under_the_latest_schema(path: str) -> None:
    """SQLite: migration 13 adds route_states and routing; an old file gets them too."""
    _version_2_database(path)
    store = await reopened(path)
    try:
        await store.put_route_state(RouteState("CP1", "translate", (1,)))
        assert await store.put_routing_document(RULES_V1, 0) == 1
    finally:
        await store.close()
    assert _user_version(path) == LATEST_SCHEMA == 13
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT * FROM route_states").fetchall() == [("CP1", "translate", "[1]")]
        assert db.execute("SELECT id, text, version FROM routing").fetchall() == [(1, RULES_V1, 1)]
        with pytest.raises(sqlite3.IntegrityError):  # one document, never two rows
            db.execute("INSERT INTO routing (id, text, version) VALUES (2, '', 1)")
    finally:
        db.close()


async def test_a_corrupt_stored_route_state_is_a_state_error(path: str) -> None:
    store = await reopened(path)
    await store.close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO route_states VALUES ('CP1', 'legacy', '[1, \"two\"]')")
    db.commit()
    db.close()

    store = await reopened(path)
    try:
        with pytest.raises(StateError, match="CP1"):
            await store.get_route_state("CP1")
    finally:
        await store.close()


async def test_the_instrumented_store_forwards_and_times_the_routing_calls() -> None:
    metrics = GatewayMetrics()
    store = InstrumentedStore(MemoryStore(), metrics.store_duration)

    await store.put_route_state(RouteState("CP1", "legacy", (1,)))
    assert await store.get_route_state("CP1") == RouteState("CP1", "legacy", (1,))
    assert await store.put_routing_document(RULES_V1, 0) == 1
    assert await store.get_routing_document() == (RULES_V1, 1)

    for operation in (
        "get_route_state",
        "put_route_state",
        "get_routing_document",
        "put_routing_document",
    ):
        sample = "ocpp_gateway_store_operation_duration_seconds_count"
        assert metrics.registry.get_sample_value(sample, {"operation": operation}) == 1.0


# --- lifecycle and durability --------------------------------------------------------


async def test_ping_answers_while_open(store: Store) -> None:
    """An open store answers ping."""
    await store.ping()


async def test_a_closed_store_raises_state_error(durable: Factory) -> None:
    """Using a closed store is a StateError, not a crash of the executor or the pool."""
    store = await opened(durable)
    await store.close()

    with pytest.raises(StateError):
        await store.ping()


async def test_everything_survives_close_and_reopen(durable: Factory) -> None:
    """Station, transactions, outbox (with offline flags), counter and cache are kept."""
    record = station(connector_statuses={1: "Charging"}, remote_starts=({"remoteStartId": 1},))
    running = transaction(legacy_id=2, id_token=TOKEN)
    store = await opened(durable)
    assert await store.allocate_legacy_id("CP1") == 1
    assert await store.allocate_legacy_id("CP1") == 2
    positions = await store.commit(
        "CP1",
        Change(
            station=record,
            transactions=(running,),
            append=(message(n=0), message(n=1, offline=True)),
            authorizations=(("Tag", {"status": "Accepted"}),),
        ),
    )
    await store.close()

    store = await opened(durable)
    try:
        assert await store.get_station("CP1") == record
        assert await store.open_transactions("CP1") == [running]
        assert await store.pending_outbox("CP1") == [
            message(n=0, position=positions[0]),
            message(n=1, position=positions[1], offline=True),
        ]
        assert await store.get_authorization("CP1", "TAG") == {"status": "Accepted"}
        assert await store.allocate_legacy_id("CP1") == 3
    finally:
        await store.close()


async def test_an_allocated_id_is_not_given_again_after_reopen(durable: Factory) -> None:
    """Allocation commits on its own: an id never used by a transaction stays spent."""
    store = await opened(durable)
    await store.allocate_legacy_id("CP1")
    await store.close()

    store = await opened(durable)
    try:
        assert await store.allocate_legacy_id("CP1") == 2
    finally:
        await store.close()


def _version_2_database(path: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE station (
            station_id TEXT PRIMARY KEY, boot BLOB NOT NULL,
            registration TEXT NOT NULL, updated_at REAL NOT NULL
        );
        ALTER TABLE station ADD COLUMN connector_errors BLOB NOT NULL DEFAULT '{}';
        PRAGMA user_version = 2;
        """
    )
    db.execute(
        "INSERT INTO station (station_id, boot, registration, updated_at, connector_errors) "
        "VALUES ('CP1', ?, 'Accepted', 0, ?)",
        (b'{"chargePointVendor":"Acme","chargePointModel":"Volt 22"}', b'{"2":"GroundFailure"}'),
    )
    db.commit()
    db.close()


def _user_version(path: str) -> int:
    db = sqlite3.connect(path)
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        return int(version)
    finally:
        db.close()


async def test_a_version_2_database_is_migrated_keeping_its_stations(path: str) -> None:
    """Opening an old file upgrades it; old rows get empty new fields; new tables work."""
    _version_2_database(path)

    store = await reopened(path)
    try:
        assert await store.get_station("CP1") == StationRecord(
            "CP1", BOOT, "Accepted", connector_errors={2: "GroundFailure"}
        )
        assert await store.commit("CP1", Change(transactions=(transaction(),), append=(message(),)))
        assert await store.allocate_legacy_id("CP1") == 2
        assert await store.acquire_lease("CP1", "replica-a", LONG) == 1
        await store.put_credential(credential())
        assert await store.list_credentials() == [credential()]
    finally:
        await store.close()
    assert _user_version(path) == LATEST_SCHEMA


async def test_a_failed_migration_leaves_the_old_schema(path: str) -> None:
    """A migration that fails is rolled back whole: the file stays at its old version."""
    _version_2_database(path)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE outbox (position INTEGER PRIMARY KEY)")  # in the way of 5
    db.commit()
    db.close()

    with pytest.raises(StateError, match="outbox"):
        await reopened(path)

    assert _user_version(path) == 4


async def test_a_database_newer_than_the_code_is_refused(path: str) -> None:
    """A file written by a newer gateway is not touched: StateError on open."""
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {LATEST_SCHEMA + 1}")
    db.close()

    store = SqliteStore(path)
    with pytest.raises(StateError, match="newer"):
        await store.open()
    await store.close()


def test_transaction_columns_follow_the_record_fields() -> None:
    """The txn row layout is the TransactionRecord field order, so no field is dropped."""
    assert tuple(field.name for field in fields(TransactionRecord)) == TRANSACTION_COLUMNS


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", MemoryStore),
        ("sqlite:///x/state.db", SqliteStore),
        ("redis://localhost:6379/0", RedisStore),
        ("redis://:secret@redis.example:6380/2?socket_timeout=2", RedisStore),
        ("rediss://redis.example:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem", RedisStore),
    ],
)
def test_open_store_picks_the_backend_from_the_url(url: str, kind: type) -> None:
    """--state URLs name the backend; building a store connects nothing yet."""
    assert isinstance(open_store(url), kind)


def test_an_unknown_state_url_is_refused_without_its_password() -> None:
    """A URL of no known backend is a StateError that does not repeat the password."""
    with pytest.raises(StateError, match="unsupported") as raised:
        open_store("postgres://user:hunter2@db/state")

    assert "hunter2" not in str(raised.value)
