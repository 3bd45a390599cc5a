"""Metrics a running gateway keeps, and its graceful stop (SIGTERM) with a real CSMS sim.

- ``ocpp_gateway_active_transactions`` follows starts, stops, and the station's
  connection (its open transactions count while it is connected).
- ``ocpp_gateway_outbox_oldest_age_seconds`` grows while a message waits for the CSMS and
  is 0 once it was delivered.
- ``ocpp_gateway_store_operation_duration_seconds`` times the store calls sessions make.
- ``stop()`` refuses new chargers (HTTP 503) and fails /readyz at once, delivers what
  waits in the outboxes, then closes the chargers with 1001.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from websockets.exceptions import InvalidStatus

from gateway.app import Gateway
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.state import open_store
from tests.integration.helpers import charger_url_of, http_get, metric
from tests.integration.test_transactions import TAG, now

pytestmark = pytest.mark.integration

ACTIVE = "ocpp_gateway_active_transactions"
OLDEST = "ocpp_gateway_outbox_oldest_age_seconds"
PENDING = "ocpp_gateway_outbox_pending"


async def cut_off(csms: CsmsSim, station_id: str = "CP-1") -> None:
    """The CSMS goes away for this station and refuses it until told otherwise."""
    csms.refuse_connections = True
    await csms.drop(station_id)


async def wait_metric_above(gateway: Gateway, name: str, floor: float) -> float:
    """Poll a gauge computed at scrape time (no event exists for it), bounded."""
    for _ in range(100):
        value = metric(gateway, name)
        if value > floor:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} stayed at {metric(gateway, name)}")


async def test_active_transactions_follow_starts_stops_and_the_connection(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    assert metric(gateway, ACTIVE) == 0
    first = await booted.start_transaction(1, TAG, 0, now())
    assert metric(gateway, ACTIVE) == 1
    await booted.stop_transaction(first["transactionId"], 1000, now())
    assert metric(gateway, ACTIVE) == 0

    second = await booted.start_transaction(1, TAG, 1000, now())
    assert metric(gateway, ACTIVE) == 1
    # Gone: its transaction stays open in the store, but no longer counts here.
    await booted.close()
    await csms.wait_disconnected("CP-1")  # the session closed its desk before this
    assert metric(gateway, ACTIVE) == 0
    # Back: the session loads the open transaction before it reads a frame.
    await booted.connect()
    await booted.heartbeat()
    assert metric(gateway, ACTIVE) == 1
    await booted.stop_transaction(second["transactionId"], 2000, now())
    assert metric(gateway, ACTIVE) == 0


async def test_outbox_oldest_age_grows_while_the_csms_is_away_and_is_zero_after_delivery(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    assert metric(gateway, OLDEST) == 0
    await cut_off(csms)
    await booted.status(1, "Available")  # answered by the gateway, stored in the outbox
    assert metric(gateway, PENDING) == 1
    first = await wait_metric_above(gateway, OLDEST, 0)
    assert await wait_metric_above(gateway, OLDEST, first) > first  # it is an age: it grows

    csms.refuse_connections = False
    await csms.wait_for("StatusNotification", station_id="CP-1")
    # The upstream link is back: a forwarded CALL goes only once the outbox is delivered.
    await booted.data_transfer("com.example")
    assert metric(gateway, PENDING) == 0
    assert metric(gateway, OLDEST) == 0


async def test_store_operations_are_timed(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    count = "ocpp_gateway_store_operation_duration_seconds_count"
    assert metric(gateway, count, operation="get_station") >= 1  # the session loaded it
    assert metric(gateway, count, operation="commit") >= 1  # the boot's station record
    commits = metric(gateway, count, operation="commit")
    await booted.status(1, "Available")  # committed before the charger is answered
    assert metric(gateway, count, operation="commit") > commits


async def test_stop_refuses_new_chargers_and_delivers_the_outbox_before_closing(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    """SIGTERM: /readyz fails and a new charger gets HTTP 503 at once; a message queued
    while the CSMS was briefly down reaches it before the charger is closed with 1001."""
    # A long grace: the CSMS comes back well within its drain share, however slow the host.
    gateway = await make_gateway(shutdown_grace=30.0)
    url = charger_url_of(gateway)
    charger = chargers(url, "CP-1")
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    await cut_off(csms)
    await charger.status(1, "Available")
    assert metric(gateway, PENDING) == 1
    ops_port = gateway.ops_port
    assert ops_port is not None

    stopping = asyncio.create_task(gateway.stop())
    status, body = await http_get(ops_port, "/readyz")
    assert (status, body) == (503, "not ready: draining\n")
    newcomer = chargers(url, "CP-2")
    with pytest.raises(InvalidStatus) as refused:
        await newcomer.connect()
    assert refused.value.response.status_code == 503
    refused_draining = metric(
        gateway, "ocpp_gateway_charger_handshakes_total", outcome="refused_draining"
    )
    assert refused_draining == 1
    assert charger.connected, "the charger stays while its outbox waits for the CSMS"
    assert not stopping.done()

    csms.refuse_connections = False  # back: the outbox drains, then the charger closes
    async with asyncio.timeout(30):
        await stopping
    assert await charger.wait_closed() == (1001, "gateway shutting down")
    delivered = csms.received("StatusNotification", station_id="CP-1")
    assert [m.payload["connectorStatus"] for m in delivered] == ["Available"]
    assert (
        metric(
            gateway,
            "ocpp_gateway_outbox_delivered_total",
            action="StatusNotification",
            offline="true",
        )
        == 1
    )
    assert csms.connection_count("CP-2") == 0
    # The delivery was recorded, and the station record is on disk.
    store = open_store(gateway.settings.state)
    await store.open()
    try:
        assert await store.pending_outbox("CP-1") == []
        station = await store.get_station("CP-1")
        assert station is not None and station.registration == "Accepted"
    finally:
        await store.close()
