"""OCPP-J wire layer shared by the test peers (charger sim and CSMS sim).

This module is deliberately independent of the gateway's own framing and validation
code: it frames with the stdlib :mod:`json` module and validates with the reference
:mod:`jsonschema` library against the official schemas shipped by the ``ocpp`` package.
A test peer must never share the code it is checking.

Contents:

* frame types (:class:`Call`, :class:`CallResult`, :class:`CallError`), :func:`decode`
  and the ``encode_*`` helpers;
* :class:`SchemaValidator`, the cached per-(version, action, kind) schema checker;
* :class:`OcppjPeer`, one OCPP-J websocket connection seen from a test peer: it sends
  CALLs and matches their answers, validates everything it receives, and hands incoming
  CALLs to a :class:`CallDispatcher` owned by the charger or CSMS sim.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import re
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Literal, Protocol, TypeAlias

from jsonschema import FormatChecker  # type: ignore[import-untyped]
from jsonschema.validators import validator_for  # type: ignore[import-untyped]
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

__all__ = [
    "CALL",
    "CALLERROR",
    "CALLRESULT",
    "ERROR_CODES",
    "FORMAT_VIOLATION",
    "MAX_MESSAGE_ID_LENGTH",
    "Call",
    "CallDispatcher",
    "CallError",
    "CallErrorReceived",
    "CallResult",
    "Frame",
    "FrameError",
    "HandlerResult",
    "JsonObject",
    "Kind",
    "OcppjPeer",
    "SchemaValidator",
    "SchemaViolation",
    "Version",
    "decode",
    "default_validator",
    "encode",
    "encode_call",
    "encode_call_error",
    "encode_call_result",
    "is_rfc3339_date_time",
    "maybe_await",
    "new_message_id",
    "utc_now",
]

log = logging.getLogger(__name__)

JsonObject: TypeAlias = dict[str, Any]
#: What a sim's message handler may return: the payload, or an awaitable of it.
HandlerResult: TypeAlias = JsonObject | Awaitable[JsonObject]
Version: TypeAlias = Literal["1.6", "2.0.1"]
Kind: TypeAlias = Literal["request", "response"]

CALL = 2
CALLRESULT = 3
CALLERROR = 4

#: OCPP-J limits message ids to 36 characters (1.6J section 4.1.3, 2.0.1 part 4 section 4.2).
MAX_MESSAGE_ID_LENGTH = 36

#: CALLERROR codes each version allows. 1.6 also accepts the errata spellings
#: (FormatViolation, OccurrenceConstraintViolation) next to the original ones.
ERROR_CODES: dict[Version, frozenset[str]] = {
    "1.6": frozenset(
        {
            "NotImplemented",
            "NotSupported",
            "InternalError",
            "ProtocolError",
            "SecurityError",
            "FormationViolation",
            "FormatViolation",
            "PropertyConstraintViolation",
            "OccurenceConstraintViolation",
            "OccurrenceConstraintViolation",
            "TypeConstraintViolation",
            "GenericError",
        }
    ),
    "2.0.1": frozenset(
        {
            "FormatViolation",
            "GenericError",
            "InternalError",
            "MessageTypeNotSupported",
            "NotImplemented",
            "NotSupported",
            "OccurrenceConstraintViolation",
            "PropertyConstraintViolation",
            "ProtocolError",
            "RpcFrameworkError",
            "SecurityError",
            "TypeConstraintViolation",
        }
    ),
}

#: The code a peer of each version answers a payload that fails its schema with.
FORMAT_VIOLATION: dict[Version, str] = {"1.6": "FormationViolation", "2.0.1": "FormatViolation"}


class SchemaViolation(Exception):
    """A payload does not match its official OCPP schema."""


class CallErrorReceived(Exception):
    """The other side answered one of our CALLs with a CALLERROR."""

    def __init__(self, code: str, description: str, details: JsonObject) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details


class FrameError(ValueError):
    """A received text frame is not a well-formed OCPP-J message."""


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Call:
    """``[2, message_id, action, payload]``."""

    message_id: str
    action: str
    payload: JsonObject


@dataclass(frozen=True)
class CallResult:
    """``[3, message_id, payload]``."""

    message_id: str
    payload: JsonObject


@dataclass(frozen=True)
class CallError:
    """``[4, message_id, code, description, details]``."""

    message_id: str
    code: str
    description: str = ""
    details: JsonObject = field(default_factory=dict)


Frame: TypeAlias = Call | CallResult | CallError


def new_message_id() -> str:
    """A fresh unique message id (36 characters, the OCPP-J maximum)."""
    return str(uuid.uuid4())


def utc_now() -> str:
    """The current time as RFC 3339 UTC with a ``Z`` suffix and millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_call(message_id: str, action: str, payload: JsonObject) -> str:
    """Serialise a CALL."""
    return json.dumps([CALL, message_id, action, payload], separators=(",", ":"))


