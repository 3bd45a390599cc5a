"""Bad input from either side: a clear CALLERROR (or none, where OCPP-J defines none), a
metric, nothing invalid forwarded, and every other station carries on (DESIGN.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.wire import CallErrorReceived, JsonObject, encode_call_result
from gateway.translate.dispatch import ROUTES
from gateway.translate.types import Direction

from .helpers import RawCsms, answer_boot_then, charger_url_of, connect_native, metric, recv_text

pytestmark = pytest.mark.integration


@pytest.fixture
async def bystander(make_charger: Callable[..., ChargerSim]) -> ChargerSim:
    """A second booted charger ("CP-OK") that must not notice the other station's trouble."""
    charger = make_charger("CP-OK")
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    return charger


async def expect_both_stations_still_work(
    offender: ChargerSim, bystander: ChargerSim, csms: CsmsSim, before: int
) -> None:
    """Both chargers' heartbeats round-trip, and they are all the CSMS received since ``before``.

    The gateway handles one station's CALLs in order, so once the offender's heartbeat
    is answered, nothing its bad frame could have caused is still on its way upstream.
    """
    await offender.heartbeat()
    await bystander.heartbeat()
    assert [(m.station_id, m.action) for m in csms.messages[before:]] == [
        (offender.charge_point_id, "Heartbeat"),
        (bystander.charge_point_id, "Heartbeat"),
    ]


async def expect_chargers_only_got_valid_calls(
    station: ChargerSim, bystander: ChargerSim, csms: CsmsSim
) -> None:
    """A valid CSMS CALL still reaches ``station`` and is the only CALL it ever received;
    the other station's heartbeat round-trips and it was sent nothing."""
    await csms.call(station.charge_point_id, "DataTransfer", {"vendorId": "after"})
    assert station.received_calls == [("DataTransfer", {"vendorId": "after"})]
    before = len(csms.messages)
    await bystander.heartbeat()
    assert [(m.station_id, m.action) for m in csms.messages[before:]] == [
        (bystander.charge_point_id, "Heartbeat")
    ]
    assert bystander.received_calls == []


def call_errors_to_charger(gateway: Gateway, code: str) -> float:
    return metric(
        gateway, "ocpp_gateway_call_errors_total", side="charger", direction="out", code=code
    )


# --------------------------------------------------------------------------- from a 1.6 charger


