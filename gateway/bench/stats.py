"""Figures from raw samples: percentiles, rates, CPU shares, ratios.

Layer: bench. Standard library only; pure functions, no I/O.

Percentiles are nearest-rank over every sample of every generator (generators send raw
latencies, not their own percentiles, because percentiles do not average).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Latency", "cpu_percent", "latency_of", "ratio"]


@dataclass(frozen=True, slots=True)
class Latency:
    """Send-to-answer time percentiles in milliseconds, over ``samples`` round trips."""

    samples: int
    p50: float
    p90: float
    p99: float
    max: float


def _nearest_rank(ordered: Sequence[float], fraction: float) -> float:
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latency_of(chunks: Iterable[bytes]) -> Latency:
    """Merge the generators' ``array('d')`` latency bytes (seconds) into percentiles."""
    values = array("d")
    for chunk in chunks:
        values.frombytes(chunk)
    ordered = sorted(values)
    if not ordered:
        return Latency(0, math.nan, math.nan, math.nan, math.nan)
    return Latency(
        samples=len(ordered),
        p50=_nearest_rank(ordered, 0.50) * 1000,
        p90=_nearest_rank(ordered, 0.90) * 1000,
        p99=_nearest_rank(ordered, 0.99) * 1000,
        max=ordered[-1] * 1000,
    )


def cpu_percent(
    before: Mapping[str, float | None], after: Mapping[str, float | None], seconds: float
) -> dict[str, float]:
    """Each process's CPU time over the window as a percentage of one core."""
    shares: dict[str, float] = {}
    for name, start in before.items():
        end = after.get(name)
        if start is not None and end is not None and seconds > 0:
            shares[name] = round(100 * (end - start) / seconds, 1)
    return shares


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, None when either is unknown or the divisor is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    if math.isnan(numerator) or math.isnan(denominator):
        return None
    return numerator / denominator
