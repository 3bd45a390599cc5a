"""CSMS remote operations end to end: Reset, ChangeAvailability, UnlockConnector,
TriggerMessage and ClearCache (reference messages.md §2.5, §2.6, §2.12, §2.13, §3.2).

The 2.0.1 CSMS sim calls a real gateway over loopback websockets; a 1.6 charger sim
answers. Each test checks both sides: what the charger received and what the CSMS got
back, and both peers validate every payload against the official schemas.

No sleeps: the gateway handles one CALL per direction at a time and answers only after
it stored what it learnt, so an answer is itself the proof that its effects are in
place; where something must *not* happen, a later CALL through the same worker (or one
that waits for the outbox to drain) serves as the barrier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.config import EvseLayout
from gateway.sim.charger import ChargerSim
from gateway.sim.configuration import standard_configuration
from gateway.sim.csms import CsmsSim
from gateway.state import StationRecord
from gateway.state.sqlite import SqliteStore
from tests.integration.helpers import charger_url_of
from tests.integration.ledger import only_transaction, wait_ended
from tests.integration.test_transactions import TAG, now

pytestmark = pytest.mark.integration

MakeGateway = Callable[..., Awaitable[Gateway]]
Payload = dict[str, Any]

T1 = "2024-05-01T12:00:00.000Z"
T2 = "2024-05-01T12:00:05.000Z"
T3 = "2024-05-01T12:00:10.000Z"


def answering(payload: Payload) -> Callable[[Payload], Payload]:
    """A charger handler that always answers ``payload``."""
    return lambda _request: dict(payload)


def assert_refused(answer: Payload, status: str, reason_code: str) -> None:
    """The gateway's own refusal: exactly ``status`` with a statusInfo of ``reason_code``
    and a short explanation (2.0.1 StatusInfoType, additionalInfo <= 512)."""
    assert set(answer) == {"status", "statusInfo"}, answer
    assert answer["status"] == status
    info = answer["statusInfo"]
    assert set(info) == {"reasonCode", "additionalInfo"}, info
    assert info["reasonCode"] == reason_code
    assert isinstance(info["additionalInfo"], str)
    assert 0 < len(info["additionalInfo"]) <= 512


def boot_reasons(csms: CsmsSim, station_id: str = "CP-1") -> list[str]:
    return [m.payload["reason"] for m in csms.received("BootNotification", station_id=station_id)]


def meter_value(value: str, context: str, timestamp: str) -> Payload:
    sample = {
        "value": value,
        "context": context,
        "measurand": "Energy.Active.Import.Register",
        "unit": "Wh",
    }
    return {"timestamp": timestamp, "sampledValue": [sample]}


async def booted_charger(
    gateway: Gateway,
    chargers: Callable[..., ChargerSim],
    station_id: str = "CP-1",
    **kwargs: Any,
) -> ChargerSim:
    """A charger connected to ``gateway`` whose BootNotification the CSMS accepted."""
    charger = chargers(charger_url_of(gateway), station_id, **kwargs)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    return charger


async def custom_charger(
    make_charger: Callable[..., ChargerSim], **handlers: Callable[[Payload], Payload]
) -> ChargerSim:
    """A booted "CP-1" on the ``gateway`` fixture whose answers ``handlers`` override."""
    charger = make_charger("CP-1", handlers=handlers)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    return charger


async def started_transaction(charger: ChargerSim, connector_id: int = 1) -> int:
    """Start an authorized transaction on ``connector_id``; its 1.6 transactionId."""
    answer = await charger.start_transaction(connector_id, TAG, 1000, now())
    assert answer["idTagInfo"] == {"status": "Accepted"}
    transaction_id: int = answer["transactionId"]
    return transaction_id


# --- Reset (§2.5) --------------------------------------------------------------------


@pytest.mark.covers("csms_to_charger:Reset", "charger_to_csms:BootNotification")
async def test_reset_immediate_is_a_soft_reset_and_the_next_boot_says_remote_reset(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    answer = await csms.call("CP-1", "Reset", {"type": "Immediate"})
    assert answer == {"status": "Accepted"}
    assert booted.calls_of("Reset") == [{"type": "Soft"}]

    assert (await booted.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "RemoteReset"]
    # The reason is spent on that boot: a later reboot of its own is a power-up.
    assert (await booted.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "RemoteReset", "PowerUp"]
    assert booted.calls_of("Reset") == [{"type": "Soft"}]


@pytest.mark.covers("csms_to_charger:Reset")
async def test_reset_immediate_is_a_hard_reset_when_the_operator_says_so(
    make_gateway: MakeGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    gateway = await make_gateway(immediate_reset="hard")
    charger = await booted_charger(gateway, chargers)
    answer = await csms.call("CP-1", "Reset", {"type": "Immediate"})
    assert answer == {"status": "Accepted"}
    assert charger.calls_of("Reset") == [{"type": "Hard"}]
    assert (await charger.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "RemoteReset"]


@pytest.mark.covers("csms_to_charger:Reset")
async def test_reset_on_idle_without_a_transaction_is_a_soft_reset_at_once(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    answer = await csms.call("CP-1", "Reset", {"type": "OnIdle"})
    assert answer == {"status": "Accepted"}
    assert booted.calls_of("Reset") == [{"type": "Soft"}]
    assert (await booted.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "RemoteReset"]


@pytest.mark.covers("csms_to_charger:Reset")
async def test_reset_on_idle_during_a_transaction_is_scheduled_until_it_ends(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """B12.FR.01/03: Scheduled at once; Reset(Soft) only after the last StopTransaction."""
    transaction_id = await started_transaction(booted)
    answer = await csms.call("CP-1", "Reset", {"type": "OnIdle"})
    assert answer == {"status": "Scheduled"}
    assert booted.calls_of("Reset") == []

    # The gateway checks for a due reset after each charger CALL, in the worker that
    # handles them one at a time: once the Heartbeat after these is answered, a Reset
    # sent too early would already have reached the charger.
    await booted.meter_values(1, [meter_value("1500", "Sample.Periodic", now())], transaction_id)
    await booted.status(1, "Charging")
    await booted.heartbeat()
    assert booted.calls_of("Reset") == []

    assert await booted.stop_transaction(transaction_id, 2000, now(), reason="Local") == {}
    assert await booted.wait_for_call("Reset") == [{"type": "Soft"}]
    # Rebooting at once: the gateway stored the boot reason before it sent the Reset
    # (a charger going down faster than a store write is the GatedStore test below).
    assert (await booted.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "RemoteReset"]
    assert booted.calls_of("Reset") == [{"type": "Soft"}]  # sent once, not on every CALL


@pytest.mark.covers("csms_to_charger:Reset")
async def test_reset_on_idle_waits_for_every_transaction(booted: ChargerSim, csms: CsmsSim) -> None:
    first = await started_transaction(booted, 1)
    second = await started_transaction(booted, 2)
    assert await csms.call("CP-1", "Reset", {"type": "OnIdle"}) == {"status": "Scheduled"}
    await booted.stop_transaction(first, 1100, now(), reason="Local")
    await booted.heartbeat()  # barrier: see the test above
    assert booted.calls_of("Reset") == []
    await booted.stop_transaction(second, 1200, now(), reason="Local")
    assert await booted.wait_for_call("Reset") == [{"type": "Soft"}]


@pytest.mark.covers("csms_to_charger:Reset")
async def test_reset_of_one_evse_is_rejected_by_the_gateway(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """1.6 resets the whole charger only (B11.FR.09): refused, nothing forwarded."""
    for reset_type in ("Immediate", "OnIdle"):
        answer = await csms.call("CP-1", "Reset", {"type": reset_type, "evseId": 1})
        assert_refused(answer, "Rejected", "UnsupportedRequest")
    assert booted.received_calls == []
    assert (await booted.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "PowerUp"]


@pytest.mark.covers("csms_to_charger:Reset")
async def test_reset_the_charger_rejects_is_rejected(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, Reset=answering({"status": "Rejected"}))
    answer = await csms.call("CP-1", "Reset", {"type": "Immediate"})
    assert answer == {"status": "Rejected"}
    assert charger.calls_of("Reset") == [{"type": "Soft"}]
    # The charger did not reset: its next boot is not reported as a remote reset.
    assert (await charger.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "PowerUp"]


@pytest.mark.covers("csms_to_charger:Reset", "StopTransaction")
async def test_reset_immediate_during_a_transaction_ends_it_as_a_reset_command(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """The charger's Soft reset stops the transaction (reason SoftReset): Ended with
    triggerReason ResetCommand, stoppedReason ImmediateReset and no idToken (§2.3,
    2.0.1 §1.60.1); then the reboot goes up as RemoteReset."""
    transaction_id = await started_transaction(booted, 1)
    assert await csms.call("CP-1", "Reset", {"type": "Immediate"}) == {"status": "Accepted"}
    assert booted.calls_of("Reset") == [{"type": "Soft"}]
    await booted.stop_transaction(transaction_id, 1800, now(), idTag=TAG, reason="SoftReset")
    await wait_ended(csms)
    ended = only_transaction(csms, "CP-1")[-1]
    assert ended["triggerReason"] == "ResetCommand"
    assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    assert ended["transactionInfo"]["chargingState"] == "EVConnected"
    assert "idToken" not in ended
    assert (await booted.reboot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "RemoteReset"]


@pytest.mark.covers("csms_to_charger:Reset")
async def test_a_scheduled_reset_survives_a_reconnect_of_the_charger(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """The schedule is part of the stored station record, not of one connection."""
    transaction_id = await started_transaction(booted, 1)
    assert await csms.call("CP-1", "Reset", {"type": "OnIdle"}) == {"status": "Scheduled"}
    await booted.close()
    await csms.wait_disconnected("CP-1")
    await booted.connect()  # a reconnect, not a reboot: no BootNotification
    await booted.stop_transaction(transaction_id, 1500, now(), reason="Local")
    assert await booted.wait_for_call("Reset") == [{"type": "Soft"}]


@pytest.mark.covers("csms_to_charger:Reset")
async def test_an_immediate_reset_supersedes_a_scheduled_one(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    transaction_id = await started_transaction(booted, 1)
    assert await csms.call("CP-1", "Reset", {"type": "OnIdle"}) == {"status": "Scheduled"}
    assert await csms.call("CP-1", "Reset", {"type": "Immediate"}) == {"status": "Accepted"}
    assert booted.calls_of("Reset") == [{"type": "Soft"}]
    # The charger resets as asked: it stops its transaction, then reboots.
    await booted.stop_transaction(transaction_id, 1500, now(), reason="SoftReset")
    await booted.heartbeat()  # barrier: the due-reset check after the stop is done
    assert booted.calls_of("Reset") == [{"type": "Soft"}]  # one reset, not two


class GatedStore(SqliteStore):
    """The SQLite store, with station writes that can be held back: a store slower than a
    charger's disconnect (fsync, a remote database), made deterministic."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.gate: asyncio.Event | None = None

    async def put_station(self, record: StationRecord) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await super().put_station(record)


