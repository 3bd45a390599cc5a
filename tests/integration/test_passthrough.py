"""Native OCPP 2.0.1 chargers: frames pass through the gateway unchanged.

The charger here is a raw websockets client (ChargerSim speaks 1.6 only). Upstream is
the validating CsmsSim, or a RawCsms where the exact text the CSMS receives and sends
must be compared byte for byte.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.sim.csms import CsmsSim
from gateway.sim.wire import encode_call_result

from .helpers import RawCsms, charger_url_of, connect_native, metric, recv_text

pytestmark = pytest.mark.integration

BOOT = {
    "reason": "PowerUp",
    "chargingStation": {"model": "Native 2", "vendorName": "ACME", "firmwareVersion": "2.0.1-a"},
}
FIXED_BOOT_ANSWER = {
    "currentTime": "2024-01-01T00:00:00.000Z",
    "interval": 77,
    "status": "Accepted",
}


def messages(gateway: Gateway, side: str, direction: str, message_type: str, action: str) -> float:
    return metric(
        gateway,
        "ocpp_gateway_messages_total",
        side=side,
        direction=direction,
        message_type=message_type,
        action=action,
    )


async def test_a_native_boot_reaches_the_csms_and_its_answer_comes_back_unchanged(
    gateway: Gateway, csms: CsmsSim
) -> None:
    """The CSMS receives exactly the charger's payload; the charger gets the exact frame
    text the CSMS sent (CsmsSim frames with wire.encode_call_result)."""
    csms.handlers["BootNotification"] = lambda _station, _payload: dict(FIXED_BOOT_ANSWER)
    async with connect_native(charger_url_of(gateway), "NATIVE-1") as charger:
        assert charger.subprotocol == "ocpp2.0.1"
        await charger.send(json.dumps([2, "boot-1", "BootNotification", BOOT]))
        answer = await recv_text(charger)
    (boot,) = csms.received("BootNotification", station_id="NATIVE-1")
    assert boot.payload == BOOT
    assert boot.message_id == "boot-1"
    assert answer == encode_call_result("boot-1", FIXED_BOOT_ANSWER)


async def test_frames_pass_through_byte_for_byte_in_both_directions(
    make_gateway: Callable[..., Awaitable[Gateway]],
) -> None:
    """Odd spacing and key order survive: the gateway forwards the text it received."""
    boot_text = (
        '[2,   "b-1" , "BootNotification",{"chargingStation" : {"vendorName":"V",'
        '"model":"M"},  "reason":"PowerUp"}]'
    )
    answer_text = (
        '[3,"b-1",  {"status" : "Accepted","interval":5, "currentTime":"2024-01-01T00:00:00Z"}]'
    )

    def answer(_station: str, text: str) -> str | None:
        return answer_text if json.loads(text)[0] == 2 else None

    async with RawCsms(answer) as upstream:
        gateway = await make_gateway(upstream=upstream.url)
        async with connect_native(charger_url_of(gateway), "NATIVE-1") as charger:
            await charger.send(boot_text)
            assert await recv_text(charger) == answer_text
        assert upstream.texts("NATIVE-1") == [boot_text]


async def test_a_csms_call_passes_through_to_the_native_charger_and_back(
    gateway: Gateway, csms: CsmsSim
) -> None:
    """A 2.0.1 request with no 1.6 equivalent is simply forwarded to a 2.0.1 charger."""
    request = {
        "getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ]
    }
    result = {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "attributeValue": "300",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
        ]
    }
    async with connect_native(charger_url_of(gateway), "NATIVE-1") as charger:
        await charger.send(json.dumps([2, "boot-1", "BootNotification", BOOT]))
        assert json.loads(await recv_text(charger))[2]["status"] == "Accepted"
        asking = asyncio.create_task(csms.call("NATIVE-1", "GetVariables", request))
        call = json.loads(await recv_text(charger))
        assert call[0] == 2
        assert call[2:] == ["GetVariables", request]
        await charger.send(json.dumps([3, call[1], result]))
        assert await asking == result


@pytest.mark.parametrize(
    ("frame", "answer_head"),
    [
        pytest.param(
            [2, "bad-1", "BootNotification", {"reason": "PowerUp"}],
            [4, "bad-1", "OccurrenceConstraintViolation"],
            id="required-field-missing",
        ),
        pytest.param(
            [2, "bad-2", "BootNotification", {**BOOT, "extra": 1}],
            [4, "bad-2", "FormatViolation"],
            id="unknown-property",
        ),
        pytest.param(
            [2, "bad-3", "FlyToTheMoon", {}], [4, "bad-3", "NotImplemented"], id="unknown-action"
        ),
        pytest.param("this is {not json", [4, "-1", "RpcFrameworkError"], id="not-json"),
    ],
)
async def test_invalid_input_from_a_native_charger_is_answered_in_2_0_1_and_not_forwarded(
    gateway: Gateway, csms: CsmsSim, frame: Any, answer_head: list[Any]
) -> None:
    """The gateway answers the CALLERROR itself; the CSMS only ever sees the valid boot."""
    text = frame if isinstance(frame, str) else json.dumps(frame)
    async with connect_native(charger_url_of(gateway), "NATIVE-1") as charger:
        await charger.send(text)
        answer = json.loads(await recv_text(charger))
        assert answer[:3] == answer_head
        await charger.send(json.dumps([2, "boot-1", "BootNotification", BOOT]))
        assert json.loads(await recv_text(charger))[:2] == [3, "boot-1"]
    assert [(m.station_id, m.action, m.message_id) for m in csms.messages] == [
        ("NATIVE-1", "BootNotification", "boot-1")
    ]


async def test_when_the_csms_drops_a_native_charger_its_connection_is_closed_too(
    gateway: Gateway, csms: CsmsSim
) -> None:
    """Mirror (2.0.1 Part 4 §6.3): the charger loses its connection (1011) and queues."""
    async with connect_native(charger_url_of(gateway), "NATIVE-1") as charger:
        await charger.send(json.dumps([2, "boot-1", "BootNotification", BOOT]))
        await recv_text(charger)
        await csms.drop("NATIVE-1")
        async with asyncio.timeout(5):
            await charger.wait_closed()
        assert charger.close_code == 1011
        assert charger.close_reason == "CSMS connection lost"
    assert csms.connection_count("NATIVE-1") == 1


async def test_pass_through_traffic_is_counted_by_side_and_protocol(
    gateway: Gateway, csms: CsmsSim
) -> None:
    """Connections are labelled ocpp2.0.1; each leg of the boot round trip is counted."""
    async with connect_native(charger_url_of(gateway), "NATIVE-1") as charger:
        await charger.send(json.dumps([2, "boot-1", "BootNotification", BOOT]))
        await recv_text(charger)  # the boot went both ways: both connections are up
        assert (
            metric(gateway, "ocpp_gateway_connections", side="charger", protocol="ocpp2.0.1") == 1
        )
        assert metric(gateway, "ocpp_gateway_connections", side="charger", protocol="ocpp1.6") == 0
        assert metric(gateway, "ocpp_gateway_connections", side="csms", protocol="ocpp2.0.1") == 1
    legs = [
        ("charger", "in", "call"),
        ("csms", "out", "call"),
        ("csms", "in", "result"),
        ("charger", "out", "result"),
    ]
    for side, direction, message_type in legs:
        assert messages(gateway, side, direction, message_type, "BootNotification") == 1, (
            side,
            direction,
            message_type,
        )
    assert (
        metric(
            gateway,
            "ocpp_gateway_call_duration_seconds_count",
            side="csms",
            action="BootNotification",
        )
        == 1
    )


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param(
            [2, "c-1", "GetVariables", {"getVariableData": []}],
            "OccurrenceConstraintViolation",
            id="too-few-items",
        ),
        pytest.param([2, "c-2", "FlyToTheMoon", {}], "NotImplemented", id="unknown-action"),
    ],
)
async def test_an_invalid_csms_call_is_answered_by_the_gateway_and_not_forwarded(
    gateway: Gateway, csms: CsmsSim, frame: list[Any], code: str
) -> None:
    """The native charger only ever sees valid 2.0.1 CALLs."""
    async with connect_native(charger_url_of(gateway), "NATIVE-1") as charger:
        await charger.send(json.dumps([2, "boot-1", "BootNotification", BOOT]))
        await recv_text(charger)
        await csms.send_raw("NATIVE-1", json.dumps(frame))
        answer = json.loads(await csms.next_unmatched("NATIVE-1"))
        assert answer[:3] == [4, frame[1], code]
        valid = {"requestedMessage": "Heartbeat"}
        asking = asyncio.create_task(csms.call("NATIVE-1", "TriggerMessage", valid))
        call = json.loads(await recv_text(charger))
        assert call[2:] == ["TriggerMessage", valid]
        await charger.send(json.dumps([3, call[1], {"status": "Accepted"}]))
        assert await asking == {"status": "Accepted"}


async def test_a_native_charger_is_closed_when_the_csms_cannot_be_reached(
    gateway: Gateway, csms: CsmsSim
) -> None:
    """Mirror: no upstream connection means no charger connection (1011), no retry loop."""
    csms.refuse_connections = True
    async with connect_native(charger_url_of(gateway), "NATIVE-1") as charger:
        async with asyncio.timeout(5):
            await charger.wait_closed()
        assert charger.close_code == 1011
    assert csms.connections == []
