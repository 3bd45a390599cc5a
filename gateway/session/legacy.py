"""The migration's legacy route: a 1.6 charger passed through to the 1.6 CSMS.

Layer: session. The relay is :class:`~gateway.session.passthrough.PassThroughSession`
with version 1.6: frames are forwarded unchanged, byte for byte, both ways; a frame that
is not OCPP-J, a CALL of an action 1.6 does not have, or (with ``validate_inbound``) a
CALL whose payload does not validate is answered with a 1.6 CALLERROR by the gateway and
not forwarded. Connection state is mirrored: when the legacy CSMS drops the connection
the charger's is closed, so the charger queues its own messages (no reconnect here).

What this adds is the bookkeeping of the safe point (issue 9): a charger moves between
CSMSs only when no transaction is open on the one it talks to, so a transaction ends on
the CSMS that started it. The legacy CSMS's open transactions are kept in the station's
:class:`~gateway.state.RouteState` (``legacy_transactions``), stored at every change:

- the CSMS's CALLRESULT to the charger's StartTransaction (matched by the CALL's message
  id) adds its ``transactionId``, stored before the charger sees the answer;
- the charger's StopTransaction removes its ``transactionId`` once the CSMS answers it
  with a CALLRESULT (a CALLERROR leaves it open: the charger will send it again),
  stored before the charger sees the answer.

:attr:`LegacySession.busy` is true while a transaction is open or a StartTransaction
awaits its answer: the gateway (``gateway.fleet``) moves the charger only when it is
false.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Final, TypeVar

from gateway.metrics import GatewayMetrics
from gateway.ocppj import Call, CallError, CallResult, Version
from gateway.session.links import ChargerLink, CsmsLink, FrameObserver, Side
from gateway.session.passthrough import PassThroughSession
from gateway.state import RouteState, StateError, Store

log = logging.getLogger(__name__)

LEGACY_ROUTE: Final = "legacy"
_MAX_TRACKED: Final = 32  # transaction CALLs awaiting their answer (one at a time in 1.6)
_V = TypeVar("_V")


class LegacySession(PassThroughSession):
    def __init__(
        self,
        *,
        charger: ChargerLink,
        csms: CsmsLink,
        store: Store,
        metrics: GatewayMetrics,
        upstream_wait: float = 10.0,
        observer: FrameObserver | None = None,
        validate_inbound: bool = True,
        transactions: tuple[int, ...] = (),
    ) -> None:
        """``transactions``: the legacy CSMS's transactions still open from the
        station's earlier connections (its stored RouteState)."""
        super().__init__(
            charger=charger,
            csms=csms,
            metrics=metrics,
            upstream_wait=upstream_wait,
            observer=observer,
            validate_inbound=validate_inbound,
            version=Version.V16,
        )
        self._store = store
        self._transactions: tuple[int, ...] = tuple(transactions)
        # Charger CALLs awaiting the CSMS's answer: StartTransaction ids; StopTransaction
        # id -> the transactionId it stops.
        self._starts: OrderedDict[str, None] = OrderedDict()
        self._stops: OrderedDict[str, int] = OrderedDict()

    @property
    def open_transactions(self) -> tuple[int, ...]:
        """transactionIds the legacy CSMS gave and the charger has not stopped yet."""
        return self._transactions

    @property
    def busy(self) -> bool:
        """Not at a safe point: a transaction is open, or one is being started."""
        return bool(self._transactions or self._starts)

    async def _forwarding(
        self, frame: Call | CallResult | CallError, sender: Side, action: str
    ) -> None:
        if sender is Side.CHARGER:
            if isinstance(frame, Call):
                self._charger_call(frame)
            return
        if isinstance(frame, Call):
            return
        if frame.unique_id in self._starts:
            del self._starts[frame.unique_id]
            if isinstance(frame, CallResult):
                await self._started(frame)
        elif frame.unique_id in self._stops:
            transaction_id = self._stops.pop(frame.unique_id)
            if isinstance(frame, CallResult) and transaction_id in self._transactions:
                kept = tuple(t for t in self._transactions if t != transaction_id)
                await self._store_transactions(kept)

    def _charger_call(self, call: Call) -> None:
        if call.action == "StartTransaction":
            _remember(self._starts, call.unique_id, None)
        elif call.action == "StopTransaction":
            transaction_id = call.payload.get("transactionId")
            if isinstance(transaction_id, int) and not isinstance(transaction_id, bool):
                _remember(self._stops, call.unique_id, transaction_id)

    async def _started(self, result: CallResult) -> None:
        transaction_id = result.payload.get("transactionId")
        if not isinstance(transaction_id, int) or isinstance(transaction_id, bool):
            log.warning("the legacy CSMS answered StartTransaction without a transactionId")
            return
        if transaction_id not in self._transactions:
            await self._store_transactions((*self._transactions, transaction_id))

    async def _store_transactions(self, transactions: tuple[int, ...]) -> None:
        self._transactions = transactions
        state = RouteState(self.station_id, LEGACY_ROUTE, transactions)
        try:
            await self._store.put_route_state(state)
        except StateError:
            # Kept in memory: this connection still waits for them to end before a move.
            log.exception("cannot store the legacy CSMS's open transactions %s", transactions)
        log.info(
            "transactions open on the legacy CSMS: %s",
            ", ".join(map(str, transactions)) or "none",
        )


def _remember(tracked: OrderedDict[str, _V], unique_id: str, value: _V) -> None:
    tracked[unique_id] = value
    if len(tracked) > _MAX_TRACKED:
        tracked.popitem(last=False)
