"""Tests for gateway.translate.types: the Context clock format and value semantics."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.translate.tables import TranslationTables
from gateway.translate.types import Context, Outcome, format_datetime, normalise_datetime

from .conftest import MakeContext

PLUS_2 = timezone(timedelta(hours=2))


def test_context_now_spells_the_pinned_clock_as_an_ocpp_date_time(
    make_context: MakeContext,
) -> None:
    """now() is RFC 3339 in UTC with exactly three fractional digits (2.0.1 §2.1.4)."""
    assert make_context().now() == "2024-05-01T12:00:00.000Z"


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2024, 5, 1, 14, 0, 0, tzinfo=PLUS_2), "2024-05-01T12:00:00.000Z"),
        (datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), "2024-05-01T12:00:00.123Z"),
        (datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "2023-12-31T23:59:59.999Z"),
    ],
)  # fmt: skip
def test_format_datetime_converts_to_utc_milliseconds(moment: datetime, text: str) -> None:
    """Offsets become Z, and sub-millisecond digits are cut, never rounded up past a second."""
    assert format_datetime(moment) == text


def test_context_event_ids_come_from_the_injected_counter(make_context: MakeContext) -> None:
    """Converters take event ids from Context, so two contexts count independently."""
    first, second = make_context(), make_context()
    assert [first.next_event_id(), first.next_event_id()] == [1, 2]
    assert second.next_event_id() == 1


def test_context_is_read_only(tables: TranslationTables) -> None:
    """A converter cannot change the context it was given."""
    ctx = Context(station_id="CP-001", tables=tables)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.station_id = "other"  # type: ignore[misc]


def test_empty_outcome_does_nothing() -> None:
    """The default Outcome forwards nothing, replies nothing and changes nothing."""
    outcome = Outcome()
    assert (outcome.forward, outcome.reply, outcome.then, outcome.effects) == (None, None, (), ())


@pytest.mark.parametrize(
    ("received", "sent"),
    [
        ("2024-05-01T11:59:58Z", "2024-05-01T11:59:58Z"),
        ("2024-05-01T11:59:58.5Z", "2024-05-01T11:59:58.5Z"),
        ("2024-05-01T11:59:58.123456Z", "2024-05-01T11:59:58.123Z"),
        ("2024-05-01T13:59:58+02:00", "2024-05-01T11:59:58.000Z"),
        ("2024-05-01T11:59:58", "2024-05-01T11:59:58.000Z"),
    ],
)
def test_received_datetimes_are_sent_as_2_0_1_wants_them(received: str, sent: str) -> None:
    """Conformant times pass unchanged; others become UTC "Z" with at most 3 decimals."""
    assert normalise_datetime(received) == sent
