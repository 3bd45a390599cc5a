"""Where the bench's processes run, and how busy they are.

Layer: bench. Standard library only (through :mod:`gateway.bench.procfs`).

With two or more usable CPUs the target under test (gateway, naive proxy) gets the
first one to itself; generators, the stub CSMS and the orchestrator share the rest. For
the direct baseline the stub *is* the target, so it moves to the first CPU for those
phases. Measuring on a machine other people use, the bench also waits for its own
processes to go quiet between phases, and records how busy each core was (anyone's
work), so a figure taken while something else ate the CPU says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Final

from gateway.bench.parties import BenchError, Party
from gateway.bench.procfs import busy_percent, cpu_seconds, pin
from gateway.bench.stats import cpu_percent

__all__ = ["CpuPlan", "cpu_times", "quiesce"]

QUIET: Final = 5.0  # % of one core under which a process counts as idle
QUIET_INTERVAL: Final = 0.5
QUIET_TIMEOUT: Final = 120.0


def _cpus(cpus: tuple[int, ...]) -> str:
    return ("CPU " if len(cpus) == 1 else "CPUs ") + ",".join(str(cpu) for cpu in cpus)


class CpuPlan:
    """Target CPU versus load CPUs, applied to the parties of one run."""

    def __init__(self, usable: tuple[int, ...]) -> None:
        self.usable = usable
        pinned = len(usable) >= 2
        self.target_cpus: tuple[int, ...] = usable[:1] if pinned else ()
        self.load_cpus: tuple[int, ...] = usable[1:] if pinned else ()

    def apply(
        self, *, stub: Party, proxy: Party, gateway: Party | None, generators: list[Party]
    ) -> dict[str, str]:
        """Pin every party; returns the pinning as the report prints it."""
        if not self.target_cpus:
            return {"all": f"not pinned: only {len(self.usable)} usable CPU"}
        plan: list[tuple[str, int, tuple[int, ...]]] = [
            ("naive proxy", proxy.pid, self.target_cpus),
            ("stub CSMS", stub.pid, self.load_cpus),
            ("orchestrator", os.getpid(), self.load_cpus),
        ]
        if gateway is not None:
            plan.append(("gateway", gateway.pid, self.target_cpus))
        plan.extend((g.name, g.pid, self.load_cpus) for g in generators)
        refused = [name for name, pid, cpus in plan if not pin(pid, cpus)]
        target, load = _cpus(self.target_cpus), _cpus(self.load_cpus)
        pinning = {
            "gateway": target if gateway is not None else "not pinned (external --target)",
            "naive proxy": target,
            "stub CSMS": f"{load} ({target} while it is the direct target)",
            "generators": load,
            "orchestrator": load,
        }
        if refused:
            pinning["refused"] = ", ".join(refused)
        return pinning

    def place_stub(self, stub: Party, *, is_target: bool) -> None:
        if self.target_cpus:
            pin(stub.pid, self.target_cpus if is_target else self.load_cpus)

    def core_busy(
        self, before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
    ) -> dict[str, float]:
        """How busy the target CPU and the load CPUs were (anyone's work), in %."""
        groups = (
            {"target CPU": self.target_cpus, "load CPUs": self.load_cpus}
            if self.target_cpus
            else {"all CPUs": self.usable}
        )
        busy = {name: busy_percent(before, after, cpus) for name, cpus in groups.items()}
        return {name: value for name, value in busy.items() if value is not None}


def cpu_times(measured: Mapping[str, int]) -> dict[str, float | None]:
    """CPU seconds used so far by each named process."""
    return {name: cpu_seconds(pid) for name, pid in measured.items()}


def quiesce(measured: Mapping[str, int], check_alive: Callable[[], None]) -> float:
    """Wait until every process in ``measured`` is idle (below :data:`QUIET` % for
    :data:`QUIET_INTERVAL`); returns the seconds waited. A target still tearing down the
    last phase's sessions would otherwise take CPU from the next phase's target, which
    shares its core."""
    started = time.monotonic()
    before = cpu_times(measured)
    while True:
        time.sleep(QUIET_INTERVAL)
        check_alive()
        after = cpu_times(measured)
        busy = {
            name: share
            for name, share in cpu_percent(before, after, QUIET_INTERVAL).items()
            if share >= QUIET
        }
        if not busy:
            return max(0.0, time.monotonic() - started - QUIET_INTERVAL)
        if time.monotonic() - started > QUIET_TIMEOUT:
            shown = ", ".join(f"{name} {share:.0f} %" for name, share in busy.items())
            raise BenchError(
                f"the bench processes did not become idle within {QUIET_TIMEOUT:g} s after "
                f"the chargers left ({shown}); the next figures would be skewed"
            )
        before = after
