"""The bench's readable output: a table of figures and ratios, the issue's targets, a
capacity estimate, and what the stub CSMS received.

Layer: bench. Standard library only; pure (returns text).
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from typing import Final

from gateway.bench.results import (
    HEARTBEAT_INTERVAL,
    KIB_PER_GIB,
    METER_VALUES_INTERVAL,
    BenchResult,
    LoadFigures,
    TargetFigures,
)

__all__ = ["render"]

_ORDER: Final = ("direct", "naive", "gateway")
_PROCESS_OF: Final = {"direct": "stub CSMS", "naive": "naive proxy", "gateway": "gateway"}
_LABEL: Final = 40
_CELL: Final = 16
_BUSY: Final = 85.0  # % of one core above which a side counts as saturated


def _number(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _delta(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f} ms"


def _row(label: str, cells: list[str]) -> str:
    return label.ljust(_LABEL) + "".join(cell.rjust(_CELL) for cell in cells)


def _per_target(
    targets: dict[str, TargetFigures], pick: Callable[[TargetFigures], str]
) -> list[str]:
    return [pick(targets[name]) for name in _ORDER]


def _cpu(load: LoadFigures, process: str) -> str:
    return _number(load.cpu_percent.get(process), 1)


def _cpu_rows(targets: dict[str, TargetFigures], phase: str) -> list[str]:
    def load(target: TargetFigures) -> LoadFigures:
        return target.saturation if phase == "sat" else target.paced

    return [
        _row(
            "  CPU % of one core: target",
            _per_target(targets, lambda t: _cpu(load(t), _PROCESS_OF[t.name])),
        ),
        _row(
            "                     stub CSMS",
            _per_target(
                targets, lambda t: "-" if t.name == "direct" else _cpu(load(t), "stub CSMS")
            ),
        ),
        _row(
            "                     generators (sum)",
            _per_target(targets, lambda t: _cpu(load(t), "generators (sum)")),
        ),
        _row(
            "  core busy %, any process: target/load",
            _per_target(targets, lambda t: _core_busy(load(t))),
        ),
    ]


def _core_busy(load: LoadFigures) -> str:
    busy = load.core_busy_percent
    if "all CPUs" in busy:
        return f"{busy['all CPUs']:.0f} (all)"
    return f"{_number(busy.get('target CPU'))} / {_number(busy.get('load CPUs'))}"


def _saturated_side(target: TargetFigures) -> str:
    """Which side ran out of CPU at saturation: the target's core, or the load core
    (generators, plus the stub CSMS when it is not the target itself)."""
    shares = target.saturation.cpu_percent
    own = shares.get(_PROCESS_OF[target.name])
    load = shares.get("generators (sum)", 0.0)
    if target.name != "direct":
        load += shares.get("stub CSMS", 0.0)
    if own is not None and own >= _BUSY:
        return "both CPUs" if load >= _BUSY else "target CPU"
    if load >= _BUSY:
        return "load CPU"
    busy = target.saturation.core_busy_percent
    if busy.get("target CPU", 0.0) >= _BUSY or busy.get("load CPUs", 0.0) >= _BUSY:
        return "shared CPU (2)"
    return "no CPU (1)"


def _header(result: BenchResult) -> list[str]:
    machine, options = result.machine, result.options
    cpus = ",".join(str(cpu) for cpu in machine.usable_cpus)
    pins = "; ".join(f"{name}: {where}" for name, where in result.pinning.items())
    return [
        f"ocpp-gateway bench on {machine.cpu_model}, {machine.cores} cores (usable CPUs "
        f"{cpus}), Linux {machine.kernel}, Python {platform.python_version()}",
        f"pinning: {pins}",
        f"workload: 1.6 {result.message}, {result.frame_bytes}-byte frames; "
        f"{options.chargers} chargers under load, {options.idle_chargers} idle; "
        f"{options.duration:g} s windows after {options.warmup:g} s warm-up; "
        f"{options.generators} generator process(es)",
        f"gateway: {result.targets['gateway'].url}; state "
        f"{options.state or 'sqlite (a fresh file in a temporary directory)'}; inbound "
        f"validation {'on' if options.validate_inbound else 'off (--no-validate-inbound)'}"
        if options.target is None
        else f"gateway: external, {options.target}",
    ]


def _table(result: BenchResult) -> list[str]:
    targets, comparison = result.targets, result.comparison
    gateway = targets["gateway"]
    rate = gateway.paced.rate_asked or 0.0
    idle = gateway.boot.chargers
    lines = [
        _row("", ["direct", "naive proxy", "gateway", "gw vs direct", "gw vs naive"]),
        _row(
            "saturation: round trips/s",
            [
                *_per_target(targets, lambda t: _number(t.saturation.per_second)),
                _times(comparison.throughput_vs_direct),
                _times(comparison.throughput_vs_naive),
            ],
        ),
        _row(
            "  latency p50 / p99 ms",
            _per_target(
                targets,
                lambda t: (
                    f"{_number(t.saturation.latency_ms.p50, 2)} / "
                    f"{_number(t.saturation.latency_ms.p99, 1)}"
                ),
            ),
        ),
        *_cpu_rows(targets, "sat"),
        _row("  saturated side", _per_target(targets, _saturated_side)),
        _row(
            f"paced at {rate:,.0f}/s: achieved/s",
            _per_target(targets, lambda t: _number(t.paced.per_second)),
        ),
        _row(
            "  latency p50 ms",
            [
                *_per_target(targets, lambda t: _number(t.paced.latency_ms.p50, 2)),
                _delta(comparison.added_p50_ms),
                _delta(_minus(comparison.added_p50_ms, comparison.naive_added_p50_ms)),
            ],
        ),
        _row(
            "  latency p99 ms",
            [
                *_per_target(targets, lambda t: _number(t.paced.latency_ms.p99, 2)),
                _delta(comparison.added_p99_ms),
                _delta(_minus(comparison.added_p99_ms, comparison.naive_added_p99_ms)),
            ],
        ),
        *_cpu_rows(targets, "paced"),
        _row(
            "memory per idle charger, KiB",
            [
                *_per_target(
                    targets, lambda t: _number(t.memory.per_charger_kib, 1) if t.memory else "-"
                ),
                "-",
                _times(comparison.memory_vs_naive),
            ],
        ),
        _row(
            "  RSS before -> after, MiB",
            _per_target(
                targets,
                lambda t: (
                    f"{t.memory.rss_before_kib / 1024:.0f} -> {t.memory.rss_after_kib / 1024:.0f}"
                    if t.memory
                    else "-"
                ),
            ),
        ),
        _row(
            f"connect + boot {idle:,} chargers, s",
            [
                *_per_target(targets, lambda t: _number(t.boot.seconds, 2)),
                _times(comparison.boot_time_vs_direct),
                _times(comparison.boot_time_vs_naive),
            ],
        ),
        _row(
            "  idle again after they left, s",
            _per_target(targets, lambda t: _number(t.boot.release_seconds, 1)),
        ),
    ]
    return lines


def _minus(left: float | None, right: float | None) -> float | None:
    return None if left is None or right is None else left - right


def _footnotes(result: BenchResult) -> list[str]:
    sides = {_saturated_side(result.targets[name]) for name in _ORDER}
    notes = []
    if "no CPU (1)" in sides:
        notes.append(
            f"(1) no core was above {_BUSY:.0f} % busy: the target waited on something "
            "else: too few chargers to keep it busy, or (the gateway) its durable outbox "
            "syncing to disk before it answers"
        )
    if "shared CPU (2)" in sides:
        notes.append(
            f"(2) a core was above {_BUSY:.0f} % busy, but not with the bench's processes: "
            "other work on the machine took CPU the figures would otherwise have had"
        )
    return notes


def _goals(result: BenchResult) -> list[str]:
    lines = ["issue targets:"]
    for goal in result.goals:
        lines.append(f"  {goal.name:<18}{goal.target:<48}{goal.measured}  [{goal.status.upper()}]")
    return lines


def _capacity(result: BenchResult) -> list[str]:
    capacity = result.capacity
    gateway = result.targets["gateway"]
    per = capacity.messages_per_charger_second
    lines = [
        f"capacity (gateway; a Heartbeat every {HEARTBEAT_INTERVAL:g} s and a MeterValues "
        f"every {METER_VALUES_INTERVAL:g} s = {per:.4f} messages/s per charger, each priced "
        f"as a {result.message}):"
    ]
    rate = gateway.saturation.per_second
    lines.append(
        f"  per gateway process: {rate:,.0f}/s at saturation / {per:.4f} = "
        f"{capacity.chargers_per_process:,.0f} chargers; at half load "
        f"{capacity.chargers_per_process_at_half:,.0f}"
    )
    cpu = gateway.saturation.cpu_percent.get("gateway")
    if capacity.cpu_ms_per_message is not None and cpu is not None:
        lines.append(
            f"  CPU alone: {cpu:.0f} % of a core / {rate:,.0f}/s = "
            f"{capacity.cpu_ms_per_message:.3f} ms per message -> 1000 / "
            f"{capacity.cpu_ms_per_message:.3f} / {per:.4f} = "
            f"{capacity.chargers_per_core_cpu_only:,.0f} chargers per core"
            + (
                "  (the gateway was not CPU-bound at saturation: it waited on something "
                "else, e.g. the state store's disk syncs)"
                if cpu < 80
                else ""
            )
        )
    else:
        lines.append("  CPU alone: not measured (no CPU figure for the target)")
    if capacity.chargers_per_gib is not None and gateway.memory is not None:
        lines.append(
            f"  per GiB: {KIB_PER_GIB:,} KiB / {gateway.memory.per_charger_kib:.1f} KiB = "
            f"{capacity.chargers_per_gib:,.0f} chargers (idle, beyond the process baseline "
            f"of {gateway.memory.rss_before_kib / 1024:.0f} MiB)"
        )
    else:
        lines.append("  per GiB: not measured (no memory figure for the target)")
    return lines


def _received(result: BenchResult) -> list[str]:
    lines = ["the stub CSMS received (CALLs per phase, as the target sent them):"]
    for tag in sorted(result.csms_received):
        for version, actions in sorted(result.csms_received[tag].items()):
            counts = ", ".join(f"{action} {count:,}" for action, count in sorted(actions.items()))
            lines.append(f"  {tag:<16}{version:<11}{counts}")
    return lines


def render(result: BenchResult) -> str:
    sections = [
        _header(result),
        _table(result) + _footnotes(result),
        _goals(result),
        _capacity(result),
        _received(result),
    ]
    return "\n\n".join("\n".join(section) for section in sections)
