"""A load generator process: a share of the simulated 1.6 chargers.

Layer: bench. Must not import the gateway outside ``gateway.bench``.

The generator has to stay cheaper than what it measures, or the figures describe the
generator. So, unlike :mod:`gateway.sim.charger`, it validates nothing and builds
nothing per message: frames are pre-serialised (:mod:`gateway.bench.frames`) with only
the message id spliced in, an answer is recognised by its prefix, and only a frame that
fails that check is parsed. websockets' asyncio client on uvloop, compression off, no
keepalive pings (the target's pings are still answered by the protocol layer).

A charger keeps at most one CALL outstanding, as OCPP-J allows (1.6 §4.1.1). Every
failure (refused connection, CALLERROR, closed socket, unanswered CALL) is collected in
:class:`~gateway.bench.control.Problems` and reported, never skipped silently.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from multiprocessing.connection import Connection
from typing import Final

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from gateway.bench.child import receive, run_child
from gateway.bench.control import (
    Connect,
    ConnectDone,
    Disconnect,
    LoadDone,
    Pace,
    Problems,
    Ready,
    Saturate,
    Stop,
    station_id,
)
from gateway.bench.frames import (
    CALLRESULT_PREFIX,
    MESSAGES,
    FrameTemplate,
    call_template,
    message_id,
    not_implemented,
)

__all__ = ["main"]

_SUBPROTOCOL: Final = Subprotocol("ocpp1.6")
_BOOT: Final = call_template(*MESSAGES["boot"])
_CONNECT_FAILURES: Final = (OSError, InvalidHandshake, InvalidURI, TimeoutError)


class CallFailed(Exception):
    """A CALL did not get its CALLRESULT (the message says what came instead)."""


class _Tally:
    """Counters and the measurement window of one load phase."""

    __slots__ = (
        "call_errors",
        "callresults",
        "end",
        "latencies",
        "peer_calls",
        "round_trips",
        "sent",
        "start",
        "window_round_trips",
    )

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.sent = self.round_trips = self.callresults = self.call_errors = 0
        self.window_round_trips = self.peer_calls = 0
        self.latencies = array("d")

    def answered(self, sent_at: float) -> None:
        done = time.monotonic()
        self.round_trips += 1
        self.callresults += 1
        if self.start <= done < self.end:
            self.window_round_trips += 1
            self.latencies.append(done - sent_at)

    def result(self, problems: Problems) -> LoadDone:
        return LoadDone(
            sent=self.sent,
            round_trips=self.round_trips,
            callresults=self.callresults,
            call_errors=self.call_errors,
            window_round_trips=self.window_round_trips,
            latencies=self.latencies.tobytes(),
            peer_calls=self.peer_calls,
            problems=problems,
        )


class _Charger:
    """One connected charger: its socket and its message id sequence."""

    __slots__ = ("sequence", "station", "ws")

    def __init__(self, station: str, ws: ClientConnection) -> None:
        self.station = station
        self.ws = ws
        self.sequence = 0

    async def call(self, template: FrameTemplate, tally: _Tally) -> str:
        """Send one CALL and wait for its answer; the CALLRESULT text is returned."""
        self.sequence += 1
        mid = message_id(self.sequence)
        expected = CALLRESULT_PREFIX + mid + '"'
        sent_at = time.monotonic()
        await self.ws.send(template.head + mid + template.tail)
        tally.sent += 1
        while True:
            reply = await self.ws.recv()
            text = reply if isinstance(reply, str) else reply.decode()
            if text.startswith(expected) or await self._answered_otherwise(
                text, mid, template.action, tally
            ):
                tally.answered(sent_at)
                return text

    async def _answered_otherwise(self, text: str, mid: str, action: str, tally: _Tally) -> bool:
        """The slow path: True for a CALLRESULT the prefix check missed; False after
        answering a CALL from the target (then keep waiting); else CallFailed."""
        try:
            frame = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise CallFailed(f"{self.station}: unparseable frame {text[:120]!r}") from None
        kind = frame[0] if isinstance(frame, list) and len(frame) >= 3 else None
        if kind == 2:
            tally.peer_calls += 1
            await self.ws.send(not_implemented(str(frame[1])))
            return False
        if kind == 3 and frame[1] == mid:
            return True
        if kind == 4 and frame[1] == mid:
            tally.round_trips += 1
            tally.call_errors += 1
            raise CallFailed(f"{self.station}: {action} answered CALLERROR {text[:200]}")
        raise CallFailed(f"{self.station}: {action} answered with {text[:200]!r}")


class Generator:
    """The chargers of one generator process and the phases they run."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.fleet: list[_Charger] = []

    async def connect(self, command: Connect) -> ConnectDone:
        gate = asyncio.Semaphore(max(1, command.concurrency))
        problems = Problems()
        booted: list[_Charger] = []
        opened = 0

        async def one(index: int) -> None:
            nonlocal opened
            station = station_id(command.target, command.phase, self.index, index)
            async with gate:
                try:
                    ws = await connect(
                        f"{command.url}/{station}",
                        subprotocols=[_SUBPROTOCOL],
                        compression=None,
                        ping_interval=None,
                        open_timeout=command.timeout,
                        close_timeout=2,
                        proxy=None,
                    )
                except _CONNECT_FAILURES as exc:
                    problems.add(f"{command.url}/{station}: cannot connect: {exc}")
                    return
                opened += 1
                charger = _Charger(station, ws)
                self.fleet.append(charger)
                if ws.subprotocol != _SUBPROTOCOL:
                    problems.add(f"{station}: the target chose subprotocol {ws.subprotocol}")
                    return
                try:
                    async with asyncio.timeout(command.timeout):
                        reply = await charger.call(_BOOT, _Tally(0.0, 0.0))
                except (CallFailed, ConnectionClosed, TimeoutError) as exc:
                    problems.add(f"{station}: BootNotification failed: {_describe(exc)}")
                    return
                status = orjson.loads(reply)[2].get("status")
                if status != "Accepted":
                    problems.add(f"{station}: BootNotification answered {status!r}")
                    return
                booted.append(charger)

        started = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for index in range(command.count):
                group.create_task(one(index))
        finished = time.monotonic()
        return ConnectDone(
            requested=command.count,
            connected=opened,
            booted=len(booted),
            started=started,
            finished=finished,
            problems=problems,
        )

    async def saturate(self, command: Saturate) -> LoadDone:
        template = call_template(*MESSAGES[command.message])
        tally = _Tally(command.window_start, command.window_end)

        async def keep_busy(charger: _Charger) -> None:
            while time.monotonic() < command.window_end:
                await charger.call(template, tally)

        tasks = [asyncio.create_task(keep_busy(charger)) for charger in self.fleet]
        problems = Problems()
        await _settle(tasks, command.window_end + command.timeout, problems)
        return tally.result(problems)

    async def pace(self, command: Pace) -> LoadDone:
        """One CALL every ``1 / rate`` seconds, each on a charger with nothing outstanding;
        when the schedule falls behind (timer granularity) the due CALLs go at once."""
        template = call_template(*MESSAGES[command.message])
        tally = _Tally(command.window_start, command.window_end)
        idle: asyncio.Queue[_Charger] = asyncio.Queue()
        for charger in self.fleet:
            idle.put_nowait(charger)
        problems = Problems()
        in_flight: set[asyncio.Task[None]] = set()
        if not self.fleet or command.rate <= 0:
            return tally.result(problems)  # more generators than chargers: nothing to do

        async def one(charger: _Charger) -> None:
            await charger.call(template, tally)
            idle.put_nowait(charger)  # a charger that failed is not used again

        interval = 1.0 / command.rate
        due = time.monotonic()
        while due < command.window_end:
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                async with asyncio.timeout(command.timeout):
                    charger = await idle.get()
            except TimeoutError:
                problems.add(f"every charger had a CALL unanswered for {command.timeout:g} s")
                break
            task = asyncio.create_task(one(charger))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            due += interval
        await _settle(list(in_flight), time.monotonic() + command.timeout, problems)
        return tally.result(problems)

    async def disconnect(self) -> Problems:
        fleet, self.fleet = self.fleet, []
        problems = Problems()
        results = await asyncio.gather(
            *(charger.ws.close() for charger in fleet), return_exceptions=True
        )
        for charger, result in zip(fleet, results, strict=True):
            if isinstance(result, BaseException):
                problems.add(f"{charger.station}: close failed: {_describe(result)}")
        return problems


