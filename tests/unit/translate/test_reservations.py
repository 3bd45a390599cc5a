"""Tests for the pure reservation helpers of gateway.translate.reservations that are not
routes: the ReservationStatusUpdate the gateway builds, and when a 1.6 StatusNotification
calls for one. ReserveNow and CancelReservation are golden pairs (tests/data/).

Expected values are written by hand from reference messages.md §2.15, §3.5 and §6, and
2.0.1 H01.FR.15-17, H02, H03, H04.FR.01.
"""

from __future__ import annotations

import copy

import pytest
from ocpp.v16.enums import ChargePointStatus
from ocpp.v201.enums import ReservationUpdateStatusEnumType

from gateway.ocppj import Version
from gateway.schemas import Kind, validate
from gateway.translate.reservations import reservation_outcome, reservation_status_update

ALL_1_6_STATUSES = [status.value for status in ChargePointStatus]

#: A reserved 1.6 connector's next status -> what goes to the CSMS (None: nothing).
FROM_RESERVED = {
    "Available": "Expired",  # H04.FR.01: not used, not cancelled: it expired
    "Faulted": "Removed",  # H01.FR.16/17: the EVSE became inoperative
    "Unavailable": "Removed",
    "Preparing": None,  # H03: in use; the transaction carries reservationId (H01.FR.15)
    "Charging": None,
    "SuspendedEV": None,
    "SuspendedEVSE": None,
    "Finishing": None,
    "Reserved": None,  # unchanged
}


def test_the_table_covers_every_1_6_status() -> None:
    assert set(FROM_RESERVED) == set(ALL_1_6_STATUSES)


@pytest.mark.parametrize("status", ["Expired", "Removed"])
def test_reservation_status_update_is_a_schema_valid_2_0_1_request(status: str) -> None:
    payload = reservation_status_update(42, status)
    assert payload == {"reservationId": 42, "reservationUpdateStatus": status}
    validate(Version.V201, "ReservationStatusUpdate", Kind.REQUEST, copy.deepcopy(payload))


def test_every_reservation_update_status_can_be_built() -> None:
    for status in ReservationUpdateStatusEnumType:
        reservation_status_update(1, status.value)


@pytest.mark.parametrize("status", ["Accepted", "Cancelled", "expired", ""])
def test_reservation_status_update_refuses_other_statuses(status: str) -> None:
    with pytest.raises(ValueError, match="ReservationUpdateStatusEnumType"):
        reservation_status_update(42, status)


@pytest.mark.parametrize("status", ALL_1_6_STATUSES)
def test_leaving_reserved(status: str) -> None:
    assert reservation_outcome("Reserved", status) == FROM_RESERVED[status]


@pytest.mark.parametrize("status", ALL_1_6_STATUSES)
def test_a_cancelled_reservation_is_never_reported(status: str) -> None:
    """H02: the CancelReservationResponse told the CSMS; no ReservationStatusUpdate."""
    assert reservation_outcome("Reserved", status, cancelled=True) is None


@pytest.mark.parametrize("previous", [None, *(s for s in ALL_1_6_STATUSES if s != "Reserved")])
@pytest.mark.parametrize("status", ALL_1_6_STATUSES)
def test_only_leaving_reserved_ends_a_reservation(previous: str | None, status: str) -> None:
    """Preparing -> Available after a reserved driver gave up, say: nothing to report
    from the status; the session's expiry (by expiryDateTime) covers that reservation."""
    assert reservation_outcome(previous, status) is None


@pytest.mark.parametrize("status", ALL_1_6_STATUSES)
def test_every_outcome_is_a_reservation_update_status(status: str) -> None:
    outcome = reservation_outcome("Reserved", status)
    assert outcome is None or outcome in {s.value for s in ReservationUpdateStatusEnumType}
