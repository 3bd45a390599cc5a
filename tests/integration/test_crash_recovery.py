"""A gateway killed with SIGKILL at a moment that matters, restarted on the same SQLite file.

Every test runs ``ocpp-gateway serve`` as a real process (real websockets on loopback, a
real SQLite file in tmp_path) against the in-process CSMS sim, kills it with SIGKILL (no
shutdown code runs, nothing is flushed) and starts a new process on the same state file.
What the gateway answered before the kill must survive: open transactions and their
1.6 <-> 2.0.1 id mapping, seqNo, the outbox, and the legacy ids it already handed out.

Synchronisation is on events only: the CSMS sim's waits, the charger's answers and
closes, and lines of the gateway's own log (read continuously, so the pipe never fills).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.wire import JsonObject
from tests.integration.ledger import assert_well_formed, only_transaction, transactions, wait_ended
from tests.integration.test_transactions import TAG, now, periodic

pytestmark = pytest.mark.integration

STATION = "CP-CRASH"
LOG_WAIT = 20.0  # seconds a log line may take (a cold interpreter start included)


class GatewayProcess:
    """One ``ocpp-gateway serve`` process whose combined output is read line by line."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.lines: list[str] = []
        self._eof = False
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read(), name=f"{name} log reader")
        self.port = 0

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._eof = True
            self._changed.notify_all()

    def log(self) -> str:
        return "\n".join(self.lines)

    def _search(self, regex: re.Pattern[str]) -> re.Match[str] | None:
        return next((match for line in self.lines if (match := regex.search(line))), None)

    async def wait_log(self, pattern: str) -> re.Match[str]:
        """The first log line matching ``pattern``, once it was written."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(LOG_WAIT), self._changed:
                await self._changed.wait_for(lambda: self._eof or self._search(regex) is not None)
        except TimeoutError:
            raise AssertionError(f"{self.name}: no log line {pattern!r}:\n{self.log()}") from None
        match = self._search(regex)
        if match is None:
            raise AssertionError(f"{self.name} exited without logging {pattern!r}:\n{self.log()}")
        return match

    @property
    def charger_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def sigkill(self) -> None:
        """SIGKILL: no handler, no flush, no close frame; the kernel just drops the sockets."""
        os.kill(self.process.pid, signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL
        await self._reader

    async def cleanup(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await asyncio.gather(self._reader, return_exceptions=True)


SpawnGateway = Callable[[], Awaitable[GatewayProcess]]


@pytest.fixture
async def spawn_gateway(csms: CsmsSim, tmp_path: Path) -> AsyncIterator[SpawnGateway]:
    """Start ``ocpp-gateway serve`` processes, all on one state file and one upstream;
    every process is killed at teardown, and its log printed (shown when a test fails)."""
    state = tmp_path / "state.db"
    started: list[GatewayProcess] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_GATEWAY_")}

    async def spawn() -> GatewayProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve",
            "--upstream", csms.url,
            "--listen", "127.0.0.1:0",
            "--state", f"sqlite:///{state}",
            "--metrics", "off",
            "--validate-outbound",
            "--response-timeout", "5",
            "--upstream-wait", "5",
            "--backoff-initial", "0.05",
            "--backoff-max", "0.2",
            "--ping-interval", "0",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        gateway = GatewayProcess(process, f"gateway #{len(started) + 1}")
        started.append(gateway)
        ready = await gateway.wait_log(r"listening for chargers on port (\d+)")
        gateway.port = int(ready.group(1))
        return gateway

    try:
        yield spawn
    finally:
        for gateway in started:
            await gateway.cleanup()
            print(f"----- {gateway.name} (exit {gateway.process.returncode}) -----")
            print(gateway.log())


async def killed(gateway: GatewayProcess, charger: ChargerSim, csms: CsmsSim) -> None:
    """SIGKILL the gateway; return once both its peers saw their connections end."""
    await gateway.sigkill()
    await charger.wait_closed()
    # A new upstream connection before the CSMS saw the old one end would be two
    # connections for one station (the csms fixture fails the test on that).
    await csms.wait_disconnected(STATION)


@pytest.mark.covers(
    "StartTransaction", "charger_to_csms:MeterValues", "StopTransaction", "GetTransactionStatus"
)
async def test_killed_mid_session_the_restarted_gateway_ends_the_same_transaction(
    spawn_gateway: SpawnGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """The open transaction, its id mapping and its seqNo survive SIGKILL; the stop after
    the restart ends the same 2.0.1 transaction, and legacy ids are never handed out twice."""
    first = await spawn_gateway()
    charger = chargers(first.charger_url, STATION)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    start = await charger.start_transaction(1, TAG, 1000, now())
    assert start["idTagInfo"]["status"] == "Accepted"
    legacy_id = start["transactionId"]
    await charger.meter_values(1, [periodic("1500", unit="Wh")], legacy_id)
    started, updated = await csms.wait_for("TransactionEvent", station_id=STATION, count=2)
    transaction_id = started.payload["transactionInfo"]["transactionId"]
    # A forwarded CALL goes up only once the outbox was delivered and removed: after its
    # answer, the gateway holds an open transaction and nothing undelivered.
    await charger.heartbeat()
    await csms.wait_for("Heartbeat", station_id=STATION)
    status = await csms.call(STATION, "GetTransactionStatus", {"transactionId": transaction_id})
    assert status == {"ongoingIndicator": True, "messagesInQueue": False}

    await killed(first, charger, csms)

    second = await spawn_gateway()
    charger = chargers(second.charger_url, STATION)
    await charger.connect()  # a 1.6 charger that reconnects does not boot again
    await csms.wait_connected(STATION, count=2)
    # The restarted gateway knows the transaction from the state file alone.
    status = await csms.call(STATION, "GetTransactionStatus", {"transactionId": transaction_id})
    assert status == {"ongoingIndicator": True, "messagesInQueue": False}
    stop = await charger.stop_transaction(legacy_id, 3000, now(), idTag=TAG, reason="Local")
    assert stop["idTagInfo"]["status"] == "Accepted"  # the CSMS's own answer, through Ended
    await wait_ended(csms, STATION)

    events = only_transaction(csms, STATION)
    assert [(e["eventType"], e["seqNo"]) for e in events] == [
        ("Started", 0),
        ("Updated", 1),
        ("Ended", 2),
    ]
    assert events[1] == updated.payload
    ended = events[2]
    assert ended["transactionInfo"]["transactionId"] == transaction_id
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert ended["idToken"]["idToken"] == TAG
    end_samples = [s for mv in ended["meterValue"] for s in mv["sampledValue"]]
    assert {"value": 3000, "context": "Transaction.End"}.items() <= end_samples[-1].items()
    # Nothing was waiting at the kill, so nothing was sent twice or flagged offline.
    assert len(csms.received("TransactionEvent", station_id=STATION)) == 3
    assert not any(event.get("offline") for event in events)

    again = await charger.start_transaction(1, TAG, 3000, now())
    assert again["idTagInfo"]["status"] == "Accepted"
    assert again["transactionId"] != legacy_id
    await csms.wait_for(
        "TransactionEvent",
        station_id=STATION,
        where=lambda payload: payload["transactionInfo"]["transactionId"] != transaction_id,
    )
    by_id = transactions(csms, STATION)
    assert len(by_id) == 2 and transaction_id in by_id
    (new_events,) = (events for tx, events in by_id.items() if tx != transaction_id)
    assert_well_formed(new_events, ended=False)
    assert new_events[0]["meterValue"][0]["sampledValue"][0]["value"] == 3000


@pytest.mark.covers(
    "StartTransaction",
    "charger_to_csms:MeterValues",
    "StopTransaction",
    "charger_to_csms:StatusNotification",
)
async def test_killed_with_an_undelivered_outbox_replays_it_first_flagged_offline(
    spawn_gateway: SpawnGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """A whole session answered by the gateway during a CSMS outage is only in the outbox
    when the gateway is killed; after the restart the CSMS receives all of it, in the
    charger's order, flagged offline, before anything the charger sends afterwards."""
    first = await spawn_gateway()
    charger = chargers(first.charger_url, STATION)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    assert (await charger.authorize(TAG))["idTagInfo"]["status"] == "Accepted"  # now cached
    csms.refuse_connections = True
    await csms.drop(STATION)
    await first.wait_log("the CSMS closed the connection")  # the gateway knows it is offline

    await charger.status(1, "Preparing")
    start = await charger.start_transaction(1, TAG, 1000, now())
    assert start["idTagInfo"]["status"] == "Accepted"  # the offline policy: cached token
    legacy_id = start["transactionId"]
    await charger.status(1, "Charging")
    await charger.meter_values(1, [periodic("1500", unit="Wh")], legacy_id)
    await charger.stop_transaction(legacy_id, 2000, now(), idTag=TAG, reason="Local")
    await charger.status(1, "Available")
    assert csms.received("TransactionEvent") == []
    assert csms.received("StatusNotification") == []

    await killed(first, charger, csms)
    csms.refuse_connections = False

    second = await spawn_gateway()
    charger = chargers(second.charger_url, STATION)
    await charger.connect()  # the gateway opens the station's upstream for a charger only
    assert "currentTime" in await charger.heartbeat()
    (heartbeat,) = await csms.wait_for("Heartbeat", station_id=STATION)

    events = only_transaction(csms, STATION)
    assert [(e["eventType"], e["triggerReason"]) for e in events] == [
        ("Started", "Authorized"),
        ("Updated", "ChargingStateChanged"),
        ("Updated", "MeterValuePeriodic"),
        ("Ended", "StopAuthorized"),
    ]
    assert all(event.get("offline") is True for event in events)
    assert events[2]["meterValue"][0]["sampledValue"][0]["value"] == 1500
    assert events[3]["transactionInfo"]["stoppedReason"] == "Local"
    # Each delivered once: nothing of this outbox had reached the CSMS before the kill.
    assert len(csms.received("TransactionEvent", station_id=STATION)) == 4
    assert [m.payload["connectorStatus"] for m in csms.received("StatusNotification")] == [
        "Occupied",
        "Available",
    ]
    # The charger's order, whole: the replay first, the Heartbeat sent after it last.
    mine = [m for m in csms.messages if m.station_id == STATION]
    after_authorize = [m.action for m in mine].index("Authorize") + 1
    assert [m.action for m in mine[after_authorize:]] == [
        "StatusNotification",  # Preparing: Occupied
        "TransactionEvent",  # Started
        "TransactionEvent",  # Charging
        "TransactionEvent",  # meter values
        "TransactionEvent",  # Ended
        "StatusNotification",  # Available
        "Heartbeat",
    ]
    assert mine[-1] is heartbeat