async def _settle(tasks: list[asyncio.Task[None]], deadline: float, problems: Problems) -> None:
    """Wait for the phase's tasks until ``deadline``; what is still running then has a
    CALL unanswered and is cancelled. Every failure goes into ``problems``."""
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
    for task in pending:
        task.cancel()
        problems.add("a CALL was not answered in time")
    if pending:
        await asyncio.wait(pending)
    for task in done:
        if not task.cancelled() and (exc := task.exception()) is not None:
            if not isinstance(exc, CallFailed | ConnectionClosed):
                raise exc
            problems.add(_describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        return f"the target closed the connection ({exc})"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


async def _run(conn: Connection) -> None:
    index = await receive(conn)
    if not isinstance(index, int):
        raise TypeError(f"a generator expected its index, got {index!r}")
    generator = Generator(index)
    conn.send(Ready())
    while True:
        command = await receive(conn)
        if isinstance(command, Connect):
            conn.send(await generator.connect(command))
        elif isinstance(command, Saturate):
            conn.send(await generator.saturate(command))
        elif isinstance(command, Pace):
            conn.send(await generator.pace(command))
        elif isinstance(command, Disconnect):
            conn.send(await generator.disconnect())
        elif isinstance(command, Stop):
            await generator.disconnect()
            return
        else:
            raise TypeError(f"a generator got an unknown command {command!r}")


def main(conn: Connection) -> None:
    """Process entry point (``multiprocessing`` spawn target); the first message on
    ``conn`` is this generator's index."""
    run_child(conn, _run)
