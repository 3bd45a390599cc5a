"""CALLs the gateway sends to one side: correlation, one at a time, queue, timeout.

Layer: session (asyncio only).

OCPP-J allows one outstanding CALL per direction per connection (1.6J §4.1.1, 2.0.1
Part 4 §4.1.1): a sender waits for the answer before its next CALL. So there is one
pending slot, and callers queue FIFO on a lock behind it, bounded by ``max_queued``.
An answer whose id does not match the pending CALL (late, duplicate, unknown) is not
delivered to anybody: it is counted and logged by the caller of :meth:`resolve`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.errors import CallTimeout, Overloaded, RemoteCallError
from gateway.lean import loop_of
from gateway.metrics import GatewayMetrics, action_label
from gateway.ocppj import CallError, CallResult, Payload, dump_call, read_error_code
from gateway.session.links import Side

# Message id prefixes: random per connection, not secret. One urandom read per process
# seeds them; secrets.token_hex per connection was a getrandom() system call each, a
# measurable share of a reconnect storm's CPU on a VM.
_ID_PREFIXES = random.Random(os.urandom(16))


@dataclass(slots=True)
class _Pending:
    unique_id: str
    action: str
    started: float
    answer: asyncio.Future[CallResult | CallError]


class OutgoingCalls:
    def __init__(
        self,
        *,
        side: Side,
        send: Callable[[str], Awaitable[None]],
        timeout: float,
        max_queued: int,
        metrics: GatewayMetrics,
    ) -> None:
        self._side = side
        self._send = send
        self._timeout = timeout
        self._max_queued = max_queued
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self._queued = 0
        self._pending: _Pending | None = None
        # Ids only need to be unique per sender and connection; a random prefix keeps
        # them distinct across gateway restarts too, so a late answer never matches.
        self._prefix = f"{_ID_PREFIXES.getrandbits(32):08x}"
        self._counter = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None  # see gateway.lean.loop_of

    def pending_action(self, unique_id: str) -> str | None:
        pending = self._pending
        return pending.action if pending and pending.unique_id == unique_id else None

    async def call(self, action: str, payload: Payload) -> Payload:
        """Send a CALL and return the CALLRESULT payload.

        Raises:
            Overloaded: ``max_queued`` callers already wait.
            PeerUnavailable: the side is not connected (raised by ``send``).
            CallTimeout: no answer within the timeout.
            RemoteCallError: the side answered with a CALLERROR.
        """
        if self._queued >= self._max_queued:
            raise Overloaded(f"more than {self._max_queued} CALLs queued for the {self._side}")
        self._queued += 1
        try:
            await self._lock.acquire()
        finally:
            self._queued -= 1
        try:
            frame = await self._exchange(action, payload)
        finally:
            self._lock.release()
        if isinstance(frame, CallError):
            raise RemoteCallError(read_error_code(frame.code), frame.description, frame.details)
        return frame.payload

    async def _exchange(self, action: str, payload: Payload) -> CallResult | CallError:
        unique_id = f"{self._prefix}-{next(self._counter)}"
        self._loop = loop = loop_of(self._loop)
        answer: asyncio.Future[CallResult | CallError] = loop.create_future()
        self._pending = _Pending(unique_id, action, time.perf_counter(), answer)
        try:
            await self._send(dump_call(unique_id, action, payload))
            self._metrics.count_message(self._side, "out", "call", action)
            # The timeout fails the answer, not the task: neither asyncio.wait_for (on
            # 3.11 it returns an answer that arrived in the same step as a cancellation
            # and swallows the cancel, which kept a closing session's worker alive) nor
            # asyncio.timeout (three getpid() calls per CALL on 3.11, and a cancel).
            expiry = loop.call_later(self._timeout, _expire, answer)
            try:
                return await answer
            except TimeoutError:
                self._metrics.call_timeouts.labels(self._side, action_label(action)).inc()
                raise CallTimeout(
                    f"the {self._side} did not answer {action} within {self._timeout:g} s"
                ) from None
            finally:
                expiry.cancel()
        finally:
            self._pending = None

    def resolve(self, frame: CallResult | CallError) -> bool:
        """Deliver an answer to the pending CALL; False if it matches none."""
        pending = self._pending
        if pending is None or pending.unique_id != frame.unique_id or pending.answer.done():
            return False
        elapsed = time.perf_counter() - pending.started
        self._metrics.call_timer(self._side, action_label(pending.action)).observe(elapsed)
        pending.answer.set_result(frame)
        return True

    def fail(self, error: Exception) -> None:
        """The connection is gone: the pending CALL will never be answered."""
        pending = self._pending
        if pending is not None and not pending.answer.done():
            pending.answer.set_exception(error)


def _expire(answer: asyncio.Future[CallResult | CallError]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())
