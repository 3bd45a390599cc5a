"""What a session needs from its two connections, as Protocols.

Layer: session. The transport layer implements these over websockets; the session
never imports websockets, so its logic can be driven by any pair of links.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gateway.ocppj import Version


class Side(StrEnum):
    """The two parties a gateway talks to (never "client"/"server": it is both)."""

    CHARGER = "charger"
    CSMS = "csms"


class ChargerLink(Protocol):
    """The charger's websocket, already accepted."""

    station_id: str
    protocol: Version

    def frames(self) -> AsyncIterator[str]:
        """Received text messages until the charger disconnects."""
        ...

    async def send(self, text: str) -> None:
        """Send one message; raises PeerUnavailable once the connection is gone."""
        ...

    async def close(self, code: int, reason: str) -> None: ...


class CsmsLink(Protocol):
    """The upstream websocket to the CSMS for one station, with its reconnect policy."""

    @property
    def connected(self) -> bool: ...

    async def run(
        self,
        on_frame: Callable[[str], Awaitable[None]],
        on_disconnect: Callable[[], None],
    ) -> None:
        """Connect (and, if the link reconnects, keep reconnecting) until closed."""
        ...

    async def wait_connected(self) -> None:
        """Return once the link is connected (at once if it is)."""
        ...

    async def send(self, text: str, *, wait: float) -> None:
        """Send, waiting up to ``wait`` seconds for a connection; PeerUnavailable otherwise."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One frame crossing the gateway, for live views (the demo) and debugging."""

    station_id: str
    side: Side
    direction: str  # "in": received by the gateway, "out": sent by it
    text: str


FrameObserver = Callable[[TraceEvent], None]
