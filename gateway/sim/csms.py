"""A small OCPP 2.0.1 CSMS, used as the gateway's upstream test peer.

:class:`CsmsSim` accepts websocket connections (subprotocol ``ocpp2.0.1`` required) on
any path, taking the last path segment as the station id. It behaves like a strict real
CSMS: every message is checked against the official 2.0.1 schemas with the reference
:mod:`jsonschema` validator (problems land in :attr:`CsmsSim.violations`), and a station
must be booted "Accepted" before anything else it sends is processed (B02.FR.09).
Tests observe what arrived through :attr:`CsmsSim.messages` / :meth:`CsmsSim.wait_for`
and drive the station with :meth:`CsmsSim.call`, :meth:`CsmsSim.send_raw` and
:meth:`CsmsSim.drop`.

Security profiles (2.0.1 Part 2 A00), all optional: with ``ssl`` (a server context) it
listens on wss://, and if that context requires client certificates (profile 3) it
records each station's certificate CN in :attr:`CsmsSim.client_identities`; with
``passwords`` (profiles 1 and 2) the opening handshake must carry HTTP Basic auth whose
username is the station id of the path and whose password is that station's, else it is
answered HTTP 401 and recorded in :attr:`CsmsSim.refused`.

It shares no code with the gateway (only :mod:`gateway.sim.wire`).
"""

from __future__ import annotations

import base64
import binascii
import ssl as ssl_module
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

__all__ = ["SUBPROTOCOL", "CsmsHandler", "CsmsSim", "IdTokenInfo", "Received"]

SUBPROTOCOL = "ocpp2.0.1"

#: A handler for a CALL the CSMS receives: (station_id, payload) -> response payload.
CsmsHandler: TypeAlias = Callable[[str, JsonObject], HandlerResult]
#: Given an ``idToken`` object, the ``idTokenInfo`` the CSMS answers with.
IdTokenInfo: TypeAlias = Callable[[JsonObject], JsonObject]

#: Notifications the default CSMS acknowledges with an empty response.
_EMPTY_RESPONSE_ACTIONS = (
    "StatusNotification",
    "NotifyEvent",
    "NotifyReport",
    "MeterValues",
    "SecurityEventNotification",
    "FirmwareStatusNotification",
    "LogStatusNotification",
    "ReservationStatusUpdate",
    "ReportChargingProfiles",
    "NotifyChargingLimit",
    "ClearedChargingLimit",
)


def _accept_all(_id_token: JsonObject) -> JsonObject:
    return {"status": "Accepted"}


def _empty(_station_id: str, _payload: JsonObject) -> JsonObject:
    return {}


class _StationDispatcher:
    """Answers the CALLs one station sends (see :class:`~.wire.CallDispatcher`)."""

    def __init__(self, csms: CsmsSim, station_id: str) -> None:
        self._csms = csms
        self._station_id = station_id

    async def admit(self, call: Call) -> CallError | None:
        csms, station_id = self._csms, self._station_id
        if call.action != "BootNotification" and station_id not in csms.registered:
            csms.security_errors.append((station_id, call.action))
            description = f"{station_id} is not registered: BootNotification not Accepted yet"
            return CallError(call.message_id, "SecurityError", description)
        await csms._record(Received(station_id, call.action, call.payload, call.message_id))
        if call.action not in csms.handlers:
            return CallError(call.message_id, "NotImplemented", f"no handler for {call.action}")
        return None

    async def respond(self, call: Call) -> JsonObject:
        handler = self._csms.handlers[call.action]
        payload = await maybe_await(handler(self._station_id, call.payload))
        if call.action == "BootNotification" and payload.get("status") == "Accepted":
            self._csms.registered.add(self._station_id)
        return payload


