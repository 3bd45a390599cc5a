"""Small tools the integration tests share: metric reads, an HTTP GET, a bare 2.0.1 CSMS.

:class:`RawCsms` exists for what the validating :class:`~gateway.sim.csms.CsmsSim`
deliberately refuses to do: answer with any CALLERROR code, answer invalidly, and record
the exact text of every frame it receives (for the byte-for-byte pass-through checks).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.app import Gateway

#: Given (station_id, received frame text), the text to answer with (None: no answer).
RawAnswer = Callable[[str, str], str | None]


def charger_url_of(gateway: Gateway) -> str:
    """The base URL chargers use for ``gateway`` (the station id is appended)."""
    return f"ws://127.0.0.1:{gateway.charger_port}/ocpp"


def metric(gateway: Gateway, name: str, **labels: str) -> float:
    """A sample of the gateway's own registry; 0.0 when the labelled child does not exist yet."""
    value = gateway.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus exposition text as {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def http_get(port: int, path: str) -> tuple[int, str]:
    """GET ``path`` from 127.0.0.1:``port``; the status code and the body text."""
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            writer.write(request.encode("ascii"))
            await writer.drain()
            response = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode()


def connect_native(base_url: str, station_id: str, subprotocol: str = "ocpp2.0.1") -> Any:
    """Open a raw client connection, ``ocpp2.0.1`` unless told (an async context manager)."""
    return connect(
        f"{base_url}/{station_id}",
        subprotocols=[Subprotocol(subprotocol)],
        compression=None,
        ping_interval=None,
        open_timeout=5,
    )


async def recv_text(websocket: ClientConnection) -> str:
    """The next text frame, with a deadline so a missing frame fails the test."""
    async with asyncio.timeout(5):
        message = await websocket.recv()
    assert isinstance(message, str), f"binary frame received: {message!r}"
    return message


class RawCsms:
    """A bare OCPP 2.0.1 websocket endpoint that records frames and answers via ``answer``."""

    def __init__(self, answer: RawAnswer) -> None:
        self.answer = answer
        #: (station_id, text) of every frame received, in arrival order.
        self.frames: list[tuple[str, str]] = []
        self._links: dict[str, ServerConnection] = {}
        self._changed = asyncio.Condition()
        self._server: Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            0,
            subprotocols=[Subprotocol("ocpp2.0.1")],
            compression=None,
            ping_interval=None,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/ocpp"

    async def _serve(self, websocket: ServerConnection) -> None:
        path = websocket.request.path if websocket.request is not None else "/"
        station_id = unquote(urlsplit(path).path.rsplit("/", 1)[-1])
        self._links[station_id] = websocket
        try:
            async for message in websocket:
                text = message if isinstance(message, str) else message.decode()
                async with self._changed:
                    self.frames.append((station_id, text))
                    self._changed.notify_all()
                reply = self.answer(station_id, text)
                if reply is not None:
                    await websocket.send(reply)
        except ConnectionClosed:
            pass

    def texts(self, station_id: str) -> list[str]:
        """The text of every frame ``station_id`` sent, in order."""
        return [text for station, text in self.frames if station == station_id]

    async def wait_frames(self, station_id: str, count: int) -> list[str]:
        """All frames of ``station_id`` once at least ``count`` arrived."""
        async with asyncio.timeout(5), self._changed:
            await self._changed.wait_for(lambda: len(self.texts(station_id)) >= count)
        return self.texts(station_id)

    async def send(self, station_id: str, text: str) -> None:
        await self._links[station_id].send(text)


def answer_boot_then(
    other: Callable[[list[Any]], str | None],
) -> RawAnswer:
    """A RawCsms answer that accepts BootNotification and hands every other CALL to ``other``."""

    def answer(_station_id: str, text: str) -> str | None:
        frame = json.loads(text)
        if frame[0] != 2:
            return None
        if frame[2] == "BootNotification":
            payload = {
                "currentTime": "2024-01-01T00:00:00.000Z",
                "interval": 60,
                "status": "Accepted",
            }
            return json.dumps([3, frame[1], payload])
        return other(frame)

    return answer
