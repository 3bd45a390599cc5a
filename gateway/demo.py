"""``ocpp-gateway demo``: the built-in CSMS, the gateway and simulated 1.6 chargers.

Layer: top. Runs everything on loopback in one process and prints each frame that
crosses the gateway, so a new user sees 1.6J go in and 2.0.1 come out:

    12:00:01.234  DEMO-001  1.6  charger → gw    CALL   StatusNotification {...}
    12:00:01.236  DEMO-001  2.0.1   gw → csms    CALL   StatusNotification {...}
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import orjson

from gateway.app import Gateway
from gateway.config import Settings
from gateway.session.links import Side, TraceEvent
from gateway.sim.charger import ChargerSim
from gateway.sim.configuration import standard_configuration
from gateway.sim.csms import CsmsSim

_TYPES = {2: "CALL", 3: "RESULT", 4: "ERROR"}
_ARROWS = {
    (Side.CHARGER, "in"): "1.6    charger → gw  ",
    (Side.CSMS, "out"): "2.0.1       gw → csms",
    (Side.CSMS, "in"): "2.0.1     csms → gw  ",
    (Side.CHARGER, "out"): "1.6         gw → charger",
}


class LiveView:
    """Prints every frame crossing the gateway, one line each."""

    def __init__(self, out: TextIO, *, width: int = 200) -> None:
        self._out = out
        self._width = width
        self._colour = out.isatty()
        self.frames: Counter[tuple[Side, str]] = Counter()
        self._actions: dict[str, str] = {}  # message id -> action, to label answers

    def __call__(self, event: TraceEvent) -> None:
        self.frames[event.side, event.direction] += 1
        try:
            frame = orjson.loads(event.text)
            kind, unique_id = _TYPES.get(frame[0], "?"), str(frame[1])
            if kind == "CALL":
                self._actions[unique_id] = frame[2]
            action = self._actions.get(unique_id, "") if kind != "CALL" else frame[2]
            body = orjson.dumps(frame[-1] if kind != "ERROR" else frame[2:4]).decode()
        except (orjson.JSONDecodeError, IndexError, TypeError, KeyError):
            kind, action, body = "BAD", "", event.text
        stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
        arrow = _ARROWS[event.side, event.direction]
        line = f"{stamp}  {event.station_id:<9} {arrow}  {kind:<6} {action:<20} {body}"
        if len(line) > self._width:
            line = line[: self._width - 1] + "…"
        if self._colour:
            tint = "36" if event.side is Side.CHARGER else "33"
            line = f"\x1b[{tint}m{line}\x1b[0m"
        print(line, file=self._out, flush=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _charger_script(charger: ChargerSim, number: int, stop: asyncio.Event) -> None:
    """A 1.6 charger's day: boot, report, authorize, charge with meter values, stop."""
    await charger.connect()
    await charger.boot(
        vendor="DemoVendor",
        model=f"Wallbox-{number}",
        chargePointSerialNumber=f"SN-{number:05d}",
        firmwareVersion="1.6.0-demo",
    )
    await charger.status(0, "Available")
    for connector in (1, 2):
        await charger.status(connector, "Available")
    tag = f"04A2B3C4D5E6{number:02X}"
    await charger.authorize(tag)
    await charger.status(1, "Preparing")
    if number == 1:
        await charger.status(2, "Faulted", error_code="GroundFailure", info="RCD tripped")
        await charger.data_transfer("com.example.demo", "Hello", '{"from": "1.6 charger"}')
    energy = 1000 * number
    start = await charger.start_transaction(1, tag, energy, _now())
    transaction_id = start["transactionId"]
    await charger.status(1, "Charging")
    while not stop.is_set():
        energy += 250
        sample = {"value": str(energy), "context": "Sample.Periodic", "unit": "Wh"}
        power = {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"}
        await charger.meter_values(
            1, [{"timestamp": _now(), "sampledValue": [sample, power]}], transaction_id
        )
        await charger.heartbeat()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 4.0)
    await charger.status(1, "Finishing")
    await charger.stop_transaction(transaction_id, energy, _now(), idTag=tag, reason="Local")
    await charger.status(1, "Available")


