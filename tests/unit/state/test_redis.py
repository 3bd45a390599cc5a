"""What only the Redis store has: replicas racing on one server, keys, URLs and secrets.

Two RedisStore instances (two connection pools) on one key prefix stand for two gateway
replicas. The contract every store keeps is in test_stores.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from redis.crc import key_slot

from gateway.state import (
    Change,
    OutboxMessage,
    StaleLease,
    StateError,
    TransactionRecord,
    open_store,
)
from gateway.state.redis import RedisStore, _Keys
from gateway.state.redis_scripts import COMMIT_KEYS
from tests.redis_server import free_port, redis_server

Replicas = tuple[RedisStore, RedisStore]


def transaction(transaction_id: str, legacy_id: int, station_id: str = "CP1") -> TransactionRecord:
    return TransactionRecord(
        station_id, transaction_id, legacy_id, 1, 1, 0, "2024-05-01T12:00:00Z", "start"
    )


def message(replica: int, n: int) -> OutboxMessage:
    return OutboxMessage("MeterValues", {"replica": replica, "n": n})


@pytest.fixture
async def replicas(redis_url: str, redis_prefix: str) -> AsyncIterator[Replicas]:
    first, second = (
        RedisStore(redis_url, prefix=redis_prefix),
        RedisStore(redis_url, prefix=redis_prefix),
    )
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{password}@{host}"))


def keys_of(redis_url: str, prefix: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return sorted(client.scan_iter(match=f"{prefix}*"))
    finally:
        client.close()


# --- replicas racing ------------------------------------------------------------------


async def test_legacy_ids_allocated_by_two_replicas_are_distinct(replicas: Replicas) -> None:
    """200 allocations racing from two pools: every id once, 1..200."""
    first, second = replicas

    ids = await asyncio.gather(*(replicas[n % 2].allocate_legacy_id("CP1") for n in range(200)))

    assert sorted(ids) == list(range(1, 201))
    assert await first.allocate_legacy_id("CP1") == await second.allocate_legacy_id("CP1") - 1


async def test_outbox_appends_racing_from_two_replicas_lose_nothing(replicas: Replicas) -> None:
    """Commits racing from two pools: distinct positions, each commit's own consecutive,
    and pending_outbox gives every message back in position order."""
    changes = [
        Change(append=(message(n % 2, 2 * n), message(n % 2, 2 * n + 1))) for n in range(100)
    ]

    given = await asyncio.gather(
        *(replicas[n % 2].commit("CP1", change) for n, change in enumerate(changes))
    )

    positions = [position for pair in given for position in pair]
    assert len(set(positions)) == 200
    assert all(second == first + 1 for first, second in given)
    pending = await replicas[0].pending_outbox("CP1")
    assert [m.position for m in pending] == sorted(positions)
    by_position = {m.position: m.payload for m in pending}
    for change, pair in zip(changes, given, strict=True):
        assert [by_position[p] for p in pair] == [m.payload for m in change.append]


async def test_a_legacy_id_taken_by_the_other_replica_fails_the_whole_change(
    replicas: Replicas,
) -> None:
    """The uniqueness check runs inside the script: nothing of the failing change lands."""
    first, second = replicas
    await first.commit("CP1", Change(transactions=(transaction("tx-1", 1),)))
    failing = Change(
        station=None,
        transactions=(transaction("tx-2", 2), transaction("tx-3", 1)),
        append=(message(1, 0),),
        authorizations=(("tag", {"status": "Accepted"}),),
    )

    with pytest.raises(StateError, match="legacy id 1"):
        await second.commit("CP1", failing)

    assert await first.open_transactions("CP1") == [transaction("tx-1", 1)]
    assert await first.find_transaction("CP1", transaction_id="tx-2") is None
    assert await first.pending_outbox("CP1") == []
    assert await first.get_authorization("CP1", "tag") is None
    assert await first.allocate_legacy_id("CP1") == 2


async def test_a_replica_that_lost_the_lease_cannot_commit(replicas: Replicas) -> None:
    """The charger reconnected to the other replica: the old one's fenced writes bounce."""
    first, second = replicas
    old = await first.acquire_lease("CP1", "replica-1", 30.0)
    new = await second.acquire_lease("CP1", "replica-2", 30.0)

    with pytest.raises(StaleLease):
        await first.commit("CP1", Change(append=(message(1, 0),)), fence=old)
    assert await first.renew_lease("CP1", "replica-1", old, 30.0) is False

    assert await second.commit("CP1", Change(append=(message(2, 0),)), fence=new)
    assert [m.payload for m in await first.pending_outbox("CP1")] == [{"replica": 2, "n": 0}]


