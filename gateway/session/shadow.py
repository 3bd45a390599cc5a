"""Shadow mode: one 1.6 charger's traffic mirrored, read-only, to the CSMS it is not
routed to, so a CPO sees how that CSMS answers real traffic before cutting over.

Layer: session. Never imports websockets or the transport: the app hands in a
``connect`` factory that returns an unstarted :class:`~gateway.session.links.CsmsLink`.

The primary session (a :class:`~gateway.session.bridge.TranslatingSession` for route
``translate``, the 1.6 relay for ``legacy``) reports every frame to :meth:`ShadowMirror.observe`.
The mirror takes the CALLs the charger sent and the answers the charger got, and:

- primary ``legacy`` (the charger is served by the 1.6 CSMS): the shadow is the 2.0.1
  CSMS, reached through a real ``TranslatingSession`` of its own, with its own in-memory
  store, fed by an in-process charger link that never reaches the real charger;
- primary ``translate`` (served by the 2.0.1 CSMS): the shadow is the legacy 1.6 CSMS,
  sent the charger's CALLs unchanged.

Each shadow answer is compared with the primary's on meaning (:func:`verdict`) and
counted in ``ocpp_gateway_shadow_comparisons_total``; a disagreement is logged. The
shadow's own CALLs are refused with a CALLERROR. transactionIds differ between the two
CSMSs: StopTransaction/MeterValues are rewritten from the primary's id to the shadow's
(:func:`rewrite_transaction_id`). Nothing here can slow down or fail the primary:
:meth:`ShadowMirror.observe` only parses and queues (bounded, dropping when full), and
:meth:`ShadowMirror.run` catches everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from gateway.config import masked_url
from gateway.errors import ErrorCode, FrameError, PeerUnavailable
from gateway.logs import station_context
from gateway.metrics import GatewayMetrics, action_label
from gateway.ocppj import (
    Call,
    CallError,
    CallResult,
    Payload,
    Version,
    dump_call,
    dump_error,
    parse,
)
from gateway.routing import Route
from gateway.session.bridge import SessionSettings, TranslatingSession
from gateway.session.links import CsmsLink, Side, TraceEvent
from gateway.state.memory import MemoryStore
from gateway.translate.layout import EvseLayout
from gateway.translate.tables import TranslationTables

log = logging.getLogger(__name__)

Answer = CallResult | CallError

#: Charger CALLs waiting to be mirrored; beyond this the shadow is too slow: dropped.
MAX_MIRRORED: Final = 64
#: Primary -> shadow transactionIds remembered (a charger has a few open at most).
MAX_MAPPED: Final = 64
#: What the shadow CSMS is told when it sends the station a CALL.
READ_ONLY: Final = "shadow mode is read-only: this charger is served by another CSMS"
REFUSAL_CODE: Final = ErrorCode.SECURITY_ERROR

#: Answers compared on their top-level ``status``.
_STATUS: Final = frozenset({"BootNotification", "DataTransfer"})
#: Answers compared on ``idTagInfo.status`` (absent: "none").
_ID_TAG_INFO: Final = frozenset({"Authorize", "StartTransaction", "StopTransaction"})
#: CALLs whose ``transactionId`` is the CSMS's: rewritten for the shadow.
_TRANSACTION_CARRIERS: Final = frozenset({"StopTransaction", "MeterValues"})

Result = str  # "agree" | "disagree" | "shadow_error"

_CSMS_OF: Final = {Route.TRANSLATE: "2.0.1 CSMS", Route.LEGACY: "1.6 CSMS"}
_OTHER: Final = {Route.TRANSLATE: Route.LEGACY, Route.LEGACY: Route.TRANSLATE}


# --- pure helpers -------------------------------------------------------------------


def verdict(action: str, answer: Answer) -> str:
    """What an answer to a 1.6 ``action`` means, for comparing two CSMSs: ``CALLERROR``;
    the ``status`` of BootNotification and DataTransfer; the ``idTagInfo.status`` of
    Authorize, StartTransaction and StopTransaction (``none`` when absent); otherwise
    just ``CALLRESULT``. Statuses only: never an idTag, a payload or anything secret."""
    if isinstance(answer, CallError):
        return "CALLERROR"
    payload = answer.payload
    if action in _STATUS:
        status = payload.get("status")
        return status if isinstance(status, str) else "none"
    if action in _ID_TAG_INFO:
        info = payload.get("idTagInfo")
        status = info.get("status") if isinstance(info, dict) else None
        return status if isinstance(status, str) else "none"
    return "CALLRESULT"


def compare(action: str, primary: Answer, shadow: Answer) -> bool:
    """Whether the two CSMSs agree on a charger's CALL (see :func:`verdict`)."""
    return verdict(action, primary) == verdict(action, shadow)