def encode_call_result(message_id: str, payload: JsonObject) -> str:
    """Serialise a CALLRESULT."""
    return json.dumps([CALLRESULT, message_id, payload], separators=(",", ":"))


def encode_call_error(
    message_id: str, code: str, description: str = "", details: JsonObject | None = None
) -> str:
    """Serialise a CALLERROR."""
    frame = [CALLERROR, message_id, code, description, details or {}]
    return json.dumps(frame, separators=(",", ":"))


def encode(frame: Frame) -> str:
    """Serialise any frame."""
    if isinstance(frame, Call):
        return encode_call(frame.message_id, frame.action, frame.payload)
    if isinstance(frame, CallResult):
        return encode_call_result(frame.message_id, frame.payload)
    return encode_call_error(frame.message_id, frame.code, frame.description, frame.details)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise FrameError(message)


def decode(text: str) -> Frame:
    """Parse one OCPP-J text frame, strictly. Raises :class:`FrameError` if malformed.

    Message-id length is not checked here (see :data:`MAX_MESSAGE_ID_LENGTH`) so a peer
    can still match an over-long id while reporting it.
    """
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    _expect(isinstance(message, list) and len(message) > 0, "not a non-empty JSON array")
    type_id = message[0]
    _expect(
        type(type_id) is int and type_id in (CALL, CALLRESULT, CALLERROR),
        f"unknown message type id {type_id!r}",
    )
    expected_length = {CALL: 4, CALLRESULT: 3, CALLERROR: 5}[type_id]
    _expect(
        len(message) == expected_length,
        f"message type {type_id} needs {expected_length} elements, got {len(message)}",
    )
    message_id = message[1]
    _expect(isinstance(message_id, str), f"message id {message_id!r} is not a string")
    if type_id == CALL:
        _, _, action, payload = message
        _expect(isinstance(action, str), f"action {action!r} is not a string")
        _expect(isinstance(payload, dict), "CALL payload is not a JSON object")
        return Call(message_id, action, payload)
    if type_id == CALLRESULT:
        payload = message[2]
        _expect(isinstance(payload, dict), "CALLRESULT payload is not a JSON object")
        return CallResult(message_id, payload)
    _, _, code, description, details = message
    _expect(isinstance(code, str), f"error code {code!r} is not a string")
    _expect(isinstance(description, str), f"error description {description!r} is not a string")
    _expect(isinstance(details, dict), "error details is not a JSON object")
    return CallError(message_id, code, description, details)


# --------------------------------------------------------------------------- schemas

_RFC3339_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
    r"(?:[Zz]|[+-](\d{2}):(\d{2}))",
    re.ASCII,
)


def is_rfc3339_date_time(value: object) -> bool:
    """True if ``value`` is an RFC 3339 ``date-time`` (non-strings pass: format is per type)."""
    if not isinstance(value, str):
        return True
    match = _RFC3339_DATE_TIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    offset_hour, offset_minute = match.group(7), match.group(8)
    if offset_hour is not None and (int(offset_hour) > 23 or int(offset_minute) > 59):
        return False
    try:
        datetime(year, month, day, hour, minute, min(second, 59))  # 60 = leap second
    except ValueError:
        return False
    return second <= 60


_SCHEMA_DIRS: dict[Version, str] = {"1.6": "v16", "2.0.1": "v201"}
_ACTION_NAME = re.compile(r"[A-Z][A-Za-z0-9]*", re.ASCII)


