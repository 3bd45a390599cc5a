"""Fixtures that start real peers on loopback: the 2.0.1 CSMS sim and a real gateway.

Every test here talks over real websockets on 127.0.0.1 with port 0, a real SQLite file
in the test's tmp_path, and peers that validate every payload they receive against the
official schemas (they fail the test through ``assert_no_violations``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import Settings
from gateway.session.links import FrameObserver
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.state import Store

pytestmark = pytest.mark.integration


def gateway_settings(csms: CsmsSim, tmp_path: Path, **overrides: object) -> Settings:
    base = Settings(
        listen="127.0.0.1:0",
        upstream=csms.url,
        state=f"sqlite:///{tmp_path / 'state.db'}",
        metrics="127.0.0.1:0",
        validate_outbound=True,  # the gateway refuses to emit anything schema-invalid
        response_timeout=5.0,
        upstream_wait=5.0,
        backoff_initial=0.05,
        backoff_max=0.2,
        ping_interval=0,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def csms() -> AsyncIterator[CsmsSim]:
    async with CsmsSim() as sim:
        yield sim
        assert sim.violations == [], "the CSMS received schema-invalid 2.0.1 payloads"
        assert sim.duplicate_connections == [], "two upstream connections carried one station"


@pytest.fixture
async def gateway(csms: CsmsSim, tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = Gateway(gateway_settings(csms, tmp_path))
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
def charger_url(gateway: Gateway) -> str:
    return f"ws://127.0.0.1:{gateway.charger_port}/ocpp"


@pytest.fixture
async def make_gateway(
    csms: CsmsSim, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """Start extra gateways with ``gateway_settings`` overrides; each has its own SQLite file
    (unless a ``store`` is given). ``observer`` sees every frame crossing the gateway.

    Stopped at teardown unless the test already stopped it (``stop()`` runs only once).
    """
    started: list[Gateway] = []

    async def make(
        *, store: Store | None = None, observer: FrameObserver | None = None, **overrides: object
    ) -> Gateway:
        settings = gateway_settings(csms, tmp_path / f"gateway-{len(started)}", **overrides)
        gw = Gateway(settings, store=store, observer=observer)
        await gw.start()
        started.append(gw)
        return gw

    yield make
    for gw in reversed(started):
        if await gw.ready() != (False, "draining"):
            await gw.stop()


@pytest.fixture
async def chargers() -> AsyncIterator[Callable[..., ChargerSim]]:
    """Build chargers for any gateway URL (not yet connected); closed and checked at teardown."""
    made: list[ChargerSim] = []

    def make(base_url: str, charge_point_id: str = "CP-1", **kwargs: object) -> ChargerSim:
        sim = ChargerSim(base_url, charge_point_id, **kwargs)  # type: ignore[arg-type]
        made.append(sim)
        return sim

    yield make
    for sim in made:
        await sim.close()
        assert sim.violations == [], f"{sim.charge_point_id} received schema-invalid payloads"


@pytest.fixture
def make_charger(
    charger_url: str, chargers: Callable[..., ChargerSim]
) -> Callable[..., ChargerSim]:
    """Build chargers for the ``gateway`` fixture (not yet connected)."""

    def make(charge_point_id: str = "CP-1", **kwargs: object) -> ChargerSim:
        return chargers(charger_url, charge_point_id, **kwargs)

    return make


@pytest.fixture
async def booted(make_charger: Callable[..., ChargerSim], csms: CsmsSim) -> ChargerSim:
    """A connected 1.6 charger whose BootNotification the CSMS accepted."""
    charger = make_charger("CP-1")
    await charger.connect()
    reply = await charger.boot(vendor="ACME", model="Wallbox")
    assert reply["status"] == "Accepted"
    return charger
