"""In-memory Store: unit tests only (nothing survives the process)."""

from __future__ import annotations

from gateway.state.base import StationRecord


class MemoryStore:
    def __init__(self) -> None:
        self._stations: dict[str, StationRecord] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def get_station(self, station_id: str) -> StationRecord | None:
        return self._stations.get(station_id)

    async def put_station(self, record: StationRecord) -> None:
        self._stations[record.station_id] = record
