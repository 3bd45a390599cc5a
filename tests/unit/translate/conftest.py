"""Fixtures for converter tests: the shipped tables and a Context with a pinned clock and ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import pytest

from gateway.mappings import load_tables
from gateway.translate.layout import EvseLayout
from gateway.translate.tables import TranslationTables
from gateway.translate.types import Context, StationView

#: The pinned clock, and how Context.now() spells it.
FIXED_NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
FIXED_NOW_TEXT = "2024-05-01T12:00:00.000Z"

MakeContext = Callable[..., Context]


@pytest.fixture(scope="session")
def tables() -> TranslationTables:
    """The shipped mapping tables (mappings/*.toml), loaded once."""
    return load_tables()


@pytest.fixture
def make_context(tables: TranslationTables) -> MakeContext:
    """Build a Context whose clock reads FIXED_NOW and whose event ids count from 1."""

    def make(
        *,
        layout: Mapping[int, tuple[int, int]] | None = None,
        vendor: str | None = None,
        model: str | None = None,
        connector_errors: Mapping[int, str] | None = None,
        registration: str = "",
        connector_statuses: Mapping[int, str] | None = None,
        open_transactions: Mapping[int, bool] | None = None,
        boot_reason: str = "PowerUp",
        immediate_reset: str = "Soft",
        security_extension: bool = False,
        legacy_transaction_ids: Mapping[str, int] | None = None,
        firmware_request_id: int | None = None,
        log_request_id: int | None = None,
    ) -> Context:
        return Context(
            station_id="CP-001",
            tables=tables,
            layout=EvseLayout(layout or {}),
            station=StationView(
                vendor=vendor,
                model=model,
                connector_errors=dict(connector_errors or {}),
                registration=registration,
                connector_statuses=dict(connector_statuses or {}),
                open_transactions=dict(open_transactions or {}),
                boot_reason=boot_reason,
                security_extension=security_extension,
                legacy_transaction_ids=dict(legacy_transaction_ids or {}),
                firmware_request_id=firmware_request_id,
                log_request_id=log_request_id,
            ),
            clock=lambda: FIXED_NOW,
            next_event_id=itertools.count(1).__next__,
            immediate_reset=immediate_reset,
        )

    return make
