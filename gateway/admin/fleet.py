"""What the admin API needs from the running gateway (implemented by ``gateway.app``).

Layer: admin (imports routing and session.links types only). The API module and the
web view code against this Protocol; the gateway implements it; tests may use either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from gateway.routing import Route, RouteRule
from gateway.session.links import TraceEvent


@dataclass(frozen=True, slots=True)
class ChargerInfo:
    """One connected charger, as the admin API lists it."""

    station_id: str
    protocol: str  # "ocpp1.6" | "ocpp2.0.1"
    route: str  # "translate" | "legacy" | "passthrough" (native 2.0.1)
    shadow: bool
    vendor: str | None
    model: str | None
    firmware: str | None
    connected_since: float  # epoch seconds
    last_message_at: float | None  # epoch seconds of the last frame from the charger
    pending_route: str | None = None  # a move waiting for its safe point (open transaction)


@dataclass(frozen=True, slots=True)
class RouteChange:
    """The answer to a route change: what happens to the charger and when."""

    station_id: str
    route: Route
    shadow: bool
    applied: str  # "now" (reconnected) | "after_transaction" | "not_connected" | "unchanged"


class Fleet(Protocol):
    def chargers(self) -> list[ChargerInfo]:
        """Every connected charger, by station id."""
        ...

    def rules(self) -> tuple[tuple[RouteRule, ...], Route]:
        """The routing table in force: (rules, default route)."""
        ...

    async def set_route(self, station_id: str, route: Route, *, shadow: bool) -> RouteChange:
        """Route one charger (an exact-charger rule, stored); moves it at a safe point."""
        ...

    async def clear_route(self, station_id: str) -> RouteChange:
        """Drop the charger's own rule: the table's other rules decide again."""
        ...

    async def set_wave(self, name: str, percent: float, route: Route, *, shadow: bool) -> int:
        """Create or change the percentage wave ``name``; returns how many connected
        chargers it moves (each at its safe point)."""
        ...

    def trace(self, station_id: str) -> AsyncIterator[TraceEvent]:
        """Frames crossing the gateway for this station from now on, until the caller
        stops iterating (a bounded queue: a slow reader loses the oldest frames)."""
        ...
