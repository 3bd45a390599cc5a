"""A 1.6J charger through a real gateway to a real (simulated) 2.0.1 CSMS."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest

from gateway.app import Gateway
from gateway.config import EvseLayout
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim, Received
from gateway.sim.wire import CallErrorReceived, JsonObject, is_rfc3339_date_time

from .helpers import charger_url_of, metric

pytestmark = pytest.mark.integration


@pytest.mark.covers("charger_to_csms:BootNotification")
async def test_boot_notification_reaches_the_csms_as_a_2_0_1_boot(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """Every 1.6 boot field lands in its 2.0.1 place; the answer comes back as 1.6."""
    charger = make_charger("CP-BOOT")
    await charger.connect()
    reply = await charger.boot(
        vendor="ACME",
        model="Wallbox 22",
        chargePointSerialNumber="SN-1",
        firmwareVersion="4.2.0",
        iccid="8931000000000000001",
        imsi="262010000000001",
        meterType="MT-1",
    )
    (boot,) = await csms.wait_for("BootNotification", station_id="CP-BOOT")
    assert boot.payload == {
        "reason": "PowerUp",
        "chargingStation": {
            "model": "Wallbox 22",
            "vendorName": "ACME",
            "serialNumber": "SN-1",
            "firmwareVersion": "4.2.0",
            "modem": {"iccid": "8931000000000000001", "imsi": "262010000000001"},
        },
    }
    assert reply["status"] == "Accepted"
    assert reply["interval"] == 300


# --------------------------------------------------------------------------- helpers

T0 = "2024-05-01T12:00:00.000Z"
T1 = "2024-05-01T12:05:00.000Z"


async def settle(charger: ChargerSim) -> None:
    """Round-trip a heartbeat: the gateway handles one station's CALLs strictly in order,
    follow-up CALLs included, so everything earlier CALLs caused has reached the CSMS."""
    await charger.heartbeat()


def event_data(notify: Received) -> list[JsonObject]:
    """A NotifyEvent's eventData without the gateway-chosen eventIds (checked to be ints)."""
    assert notify.payload["seqNo"] == 0
    assert notify.payload["tbc"] is False
    assert is_rfc3339_date_time(notify.payload["generatedAt"])
    events = []
    for event in notify.payload["eventData"]:
        assert isinstance(event.pop("eventId"), int)
        events.append(event)
    return events


# --------------------------------------------------------------------------- boot


@pytest.mark.covers("charger_to_csms:BootNotification")
@pytest.mark.parametrize("status", ["Pending", "Rejected"])
async def test_a_boot_the_csms_does_not_accept_passes_back_with_its_status_and_interval(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim, status: str
) -> None:
    """Pending and Rejected reach the 1.6 charger unchanged, with the CSMS's interval."""
    csms.boot_status = status
    csms.heartbeat_interval = 45
    charger = make_charger("CP-1")
    await charger.connect()
    reply = await charger.boot(vendor="ACME", model="Wallbox")
    (boot,) = await csms.wait_for("BootNotification", station_id="CP-1")
    assert boot.payload["chargingStation"] == {"model": "Wallbox", "vendorName": "ACME"}
    assert reply["status"] == status
    assert reply["interval"] == 45
    assert is_rfc3339_date_time(reply["currentTime"])


# --------------------------------------------------------------------------- heartbeat


