"""gateway.session.ownership against a real Redis: two replicas' LeaseKeepers, one
station. The two-process behaviour is in tests/integration/test_replicas.py; this pins
the rules both rely on, without processes: a newer owner fences the older one's writes
off, and the older one learns it has lost the station, once, by either path."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.metrics import GatewayMetrics
from gateway.session.ownership import FencedStore, LeaseKeeper
from gateway.state import Change, OutboxMessage, StaleLease, StationRecord
from gateway.state.redis import RedisStore
from tests.redis_server import redis_prefix, redis_url

__all__ = ["redis_prefix", "redis_url"]  # fixtures, re-exported for this module

STATION = "CP-1"


@pytest.fixture
async def stores(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two replicas' stores: separate connection pools, one Redis, one key prefix."""
    pair = (RedisStore(redis_url, prefix=redis_prefix), RedisStore(redis_url, prefix=redis_prefix))
    for store in pair:
        await store.open()
    yield pair
    for store in pair:
        await store.close()


def keeper(store: RedisStore, owner: str, metrics: GatewayMetrics) -> LeaseKeeper:
    return LeaseKeeper(store, owner=owner, ttl=30.0, metrics=metrics)


def sample(metrics: GatewayMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None
    return value


async def test_a_superseded_owner_cannot_write_and_learns_it_lost(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    metrics_a, metrics_b = GatewayMetrics(), GatewayMetrics()
    a, b = keeper(stores[0], "A", metrics_a), keeper(stores[1], "B", metrics_b)
    lost: list[str] = []
    lease_a = await a.acquire(STATION, on_lost=lost.append)
    fenced_a = FencedStore(stores[0], a, lease_a)
    await fenced_a.commit(STATION, Change(append=(OutboxMessage("Heartbeat", {}),)))

    lease_b = await b.acquire(STATION, on_lost=lambda _why: None)
    assert lease_b.token > lease_a.token
    record = StationRecord(STATION, {"chargePointVendor": "A"}, "Accepted")
    with pytest.raises(StaleLease):
        await fenced_a.put_station(record)
    with pytest.raises(StaleLease):
        await fenced_a.commit(STATION, Change(append=(OutboxMessage("Heartbeat", {}),)))

    assert len(lost) == 1 and "fencing token" in lost[0]  # once, however many writes
    assert await stores[1].get_station(STATION) is None  # nothing of A's got through
    assert len(await stores[1].pending_outbox(STATION)) == 1  # only the write before B
    assert sample(metrics_a, "ocpp_gateway_station_leases_lost_total") == 1
    assert sample(metrics_a, "ocpp_gateway_station_leases") == 0
    assert await stores[0].lease_holder(STATION) == ("B", lease_b.token)

    fenced_b = FencedStore(stores[1], b, lease_b)
    await fenced_b.put_station(record)
    assert await stores[0].get_station(STATION) == record


async def test_renewal_tells_an_idle_owner_it_lost_and_release_frees_the_station(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    metrics = GatewayMetrics()
    a, b = keeper(stores[0], "A", metrics), keeper(stores[1], "B", GatewayMetrics())
    lost: list[str] = []
    lease_a = await a.acquire(STATION, on_lost=lost.append)
    await a.renew_all()
    assert lost == []
    lease_b = await b.acquire(STATION, on_lost=lambda _why: None)
    await a.renew_all()
    assert lost == ["another replica took the lease"]
    await a.release(lease_a)  # a stale holder's release must not free B's lease
    assert await stores[0].lease_holder(STATION) == ("B", lease_b.token)
    await b.release(lease_b)
    assert await stores[0].lease_holder(STATION) is None
    assert a.held == 0 and b.held == 0
