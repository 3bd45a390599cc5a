"""Tests for ChargerSim against a central system played by hand with raw websockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidStatus

from gateway.sim.charger import ChargerSim
from gateway.sim.wire import CallErrorReceived, SchemaViolation

pytestmark = pytest.mark.integration

BOOT_RESPONSE = {"currentTime": "2024-05-01T12:00:00Z", "interval": 60, "status": "Accepted"}


class HandCentral:
    """A 1.6 central system whose every frame the test sends and reads by hand."""

    def __init__(self) -> None:
        self.url = ""
        self._accepted: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def handler(self, websocket: ServerConnection) -> None:
        """Hand the connection to the test and keep it open until it closes."""
        await self._accepted.put(websocket)
        await websocket.wait_closed()

    async def accept(self) -> ServerConnection:
        """The next accepted charger connection."""
        async with asyncio.timeout(5):
            return await self._accepted.get()


@pytest.fixture
async def linked(central: HandCentral) -> AsyncIterator[tuple[ChargerSim, ServerConnection]]:
    """A connected ChargerSim "CP-1" and the central system's side of its websocket."""
    async with ChargerSim(central.url, "CP-1", call_timeout=5) as sim:
        websocket = await central.accept()
        yield sim, websocket


async def recv_frame(websocket: ServerConnection) -> list[Any]:
    """Read and parse one frame on the central system's side."""
    async with asyncio.timeout(5):
        frame: list[Any] = json.loads(await websocket.recv())
    return frame


async def send_frame(websocket: ServerConnection, frame: list[Any]) -> None:
    """Serialise and send one frame from the central system's side."""
    await websocket.send(json.dumps(frame))


