"""Charger handshakes, duplicate identities, and both connections' life cycles."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from gateway.app import Gateway
from gateway.session.links import TraceEvent
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.wire import CallErrorReceived, JsonObject
from gateway.state import Change, StationRecord, Store, open_store

from .helpers import charger_url_of, metric

pytestmark = pytest.mark.integration


async def refused_status(url: str, subprotocols: list[str] | None) -> int:
    """Try a handshake that must be refused; the HTTP status the gateway answered."""
    offered = [Subprotocol(name) for name in subprotocols] if subprotocols is not None else None
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, subprotocols=offered, open_timeout=5, ping_interval=None):
            pass
    return refused.value.response.status_code


def handshakes(gateway: Gateway, outcome: str) -> float:
    return metric(gateway, "ocpp_gateway_charger_handshakes_total", outcome=outcome)


# --------------------------------------------------------------------------- handshake


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/ocpp/", id="empty-last-segment"),
        pytest.param("/ocpp/" + "A" * 49, id="49-characters"),
        pytest.param("/ocpp/CP%201", id="space"),
        pytest.param("/ocpp/CP%2F1", id="encoded-slash"),
        pytest.param("/ocpp/CP:1", id="colon"),
        pytest.param("/ocpp/CP%3A1", id="encoded-colon"),
    ],
)
async def test_an_unacceptable_identity_is_refused_at_the_handshake(
    gateway: Gateway, csms: CsmsSim, path: str
) -> None:
    """HTTP 400 before any websocket exists, counted as refused_identity; no upstream."""
    refused = handshakes(gateway, "refused_identity")
    url = f"ws://127.0.0.1:{gateway.charger_port}{path}"
    assert await refused_status(url, ["ocpp1.6"]) == 400
    assert handshakes(gateway, "refused_identity") == refused + 1
    assert handshakes(gateway, "accepted") == 0
    assert csms.connections == []


async def test_a_48_character_identity_is_accepted(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim, gateway: Gateway
) -> None:
    """48 characters of the 2.0.1 identifierString set is the longest identity allowed."""
    identity = "Aa0*-_=+|@." + "x" * 37
    charger = make_charger(identity)
    await charger.connect()
    await charger.boot()
    await csms.wait_for("BootNotification", station_id=identity)
    assert handshakes(gateway, "accepted") == 1


@pytest.mark.parametrize(
    "subprotocols",
    [pytest.param(None, id="none-offered"), pytest.param(["ocpp1.5"], id="only-ocpp1.5")],
)
async def test_a_charger_without_a_supported_subprotocol_is_refused(
    gateway: Gateway, csms: CsmsSim, subprotocols: list[str] | None
) -> None:
    """HTTP 400, counted as refused_subprotocol; no upstream connection is opened."""
    url = f"ws://127.0.0.1:{gateway.charger_port}/ocpp/CP-1"
    assert await refused_status(url, subprotocols) == 400
    assert handshakes(gateway, "refused_subprotocol") == 1
    assert csms.connections == []


async def test_the_identity_is_the_last_segment_of_any_prefix_path(
    gateway: Gateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """/a/b/c/CP-9 connects as CP-9, which the CSMS sees at <upstream>/CP-9."""
    charger = chargers(f"ws://127.0.0.1:{gateway.charger_port}/a/b/c", "CP-9")
    await charger.connect()
    await charger.boot()
    await csms.wait_for("BootNotification", station_id="CP-9")
    assert csms.connections == [("CP-9", "/ocpp/CP-9")]


# --------------------------------------------------------------------------- duplicates


async def test_a_second_connection_with_the_same_identity_replaces_the_first(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim, gateway: Gateway
) -> None:
    """The old charger connection is closed, the CSMS sees the old upstream close before the
    new one opens (the fixture checks no two overlap), and the new charger is served."""
    first = make_charger("CP-1")
    await first.connect()
    await first.boot()
    await first.heartbeat()
    second = make_charger("CP-1")
    await second.connect()
    code, reason = await first.wait_closed()
    assert (code, reason) == (1000, "replaced by a newer connection")
    await csms.wait_connected("CP-1", count=2)
    assert await second.heartbeat()
    await csms.wait_for("Heartbeat", station_id="CP-1", count=2)
    assert csms.connection_count("CP-1") == 2
    assert metric(gateway, "ocpp_gateway_charger_replacements_total") == 1
    assert gateway.connected_stations == frozenset({"CP-1"})


# --------------------------------------------------------------------------- life cycle


async def test_a_charger_disconnect_closes_its_upstream_connection(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """2.0.1 Part 4 §6.3: the station's upstream link ends with the charger's."""
    assert csms.is_connected("CP-1")
    await booted.close()
    await csms.wait_disconnected("CP-1")


async def test_when_the_csms_drops_a_station_the_gateway_reconnects_it(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """The charger stays connected; a new upstream opens and carries the next heartbeat."""
    await csms.drop("CP-1")
    await csms.wait_connected("CP-1", count=2)
    assert booted.connected
    assert await booted.heartbeat()
    await csms.wait_for("Heartbeat", station_id="CP-1")
    assert metric(gateway, "ocpp_gateway_upstream_reconnects_total", outcome="connected") == 1


async def test_a_csms_refusing_connections_gets_the_charger_an_internal_error_until_it_is_back(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    """After upstream_wait without a connection a forwarded CALL fails InternalError, while
    a Heartbeat is answered by the gateway (buffer mode); once the CSMS accepts again the
    backoff reconnects and the next messages go through."""
    gateway = await make_gateway(upstream_wait=0.3)
    charger = chargers(charger_url_of(gateway), "CP-1")
    await charger.connect()
    await charger.boot()
    csms.refuse_connections = True
    await csms.drop("CP-1")
    with pytest.raises(CallErrorReceived) as unavailable:
        await charger.data_transfer("com.example")
    assert unavailable.value.code == "InternalError"
    assert "currentTime" in await charger.heartbeat()
    assert csms.received("Heartbeat") == [] and csms.received("DataTransfer") == []

    csms.refuse_connections = False
    await csms.wait_connected("CP-1", count=2)
    assert await charger.data_transfer("com.example")
    await csms.wait_for("DataTransfer", station_id="CP-1")
    assert charger.connected
    assert metric(gateway, "ocpp_gateway_upstream_reconnects_total", outcome="connected") == 1


async def test_a_graceful_stop_closes_chargers_with_going_away(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    """stop() closes every charger with 1001 so it reconnects elsewhere; upstreams close too."""
    gateway = await make_gateway()
    url = charger_url_of(gateway)
    first, second = chargers(url, "CP-1"), chargers(url, "CP-2")
    for charger in (first, second):
        await charger.connect()
        await charger.boot()
    await gateway.stop()
    assert await first.wait_closed() == (1001, "gateway shutting down")
    assert await second.wait_closed() == (1001, "gateway shutting down")
    await csms.wait_disconnected("CP-1")
    await csms.wait_disconnected("CP-2")


async def test_a_csms_disconnect_fails_the_pending_call_without_waiting_for_the_timeout(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """The answer can no longer come: the charger gets InternalError at once, no timeout is
    counted (DataTransfer: a Heartbeat would be answered by the gateway itself)."""
    never: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
    csms.handlers["DataTransfer"] = lambda _station, _payload: never
    transfer = asyncio.create_task(booted.data_transfer("com.example"))
    await csms.wait_for("DataTransfer", station_id="CP-1")
    await csms.drop("CP-1")
    with pytest.raises(CallErrorReceived) as lost:
        await transfer
    assert lost.value.code == "InternalError"
    timeouts = metric(
        gateway, "ocpp_gateway_call_timeouts_total", side="csms", action="DataTransfer"
    )
    assert timeouts == 0
    assert booted.connected


async def test_a_gateway_restart_keeps_the_registration(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
    tmp_path: Path,
) -> None:
    """The SQLite state outlives the process: after a restart a Heartbeat is forwarded."""
    state = f"sqlite:///{tmp_path / 'shared' / 'state.db'}"
    before = await make_gateway(state=state)
    charger = chargers(charger_url_of(before), "CP-1")
    await charger.connect()
    await charger.boot()
    await charger.heartbeat()
    await before.stop()
    assert (await charger.wait_closed())[0] == 1001
    await csms.wait_disconnected("CP-1")

    after = await make_gateway(state=state)
    again = chargers(charger_url_of(after), "CP-1")
    await again.connect()
    await again.heartbeat()
    assert [message.action for message in csms.messages] == [
        "BootNotification",
        "Heartbeat",
        "Heartbeat",
    ]


class GatedStore:
    """A real SQLite store whose station writes wait for ``gate`` (a slow disk, a remote
    store), so the test sees what the gateway did before the write finished."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.gate = asyncio.Event()
        self.writing = asyncio.Event()

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        await self._inner.close()

    async def ping(self) -> None:
        await self._inner.ping()

    async def get_station(self, station_id: str) -> StationRecord | None:
        return await self._inner.get_station(station_id)

    async def put_station(self, record: StationRecord) -> None:
        self.writing.set()
        await self.gate.wait()
        await self._inner.put_station(record)

    async def commit(
        self, station_id: str, change: Change, *, fence: int | None = None
    ) -> tuple[int, ...]:
        if change.station is not None:  # the station record goes with the session's commits
            self.writing.set()
            await self.gate.wait()
        return await self._inner.commit(station_id, change, fence=fence)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # the rest of the Store protocol, ungated


async def test_the_boot_answer_leaves_the_gateway_only_after_the_registration_is_stored(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    tmp_path: Path,
) -> None:
    """'A gateway restart loses nothing it answered' (DESIGN.md): once a charger holds an
    Accepted boot it may disconnect at once, and the registration must already be stored."""
    store = GatedStore(open_store(f"sqlite:///{tmp_path / 'gated' / 'state.db'}"))
    to_charger: list[str] = []

    def observe(event: TraceEvent) -> None:
        if event.side == "charger" and event.direction == "out":
            to_charger.append(event.text)

    gateway = await make_gateway(store=store, observer=observe)
    charger = chargers(charger_url_of(gateway), "CP-1")
    await charger.connect()
    boot = asyncio.create_task(charger.boot())
    await store.writing.wait()
    answered_before_stored = list(to_charger)
    store.gate.set()
    assert (await boot)["status"] == "Accepted"
    assert answered_before_stored == []
