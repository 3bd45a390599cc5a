"""What the bench reads from ``/proc`` (Linux): CPU time, resident memory, the CPU model,
and the CPU pinning it applies.

Layer: bench. Standard library only.

CPU shares come from ``utime + stime`` of ``/proc/<pid>/stat`` (clock ticks) sampled at
both ends of a measurement window, so each process's share of one core is known for
exactly the window the generators measured, and the reader can see which side
saturated. Memory is ``VmRSS`` of ``/proc/<pid>/status``: what the process holds in RAM,
the figure a capacity plan needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

__all__ = [
    "Machine",
    "busy_percent",
    "core_ticks",
    "cpu_seconds",
    "describe_machine",
    "pin",
    "rss_kib",
]

_TICKS_PER_SECOND: Final = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Machine:
    """The hardware a run was measured on, printed with every result."""

    cpu_model: str
    cores: int
    usable_cpus: tuple[int, ...]
    kernel: str


def describe_machine() -> Machine:
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return Machine(
        cpu_model=model,
        cores=os.cpu_count() or 1,
        usable_cpus=tuple(sorted(os.sched_getaffinity(0))),
        kernel=os.uname().release,
    )


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds ``pid`` has used; None once it has gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            text = handle.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = text.rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS_PER_SECOND


def core_ticks() -> dict[int, tuple[int, int]]:
    """``{cpu: (busy ticks, all ticks)}`` from ``/proc/stat``, for every CPU.

    The machine's view, whoever used the CPU: comparing it with the bench processes'
    own shares shows when other work on the machine took a core.
    """
    ticks: dict[int, tuple[int, int]] = {}
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            for line in handle:
                name, _, rest = line.partition(" ")
                if not (name.startswith("cpu") and name[3:].isdigit()):
                    continue
                values = [int(value) for value in rest.split()]
                idle = values[3] + values[4]  # idle + iowait
                busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
                ticks[int(name[3:])] = (busy, busy + idle)
    except OSError:
        pass
    return ticks


def busy_percent(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], cpus: tuple[int, ...]
) -> float | None:
    """How busy ``cpus`` were between two :func:`core_ticks` readings (average, %)."""
    busy = total = 0
    for cpu in cpus:
        if cpu in before and cpu in after:
            busy += after[cpu][0] - before[cpu][0]
            total += after[cpu][1] - before[cpu][1]
    return round(100 * busy / total, 1) if total > 0 else None


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB; None once it has gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])  # the kernel reports kB meaning KiB
    except OSError:
        return None
    return None


def pin(pid: int, cpus: tuple[int, ...]) -> bool:
    """Restrict every thread of ``pid`` to ``cpus`` (affinity is per thread, and the
    gateway's SQLite store works in a thread of its own); threads started later inherit
    it. False when the kernel refuses: the run goes on unpinned and the report says so."""
    try:
        threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    pinned = False
    for tid in threads:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            continue  # a thread that has just ended
        pinned = True
    return pinned
