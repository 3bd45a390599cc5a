"""The bench's orchestration: start the parties, run the phases, check, build the result.

Layer: bench. Must not import the gateway outside ``gateway.bench``.

Three targets get the same phases, one target at a time, in the same run:

``direct``   the chargers talk straight to the stub CSMS (1.6): the floor;
``naive``    through the naive pass-through proxy: the cost of any Python hop;
``gateway``  through ``ocpp-gateway serve``: the product.

Phases: a one-charger probe (fails fast on a dead target, and warms lazy imports so
they are not billed to the idle chargers); the idle fleet (connect and boot time, RSS
growth per charger); saturation (every charger keeps one CALL outstanding); latency at
a paced rate (default half the gateway's saturation rate, the same rate for every
target). Each load phase checks that every CALL got its CALLRESULT and that the stub
CSMS received exactly what the target answered for, so a figure is only ever printed
for a clean run.

Where each process runs and how busy it was is :mod:`gateway.bench.cpu`'s job.
"""

from __future__ import annotations

import dataclasses
import math
import resource
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from gateway.bench import loadgen, naive_proxy, stub_csms
from gateway.bench.child import raise_open_files_limit
from gateway.bench.control import (
    Connect,
    ConnectDone,
    Disconnect,
    LoadDone,
    Pace,
    PeerStats,
    Problems,
    Ready,
    Saturate,
    StatsRequest,
)
from gateway.bench.cpu import CpuPlan, cpu_times, quiesce
from gateway.bench.frames import MESSAGES, call_template
from gateway.bench.options import BenchOptions
from gateway.bench.parties import BenchError, Parties, Party
from gateway.bench.procfs import Machine, core_ticks, rss_kib
from gateway.bench.results import (
    BenchResult,
    BootFigures,
    LoadFigures,
    MemoryFigures,
    TargetFigures,
    capacity_of,
    compare,
    goals_of,
)
from gateway.bench.stats import cpu_percent, latency_of

__all__ = ["Bench", "check_file_budget"]

_FILES_PER_PROCESS: Final = 100  # descriptors a party uses besides its sockets
_SETTLE: Final = 0.5  # seconds between the last boot answer and the RSS reading
_POLL: Final = 0.1
_START_TIMEOUT: Final = 60.0  # interpreters starting on a busy machine
_V16, _V201 = "ocpp1.6", "ocpp2.0.1"


@dataclass(frozen=True, slots=True)
class _Target:
    name: str
    label: str
    url: str
    pid: int | None  # the process measured for memory and CPU (None: unknown)
    upstream_version: str | None  # what the stub receives from it (None: not the stub)


