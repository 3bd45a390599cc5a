"""Tests for CsmsSim, driven by a raw websockets client playing a 2.0.1 station by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from gateway.sim.csms import CsmsSim
from gateway.sim.wire import CallErrorReceived, SchemaViolation

pytestmark = pytest.mark.integration

BOOT = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
STATUS = {
    "timestamp": "2024-05-01T12:00:00Z",
    "connectorStatus": "Available",
    "evseId": 1,
    "connectorId": 1,
}


@pytest.fixture
async def csms() -> AsyncIterator[CsmsSim]:
    """A running CsmsSim on a free loopback port."""
    async with CsmsSim(heartbeat_interval=42) as sim:
        yield sim


def station_connect(
    csms: CsmsSim, station_id: str, *, subprotocol: str | None = "ocpp2.0.1"
) -> Any:
    """Open a raw client connection for ``station_id`` (an async context manager)."""
    subprotocols = [Subprotocol(subprotocol)] if subprotocol is not None else None
    return connect(
        f"{csms.url}/{station_id}",
        subprotocols=subprotocols,
        compression=None,
        ping_interval=None,
    )


@pytest.fixture
async def station(csms: CsmsSim) -> AsyncIterator[ClientConnection]:
    """A raw connection of station "CS-1"."""
    async with station_connect(csms, "CS-1") as websocket:
        await csms.wait_connected("CS-1")
        yield websocket


async def exchange(websocket: ClientConnection, frame: list[Any]) -> list[Any]:
    """Send one frame and return the next frame received."""
    await websocket.send(json.dumps(frame))
    return await recv_frame(websocket)


async def recv_frame(websocket: ClientConnection) -> list[Any]:
    """Read and parse one frame on the station's side."""
    async with asyncio.timeout(5):
        frame: list[Any] = json.loads(await websocket.recv())
    return frame


async def boot(websocket: ClientConnection) -> list[Any]:
    """Send a valid BootNotification; return the answer frame."""
    return await exchange(websocket, [2, "boot-1", "BootNotification", BOOT])


async def test_boot_is_accepted_with_the_configured_interval(
    csms: CsmsSim, station: ClientConnection
) -> None:
    """BootNotification gets Accepted, the configured interval and a UTC currentTime."""
    answer = await boot(station)
    assert answer[:2] == [3, "boot-1"]
    assert answer[2]["status"] == "Accepted"
    assert answer[2]["interval"] == 42
    assert answer[2]["currentTime"].endswith("Z")
    assert csms.registered == {"CS-1"}
    assert csms.connections == [("CS-1", "/ocpp/CS-1")]
    assert csms.violations == []


async def test_calls_before_an_accepted_boot_get_security_error(
    csms: CsmsSim, station: ClientConnection
) -> None:
    """Until the station is booted Accepted everything else is refused (B02.FR.09)."""
    answer = await exchange(station, [2, "s-1", "StatusNotification", STATUS])
    assert answer[:3] == [4, "s-1", "SecurityError"]
    assert csms.security_errors == [("CS-1", "StatusNotification")]
    assert csms.messages == []


async def test_pending_boot_keeps_the_station_unregistered() -> None:
    """A per-station Pending boot status leaves the station gated."""
    async with CsmsSim(boot_status={"CS-P": "Pending"}) as csms:
        async with station_connect(csms, "CS-P") as websocket:
            assert (await boot(websocket))[2]["status"] == "Pending"
            answer = await exchange(websocket, [2, "h-1", "Heartbeat", {}])
        assert answer[2] == "SecurityError"
        assert csms.registered == set()


async def test_status_after_boot_is_answered_and_recorded(
    csms: CsmsSim, station: ClientConnection
) -> None:
    """After boot a StatusNotification gets {} and shows in messages and wait_for."""
    await boot(station)
    assert await exchange(station, [2, "s-2", "StatusNotification", STATUS]) == [3, "s-2", {}]
    found = await csms.wait_for("StatusNotification", station_id="CS-1")
    assert [(m.station_id, m.action, m.payload, m.message_id) for m in found] == [
        ("CS-1", "StatusNotification", STATUS, "s-2")
    ]
    assert [m.action for m in csms.messages] == ["BootNotification", "StatusNotification"]
    assert csms.violations == []


