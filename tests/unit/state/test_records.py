"""The hot-path copies of the state records (OutboxMessage.at, Change.and_delivered)
must equal dataclasses.replace on every field, including fields added later."""

from __future__ import annotations

import dataclasses

from gateway.state import Change, OutboxMessage, StationRecord, TransactionRecord


def _every_field_set() -> Change:
    station = StationRecord(
        station_id="CP1", boot={"chargePointVendor": "V"}, registration="Accepted"
    )
    transaction = TransactionRecord(
        station_id="CP1",
        transaction_id="t-1",
        legacy_id=7,
        connector_id=1,
        evse_id=1,
        next_seq_no=0,
        started_at="2024-05-01T12:00:00Z",
        start_key="k",
    )
    change = Change(
        station=station,
        transactions=(transaction,),
        append=(OutboxMessage("Heartbeat", {}),),
        delivered=(3,),
        authorizations=(("TAG", {"status": "Accepted"}),),
        clear_authorizations=True,
    )
    defaults = Change()
    unset = [
        f.name
        for f in dataclasses.fields(Change)
        if getattr(change, f.name) == getattr(defaults, f.name)
    ]
    assert not unset, f"set these fields here too: {unset}"
    return change


def test_and_delivered_keeps_every_field_and_appends_the_position() -> None:
    change = _every_field_set()
    assert change.and_delivered(9) == dataclasses.replace(change, delivered=(3, 9))


def test_at_keeps_every_field_and_sets_the_position() -> None:
    message = OutboxMessage("TransactionEvent", {"seqNo": 1}, "t-1", offline=True, position=2)
    unset = [
        f.name
        for f in dataclasses.fields(OutboxMessage)
        if getattr(message, f.name) == f.default and f.name != "position"
    ]
    assert not unset, f"set these fields here too: {unset}"
    assert message.at(5) == dataclasses.replace(message, position=5)
