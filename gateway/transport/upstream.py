"""The upstream (CSMS-facing) websocket of one station, with reconnects.

Layer: transport. Implements ``gateway.session.links.CsmsLink`` over websockets and
maps websockets' exceptions to :class:`~gateway.errors.PeerUnavailable`: they change
the session's state, they never leak into it.

Reconnects use exponential backoff with "equal jitter" (half fixed, half random): a
CSMS restart disconnects every station at once, and full jitter would let some of
thousands of stations come back almost immediately and all together.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)
from websockets.proxy import get_proxy
from websockets.uri import WebSocketURI, parse_uri

from gateway.config import masked_url
from gateway.errors import PeerUnavailable
from gateway.lean import LeanEvent
from gateway.metrics import GatewayMetrics
from gateway.ocppj import Version
from gateway.transport.upstream_security import WEBSOCKETS_LOGGER, UpstreamSecurity

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 1.0
    maximum: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect ``attempt`` (0-based): in [c/2, c]."""
        ceiling: float = min(self.maximum, self.initial * 2.0 ** min(attempt, 32))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@functools.lru_cache(maxsize=64)
def _proxy_for_host(secure: bool, host: str, port: int) -> str | None:
    return get_proxy(WebSocketURI(secure=secure, host=host, port=port, path="/", query=""))


def _proxy_for(url: str) -> str | None:
    """The proxy websockets would pick from the environment (``https_proxy``,
    ``no_proxy``...), looked up once per CSMS host: websockets reads the whole
    environment on every connect, 5 % of the gateway's CPU in a reconnect storm."""
    uri = parse_uri(url)
    return _proxy_for_host(uri.secure, uri.host, uri.port)


def station_url(base: str, station_id: str) -> str:
    """``<upstream>/<stationId>``: the same identity on both legs (2.0.1 Part 4 §6.2)."""
    return f"{base.rstrip('/')}/{quote(station_id, safe='')}"


_REFUSED_CREDENTIALS = (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN)


