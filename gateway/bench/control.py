"""The messages the bench orchestrator and its child processes exchange over pipes.

Layer: bench. Standard library only.

Commands and replies are small frozen dataclasses pickled over a
:func:`multiprocessing.Pipe`: one request, one reply, so a child that stops answering
or dies is noticed at once by the orchestrator instead of leaving a phase half-measured.
All times are ``time.monotonic()`` values: on Linux that is ``CLOCK_MONOTONIC``, one
clock for every process on the machine, so the orchestrator can hand the generators an
absolute measurement window and sample ``/proc`` at the same instants.

Station ids carry the target and the phase (``gateway.sat.g1.17``), so the stub CSMS
can count what it received per target and phase without any other channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "EXAMPLES_KEPT",
    "Connect",
    "ConnectDone",
    "Disconnect",
    "Failed",
    "LoadDone",
    "Pace",
    "PeerStats",
    "Problems",
    "Ready",
    "Saturate",
    "StatsRequest",
    "Stop",
    "station_id",
    "tag_of",
]

EXAMPLES_KEPT: Final = 5  # problem descriptions kept verbatim; the rest are only counted


def station_id(target: str, phase: str, generator: int, index: int) -> str:
    """The identity of one bench charger (the gateway accepts ``A-Z a-z 0-9 . -``)."""
    return f"{target}.{phase}.g{generator}.{index}"


def tag_of(station: str) -> str:
    """``target.phase`` of a bench station id; the id itself for foreign ids."""
    parts = station.split(".", 2)
    return f"{parts[0]}.{parts[1]}" if len(parts) == 3 else station


@dataclass(slots=True)
class Problems:
    """Failures seen in a phase: a count and the first few descriptions."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(text)

    def merge(self, other: Problems) -> None:
        self.count += other.count
        room = EXAMPLES_KEPT - len(self.examples)
        self.examples.extend(other.examples[:room])


# --- child -> orchestrator ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ready:
    """The child is up; servers say which loopback port they listen on (0 otherwise)."""

    port: int = 0


@dataclass(frozen=True, slots=True)
class Failed:
    """A child could not carry out a command; ``detail`` is the traceback text."""

    detail: str


@dataclass(frozen=True, slots=True)
class ConnectDone:
    """A generator's share of a connect (and boot) phase."""

    requested: int
    connected: int
    booted: int
    started: float
    finished: float
    problems: Problems


@dataclass(frozen=True, slots=True)
class LoadDone:
    """A generator's share of a load phase.

    ``round_trips`` counts every CALL answered with a frame carrying its id (CALLRESULT
    or CALLERROR), ``callresults`` the CALLRESULTs among them; in a clean run they are
    equal. ``window_*`` covers only the answers that arrived inside the window;
    ``latencies`` are those answers' send-to-answer seconds, as ``array('d')`` bytes.
    """

    sent: int
    round_trips: int
    callresults: int
    call_errors: int
    window_round_trips: int
    latencies: bytes
    peer_calls: int
    problems: Problems


@dataclass(frozen=True, slots=True)
class PeerStats:
    """What a server child (stub CSMS, naive proxy) saw.

    ``received`` is ``{tag: {subprotocol: {action: count}}}`` of the CALLs it got;
    ``samples`` keeps the first frame of each ``"tag subprotocol action"``.
    """

    connections: int
    received: dict[str, dict[str, dict[str, int]]]
    samples: dict[str, str]
    problems: Problems


# --- orchestrator -> child ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connect:
    """Open ``count`` chargers ``<url>/<station_id(target, phase, generator, i)>``, boot
    each (BootNotification, Accepted expected), at most ``concurrency`` at a time."""

    url: str
    target: str
    phase: str
    count: int
    concurrency: int
    timeout: float


@dataclass(frozen=True, slots=True)
class Saturate:
    """Every connected charger keeps one CALL outstanding until ``window_end``."""

    message: str
    window_start: float
    window_end: float
    timeout: float


@dataclass(frozen=True, slots=True)
class Pace:
    """Send ``rate`` CALLs per second (this generator's share) until ``window_end``."""

    message: str
    rate: float
    window_start: float
    window_end: float
    timeout: float


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close every charger this generator holds."""


@dataclass(frozen=True, slots=True)
class StatsRequest:
    """Ask a server child for its :class:`PeerStats`."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Exit the child process."""