async def rebooting_charger(
    make_gateway: MakeGateway, chargers: Callable[..., ChargerSim], tmp_path: Path
) -> tuple[ChargerSim, asyncio.Event]:
    """A booted charger that, on its first Reset, answers Accepted and drops the connection
    at once, as a 1.6 charger going down for its reboot does. Its gateway's station
    writes are held from that Reset until the charger is gone: the event then set."""
    store = GatedStore(str(tmp_path / "gated.db"))
    gateway = await make_gateway(store=store)
    gone = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def go_down() -> None:
        await charger.close()
        gone.set()

    def accept_and_reboot(_request: Payload) -> Payload:
        if not tasks:
            store.gate = gone
            # The answer is written first; the close follows once the sim yields.
            tasks.append(asyncio.get_running_loop().create_task(go_down()))
        return {"status": "Accepted"}

    charger = await booted_charger(gateway, chargers, handlers={"Reset": accept_and_reboot})
    return charger, gone


@pytest.mark.covers("csms_to_charger:Reset")
async def test_a_reset_answer_reaches_the_csms_when_the_charger_reboots_right_away(
    make_gateway: MakeGateway,
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
    tmp_path: Path,
) -> None:
    charger, gone = await rebooting_charger(make_gateway, chargers, tmp_path)
    try:
        answer = await csms.call("CP-1", "Reset", {"type": "Immediate"})
    finally:
        await asyncio.wait_for(gone.wait(), 5)
    assert answer == {"status": "Accepted"}
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    assert boot_reasons(csms) == ["PowerUp", "RemoteReset"]