def check_file_budget(options: BenchOptions) -> None:
    """Fail before starting when the gateway could not even hold the sockets asked for
    (two per charger: the charger's and its upstream)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * max(options.idle_chargers, options.chargers) + _FILES_PER_PROCESS
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise BenchError(
            f"{max(options.idle_chargers, options.chargers)} chargers need about {needed} "
            f"open files in the gateway process, but the hard limit here is {hard}; raise "
            "it (ulimit -Hn, limits.conf, LimitNOFILE=) or ask for fewer chargers"
        )


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


class Bench:
    """One run: ``run()`` returns the result or raises :class:`BenchError`."""

    def __init__(
        self, options: BenchOptions, machine: Machine, parties: Parties, *, say: bool = True
    ) -> None:
        self.options = options
        self.machine = machine
        self.parties = parties
        self.say = say
        self.generators: list[Party] = []
        self.stub: Party | None = None
        self.measured: dict[str, int] = {}  # process name -> pid, for CPU shares
        self.pinning: dict[str, str] = {}
        self.cpus = CpuPlan(machine.usable_cpus)

    def _progress(self, text: str) -> None:
        if self.say:
            print(f"bench: {text}", flush=True)

    # --- set-up -----------------------------------------------------------------------

    def run(self) -> BenchResult:
        raise_open_files_limit()
        options = self.options
        self._progress(
            f"starting the stub CSMS, the naive proxy, "
            f"{'the gateway, ' if options.target is None else ''}"
            f"{options.generators} generator(s)"
        )
        parties = self.parties
        self.stub = stub = parties.spawn("stub CSMS", stub_csms.main)
        proxy = parties.spawn("naive proxy", naive_proxy.main)
        self.generators = [
            parties.spawn(f"generator {index}", loadgen.main) for index in range(options.generators)
        ]
        stub_url = f"ws://127.0.0.1:{self._ready(stub)}/ocpp"
        parties.send(proxy, stub_url)
        for index, generator in enumerate(self.generators):
            parties.send(generator, index)
        gateway: Party | None = None
        if options.target is None:
            gateway, gateway_url = parties.start_gateway(
                stub_url, _START_TIMEOUT, options.state, validate_inbound=options.validate_inbound
            )
            gateway_pid: int | None = gateway.pid
        else:
            gateway_url, gateway_pid = options.target.rstrip("/"), options.target_pid
        proxy_url = f"ws://127.0.0.1:{self._ready(proxy)}/ocpp"
        for generator in self.generators:
            self._ready(generator)
        self.measured = {party.name: party.pid for party in [stub, proxy, *self.generators]}
        if gateway_pid is not None:
            self.measured["gateway"] = gateway_pid
        self.pinning = self.cpus.apply(
            stub=stub, proxy=proxy, gateway=gateway, generators=self.generators
        )
        targets = [
            _Target("direct", "direct", stub_url, None, _V16),
            _Target("naive", "naive proxy", proxy_url, proxy.pid, _V16),
            _Target("gateway", "gateway", gateway_url, gateway_pid, _V201 if gateway else None),
        ]
        return self._measure(targets)

    def _ready(self, party: Party) -> int:
        reply = self.parties.collect({party: None}, _START_TIMEOUT)[party]
        if not isinstance(reply, Ready):
            raise BenchError(f"the {party.name} process answered {reply!r} instead of Ready")
        return reply.port

    # --- phases -----------------------------------------------------------------------

    def _measure(self, targets: list[_Target]) -> BenchResult:
        options = self.options
        for target in reversed(targets):  # the gateway first: a dead target fails fast
            self._progress(f"probing {target.label} at {target.url}")
            self._connect(target, "probe", 1)
            self._disconnect()
        self._quiesce()
        boots: dict[str, tuple[BootFigures, MemoryFigures | None]] = {}
        for target in targets:
            self._progress(f"{target.label}: {options.idle_chargers} idle chargers")
            boots[target.name] = self._idle(target)
        saturation: dict[str, LoadFigures] = {}
        for target in targets:
            self._progress(f"{target.label}: saturation with {options.chargers} chargers")
            saturation[target.name] = self._load(target, "sat", None)
        rate = options.rate or saturation["gateway"].per_second / 2
        paced: dict[str, LoadFigures] = {}
        for target in targets:
            self._progress(f"{target.label}: latency at {rate:.0f} CALLs/s")
            paced[target.name] = self._load(target, "paced", rate)
        stats = self._stub_stats()
        figures = {
            t.name: TargetFigures(
                name=t.name,
                label=t.label,
                url=t.url,
                boot=boots[t.name][0],
                memory=boots[t.name][1],
                saturation=saturation[t.name],
                paced=paced[t.name],
            )
            for t in targets
        }
        comparison = compare(figures)
        action, payload = MESSAGES[options.message]
        return BenchResult(
            machine=self.machine,
            pinning=self.pinning,
            options=options,
            message=action,
            frame_bytes=call_template(action, payload).size(),
            targets=figures,
            csms_received=stats.received,
            csms_samples=stats.samples,
            comparison=comparison,
            capacity=capacity_of(figures["gateway"]),
            goals=goals_of(figures, comparison, options),
        )

    def _connect(self, target: _Target, phase: str, count: int) -> BootFigures:
        options = self.options
        generators = len(self.generators)
        concurrency = math.ceil(options.connect_concurrency / generators)
        shares = _shares(count, generators)
        commands = [
            Connect(target.url, target.name, phase, share, concurrency, options.timeout)
            for share in shares
        ]
        rounds = math.ceil(max(shares) / concurrency)
        replies = self._ask_generators(commands, 2 * options.timeout * rounds + 30)
        done = [reply for reply in replies if isinstance(reply, ConnectDone)]
        problems = _merged(reply.problems for reply in done)
        booted = sum(reply.booted for reply in done)
        if problems.count or booted != count:
            raise BenchError(
                f"{target.label}: {count - booted} of {count} chargers did not connect and "
                f"boot at {target.url}:\n  " + "\n  ".join(problems.examples)
            )
        self._expect_upstream(target, phase, "BootNotification", count)
        active = [reply for reply in done if reply.requested]
        seconds = max(r.finished for r in active) - min(r.started for r in active)
        return BootFigures(count, seconds, count / seconds if seconds > 0 else math.inf)

    def _disconnect(self) -> None:
        replies = self._ask_generators([Disconnect()] * len(self.generators), 60)
        problems = _merged(reply for reply in replies if isinstance(reply, Problems))
        if problems.count:
            raise BenchError("closing the chargers failed:\n  " + "\n  ".join(problems.examples))

    def _quiesce(self) -> float:
        return quiesce(self.measured, self.parties.check_alive)

    def _place_stub(self, target: _Target) -> None:
        if self.stub is not None:
            self.cpus.place_stub(self.stub, is_target=target.name == "direct")

    def _idle(self, target: _Target) -> tuple[BootFigures, MemoryFigures | None]:
        self._place_stub(target)
        before = rss_kib(target.pid) if target.pid is not None else None
        boot = self._connect(target, "idle", self.options.idle_chargers)
        memory = None
        if target.pid is not None and before is not None:
            time.sleep(_SETTLE)
            after = rss_kib(target.pid)
            if after is None:
                self.parties.check_alive()
                raise BenchError(f"cannot read the memory of {target.label} (pid {target.pid})")
            memory = MemoryFigures(
                chargers=boot.chargers,
                rss_before_kib=before,
                rss_after_kib=after,
                per_charger_kib=(after - before) / boot.chargers,
            )
        self._disconnect()
        released = self._quiesce()
        return dataclasses.replace(boot, release_seconds=released), memory

    def _load(self, target: _Target, phase: str, rate: float | None) -> LoadFigures:
        options = self.options
        self._place_stub(target)
        self._connect(target, phase, options.chargers)
        start = time.monotonic() + options.warmup
        end = start + options.duration
        if rate is None:
            commands: list[object] = [Saturate(options.message, start, end, options.timeout)] * len(
                self.generators
            )
        else:
            chargers = _shares(options.chargers, len(self.generators))
            commands = [
                Pace(options.message, rate * share / options.chargers, start, end, options.timeout)
                for share in chargers
            ]
        for generator, command in zip(self.generators, commands, strict=True):
            self.parties.send(generator, command)
        _sleep_until(start)
        cpu_before, cores_before = cpu_times(self.measured), core_ticks()
        _sleep_until(end)
        cpu_after, cores_after = cpu_times(self.measured), core_ticks()
        replies = self._collect_generators(2 * options.timeout + 30)
        done = [reply for reply in replies if isinstance(reply, LoadDone)]
        problems = _merged(reply.problems for reply in done)
        round_trips = sum(r.round_trips for r in done)
        callresults = sum(r.callresults for r in done)
        call_errors = sum(r.call_errors for r in done)
        if problems.count or call_errors or round_trips != callresults:
            raise BenchError(
                f"{target.label}: {problems.count} failure(s) under load ({call_errors} "
                f"CALLERRORs, {callresults} CALLRESULTs for {round_trips} answers):\n  "
                + "\n  ".join(problems.examples)
            )
        window = sum(r.window_round_trips for r in done)
        if window == 0:
            raise BenchError(f"{target.label}: no CALL was answered inside the window")
        action = MESSAGES[options.message][0]
        delivered = self._expect_upstream(target, phase, action, callresults)
        self._disconnect()
        self._quiesce()
        shares = cpu_percent(cpu_before, cpu_after, end - start)
        shares["generators (sum)"] = round(
            sum(v for k, v in shares.items() if k.startswith("generator ")), 1
        )
        return LoadFigures(
            chargers=options.chargers,
            rate_asked=rate,
            window_seconds=end - start,
            sent=sum(r.sent for r in done),
            round_trips=round_trips,
            callresults=callresults,
            call_errors=call_errors,
            peer_calls=sum(r.peer_calls for r in done),
            window_round_trips=window,
            per_second=window / (end - start),
            latency_ms=latency_of(r.latencies for r in done),
            cpu_percent=shares,
            core_busy_percent=self.cpus.core_busy(cores_before, cores_after),
            delivered_upstream=delivered,
        )

    # --- checks -----------------------------------------------------------------------

    def _stub_stats(self) -> PeerStats:
        assert self.stub is not None
        self.parties.send(self.stub, StatsRequest())
        reply = self.parties.collect({self.stub: None}, 30)[self.stub]
        if not isinstance(reply, PeerStats):
            raise BenchError(f"the stub CSMS answered {reply!r} instead of its counters")
        if reply.problems.count:
            raise BenchError(
                "the stub CSMS received frames it could not answer:\n  "
                + "\n  ".join(reply.problems.examples)
            )
        return reply

    def _expect_upstream(self, target: _Target, phase: str, action: str, count: int) -> int | None:
        """Wait until the stub CSMS has received ``count`` ``action`` CALLs of this phase
        (the gateway's outbox sends MeterValues after answering the charger); fail when
        they do not all arrive, or more do."""
        if target.upstream_version is None:
            return None
        tag = f"{target.name}.{phase}"
        deadline = time.monotonic() + 3 * self.options.timeout
        while True:
            received = self._stub_stats().received
            got = received.get(tag, {}).get(target.upstream_version, {}).get(action, 0)
            if got == count:
                return got
            if got > count or time.monotonic() > deadline:
                raise BenchError(
                    f"{target.label}: the chargers got {count} answers to {action} but the "
                    f"CSMS received {got} {target.upstream_version} {action} CALLs"
                )
            time.sleep(_POLL)

    def _ask_generators(self, commands: Sequence[object], timeout: float) -> list[object]:
        return self.parties.ask(self.generators, commands, timeout)

    def _collect_generators(self, timeout: float) -> list[object]:
        replies = self.parties.collect(dict.fromkeys(self.generators), timeout)
        return [replies[generator] for generator in self.generators]


def _merged(parts: Iterable[Problems]) -> Problems:
    merged = Problems()
    for part in parts:
        merged.merge(part)
    return merged