async def test_a_non_json_frame_is_counted_and_the_connection_stays_open(
    booted: ChargerSim, bystander: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """1.6 defines no answer to a message without a readable id: count it, carry on."""
    before = len(csms.messages)
    invalid = metric(gateway, "ocpp_gateway_invalid_frames_total", side="charger")
    await booted.send_raw("this is {not json")
    await expect_both_stations_still_work(booted, bystander, csms, before)
    assert booted.connected
    assert metric(gateway, "ocpp_gateway_invalid_frames_total", side="charger") == invalid + 1
    assert call_errors_to_charger(gateway, "RpcFrameworkError") == 0, "no CALLERROR sent"


@pytest.mark.parametrize(
    ("frame", "unique_id", "code", "canonical"),
    [
        pytest.param(
            '[2, "id1", "Heartbeat"]',
            "id1",
            "FormationViolation",
            "RpcFrameworkError",
            id="call-without-payload",
        ),
        pytest.param(
            '[2, "id2", "Heartbeat", []]',
            "id2",
            "FormationViolation",
            "RpcFrameworkError",
            id="payload-not-an-object",
        ),
        pytest.param(
            '[7, "x", {}]',
            "x",
            "NotImplemented",
            "MessageTypeNotSupported",
            id="unknown-message-type",
        ),
    ],
)
async def test_a_malformed_frame_with_a_readable_id_gets_a_1_6_callerror(
    booted: ChargerSim,
    bystander: ChargerSim,
    csms: CsmsSim,
    gateway: Gateway,
    frame: str,
    unique_id: str,
    code: str,
    canonical: str,
) -> None:
    """The CALLERROR carries the frame's id and a code 1.6 knows (no 2.0.1-only codes)."""
    before = len(csms.messages)
    errors = call_errors_to_charger(gateway, canonical)
    invalid = metric(gateway, "ocpp_gateway_invalid_frames_total", side="charger")
    await booted.send_raw(frame)
    answer = json.loads(await booted.next_unmatched())
    assert answer[:3] == [4, unique_id, code]
    assert isinstance(answer[3], str)
    assert answer[3]
    assert answer[4] == {}
    await expect_both_stations_still_work(booted, bystander, csms, before)
    assert call_errors_to_charger(gateway, canonical) == errors + 1
    assert metric(gateway, "ocpp_gateway_invalid_frames_total", side="charger") == invalid + 1


async def test_an_unknown_action_from_the_charger_is_not_implemented(
    booted: ChargerSim, bystander: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """An action OCPP 1.6 does not define: NotImplemented, counted under action="unknown"."""
    before = len(csms.messages)
    received = metric(
        gateway,
        "ocpp_gateway_messages_total",
        side="charger",
        direction="in",
        message_type="call",
        action="unknown",
    )
    await booted.send_raw('[2, "u1", "FlyToTheMoon", {}]')
    answer = json.loads(await booted.next_unmatched())
    assert answer[:3] == [4, "u1", "NotImplemented"]
    await expect_both_stations_still_work(booted, bystander, csms, before)
    assert (
        metric(
            gateway,
            "ocpp_gateway_messages_total",
            side="charger",
            direction="in",
            message_type="call",
            action="unknown",
        )
        == received + 1
    )
    assert call_errors_to_charger(gateway, "NotImplemented") == 1


@pytest.mark.covers("charger_to_csms:Reset", "GetConfiguration")
@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("Reset", {"type": "Soft"}),  # a central-system-to-charger action, sent the wrong way
        ("GetConfiguration", {}),
    ],
)
async def test_a_1_6_action_without_a_2_0_1_route_is_not_supported(
    booted: ChargerSim,
    bystander: ChargerSim,
    csms: CsmsSim,
    gateway: Gateway,
    action: str,
    payload: JsonObject,
) -> None:
    """A valid 1.6 action the gateway cannot forward: NotSupported, nothing upstream.
    (Every charger-to-central-system action has a route now: only wrong-way ones remain.)"""
    assert (Direction.CHARGER_TO_CSMS, action) not in ROUTES
    before = len(csms.messages)
    with pytest.raises(CallErrorReceived) as refused:
        await booted.call(action, payload, validate=False)
    assert refused.value.code == "NotSupported"
    await expect_both_stations_still_work(booted, bystander, csms, before)
    assert call_errors_to_charger(gateway, "NotSupported") == 1


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        pytest.param(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError"},
            "OccurenceConstraintViolation",
            id="required-field-missing",
        ),
        pytest.param(
            "StatusNotification",
            {"connectorId": "1", "errorCode": "NoError", "status": "Available"},
            "TypeConstraintViolation",
            id="wrong-json-type",
        ),
        pytest.param(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
            "PropertyConstraintViolation",
            id="value-not-in-enum",
        ),
        pytest.param(
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": "Available",
                "timestamp": "yesterday",
            },
            "PropertyConstraintViolation",
            id="bad-date-time",
        ),
        pytest.param(
            "Authorize", {"idTag": "X" * 21}, "PropertyConstraintViolation", id="string-too-long"
        ),
        pytest.param(
            "Heartbeat", {"unexpected": True}, "FormationViolation", id="unknown-property"
        ),
    ],
)
async def test_a_schema_invalid_charger_payload_gets_the_1_6_spelled_code(
    booted: ChargerSim,
    bystander: ChargerSim,
    csms: CsmsSim,
    action: str,
    payload: JsonObject,
    code: str,
) -> None:
    """The code names the failed rule, spelled as OCPP-J 1.6 spells it; nothing forwarded."""
    before = len(csms.messages)
    with pytest.raises(CallErrorReceived) as refused:
        await booted.call(action, payload, validate=False)
    assert refused.value.code == code
    await expect_both_stations_still_work(booted, bystander, csms, before)