@dataclass
class UnansweredStart:
    """A StartTransaction whose Started reached the CSMS, which never answered before the
    gateway was killed; a second gateway runs on the same state file."""

    charger: ChargerSim  # reconnected to the second gateway, the start not yet re-sent
    request: JsonObject  # the StartTransaction, to be re-sent unchanged
    transaction_id: str
    first_delivery: JsonObject


async def kill_before_the_csms_answers_started(
    spawn_gateway: SpawnGateway,
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
    *,
    authorize_first: bool,
) -> UnansweredStart:
    answer_normally = csms.handlers["TransactionEvent"]
    never_answered: list[asyncio.Future[JsonObject]] = []

    def never_answer(_station_id: str, _payload: JsonObject) -> asyncio.Future[JsonObject]:
        never_answered.append(asyncio.get_running_loop().create_future())
        return never_answered[-1]

    first = await spawn_gateway()
    charger = chargers(first.charger_url, STATION)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    if authorize_first:
        assert (await charger.authorize(TAG))["idTagInfo"]["status"] == "Accepted"
    csms.handlers["TransactionEvent"] = never_answer
    request: JsonObject = {"connectorId": 1, "idTag": TAG, "meterStart": 500, "timestamp": now()}
    pending = asyncio.create_task(charger.call("StartTransaction", request))
    (delivery,) = await csms.wait_for("TransactionEvent", station_id=STATION)
    assert delivery.payload["eventType"] == "Started"

    await killed(first, charger, csms)
    with pytest.raises(ConnectionError):
        await pending  # the charger never got an answer
    # Nor did the gateway: the CSMS's handler was still pending when the connection ended.
    assert never_answered and not any(
        future.done() and not future.cancelled() for future in never_answered
    )
    csms.handlers["TransactionEvent"] = answer_normally

    second = await spawn_gateway()
    charger = chargers(second.charger_url, STATION)
    await charger.connect()
    return UnansweredStart(
        charger=charger,
        request=request,
        transaction_id=delivery.payload["transactionInfo"]["transactionId"],
        first_delivery=delivery.payload,
    )


