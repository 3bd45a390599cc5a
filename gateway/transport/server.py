"""The charger-facing websocket server.

Layer: transport. Accepts ``ws://host:port/<any/prefix>/<chargePointId>``: the identity
is the last path segment (URL-decoded). The handshake is refused, with a clear HTTP
answer and a metric, when the identity is empty, longer than 48 characters or uses
characters outside 2.0.1's identifierString set, and when the charger offers neither
``ocpp1.6`` nor ``ocpp2.0.1``. Colons are refused too: HTTP Basic auth (RFC 7617),
which OCPP security profiles 1 and 2 use with the identity as username, cannot carry one.

Who may connect is :mod:`gateway.transport.charger_auth`'s decision (security profiles),
asked during the handshake. Limits against abuse, each breach closing or refusing only
the offender and counted in ``ocpp_gateway_limit_breaches_total``:

- connections overall and per source address: the handshake gets HTTP 503 / 429;
- the TLS and websocket handshakes must finish within ``handshake_timeout`` (the
  websocket one is counted; a TLS handshake that stalls is dropped by asyncio unseen);
- a frame above ``max_frame_bytes``: websockets closes with 1009 (message too big);
- more than ``message_burst`` frames at once above ``max_message_rate`` per second:
  closed with 1008 (policy violation). A 1.6 charger waits for each answer before its
  next CALL (OCPP-J §4.1.1), so its rate is bounded by the round trip: about 20/s over a
  WAN even while it replays an offline queue (the defaults, 200/s and a burst of 1000,
  leave room for a LAN).

Websockets' exceptions stay here: the session sees a ``ChargerLink`` that raises
:class:`~gateway.errors.PeerUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.config import ConfigError
from gateway.errors import PeerUnavailable
from gateway.metrics import GatewayMetrics
from gateway.ocppj import Version
from gateway.state import StateError
from gateway.transport.charger_auth import ChargerAuthenticator, Refusal, store_unavailable

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


POLICY_VIOLATION: Final = 1008  # RFC 6455 §7.4.1
MESSAGE_TOO_BIG: Final = 1009


class MessageRate:
    """A token bucket: ``burst`` frames at once, refilled at ``rate`` per second."""

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class WebsocketChargerLink:
    """``gateway.session.links.ChargerLink`` over an accepted websocket."""

    __slots__ = ("_metrics", "_rate", "_ws", "authorization", "protocol", "station_id")

    def __init__(
        self,
        ws: ServerConnection,
        station_id: str,
        protocol: Version,
        *,
        metrics: GatewayMetrics | None = None,
        rate: MessageRate | None = None,
    ) -> None:
        self._ws = ws
        self.station_id = station_id
        self.protocol = protocol
        self._metrics = metrics
        self._rate = rate
        # The charger's Basic-auth header: the legacy route hands it on untouched.
        request = ws.request
        self.authorization = request.headers.get("Authorization") if request else None

    async def frames(self) -> AsyncIterator[str]:
        rate = self._rate
        try:
            async for message in self._ws:
                if rate is not None and not rate.allow():
                    log.warning("charger exceeded the message rate limit; closing it")
                    self._breach("message_rate")
                    await self._ws.close(POLICY_VIOLATION, "message rate limit exceeded")
                    return
                yield message if isinstance(message, str) else message.decode("utf-8", "replace")
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == MESSAGE_TOO_BIG:
                log.warning("charger sent a frame above max_frame_bytes; closed with 1009")
                self._breach("frame_size")
            return

    def _breach(self, limit: str) -> None:
        if self._metrics is not None:
            self._metrics.limit_breaches.labels(limit).inc()

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
        authenticator: ChargerAuthenticator | None = None,
        tls: ssl.SSLContext | None = None,
        max_connections: int = 0,
        max_connections_per_address: int = 0,
        handshake_timeout: float = 10.0,
        max_message_rate: float = 0.0,
        message_burst: int = 200,
    ) -> None:
        self._host = host
        self._port = port
        self._metrics = metrics
        self._on_charger = on_charger
        self._max_frame_bytes = max_frame_bytes
        self._ping_interval = ping_interval or None
        self._authenticator = authenticator
        self._tls = tls
        self._max_connections = max_connections
        self._max_per_address = max_connections_per_address
        self._handshake_timeout = handshake_timeout
        self._max_message_rate = max_message_rate
        self._message_burst = message_burst
        # Connections past the handshake, overall and per source address (handshakes in
        # flight are bounded by handshake_timeout instead).
        self._open = 0
        self._per_address: Counter[str] = Counter()
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
            # Also the TLS handshake's timeout (websockets passes it on to asyncio).
            open_timeout=self._handshake_timeout,
            ssl=self._tls,
            create_connection=_handshake_timed(self._metrics),
        )

    async def close(self, *, reason: str = "gateway shutting down") -> None:
        """Stop accepting and close every charger with 1001 (going away)."""
        if self._server is not None:
            self._server.close(close_connections=True, code=1001, reason=reason)
            await self._server.wait_closed()

    async def _check_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """The whole admission decision, before the websocket upgrade."""
        refused = self._check_form(connection, request) or self._check_capacity(connection)
        if refused is not None:
            return refused
        return await self._check_credentials(connection, request)

    def _check_form(self, connection: ServerConnection, request: Request) -> Response | None:
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

    def _check_capacity(self, connection: ServerConnection) -> Response | None:
        address = _address(connection)
        if self._max_connections and self._open >= self._max_connections:
            self._metrics.handshakes.labels("refused_capacity").inc()
            self._metrics.limit_breaches.labels("connections").inc()
            log.warning("refused a charger from %s: %d connections open", address, self._open)
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "The gateway holds its maximum of connections; connect again later.\n",
            )
        if self._max_per_address and self._per_address[address] >= self._max_per_address:
            self._metrics.handshakes.labels("refused_address_limit").inc()
            self._metrics.limit_breaches.labels("connections_per_address").inc()
            log.warning(
                "refused a charger from %s: %d connections from that address",
                address,
                self._per_address[address],
            )
            return connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS,
                "Too many connections from this address.\n",
            )
        return None

    async def _check_credentials(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if self._authenticator is None:
            return None
        station_id = identity_from_path(request.path)
        assert station_id is not None, "checked by _check_form"
        try:
            refusal = await self._authenticator.check(
                station_id,
                request.headers.get("Authorization"),
                _peer_certificate(connection),
                tls=self._tls is not None,
            )
        except StateError:
            log.exception("cannot read the credentials of charger %s", station_id)
            refusal = store_unavailable()
        if refusal is None:
            return None
        return self._refuse(connection, station_id, refusal)

    def _refuse(self, connection: ServerConnection, station_id: str, refusal: Refusal) -> Response:
        self._metrics.handshakes.labels(refusal.outcome).inc()
        # The reason never holds a secret: charger_auth writes it from facts only.
        log.warning(
            "refused charger %s from %s: %s", station_id, _address(connection), refusal.reason
        )
        response = connection.respond(refusal.status, refusal.body)
        for name, value in refusal.headers:
            response.headers[name] = value
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        station_id = identity_from_path(ws.request.path if ws.request else "")
        if station_id is None or ws.subprotocol is None:  # checked at the handshake
            await ws.close(1008, "invalid identity or subprotocol")
            return
        protocol = Version(ws.subprotocol)
        self._metrics.handshakes.labels("accepted").inc()
        gauge = self._metrics.connections.labels("charger", protocol)
        gauge.inc()
        address = _address(ws)
        self._open += 1
        self._per_address[address] += 1
        rate = (
            MessageRate(self._max_message_rate, self._message_burst)
            if self._max_message_rate
            else None
        )
        try:
            await self._on_charger(
                WebsocketChargerLink(ws, station_id, protocol, metrics=self._metrics, rate=rate)
            )
        finally:
            gauge.dec()
            self._open -= 1
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]


def _handshake_timed(metrics: GatewayMetrics) -> type[ServerConnection]:
    """A connection class that counts opening handshakes cut off by ``open_timeout``
    (websockets cancels them and drops the socket without telling the handler)."""

    class HandshakeTimedConnection(ServerConnection):
        async def handshake(self, *args: Any, **kwargs: Any) -> None:
            try:
                await super().handshake(*args, **kwargs)
            except asyncio.CancelledError:
                metrics.limit_breaches.labels("handshake_timeout").inc()
                log.info("dropped a connection from %s: no handshake in time", _address(self))
                raise

    return HandshakeTimedConnection


def _address(connection: ServerConnection) -> str:
    peer = connection.remote_address
    return str(peer[0]) if peer else "unknown"


def _peer_certificate(connection: ServerConnection) -> bytes | None:
    """The client certificate TLS verified (DER), or None (no TLS, or none presented)."""
    ssl_object = connection.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der


def server_tls_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    """The charger listener's TLS: TLS 1.2 or newer (1.6 Security Whitepaper §2.4);
    with ``client_ca``, charger certificates are verified against it but optional, so
    profile 2 chargers (password) and profile 3 chargers (certificate) share a listener;
    charger_auth requires the certificate where the profile says so.

    Raises:
        ConfigError: a file cannot be read or used (naming the setting, not the content).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # An empty password callback: an encrypted key fails here instead of prompting.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls_cert/tls_key: cannot use {cert} with {key}: {exc}") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"tls_client_ca: cannot use {client_ca}: {exc}") from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return context