async def test_an_oversized_frame_closes_only_that_chargers_connection(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    """A frame over max_frame_bytes closes the connection with 1009; others carry on."""
    gateway = await make_gateway(max_frame_bytes=4096)
    url = charger_url_of(gateway)
    offender, bystander = chargers(url, "CP-BIG"), chargers(url, "CP-OK")
    for charger in (offender, bystander):
        await charger.connect()
        await charger.boot()
    before = len(csms.messages)
    big = json.dumps([2, "big1", "DataTransfer", {"vendorId": "v", "data": "x" * 5000}])
    await offender.send_raw(big)
    code, _reason = await offender.wait_closed()
    assert code == 1009
    await csms.wait_disconnected("CP-BIG")
    await bystander.heartbeat()
    assert [(m.station_id, m.action) for m in csms.messages[before:]] == [("CP-OK", "Heartbeat")]


# --------------------------------------------------------------------------- from the 2.0.1 CSMS


async def test_an_unknown_action_from_the_csms_is_not_implemented(
    booted: ChargerSim, bystander: ChargerSim, csms: CsmsSim
) -> None:
    """An action OCPP 2.0.1 does not define: NotImplemented; the charger sees nothing."""
    await csms.send_raw("CP-1", '[2, "c1", "FlyToTheMoon", {}]')
    answer = json.loads(await csms.next_unmatched("CP-1"))
    assert answer[:3] == [4, "c1", "NotImplemented"]
    await expect_chargers_only_got_valid_calls(booted, bystander, csms)


async def test_a_malformed_frame_from_the_csms_gets_a_2_0_1_callerror(
    booted: ChargerSim, bystander: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """An unreadable frame is answered RpcFrameworkError with id "-1" (2.0.1 Part 4 §4.2.3)."""
    await csms.send_raw("CP-1", "this is {not json")
    answer = json.loads(await csms.next_unmatched("CP-1"))
    assert answer[:3] == [4, "-1", "RpcFrameworkError"]
    assert metric(gateway, "ocpp_gateway_invalid_frames_total", side="csms") == 1
    await expect_chargers_only_got_valid_calls(booted, bystander, csms)
    await booted.heartbeat()
    await csms.wait_for("Heartbeat", station_id="CP-1")


@pytest.mark.covers("CostUpdated", "csms_to_charger:Heartbeat")
@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("CostUpdated", {"totalCost": 1.5, "transactionId": "T-1"}),
        # A real 2.0.1 action only a station sends: the CSMS has no business sending it.
        ("Heartbeat", {}),
    ],
)
async def test_a_2_0_1_action_without_a_1_6_equivalent_is_not_supported(
    booted: ChargerSim, bystander: ChargerSim, csms: CsmsSim, action: str, payload: JsonObject
) -> None:
    """A valid 2.0.1 request 1.6 cannot express: NotSupported (2.0.1 spelling)."""
    with pytest.raises(CallErrorReceived) as refused:
        await csms.call("CP-1", action, payload)
    assert refused.value.code == "NotSupported"
    await expect_chargers_only_got_valid_calls(booted, bystander, csms)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        pytest.param(
            {"messageId": "m"}, "OccurrenceConstraintViolation", id="required-field-missing"
        ),
        pytest.param({"vendorId": 5}, "TypeConstraintViolation", id="wrong-json-type"),
        pytest.param({"vendorId": "v" * 256}, "PropertyConstraintViolation", id="string-too-long"),
        pytest.param({"vendorId": "v", "bogus": 1}, "FormatViolation", id="unknown-property"),
    ],
)
async def test_a_schema_invalid_csms_request_gets_the_2_0_1_spelled_code(
    booted: ChargerSim, bystander: ChargerSim, csms: CsmsSim, payload: JsonObject, code: str
) -> None:
    """2.0.1 spells FormatViolation and OccurrenceConstraintViolation; the charger sees nothing."""
    with pytest.raises(CallErrorReceived) as refused:
        await csms.call("CP-1", "DataTransfer", payload, validate=False)
    assert refused.value.code == code
    await expect_chargers_only_got_valid_calls(booted, bystander, csms)


# --------------------------------------------------------------------------- CSMS answers


