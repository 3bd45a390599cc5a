"""A CSMS outage in the middle of charging: nothing lost, in order, flagged offline.

Two behaviours (``offline_mode``): *buffer* (default), where the gateway answers the
charger itself and replays its durable outbox on reconnect; *mirror*, where it closes the
charger after ``offline_grace`` so the charger queues its own messages (2.0.1 Part 4 §6.3).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gateway.app import Gateway
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from tests.integration.helpers import charger_url_of, metric
from tests.integration.ledger import only_transaction, wait_ended
from tests.integration.test_transactions import TAG, now, periodic

pytestmark = pytest.mark.integration

MakeGateway = Callable[..., Awaitable[Gateway]]


async def cut_off(csms: CsmsSim, station_id: str = "CP-1") -> None:
    """The CSMS goes away for this station and refuses it until told otherwise."""
    csms.refuse_connections = True
    await csms.drop(station_id)


@pytest.mark.covers(
    "StartTransaction",
    "charger_to_csms:MeterValues",
    "StopTransaction",
    "charger_to_csms:StatusNotification",
)
async def test_outage_mid_session_is_replayed_in_order_flagged_offline(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """Stop the CSMS, run start/meter/stop, bring it back: the CSMS receives every event,
    in order, flagged offline, seqNo contiguous; newer messages come after the replay."""
    assert (await booted.authorize(TAG))["idTagInfo"]["status"] == "Accepted"  # cached
    await booted.status(1, "Preparing")
    # A forwarded CALL goes only once the outbox is delivered: a barrier, not a sleep.
    await booted.data_transfer("com.example")
    await cut_off(csms)

    start = await booted.start_transaction(1, TAG, 1000, now())
    assert start["idTagInfo"]["status"] == "Accepted"  # from the authorization cache
    legacy_id = start["transactionId"]
    await booted.status(1, "Charging")
    await booted.meter_values(1, [periodic("1500")], legacy_id)
    await booted.meter_values(1, [periodic("2000")], legacy_id)
    await booted.status(1, "Finishing")
    assert await booted.stop_transaction(legacy_id, 2500, now(), idTag=TAG) == {}
    await booted.status(1, "Available")
    assert "currentTime" in await booted.heartbeat()  # answered by the gateway
    assert csms.received("TransactionEvent") == []
    assert metric(gateway, "ocpp_gateway_outbox_pending") == 6

    csms.refuse_connections = False
    await wait_ended(csms)
    await csms.wait_for("StatusNotification", count=2)
    await booted.data_transfer("com.example")  # a new message, after the replay
    await csms.wait_for("DataTransfer", count=2)

    events = only_transaction(csms, "CP-1")
    assert [e["eventType"] for e in events] == ["Started", "Updated", "Updated", "Updated", "Ended"]
    assert [e["triggerReason"] for e in events[1:4]] == [
        "ChargingStateChanged",
        "MeterValuePeriodic",
        "MeterValuePeriodic",
    ]
    assert all(event.get("offline") is True for event in events)
    readings = [e["meterValue"][0]["sampledValue"][0]["value"] for e in events[2:4]]
    assert readings == [1500, 2000]
    actions = [m.action for m in csms.messages]
    first_replayed = actions.index("TransactionEvent")
    assert actions[first_replayed:] == [
        "TransactionEvent",  # Started
        "TransactionEvent",  # Charging
        "TransactionEvent",  # meter
        "TransactionEvent",  # meter
        "TransactionEvent",  # Ended
        "StatusNotification",  # Available
        "DataTransfer",
    ]
    assert metric(gateway, "ocpp_gateway_outbox_pending") == 0
    assert (
        metric(
            gateway,
            "ocpp_gateway_outbox_delivered_total",
            action="TransactionEvent",
            offline="true",
        )
        == 5
    )
    assert (
        metric(
            gateway,
            "ocpp_gateway_offline_answers_total",
            action="StartTransaction",
            authorization="Accepted",
        )
        == 1
    )


@pytest.mark.covers("charger_to_csms:Authorize", "StartTransaction")
@pytest.mark.parametrize(
    ("policy", "known", "unknown"),
    [
        ("cache", "Accepted", "Invalid"),
        ("accept", "Accepted", "Accepted"),
        ("reject", "Invalid", "Invalid"),
    ],
)
async def test_offline_authorization_policy_answers_starts_and_authorizes(
    make_gateway: MakeGateway,
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
    policy: str,
    known: str,
    unknown: str,
) -> None:
    gateway = await make_gateway(offline_authorization=policy)
    charger = chargers(charger_url_of(gateway))
    await charger.connect()
    await charger.boot()
    await charger.authorize(TAG)  # the CSMS accepts it: now in the cache
    await cut_off(csms)
    assert (await charger.authorize(TAG))["idTagInfo"]["status"] == known
    assert (await charger.authorize("DEADBEEF"))["idTagInfo"]["status"] == unknown
    first = await charger.start_transaction(1, TAG, 0, now())
    second = await charger.start_transaction(2, "DEADBEEF", 0, now())
    assert (first["idTagInfo"]["status"], second["idTagInfo"]["status"]) == (known, unknown)
    assert first["transactionId"] != second["transactionId"]


@pytest.mark.covers("charger_to_csms:Authorize")
async def test_a_token_the_csms_refused_is_not_accepted_offline(
    make_gateway: MakeGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """The cache keeps the CSMS's latest word: a blocked token stays blocked offline."""
    verdicts = {"status": "Accepted"}
    csms.id_token_info = lambda _token: dict(verdicts)
    gateway = await make_gateway()
    charger = chargers(charger_url_of(gateway))
    await charger.connect()
    await charger.boot()
    await charger.authorize(TAG)
    verdicts["status"] = "Blocked"
    assert (await charger.authorize(TAG))["idTagInfo"]["status"] == "Blocked"
    await cut_off(csms)
    assert (await charger.authorize(TAG))["idTagInfo"]["status"] == "Invalid"


