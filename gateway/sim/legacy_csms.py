"""A small OCPP 1.6J central system: the legacy CSMS stand-in of migration tests.

:class:`LegacyCsmsSim` plays the CPO's old 1.6 CSMS that the gateway's ``legacy`` route
passes chargers through to (issue 9). It accepts websocket connections (subprotocol
``ocpp1.6`` required) on any path, taking the last path segment as the charge point id,
and checks every payload it receives against the official 1.6 schemas with the
reference :mod:`jsonschema` validator (problems land in :attr:`LegacyCsmsSim.violations`).

Besides the parsed CALLs (:attr:`LegacyCsmsSim.messages`, :meth:`LegacyCsmsSim.wait_for`)
it keeps the exact text of every frame received (:attr:`LegacyCsmsSim.frames`): a
pass-through must deliver the charger's bytes unchanged. Tests drive a charge point with
:meth:`LegacyCsmsSim.call`, :meth:`LegacyCsmsSim.send_raw` and :meth:`LegacyCsmsSim.drop`.

Default answers: BootNotification Accepted (interval 300), Heartbeat, Authorize
Accepted unless the idTag is in :attr:`LegacyCsmsSim.rejected_tags` (then Invalid),
StartTransaction with transactionIds from 1000 upwards (kept in
:attr:`LegacyCsmsSim.open_transactions` until stopped), StopTransaction,
StatusNotification, MeterValues, DataTransfer (UnknownVendorId),
DiagnosticsStatusNotification and FirmwareStatusNotification.

It shares no code with the gateway (only :mod:`gateway.sim.wire`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import TypeAlias

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.sim.stations import ListeningSim, Received, StationLink, StationsKept, station_of
from gateway.sim.wire import (
    Call,
    CallError,
    HandlerResult,
    JsonObject,
    OcppjPeer,
    SchemaValidator,
    maybe_await,
    utc_now,
)

__all__ = ["SUBPROTOCOL", "LegacyCsmsHandler", "LegacyCsmsSim", "LegacyReceived"]

SUBPROTOCOL = "ocpp1.6"
FIRST_TRANSACTION_ID = 1000

#: A handler for a CALL the CSMS receives: (charge point id, payload) -> response payload.
LegacyCsmsHandler: TypeAlias = Callable[[str, JsonObject], HandlerResult]

#: Notifications the default CSMS acknowledges with an empty response.
_EMPTY_RESPONSE_ACTIONS = (
    "StatusNotification",
    "MeterValues",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
)


LegacyReceived = Received  # the 1.6 sim records the same facts


def _empty(_station_id: str, _payload: JsonObject) -> JsonObject:
    return {}


class _RecordingPeer(OcppjPeer):
    """An :class:`OcppjPeer` that also keeps the exact text of every frame it receives."""

    def __init__(
        self,
        websocket: ServerConnection,
        *,
        sim: LegacyCsmsSim,
        dispatcher: _StationDispatcher,
        unmatched: asyncio.Queue[str],
        label: str,
    ) -> None:
        super().__init__(
            websocket,
            version="1.6",
            dispatcher=dispatcher,
            violations=sim.violations,
            unmatched=unmatched,
            label=label,
            validator=sim.validator,
        )
        self._sim = sim

    async def _on_message(self, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        self._sim.frames.append((self.label, text))
        await super()._on_message(message)


class _StationDispatcher:
    """Answers the CALLs one charge point sends (see :class:`~.wire.CallDispatcher`)."""

    def __init__(self, csms: LegacyCsmsSim, station_id: str) -> None:
        self._csms = csms
        self._station_id = station_id

    async def admit(self, call: Call) -> CallError | None:
        csms = self._csms
        received = LegacyReceived(self._station_id, call.action, call.payload, call.message_id)
        await csms._record(received)
        if call.action not in csms.handlers:
            return CallError(call.message_id, "NotImplemented", f"no handler for {call.action}")
        return None

    async def respond(self, call: Call) -> JsonObject:
        handler = self._csms.handlers[call.action]
        payload = await maybe_await(handler(self._station_id, call.payload))
        if call.action == "BootNotification" and payload.get("status") == "Accepted":
            self._csms.registered.add(self._station_id)
        return payload


class LegacyCsmsSim(StationsKept, ListeningSim):
    """An OCPP 1.6J central system for tests (see module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        boot_status: str = "Accepted",
        heartbeat_interval: int = 300,
        rejected_tags: frozenset[str] | set[str] = frozenset(),
        handlers: Mapping[str, LegacyCsmsHandler] | None = None,
        validator: SchemaValidator | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.boot_status = boot_status
        self.heartbeat_interval = heartbeat_interval
        #: idTags answered Invalid (Authorize, StartTransaction).
        self.rejected_tags: set[str] = set(rejected_tags)
        self.handlers: dict[str, LegacyCsmsHandler] = {
            **self._default_handlers(),
            **(handlers or {}),
        }
        #: While True, opening handshakes are answered HTTP 503.
        self.refuse_connections = False
        #: The Authorization header of each station's latest handshake (None: none sent).
        self.authorizations: dict[str, str | None] = {}
        StationsKept.__init__(self)
        self.violations: list[str] = []
        #: (charge point id, exact text) of every frame received, in arrival order.
        self.frames: list[tuple[str, str]] = []
        self.duplicate_connections: list[str] = []
        #: Charge points whose BootNotification was answered Accepted.
        self.registered: set[str] = set()
        #: transactionId -> charge point id, for transactions started and not stopped.
        self.open_transactions: dict[int, str] = {}
        self._transaction_ids = itertools.count(FIRST_TRANSACTION_ID)
        self.validator = validator
        self._server: Server | None = None

    # ---- lifecycle

    async def start(self) -> None:
        """Start listening."""
        if self._server is not None:
            raise RuntimeError("LegacyCsmsSim already started")
        self._server = await serve(
            self._serve_connection,
            self.host,
            self._requested_port,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            process_request=self._process_request,
            compression=None,
            ping_interval=None,
        )

    @property
    def url(self) -> str:
        """Base URL for the gateway, which appends ``/<chargePointId>``."""
        return self._url("ws")

    # ---- connections

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        # What the charger's side presented: a pass-through must hand its credentials on.
        self.authorizations[station_of(request.path)] = request.headers.get("Authorization")
        if self.refuse_connections:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "legacy CSMS sim refusing\n")
        return None

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        request = websocket.request
        path = request.path if request is not None else "/"
        station_id = station_of(path)
        peer = _RecordingPeer(
            websocket,
            sim=self,
            dispatcher=_StationDispatcher(self, station_id),
            unmatched=self._unmatched.setdefault(station_id, asyncio.Queue()),
            label=station_id,
        )
        link = StationLink(station_id, path, peer)
        async with self._changed:
            open_links = self._open.setdefault(station_id, [])
            if open_links:
                self.duplicate_connections.append(station_id)
            open_links.append(link)
            self.connections.append((station_id, path))
            self._changed.notify_all()
        try:
            await peer.run()
        finally:
            self._open[station_id].remove(link)
            async with self._changed:
                self._changed.notify_all()

    def frames_of(self, station_id: str) -> list[str]:
        """The exact text of every frame received from ``station_id``."""
        return [text for station, text in self.frames if station == station_id]

    # ---- default handlers

    def _default_handlers(self) -> dict[str, LegacyCsmsHandler]:
        handlers: dict[str, LegacyCsmsHandler] = dict.fromkeys(_EMPTY_RESPONSE_ACTIONS, _empty)
        handlers.update(
            BootNotification=self._on_boot,
            Heartbeat=self._on_heartbeat,
            Authorize=self._on_authorize,
            StartTransaction=self._on_start_transaction,
            StopTransaction=self._on_stop_transaction,
            DataTransfer=self._on_data_transfer,
        )
        return handlers

    def _id_tag_info(self, id_tag: str) -> JsonObject:
        return {"status": "Invalid" if id_tag in self.rejected_tags else "Accepted"}

    def _on_boot(self, _station_id: str, _payload: JsonObject) -> JsonObject:
        return {
            "currentTime": utc_now(),
            "interval": self.heartbeat_interval,
            "status": self.boot_status,
        }

    def _on_heartbeat(self, _station_id: str, _payload: JsonObject) -> JsonObject:
        return {"currentTime": utc_now()}

    def _on_authorize(self, _station_id: str, payload: JsonObject) -> JsonObject:
        return {"idTagInfo": self._id_tag_info(payload["idTag"])}

    def _on_start_transaction(self, station_id: str, payload: JsonObject) -> JsonObject:
        transaction_id = next(self._transaction_ids)
        self.open_transactions[transaction_id] = station_id
        return {"transactionId": transaction_id, "idTagInfo": self._id_tag_info(payload["idTag"])}

    def _on_stop_transaction(self, _station_id: str, payload: JsonObject) -> JsonObject:
        self.open_transactions.pop(payload["transactionId"], None)
        if "idTag" in payload:
            return {"idTagInfo": self._id_tag_info(payload["idTag"])}
        return {}

    def _on_data_transfer(self, _station_id: str, _payload: JsonObject) -> JsonObject:
        return {"status": "UnknownVendorId"}
