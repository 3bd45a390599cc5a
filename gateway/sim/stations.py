"""What both CSMS simulators keep of their stations: connections, received CALLs, and
the waits and CALLs the tests use (:class:`StationsKept`, a base class), and how they
listen (:class:`ListeningSim`, their server's lifecycle).

It shares no code with the gateway (only :mod:`gateway.sim.wire`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server

from gateway.sim.wire import JsonObject, OcppjPeer


@dataclass(frozen=True)
class Received:
    """A valid CALL the CSMS received and admitted."""

    station_id: str
    action: str
    payload: JsonObject
    message_id: str


@dataclass(eq=False)
class StationLink:
    """One accepted websocket connection of a station."""

    station_id: str
    path: str
    peer: OcppjPeer


def station_of(path: str) -> str:
    """The station id: the last segment of the request path, percent-decoded."""
    return unquote(urlsplit(path).path.rsplit("/", 1)[-1])


class ListeningSim:
    """A simulator's websocket server: ``start`` (the subclass's), ``stop``, ``async
    with``, and the port and URL actually listened on."""

    host: str
    _server: Server | None

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Close every connection (1001), wait for their handlers, stop listening."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port actually listened on."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    def _url(self, scheme: str) -> str:
        """``<scheme>://host:port/ocpp``: the base URL a gateway appends station ids to."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}/ocpp"


@dataclass(eq=False, repr=False)
class StationsKept:
    """The bookkeeping; a simulator records into it as it accepts and hears stations."""

    messages: list[Received] = field(default_factory=list)
    #: (station id, request path) of every accepted connection.
    connections: list[tuple[str, str]] = field(default_factory=list)
    _open: dict[str, list[StationLink]] = field(default_factory=dict)
    _unmatched: dict[str, asyncio.Queue[str]] = field(default_factory=dict)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def _unmatched_queue(self, station_id: str) -> asyncio.Queue[str]:
        return self._unmatched.setdefault(station_id, asyncio.Queue())

    def _link(self, station_id: str) -> StationLink:
        open_links = self._open.get(station_id)
        if not open_links:
            raise LookupError(f"station {station_id!r} is not connected")
        return open_links[-1]

    @property
    def connected_stations(self) -> frozenset[str]:
        """Stations with at least one open connection."""
        return frozenset(station for station, links in self._open.items() if links)

    def is_connected(self, station_id: str) -> bool:
        """True while at least one connection of ``station_id`` is open."""
        return bool(self._open.get(station_id))

    def connection_count(self, station_id: str) -> int:
        """How many connections of ``station_id`` were accepted in total."""
        return sum(1 for station, _ in self.connections if station == station_id)

    async def _wait(
        self,
        predicate: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109 - callers pass their deadline through
        what: str,
    ) -> None:
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(predicate)
        except TimeoutError:
            raise TimeoutError(
                f"{type(self).__name__}: timed out after {timeout}s waiting for {what}"
            ) from None

    async def wait_connected(
        self,
        station_id: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - API mirrors the other waits
    ) -> None:
        """Return once ``count`` connections of ``station_id`` were accepted in total."""
        await self._wait(
            lambda: self.connection_count(station_id) >= count,
            timeout,
            f"{count} connection(s) of {station_id!r} (seen {self.connections})",
        )

    def open_connections(self, station_id: str) -> int:
        """How many connections of ``station_id`` are open now."""
        return len(self._open.get(station_id, []))

    async def wait_open_connections(
        self,
        station_id: str,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - API mirrors the other waits
    ) -> None:
        """Return once exactly ``count`` connections of ``station_id`` are open."""
        await self._wait(
            lambda: self.open_connections(station_id) == count,
            timeout,
            f"{count} open connection(s) of {station_id!r}",
        )

    async def wait_disconnected(
        self,
        station_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - API mirrors the other waits
    ) -> None:
        """Return once no connection of ``station_id`` is open."""
        await self._wait(
            lambda: not self.is_connected(station_id), timeout, f"{station_id!r} to disconnect"
        )

    async def drop(self, station_id: str, code: int = 1011, reason: str = "sim drop") -> None:
        """Close the station's current connection from the CSMS side and wait until it ended."""
        link = self._link(station_id)
        await link.peer.websocket.close(code, reason)
        await self._wait(
            lambda: link not in self._open.get(station_id, []),
            10.0,
            f"{station_id!r} connection handler to finish",
        )

    # ---- received CALLs

    async def _record(self, message: Received) -> None:
        async with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def received(
        self,
        action: str,
        *,
        station_id: str | None = None,
        where: Callable[[JsonObject], bool] | None = None,
    ) -> list[Received]:
        """The admitted messages matching ``action`` (and station / predicate if given)."""
        return [
            message
            for message in self.messages
            if message.action == action
            and (station_id is None or message.station_id == station_id)
            and (where is None or where(message.payload))
        ]

    async def wait_for(
        self,
        action: str,
        *,
        station_id: str | None = None,
        where: Callable[[JsonObject], bool] | None = None,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - API mirrors the other waits
    ) -> list[Received]:
        """All matching admitted messages, once at least ``count`` of them arrived."""
        await self._wait(
            lambda: len(self.received(action, station_id=station_id, where=where)) >= count,
            timeout,
            f"{count} {action} message(s)"
            + (f" from {station_id!r}" if station_id is not None else "")
            + f" (received {[(m.station_id, m.action) for m in self.messages]})",
        )
        return self.received(action, station_id=station_id, where=where)

    # ---- CSMS -> station

    async def call(
        self,
        station_id: str,
        action: str,
        payload: JsonObject,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - per-call answer deadline
        validate: bool = True,
    ) -> JsonObject:
        """Send a CALL to the station's current connection; return the CALLRESULT payload.

        Raises :class:`LookupError` if the station is not connected,
        :class:`~.wire.SchemaViolation` for an invalid request (when ``validate``) or an
        invalid CALLRESULT (also recorded), :class:`~.wire.CallErrorReceived` on CALLERROR,
        :class:`TimeoutError` and :class:`ConnectionError`.
        """
        peer = self._link(station_id).peer
        return await peer.call(action, payload, timeout=timeout, validate=validate)

    async def send_raw(self, station_id: str, text: str) -> None:
        """Send ``text`` unchecked to the station's current connection."""
        await self._link(station_id).peer.send_raw(text)

    async def next_unmatched(
        self,
        station_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - API mirrors the other waits
    ) -> str:
        """The next frame from the station that was neither a CALL nor an awaited answer."""
        async with asyncio.timeout(timeout):
            return await self._unmatched_queue(station_id).get()