class SchemaValidator:
    """Validates OCPP payloads against the official schemas shipped by the ``ocpp`` package.

    1.6 schemas are ``v16/schemas/<Action>.json`` / ``<Action>Response.json``; 2.0.1 ones
    ``v201/schemas/<Action>Request.json`` / ``<Action>Response.json``. Each schema is
    checked with the validator class of its own ``$schema`` draft and a format checker
    that enforces ``date-time``. Validators are built once and cached.
    """

    def __init__(self, schema_root: Traversable | None = None) -> None:
        self._root = schema_root if schema_root is not None else files("ocpp")
        self._format_checker = FormatChecker()
        self._format_checker.checks("date-time")(is_rfc3339_date_time)
        self._cache: dict[tuple[Version, str, Kind], Any] = {}

    def _schema_file(self, version: Version, action: str, kind: Kind) -> Traversable | None:
        if _ACTION_NAME.fullmatch(action) is None or version not in _SCHEMA_DIRS:
            return None
        if version == "1.6":
            if kind == "request" and action.endswith("Response"):
                return None
            name = f"{action}.json" if kind == "request" else f"{action}Response.json"
        else:
            name = f"{action}Request.json" if kind == "request" else f"{action}Response.json"
        path = self._root / _SCHEMA_DIRS[version] / "schemas" / name
        return path if path.is_file() else None

    def _validator(self, version: Version, action: str, kind: Kind) -> Any:
        key = (version, action, kind)
        if key not in self._cache:
            path = self._schema_file(version, action, kind)
            if path is None:
                self._cache[key] = None
            else:
                schema = json.loads(path.read_text(encoding="utf-8-sig"))
                validator_class = validator_for(schema)
                self._cache[key] = validator_class(schema, format_checker=self._format_checker)
        return self._cache[key]

    def has_schema(self, version: Version, action: str, kind: Kind) -> bool:
        """Whether an official schema exists for this (version, action, kind)."""
        return self._validator(version, action, kind) is not None

    def errors(self, version: Version, action: str, kind: Kind, payload: object) -> list[str]:
        """Every schema error in ``payload``, as ``"<json path>: <message>"``; empty if valid."""
        validator = self._validator(version, action, kind)
        if validator is None:
            return [f"no schema for OCPP {version} {action} {kind}"]
        found = sorted(validator.iter_errors(payload), key=lambda error: error.json_path)
        return [f"{error.json_path}: {error.message}" for error in found]


@functools.cache
def default_validator() -> SchemaValidator:
    """A process-wide :class:`SchemaValidator` (schemas are immutable, so sharing is safe)."""
    return SchemaValidator()


# --------------------------------------------------------------------------- connection


async def maybe_await(value: HandlerResult) -> JsonObject:
    """Resolve a handler result that may be a plain dict or an awaitable of one."""
    if inspect.isawaitable(value):
        return await value
    return value


class CallDispatcher(Protocol):
    """What a sim plugs into :class:`OcppjPeer` to decide how incoming CALLs are answered.

    The peer has already validated the request payload against its schema when these are
    called. ``admit`` runs in the reader, in arrival order (record the call here); it
    returns a CALLERROR to send instead of a result, or ``None`` to go on. ``respond`` runs
    in its own task and returns the CALLRESULT payload, which the peer validates.
    """

    async def admit(self, call: Call) -> CallError | None:
        """Record ``call``; return an error to answer with, or None to call :meth:`respond`."""
        ...

    async def respond(self, call: Call) -> JsonObject:
        """Compute the CALLRESULT payload for an admitted call."""
        ...


@dataclass
class _PendingCall:
    action: str
    future: asyncio.Future[JsonObject]


