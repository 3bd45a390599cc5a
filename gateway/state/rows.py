"""Store records to table rows and back: the one place that knows the column layout.

Layer: state (pure, no I/O). Payloads are stored as orjson BLOBs; connector maps keep
int keys (JSON objects only have string keys, so they are turned back into ints on
load). The memory store runs its records through the same pair of functions, so unit
tests see exactly what a real store would hand back (a JSON copy, never an alias).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.ocppj import Payload
from gateway.state.base import Change, OutboxMessage, StationRecord, TransactionRecord

#: Columns of ``station`` read and written with a record, in :func:`station_row` order.
STATION_COLUMNS: Final = (
    "station_id",
    "boot",
    "registration",
    "connector_errors",
    "connector_statuses",
    "remote_starts",
    "charging_profiles",
    "boot_reason",
    "reset_scheduled",
    "firmware_request_id",
    "log_request_id",
    "reservations",
    "security_extension",
)

#: Columns of ``txn``: the TransactionRecord fields, in declaration order.
TRANSACTION_COLUMNS: Final = (
    "station_id",
    "transaction_id",
    "legacy_id",
    "connector_id",
    "evse_id",
    "next_seq_no",
    "started_at",
    "start_key",
    "id_token",
    "charging_state",
    "meter_start",
    "last_meter",
    "id_tag_info",
    "ended",
    "ended_at",
    "stop_key",
    "stop_id_tag_info",
)

#: Columns of ``outbox`` read back as an OutboxMessage, in :func:`outbox_message` order.
OUTBOX_COLUMNS: Final = ("position", "action", "payload", "transaction_id", "offline")

Row = tuple[Any, ...]


def load_payload(blob: bytes | str) -> Payload:
    loaded: Payload = orjson.loads(blob)
    return loaded


def copy_payload(value: Payload) -> Payload:
    """A deep copy, through JSON: what a store gives back for what it was given."""
    return load_payload(orjson.dumps(value))


def _dump_optional(value: Payload | None) -> bytes | None:
    return None if value is None else orjson.dumps(value)


def _load_optional(blob: bytes | str | None) -> Payload | None:
    return None if blob is None else load_payload(blob)


def _dump_connectors(connectors: Mapping[int, str]) -> bytes:
    return orjson.dumps(dict(connectors), option=orjson.OPT_NON_STR_KEYS)


def _load_connectors(blob: bytes | str) -> dict[int, str]:
    return {int(connector): value for connector, value in orjson.loads(blob).items()}


def station_row(record: StationRecord) -> Row:
    return (
        record.station_id,
        orjson.dumps(record.boot),
        record.registration,
        _dump_connectors(record.connector_errors),
        _dump_connectors(record.connector_statuses),
        orjson.dumps(record.remote_starts),
        orjson.dumps(record.charging_profiles),
        record.boot_reason,
        int(record.reset_scheduled),
        record.firmware_request_id,
        record.log_request_id,
        orjson.dumps(record.reservations),
        int(record.security_extension),
    )


def station_record(row: Row) -> StationRecord:
    (station_id, boot, registration, errors, statuses, remote_starts, profiles,
     boot_reason, reset_scheduled, firmware_request_id, log_request_id,
     reservations, security_extension) = row  # fmt: skip
    return StationRecord(
        station_id,
        load_payload(boot),
        registration,
        connector_errors=_load_connectors(errors),
        connector_statuses=_load_connectors(statuses),
        remote_starts=tuple(orjson.loads(remote_starts)),
        charging_profiles=tuple(orjson.loads(profiles)),
        boot_reason=boot_reason,
        reset_scheduled=bool(reset_scheduled),
        firmware_request_id=firmware_request_id,
        log_request_id=log_request_id,
        reservations=tuple(orjson.loads(reservations)),
        security_extension=bool(security_extension),
    )


def transaction_row(record: TransactionRecord) -> Row:
    return (
        record.station_id,
        record.transaction_id,
        record.legacy_id,
        record.connector_id,
        record.evse_id,
        record.next_seq_no,
        record.started_at,
        record.start_key,
        _dump_optional(record.id_token),
        record.charging_state,
        record.meter_start,
        _dump_optional(record.last_meter),
        _dump_optional(record.id_tag_info),
        int(record.ended),
        record.ended_at,
        record.stop_key,
        _dump_optional(record.stop_id_tag_info),
    )


def transaction_record(row: Row) -> TransactionRecord:
    (station_id, transaction_id, legacy_id, connector_id, evse_id, next_seq_no, started_at,
     start_key, id_token, charging_state, meter_start, last_meter, id_tag_info, ended,
     ended_at, stop_key, stop_id_tag_info) = row  # fmt: skip
    return TransactionRecord(
        station_id=station_id,
        transaction_id=transaction_id,
        legacy_id=legacy_id,
        connector_id=connector_id,
        evse_id=evse_id,
        next_seq_no=next_seq_no,
        started_at=started_at,
        start_key=start_key,
        id_token=_load_optional(id_token),
        charging_state=charging_state,
        meter_start=meter_start,
        last_meter=_load_optional(last_meter),
        id_tag_info=_load_optional(id_tag_info),
        ended=bool(ended),
        ended_at=ended_at,
        stop_key=stop_key,
        stop_id_tag_info=_load_optional(stop_id_tag_info),
    )


def outbox_message(row: Row) -> OutboxMessage:
    position, action, payload, transaction_id, offline = row
    return OutboxMessage(action, load_payload(payload), transaction_id, bool(offline), position)


def check_owner(station_id: str, change: Change) -> None:
    """A Change belongs to one station: a record of another would be filed under it."""
    station = change.station
    if (station is None or station.station_id == station_id) and all(
        record.station_id == station_id for record in change.transactions
    ):
        return
    owners = {record.station_id for record in change.transactions}
    if station is not None:
        owners.add(station.station_id)
    raise ValueError(f"change for {station_id!r} holds records of {sorted(owners)}")


def check_ttl(ttl: float) -> None:
    """A lease lasts a positive time: zero or less is a caller bug, not an instant expiry."""
    if not ttl > 0:
        raise ValueError(f"a lease ttl must be positive seconds, not {ttl!r}")
