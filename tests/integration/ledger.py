"""What a strict CSMS checks about the TransactionEvents of one station (2.0.1 E, §1.60.1).

Shared by the transaction tests: every transaction starts with Started, ends with Ended
(if at all), has Updated in between, and seqNos without a gap or a repeat (the CSMS
uses gaps to detect lost messages, 2.0.1 §E 1.3.2). A re-delivered event must be the
same event: equal seqNo with different content is a failure.
"""

from __future__ import annotations

from typing import Any

from gateway.sim.csms import CsmsSim

Payload = dict[str, Any]


def transactions(csms: CsmsSim, station_id: str) -> dict[str, list[Payload]]:
    """TransactionEvents per transactionId, in arrival order, re-deliveries removed."""
    by_id: dict[str, list[Payload]] = {}
    for message in csms.received("TransactionEvent", station_id=station_id):
        events = by_id.setdefault(message.payload["transactionInfo"]["transactionId"], [])
        same_seq = [e for e in events if e["seqNo"] == message.payload["seqNo"]]
        if same_seq:
            assert same_seq[0] == message.payload, f"seqNo re-used with another meaning: {same_seq}"
            continue
        events.append(message.payload)
    return by_id


def assert_well_formed(events: list[Payload], *, ended: bool = True) -> None:
    """Started first (seqNo 0), Updated between, Ended last; seqNos contiguous."""
    assert events, "no TransactionEvent at all"
    kinds = [event["eventType"] for event in events]
    assert kinds[0] == "Started", kinds
    if ended:
        assert kinds[-1] == "Ended", kinds
        assert set(kinds[1:-1]) <= {"Updated"}, kinds
    else:
        assert set(kinds[1:]) <= {"Updated"}, kinds
    assert [event["seqNo"] for event in events] == list(range(len(events))), [
        event["seqNo"] for event in events
    ]


def only_transaction(csms: CsmsSim, station_id: str, *, ended: bool = True) -> list[Payload]:
    """The events of the single transaction the station reported, checked."""
    by_id = transactions(csms, station_id)
    assert len(by_id) == 1, f"expected one transaction, got {list(by_id)}"
    (events,) = by_id.values()
    assert_well_formed(events, ended=ended)
    return events


async def wait_ended(csms: CsmsSim, station_id: str = "CP-1", count: int = 1) -> None:
    """Return once ``count`` Ended events of the station reached the CSMS."""
    await csms.wait_for(
        "TransactionEvent",
        station_id=station_id,
        where=lambda payload: payload["eventType"] == "Ended",
        count=count,
    )
