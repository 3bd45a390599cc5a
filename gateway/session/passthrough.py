"""Native OCPP 2.0.1 chargers: frames pass through unchanged, byte for byte.

Layer: session. The gateway still reads each frame, for metrics and to keep invalid
input away from the CSMS: a frame that is not OCPP-J, a CALL of an action 2.0.1 does not
have, or (with ``validate_inbound``, the default) a CALL whose payload does not validate,
is answered with a CALLERROR by the gateway and not forwarded. Everything else is
forwarded as the exact text received.

The same relay serves the migration's legacy route with ``version`` 1.6 (a 1.6 charger
passed through to the 1.6 CSMS: ``gateway.session.legacy``, which adds the transaction
bookkeeping a move between CSMSs needs through :meth:`PassThroughSession._forwarding`).

Connection state is mirrored, as 2.0.1 Part 4 §6.3 asks of a local controller: when
the CSMS connection ends the charger's is closed, so the charger queues its own
messages, and the upstream link does not reconnect on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Final

from gateway import schemas
from gateway.errors import FrameError, GatewayError, PeerUnavailable, UnknownAction
from gateway.lean import LeanEvent
from gateway.logs import station_context
from gateway.metrics import GatewayMetrics, action_label
from gateway.ocppj import Call, CallError, CallResult, Version, dump_error, parse, read_error_code
from gateway.schemas import Kind
from gateway.session.links import ChargerLink, CsmsLink, FrameObserver, Side, TraceEvent

log = logging.getLogger(__name__)

_MAX_TRACKED: Final = 32  # OCPP-J allows one pending CALL per direction; a margin for misuse
CSMS_LOST: Final = (1011, "CSMS connection lost")


class PassThroughSession:
    def __init__(
        self,
        *,
        charger: ChargerLink,
        csms: CsmsLink,
        metrics: GatewayMetrics,
        upstream_wait: float = 10.0,
        observer: FrameObserver | None = None,
        validate_inbound: bool = True,
        version: Version = Version.V201,
    ) -> None:
        self.station_id = charger.station_id
        self.version = version
        self._charger = charger
        self._csms = csms
        self._metrics = metrics
        self._upstream_wait = upstream_wait
        self._observer = observer
        self._validate_inbound = validate_inbound
        self._csms_gone = LeanEvent()
        # CALLs in flight, per side that sent them: id -> (action, start time)
        self._in_flight: dict[Side, OrderedDict[str, tuple[str, float]]] = {
            Side.CHARGER: OrderedDict(),
            Side.CSMS: OrderedDict(),
        }

    async def run(self) -> None:
        with station_context(self.station_id):
            async with asyncio.TaskGroup() as tasks:
                upstream = tasks.create_task(self._run_upstream())
                watcher = tasks.create_task(self._close_charger_when_csms_gone())
                try:
                    async for text in self._charger.frames():
                        if not await self._from_charger(text):
                            break
                finally:
                    watcher.cancel()
                    await self._csms.close()
                    await upstream

    async def _run_upstream(self) -> None:
        # The link does not reconnect: when run() returns, the CSMS connection is over
        # (or never opened), and the charger must learn it by losing its own.
        await self._csms.run(self._from_csms, self._csms_gone.set)
        self._csms_gone.set()

    async def _close_charger_when_csms_gone(self) -> None:
        await self._csms_gone.wait()
        log.warning("CSMS connection ended: closing the charger so it queues its messages")
        await self._charger.close(*CSMS_LOST)

    async def _from_charger(self, text: str) -> bool:
        """Forward one charger frame; False when the CSMS cannot be reached."""
        self._observe(Side.CHARGER, "in", text)
        if not await self._accept(text, Side.CHARGER):
            return True
        try:
            await self._csms.send(text, wait=self._upstream_wait)
        except PeerUnavailable as exc:
            log.warning("cannot forward to the CSMS: %s; closing the charger", exc.description)
            await self._charger.close(*CSMS_LOST)
            return False
        self._observe(Side.CSMS, "out", text)
        return True

    async def _from_csms(self, text: str) -> None:
        self._observe(Side.CSMS, "in", text)
        if not await self._accept(text, Side.CSMS):
            return
        try:
            await self._charger.send(text)
        except PeerUnavailable:
            return  # the charger is gone; run() is ending the session
        self._observe(Side.CHARGER, "out", text)

    async def _accept(self, text: str, sender: Side) -> bool:
        """Bookkeeping for one frame; answer it with a CALLERROR instead when invalid."""
        receiver = Side.CSMS if sender is Side.CHARGER else Side.CHARGER
        try:
            frame = parse(text)
            if isinstance(frame, Call):
                if frame.action not in schemas.known_actions(self.version):
                    number = self.version.removeprefix("ocpp")
                    raise UnknownAction(f"{frame.action} is not an OCPP {number} action")
                if self._validate_inbound:
                    schemas.validate(self.version, frame.action, Kind.REQUEST, frame.payload)
        except FrameError as exc:
            self._metrics.invalid_frames.labels(sender).inc()
            if exc.answerable:
                await self._reject(sender, exc.unique_id or "-1", exc)
            else:
                log.warning("dropping a malformed answer from the %s: %s", sender, exc)
            return False
        except GatewayError as exc:
            assert isinstance(frame, Call)
            self._metrics.count_message(sender, "in", "call", frame.action)
            await self._reject(sender, frame.unique_id, exc)
            return False
        action = self._count(frame, sender, receiver)
        await self._forwarding(frame, sender, action)
        return True

    async def _forwarding(
        self, frame: Call | CallResult | CallError, sender: Side, action: str
    ) -> None:
        """A valid frame from ``sender`` is about to be forwarded (``action``: the CALL's,
        or for an answer the answered CALL's, "unknown" if not tracked). Nothing here;
        the legacy route keeps its transaction bookkeeping in it."""

    def _count(self, frame: Call | CallResult | CallError, sender: Side, receiver: Side) -> str:
        """Count the frame; return the action it is or answers ("unknown": untracked)."""
        if isinstance(frame, Call):
            tracked = self._in_flight[sender]
            tracked[frame.unique_id] = (frame.action, time.perf_counter())
            if len(tracked) > _MAX_TRACKED:
                tracked.popitem(last=False)
            self._metrics.count_message(sender, "in", "call", frame.action)
            self._metrics.count_message(receiver, "out", "call", frame.action)
            return frame.action
        action, started = self._in_flight[receiver].pop(frame.unique_id, ("unknown", None))
        message_type = "result" if isinstance(frame, CallResult) else "error"
        self._metrics.count_message(sender, "in", message_type, action)
        self._metrics.count_message(receiver, "out", message_type, action)
        if isinstance(frame, CallError):
            self._metrics.call_errors.labels(sender, "in", read_error_code(frame.code)).inc()
        if started is not None:
            # The round trip of a CALL the receiver made, as seen through the gateway.
            self._metrics.call_timer(sender, action_label(action)).observe(
                time.perf_counter() - started
            )
        return action

    async def _reject(self, sender: Side, unique_id: str, error: GatewayError) -> None:
        log.info("answering the %s with %s: %s", sender, error.code, error.description)
        frame = dump_error(unique_id, error.code, error.description, self.version)
        self._metrics.call_errors.labels(sender, "out", error.code).inc()
        try:
            if sender is Side.CHARGER:
                await self._charger.send(frame)
            else:
                await self._csms.send(frame, wait=0)
        except PeerUnavailable:
            return
        self._observe(sender, "out", frame)

    def _observe(self, side: Side, direction: str, text: str) -> None:
        if self._observer is not None:
            self._observer(TraceEvent(self.station_id, side, direction, text))
