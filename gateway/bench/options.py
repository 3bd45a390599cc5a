"""The options of ``ocpp-gateway bench``: the argparse arguments and the frozen options.

Layer: bench. Standard library only. ``gateway.cli`` owns argv; this module only
contributes the sub-command's arguments (as ``config.add_settings_arguments`` does for
``serve``) and turns the parsed namespace into :class:`BenchOptions`.

Defaults left unset on the command line come from :data:`FULL` or, with ``--quick``,
from :data:`QUICK` (tiny numbers for the tests and a smoke check; figures from a quick
run mean nothing).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from typing import Final

from gateway.bench.frames import MESSAGES

__all__ = ["FULL", "QUICK", "WORKLOADS", "BenchOptions", "add_bench_arguments", "options_from"]

#: The workloads a charger can send (``boot`` is every charger's first message).
WORKLOADS: Final = tuple(name for name in MESSAGES if name != "boot")


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchOptions:
    chargers: int = 200
    idle_chargers: int = 1000
    duration: float = 5.0
    warmup: float = 1.0
    message: str = "meter-values"
    generators: int = len(os.sched_getaffinity(0))
    rate: float | None = None
    target: str | None = None
    target_pid: int | None = None
    state: str | None = None
    validate_inbound: bool = True
    json_path: str | None = None
    connect_concurrency: int = 100
    timeout: float = 10.0
    quick: bool = False


FULL: Final = BenchOptions()
QUICK: Final = BenchOptions(
    chargers=5, idle_chargers=10, duration=1.0, warmup=0.2, connect_concurrency=10, quick=True
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the bench options; unset ones stay absent so ``--quick`` can fill them."""
    add = parser.add_argument
    none = argparse.SUPPRESS
    add(
        "--chargers",
        type=_positive_int,
        default=none,
        metavar="N",
        help=f"chargers for the throughput and latency phases (default {FULL.chargers}; "
        f"quick {QUICK.chargers})",
    )
    add(
        "--idle-chargers",
        type=_positive_int,
        default=none,
        metavar="N",
        help=f"chargers connected and booted for the memory and boot-time phase "
        f"(default {FULL.idle_chargers}; quick {QUICK.idle_chargers})",
    )
    add(
        "--duration",
        type=_positive_float,
        default=none,
        metavar="SECONDS",
        help=f"measurement window of each load phase (default {FULL.duration:g}; "
        f"quick {QUICK.duration:g})",
    )
    add(
        "--warmup",
        type=_positive_float,
        default=none,
        metavar="SECONDS",
        help=f"load before each window that is not measured (default {FULL.warmup:g}; "
        f"quick {QUICK.warmup:g})",
    )
    add(
        "--message",
        choices=WORKLOADS,
        default=none,
        help="what chargers send under load: a 537-byte 1.6 MeterValues (default) or Heartbeat",
    )
    add(
        "--generators",
        type=_positive_int,
        default=none,
        metavar="N",
        help=f"load generator processes (default: one per usable core, here {FULL.generators})",
    )
    add(
        "--rate",
        type=_positive_float,
        default=none,
        metavar="PER_SECOND",
        help="CALLs per second in the latency phase (default: half the gateway's measured "
        "saturation rate)",
    )
    add(
        "--target",
        default=none,
        metavar="URL",
        help="bench an already running gateway at ws://host:port/path instead of starting "
        "one (memory figures need --target-pid)",
    )
    add(
        "--target-pid",
        type=_positive_int,
        default=none,
        metavar="PID",
        help="process id of the --target gateway, for its memory and CPU figures",
    )
    add(
        "--state",
        default=none,
        metavar="URL",
        help="state store of the started gateway (default: sqlite:///<temporary directory>/"
        "state.db, a fresh SQLite file on the local disk)",
    )
    add(
        "--no-validate-inbound",
        dest="validate_inbound",
        action="store_false",
        default=none,
        help="start the gateway with --no-validate-inbound (default: its default, on)",
    )
    add(
        "--json",
        dest="json_path",
        default=none,
        metavar="PATH",
        help="also write every figure as JSON to PATH (default: no file)",
    )
    add(
        "--connect-concurrency",
        type=_positive_int,
        default=none,
        metavar="N",
        help=f"connection handshakes in flight at once, over all generators "
        f"(default {FULL.connect_concurrency}; quick {QUICK.connect_concurrency})",
    )
    add(
        "--timeout",
        type=_positive_float,
        default=none,
        metavar="SECONDS",
        help=f"longest wait for a connection or an answer before the run fails "
        f"(default {FULL.timeout:g})",
    )
    add("--quick", action="store_true", default=none,
        help="tiny numbers for a smoke test (the figures mean nothing)")  # fmt: skip


def options_from(namespace: argparse.Namespace) -> BenchOptions:
    """The options given on the command line over the (full or quick) defaults."""
    given = {
        name: value
        for name, value in vars(namespace).items()
        if name in BenchOptions.__dataclass_fields__
    }
    base = QUICK if given.get("quick") else FULL
    options = replace(base, **given)
    if options.target_pid is not None and options.target is None:
        raise ValueError("--target-pid needs --target")
    if options.state is not None and options.target is not None:
        raise ValueError("--state applies to the gateway the bench starts, not to --target")
    if not options.validate_inbound and options.target is not None:
        raise ValueError(
            "--no-validate-inbound applies to the gateway the bench starts, not to --target"
        )
    return options