async def test_wait_for_filters_and_waits_for_the_count(
    csms: CsmsSim, station: ClientConnection
) -> None:
    """wait_for returns once enough matching messages arrived; where= filters payloads."""
    await boot(station)
    waiting = asyncio.create_task(
        csms.wait_for("StatusNotification", where=lambda p: p["evseId"] == 2, count=2)
    )
    for index, evse in enumerate([1, 2, 2]):
        frame = [2, f"s-{index}", "StatusNotification", {**STATUS, "evseId": evse}]
        await exchange(station, frame)
    found = await waiting
    assert [m.message_id for m in found] == ["s-1", "s-2"]
    with pytest.raises(TimeoutError, match="Heartbeat"):
        await csms.wait_for("Heartbeat", timeout=0.05)


async def test_invalid_payload_is_a_format_violation(
    csms: CsmsSim, station: ClientConnection
) -> None:
    """A payload that breaks the 2.0.1 schema gets FormatViolation and is recorded."""
    answer = await exchange(station, [2, "b-1", "BootNotification", {"reason": "PowerUp"}])
    assert answer[:3] == [4, "b-1", "FormatViolation"]
    assert any("chargingStation" in error for error in answer[4]["errors"])
    assert len(csms.violations) == 1
    assert "chargingStation" in csms.violations[0]
    assert csms.messages == []


async def test_default_authorize_and_transaction_event_answer_id_token_info() -> None:
    """Authorize and TransactionEvent with an idToken carry id_token_info's answer."""

    def blocked(id_token: dict[str, Any]) -> dict[str, Any]:
        return {"status": "Blocked" if id_token["idToken"] == "BAD" else "Accepted"}

    event = {
        "eventType": "Started",
        "timestamp": "2024-05-01T12:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx-1"},
        "idToken": {"idToken": "BAD", "type": "ISO14443"},
    }
    async with CsmsSim(id_token_info=blocked) as csms, station_connect(csms, "CS-2") as websocket:
        await boot(websocket)
        authorize = {"idToken": {"idToken": "GOOD", "type": "ISO14443"}}
        answer = await exchange(websocket, [2, "a-1", "Authorize", authorize])
        assert answer == [3, "a-1", {"idTokenInfo": {"status": "Accepted"}}]
        answer = await exchange(websocket, [2, "t-1", "TransactionEvent", event])
        assert answer == [3, "t-1", {"idTokenInfo": {"status": "Blocked"}}]
        del event["idToken"]
        event["eventType"], event["seqNo"] = "Updated", 1
        assert await exchange(websocket, [2, "t-2", "TransactionEvent", event]) == [3, "t-2", {}]
        assert csms.violations == []


async def test_action_without_handler_is_not_implemented(
    csms: CsmsSim, station: ClientConnection
) -> None:
    """A valid 2.0.1 CALL the CSMS has no handler for gets NotImplemented."""
    await boot(station)
    request = {"requestId": 1, "generatedAt": "2024-05-01T12:00:00Z", "seqNo": 0, "tbc": False}
    answer = await exchange(station, [2, "x-1", "NotifyMonitoringReport", request])
    assert answer[:3] == [4, "x-1", "NotImplemented"]
    assert csms.violations == []


async def test_handshake_without_subprotocol_is_refused(csms: CsmsSim) -> None:
    """A client that offers no subprotocol is refused at the handshake."""
    with pytest.raises(InvalidStatus) as raised:
        async with station_connect(csms, "CS-3", subprotocol=None):
            pass
    assert raised.value.response.status_code == 400
    assert csms.connections == []


async def test_refuse_connections_answers_503(csms: CsmsSim) -> None:
    """While refuse_connections is set, handshakes get HTTP 503."""
    csms.refuse_connections = True
    with pytest.raises(InvalidStatus) as raised:
        async with station_connect(csms, "CS-4"):
            pass
    assert raised.value.response.status_code == 503
    csms.refuse_connections = False
    async with station_connect(csms, "CS-4"):
        await csms.wait_connected("CS-4")
    assert csms.connections == [("CS-4", "/ocpp/CS-4")]


async def test_csms_call_round_trip(csms: CsmsSim, station: ClientConnection) -> None:
    """csms.call sends a valid CALL and returns the station's CALLRESULT payload."""
    calling = asyncio.create_task(csms.call("CS-1", "Reset", {"type": "Immediate"}))
    frame = await recv_frame(station)
    assert frame[0] == 2
    assert frame[2:] == ["Reset", {"type": "Immediate"}]
    await station.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
    assert await calling == {"status": "Accepted"}
    assert csms.violations == []


async def test_csms_call_raises_on_callerror(csms: CsmsSim, station: ClientConnection) -> None:
    """A CALLERROR answer to csms.call raises CallErrorReceived."""
    calling = asyncio.create_task(csms.call("CS-1", "ClearCache", {}))
    frame = await recv_frame(station)
    await station.send(json.dumps([4, frame[1], "NotSupported", "nope", {}]))
    with pytest.raises(CallErrorReceived) as raised:
        await calling
    assert raised.value.code == "NotSupported"


