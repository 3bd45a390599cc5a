"""The charger-facing websocket server.

Layer: transport. Accepts ``ws://host:port/<any/prefix>/<chargePointId>``: the identity
is the last path segment (URL-decoded). The handshake is refused, with a clear HTTP
answer and a metric, when the identity is empty, longer than 48 characters or uses
characters outside 2.0.1's identifierString set, and when the charger offers neither
``ocpp1.6`` nor ``ocpp2.0.1``. Colons are refused too: HTTP Basic auth (RFC 7617),
which OCPP security profiles 1 and 2 use with the identity as username, cannot carry one.

Websockets' exceptions stay here: the session sees a ``ChargerLink`` that raises
:class:`~gateway.errors.PeerUnavailable`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Final
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.errors import PeerUnavailable
from gateway.metrics import GatewayMetrics
from gateway.ocppj import Version

log = logging.getLogger(__name__)

MAX_IDENTITY_LENGTH: Final = 48
_IDENTITY: Final = re.compile(rf"[A-Za-z0-9*\-_=+|@.]{{1,{MAX_IDENTITY_LENGTH}}}")
# Preference when a charger offers both: a native 2.0.1 charger is passed through.
SUBPROTOCOLS: Final = (Subprotocol(Version.V201.value), Subprotocol(Version.V16.value))


def identity_from_path(path: str) -> str | None:
    """The charge point id in a request path, or None when it is not acceptable."""
    segment = urlsplit(path).path.rsplit("/", 1)[-1]
    identity = unquote(segment)
    return identity if _IDENTITY.fullmatch(identity) else None


def offered_subprotocols(headers: Headers) -> list[str]:
    return [
        item.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for item in value.split(",")
        if item.strip()
    ]


class WebsocketChargerLink:
    """``gateway.session.links.ChargerLink`` over an accepted websocket."""

    def __init__(self, ws: ServerConnection, station_id: str, protocol: Version) -> None:
        self._ws = ws
        self.station_id = station_id
        self.protocol = protocol

    async def frames(self) -> AsyncIterator[str]:
        try:
            async for message in self._ws:
                yield message if isinstance(message, str) else message.decode("utf-8", "replace")
        except ConnectionClosed:
            return

    async def send(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed:
            raise PeerUnavailable("the charger connection closed") from None

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, reason)


class ChargerServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        metrics: GatewayMetrics,
        on_charger: Callable[[WebsocketChargerLink], Awaitable[None]],
        max_frame_bytes: int = 2**20,
        ping_interval: float | None = 60.0,
    ) -> None:
        self._host = host
        self._port = port
        self._metrics = metrics
        self._on_charger = on_charger
        self._max_frame_bytes = max_frame_bytes
        self._ping_interval = ping_interval or None
        self._server: Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            subprotocols=list(SUBPROTOCOLS),
            process_request=self._check_request,
            compression=None,  # DESIGN.md: deflate triples memory per charger
            max_size=self._max_frame_bytes,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_interval,
            close_timeout=5,
        )

    async def close(self, *, reason: str = "gateway shutting down") -> None:
        """Stop accepting and close every charger with 1001 (going away)."""
        if self._server is not None:
            self._server.close(close_connections=True, code=1001, reason=reason)
            await self._server.wait_closed()

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if identity_from_path(request.path) is None:
            self._metrics.handshakes.labels("refused_identity").inc()
            log.warning("refused a charger: unacceptable identity in path %r", request.path[:200])
            return connection.respond(
                HTTPStatus.BAD_REQUEST,
                "The last path segment must be the charge point identity: 1 to 48 "
                "characters of A-Z a-z 0-9 * - _ = + | @ .\n",
            )
        offered = offered_subprotocols(request.headers)
        if not any(protocol in offered for protocol in SUBPROTOCOLS):
            self._metrics.handshakes.labels("refused_subprotocol").inc()
            log.warning("refused a charger: subprotocols offered %s", offered or "none")
            return connection.respond(
                HTTPStatus.BAD_REQUEST,
                "Offer the websocket subprotocol ocpp1.6 or ocpp2.0.1.\n",
            )
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        station_id = identity_from_path(ws.request.path if ws.request else "")
        if station_id is None or ws.subprotocol is None:  # checked at the handshake
            await ws.close(1008, "invalid identity or subprotocol")
            return
        protocol = Version(ws.subprotocol)
        self._metrics.handshakes.labels("accepted").inc()
        gauge = self._metrics.connections.labels("charger", protocol)
        gauge.inc()
        try:
            await self._on_charger(WebsocketChargerLink(ws, station_id, protocol))
        finally:
            gauge.dec()