@pytest.mark.covers("StartTransaction", "charger_to_csms:MeterValues", "StopTransaction")
async def test_mirror_closes_the_charger_and_flags_what_it_queued_as_offline(
    make_gateway: MakeGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """Mirror: after offline_grace without the CSMS the charger is closed (1013), so it
    queues its own messages; sent after reconnecting, their old timestamps flag them
    offline, while a message stamped now is not."""
    gateway = await make_gateway(offline_mode="mirror", offline_grace=0.2)
    charger = chargers(charger_url_of(gateway))
    await charger.connect()
    await charger.boot()
    await cut_off(csms)
    assert await charger.wait_closed() == (1013, "CSMS unreachable")
    disconnects = metric(
        gateway, "ocpp_gateway_charger_disconnects_total", reason="csms_unreachable"
    )
    assert disconnects == 1

    # The charger queued these while it had no connection (timestamps a minute ago).
    csms.refuse_connections = False
    await charger.connect()
    await csms.wait_connected("CP-1", count=2)
    start = await charger.start_transaction(1, TAG, 10, now(-60))
    await charger.meter_values(1, [periodic("20", now(-30))], start["transactionId"])
    await charger.stop_transaction(start["transactionId"], 30, now(-10), reason="Local")
    live = await charger.start_transaction(1, TAG, 30, now())
    await charger.stop_transaction(live["transactionId"], 40, now())
    await wait_ended(csms, count=2)

    flags: dict[str, set[bool]] = {}
    for message in csms.received("TransactionEvent"):
        transaction_id = message.payload["transactionInfo"]["transactionId"]
        flags.setdefault(transaction_id, set()).add(message.payload.get("offline", False))
    queued, sent_live = (
        flags[e["transactionInfo"]["transactionId"]]
        for e in (
            csms.received("TransactionEvent")[0].payload,
            csms.received("TransactionEvent")[-1].payload,
        )
    )
    assert (queued, sent_live) == ({True}, {False})
    assert start["transactionId"] != live["transactionId"]


async def test_mirror_keeps_closing_a_charger_while_the_csms_stays_away(
    make_gateway: MakeGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    gateway = await make_gateway(offline_mode="mirror", offline_grace=0.2)
    charger = chargers(charger_url_of(gateway))
    await charger.connect()
    await charger.boot()
    await cut_off(csms)
    assert (await charger.wait_closed())[0] == 1013
    await charger.connect()  # the CSMS is still away: the new connection closes as well
    assert (await charger.wait_closed())[0] == 1013
    assert metric(gateway, "ocpp_gateway_charger_disconnects_total", reason="csms_unreachable") == 2


@pytest.mark.covers("charger_to_csms:SecurityEventNotification")
async def test_security_events_wait_out_an_outage_in_the_outbox(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """A 2.0.1 station queues security events while offline (A04.FR.02): the charger is
    answered at once, and the CSMS gets each event, renamed, in order, when it is back."""
    await cut_off(csms)
    events = [
        ("InvalidCentralSystemCertificate", "2024-05-01T11:59:58Z"),
        ("TamperDetectionActivated", "2024-05-01T11:59:59Z"),
    ]
    for event_type, timestamp in events:
        answer = await booted.call(
            "SecurityEventNotification", {"type": event_type, "timestamp": timestamp}
        )
        assert answer == {}
    assert csms.received("SecurityEventNotification") == []
    assert metric(gateway, "ocpp_gateway_outbox_pending") == 2

    csms.refuse_connections = False
    await csms.wait_for("SecurityEventNotification", count=2)
    assert [m.payload for m in csms.received("SecurityEventNotification")] == [
        {"type": "InvalidCsmsCertificate", "timestamp": "2024-05-01T11:59:58Z"},
        {"type": "TamperDetectionActivated", "timestamp": "2024-05-01T11:59:59Z"},
    ]