class CsmsSim(StationsKept, ListeningSim):
    """An OCPP 2.0.1 CSMS for tests (see module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        boot_status: str | Mapping[str, str] = "Accepted",
        heartbeat_interval: int = 300,
        id_token_info: IdTokenInfo | None = None,
        handlers: Mapping[str, CsmsHandler] | None = None,
        validator: SchemaValidator | None = None,
        ssl: ssl_module.SSLContext | None = None,
        passwords: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self.ssl = ssl
        #: station id -> Basic auth password; None: no Basic auth required.
        self.passwords: dict[str, str] | None = None if passwords is None else dict(passwords)
        self._requested_port = port
        self.boot_status = boot_status
        self.heartbeat_interval = heartbeat_interval
        self.id_token_info: IdTokenInfo = id_token_info or _accept_all
        self.handlers: dict[str, CsmsHandler] = {**self._default_handlers(), **(handlers or {})}
        #: While True, opening handshakes are answered HTTP 503.
        self.refuse_connections = False
        StationsKept.__init__(self)
        self.violations: list[str] = []
        self.duplicate_connections: list[str] = []
        self.security_errors: list[tuple[str, str]] = []
        #: Per station, the subject CN of the client certificate its latest accepted
        #: connection presented (None: no certificate, or one without a single CN).
        self.client_identities: dict[str, str | None] = {}
        #: Opening handshakes refused for their credentials: (station id, HTTP status).
        self.refused: list[tuple[str, int]] = []
        #: Stations whose BootNotification was answered Accepted (kept across connections).
        self.registered: set[str] = set()
        self._validator = validator
        self._server: Server | None = None

    # ---- lifecycle

    async def start(self) -> None:
        """Start listening."""
        if self._server is not None:
            raise RuntimeError("CsmsSim already started")
        self._server = await serve(
            self._serve_connection,
            self.host,
            self._requested_port,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            process_request=self._process_request,
            compression=None,
            ping_interval=None,
            ssl=self.ssl,
        )

    @property
    def url(self) -> str:
        """Base URL for the gateway, which appends ``/<stationId>``."""
        return self._url("ws" if self.ssl is None else "wss")

    # ---- connections

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse_connections:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "CSMS sim is refusing\n")
        if self.passwords is not None:
            station_id = station_of(request.path)
            if not self._authorized(station_id, request.headers.get("Authorization")):
                self.refused.append((station_id, int(HTTPStatus.UNAUTHORIZED)))
                response = connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
                response.headers["WWW-Authenticate"] = 'Basic realm="CsmsSim", charset="UTF-8"'
                return response
        return None

    def _authorized(self, station_id: str, header: str | None) -> bool:
        """Basic auth with username = the station id and that station's password."""
        assert self.passwords is not None
        expected = self.passwords.get(station_id)
        if header is None or expected is None:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, colon, password = decoded.partition(":")
        return bool(colon) and username == station_id and password == expected

    @staticmethod
    def _client_identity(websocket: ServerConnection) -> str | None:
        """The subject CN of the peer's TLS client certificate, if it sent one."""
        ssl_object = websocket.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        cert = ssl_object.getpeercert()
        if not cert:
            return None
        names = [
            value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"
        ]
        return names[0] if len(names) == 1 else None

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        request = websocket.request
        path = request.path if request is not None else "/"
        station_id = station_of(path)
        peer = OcppjPeer(
            websocket,
            version="2.0.1",
            dispatcher=_StationDispatcher(self, station_id),
            violations=self.violations,
            unmatched=self._unmatched_queue(station_id),
            label=station_id,
            validator=self._validator,
        )
        link = StationLink(station_id, path, peer)
        async with self._changed:
            if self.ssl is not None:
                self.client_identities[station_id] = self._client_identity(websocket)
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

    # ---- default handlers

    def _default_handlers(self) -> dict[str, CsmsHandler]:
        handlers: dict[str, CsmsHandler] = dict.fromkeys(_EMPTY_RESPONSE_ACTIONS, _empty)
        handlers.update(
            BootNotification=self._on_boot,
            Heartbeat=self._on_heartbeat,
            Authorize=self._on_authorize,
            TransactionEvent=self._on_transaction_event,
            DataTransfer=self._on_data_transfer,
            SignCertificate=self._on_sign_certificate,
        )
        return handlers

    def _boot_status_for(self, station_id: str) -> str:
        if isinstance(self.boot_status, str):
            return self.boot_status
        return self.boot_status.get(station_id, "Accepted")

    def _on_boot(self, station_id: str, _payload: JsonObject) -> JsonObject:
        return {
            "currentTime": utc_now(),
            "interval": self.heartbeat_interval,
            "status": self._boot_status_for(station_id),
        }

    def _on_heartbeat(self, _station_id: str, _payload: JsonObject) -> JsonObject:
        return {"currentTime": utc_now()}

    def _on_authorize(self, _station_id: str, payload: JsonObject) -> JsonObject:
        return {"idTokenInfo": self.id_token_info(payload["idToken"])}

    def _on_transaction_event(self, _station_id: str, payload: JsonObject) -> JsonObject:
        if "idToken" in payload:
            return {"idTokenInfo": self.id_token_info(payload["idToken"])}
        return {}

    def _on_data_transfer(self, _station_id: str, _payload: JsonObject) -> JsonObject:
        return {"status": "UnknownVendorId"}

    def _on_sign_certificate(self, _station_id: str, _payload: JsonObject) -> JsonObject:
        return {"status": "Accepted"}
