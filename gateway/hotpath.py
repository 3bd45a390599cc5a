"""The session's hot path without sockets: CPU per translated round trip.

Layer: a developer's tool beside ``gateway.bench`` (which must not import the gateway;
this drives it in process).

``ocpp-gateway bench`` measures the whole gateway process against a naive proxy, which
is the figure that matters, but its results move by ±20 % between runs on a shared
machine, too much to see a 5 % change. This tool drives real
:class:`~gateway.session.bridge.TranslatingSession` objects, with the real store,
metrics, translation tables and validator, through in-memory links that answer at once
(the charger sends its next MeterValues when it gets an answer; the CSMS answers every
CALL from a table), and reports process CPU time per round trip. Websockets is left
out: its cost is the same in the gateway and the naive proxy. Run it before and after a
change on the hot path, alternating, and compare the ratio::

    python -m gateway.hotpath --state memory://
    python -m gateway.hotpath --state sqlite://   # a fresh SQLite file per run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.bench.frames import MESSAGES, call_template, message_id, not_implemented, peek_call
from gateway.bench.stub_csms import V201, answers
from gateway.collector import tune_for_serving
from gateway.errors import PeerUnavailable
from gateway.mappings import load_tables
from gateway.metrics import GatewayMetrics
from gateway.ocppj import Version
from gateway.session.bridge import SessionSettings, TranslatingSession
from gateway.state import InstrumentedStore, Store, open_store

__all__ = ["HotPathResult", "main", "run"]


@dataclass(frozen=True, slots=True)
class HotPathResult:
    round_trips: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def cpu_us_per_round_trip(self) -> float:
        return self.cpu_seconds / self.round_trips * 1e6


class _Charger:
    """A 1.6 charger that boots, then, from :meth:`start`, sends ``count`` CALLs of
    one kind, each after the previous one's answer (one CALL in flight, as OCPP-J
    allows)."""

    protocol = Version.V16

    def __init__(self, station_id: str, action: str, payload: object, count: int) -> None:
        self.station_id = station_id
        self._template = call_template(action, payload)
        self._remaining = count
        self._sequence = 0
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._inbox.put_nowait(call_template(*MESSAGES["boot"]).frame(self._next_id()))
        self.answered = 0  # CALLRESULTs to the workload's CALLs
        self.booted = asyncio.Event()  # the boot is answered
        self.finished = asyncio.Event()

    def _next_id(self) -> str:
        self._sequence += 1
        return message_id(self._sequence)

    async def frames(self) -> AsyncIterator[str]:
        while (text := await self._inbox.get()) is not None:
            yield text

    async def send(self, text: str) -> None:
        call = peek_call(text)
        if call is not None:  # the gateway asks something: not part of the workload
            self._inbox.put_nowait(not_implemented(call[0]))
            return
        if not text.startswith('[3,"'):
            raise RuntimeError(f"the gateway answered with an error: {text}")
        if not self.booted.is_set():
            self.booted.set()
            return
        self.answered += 1
        self._send_next()

    def start(self) -> None:
        self._send_next()

    def _send_next(self) -> None:
        if self._remaining:
            self._remaining -= 1
            self._inbox.put_nowait(self._template.frame(self._next_id()))
        else:
            self.finished.set()

    async def close(self, code: int, reason: str) -> None:
        self._inbox.put_nowait(None)

    def hang_up(self) -> None:
        self._inbox.put_nowait(None)


class _Csms:
    """The upstream link: answers every 2.0.1 CALL at once, through a reader task as
    the websocket link delivers frames (one at a time, awaited)."""

    def __init__(self, answer_table: dict[str, object]) -> None:
        self._answers = answer_table
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()

    @property
    def connected(self) -> bool:
        return True

    async def run(
        self, on_frame: Callable[[str], Awaitable[None]], on_disconnect: Callable[[], None]
    ) -> None:
        while (text := await self._inbox.get()) is not None:
            await on_frame(text)

    async def wait_connected(self) -> None:
        return None

    async def send(self, text: str, *, wait: float) -> None:
        call = peek_call(text)
        if call is None:
            return  # an answer to a CSMS CALL: the stub asks nothing
        unique_id, action = call
        payload = self._answers.get(action)
        if payload is None:
            self._inbox.put_nowait(not_implemented(unique_id))
        else:
            self._inbox.put_nowait(orjson.dumps([3, unique_id, payload]).decode())

    async def close(self) -> None:
        self._inbox.put_nowait(None)


async def run(
    *,
    state: str,
    stations: int,
    messages: int,
    message: str,
    validate_inbound: bool,
    serving_gc: bool = True,
) -> HotPathResult:
    """Boot ``stations`` sessions, then time ``messages`` round trips over them all."""
    metrics = GatewayMetrics()
    store: Store = InstrumentedStore(open_store(state), metrics.store_duration)
    tables = load_tables()
    if serving_gc:  # as `serve` does once started
        tune_for_serving()
    settings = SessionSettings(validate_inbound=validate_inbound)
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    answer_table = answers(now)[V201]
    action, payload = MESSAGES[message]
    per_station = max(1, messages // stations)
    await store.open()
    try:
        chargers = [
            _Charger(f"HP{index:05d}", action, payload, per_station) for index in range(stations)
        ]
        sessions = [
            TranslatingSession(
                charger=charger,
                csms=_Csms(answer_table),
                store=store,
                tables=tables,
                metrics=metrics,
                settings=settings,
            )
            for charger in chargers
        ]
        # Boots are not timed: the clock starts when every station's boot is answered.
        tasks = [asyncio.create_task(session.run()) for session in sessions]
        await asyncio.gather(*(charger.booted.wait() for charger in chargers))
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        for charger in chargers:
            charger.start()
        await asyncio.gather(*(charger.finished.wait() for charger in chargers))
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
        round_trips = sum(charger.answered for charger in chargers)
        for charger in chargers:
            charger.hang_up()
        with contextlib.suppress(PeerUnavailable):
            await asyncio.gather(*tasks)
        return HotPathResult(round_trips, cpu, wall)
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.hotpath", description=__doc__)
    parser.add_argument("--state", default="memory://", help="store URL (default memory://)")
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--message", choices=sorted(MESSAGES), default="meter-values")
    parser.add_argument("--no-validate-inbound", dest="validate", action="store_false")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument(
        "--gc",
        choices=["serving", "default"],
        default="serving",
        help="the collector settings of `ocpp-gateway serve` (default) or CPython's",
    )
    options = parser.parse_args(argv)
    import uvloop  # noqa: PLC0415

    best: HotPathResult | None = None
    for attempt in range(options.repeat):
        state = options.state
        if state == "sqlite://":  # a fresh file per run
            state = f"sqlite:///{Path(tempfile.mkdtemp()) / 'hotpath.db'}"
        result = uvloop.run(
            run(
                state=state,
                stations=options.stations,
                messages=options.messages,
                message=options.message,
                validate_inbound=options.validate,
                serving_gc=options.gc == "serving",
            )
        )
        print(
            f"run {attempt + 1}: {result.round_trips} round trips, "
            f"{result.cpu_us_per_round_trip:.1f} µs CPU each, "
            f"{result.round_trips / result.wall_seconds:,.0f}/s",
            flush=True,
        )
        if best is None or result.cpu_us_per_round_trip < best.cpu_us_per_round_trip:
            best = result
    assert best is not None
    print(f"best: {best.cpu_us_per_round_trip:.1f} µs CPU per round trip (pid {os.getpid()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