async def test_csms_call_records_an_invalid_callresult(
    csms: CsmsSim, station: ClientConnection
) -> None:
    """An invalid CALLRESULT is a violation and raises SchemaViolation."""
    calling = asyncio.create_task(csms.call("CS-1", "ClearCache", {}))
    frame = await recv_frame(station)
    await station.send(json.dumps([3, frame[1], {"status": "Unlocked"}]))
    with pytest.raises(SchemaViolation):
        await calling
    assert len(csms.violations) == 1
    assert "ClearCache" in csms.violations[0]


async def test_csms_call_checks_its_own_request_and_connection(
    csms: CsmsSim, station: ClientConnection
) -> None:
    """Invalid outgoing requests and unknown stations are refused before sending."""
    with pytest.raises(SchemaViolation):
        await csms.call("CS-1", "Reset", {"type": "Sometime"})
    with pytest.raises(LookupError):
        await csms.call("CS-unknown", "ClearCache", {})
    calling = asyncio.create_task(
        csms.call("CS-1", "Reset", {"type": "Sometime"}, validate=False, timeout=0.05)
    )
    assert (await recv_frame(station))[3] == {"type": "Sometime"}
    with pytest.raises(TimeoutError):
        await calling


async def test_raw_frames_and_unmatched_answers(csms: CsmsSim, station: ClientConnection) -> None:
    """send_raw reaches the station; answers nobody awaits go to next_unmatched."""
    await csms.send_raw("CS-1", "[2, oops")
    assert await station.recv() == "[2, oops"
    await station.send(json.dumps([4, "-1", "RpcFrameworkError", "bad json", {}]))
    unmatched = json.loads(await csms.next_unmatched("CS-1"))
    assert unmatched == [4, "-1", "RpcFrameworkError", "bad json", {}]
    assert csms.violations == []


async def test_drop_closes_the_station_with_the_code(
    csms: CsmsSim, station: ClientConnection
) -> None:
    """drop() closes the connection from the CSMS side with the given code and reason."""
    await csms.drop("CS-1", code=1011, reason="sim drop")
    with pytest.raises(ConnectionClosed):
        await station.recv()
    assert station.close_code == 1011
    assert station.close_reason == "sim drop"
    assert not csms.is_connected("CS-1")
    await csms.wait_disconnected("CS-1")


async def test_registration_survives_a_reconnect(csms: CsmsSim) -> None:
    """A station booted Accepted once stays registered on its next connection."""
    async with station_connect(csms, "CS-5") as websocket:
        await boot(websocket)
    await csms.wait_disconnected("CS-5")
    async with station_connect(csms, "CS-5") as websocket:
        await csms.wait_connected("CS-5", count=2)
        answer = await exchange(websocket, [2, "h-1", "Heartbeat", {}])
    assert answer[0] == 3
    assert csms.security_errors == []


async def test_duplicate_connection_is_recorded_and_accepted(csms: CsmsSim) -> None:
    """A second simultaneous connection of one station is recorded but still served."""
    async with station_connect(csms, "CS-6") as first, station_connect(csms, "CS-6") as second:
        await csms.wait_connected("CS-6", count=2)
        assert csms.duplicate_connections == ["CS-6"]
        assert (await boot(second))[2]["status"] == "Accepted"
        assert (await exchange(first, [2, "h-1", "Heartbeat", {}]))[0] == 3
    await csms.wait_disconnected("CS-6")


async def test_station_id_is_the_url_decoded_last_segment(csms: CsmsSim) -> None:
    """Any path is accepted; the station id is its last segment, URL-decoded."""
    async with connect(
        f"ws://127.0.0.1:{csms.port}/some/where/CS%207",
        subprotocols=[Subprotocol("ocpp2.0.1")],
        compression=None,
    ):
        await csms.wait_connected("CS 7")
        assert csms.is_connected("CS 7")
    assert csms.connections == [("CS 7", "/some/where/CS%207")]


async def test_stop_closes_open_connections() -> None:
    """stop() closes stations with 1001 and leaves no task behind."""
    other = CsmsSim()
    await other.start()
    async with station_connect(other, "CS-8") as websocket:
        await other.wait_connected("CS-8")
        await other.stop()
        with pytest.raises(ConnectionClosed):
            await websocket.recv()
        assert websocket.close_code == 1001