class OcppjPeer:
    """One OCPP-J websocket connection as seen by a test peer.

    :meth:`run` is the reader; its owner runs it (as a task or inline in a server
    handler) until the connection closes. The reader validates every received message,
    records problems in the shared ``violations`` list, resolves pending :meth:`call`
    futures, queues frames nobody is waiting for on ``unmatched``, and answers incoming
    CALLs through the ``dispatcher`` in tasks it owns and cancels when it ends.
    """

    def __init__(
        self,
        websocket: Connection,
        *,
        version: Version,
        dispatcher: CallDispatcher,
        violations: list[str],
        unmatched: asyncio.Queue[str],
        label: str,
        validator: SchemaValidator | None = None,
    ) -> None:
        self.websocket = websocket
        self.version: Version = version
        self.label = label
        self._dispatcher = dispatcher
        self._violations = violations
        self._unmatched = unmatched
        self._validator = validator if validator is not None else default_validator()
        self._pending: dict[str, _PendingCall] = {}
        self._call_lock = asyncio.Lock()
        self._responders: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None

    # ---- state

    @property
    def closed(self) -> bool:
        """True once the reader has seen the connection end."""
        return self._closed.is_set()

    async def wait_closed(self) -> tuple[int | None, str | None]:
        """Wait for the connection to end; the close code and reason the other side sent."""
        await self._closed.wait()
        return self.close_code, self.close_reason

    def _violation(self, message: str) -> None:
        text = f"[{self.label}] {message}"
        log.warning("OCPP violation: %s", text)
        self._violations.append(text)

    # ---- outgoing

    async def send_raw(self, text: str) -> None:
        """Send ``text`` as one text frame, unchecked."""
        try:
            await self.websocket.send(text)
        except ConnectionClosed as exc:
            raise ConnectionError(f"[{self.label}] connection closed") from exc

    async def call(
        self,
        action: str,
        payload: JsonObject,
        *,
        timeout: float,  # noqa: ASYNC109 - per-call answer deadline is the API
        validate: bool = True,
    ) -> JsonObject:
        """Send a CALL and return its CALLRESULT payload (one outstanding CALL at a time).

        Raises :class:`SchemaViolation` for an invalid outgoing request (when ``validate``)
        or an invalid CALLRESULT (also recorded), :class:`CallErrorReceived` for a
        CALLERROR, :class:`TimeoutError` and :class:`ConnectionError`.
        """
        if validate:
            errors = self._validator.errors(self.version, action, "request", payload)
            if errors:
                raise SchemaViolation(f"outgoing {action} request is invalid: {errors}")
        async with self._call_lock:
            if self.closed:
                raise ConnectionError(f"[{self.label}] connection closed")
            message_id = new_message_id()
            future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
            self._pending[message_id] = _PendingCall(action, future)
            try:
                await self.send_raw(encode_call(message_id, action, payload))
                try:
                    async with asyncio.timeout(timeout):
                        return await future
                except TimeoutError:
                    raise TimeoutError(
                        f"[{self.label}] no answer to {action} ({message_id}) in {timeout}s"
                    ) from None
            finally:
                self._pending.pop(message_id, None)

    # ---- incoming

    async def run(self) -> None:
        """Read until the connection closes, then fail pending calls and stop responders."""
        try:
            while True:
                try:
                    message = await self.websocket.recv()
                except ConnectionClosed:
                    break
                await self._on_message(message)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        received = self.websocket.protocol.close_rcvd
        if received is not None:
            self.close_code, self.close_reason = received.code, received.reason
        self._closed.set()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(
                    ConnectionError(f"[{self.label}] connection closed during {pending.action}")
                )
        for task in self._responders:
            task.cancel()
        await asyncio.gather(*self._responders, return_exceptions=True)

    async def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self._violation(f"binary frame received (OCPP-J uses text frames): {message!r}")
            self._unmatched.put_nowait(message.decode("utf-8", "replace"))
            return
        try:
            frame = decode(message)
        except FrameError as exc:
            self._violation(f"malformed frame ({exc}): {message!r}")
            self._unmatched.put_nowait(message)
            return
        if len(frame.message_id) > MAX_MESSAGE_ID_LENGTH:
            self._violation(f"message id longer than {MAX_MESSAGE_ID_LENGTH}: {message!r}")
        if isinstance(frame, Call):
            await self._on_call(frame)
        else:
            self._on_answer(frame, message)

    def _on_answer(self, frame: CallResult | CallError, text: str) -> None:
        if isinstance(frame, CallError) and frame.code not in ERROR_CODES[self.version]:
            self._violation(f"CALLERROR code {frame.code!r} is not an OCPP {self.version} code")
        pending = self._pending.get(frame.message_id)
        if pending is None or pending.future.done():
            self._unmatched.put_nowait(text)
            return
        if isinstance(frame, CallError):
            pending.future.set_exception(
                CallErrorReceived(frame.code, frame.description, frame.details)
            )
            return
        errors = self._validator.errors(self.version, pending.action, "response", frame.payload)
        if errors:
            message = f"received invalid {pending.action} CALLRESULT: {errors}: {text}"
            self._violation(message)
            pending.future.set_exception(SchemaViolation(f"[{self.label}] {message}"))
            return
        pending.future.set_result(frame.payload)

    async def _on_call(self, call: Call) -> None:
        if not self._validator.has_schema(self.version, call.action, "request"):
            self._violation(f"received CALL for unknown OCPP {self.version} action {call.action!r}")
            error = CallError(call.message_id, "NotImplemented", f"unknown action {call.action}")
            await self._send_answer(error)
            return
        errors = self._validator.errors(self.version, call.action, "request", call.payload)
        if errors:
            self._violation(f"received invalid {call.action} CALL: {errors}: {call.payload}")
            code = FORMAT_VIOLATION[self.version]
            description = f"{call.action} payload does not match its schema"
            details: JsonObject = {"errors": errors}
            await self._send_answer(CallError(call.message_id, code, description, details))
            return
        rejection = await self._dispatcher.admit(call)
        if rejection is not None:
            await self._send_answer(rejection)
            return
        task = asyncio.create_task(self._respond(call), name=f"{self.label} {call.action}")
        self._responders.add(task)
        task.add_done_callback(self._responders.discard)

    async def _respond(self, call: Call) -> None:
        answer: CallResult | CallError
        try:
            payload = await self._dispatcher.respond(call)
        except Exception as exc:
            self._violation(f"sim handler bug: {call.action} handler raised {exc!r}")
            answer = CallError(call.message_id, "InternalError", f"sim handler raised {exc!r}")
        else:
            errors = self._validator.errors(self.version, call.action, "response", payload)
            if errors:
                self._violation(f"sim handler bug: invalid {call.action} response: {errors}")
                answer = CallError(call.message_id, "InternalError", "sim handler bug")
            else:
                answer = CallResult(call.message_id, payload)
        await self._send_answer(answer)

    async def _send_answer(self, answer: CallResult | CallError) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.websocket.send(encode(answer))