async def test_prune_by_one_replica_forgets_what_the_other_ended(replicas: Replicas) -> None:
    """The ended-transaction index is shared: prune finds other replicas' stations."""
    first, second = replicas
    ended = TransactionRecord(
        "CP7", "tx-1", 1, 1, 1, 3, "2024-05-01T12:00:00Z", "start", ended=True, ended_at=10.0
    )
    await second.commit("CP7", Change(transactions=(ended,)))

    assert await first.prune(20.0) == 1
    assert await second.find_transaction("CP7", legacy_id=1) is None
    assert await first.prune(20.0) == 0


# --- keys -------------------------------------------------------------------------------


def test_key_fields_follow_the_script_order() -> None:
    """_Keys and the commit script's KEYS agree, name for name."""
    assert _Keys._fields == tuple(name.replace("-", "_") for name in COMMIT_KEYS)


@pytest.mark.parametrize("station_id", ["CP1", "CP{1}", "}odd{", "a%7Bb"])
async def test_a_station_s_keys_share_one_cluster_slot(
    redis_url: str, redis_prefix: str, station_id: str
) -> None:
    """Every key of a station hashes to one slot (one script may touch them all), and a
    brace in an id neither breaks the tag nor makes two stations share keys."""
    store = RedisStore(redis_url, prefix=redis_prefix)
    await store.open()
    try:
        token = await store.acquire_lease(station_id, "replica-1", 30.0)
        await store.allocate_legacy_id(station_id)
        ended = TransactionRecord(
            station_id, "tx-1", 1, 1, 1, 3, "t", "k", ended=True, ended_at=10.0
        )
        await store.commit(
            station_id,
            Change(
                transactions=(ended, transaction("tx-2", 2, station_id)),
                append=(message(1, 0),),
                authorizations=(("tag", {"status": "Accepted"}),),
            ),
            fence=token,
        )
        assert await store.get_station("a{b") is None
        assert await store.open_transactions("a{b") == []
    finally:
        await store.close()

    station_keys = [
        key for key in keys_of(redis_url, redis_prefix) if key != f"{redis_prefix}prune"
    ]
    assert len(station_keys) == len(COMMIT_KEYS) - 1  # every key but the station record's
    assert len({key_slot(key.encode()) for key in station_keys}) == 1


# --- URLs and secrets -------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private server that requires a password (its URL carries the right one)."""
    with redis_server(tmp_path_factory.mktemp("redis-auth"), password="right-Secret-0c1d") as url:
        yield url


async def test_a_wrong_password_is_a_state_error_that_does_not_show_it(
    password_redis: str,
) -> None:
    """open() fails with StateError; neither it nor its cause repeats the password."""
    password = "wrong-Secret-5f3a9c"
    store = RedisStore(with_password(password_redis, password))

    with pytest.raises(StateError) as raised:
        await store.open()
    await store.close()

    assert password not in str(raised.value)
    assert password not in repr(raised.value.__cause__)
    assert "***" in str(raised.value)


async def test_the_right_password_opens_the_store(password_redis: str) -> None:
    """The password in the URL is used: with it, the store answers."""
    store = RedisStore(password_redis, prefix=f"ocppgw-test:{uuid.uuid4().hex}:")
    await store.open()
    try:
        assert await store.allocate_legacy_id("CP1") == 1
    finally:
        await store.close()


