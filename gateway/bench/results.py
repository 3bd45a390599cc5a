"""The figures of a finished run, what they mean against the issue's targets, and JSON.

Layer: bench. Standard library only; pure (no I/O).

Only a run that finished cleanly becomes a :class:`BenchResult` (the runner raises
before building one otherwise), so everything here may assume complete, error-free
counts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Final

from gateway.bench.options import BenchOptions
from gateway.bench.procfs import Machine
from gateway.bench.stats import Latency, ratio

__all__ = [
    "BenchResult",
    "BootFigures",
    "Capacity",
    "Comparison",
    "Goal",
    "LoadFigures",
    "MemoryFigures",
    "TargetFigures",
    "capacity_of",
    "compare",
    "goals_of",
]

KIB_PER_GIB: Final = 1024 * 1024
#: The fleet shape capacity is planned for: a Heartbeat every 300 s and a MeterValues
#: every 60 s per charger (every message priced as the measured workload message).
HEARTBEAT_INTERVAL: Final = 300.0
METER_VALUES_INTERVAL: Final = 60.0


@dataclass(frozen=True, slots=True)
class BootFigures:
    """``chargers`` connected and booted at once, from the first handshake to the last
    BootNotification answer."""

    chargers: int
    seconds: float
    per_second: float
    #: After they all disconnected: seconds until the target's CPU was idle again
    #: (None for the one-charger probe and the load phases, where it is not reported).
    release_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class MemoryFigures:
    """RSS of the target process before the idle chargers connected and once all of
    them were booted."""

    chargers: int
    rss_before_kib: int
    rss_after_kib: int
    per_charger_kib: float


@dataclass(frozen=True, slots=True)
class LoadFigures:
    """One load phase: saturation (``rate_asked`` None) or paced."""

    chargers: int
    rate_asked: float | None
    window_seconds: float
    sent: int
    round_trips: int
    callresults: int
    call_errors: int
    peer_calls: int
    window_round_trips: int
    per_second: float
    latency_ms: Latency
    cpu_percent: dict[str, float]
    core_busy_percent: dict[str, float]  # "target CPU" / "load CPUs" (or "all CPUs"), anyone's work
    delivered_upstream: int | None  # what the stub CSMS received (None: not observable)


@dataclass(frozen=True, slots=True)
class TargetFigures:
    name: str  # direct | naive | gateway
    label: str
    url: str
    boot: BootFigures
    memory: MemoryFigures | None
    saturation: LoadFigures
    paced: LoadFigures


@dataclass(frozen=True, slots=True)
class Comparison:
    """The gateway against the two baselines (ratios are gateway / baseline)."""

    throughput_vs_direct: float | None
    throughput_vs_naive: float | None
    naive_throughput_vs_direct: float | None
    added_p50_ms: float | None  # gateway minus direct, at the paced rate
    added_p99_ms: float | None
    naive_added_p50_ms: float | None
    naive_added_p99_ms: float | None
    memory_vs_naive: float | None
    boot_time_vs_direct: float | None
    boot_time_vs_naive: float | None


@dataclass(frozen=True, slots=True)
class Capacity:
    """Chargers one gateway process (single-threaded: at most one core) and one GiB can
    carry, derived from the figures.

    ``chargers_per_process`` comes from the saturation rate, whatever limited it (CPU,
    or waiting for the state store's disk syncs); ``chargers_per_core_cpu_only`` from the
    CPU time per message alone, i.e. what one core would carry if nothing else limited it.
    """

    messages_per_charger_second: float
    cpu_ms_per_message: float | None
    chargers_per_process: float
    chargers_per_process_at_half: float
    chargers_per_core_cpu_only: float | None
    chargers_per_gib: float | None


@dataclass(frozen=True, slots=True)
class Goal:
    """One target from the issue and where this run stands against it."""

    name: str
    target: str
    measured: str
    status: str  # met | not met | not measured | extrapolated


@dataclass(frozen=True, slots=True)
class BenchResult:
    machine: Machine
    pinning: dict[str, str]
    options: BenchOptions
    message: str
    frame_bytes: int
    targets: dict[str, TargetFigures]
    csms_received: dict[str, dict[str, dict[str, int]]]
    csms_samples: dict[str, str]
    comparison: Comparison
    capacity: Capacity
    goals: tuple[Goal, ...]

    def to_json(self) -> dict[str, object]:
        """Every figure; NaN and infinity as null (JSON has neither)."""
        data = _without_nan(dataclasses.asdict(self))
        assert isinstance(data, dict)
        return data


def _without_nan(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(item) for item in value]
    return value


def _minus(left: float, right: float) -> float | None:
    return None if math.isnan(left) or math.isnan(right) else left - right


def compare(targets: dict[str, TargetFigures]) -> Comparison:
    direct, naive, gateway = targets["direct"], targets["naive"], targets["gateway"]
    d, n, g = direct.paced.latency_ms, naive.paced.latency_ms, gateway.paced.latency_ms
    return Comparison(
        throughput_vs_direct=ratio(gateway.saturation.per_second, direct.saturation.per_second),
        throughput_vs_naive=ratio(gateway.saturation.per_second, naive.saturation.per_second),
        naive_throughput_vs_direct=ratio(naive.saturation.per_second, direct.saturation.per_second),
        added_p50_ms=_minus(g.p50, d.p50),
        added_p99_ms=_minus(g.p99, d.p99),
        naive_added_p50_ms=_minus(n.p50, d.p50),
        naive_added_p99_ms=_minus(n.p99, d.p99),
        memory_vs_naive=ratio(
            gateway.memory.per_charger_kib if gateway.memory else None,
            naive.memory.per_charger_kib if naive.memory else None,
        ),
        boot_time_vs_direct=ratio(gateway.boot.seconds, direct.boot.seconds),
        boot_time_vs_naive=ratio(gateway.boot.seconds, naive.boot.seconds),
    )


def capacity_of(gateway: TargetFigures) -> Capacity:
    per_charger = 1 / HEARTBEAT_INTERVAL + 1 / METER_VALUES_INTERVAL
    load = gateway.saturation
    cpu = load.cpu_percent.get("gateway")
    cpu_ms = 10 * cpu / load.per_second if cpu else None  # (cpu/100 s per s) / (msgs per s)
    memory = gateway.memory
    return Capacity(
        messages_per_charger_second=per_charger,
        cpu_ms_per_message=cpu_ms,
        chargers_per_process=load.per_second / per_charger,
        chargers_per_process_at_half=load.per_second / per_charger / 2,
        chargers_per_core_cpu_only=1000 / cpu_ms / per_charger if cpu_ms else None,
        chargers_per_gib=KIB_PER_GIB / memory.per_charger_kib
        if memory and memory.per_charger_kib > 0
        else None,
    )


def _status(ok: bool) -> str:
    return "met" if ok else "not met"


def goals_of(
    targets: dict[str, TargetFigures], comparison: Comparison, options: BenchOptions
) -> tuple[Goal, ...]:
    """The issue's targets, judged only on what this run measured."""
    gateway = targets["gateway"]
    goals: list[Goal] = []
    throughput = comparison.throughput_vs_naive
    # The bar depends on the mode: >= 0.6x with inbound validation, 0.85x without.
    bar, mode = (0.6, "on") if options.validate_inbound else (0.85, "off")
    goals.append(
        Goal(
            "throughput",
            f">= {bar}x the naive proxy, inbound validation {mode}",
            "n/a" if throughput is None else f"{throughput:.2f}x (validation {mode})",
            "not measured" if throughput is None else _status(throughput >= bar),
        )
    )
    added = comparison.added_p99_ms
    half = options.rate is None
    goals.append(
        Goal(
            "added latency",
            "p99 <= 5 ms at half saturation",
            "n/a"
            if added is None
            else f"{added:+.2f} ms at {gateway.paced.rate_asked or 0:.0f}/s"
            + ("" if half else " (--rate given: not half saturation)"),
            "not measured" if added is None else _status(added <= 5.0),
        )
    )
    memory = gateway.memory
    goals.append(
        Goal(
            "memory",
            "<= 40 KiB per connected charger",
            "n/a" if memory is None else f"{memory.per_charger_kib:.1f} KiB",
            "not measured" if memory is None else _status(memory.per_charger_kib <= 40),
        )
    )
    boot = gateway.boot
    if boot.chargers >= 10_000:
        seconds = boot.seconds * 10_000 / boot.chargers
        goals.append(
            Goal(
                "connect and boot",
                "10,000 chargers in <= 20 s",
                f"{boot.chargers} in {boot.seconds:.1f} s",
                _status(seconds <= 20),
            )
        )
    else:
        goals.append(
            Goal(
                "connect and boot",
                "10,000 chargers in <= 20 s",
                f"{boot.chargers} in {boot.seconds:.2f} s ({boot.per_second:.0f}/s; 10,000 "
                f"would take {10_000 / boot.per_second:.1f} s if it scaled linearly)",
                "extrapolated",
            )
        )
    if memory is not None and memory.chargers >= 50_000:
        goals.append(Goal("idle fleet", "50,000 idle chargers held", "held", "met"))
    else:
        held = "n/a" if memory is None else f"{memory.chargers} held"
        estimate = (
            ""
            if memory is None
            else f"; 50,000 would need about {50_000 * memory.per_charger_kib / KIB_PER_GIB:.1f}"
            " GiB and 100,000 sockets"
        )
        goals.append(
            Goal("idle fleet", "50,000 idle chargers held", held + estimate, "not measured")
        )
    return tuple(goals)