class UpstreamLink:
    def __init__(
        self,
        *,
        url: str,
        station_id: str,
        metrics: GatewayMetrics,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        max_frame_bytes: int = 2**20,
        ping_interval: float | None = 60.0,
        open_timeout: float = 10.0,
        security: UpstreamSecurity | None = None,
        subprotocol: Version = Version.V201,
    ) -> None:
        """``subprotocol``: the one offered and required of the CSMS (``ocpp1.6`` for
        the legacy CSMS of the migration's legacy route)."""
        self._url = station_url(url, station_id)
        self._shown_url = masked_url(self._url)
        self._station_id = station_id
        self._security = security or UpstreamSecurity()
        self._metrics = metrics
        self._reconnect = reconnect
        self._backoff = backoff or Backoff()
        self._max_frame_bytes = max_frame_bytes
        self._ping_interval = ping_interval or None
        self._open_timeout = open_timeout
        self._subprotocol = subprotocol
        self._ws: ClientConnection | None = None
        self._connected = LeanEvent()  # asyncio.Event costs 0.8 KiB per charger
        self._closing = LeanEvent()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def run(
        self,
        on_frame: Callable[[str], Awaitable[None]],
        on_disconnect: Callable[[], None],
    ) -> None:
        attempt = 0
        while not self._closing.is_set():
            if attempt:
                delay = self._backoff.delay(attempt - 1)
                log.info("reconnecting to the CSMS in %.1f s (attempt %d)", delay, attempt)
                if await self._closed_within(delay):
                    return
            ws = await self._open(attempt)
            if ws is not None and self._closing.is_set():
                # close() came while the connection was opening: it had nothing to close
                # then, and serving it now would keep the session (and every later
                # connection of the station, which waits for it) alive forever.
                await ws.close(1000, "charger disconnected")
                return
            if ws is None:
                if not self._reconnect:
                    return
                attempt += 1
                continue
            attempt = 1  # a dropped connection also waits (jittered) before coming back
            await self._serve(ws, on_frame, on_disconnect)
            if not self._reconnect:
                return

    async def _open(self, attempt: int) -> ClientConnection | None:
        options: dict[str, Any] = {}
        if self._security.ssl is not None:  # else websockets' default: none for ws://
            options["ssl"] = self._security.ssl
        try:
            ws = await connect(
                self._url,
                subprotocols=[self._subprotocol],  # type: ignore[list-item]
                compression=None,  # permessage-deflate triples memory per socket
                max_size=self._max_frame_bytes,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                additional_headers=self._security.headers,
                logger=WEBSOCKETS_LOGGER,  # its DEBUG header dump would show the password
                proxy=_proxy_for(self._url),
                **options,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in _REFUSED_CREDENTIALS:
                if attempt:
                    self._metrics.upstream_reconnects.labels("unauthorized").inc()
                log.error(
                    "the CSMS refused station %s's credentials (HTTP %d)%s",
                    self._station_id,
                    status,
                    "" if self._security.headers else ": no upstream password is configured",
                )
            else:
                self._failed(attempt, exc)
            return None
        except ssl.SSLCertVerificationError as exc:
            if attempt:
                self._metrics.upstream_reconnects.labels("failed").inc()
            log.error(
                "cannot verify the CSMS's certificate: %s (%s)",
                exc.verify_message or exc.reason or exc,
                self._shown_url,
            )
            return None
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            self._failed(attempt, exc)
            return None
        if ws.subprotocol != self._subprotocol.value:
            log.error("the CSMS did not accept subprotocol %s; closing", self._subprotocol.value)
            await ws.close(1002, f"{self._subprotocol.value} required")
            return None
        if attempt:
            self._metrics.upstream_reconnects.labels("connected").inc()
        return ws

    def _failed(self, attempt: int, exc: BaseException) -> None:
        if attempt:
            self._metrics.upstream_reconnects.labels("failed").inc()
        hint = ""
        if (
            self._security.ssl is not None
            and isinstance(exc, InvalidMessage)
            and isinstance(exc.__cause__, EOFError)
        ):
            # TLS 1.3 reports a refused client certificate only as an alert after the
            # handshake, which the client sees as the connection closing: say so.
            hint = (
                " (a CSMS requiring client certificates, security profile 3, closes the "
                "connection like this when the certificate is missing or not trusted)"
            )
        log.warning("cannot connect to the CSMS at %s: %s%s", self._shown_url, exc, hint)

    async def _serve(
        self,
        ws: ClientConnection,
        on_frame: Callable[[str], Awaitable[None]],
        on_disconnect: Callable[[], None],
    ) -> None:
        self._ws = ws
        self._connected.set()
        gauge = self._metrics.connections.labels("csms", self._subprotocol)
        gauge.inc()
        log.info("connected to the CSMS at %s", self._shown_url)
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                await on_frame(text)
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
            self._connected.clear()
            gauge.dec()
            on_disconnect()
        if not self._closing.is_set():
            log.warning(
                "the CSMS closed the connection (code %s %s)", ws.close_code, ws.close_reason
            )

    async def _closed_within(self, delay: float) -> bool:
        try:
            # not wait_for: on 3.11 it can swallow a cancel arriving with the event
            async with asyncio.timeout(delay):
                await self._closing.wait()
        except TimeoutError:
            return False
        return True

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def send(self, text: str, *, wait: float) -> None:
        ws = self._ws
        if ws is None:
            if wait <= 0:
                raise PeerUnavailable("not connected to the CSMS")
            try:
                async with asyncio.timeout(wait):
                    await self._connected.wait()
            except TimeoutError:
                raise PeerUnavailable(f"no connection to the CSMS within {wait:g} s") from None
            ws = self._ws
            if ws is None:
                raise PeerUnavailable("not connected to the CSMS")
        try:
            await ws.send(text)
        except ConnectionClosed:
            raise PeerUnavailable("the CSMS connection closed") from None

    async def close(self) -> None:
        self._closing.set()
        ws = self._ws
        if ws is not None:
            await ws.close(1000, "charger disconnected")