def without_offline_flag(payload: JsonObject) -> JsonObject:
    return {key: value for key, value in payload.items() if key != "offline"}


@pytest.mark.covers("StartTransaction", "StopTransaction")
async def test_killed_before_the_csms_answered_the_start_delivers_started_again(
    spawn_gateway: SpawnGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """Killed between the CSMS receiving Started and answering it: after the restart the
    same Started (transactionId, seqNo 0) goes up again, the charger's re-sent
    StartTransaction is recognised (no second transaction), and its stop ends the same
    transaction with the next seqNo."""
    case = await kill_before_the_csms_answers_started(
        spawn_gateway, chargers, csms, authorize_first=True
    )
    # A 1.6 charger re-sends the unanswered StartTransaction after reconnecting.
    start = await case.charger.call("StartTransaction", case.request)
    assert start["idTagInfo"]["status"] == "Accepted"
    first, again = await csms.wait_for("TransactionEvent", station_id=STATION, count=2)
    assert again.payload["seqNo"] == 0
    assert again.payload["transactionInfo"]["transactionId"] == case.transaction_id
    # The same event again (its offline flag aside: see the strict test below).
    assert without_offline_flag(again.payload) == without_offline_flag(first.payload)
    stop = await case.charger.stop_transaction(
        start["transactionId"], 900, now(), idTag=TAG, reason="Local"
    )
    assert stop["idTagInfo"]["status"] == "Accepted"
    await wait_ended(csms, STATION)

    received = [m.payload for m in csms.received("TransactionEvent", station_id=STATION)]
    assert [(e["eventType"], e["seqNo"]) for e in received] == [
        ("Started", 0),
        ("Started", 0),
        ("Ended", 1),
    ]
    assert {e["transactionInfo"]["transactionId"] for e in received} == {case.transaction_id}
    assert received[2]["transactionInfo"]["stoppedReason"] == "Local"


@pytest.mark.covers("StartTransaction")
async def test_a_started_delivered_again_after_the_restart_is_the_same_payload(
    spawn_gateway: SpawnGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """At-least-once means the CSMS may see an event twice; it must be the same event.
    The Started happened while the station was online ("offline" says when the event
    happened, 2.0.1 TransactionEventRequest), so its re-delivery must not say otherwise."""
    case = await kill_before_the_csms_answers_started(
        spawn_gateway, chargers, csms, authorize_first=True
    )
    assert "offline" not in case.first_delivery
    await csms.wait_for("TransactionEvent", station_id=STATION, count=2)
    events = only_transaction(csms, STATION, ended=False)  # one meaning per seqNo
    assert [(e["eventType"], e["seqNo"]) for e in events] == [("Started", 0)]


@pytest.mark.covers("StartTransaction")
async def test_a_start_re_sent_after_the_restart_gets_the_csms_verdict(
    spawn_gateway: SpawnGateway, chargers: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """The charger was never answered; the CSMS (which accepts every token) is back. The
    re-sent StartTransaction must not be refused on the gateway's say-so: a 1.6 charger
    told Invalid stops charging a session the CSMS authorized."""
    case = await kill_before_the_csms_answers_started(
        spawn_gateway, chargers, csms, authorize_first=False
    )
    start = await case.charger.call("StartTransaction", case.request)
    (_, again) = await csms.wait_for("TransactionEvent", station_id=STATION, count=2)
    assert again.payload["transactionInfo"]["transactionId"] == case.transaction_id
    assert start["idTagInfo"]["status"] == "Accepted"
