"""Reservations the charger accepted, watched until they end: ReservationStatusUpdate.

Layer: session. 1.6 has no message saying a reservation expired or was removed; 2.0.1
does (H01.FR.16/17, H04.FR.01). The gateway infers it from the connector's status
(``translate.reservations.reservation_outcome``) and from the expiry time by its own
clock, which also covers reservations of connector 0 that never show Reserved.
Updates go through the outbox with the station record, so a restart loses none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.errors import GatewayError
from gateway.lean import LeanEvent
from gateway.ocppj import Payload
from gateway.session.outbox import OutboxCourier
from gateway.session.station import StationState
from gateway.state import Change, OutboxMessage, StateError
from gateway.translate.reservations import reservation_outcome, reservation_status_update

log = logging.getLogger(__name__)


def updates_for_status(
    station: StationState, connector_id: int, previous: str | None, status: str
) -> list[OutboxMessage]:
    """ReservationStatusUpdates a 1.6 status change on a reserved connector implies; the
    reservations they report are forgotten (the caller stores the station record)."""
    messages = []
    for reservation in list(station.reservations):
        if reservation["connectorId"] != connector_id:
            continue
        outcome = reservation_outcome(previous, status)
        if outcome is not None:
            reservation_id = reservation["reservationId"]
            station.end_reservation(reservation_id)
            update = reservation_status_update(reservation_id, outcome)
            messages.append(OutboxMessage("ReservationStatusUpdate", update))
    return messages


def used_by_start(station: StationState, start: Payload) -> None:
    """A StartTransaction naming a reservation used it: nothing to report (H03)."""
    reservation_id = start.get("reservationId")
    if reservation_id is not None:
        station.end_reservation(reservation_id)


def _expiry(reservation: Payload) -> datetime:
    moment = datetime.fromisoformat(reservation["expiryDateTime"])
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class ReservationExpiry:
    """Reports Expired for reservations past their expiry time (2.0.1 H04.FR.01)."""

    def __init__(
        self,
        *,
        station: StationState,
        courier: OutboxCourier,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._station = station
        self._courier = courier
        self._clock = clock
        self._changed = LeanEvent()

    def wake(self) -> None:
        """The reservations changed: recompute when the next one expires."""
        self._changed.set()

    async def run(self) -> None:
        while True:
            self._changed.clear()
            delay = await self.expire()
            try:
                async with asyncio.timeout(delay):
                    await self._changed.wait()
            except TimeoutError:
                pass

    async def expire(self) -> float | None:
        """Report and forget the expired reservations; seconds until the next expiry
        (None: none held)."""
        now = self._clock()
        expired = [r for r in self._station.reservations if _expiry(r) <= now]
        if expired:
            for reservation in expired:
                self._station.end_reservation(reservation["reservationId"])
            updates = tuple(
                OutboxMessage(
                    "ReservationStatusUpdate",
                    reservation_status_update(r["reservationId"], "Expired"),
                )
                for r in expired
            )
            try:
                await self._courier.commit(Change(station=self._station.record(), append=updates))
            except (StateError, GatewayError):
                log.exception("cannot store the expiry of %d reservation(s)", len(expired))
        pending = [(_expiry(r) - now).total_seconds() for r in self._station.reservations]
        return max(min(pending), 0.0) if pending else None
