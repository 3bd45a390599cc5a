"""What every bench child process shares: start-up, the event loop, the control pipe.

Layer: bench. Standard library and uvloop only.

Each child is started with the ``spawn`` method (a fresh interpreter: no event loop,
sockets or threads inherited from the orchestrator) and runs one coroutine on uvloop,
the loop the gateway itself uses, so the comparison points are built like the product.
Commands arrive on a :class:`multiprocessing.connection.Connection`; reading it is
hooked into the event loop (``add_reader``) so a waiting child costs no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import traceback
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection

from gateway.bench.control import Failed

__all__ = ["raise_open_files_limit", "receive", "run_child"]


def raise_open_files_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit; every socket is a file, and a bench
    holds thousands. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


async def receive(conn: Connection) -> object:
    """The next command from the orchestrator, without blocking the event loop.

    Raises EOFError when the orchestrator has gone, so an orphaned child exits.
    """
    if not conn.poll():
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(conn.fileno(), wake)
        try:
            await readable
        finally:
            loop.remove_reader(conn.fileno())
            # The loop made the socket non-blocking; a large reply (latency samples)
            # must block until the orchestrator has read it, not fail half-written.
            os.set_blocking(conn.fileno(), True)
    return conn.recv()


def run_child(conn: Connection, main: Callable[[Connection], Awaitable[None]]) -> None:
    """Run ``main(conn)`` on uvloop; an unexpected exception goes back as :class:`Failed`."""
    import uvloop  # noqa: PLC0415 - children only; the orchestrator does not need it

    raise_open_files_limit()

    async def guarded() -> None:
        try:
            await main(conn)
        except EOFError:
            return  # the orchestrator went away: nothing to report to
        except Exception:
            with contextlib.suppress(OSError):
                conn.send(Failed(f"pid {os.getpid()}: {traceback.format_exc()}"))

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(guarded())