async def test_a_callerror_from_the_csms_is_relayed_to_the_charger(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """The CSMS answering NotImplemented reaches the charger as NotImplemented."""
    del csms.handlers["DataTransfer"]
    with pytest.raises(CallErrorReceived) as relayed:
        await booted.data_transfer("com.acme", "hello")
    assert relayed.value.code == "NotImplemented"
    assert len(csms.received("DataTransfer", station_id="CP-1")) == 1
    assert (
        metric(
            gateway,
            "ocpp_gateway_call_errors_total",
            side="csms",
            direction="in",
            code="NotImplemented",
        )
        == 1
    )


async def test_a_csms_that_forgot_the_registration_answers_security_error_to_the_charger(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """A CSMS SecurityError (station not registered there) is relayed, not swallowed."""
    csms.registered.discard("CP-1")
    with pytest.raises(CallErrorReceived) as relayed:
        await booted.heartbeat()
    assert relayed.value.code == "SecurityError"
    assert csms.security_errors == [("CP-1", "Heartbeat")]


@pytest.mark.parametrize(
    ("code_v201", "code_v16"),
    [
        ("FormatViolation", "FormationViolation"),
        ("OccurrenceConstraintViolation", "OccurenceConstraintViolation"),
        ("OccurenceConstraintViolation", "OccurenceConstraintViolation"),
        ("TypeConstraintViolation", "TypeConstraintViolation"),
        ("PropertyConstraintViolation", "PropertyConstraintViolation"),
        ("RpcFrameworkError", "FormationViolation"),
        ("MessageTypeNotSupported", "NotImplemented"),
        ("SecurityError", "SecurityError"),
        ("NoSuchCodeAnywhere", "GenericError"),
    ],
)
async def test_a_csms_callerror_code_is_re_spelled_for_1_6(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    code_v201: str,
    code_v16: str,
) -> None:
    """Description and details are relayed; the code is one a 1.6 charger knows."""

    def refuse(frame: list[Any]) -> str:
        return json.dumps([4, frame[1], code_v201, "the CSMS says no", {"hint": 42}])

    async with RawCsms(answer_boot_then(refuse)) as upstream:
        gateway = await make_gateway(upstream=upstream.url)
        charger = chargers(charger_url_of(gateway), "CP-1")
        await charger.connect()
        await charger.boot()
        with pytest.raises(CallErrorReceived) as relayed:
            await charger.authorize("04A2B3C4")
        assert relayed.value.code == code_v16
        assert relayed.value.description == "the CSMS says no"
        assert relayed.value.details == {"hint": 42}
        authorize = json.loads(upstream.texts("CP-1")[-1])
        assert authorize[2:] == [
            "Authorize",
            {"idToken": {"idToken": "04A2B3C4", "type": "ISO14443"}},
        ]
        await charger.close()


async def test_a_schema_invalid_csms_answer_becomes_an_internal_error_for_the_charger(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
) -> None:
    """An answer that fails its 2.0.1 schema is never translated into an invalid 1.6 one."""

    def answer_empty(frame: list[Any]) -> str:
        return json.dumps([3, frame[1], {}])  # Heartbeat needs currentTime

    async with RawCsms(answer_boot_then(answer_empty)) as upstream:
        gateway = await make_gateway(upstream=upstream.url)
        charger = chargers(charger_url_of(gateway), "CP-1")
        await charger.connect()
        await charger.boot()
        with pytest.raises(CallErrorReceived) as refused:
            await charger.heartbeat()
        assert refused.value.code == "InternalError"
        await charger.close()


async def test_a_silent_csms_times_out_as_internal_error_and_its_late_answer_is_counted(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    """After response_timeout the charger gets InternalError; the late CALLRESULT matches
    nothing and is counted as unmatched, and the station carries on. (DataTransfer: a
    Heartbeat or Authorize would be answered by the gateway itself in buffer mode.)"""
    gateway = await make_gateway(response_timeout=0.5)
    charger = chargers(charger_url_of(gateway), "CP-1")
    await charger.connect()
    await charger.boot()
    answer_data_transfer = csms.handlers["DataTransfer"]
    never: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
    csms.handlers["DataTransfer"] = lambda _station, _payload: never
    with pytest.raises(CallErrorReceived) as timed_out:
        await charger.data_transfer("com.example")
    assert timed_out.value.code == "InternalError"
    timeouts = metric(
        gateway, "ocpp_gateway_call_timeouts_total", side="csms", action="DataTransfer"
    )
    assert timeouts == 1

    (unanswered,) = csms.received("DataTransfer", station_id="CP-1")
    await csms.send_raw(
        "CP-1", encode_call_result(unanswered.message_id, {"status": "UnknownVendorId"})
    )
    csms.handlers["DataTransfer"] = answer_data_transfer
    # The late answer precedes the next answer on the same upstream socket.
    assert (await charger.data_transfer("com.example"))["status"] == "UnknownVendorId"
    assert metric(gateway, "ocpp_gateway_unmatched_responses_total", side="csms") == 1


@pytest.mark.covers("charger_to_csms:Heartbeat")
async def test_a_silent_csms_heartbeat_is_answered_by_the_gateway(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    """Buffer mode: a Heartbeat the CSMS does not answer in time gets the gateway's time."""
    gateway = await make_gateway(response_timeout=0.5)
    charger = chargers(charger_url_of(gateway), "CP-1")
    await charger.connect()
    await charger.boot()
    never: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
    csms.handlers["Heartbeat"] = lambda _station, _payload: never
    assert "currentTime" in await charger.heartbeat()
    answered = metric(
        gateway, "ocpp_gateway_offline_answers_total", action="Heartbeat", authorization="none"
    )
    assert answered == 1


# --------------------------------------------------------------------------- charger answers


async def test_an_answer_from_the_charger_that_matches_no_call_is_counted_and_dropped(
    booted: ChargerSim, bystander: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    """A CALLRESULT nobody waits for gets no answer (never answer an answer) and a metric."""
    before = len(csms.messages)
    await booted.send_raw('[3, "nobody-asked", {}]')
    await expect_both_stations_still_work(booted, bystander, csms, before)
    assert metric(gateway, "ocpp_gateway_unmatched_responses_total", side="charger") == 1
    assert metric(gateway, "ocpp_gateway_invalid_frames_total", side="charger") == 0


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param('[3, "r1"]', id="callresult-without-payload"),
        pytest.param('[4, "e1", "GenericError"]', id="callerror-without-description"),
    ],
)
async def test_a_malformed_answer_from_the_charger_is_counted_but_never_answered(
    booted: ChargerSim, bystander: ChargerSim, csms: CsmsSim, gateway: Gateway, frame: str
) -> None:
    """OCPP-J never answers an answer, even a broken one: a metric, no CALLERROR."""
    before = len(csms.messages)
    await booted.send_raw(frame)
    await expect_both_stations_still_work(booted, bystander, csms, before)
    assert metric(gateway, "ocpp_gateway_invalid_frames_total", side="charger") == 1
    assert call_errors_to_charger(gateway, "RpcFrameworkError") == 0, "no CALLERROR sent"
    assert booted.connected


@pytest.mark.parametrize(
    ("code_v16", "code_v201"),
    [
        ("FormationViolation", "FormatViolation"),
        ("OccurenceConstraintViolation", "OccurrenceConstraintViolation"),
        ("PropertyConstraintViolation", "PropertyConstraintViolation"),
        ("NotImplemented", "NotImplemented"),
        ("GenericError", "GenericError"),
    ],
)
async def test_a_charger_callerror_is_relayed_to_the_csms_spelled_for_2_0_1(
    gateway: Gateway, csms: CsmsSim, code_v16: str, code_v201: str
) -> None:
    """A 1.6 charger refusing a forwarded CALL: the CSMS gets the 2.0.1 spelling."""
    async with connect_native(charger_url_of(gateway), "CP-RAW", "ocpp1.6") as charger:
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        await charger.send(json.dumps([2, "boot-1", "BootNotification", boot]))
        assert json.loads(await recv_text(charger))[2]["status"] == "Accepted"
        asking = asyncio.create_task(csms.call("CP-RAW", "DataTransfer", {"vendorId": "v"}))
        call = json.loads(await recv_text(charger))
        assert call[2:] == ["DataTransfer", {"vendorId": "v"}]
        await charger.send(json.dumps([4, call[1], code_v16, "charger says no", {"n": 1}]))
        with pytest.raises(CallErrorReceived) as relayed:
            await asking
    assert relayed.value.code == code_v201
    assert relayed.value.description == "charger says no"
    assert relayed.value.details == {"n": 1}


async def test_a_charger_that_never_answers_gets_the_csms_an_internal_error(
    make_gateway: Callable[..., Awaitable[Gateway]], csms: CsmsSim
) -> None:
    """After response_timeout the CSMS gets InternalError; the charger's late answer is
    counted as unmatched, and the charger's own CALLs keep working."""
    gateway = await make_gateway(response_timeout=0.5)
    async with connect_native(charger_url_of(gateway), "CP-RAW", "ocpp1.6") as charger:
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        await charger.send(json.dumps([2, "boot-1", "BootNotification", boot]))
        await recv_text(charger)
        asking = asyncio.create_task(csms.call("CP-RAW", "DataTransfer", {"vendorId": "v"}))
        call = json.loads(await recv_text(charger))
        with pytest.raises(CallErrorReceived) as timed_out:
            await asking
        assert timed_out.value.code == "InternalError"
        assert (
            metric(
                gateway, "ocpp_gateway_call_timeouts_total", side="charger", action="DataTransfer"
            )
            == 1
        )
        await charger.send(json.dumps([3, call[1], {"status": "Accepted"}]))
        await charger.send(json.dumps([2, "hb-1", "Heartbeat", {}]))
        assert json.loads(await recv_text(charger))[:2] == [3, "hb-1"]
    assert metric(gateway, "ocpp_gateway_unmatched_responses_total", side="charger") == 1