async def _show_device_model(csms: CsmsSim, station_id: str, out: TextIO) -> None:
    """The CSMS reads the 1.6 charger's configuration as a 2.0.1 device model, and
    changes one variable (docs/device-model.md)."""
    await csms.call(station_id, "GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"})
    last = await csms.wait_for(
        "NotifyReport", station_id=station_id, where=lambda p: not p.get("tbc"), timeout=10
    )
    reports = csms.received("NotifyReport", station_id=station_id)
    variables = sum(len(m.payload.get("reportData", ())) for m in reports)
    answer = await csms.call(
        station_id,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "attributeValue": "120",
                }
            ]
        },
    )
    status = answer["setVariableResult"][0]["attributeStatus"]
    print(
        f"device model of {station_id}: {variables} variables in {len(reports)} NotifyReport "
        f"(seqNo 0..{last[-1].payload['seqNo']}); SetVariables HeartbeatInterval=120: {status}",
        file=out,
        flush=True,
    )


async def run_demo(
    *,
    duration: float = 20.0,
    chargers: int = 3,
    state_dir: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run the demo; 0 when no peer saw an invalid payload."""
    view = LiveView(out)
    with tempfile.TemporaryDirectory(prefix="ocpp-gateway-demo-") as tmp:
        state = Path(state_dir or tmp) / "state.db"
        async with CsmsSim(heartbeat_interval=60) as csms:
            settings = replace(
                Settings(),
                listen="127.0.0.1:0",
                upstream=csms.url,
                state=f"sqlite:///{state}",
                metrics="127.0.0.1:0",
                validate_outbound=True,
            )
            gateway = Gateway(settings, observer=view)
            await gateway.start()
            print(
                f"ocpp-gateway demo: CSMS {csms.url}, gateway ws://127.0.0.1:"
                f"{gateway.charger_port}/ocpp/<id>, metrics http://127.0.0.1:"
                f"{gateway.ops_port}/metrics, state {state}",
                file=out,
                flush=True,
            )
            url = f"ws://127.0.0.1:{gateway.charger_port}/ocpp"
            sims = [
                ChargerSim(url, f"DEMO-{n:03d}", handlers=standard_configuration().handlers())
                for n in range(1, chargers + 1)
            ]
            stop = asyncio.Event()
            started = time.monotonic()
            try:
                async with asyncio.TaskGroup() as tasks:
                    for number, sim in enumerate(sims, start=1):
                        tasks.create_task(_charger_script(sim, number, stop))
                    if sims:
                        await csms.wait_for("DataTransfer", timeout=10)
                        await csms.call(
                            sims[0].charge_point_id,
                            "DataTransfer",
                            {"vendorId": "com.example.csms", "data": {"hello": 1}},
                        )
                        await _show_device_model(csms, sims[0].charge_point_id, out)
                    remaining = duration - (time.monotonic() - started)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.Event().wait(), max(remaining, 0))
                    stop.set()
            finally:
                stop.set()
                for sim in sims:
                    await sim.close()
                await gateway.stop()
            violations = csms.violations + [v for sim in sims for v in sim.violations]
    print(
        f"\n{chargers} chargers, {duration:g} s: {view.frames[Side.CHARGER, 'in']} frames in "
        f"from chargers, {view.frames[Side.CSMS, 'out']} out to the CSMS, "
        f"{view.frames[Side.CSMS, 'in']} in from the CSMS, "
        f"{view.frames[Side.CHARGER, 'out']} out to chargers; "
        f"schema violations seen by the peers: {len(violations)}",
        file=out,
    )
    for violation in violations:
        print(f"  violation: {violation}", file=out)
    return 1 if violations else 0
