"""Fixtures of the sim tests: a hand-driven 1.6 central system on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import serve
from websockets.typing import Subprotocol

from tests.sim.test_charger_sim import HandCentral


@pytest.fixture
async def central() -> AsyncIterator[HandCentral]:
    """A running HandCentral on a free loopback port."""
    hand = HandCentral()
    async with serve(
        hand.handler,
        "127.0.0.1",
        0,
        subprotocols=[Subprotocol("ocpp1.6")],
        compression=None,
        ping_interval=None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        hand.url = f"ws://127.0.0.1:{port}/ocpp16/"
        yield hand