def _transaction_id(payload: Payload) -> int | None:
    value = payload.get("transactionId")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def started_transaction(primary: Answer, shadow: Answer) -> tuple[int, int] | None:
    """(primary id, shadow id) from the two CSMSs' answers to one StartTransaction; None
    unless both answered with a CALLRESULT carrying an integer transactionId."""
    if not isinstance(primary, CallResult) or not isinstance(shadow, CallResult):
        return None
    ours, theirs = _transaction_id(primary.payload), _transaction_id(shadow.payload)
    return None if ours is None or theirs is None else (ours, theirs)


def rewrite_transaction_id(call: Call, mapping: Mapping[int, int]) -> Call | None:
    """The charger's CALL as the shadow must get it: a StopTransaction or MeterValues
    naming the primary's transactionId P names the shadow's S instead (``mapping`` P->S).

    None: it names a transaction the shadow has no id for (started before mirroring
    began, or the shadow never answered its start): mirroring it would be meaningless.
    Any other CALL, and MeterValues outside a transaction, is returned unchanged; so is a
    payload whose transactionId is not an integer (both CSMSs get to refuse it)."""
    if call.action not in _TRANSACTION_CARRIERS or "transactionId" not in call.payload:
        return call
    primary_id = _transaction_id(call.payload)
    if primary_id is None:
        return call
    shadow_id = mapping.get(primary_id)
    if shadow_id is None:
        return None
    return Call(call.unique_id, call.action, {**call.payload, "transactionId": shadow_id})


# --- the in-process pieces of the translated shadow ----------------------------------


class _ShadowCharger:
    """The :class:`~gateway.session.links.ChargerLink` of the shadow ``TranslatingSession``:
    its frames are the mirrored CALLs (and refusals of its own CALLs), what it sends goes
    to ``on_send``; never a socket, so nothing reaches the real charger."""

    protocol = Version.V16

    def __init__(self, station_id: str, on_send: Callable[[_ShadowCharger, str], None]) -> None:
        self.station_id = station_id
        self._on_send = on_send
        # Unbounded but small: one mirrored CALL at a time, and one refusal per CALL the
        # session sends (it sends one at a time too).
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._ended = False

    async def frames(self) -> AsyncIterator[str]:
        while True:
            text = await self._inbox.get()
            if text is None:
                return
            yield text

    def deliver(self, text: str) -> None:
        if not self._ended:
            self._inbox.put_nowait(text)

    async def send(self, text: str) -> None:
        if self._ended:
            raise PeerUnavailable("shadow mode ended")
        self._on_send(self, text)

    async def close(self, code: int, reason: str) -> None:
        log.info("the shadow session closed its charger link (%d %s)", code, reason)
        self.end()

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._inbox.put_nowait(None)


class _WatchedLink:
    """The shadow session's :class:`~gateway.session.links.CsmsLink`, counting the sends
    that failed for want of a connection: an answer the session gave while they failed
    is its own (buffer mode, an error), not the shadow CSMS's."""

    def __init__(self, link: CsmsLink) -> None:
        self._link = link
        self.failures = 0

    @property
    def connected(self) -> bool:
        return self._link.connected

    async def run(
        self,
        on_frame: Callable[[str], Awaitable[None]],
        on_disconnect: Callable[[], None],
    ) -> None:
        await self._link.run(on_frame, on_disconnect)

    async def wait_connected(self) -> None:
        await self._link.wait_connected()

    async def send(self, text: str, *, wait: float) -> None:
        try:
            await self._link.send(text, wait=wait)
        except PeerUnavailable:
            self.failures += 1
            raise

    async def close(self) -> None:
        await self._link.close()