@pytest.mark.covers("csms_to_charger:Reset")
async def test_a_scheduled_reset_is_kept_track_of_when_the_charger_reboots_right_away(
    make_gateway: MakeGateway,
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
    tmp_path: Path,
) -> None:
    charger, gone = await rebooting_charger(make_gateway, chargers, tmp_path)
    transaction_id = await started_transaction(charger, 1)
    assert await csms.call("CP-1", "Reset", {"type": "OnIdle"}) == {"status": "Scheduled"}
    await charger.stop_transaction(transaction_id, 1500, now(), reason="Local")
    await asyncio.wait_for(gone.wait(), 5)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    await charger.heartbeat()  # barrier: any due-reset check after the boot is done
    assert (boot_reasons(csms), charger.calls_of("Reset")) == (
        ["PowerUp", "RemoteReset"],
        [{"type": "Soft"}],  # one reset, not a second one after the reboot
    )


# --- ChangeAvailability (§2.6, §3.2) -------------------------------------------------


@pytest.mark.covers("csms_to_charger:ChangeAvailability", "charger_to_csms:StatusNotification")
async def test_change_availability_of_the_whole_station_is_connector_0(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    answer = await csms.call("CP-1", "ChangeAvailability", {"operationalStatus": "Inoperative"})
    assert answer == {"status": "Accepted"}
    assert booted.calls_of("ChangeAvailability") == [{"connectorId": 0, "type": "Inoperative"}]
    # The station's own Unavailable is no StatusNotification in 2.0.1 (§1.1): it goes up
    # as ChargingStation.AvailabilityState.
    await booted.status(0, "Unavailable", timestamp=T1)
    (notify,) = await csms.wait_for("NotifyEvent")
    (event,) = notify.payload["eventData"]
    assert event["component"] == {"name": "ChargingStation"}
    assert event["variable"] == {"name": "AvailabilityState"}
    assert (event["actualValue"], event["trigger"], event["timestamp"]) == (
        "Unavailable",
        "Delta",
        T1,
    )
    assert csms.received("StatusNotification") == []


@pytest.mark.covers("csms_to_charger:ChangeAvailability")
async def test_change_availability_of_evse_0_is_connector_0(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    request = {"operationalStatus": "Operative", "evse": {"id": 0}}
    assert await csms.call("CP-1", "ChangeAvailability", request) == {"status": "Accepted"}
    assert booted.calls_of("ChangeAvailability") == [{"connectorId": 0, "type": "Operative"}]


@pytest.mark.covers("csms_to_charger:ChangeAvailability", "charger_to_csms:StatusNotification")
async def test_change_availability_of_evse_2_is_connector_2(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    request = {"operationalStatus": "Inoperative", "evse": {"id": 2}}
    assert await csms.call("CP-1", "ChangeAvailability", request) == {"status": "Accepted"}
    request = {"operationalStatus": "Operative", "evse": {"id": 2, "connectorId": 1}}
    assert await csms.call("CP-1", "ChangeAvailability", request) == {"status": "Accepted"}
    assert booted.calls_of("ChangeAvailability") == [
        {"connectorId": 2, "type": "Inoperative"},
        {"connectorId": 2, "type": "Operative"},
    ]
    # G03.FR.04: the charger's resulting status reaches the CSMS for that EVSE.
    await booted.status(2, "Unavailable", timestamp=T1)
    (status,) = await csms.wait_for("StatusNotification")
    assert status.payload == {
        "timestamp": T1,
        "connectorStatus": "Unavailable",
        "evseId": 2,
        "connectorId": 1,
    }


@pytest.mark.covers("csms_to_charger:ChangeAvailability")
@pytest.mark.parametrize("status", ["Scheduled", "Rejected"])
async def test_change_availability_answer_of_the_charger_is_passed_on(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim, status: str
) -> None:
    charger = await custom_charger(make_charger, ChangeAvailability=answering({"status": status}))
    request = {"operationalStatus": "Inoperative", "evse": {"id": 1}}
    assert await csms.call("CP-1", "ChangeAvailability", request) == {"status": status}
    assert charger.calls_of("ChangeAvailability") == [{"connectorId": 1, "type": "Inoperative"}]


@pytest.mark.covers("csms_to_charger:ChangeAvailability")
async def test_change_availability_under_an_explicit_layout(
    make_gateway: MakeGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """Layout TWIN-*: both 1.6 plugs on EVSE 1. What 1.6 cannot address is refused."""
    twin = EvseLayout(pattern="TWIN-*", connectors={1: (1, 1), 2: (1, 2)})
    gateway = await make_gateway(evse_layouts=(twin,))
    charger = await booted_charger(gateway, chargers, "TWIN-7")

    async def change(evse: Payload) -> Payload:
        request = {"operationalStatus": "Inoperative", "evse": evse}
        return await csms.call("TWIN-7", "ChangeAvailability", request)

    assert_refused(await change({"id": 2}), "Rejected", "UnknownEvse")
    assert_refused(await change({"id": 1, "connectorId": 3}), "Rejected", "UnknownConnectorId")
    # EVSE 1 is two 1.6 connectors; 1.6 changes one at a time.
    assert_refused(await change({"id": 1}), "Rejected", "UnsupportedParam")
    assert charger.received_calls == []

    assert await change({"id": 1, "connectorId": 2}) == {"status": "Accepted"}
    assert charger.calls_of("ChangeAvailability") == [{"connectorId": 2, "type": "Inoperative"}]


# --- UnlockConnector (§2.13, §3.2) ---------------------------------------------------


@pytest.mark.covers("csms_to_charger:UnlockConnector")
async def test_unlock_without_a_transaction_is_forwarded(booted: ChargerSim, csms: CsmsSim) -> None:
    answer = await csms.call("CP-1", "UnlockConnector", {"evseId": 1, "connectorId": 1})
    assert answer == {"status": "Unlocked"}
    assert booted.calls_of("UnlockConnector") == [{"connectorId": 1}]


@pytest.mark.covers("csms_to_charger:UnlockConnector")
async def test_unlock_failed_at_the_charger_is_unlock_failed(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    charger = await custom_charger(
        make_charger, UnlockConnector=answering({"status": "UnlockFailed"})
    )
    answer = await csms.call("CP-1", "UnlockConnector", {"evseId": 2, "connectorId": 1})
    assert answer == {"status": "UnlockFailed"}
    assert charger.calls_of("UnlockConnector") == [{"connectorId": 2}]


@pytest.mark.covers("csms_to_charger:UnlockConnector")
async def test_unlock_not_supported_by_the_charger_is_unlock_failed(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """A connector the gateway knows: the charger has no lock, so UnlockFailed, not
    UnknownConnector (§2.13)."""
    charger = await custom_charger(
        make_charger, UnlockConnector=answering({"status": "NotSupported"})
    )
    answer = await csms.call("CP-1", "UnlockConnector", {"evseId": 1, "connectorId": 1})
    assert_refused(answer, "UnlockFailed", "UnsupportedRequest")
    assert charger.calls_of("UnlockConnector") == [{"connectorId": 1}]


@pytest.mark.covers("csms_to_charger:UnlockConnector")
async def test_unlock_of_a_connector_the_layout_lacks_is_unknown_connector(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """Default layout: every EVSE has connector 1 only."""
    answer = await csms.call("CP-1", "UnlockConnector", {"evseId": 1, "connectorId": 2})
    assert_refused(answer, "UnknownConnector", "UnknownConnectorId")
    assert booted.received_calls == []


@pytest.mark.covers("csms_to_charger:UnlockConnector")
async def test_unlock_during_an_authorized_transaction_is_refused_without_the_charger(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """F05.FR.02: a 1.6 charger would end the transaction (1.6 §5.18), so the gateway
    answers OngoingAuthorizedTransaction itself; other connectors still unlock."""
    transaction_id = await started_transaction(booted, 1)
    answer = await csms.call("CP-1", "UnlockConnector", {"evseId": 1, "connectorId": 1})
    assert_refused(answer, "OngoingAuthorizedTransaction", "TxInProgress")
    assert booted.calls_of("UnlockConnector") == []

    answer = await csms.call("CP-1", "UnlockConnector", {"evseId": 2, "connectorId": 1})
    assert answer == {"status": "Unlocked"}
    assert booted.calls_of("UnlockConnector") == [{"connectorId": 2}]

    # Ended: connector 1 unlocks again.
    await booted.stop_transaction(transaction_id, 1500, now(), reason="Local")
    answer = await csms.call("CP-1", "UnlockConnector", {"evseId": 1, "connectorId": 1})
    assert answer == {"status": "Unlocked"}
    assert booted.calls_of("UnlockConnector") == [{"connectorId": 2}, {"connectorId": 1}]


@pytest.mark.covers("csms_to_charger:UnlockConnector")
async def test_unlock_during_a_transaction_whose_tag_was_refused_is_forwarded(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """Not authorized (the CSMS said Invalid): nothing to protect, the charger decides."""
    csms.id_token_info = lambda _token: {"status": "Invalid"}
    answer = await booted.start_transaction(1, TAG, 0, now())
    assert answer["idTagInfo"] == {"status": "Invalid"}
    unlock = await csms.call("CP-1", "UnlockConnector", {"evseId": 1, "connectorId": 1})
    assert unlock == {"status": "Unlocked"}
    assert booted.calls_of("UnlockConnector") == [{"connectorId": 1}]


@pytest.mark.covers("csms_to_charger:UnlockConnector")
async def test_unlock_under_an_explicit_layout(
    make_gateway: MakeGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """Layout TWIN-*: 1.6 connector 2 is EVSE 1 connector 2; EVSE 2 does not exist."""
    twin = EvseLayout(pattern="TWIN-*", connectors={1: (1, 1), 2: (1, 2)})
    gateway = await make_gateway(evse_layouts=(twin,))
    charger = await booted_charger(gateway, chargers, "TWIN-7")
    answer = await csms.call("TWIN-7", "UnlockConnector", {"evseId": 2, "connectorId": 1})
    assert_refused(answer, "UnknownConnector", "UnknownEvse")
    answer = await csms.call("TWIN-7", "UnlockConnector", {"evseId": 1, "connectorId": 3})
    assert_refused(answer, "UnknownConnector", "UnknownConnectorId")
    assert charger.received_calls == []
    answer = await csms.call("TWIN-7", "UnlockConnector", {"evseId": 1, "connectorId": 2})
    assert answer == {"status": "Unlocked"}
    assert charger.calls_of("UnlockConnector") == [{"connectorId": 2}]


# --- TriggerMessage (§2.12, §3.7) -----------------------------------------------------


async def trigger(csms: CsmsSim, requested: str, evse: Payload | None = None) -> Payload:
    request: Payload = {"requestedMessage": requested}
    if evse is not None:
        request["evse"] = evse
    return await csms.call("CP-1", "TriggerMessage", request)


@pytest.mark.covers("csms_to_charger:TriggerMessage", "charger_to_csms:StatusNotification")
async def test_triggered_status_notification_goes_up_even_unchanged(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    await booted.status(1, "Available", timestamp=T1)
    await csms.wait_for("StatusNotification", count=1)

    assert await trigger(csms, "StatusNotification", {"id": 1, "connectorId": 1}) == {
        "status": "Accepted"
    }
    assert booted.calls_of("TriggerMessage") == [
        {"requestedMessage": "StatusNotification", "connectorId": 1}
    ]
    await booted.status(1, "Available", timestamp=T2)  # unchanged, but asked for
    second = (await csms.wait_for("StatusNotification", count=2))[1]
    assert second.payload == {
        "timestamp": T2,
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    }

    # The trigger is spent: the next unchanged status is suppressed again. A Heartbeat
    # goes up only after the outbox is delivered, so it is the barrier.
    await booted.status(1, "Available", timestamp=T3)
    await booted.heartbeat()
    await csms.wait_for("Heartbeat")
    assert [m.action for m in csms.messages] == [
        "BootNotification",
        "StatusNotification",
        "StatusNotification",
        "Heartbeat",
    ]


@pytest.mark.covers("csms_to_charger:TriggerMessage", "charger_to_csms:StatusNotification")
async def test_triggered_status_of_one_connector_does_not_release_another(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    await booted.status(1, "Available", timestamp=T1)
    await booted.status(2, "Available", timestamp=T1)
    await csms.wait_for("StatusNotification", count=2)
    assert await trigger(csms, "StatusNotification", {"id": 1}) == {"status": "Accepted"}
    assert booted.calls_of("TriggerMessage") == [
        {"requestedMessage": "StatusNotification", "connectorId": 1}
    ]
    await booted.status(2, "Available", timestamp=T2)  # not the one asked for
    await booted.status(1, "Available", timestamp=T3)
    await booted.heartbeat()  # barrier: the outbox is delivered before it
    await csms.wait_for("Heartbeat")
    sent = [
        (m.payload["evseId"], m.payload["timestamp"]) for m in csms.received("StatusNotification")
    ]
    assert sent == [(1, T1), (2, T1), (1, T3)]


@pytest.mark.covers("csms_to_charger:TriggerMessage", "charger_to_csms:StatusNotification")
async def test_triggered_status_without_evse_releases_every_connector_once(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """Without a connectorId a 1.6 charger answers for each of its connectors."""
    await booted.status(1, "Available", timestamp=T1)
    await booted.status(2, "Preparing", timestamp=T1)
    await csms.wait_for("StatusNotification", count=2)
    assert await trigger(csms, "StatusNotification") == {"status": "Accepted"}
    assert booted.calls_of("TriggerMessage") == [{"requestedMessage": "StatusNotification"}]
    await booted.status(1, "Available", timestamp=T2)
    await booted.status(2, "Preparing", timestamp=T2)
    await booted.status(1, "Available", timestamp=T3)  # the trigger is spent
    await booted.heartbeat()  # barrier: the outbox is delivered before it
    await csms.wait_for("Heartbeat")
    sent = [
        (m.payload["evseId"], m.payload["connectorStatus"], m.payload["timestamp"])
        for m in csms.received("StatusNotification")
    ]
    assert sent == [
        (1, "Available", T1),
        (2, "Occupied", T1),
        (1, "Available", T2),
        (2, "Occupied", T2),
    ]


@pytest.mark.covers("csms_to_charger:TriggerMessage", "charger_to_csms:MeterValues")
async def test_triggered_meter_values_during_a_transaction_go_up_as_meter_values(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """F06: TriggerMessage(MeterValues) is answered by a MeterValuesRequest, even while a
    transaction runs (reference §3.1 MeterValues, exception)."""
    transaction_id = await started_transaction(booted, 1)
    await csms.wait_for("TransactionEvent")
    assert await trigger(csms, "MeterValues", {"id": 1}) == {"status": "Accepted"}
    assert booted.calls_of("TriggerMessage") == [
        {"requestedMessage": "MeterValues", "connectorId": 1}
    ]
    await booted.meter_values(1, [meter_value("1234", "Trigger", T1)], transaction_id)
    (message,) = await csms.wait_for("MeterValues")
    assert message.payload == {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": T1,
                "sampledValue": [
                    {
                        "value": 1234,
                        "context": "Trigger",
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    }
                ],
            }
        ],
    }
    await booted.heartbeat()  # barrier: the outbox is delivered before it
    await csms.wait_for("Heartbeat")
    (started,) = only_transaction(csms, "CP-1", ended=False)
    assert started["eventType"] == "Started"  # no Updated for the triggered values


@pytest.mark.covers("csms_to_charger:TriggerMessage", "charger_to_csms:MeterValues")
async def test_trigger_transaction_event_asks_for_meter_values_sent_as_updated(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """F06.FR.07 over 1.6: TriggerMessage(MeterValues) for the connector with the open
    transaction; its answer goes up as TransactionEvent(Updated, triggerReason Trigger)."""
    transaction_id = await started_transaction(booted, 2)
    await csms.wait_for("TransactionEvent")
    assert await trigger(csms, "TransactionEvent", {"id": 2}) == {"status": "Accepted"}
    assert booted.calls_of("TriggerMessage") == [
        {"requestedMessage": "MeterValues", "connectorId": 2}
    ]
    stamp = now()  # a past one would be flagged offline (queued while disconnected)
    await booted.meter_values(2, [meter_value("4321", "Trigger", stamp)], transaction_id)
    events = await csms.wait_for("TransactionEvent", count=2)
    started, updated = (message.payload for message in events)
    assert updated == {
        "eventType": "Updated",
        "timestamp": stamp,
        "triggerReason": "Trigger",
        "seqNo": 1,
        "transactionInfo": {"transactionId": started["transactionInfo"]["transactionId"]},
        "meterValue": [
            {
                "timestamp": stamp,
                "sampledValue": [
                    {
                        "value": 4321,
                        "context": "Trigger",
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    }
                ],
            }
        ],
    }
    await booted.heartbeat()  # barrier: the outbox is delivered before it
    await csms.wait_for("Heartbeat")
    assert csms.received("MeterValues") == []


@pytest.mark.covers("csms_to_charger:TriggerMessage")
async def test_trigger_transaction_event_without_evse_picks_the_open_transaction(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    await started_transaction(booted, 2)
    assert await trigger(csms, "TransactionEvent") == {"status": "Accepted"}
    assert booted.calls_of("TriggerMessage") == [
        {"requestedMessage": "MeterValues", "connectorId": 2}
    ]


@pytest.mark.covers("csms_to_charger:TriggerMessage")
async def test_trigger_transaction_event_without_a_transaction_is_rejected(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    assert_refused(await trigger(csms, "TransactionEvent"), "Rejected", "TxNotFound")
    await started_transaction(booted, 1)
    assert_refused(await trigger(csms, "TransactionEvent", {"id": 2}), "Rejected", "TxNotFound")
    assert booted.calls_of("TriggerMessage") == []


@pytest.mark.covers("csms_to_charger:TriggerMessage")
async def test_trigger_boot_notification_once_accepted_is_rejected_without_the_charger(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """F06.FR.17."""
    assert_refused(await trigger(csms, "BootNotification"), "Rejected", "UnsupportedRequest")
    assert booted.received_calls == []


@pytest.mark.covers("csms_to_charger:TriggerMessage")
async def test_trigger_log_status_notification_is_a_diagnostics_status_trigger(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    assert await trigger(csms, "LogStatusNotification") == {"status": "Accepted"}
    assert booted.received_calls == [
        ("TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"})
    ]


@pytest.mark.covers("csms_to_charger:TriggerMessage")
async def test_trigger_firmware_status_notification_is_forwarded(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    assert await trigger(csms, "FirmwareStatusNotification") == {"status": "Accepted"}
    assert booted.received_calls == [
        ("TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
    ]


@pytest.mark.covers("csms_to_charger:TriggerMessage")
async def test_trigger_sign_charging_station_certificate_is_an_extended_trigger(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """The 1.6 security extension's ExtendedTriggerMessage (SEC §6.16), once the gateway
    has seen a key only that extension defines (SecurityProfile) in the charger's
    configuration."""
    configuration = standard_configuration()
    charger = await custom_charger(
        make_charger,
        ExtendedTriggerMessage=answering({"status": "Accepted"}),
        **configuration.handlers(),
    )
    read = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}}
    answer = await csms.call("CP-1", "GetVariables", {"getVariableData": [read]})
    assert answer["getVariableResult"][0]["attributeValue"] == "0"
    assert await trigger(csms, "SignChargingStationCertificate") == {"status": "Accepted"}
    assert charger.received_calls[-1] == (
        "ExtendedTriggerMessage",
        {"requestedMessage": "SignChargePointCertificate"},
    )


@pytest.mark.covers("csms_to_charger:TriggerMessage")
async def test_trigger_sign_charging_station_certificate_without_the_extension(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """A charger not known to have the security extension is not sent a message it may
    not know: the gateway answers NotImplemented (reference §3.7)."""
    answer = await trigger(csms, "SignChargingStationCertificate")
    assert answer["status"] == "NotImplemented"
    assert answer["statusInfo"]["reasonCode"] == "UnsupportedRequest"
    assert booted.received_calls == []


@pytest.mark.covers("csms_to_charger:TriggerMessage", "charger_to_csms:Heartbeat")
async def test_trigger_heartbeat_and_the_charger_heartbeat_reaches_the_csms(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    assert await trigger(csms, "Heartbeat") == {"status": "Accepted"}
    assert booted.received_calls == [("TriggerMessage", {"requestedMessage": "Heartbeat"})]
    assert "currentTime" in await booted.heartbeat()
    (heartbeat,) = await csms.wait_for("Heartbeat")
    assert heartbeat.payload == {}


@pytest.mark.covers("csms_to_charger:TriggerMessage")
@pytest.mark.parametrize("status", ["Rejected", "NotImplemented"])
async def test_trigger_answer_of_the_charger_is_passed_on(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim, status: str
) -> None:
    charger = await custom_charger(make_charger, TriggerMessage=answering({"status": status}))
    assert await trigger(csms, "StatusNotification", {"id": 1}) == {"status": status}
    assert charger.calls_of("TriggerMessage") == [
        {"requestedMessage": "StatusNotification", "connectorId": 1}
    ]


@pytest.mark.covers("csms_to_charger:TriggerMessage", "charger_to_csms:StatusNotification")
async def test_a_trigger_the_charger_refused_does_not_release_an_unchanged_status(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    charger = await custom_charger(make_charger, TriggerMessage=answering({"status": "Rejected"}))
    await charger.status(1, "Available", timestamp=T1)
    await csms.wait_for("StatusNotification")
    assert await trigger(csms, "StatusNotification", {"id": 1}) == {"status": "Rejected"}
    await charger.status(1, "Available", timestamp=T2)
    await charger.heartbeat()  # barrier: the outbox is delivered before it
    await csms.wait_for("Heartbeat")
    assert len(csms.received("StatusNotification")) == 1


@pytest.mark.covers("csms_to_charger:TriggerMessage")
@pytest.mark.parametrize(
    "requested",
    # SignV2GCertificate goes through the ISO 15118 PnC tunnel: test_pnc.py.
    ["SignCombinedCertificate", "PublishFirmwareStatusNotification"],
)
async def test_trigger_with_no_1_6_counterpart_is_not_implemented(
    booted: ChargerSim, csms: CsmsSim, requested: str
) -> None:
    assert_refused(await trigger(csms, requested), "NotImplemented", "UnsupportedRequest")
    assert booted.received_calls == []


@pytest.mark.covers("csms_to_charger:TriggerMessage")
async def test_trigger_for_an_evse_the_layout_lacks_is_rejected(
    make_gateway: MakeGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    twin = EvseLayout(pattern="TWIN-*", connectors={1: (1, 1), 2: (1, 2)})
    gateway = await make_gateway(evse_layouts=(twin,))
    charger = await booted_charger(gateway, chargers, "TWIN-7")
    request = {"requestedMessage": "StatusNotification", "evse": {"id": 2}}
    assert_refused(await csms.call("TWIN-7", "TriggerMessage", request), "Rejected", "UnknownEvse")
    assert charger.received_calls == []
    request = {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 2}}
    assert await csms.call("TWIN-7", "TriggerMessage", request) == {"status": "Accepted"}
    assert charger.calls_of("TriggerMessage") == [
        {"requestedMessage": "StatusNotification", "connectorId": 2}
    ]


# --- ClearCache (§3.2) ---------------------------------------------------------------


@pytest.mark.covers("csms_to_charger:ClearCache")
async def test_clear_cache_clears_the_charger_and_the_gateway_cache(
    booted: ChargerSim, csms: CsmsSim, gateway: Gateway
) -> None:
    assert (await booted.authorize(TAG))["idTagInfo"] == {"status": "Accepted"}
    assert await gateway.store.get_authorization("CP-1", TAG) == {"status": "Accepted"}

    assert await csms.call("CP-1", "ClearCache", {}) == {"status": "Accepted"}
    assert booted.calls_of("ClearCache") == [{}]
    assert await gateway.store.get_authorization("CP-1", TAG) is None


@pytest.mark.covers("csms_to_charger:ClearCache")
async def test_clear_cache_of_one_station_leaves_the_others(
    gateway: Gateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    first = await booted_charger(gateway, chargers, "CP-1")
    second = await booted_charger(gateway, chargers, "CP-2")
    await first.authorize(TAG)
    await second.authorize(TAG)
    assert await csms.call("CP-1", "ClearCache", {}) == {"status": "Accepted"}
    assert await gateway.store.get_authorization("CP-1", TAG) is None
    assert await gateway.store.get_authorization("CP-2", TAG) == {"status": "Accepted"}
    assert second.received_calls == []


@pytest.mark.covers("csms_to_charger:ClearCache")
async def test_clear_cache_the_charger_rejects_keeps_the_gateway_cache(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim, gateway: Gateway
) -> None:
    charger = await custom_charger(make_charger, ClearCache=answering({"status": "Rejected"}))
    await charger.authorize(TAG)
    assert await csms.call("CP-1", "ClearCache", {}) == {"status": "Rejected"}
    assert charger.calls_of("ClearCache") == [{}]
    assert await gateway.store.get_authorization("CP-1", TAG) == {"status": "Accepted"}