async def test_boot_returns_the_central_systems_response(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """boot() sends a valid BootNotification on the right path and returns the answer."""
    sim, websocket = linked
    assert websocket.request is not None
    assert websocket.request.path == "/ocpp16/CP-1"
    assert websocket.subprotocol == "ocpp1.6"
    assert sim.connected
    booting = asyncio.create_task(sim.boot(chargePointSerialNumber="SN-9"))
    frame = await recv_frame(websocket)
    assert frame[0] == 2
    assert frame[2] == "BootNotification"
    assert frame[3] == {
        "chargePointVendor": "SimVendor",
        "chargePointModel": "SimModel",
        "chargePointSerialNumber": "SN-9",
    }
    await send_frame(websocket, [3, frame[1], BOOT_RESPONSE])
    assert await booting == BOOT_RESPONSE
    assert sim.violations == []


async def test_invalid_callresult_is_recorded_and_raises_schema_violation(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """A CALLRESULT that breaks the 1.6 response schema is a recorded violation."""
    sim, websocket = linked
    heartbeat = asyncio.create_task(sim.heartbeat())
    frame = await recv_frame(websocket)
    await send_frame(websocket, [3, frame[1], {"currentTime": "yesterday"}])
    with pytest.raises(SchemaViolation, match="Heartbeat"):
        await heartbeat
    assert len(sim.violations) == 1
    assert "date-time" in sim.violations[0]


async def test_callerror_raises_call_error_received(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """A CALLERROR answer surfaces as CallErrorReceived with its fields."""
    sim, websocket = linked
    authorizing = asyncio.create_task(sim.authorize("TAG-1"))
    frame = await recv_frame(websocket)
    assert frame[3] == {"idTag": "TAG-1"}
    await send_frame(websocket, [4, frame[1], "NotSupported", "no auth here", {"why": "test"}])
    with pytest.raises(CallErrorReceived) as raised:
        await authorizing
    assert (raised.value.code, raised.value.description) == ("NotSupported", "no auth here")
    assert raised.value.details == {"why": "test"}
    assert sim.violations == []


async def test_callerror_with_a_2_0_1_only_code_is_a_violation(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """A 1.6 peer must never receive RpcFrameworkError (a 2.0.1-only code)."""
    sim, websocket = linked
    heartbeat = asyncio.create_task(sim.heartbeat())
    frame = await recv_frame(websocket)
    await send_frame(websocket, [4, frame[1], "RpcFrameworkError", "", {}])
    with pytest.raises(CallErrorReceived):
        await heartbeat
    assert len(sim.violations) == 1
    assert "RpcFrameworkError" in sim.violations[0]


async def test_invalid_outgoing_request_is_refused_unless_validation_is_off(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """validate=True stops a test's invalid request; validate=False sends it as is."""
    sim, websocket = linked
    with pytest.raises(SchemaViolation):
        await sim.status(1, "Sleeping")
    sending = asyncio.create_task(sim.call("Heartbeat", {"bogus": 1}, validate=False))
    frame = await recv_frame(websocket)
    assert frame[2:] == ["Heartbeat", {"bogus": 1}]
    await send_frame(websocket, [3, frame[1], {"currentTime": "2024-05-01T12:00:00Z"}])
    assert await sending == {"currentTime": "2024-05-01T12:00:00Z"}
    assert sim.violations == []


async def test_incoming_invalid_call_is_answered_formation_violation(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """A CSMS CALL that breaks the 1.6 schema gets FormationViolation and is recorded."""
    sim, websocket = linked
    await send_frame(websocket, [2, "c-1", "ChangeAvailability", {"connectorId": 0}])
    answer = await recv_frame(websocket)
    assert answer[:3] == [4, "c-1", "FormationViolation"]
    assert "type" in json.dumps(answer[4])
    assert len(sim.violations) == 1
    assert "ChangeAvailability" in sim.violations[0]
    assert sim.received_calls == []


async def test_incoming_data_transfer_is_accepted_and_recorded(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """The default DataTransfer handler answers Accepted and the call is recorded."""
    sim, websocket = linked
    payload = {"vendorId": "com.example", "messageId": "ping", "data": "x"}
    await send_frame(websocket, [2, "dt-1", "DataTransfer", payload])
    assert await recv_frame(websocket) == [3, "dt-1", {"status": "Accepted"}]
    assert await sim.wait_for_call("DataTransfer") == [payload]
    assert sim.received_calls == [("DataTransfer", payload)]
    assert sim.violations == []


async def test_wait_for_call_times_out_with_what_was_received(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """wait_for_call raises TimeoutError naming the calls that did arrive."""
    sim, websocket = linked
    await send_frame(websocket, [2, "r-1", "Reset", {"type": "Soft"}])
    assert await recv_frame(websocket) == [3, "r-1", {"status": "Accepted"}]
    with pytest.raises(TimeoutError, match="Reset"):
        await sim.wait_for_call("Reset", count=2, timeout=0.05)


async def test_user_handlers_override_defaults_and_may_be_async(
    central: HandCentral,
) -> None:
    """A test-supplied async handler replaces the default answer."""
    release = asyncio.Event()

    async def get_configuration(payload: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False}]}

    async with ChargerSim(
        central.url, "CP-2", handlers={"GetConfiguration": get_configuration}
    ) as sim:
        websocket = await central.accept()
        await send_frame(websocket, [2, "g-1", "GetConfiguration", {}])
        await sim.wait_for_call("GetConfiguration")
        release.set()
        answer = await recv_frame(websocket)
    assert answer == [
        3,
        "g-1",
        {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False}]},
    ]
    assert sim.violations == []


async def test_default_get_configuration_reports_requested_keys_unknown(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """Without a handler GetConfiguration knows no keys."""
    _, websocket = linked
    await send_frame(websocket, [2, "g-2", "GetConfiguration", {"key": ["A", "B"]}])
    assert await recv_frame(websocket) == [
        3,
        "g-2",
        {"configurationKey": [], "unknownKey": ["A", "B"]},
    ]


async def test_actions_without_handler_or_schema_are_not_implemented(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """A 1.6 action with no handler, and a non-1.6 action, both get NotImplemented."""
    sim, websocket = linked
    reserve = {
        "connectorId": 1,
        "expiryDate": "2024-05-01T13:00:00Z",
        "idTag": "T",
        "reservationId": 4,
    }
    await send_frame(websocket, [2, "n-1", "ReserveNow", reserve])
    assert (await recv_frame(websocket))[:3] == [4, "n-1", "NotImplemented"]
    assert sim.violations == []
    assert sim.received_calls == [("ReserveNow", reserve)]
    await send_frame(websocket, [2, "n-2", "RequestStartTransaction", {}])
    assert (await recv_frame(websocket))[:3] == [4, "n-2", "NotImplemented"]
    assert len(sim.violations) == 1
    assert "RequestStartTransaction" in sim.violations[0]


async def test_a_handler_returning_an_invalid_response_is_a_loud_sim_bug(
    central: HandCentral,
) -> None:
    """A bad test handler is answered InternalError and recorded as a sim handler bug."""
    async with ChargerSim(
        central.url, "CP-3", handlers={"Reset": lambda _p: {"status": "Maybe"}}
    ) as sim:
        websocket = await central.accept()
        await send_frame(websocket, [2, "r-1", "Reset", {"type": "Hard"}])
        assert (await recv_frame(websocket))[:3] == [4, "r-1", "InternalError"]
    assert len(sim.violations) == 1
    assert "sim handler bug" in sim.violations[0]


async def test_unmatched_frames_are_queued_for_the_test(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """An answer to a raw bad frame is not matched to a call but handed to next_unmatched."""
    sim, websocket = linked
    await sim.send_raw("[2, garbage")
    assert await websocket.recv() == "[2, garbage"
    await send_frame(websocket, [4, "-1", "FormationViolation", "bad json", {}])
    assert json.loads(await sim.next_unmatched()) == [4, "-1", "FormationViolation", "bad json", {}]
    await send_frame(websocket, [3, "never-sent", {}])
    assert json.loads(await sim.next_unmatched()) == [3, "never-sent", {}]
    with pytest.raises(TimeoutError):
        await sim.next_unmatched(timeout=0.01)
    assert sim.violations == []


async def test_malformed_frames_from_the_server_are_violations(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """Garbage from the central system is recorded and queued as unmatched."""
    sim, websocket = linked
    await websocket.send("{not ocpp")
    assert await sim.next_unmatched() == "{not ocpp"
    assert len(sim.violations) == 1
    assert "malformed frame" in sim.violations[0]


async def test_unanswered_call_times_out(central: HandCentral) -> None:
    """A CALL nobody answers raises TimeoutError after call_timeout."""
    async with ChargerSim(central.url, "CP-4", call_timeout=0.05) as sim:
        websocket = await central.accept()
        with pytest.raises(TimeoutError, match="Heartbeat"):
            await sim.heartbeat()
        assert (await recv_frame(websocket))[2] == "Heartbeat"


async def test_server_close_fails_pending_calls_and_reports_the_close_code(
    linked: tuple[ChargerSim, ServerConnection],
) -> None:
    """When the server closes, a pending call raises ConnectionError and wait_closed reports."""
    sim, websocket = linked
    heartbeat = asyncio.create_task(sim.heartbeat())
    await recv_frame(websocket)
    await websocket.close(1012, "restarting")
    with pytest.raises(ConnectionError):
        await heartbeat
    assert await sim.wait_closed() == (1012, "restarting")
    assert not sim.connected
    with pytest.raises(ConnectionError):
        await sim.heartbeat()


async def test_charger_can_reconnect_after_close(central: HandCentral) -> None:
    """close() then connect() opens a fresh connection; recorded history is kept."""
    sim = ChargerSim(central.url, "CP-5")
    await sim.connect()
    first = await central.accept()
    await sim.close()
    assert await sim.wait_closed() == (1000, "")
    await first.wait_closed()
    await sim.connect()
    second = await central.accept()
    assert sim.connected
    await send_frame(second, [2, "c-1", "ClearCache", {}])
    assert await recv_frame(second) == [3, "c-1", {"status": "Accepted"}]
    await sim.close()
    assert not sim.connected


async def test_handshake_refusal_propagates(central: HandCentral) -> None:
    """A server that refuses the subprotocol makes connect() raise InvalidStatus."""
    sim = ChargerSim(central.url, "CP-6", subprotocol="ocpp2.0.1")
    with pytest.raises(InvalidStatus) as raised:
        await sim.connect()
    assert raised.value.response.status_code == 400
    assert not sim.connected