@dataclass(slots=True, eq=False)
class _Mirrored:
    """A charger CALL to mirror, and (once observed) the answer the charger got."""

    call: Call
    primary: Answer | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class _Reply:
    """What the shadow side answered a mirrored CALL (None: nothing, in time), and
    whether it is the shadow CSMS's own answer: the translated shadow's session may
    answer by itself (offline, or an error for want of a connection)."""

    frame: Answer | None
    genuine: bool


_Exchange = Callable[[Call], Awaitable[_Reply]]


def _total(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    """The sum of a counter's samples ``name`` (``..._total``) matching ``labels``."""
    return sum(
        sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


# --- the mirror ---------------------------------------------------------------------


class ShadowMirror:
    """Mirrors one charger's connection to the shadow CSMS (see the module docstring).

    ``connect(station_id, version)`` returns an unstarted link to the shadow CSMS for the
    station, speaking ``version`` (``ocpp2.0.1`` when the primary is ``legacy``,
    ``ocpp1.6`` when it is ``translate``); ``shadow_url`` only names it in log lines.
    """

    def __init__(
        self,
        *,
        station_id: str,
        primary: Route,
        shadow_url: str,
        metrics: GatewayMetrics,
        tables: TranslationTables,
        settings: SessionSettings,
        layout: EvseLayout | None = None,
        connect: Callable[[str, Version], CsmsLink],
    ) -> None:
        self.station_id = station_id
        self.primary = Route(primary)
        self._shown_url = masked_url(shadow_url)
        self._metrics = metrics
        self._tables = tables
        self._settings = settings
        self._layout = layout
        self._connect = connect
        self._queue: asyncio.Queue[_Mirrored] = asyncio.Queue(MAX_MIRRORED)
        # Charger message id -> its queued CALL, until the charger's answer is observed.
        self._awaiting: dict[str, _Mirrored] = {}
        self._mapping: OrderedDict[int, int] = OrderedDict()
        # The translated shadow starts with the charger's first BootNotification: its own
        # session knows nothing of the station before (the real store is not shared), and
        # goes on once the 2.0.1 CSMS has answered one (else the boot is sent again first).
        self._boot_seen = self.primary is Route.TRANSLATE
        self._shadow_booted = self.primary is Route.TRANSLATE
        self._boot: Call | None = None
        self._closing = asyncio.Event()
        self._done = asyncio.Event()
        self._started = False
        self._failed = False  # run() ended on an error: nothing more is mirrored
        self._end_session: Callable[[], None] = lambda: None
        self._ids = itertools.count(1)
        self._pending: tuple[str, asyncio.Future[Answer | None]] | None = None
        # The shadow session's own metrics: its messages, transactions and offline answers
        # must not count as the gateway's; read to tell its own answers from the CSMS's.
        self._own_metrics: GatewayMetrics | None = None
        self._watched: _WatchedLink | None = None
        self.dropped = 0  # CALLs dropped: the queue was full
        self.skipped = 0  # CALLs not mirrored: before the first boot, unmapped transaction
        self.refused = 0  # CALLs of the shadow CSMS (or its session) refused: read-only

    # --- the primary's frames -------------------------------------------------------

    def observe(self, event: TraceEvent) -> None:
        """One frame of the primary session (its ``observer``, called on the event loop).
        Never blocks, never raises: it parses the frame and at most queues a CALL."""
        try:
            self._observe(event)
        except Exception:
            log.exception("shadow mode could not take a frame; the primary is unaffected")

    def _observe(self, event: TraceEvent) -> None:
        if event.side != Side.CHARGER or self._closing.is_set():
            return
        try:
            frame = parse(event.text)
        except FrameError:
            return  # the primary answers it; nothing to compare
        if event.direction == "in":
            if isinstance(frame, Call):
                self._take(frame)
        elif event.direction == "out" and not isinstance(frame, Call):
            mirrored = self._awaiting.pop(frame.unique_id, None)
            if mirrored is not None:
                mirrored.primary = frame
                mirrored.answered.set()

    def _take(self, call: Call) -> None:
        if not self._boot_seen:
            if call.action != "BootNotification":
                self._skip(call, "the charger has not booted since mirroring began")
                return
            self._boot_seen = True
        if self._failed:
            self._count(call.action, "shadow_error")
            return
        mirrored = _Mirrored(call)
        try:
            self._queue.put_nowait(mirrored)
        except asyncio.QueueFull:
            self.dropped += 1
            self._count(call.action, "shadow_error")
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning(
                    "shadow CSMS too slow: %d charger message(s) not mirrored", self.dropped
                )
            return
        self._awaiting[call.unique_id] = mirrored

    def _skip(self, call: Call, why: str) -> None:
        self.skipped += 1
        level = logging.INFO if self.skipped == 1 else logging.DEBUG
        log.log(level, "shadow mode: %s not mirrored: %s", call.action, why)

    # --- lifecycle ------------------------------------------------------------------

    async def run(self) -> None:
        """Connect to the shadow CSMS and mirror until :meth:`close`. Never raises (but
        for cancellation): a failure ends mirroring and is logged, never the primary's."""
        if self._started:
            return
        self._started = True
        with station_context(self.station_id):
            try:
                if self._closing.is_set():
                    return
                log.info(
                    "shadow mode: mirroring the charger's traffic read-only to the %s at %s",
                    _CSMS_OF[_OTHER[self.primary]],
                    self._shown_url,
                )
                if self.primary is Route.LEGACY:
                    await self._run_translated()
                else:
                    await self._run_relayed()
                if not self._closing.is_set():
                    log.warning("the shadow session ended on its own: mirroring stops")
                    self._failed = True
                    self._abandon_queue()
            except Exception:
                log.exception("shadow mode failed; the primary is unaffected")
                self._failed = True
                self._abandon_queue()
            finally:
                self._done.set()

    async def close(self) -> None:
        """Stop mirroring; returns once :meth:`run` has finished (bounded)."""
        self._closing.set()
        self._end_session()
        self._awaiting.clear()
        if self._started:
            limit = 2 * self._settings.upstream_wait + 5.0
            try:
                async with asyncio.timeout(limit):
                    await self._done.wait()
            except TimeoutError:
                log.warning("shadow mode did not stop within %g s", limit)

    def _abandon_queue(self) -> None:
        while not self._queue.empty():
            self._count(self._queue.get_nowait().call.action, "shadow_error")
        self._awaiting.clear()

    async def _run_translated(self) -> None:
        """Primary ``legacy``: a TranslatingSession of its own to the 2.0.1 CSMS."""
        self._own_metrics = GatewayMetrics()
        self._watched = _WatchedLink(self._connect(self.station_id, Version.V201))
        # Its own name for the station: its log lines must not pass for the primary's
        # (the name only keys its private store; the link was made for the real id).
        charger = _ShadowCharger(f"{self.station_id} (shadow)", self._from_shadow_session)
        self._end_session = charger.end
        session = TranslatingSession(
            charger=charger,
            csms=self._watched,
            store=MemoryStore(),
            tables=self._tables,
            metrics=self._own_metrics,
            # Mirror mode would close the (in-process) charger on an outage: buffer.
            settings=dataclasses.replace(self._settings, offline_mode="buffer"),
            layout=self._layout,
        )
        feeder = asyncio.create_task(self._feed(partial(self._exchange_translated, charger)))
        try:
            await session.run()
        finally:
            charger.end()
            await _cancelled(feeder)

    async def _run_relayed(self) -> None:
        """Primary ``translate``: the charger's 1.6 CALLs as they are, to the 1.6 CSMS."""
        link = self._connect(self.station_id, Version.V16)
        upstream = asyncio.create_task(
            link.run(partial(self._from_relayed_csms, link), self._relayed_disconnected)
        )
        feeder = asyncio.create_task(self._feed(partial(self._exchange_relayed, link)))
        try:
            await self._closing.wait()
        finally:
            await _cancelled(feeder)
            await link.close()
            await asyncio.wait({upstream}, timeout=self._settings.upstream_wait)
            await _cancelled(upstream)

    # --- mirroring ------------------------------------------------------------------

    async def _feed(self, exchange: _Exchange) -> None:
        """Mirror the queued CALLs one at a time, as the charger sent them."""
        while True:
            mirrored = await self._queue.get()
            try:
                await self._mirror(mirrored, exchange)
            except Exception:
                log.exception("shadow mode could not mirror %s", mirrored.call.action)
                self._awaiting.pop(mirrored.call.unique_id, None)
                self._count(mirrored.call.action, "shadow_error")

    async def _mirror(self, mirrored: _Mirrored, exchange: _Exchange) -> None:
        call = mirrored.call
        rewritten = rewrite_transaction_id(call, self._mapping)
        if rewritten is None:
            self._awaiting.pop(call.unique_id, None)
            self._skip(call, "its transaction has no shadow transactionId")
            return
        if call.action != "BootNotification" and not await self._booted(exchange):
            # The shadow session cannot register the station: it would refuse the CALL
            # itself, which says nothing of the 2.0.1 CSMS.
            self._awaiting.pop(call.unique_id, None)
            self._count(call.action, "shadow_error")
            return
        reply = await exchange(rewritten)
        if call.action == "BootNotification" and self.primary is Route.LEGACY:
            self._boot, self._shadow_booted = call, reply.genuine
        primary = await self._primary_answer(mirrored)
        if primary is None:
            log.debug("the charger got no answer to %s: nothing to compare", call.action)
            return
        self._judge(call, primary, reply.frame if reply.genuine else None)
        if call.action == "StartTransaction" and reply.frame is not None:
            # Even when the shadow session answered by itself: the transaction is open
            # there, and its Started event goes up later; its stop must follow it.
            self._remember(started_transaction(primary, reply.frame))

    async def _booted(self, exchange: _Exchange) -> bool:
        """Whether the shadow CSMS has answered a boot of the station, sending it the
        charger's last BootNotification again if it did not (it was unreachable)."""
        if self._shadow_booted:
            return True
        if self._boot is None:
            return False
        log.info("shadow mode: sending the charger's BootNotification to the shadow again")
        self._shadow_booted = (await exchange(self._boot)).genuine
        return self._shadow_booted

    async def _primary_answer(self, mirrored: _Mirrored) -> Answer | None:
        try:
            async with asyncio.timeout(self._answer_wait()):
                await mirrored.answered.wait()
        except TimeoutError:
            self._awaiting.pop(mirrored.call.unique_id, None)
        return mirrored.primary

    def _judge(self, call: Call, primary: Answer, shadow: Answer | None) -> None:
        action = call.action
        if shadow is None:
            log.debug("shadow mode: no usable answer to %s from the shadow CSMS", action)
            self._count(action, "shadow_error")
            return
        if compare(action, primary, shadow):
            self._count(action, "agree")
        else:
            self._count(action, "disagree")
            log.warning(
                "shadow disagreement on %s: the primary (%s) answered %s, the shadow (%s) %s",
                action,
                _CSMS_OF[self.primary],
                verdict(action, primary),
                _CSMS_OF[_OTHER[self.primary]],
                verdict(action, shadow),
            )

    def _remember(self, pair: tuple[int, int] | None) -> None:
        """Map a transaction's primary id to the shadow's (the newest MAX_MAPPED)."""
        if pair is None:
            return
        self._mapping[pair[0]] = pair[1]
        self._mapping.move_to_end(pair[0])
        while len(self._mapping) > MAX_MAPPED:
            self._mapping.popitem(last=False)

    def _count(self, action: str, result: Result) -> None:
        self._metrics.shadow_comparisons.labels(action_label(action), result).inc()

    def _answer_wait(self) -> float:
        """How long an answer may take: the translated shadow answers every CALL itself
        within its own timeouts (a StartTransaction: the outbox's wait for a connection,
        then the CSMS's answer), so this only guards against a stuck peer."""
        s = self._settings
        return 2 * (s.response_timeout + s.upstream_wait) + 5.0

    def _next_id(self) -> str:
        return f"shadow-{next(self._ids)}"

    def _await_answer(self, unique_id: str) -> asyncio.Future[Answer | None]:
        answer: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self._pending = (unique_id, answer)
        return answer

    def _resolve(self, frame: Answer) -> None:
        pending = self._pending
        if pending is not None and pending[0] == frame.unique_id and not pending[1].done():
            pending[1].set_result(frame)
        else:
            log.debug("shadow answer %s matches no mirrored CALL (late?)", frame.unique_id)

    # --- primary legacy: the translated shadow ----------------------------------------

    async def _exchange_translated(self, charger: _ShadowCharger, call: Call) -> _Reply:
        """Hand a CALL to the shadow session; its answer, genuine unless the session gave
        it without the 2.0.1 CSMS (offline, a CSMS timeout, a send without connection)."""
        unique_id = self._next_id()
        answer = self._await_answer(unique_id)
        trouble = self._trouble()
        try:
            charger.deliver(dump_call(unique_id, call.action, call.payload))
            try:
                async with asyncio.timeout(self._answer_wait()):
                    result = await answer
            except TimeoutError:
                return _Reply(None, genuine=False)
        finally:
            self._pending = None
        return _Reply(result, genuine=result is not None and self._trouble() == trouble)

    def _trouble(self) -> float:
        """How often the shadow session answered without the 2.0.1 CSMS so far."""
        own, watched = self._own_metrics, self._watched
        if own is None or watched is None:
            return 0.0
        return (
            _total(own, "ocpp_gateway_offline_answers_total")
            + _total(own, "ocpp_gateway_call_timeouts_total", side=Side.CSMS.value)
            + watched.failures
        )

    def _from_shadow_session(self, charger: _ShadowCharger, text: str) -> None:
        """What the shadow session sends the charger: answers to the mirrored CALLs, and
        CALLs (the 2.0.1 CSMS's, translated, or its own), which are refused at once."""
        try:
            frame = parse(text)
        except FrameError:
            log.warning("the shadow session sent an unreadable frame")
            return
        if isinstance(frame, Call):
            self._refuse(frame)
            charger.deliver(dump_error(frame.unique_id, REFUSAL_CODE, READ_ONLY, Version.V16))
        else:
            self._resolve(frame)

    def _refuse(self, call: Call) -> None:
        self.refused += 1
        log.info("shadow mode: refused %s from the shadow CSMS (read-only)", call.action)

    # --- primary translate: the relayed shadow ----------------------------------------

    async def _exchange_relayed(self, link: CsmsLink, call: Call) -> _Reply:
        """Send a CALL to the 1.6 shadow CSMS; its answer (none: unreachable, late)."""
        unique_id = self._next_id()
        answer = self._await_answer(unique_id)
        try:
            text = dump_call(unique_id, call.action, call.payload)
            try:
                await link.send(text, wait=self._settings.upstream_wait)
            except PeerUnavailable as exc:
                log.debug("shadow CSMS unreachable: %s", exc.description)
                return _Reply(None, genuine=False)
            try:
                async with asyncio.timeout(self._settings.response_timeout):
                    frame = await answer
            except TimeoutError:
                return _Reply(None, genuine=False)
            return _Reply(frame, genuine=frame is not None)
        finally:
            self._pending = None

    async def _from_relayed_csms(self, link: CsmsLink, text: str) -> None:
        try:
            frame = parse(text)
        except FrameError as exc:
            log.warning("invalid frame from the shadow CSMS: %s", exc.description)
            return
        if isinstance(frame, Call):
            self._refuse(frame)
            with contextlib.suppress(PeerUnavailable):
                await link.send(
                    dump_error(frame.unique_id, REFUSAL_CODE, READ_ONLY, Version.V16), wait=0
                )
        else:
            self._resolve(frame)

    def _relayed_disconnected(self) -> None:
        pending = self._pending
        if pending is not None and not pending[1].done():
            pending[1].set_result(None)


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it, logging what it raised (never re-raising)."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        log.error("shadow mode task failed", exc_info=task.exception())
