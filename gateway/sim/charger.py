"""A scriptable OCPP 1.6J charge point, used as the gateway's downstream test peer.

:class:`ChargerSim` connects to a central system (in tests: the gateway), sends CALLs the
test scripts, and answers the CALLs it receives with default or test-supplied handlers.
Everything it receives is checked against the official OCPP 1.6 schemas with the
reference :mod:`jsonschema` validator; problems land in :attr:`ChargerSim.violations`.

It shares no code with the gateway (only :mod:`gateway.sim.wire`).
"""

from __future__ import annotations

import asyncio
import base64
import ssl as ssl_module
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeAlias
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from gateway.sim.wire import (
    Call,
    CallError,
    HandlerResult,
    JsonObject,
    OcppjPeer,
    SchemaValidator,
    maybe_await,
)

__all__ = ["DEFAULT_HANDLERS", "ChargerHandler", "ChargerSim"]

#: A handler for a CALL the charger receives: payload -> response payload (maybe awaited).
ChargerHandler: TypeAlias = Callable[[JsonObject], HandlerResult]


def _accepted(_payload: JsonObject) -> JsonObject:
    return {"status": "Accepted"}


def _unlocked(_payload: JsonObject) -> JsonObject:
    return {"status": "Unlocked"}


def _no_configuration(payload: JsonObject) -> JsonObject:
    return {"configurationKey": [], "unknownKey": list(payload.get("key", []))}


#: How the charger answers CSMS-initiated CALLs unless the test overrides them.
DEFAULT_HANDLERS: Mapping[str, ChargerHandler] = {
    "DataTransfer": _accepted,
    "TriggerMessage": _accepted,
    "ChangeAvailability": _accepted,
    "Reset": _accepted,
    "ClearCache": _accepted,
    "UnlockConnector": _unlocked,
    "RemoteStartTransaction": _accepted,
    "RemoteStopTransaction": _accepted,
    "GetConfiguration": _no_configuration,
    "ChangeConfiguration": _accepted,
}


class _ChargerDispatcher:
    """Answers the CALLs a :class:`ChargerSim` receives (see :class:`~.wire.CallDispatcher`)."""

    def __init__(self, sim: ChargerSim) -> None:
        self._sim = sim

    async def admit(self, call: Call) -> CallError | None:
        await self._sim._record_call(call)
        if call.action not in self._sim.handlers:
            return CallError(call.message_id, "NotImplemented", f"no handler for {call.action}")
        return None

    async def respond(self, call: Call) -> JsonObject:
        return await maybe_await(self._sim.handlers[call.action](call.payload))


