"""The gateway's error tree: every failure that can become an OCPP CALLERROR.

Layer: bottom. Imports nothing from the gateway. Each :class:`GatewayError` subclass
declares the canonical :class:`ErrorCode` it becomes on the wire; ``gateway.ocppj``
spells that code for the receiving side's OCPP version (OCPP-J 1.6 keeps the typos
``FormationViolation`` and ``OccurenceConstraintViolation``). The session is the only
place that turns these exceptions into CALLERROR frames.

Exceptions from websockets, sqlite3 or redis never become CALLERRORs: their adapters
wrap them and change session state (reconnect, outbox) instead.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """RPC error codes, canonical (OCPP 2.0.1 Part 4 §4.3) spelling."""

    FORMAT_VIOLATION = "FormatViolation"
    GENERIC_ERROR = "GenericError"
    INTERNAL_ERROR = "InternalError"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    PROTOCOL_ERROR = "ProtocolError"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
    SECURITY_ERROR = "SecurityError"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"


class GatewayError(Exception):
    """Base of every error the gateway answers with a CALLERROR."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, description: str, *, details: dict[str, object] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.details: dict[str, object] = details or {}


class FrameError(GatewayError):
    """The frame is not OCPP-J: not JSON, not an array, wrong element types.

    ``unique_id`` is the message id when it could still be read; OCPP 2.0.1 Part 4
    §4.2.3 answers unreadable ids with ``"-1"``. ``answerable`` is False for a broken
    CALLRESULT or CALLERROR: OCPP-J never answers an answer, so those are only logged.
    """

    code = ErrorCode.RPC_FRAMEWORK_ERROR

    def __init__(
        self,
        description: str,
        *,
        unique_id: str | None = None,
        code: ErrorCode | None = None,
        answerable: bool = True,
    ) -> None:
        super().__init__(description)
        self.unique_id = unique_id
        self.answerable = answerable
        if code is not None:
            self.code = code


class UnknownAction(GatewayError):
    """The receiver does not know the action at all."""

    code = ErrorCode.NOT_IMPLEMENTED


class ActionNotSupported(GatewayError):
    """A known action the other side cannot express (no 1.6 equivalent, say)."""

    code = ErrorCode.NOT_SUPPORTED


class InvalidPayload(GatewayError):
    """The payload does not validate against the official schema for its action.

    The code follows the schema rule that failed (OCPP-J 1.6 §4.2.3 definitions):
    missing field -> OccurrenceConstraintViolation, wrong JSON type ->
    TypeConstraintViolation, bad value (enum, length, format) ->
    PropertyConstraintViolation, anything else -> FormatViolation.
    """

    code = ErrorCode.FORMAT_VIOLATION

    def __init__(self, description: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(description)
        if code is not None:
            self.code = code


class UnmappedValue(GatewayError):
    """A valid value that has no counterpart in the other version."""

    code = ErrorCode.PROPERTY_CONSTRAINT_VIOLATION


class NotRegistered(GatewayError):
    """The CSMS has not accepted the station's BootNotification yet (2.0.1 B02.FR.09)."""

    code = ErrorCode.SECURITY_ERROR


class Overloaded(GatewayError):
    """Too many CALLs queued for one station and direction."""

    code = ErrorCode.GENERIC_ERROR


class PeerUnavailable(GatewayError):
    """The other side is not connected, and did not become connected in time."""

    code = ErrorCode.INTERNAL_ERROR


class CallTimeout(GatewayError):
    """The other side did not answer a forwarded CALL within the response timeout."""

    code = ErrorCode.INTERNAL_ERROR


class RemoteCallError(GatewayError):
    """The other side answered a forwarded CALL with a CALLERROR: relayed, re-spelled."""

    def __init__(self, code: ErrorCode, description: str, details: dict[str, object]) -> None:
        super().__init__(description, details=details)
        self.code = code
