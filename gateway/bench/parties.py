"""Starting, talking to and stopping the bench's processes ("parties").

Layer: bench. Must not import the gateway outside ``gateway.bench``: the gateway under
test is started as a real ``ocpp-gateway serve`` process, as an operator runs it.

Every exchange with a child watches all the others too: if any party dies, or a child
does not answer within its deadline, the run stops with a :class:`BenchError` naming
the party (and, for the gateway, the end of its log), so no figure is ever computed
from a run that broke half-way.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Final

from gateway.bench.control import Failed, Stop

__all__ = ["BenchError", "Parties", "Party"]

_POLL: Final = 0.25  # seconds between liveness checks while waiting for an answer
_LOG_TAIL: Final = 20  # gateway log lines shown when it dies
_STOP_GRACE: Final = 15.0  # seconds a party gets to exit before it is killed


class BenchError(Exception):
    """The run cannot give trustworthy figures; the message says what went wrong."""


@dataclass(eq=False)
class Party:
    """One process of the bench: a spawned child with a control pipe, or the gateway."""

    name: str
    pid: int
    conn: Connection | None = None
    process: BaseProcess | None = None
    popen: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def exit_code(self) -> int | None:
        """None while the process runs."""
        if self.popen is not None:
            return self.popen.poll()
        assert self.process is not None
        return None if self.process.is_alive() else self.process.exitcode

    def death(self) -> str:
        """Why the run stops, for a party that has exited or broke its pipe."""
        code = self.exit_code()
        if code is None:
            text = f"the {self.name} process (pid {self.pid}) broke off its control pipe"
        else:
            text = f"the {self.name} process (pid {self.pid}) exited with code {code}"
        if self.log_path is not None and self.log_path.exists():
            lines = self.log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL:]
            text += "; the end of its log:\n  " + "\n  ".join(lines)
        return text


def free_port() -> int:
    """A loopback port nobody listens on now (the gateway binds it right after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Parties:
    """The processes of one run; :meth:`close` stops every one of them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Party] = []
        self._context = multiprocessing.get_context("spawn")

    # --- starting ---------------------------------------------------------------------

    def spawn(self, name: str, main: Callable[[Connection], None]) -> Party:
        """Start ``main`` in a fresh interpreter (``spawn``: nothing inherited but the
        pipe). It answers :class:`~gateway.bench.control.Ready` once set up; collect
        that with :meth:`collect`, so several children start at the same time."""
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=main, args=(theirs,), name=name, daemon=True)
        process.start()
        theirs.close()
        assert process.pid is not None
        party = Party(name, process.pid, conn=ours, process=process)
        self.started.append(party)
        return party

    def send(self, party: Party, message: object) -> None:
        assert party.conn is not None
        try:
            party.conn.send(message)
        except OSError:
            self.check_alive()
            raise BenchError(f"cannot reach the {party.name} process") from None

    def start_gateway(
        self,
        upstream: str,
        timeout: float,
        state: str | None = None,
        *,
        validate_inbound: bool = True,
    ) -> tuple[Party, str]:
        """``ocpp-gateway serve`` as a subprocess, by default with its own SQLite file,
        and default settings (``OCPP_GATEWAY_*`` variables are not passed on, so the
        figures are the defaults'); returns the party and the charger URL once it
        accepts connections."""
        listen, metrics = free_port(), free_port()
        log_path = self.workdir / "gateway.log"
        command = [
            sys.executable, "-m", "gateway.cli", "serve",
            "--listen", f"127.0.0.1:{listen}",
            "--upstream", upstream,
            "--state", state or f"sqlite:///{self.workdir / 'state.db'}",
            "--metrics", f"127.0.0.1:{metrics}",
            "--log-level", "warning",
            # The bench measures capacity: chargers at saturation send far above the
            # per-charger abuse limit, which would close them.
            "--max-message-rate", "0",
        ]  # fmt: skip
        if not validate_inbound:
            command.append("--no-validate-inbound")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_GATEWAY_")}
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        party = Party("gateway", popen.pid, popen=popen, log_path=log_path)
        self.started.append(party)
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", listen), timeout=_POLL):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"the gateway did not listen on 127.0.0.1:{listen} within {timeout:g} s"
                    ) from None
                time.sleep(0.05)
        return party, f"ws://127.0.0.1:{listen}/ocpp"

    # --- talking ----------------------------------------------------------------------

    def ask(
        self, parties: Sequence[Party], commands: Sequence[object], timeout: float
    ) -> list[object]:
        """Send ``commands[i]`` to ``parties[i]`` and return their replies in order."""
        for party, command in zip(parties, commands, strict=True):
            self.send(party, command)
        replies = self.collect(dict.fromkeys(parties), timeout)
        return [replies[party] for party in parties]

    def collect(self, waiting: dict[Party, None], timeout: float) -> dict[Party, object]:
        """One reply from each party in ``waiting``, checking every party's health."""
        by_conn = {party.conn: party for party in waiting if party.conn is not None}
        replies: dict[Party, object] = {}
        deadline = time.monotonic() + timeout
        while by_conn:
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(sorted(party.name for party in by_conn.values()))
                raise BenchError(f"no answer from {names} within {timeout:g} s")
            for conn in wait(list(by_conn), timeout=min(_POLL, left)):
                assert isinstance(conn, Connection)
                party = by_conn.pop(conn)
                try:
                    reply = conn.recv()
                except (EOFError, OSError) as exc:
                    raise BenchError(f"{party.death()} ({exc or type(exc).__name__})") from None
                if isinstance(reply, Failed):
                    raise BenchError(f"the {party.name} process failed: {reply.detail}")
                replies[party] = reply
            self.check_alive()
        return replies

    def check_alive(self) -> None:
        for party in self.started:
            if party.exit_code() is not None:
                raise BenchError(party.death())

    # --- stopping ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop every party: Stop over the pipe (SIGTERM for the gateway), then kill what
        is still running after the grace period."""
        for party in self.started:
            if party.exit_code() is not None:
                continue
            with contextlib.suppress(OSError):
                if party.conn is not None:
                    party.conn.send(Stop())
                elif party.popen is not None:
                    party.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE
        for party in self.started:
            if party.process is not None:
                party.process.join(max(0.0, deadline - time.monotonic()))
                if party.process.is_alive():
                    party.process.kill()
                    party.process.join()
            elif party.popen is not None:
                try:
                    party.popen.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    party.popen.kill()
                    party.popen.wait()
            if party.conn is not None:
                party.conn.close()