async def test_an_unreachable_server_fails_ping_with_a_state_error() -> None:
    """Nothing listening: StateError (for /readyz), the password masked."""
    store = RedisStore(f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0", connect_timeout=2.0)

    with pytest.raises(StateError, match=r"127\.0\.0\.1") as raised:
        await store.ping()
    await store.close()

    assert "hunter2-secret" not in str(raised.value)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private server speaking only TLS; its URL names the CA file in ssl_ca_certs."""
    with redis_server(tmp_path_factory.mktemp("redis-tls"), tls=True) as url:
        yield url


async def test_rediss_passes_the_ssl_options_through(tls_redis: str) -> None:
    """rediss:// with ssl_ca_certs and ssl_cert_reqs=required reaches a TLS-only server."""
    store = RedisStore(f"{tls_redis}&ssl_cert_reqs=required", prefix="ocppgw-tls:")
    await store.open()
    try:
        assert await store.allocate_legacy_id("CP1") == 1
    finally:
        await store.close()


async def test_rediss_refuses_a_server_it_cannot_verify(tls_redis: str) -> None:
    """Without the CA the server's certificate does not verify: StateError, not a hang."""
    untrusted = tls_redis.partition("?")[0]
    store = RedisStore(untrusted)

    with pytest.raises(StateError, match="certificate"):
        await store.open()
    await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter2@localhost:6379/0?nonsense=1",
        "redis://:hunter2@localhost:6379/0?ssl_ca_certs=/ca.pem",  # TLS options need rediss
        "redis://:hunter2@localhost:6379/0?ssl_check_hostname=no",
        "redis://:hunter2@localhost:6379/0?socket_timeout=soon",
        "redis://:hunter2@localhost:6379/0?retry_on_timeout=yes",  # could apply a commit twice
    ],
    ids=["unknown", "tls-without-rediss", "hostname-without-rediss", "bad-value", "retry"],
)
def test_a_bad_url_option_is_refused_up_front(url: str) -> None:
    """An option redis-py would trip over only when connecting is a StateError at once."""
    with pytest.raises(StateError) as raised:
        RedisStore(url)

    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "prefix"), [("redis://localhost:6379/0", "{gw}:"), ("redis://h/0?prefix={gw}:", None)]
)
def test_a_prefix_with_braces_is_refused(url: str, prefix: str | None) -> None:
    """Braces in the prefix would become the hash tag: every station in one slot."""
    with pytest.raises(StateError, match="prefix"):
        RedisStore(url, prefix=prefix)


async def test_the_url_can_name_the_key_prefix(redis_url: str, redis_prefix: str) -> None:
    """?prefix= in --state puts the keys under it, so two gateways can share a server."""
    separator = "&" if urlsplit(redis_url).query else "?"
    store = open_store(f"{redis_url}{separator}prefix={redis_prefix}&socket_timeout=3")
    await store.open()
    try:
        await store.commit("CP1", Change(append=(message(1, 0),)))
    finally:
        await store.close()

    assert keys_of(redis_url, redis_prefix) == [
        f"{redis_prefix}{{CP1}}:outbox",
        f"{redis_prefix}{{CP1}}:outbox-seq",
    ]


async def test_a_payload_json_cannot_hold_fails_before_redis_is_asked(
    redis_url: str, redis_prefix: str
) -> None:
    """Serialisation is checked in Python first: nothing is written, no counter moves."""
    store = RedisStore(redis_url, prefix=redis_prefix)
    await store.open()
    bad: dict[str, Any] = {"data": object()}
    try:
        with pytest.raises(StateError, match="cannot store"):
            await store.commit("CP1", Change(append=(message(1, 0), OutboxMessage("X", bad))))
    finally:
        await store.close()

    assert keys_of(redis_url, redis_prefix) == []