class ChargerSim:
    """An OCPP 1.6J charge point with a scriptable API (see module docstring)."""

    def __init__(
        self,
        base_url: str,
        charge_point_id: str,
        *,
        subprotocol: str = "ocpp1.6",
        call_timeout: float = 10.0,
        handlers: Mapping[str, ChargerHandler] | None = None,
        validator: SchemaValidator | None = None,
        password: str | bytes | None = None,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        """``password``: HTTP Basic auth with the charge point id (security profiles 1
        and 2; bytes as a 1.6 AuthorizationKey is binary); ``ssl``: the TLS context for a
        wss:// URL (profile 2, or 3 with a client certificate loaded into it)."""
        self.base_url = base_url
        self.password = password
        self.ssl = ssl
        self.charge_point_id = charge_point_id
        self.subprotocol = subprotocol
        self.call_timeout = call_timeout
        self.handlers: dict[str, ChargerHandler] = {**DEFAULT_HANDLERS, **(handlers or {})}
        self.violations: list[str] = []
        self.received_calls: list[tuple[str, JsonObject]] = []
        self._validator = validator
        self._unmatched: asyncio.Queue[str] = asyncio.Queue()
        self._calls_changed = asyncio.Condition()
        self._websocket: ClientConnection | None = None
        self._peer: OcppjPeer | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The websocket URL this charger connects to."""
        return f"{self.base_url.rstrip('/')}/{quote(self.charge_point_id, safe='')}"

    @property
    def connected(self) -> bool:
        """True while the websocket is open."""
        return self._peer is not None and not self._peer.closed

    # ---- lifecycle

    async def connect(self) -> None:
        """Open the websocket offering ``[subprotocol]``; handshake errors propagate."""
        if self.connected:
            raise RuntimeError(f"{self.charge_point_id} is already connected")
        await self._stop_reader()
        headers: list[tuple[str, str]] = []
        if self.password is not None:
            secret = self.password if isinstance(self.password, bytes) else self.password.encode()
            token = base64.b64encode(self.charge_point_id.encode() + b":" + secret).decode()
            headers.append(("Authorization", f"Basic {token}"))
        websocket = await connect(
            self.url,
            subprotocols=[Subprotocol(self.subprotocol)],
            compression=None,
            ping_interval=None,
            open_timeout=self.call_timeout,
            additional_headers=headers,
            ssl=self.ssl,
        )
        self._websocket = websocket
        self._peer = OcppjPeer(
            websocket,
            version="1.6",
            dispatcher=_ChargerDispatcher(self),
            violations=self.violations,
            unmatched=self._unmatched,
            label=self.charge_point_id,
            validator=self._validator,
        )
        if websocket.subprotocol != self.subprotocol:
            self.violations.append(
                f"[{self.charge_point_id}] server selected subprotocol "
                f"{websocket.subprotocol!r}, expected {self.subprotocol!r}"
            )
        self._reader = asyncio.create_task(
            self._peer.run(), name=f"charger {self.charge_point_id} reader"
        )

    async def close(self, code: int = 1000) -> None:
        """Close the websocket (if open) and stop the reader and any handler tasks."""
        if self._websocket is not None:
            await self._websocket.close(code)
        await self._stop_reader()

    async def _stop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is None:
            return
        if not reader.done():
            # Closing the websocket ends the reader; cancel only a reader that is wedged.
            await asyncio.wait({reader}, timeout=self.call_timeout)
            reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)

    async def reboot(self, **boot_kwargs: Any) -> JsonObject:
        """Reboot: close the websocket (1000), reconnect to :attr:`url`, send BootNotification.

        ``boot_kwargs`` go to :meth:`boot` (vendor, model and optional fields; its defaults
        otherwise). Returns the BootNotification answer. Works whether or not the charger
        is connected; recorded calls and violations are kept across the reboot.
        """
        await self.close(1000)
        await self.connect()
        return await self.boot(**boot_kwargs)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _require_peer(self) -> OcppjPeer:
        if self._peer is None:
            raise ConnectionError(f"{self.charge_point_id} was never connected")
        return self._peer

    async def wait_closed(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - API mirrors the other waits
    ) -> tuple[int | None, str | None]:
        """Wait for the connection to end; the close code and reason the server sent."""
        async with asyncio.timeout(timeout):
            return await self._require_peer().wait_closed()

    # ---- raw messaging

    async def call(
        self,
        action: str,
        payload: JsonObject,
        *,
        validate: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109 - per-call answer deadline
    ) -> JsonObject:
        """Send a CALL and return the (schema-checked) CALLRESULT payload.

        Raises :class:`~.wire.SchemaViolation` if ``validate`` and the request is invalid,
        or if the CALLRESULT is invalid (also recorded in :attr:`violations`);
        :class:`~.wire.CallErrorReceived` on CALLERROR; :class:`TimeoutError` after
        ``timeout`` (default ``call_timeout``); :class:`ConnectionError` if not connected.
        """
        deadline = self.call_timeout if timeout is None else timeout
        return await self._require_peer().call(action, payload, timeout=deadline, validate=validate)

    async def send_raw(self, text: str) -> None:
        """Send ``text`` as one text frame, unchecked (for bad-input tests)."""
        await self._require_peer().send_raw(text)

    async def next_unmatched(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - API mirrors the other waits
    ) -> str:
        """The next received frame that was neither a CALL nor an answer to a pending call."""
        async with asyncio.timeout(timeout):
            return await self._unmatched.get()

    # ---- received CALLs

    async def _record_call(self, call: Call) -> None:
        async with self._calls_changed:
            self.received_calls.append((call.action, call.payload))
            self._calls_changed.notify_all()

    def calls_of(self, action: str) -> list[JsonObject]:
        """Payloads of every received CALL of ``action``, in arrival order."""
        return [payload for name, payload in self.received_calls if name == action]

    async def wait_for_call(
        self,
        action: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - API mirrors the other waits
    ) -> list[JsonObject]:
        """Payloads of all received ``action`` CALLs, once at least ``count`` arrived."""
        try:
            async with asyncio.timeout(timeout), self._calls_changed:
                await self._calls_changed.wait_for(lambda: len(self.calls_of(action)) >= count)
        except TimeoutError:
            seen = [name for name, _ in self.received_calls]
            raise TimeoutError(
                f"{self.charge_point_id}: wanted {count} {action} CALL(s) in {timeout}s; "
                f"received {seen}"
            ) from None
        return self.calls_of(action)

    # ---- convenience CALLs (valid 1.6 payloads)

    async def boot(
        self, vendor: str = "SimVendor", model: str = "SimModel", **optional_fields: Any
    ) -> JsonObject:
        """BootNotification; extras like chargePointSerialNumber, firmwareVersion, iccid."""
        payload = {"chargePointVendor": vendor, "chargePointModel": model, **optional_fields}
        return await self.call("BootNotification", payload)

    async def heartbeat(self) -> JsonObject:
        """Heartbeat."""
        return await self.call("Heartbeat", {})

    async def status(
        self, connector_id: int, status: str, error_code: str = "NoError", **extras: Any
    ) -> JsonObject:
        """StatusNotification; extras: info, vendorId, vendorErrorCode, timestamp."""
        payload = {"connectorId": connector_id, "status": status, "errorCode": error_code}
        return await self.call("StatusNotification", {**payload, **extras})

    async def authorize(self, id_tag: str) -> JsonObject:
        """Authorize."""
        return await self.call("Authorize", {"idTag": id_tag})

    async def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> JsonObject:
        """DataTransfer (charger -> central system)."""
        payload: JsonObject = {"vendorId": vendor_id}
        if message_id is not None:
            payload["messageId"] = message_id
        if data is not None:
            payload["data"] = data
        return await self.call("DataTransfer", payload)

    async def start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        reservation_id: int | None = None,
    ) -> JsonObject:
        """StartTransaction."""
        payload: JsonObject = {
            "connectorId": connector_id,
            "idTag": id_tag,
            "meterStart": meter_start,
            "timestamp": timestamp,
        }
        if reservation_id is not None:
            payload["reservationId"] = reservation_id
        return await self.call("StartTransaction", payload)

    async def stop_transaction(
        self, transaction_id: int, meter_stop: int, timestamp: str, **extras: Any
    ) -> JsonObject:
        """StopTransaction; extras: idTag, reason, transactionData."""
        payload = {"transactionId": transaction_id, "meterStop": meter_stop, "timestamp": timestamp}
        return await self.call("StopTransaction", {**payload, **extras})

    async def meter_values(
        self,
        connector_id: int,
        meter_value: list[JsonObject],
        transaction_id: int | None = None,
    ) -> JsonObject:
        """MeterValues with the given ``meterValue`` list."""
        payload: JsonObject = {"connectorId": connector_id, "meterValue": meter_value}
        if transaction_id is not None:
            payload["transactionId"] = transaction_id
        return await self.call("MeterValues", payload)
