"""The Store protocol: what must survive a gateway restart.

Layer: state. Implementations wrap their driver's exceptions in :class:`StateError`;
a store failure changes session behaviour, it never becomes a CALLERROR by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.ocppj import Payload


class StateError(Exception):
    """The store could not be opened, read or written."""


@dataclass(frozen=True, slots=True)
class StationRecord:
    """What the gateway knows about a station between connections."""

    station_id: str
    boot: Payload  # the last 1.6 BootNotification request ({} when none was seen)
    registration: str  # the CSMS's last answer: Accepted | Pending | Rejected ("" none)
    # 1.6 errorCode raised per connector, so a fault reported before a reconnect or a
    # restart is still cleared upstream when the connector reports NoError.
    connector_errors: Mapping[int, str] = field(default_factory=dict)


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StateError when the store is unreachable (for /readyz)."""
        ...

    async def get_station(self, station_id: str) -> StationRecord | None: ...

    async def put_station(self, record: StationRecord) -> None: ...