@pytest.mark.covers("charger_to_csms:Heartbeat")
async def test_heartbeat_is_forwarded_and_answered_with_the_csms_time(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """A registered charger's Heartbeat reaches the CSMS; currentTime is the CSMS's clock."""
    csms.handlers["Heartbeat"] = lambda _station, _payload: {"currentTime": "2031-05-06T07:08:09Z"}
    reply = await booted.heartbeat()
    (heartbeat,) = await csms.wait_for("Heartbeat", station_id="CP-1")
    assert heartbeat.payload == {}
    assert reply == {"currentTime": "2031-05-06T07:08:09Z"}


# --------------------------------------------------------------------------- status


@pytest.mark.covers("charger_to_csms:StatusNotification")
@pytest.mark.parametrize(
    ("status_v16", "status_v201"),
    [
        ("Available", "Available"),
        ("Preparing", "Occupied"),
        ("Charging", "Occupied"),
        ("SuspendedEVSE", "Occupied"),
        ("SuspendedEV", "Occupied"),
        ("Finishing", "Occupied"),
        ("Reserved", "Reserved"),
        ("Unavailable", "Unavailable"),
        ("Faulted", "Faulted"),
    ],
)
async def test_status_notification_of_connector_1_becomes_evse_1_connector_1(
    booted: ChargerSim, csms: CsmsSim, status_v16: str, status_v201: str
) -> None:
    """Each 1.6 ChargePointStatus maps to its 2.0.1 connectorStatus on EVSE 1 / connector 1."""
    reply = await booted.status(1, status_v16, timestamp=T0)
    await settle(booted)
    (status,) = csms.received("StatusNotification", station_id="CP-1")
    assert status.payload == {
        "timestamp": T0,
        "connectorStatus": status_v201,
        "evseId": 1,
        "connectorId": 1,
    }
    assert reply == {}
    assert csms.received("NotifyEvent") == [], "a plain status needs no NotifyEvent"


@pytest.mark.covers("charger_to_csms:StatusNotification")
async def test_status_notification_without_timestamp_is_stamped_by_the_gateway(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """1.6 timestamp is optional, 2.0.1's is required: the gateway supplies the receipt time."""
    await booted.status(2, "Available")
    (status,) = await csms.wait_for("StatusNotification", station_id="CP-1")
    assert is_rfc3339_date_time(status.payload["timestamp"])
    assert (status.payload["evseId"], status.payload["connectorId"]) == (2, 1)


@pytest.mark.covers("charger_to_csms:StatusNotification")
@pytest.mark.parametrize(
    ("sent", "forwarded"),
    [
        ("2024-05-01T14:00:00.123456+02:00", "2024-05-01T12:00:00.123Z"),
        ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
    ],
)
async def test_status_timestamps_reach_the_csms_in_utc_with_at_most_milliseconds(
    booted: ChargerSim, csms: CsmsSim, sent: str, forwarded: str
) -> None:
    """2.0.1 wants UTC with "Z" and at most 3 fractional digits; conformant ones pass as is."""
    await booted.status(1, "Available", timestamp=sent)
    (status,) = await csms.wait_for("StatusNotification", station_id="CP-1")
    assert status.payload["timestamp"] == forwarded


@pytest.mark.covers("charger_to_csms:StatusNotification")
@pytest.mark.parametrize("status_v16", ["Available", "Unavailable"])
async def test_connector_0_status_becomes_a_charging_station_availability_event(
    booted: ChargerSim, csms: CsmsSim, status_v16: str
) -> None:
    """Connector 0 is the station: no StatusNotification, a NotifyEvent AvailabilityState."""
    reply = await booted.status(0, status_v16, timestamp=T0)
    (notify,) = await csms.wait_for("NotifyEvent", station_id="CP-1")
    assert event_data(notify) == [
        {
            "timestamp": T0,
            "trigger": "Delta",
            "actualValue": status_v16,
            "eventNotificationType": "HardWiredNotification",
            "component": {"name": "ChargingStation"},
            "variable": {"name": "AvailabilityState"},
        }
    ]
    assert reply == {}
    assert csms.received("StatusNotification") == []


@pytest.mark.covers("charger_to_csms:StatusNotification")
async def test_a_fault_is_reported_with_its_error_code_and_cleared_by_no_error(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """Faulted+errorCode -> StatusNotification Faulted plus an alerting NotifyEvent carrying
    the code (techCode/techInfo); NoError later -> a NotifyEvent with cleared=true."""
    await booted.status(1, "Faulted", "GroundFailure", info="RCD tripped", timestamp=T0)
    (notify,) = await csms.wait_for("NotifyEvent", station_id="CP-1")
    (faulted,) = csms.received("StatusNotification", station_id="CP-1")
    assert faulted.payload == {
        "timestamp": T0,
        "connectorStatus": "Faulted",
        "evseId": 1,
        "connectorId": 1,
    }
    assert event_data(notify) == [
        {
            "timestamp": T0,
            "trigger": "Alerting",
            "actualValue": "true",
            "eventNotificationType": "HardWiredNotification",
            "component": {"name": "RCD", "evse": {"id": 1}},
            "variable": {"name": "Tripped"},
            "techCode": "GroundFailure",
            "techInfo": "RCD tripped",
        }
    ]

    await booted.status(1, "Available", "NoError", timestamp=T1)
    _, cleared = await csms.wait_for("NotifyEvent", station_id="CP-1", count=2)
    _, available = csms.received("StatusNotification", station_id="CP-1")
    assert available.payload["connectorStatus"] == "Available"
    assert event_data(cleared) == [
        {
            "timestamp": T1,
            "trigger": "Alerting",
            "actualValue": "false",
            "eventNotificationType": "HardWiredNotification",
            "component": {"name": "RCD", "evse": {"id": 1}},
            "variable": {"name": "Tripped"},
            "techCode": "GroundFailure",
            "cleared": True,
        }
    ]


@pytest.mark.covers("charger_to_csms:StatusNotification")
async def test_a_vendor_error_code_becomes_the_tech_code_and_the_1_6_code_the_tech_info(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """With a vendorErrorCode, techCode is the vendor's and techInfo names the 1.6 errorCode."""
    await booted.status(
        1, "Faulted", "ConnectorLockFailure", info="lock stuck", vendorErrorCode="E42", timestamp=T0
    )
    (notify,) = await csms.wait_for("NotifyEvent", station_id="CP-1")
    (event,) = event_data(notify)
    assert event["component"] == {
        "name": "ConnectorPlugRetentionLock",
        "evse": {"id": 1, "connectorId": 1},
    }
    assert event["variable"] == {"name": "Problem"}
    assert event["techCode"] == "E42"
    assert event["techInfo"] == "errorCode=ConnectorLockFailure; lock stuck"


async def booted_twin_charger(
    make_gateway: Callable[..., Awaitable[Gateway]], chargers: Callable[..., ChargerSim]
) -> ChargerSim:
    """A booted charger "TWIN-7" on a gateway whose layout puts both plugs on EVSE 1."""
    twin = EvseLayout(pattern="TWIN-*", connectors={1: (1, 1), 2: (1, 2)})
    gateway = await make_gateway(evse_layouts=(twin,))
    charger = chargers(charger_url_of(gateway), "TWIN-7")
    await charger.connect()
    await charger.boot()
    return charger


@pytest.mark.covers("charger_to_csms:StatusNotification")
async def test_an_explicit_evse_layout_maps_connector_2_to_evse_1_connector_2(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    """A layout rule matching the charge point id puts its two plugs on one EVSE."""
    charger = await booted_twin_charger(make_gateway, chargers)
    await charger.status(2, "Charging", timestamp=T0)
    (status,) = await csms.wait_for("StatusNotification", station_id="TWIN-7")
    assert status.payload == {
        "timestamp": T0,
        "connectorStatus": "Occupied",
        "evseId": 1,
        "connectorId": 2,
    }


# --------------------------------------------------------------------------- authorize

GROUP = {"idToken": "GROUP-1", "type": "Central"}


AUTHORIZE_CASES = [
    pytest.param({"status": v201}, {"status": v16}, id=f"{v201}-is-{v16}")
    for v201, v16 in [
        ("Accepted", "Accepted"),
        ("Blocked", "Blocked"),
        ("Expired", "Expired"),
        ("Invalid", "Invalid"),
        ("ConcurrentTx", "ConcurrentTx"),
        ("NoCredit", "Invalid"),
        ("NotAllowedTypeEVSE", "Invalid"),
        ("NotAtThisLocation", "Invalid"),
        ("NotAtThisTime", "Invalid"),
        ("Unknown", "Invalid"),
    ]
] + [
    pytest.param(
        {
            "status": "Accepted",
            "cacheExpiryDateTime": "2030-01-01T00:00:00Z",
            "groupIdToken": GROUP,
        },
        {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z", "parentIdTag": "GROUP-1"},
        id="cache-expiry-and-group",
    ),
    pytest.param(
        {"status": "Accepted", "groupIdToken": {"idToken": "G" * 21, "type": "Central"}},
        {"status": "Accepted"},
        id="group-too-long-for-a-1.6-idtag-is-dropped",
    ),
]


@pytest.mark.covers("charger_to_csms:Authorize")
@pytest.mark.parametrize(("id_token_info", "id_tag_info"), AUTHORIZE_CASES)
async def test_authorize_answer_becomes_the_1_6_id_tag_info(
    booted: ChargerSim, csms: CsmsSim, id_token_info: JsonObject, id_tag_info: JsonObject
) -> None:
    """Every 2.0.1 AuthorizationStatus has a 1.6 answer; expiry and group carry over."""
    csms.id_token_info = lambda _id_token: dict(id_token_info)
    reply = await booted.authorize("04A2B3C4")
    (authorize,) = await csms.wait_for("Authorize", station_id="CP-1")
    assert authorize.payload == {"idToken": {"idToken": "04A2B3C4", "type": "ISO14443"}}
    assert reply == {"idTagInfo": id_tag_info}


@pytest.mark.covers("charger_to_csms:Authorize")
@pytest.mark.parametrize(
    ("id_tag", "token_type"),
    [
        ("04A2B3C4", "ISO14443"),
        ("04A2B3C4D5E6F7", "ISO14443"),
        ("0123456789ABCDEF", "ISO15693"),
        ("DE-ABC-C12345678-9", "eMAID"),
        ("employee-17", "Local"),
    ],
)
async def test_authorize_infers_the_2_0_1_id_token_type_from_the_tag(
    booted: ChargerSim, csms: CsmsSim, id_tag: str, token_type: str
) -> None:
    """1.6 idTags carry no type; the gateway infers it from the tag's form."""
    await booted.authorize(id_tag)
    (authorize,) = await csms.wait_for("Authorize", station_id="CP-1")
    assert authorize.payload == {"idToken": {"idToken": id_tag, "type": token_type}}


# --------------------------------------------------------------------------- data transfer


@pytest.mark.covers("charger_to_csms:DataTransfer")
async def test_data_transfer_from_the_charger_reaches_the_csms_and_its_data_comes_back(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """1.6 DataTransfer fields are copied; an object answer reaches 1.6 as JSON text."""
    csms.handlers["DataTransfer"] = lambda _station, _payload: {
        "status": "Accepted",
        "data": {"balance": 12.5, "currency": "EUR"},
    }
    reply = await booted.data_transfer("com.acme", "getBalance", "user-7")
    (transfer,) = await csms.wait_for("DataTransfer", station_id="CP-1")
    assert transfer.payload == {"vendorId": "com.acme", "messageId": "getBalance", "data": "user-7"}
    assert reply["status"] == "Accepted"
    assert isinstance(reply["data"], str)
    assert json.loads(reply["data"]) == {"balance": 12.5, "currency": "EUR"}


@pytest.mark.covers("csms_to_charger:DataTransfer")
async def test_data_transfer_from_the_csms_reaches_the_charger_with_object_data_as_text(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """2.0.1 data of any JSON type arrives at the 1.6 charger as a string; its answer returns."""
    charger = make_charger(
        "CP-1", handlers={"DataTransfer": lambda _payload: {"status": "Accepted", "data": "pong"}}
    )
    await charger.connect()
    await charger.boot()
    data = {"n": 1, "items": [1, 2, "three"], "nested": {"ok": True}}
    answer = await csms.call(
        "CP-1", "DataTransfer", {"vendorId": "com.acme", "messageId": "ping", "data": data}
    )
    (received,) = charger.calls_of("DataTransfer")
    assert received["vendorId"] == "com.acme"
    assert received["messageId"] == "ping"
    assert isinstance(received["data"], str)
    assert json.loads(received["data"]) == data
    assert answer == {"status": "Accepted", "data": "pong"}


@pytest.mark.covers("csms_to_charger:DataTransfer")
async def test_data_transfer_from_the_csms_without_data_arrives_without_data(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """Optional fields stay absent; the charger's status comes back unchanged."""
    answer = await csms.call("CP-1", "DataTransfer", {"vendorId": "com.acme"})
    assert booted.calls_of("DataTransfer") == [{"vendorId": "com.acme"}]
    assert answer == {"status": "Accepted"}


# --------------------------------------------------------------------------- registration


async def pending_charger(make_charger: Callable[..., ChargerSim], csms: CsmsSim) -> ChargerSim:
    csms.boot_status = "Pending"
    charger = make_charger("CP-1")
    await charger.connect()
    reply = await charger.boot()
    assert reply["status"] == "Pending"
    return charger


@pytest.mark.covers("charger_to_csms:Heartbeat")
async def test_heartbeat_before_acceptance_is_answered_by_the_gateway_and_not_forwarded(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim, gateway: Gateway
) -> None:
    """2.0.1 B01.FR.08: nothing but the boot goes upstream before the CSMS accepts."""
    charger = await pending_charger(make_charger, csms)
    held = metric(gateway, "ocpp_gateway_held_messages_total", action="Heartbeat")
    reply = await charger.heartbeat()
    assert is_rfc3339_date_time(reply["currentTime"])
    assert [message.action for message in csms.messages] == ["BootNotification"]
    assert csms.security_errors == []
    assert metric(gateway, "ocpp_gateway_held_messages_total", action="Heartbeat") == held + 1
    # The boot itself was forwarded, so it is not counted as answered by the gateway.
    assert not metric(gateway, "ocpp_gateway_held_messages_total", action="BootNotification")


@pytest.mark.covers("charger_to_csms:StatusNotification")
async def test_status_before_acceptance_is_held_and_sent_once_a_later_boot_is_accepted(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """The status is answered {} at once and reaches the CSMS after the accepted re-boot."""
    charger = await pending_charger(make_charger, csms)
    assert await charger.status(1, "Preparing", timestamp=T0) == {}
    await charger.heartbeat()  # answered locally: the status was handled before it
    assert [message.action for message in csms.messages] == ["BootNotification"]

    csms.boot_status = "Accepted"
    reply = await charger.boot()
    assert reply["status"] == "Accepted"
    (status,) = await csms.wait_for("StatusNotification", station_id="CP-1")
    assert status.payload == {
        "timestamp": T0,
        "connectorStatus": "Occupied",
        "evseId": 1,
        "connectorId": 1,
    }
    assert [message.action for message in csms.messages] == [
        "BootNotification",
        "BootNotification",
        "StatusNotification",
    ]
    assert csms.security_errors == []


@pytest.mark.covers("charger_to_csms:Authorize")
async def test_authorize_while_pending_is_refused_and_the_csms_pace_is_respected(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """SecurityError (as a 2.0.1 CSMS would answer), never forwarded; with a Pending boot on
    record the CSMS chose when to hear again, so the gateway triggers no extra boot."""
    charger = await pending_charger(make_charger, csms)
    with pytest.raises(CallErrorReceived) as refused:
        await charger.authorize("04A2B3C4")
    assert refused.value.code == "SecurityError"
    # The gateway handles one charger CALL at a time, follow-ups included: once this
    # heartbeat is answered, any TriggerMessage the Authorize caused was already sent.
    await charger.heartbeat()
    assert charger.calls_of("TriggerMessage") == []
    assert [message.action for message in csms.messages] == ["BootNotification"]
    assert csms.security_errors == []


@pytest.mark.covers("charger_to_csms:Authorize")
async def test_a_charger_that_talks_before_booting_is_asked_to_boot(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """Without any boot on record, an Authorize is refused and TriggerMessage(Boot) follows."""
    charger = make_charger("CP-NEW")
    await charger.connect()
    with pytest.raises(CallErrorReceived) as refused:
        await charger.authorize("04A2B3C4")
    assert refused.value.code == "SecurityError"
    (trigger,) = await charger.wait_for_call("TriggerMessage")
    assert trigger == {"requestedMessage": "BootNotification"}
    assert csms.messages == []


async def test_registration_survives_a_charger_reconnect(booted: ChargerSim, csms: CsmsSim) -> None:
    """The accepted registration is stored: after reconnecting without a boot, a Heartbeat
    is forwarded to the CSMS instead of being answered locally."""
    await booted.heartbeat()
    await booted.close()
    await csms.wait_disconnected("CP-1")
    await booted.connect()
    await booted.heartbeat()
    heartbeats = await csms.wait_for("Heartbeat", station_id="CP-1", count=2)
    assert len(heartbeats) == 2
    assert csms.connection_count("CP-1") == 2
    assert [message.action for message in csms.messages] == [
        "BootNotification",
        "Heartbeat",
        "Heartbeat",
    ]


@pytest.mark.covers("charger_to_csms:StatusNotification")
async def test_a_connector_outside_the_explicit_layout_is_refused(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    """Connector 3 has no place in a two-plug layout: PropertyConstraintViolation, not sent."""
    charger = await booted_twin_charger(make_gateway, chargers)
    with pytest.raises(CallErrorReceived) as refused:
        await charger.status(3, "Available", timestamp=T0)
    assert refused.value.code == "PropertyConstraintViolation"
    await settle(charger)
    assert csms.received("StatusNotification") == []


@pytest.mark.covers("charger_to_csms:StatusNotification")
async def test_a_changed_error_code_clears_the_alert_of_the_previous_one(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """1.6 reports one errorCode per connector: a new code supersedes the old one, so the
    old alert must be cleared in the CSMS's device model, or it stays raised forever."""
    await booted.status(1, "Faulted", "GroundFailure", timestamp=T0)
    await booted.status(1, "Faulted", "OverCurrentFailure", timestamp=T1)
    await booted.status(1, "Available", "NoError", timestamp=T1)
    await settle(booted)
    events = [event for notify in csms.received("NotifyEvent") for event in event_data(notify)]
    assert [
        (event["component"]["name"], event["actualValue"], event.get("cleared", False))
        for event in events
    ] == [
        ("RCD", "true", False),
        ("RCD", "false", True),
        ("OverCurrentProtection", "true", False),
        ("OverCurrentProtection", "false", True),
    ]


# --------------------------------------------------------------------------- known gateway bugs


@pytest.mark.covers("charger_to_csms:StatusNotification")
async def test_a_fault_reported_before_a_reconnect_is_cleared_after_it(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """The CSMS must learn that the fault is gone even if the charger reconnected meanwhile."""
    await booted.status(1, "Faulted", "GroundFailure", timestamp=T0)
    await settle(booted)
    await booted.close()
    await csms.wait_disconnected("CP-1")
    await booted.connect()
    await booted.status(1, "Available", "NoError", timestamp=T1)
    await settle(booted)
    notifies = csms.received("NotifyEvent", station_id="CP-1")
    assert len(notifies) == 2
    (cleared,) = event_data(notifies[1])
    assert cleared["component"] == {"name": "RCD", "evse": {"id": 1}}
    assert cleared["cleared"] is True


@pytest.mark.covers("charger_to_csms:Heartbeat")
async def test_a_charger_with_no_boot_on_record_that_only_heartbeats_is_asked_to_boot(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """After a gateway restart without state an idle 1.6 charger only heartbeats; without a
    TriggerMessage(BootNotification) its station stays silent upstream indefinitely."""
    charger = make_charger("CP-IDLE")
    await charger.connect()
    await charger.status(1, "Available", timestamp=T0)
    await charger.heartbeat()
    await charger.heartbeat()  # handled after any follow-up of the first one
    assert charger.calls_of("TriggerMessage") == [{"requestedMessage": "BootNotification"}]
