"""The naive pass-through proxy: the comparison point for the gateway's own cost.

Layer: bench. Must not import the gateway outside ``gateway.bench``.

DESIGN.md ("Performance shape") sizes the gateway against "a naive Python proxy that
parses and re-serialises each frame with orjson". This is that proxy, built the way the
gateway is built so the ratio isolates what the gateway adds (translation, validation,
the durable outbox, correlation): websockets on uvloop, permessage-deflate off, one
upstream websocket per charger opened when the charger connects, to
``<upstream>/<station id>`` with the charger's own subprotocol. Each frame is
``orjson.loads`` then ``orjson.dumps`` and forwarded; nothing else. One task per
direction: the connection handler relays charger to CSMS, a second task the way back.
"""

from __future__ import annotations

import asyncio
import contextlib
from multiprocessing.connection import Connection
from typing import Final
from urllib.parse import unquote, urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from gateway.bench.child import receive, run_child
from gateway.bench.control import PeerStats, Problems, Ready, StatsRequest, Stop

__all__ = ["NaiveProxy", "main"]

_SUBPROTOCOLS: Final = [Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")]
_BACKLOG: Final = 4096


async def _relay(
    source: ServerConnection | ClientConnection, sink: ServerConnection | ClientConnection
) -> None:
    """Parse and re-serialise every frame from ``source`` and send it to ``sink``."""
    async for message in source:
        await sink.send(orjson.dumps(orjson.loads(message)), text=True)


class NaiveProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.connections = 0
        self.problems = Problems()

    def stats(self) -> PeerStats:
        return PeerStats(
            connections=self.connections, received={}, samples={}, problems=self.problems
        )

    async def handle(self, charger: ServerConnection) -> None:
        self.connections += 1
        path = charger.request.path if charger.request is not None else "/"
        station = unquote(urlsplit(path).path.rsplit("/", 1)[-1])
        subprotocol = charger.subprotocol or _SUBPROTOCOLS[0]
        try:
            csms = await connect(
                f"{self.upstream}/{station}",
                subprotocols=[subprotocol],
                compression=None,
                ping_interval=None,
                proxy=None,
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.problems.add(f"{station}: cannot reach the upstream: {exc}")
            await charger.close(1011, "upstream unreachable")
            return
        back = asyncio.create_task(_relay(csms, charger))
        try:
            await _relay(charger, csms)
        except ConnectionClosed:
            pass
        finally:
            back.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await back
            await csms.close()


async def _run(conn: Connection) -> None:
    command = await receive(conn)
    if not isinstance(command, str):
        raise TypeError(f"the naive proxy expected its upstream URL, got {command!r}")
    proxy = NaiveProxy(command)
    server = await serve(
        proxy.handle,
        "127.0.0.1",
        0,
        subprotocols=_SUBPROTOCOLS,
        compression=None,
        ping_interval=None,
        max_size=2**20,
        backlog=_BACKLOG,
    )
    conn.send(Ready(next(iter(server.sockets)).getsockname()[1]))
    while True:
        command = await receive(conn)
        if isinstance(command, StatsRequest):
            conn.send(proxy.stats())
        elif isinstance(command, Stop):
            server.close(close_connections=False)
            return
        else:
            raise TypeError(f"the naive proxy got an unknown command {command!r}")


def main(conn: Connection) -> None:
    """Process entry point (``multiprocessing`` spawn target); the first message on
    ``conn`` is the upstream base URL."""
    run_child(conn, _run)
