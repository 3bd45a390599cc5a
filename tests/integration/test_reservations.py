"""Reservations through the gateway: ReserveNow and CancelReservation to the 1.6
charger, and the ReservationStatusUpdate 2.0.1 wants and 1.6 never sends (H01, H04).

Real websockets, the real gateway, both sims validating every payload.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from tests.integration.test_transactions import TAG, now

pytestmark = pytest.mark.integration


def in_seconds(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reserve(reservation_id: int, evse_id: int | None, expires: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "id": reservation_id,
        "expiryDateTime": expires,
        "idToken": {"idToken": TAG, "type": "ISO14443"},
    }
    if evse_id is not None:
        request["evseId"] = evse_id
    return request


@pytest.fixture
async def charger(make_charger: Callable[..., ChargerSim], csms: CsmsSim) -> ChargerSim:
    accept = {"ReserveNow": lambda _p: {"status": "Accepted"}}
    sim = make_charger("CP-1", handlers={**accept, "CancelReservation": accept["ReserveNow"]})
    await sim.connect()
    assert (await sim.boot())["status"] == "Accepted"
    await sim.status(1, "Available")
    await csms.wait_for("StatusNotification")
    return sim


def updates(csms: CsmsSim) -> list[dict[str, Any]]:
    return [m.payload for m in csms.received("ReservationStatusUpdate")]


async def barrier(charger: ChargerSim, csms: CsmsSim) -> None:
    """A Heartbeat reaches the CSMS only after the outbox before it: nothing more is due."""
    count = len(csms.received("Heartbeat"))
    await charger.heartbeat()
    await csms.wait_for("Heartbeat", count=count + 1)


@pytest.mark.covers("csms_to_charger:ReserveNow", "charger_to_csms:StatusNotification")
async def test_a_reservation_left_to_lapse_is_reported_expired(
    charger: ChargerSim, csms: CsmsSim
) -> None:
    answer = await csms.call("CP-1", "ReserveNow", reserve(7, 1, in_seconds(3600)))
    assert answer == {"status": "Accepted"}
    (sent,) = charger.calls_of("ReserveNow")
    assert sent["connectorId"] == 1 and sent["reservationId"] == 7 and sent["idTag"] == TAG
    await charger.status(1, "Reserved")
    await charger.status(1, "Available")  # the charger dropped it: it expired (H04.FR.01)
    (update,) = [m.payload for m in await csms.wait_for("ReservationStatusUpdate")]
    assert update == {"reservationId": 7, "reservationUpdateStatus": "Expired"}


@pytest.mark.covers("csms_to_charger:ReserveNow", "charger_to_csms:StatusNotification")
async def test_a_faulted_reserved_connector_removes_the_reservation(
    charger: ChargerSim, csms: CsmsSim
) -> None:
    await csms.call("CP-1", "ReserveNow", reserve(8, 1, in_seconds(3600)))
    await charger.status(1, "Reserved")
    await charger.status(1, "Faulted", error_code="GroundFailure")
    (update,) = [m.payload for m in await csms.wait_for("ReservationStatusUpdate")]
    assert update == {"reservationId": 8, "reservationUpdateStatus": "Removed"}


@pytest.mark.covers(
    "csms_to_charger:ReserveNow",
    "csms_to_charger:CancelReservation",
    "StartTransaction",
    "charger_to_csms:StatusNotification",
)
async def test_a_used_or_cancelled_reservation_is_not_reported(
    charger: ChargerSim, csms: CsmsSim
) -> None:
    await csms.call("CP-1", "ReserveNow", reserve(9, 1, in_seconds(3600)))
    await charger.status(1, "Reserved")
    answer = await charger.start_transaction(1, TAG, 0, now(), reservation_id=9)
    assert answer["idTagInfo"]["status"] == "Accepted"
    await charger.status(1, "Charging")
    started = await csms.wait_for("TransactionEvent")
    assert started[0].payload["reservationId"] == 9

    await csms.call("CP-1", "ReserveNow", reserve(10, 2, in_seconds(3600)))
    assert await csms.call("CP-1", "CancelReservation", {"reservationId": 10}) == {
        "status": "Accepted"
    }
    await charger.status(2, "Reserved")
    await charger.status(2, "Available")
    await barrier(charger, csms)
    assert updates(csms) == []


@pytest.mark.covers("csms_to_charger:ReserveNow")
async def test_a_reservation_past_its_expiry_is_reported_by_the_gateway_clock(
    charger: ChargerSim, csms: CsmsSim
) -> None:
    """Connector 0 reservations never show Reserved in 1.6: the expiry time is all there is."""
    answer = await csms.call("CP-1", "ReserveNow", reserve(11, None, in_seconds(0.5)))
    assert answer == {"status": "Accepted"}
    assert charger.calls_of("ReserveNow")[0]["connectorId"] == 0
    messages = await csms.wait_for("ReservationStatusUpdate", timeout=10)
    assert [m.payload for m in messages] == [
        {"reservationId": 11, "reservationUpdateStatus": "Expired"}
    ]
