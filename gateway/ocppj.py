"""OCPP-J RPC framing (OCPP-J 1.6 §4, OCPP 2.0.1 Part 4 §4): pure, orjson.

Layer: bottom; imports only ``gateway.errors``. No I/O, no asyncio.

A frame is a JSON array: ``[2, id, action, payload]`` (CALL), ``[3, id, payload]``
(CALLRESULT) or ``[4, id, code, description, details]`` (CALLERROR). :func:`parse`
turns text into one of three frozen values or raises :class:`~gateway.errors.FrameError`;
nothing else escapes it. The ``dump_*`` functions build frames, and
:func:`error_code_for` spells an error code for the version of the side that receives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Final

import orjson

from gateway.errors import ErrorCode, FrameError

#: A message payload. The only place ``Any`` is allowed: JSON is untyped until a
#: schema or a TypedDict in ``gateway.translate`` gives it a shape.
Payload = dict[str, Any]

MAX_UNIQUE_ID_LENGTH: Final = 36  # both versions: "maximum of 36 characters"
MAX_ERROR_DESCRIPTION: Final = 255  # 2.0.1 Part 4 §4.2.3


class Version(StrEnum):
    """OCPP versions, spelled as their websocket subprotocols."""

    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"


class MessageType(IntEnum):
    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4


@dataclass(frozen=True, slots=True)
class Call:
    unique_id: str
    action: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class CallResult:
    unique_id: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class CallError:
    unique_id: str
    code: str  # as received: may be a 1.6 spelling or a code we do not know
    description: str
    details: Payload


Frame = Call | CallResult | CallError

# 1.6 spells two codes differently and lacks the two codes 2.0.1 added; those are
# answered with the nearest 1.6 code (OCPP-J 1.6 §4.2.3; errata §5.1/5.2 keep the typos).
_V16_SPELLING: Final[dict[ErrorCode, str]] = {
    ErrorCode.FORMAT_VIOLATION: "FormationViolation",
    ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION: "OccurenceConstraintViolation",
    ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED: "NotImplemented",
    ErrorCode.RPC_FRAMEWORK_ERROR: "FormationViolation",
}

# Every spelling found in the field, for reading a CALLERROR from either side. 2.0.1
# CSMSs disagree on "Occurence"/"Occurrence" (reference sources.md U5): accept both.
_READ_SPELLINGS: Final[dict[str, ErrorCode]] = {
    **{code.value: code for code in ErrorCode},
    "FormationViolation": ErrorCode.FORMAT_VIOLATION,
    "OccurenceConstraintViolation": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
}


def error_code_for(code: ErrorCode, version: Version) -> str:
    """Spell ``code`` for a receiver speaking ``version``."""
    if version is Version.V16:
        return _V16_SPELLING.get(code, code.value)
    return code.value


def read_error_code(wire: str) -> ErrorCode:
    """Read a received error code in any version's spelling; unknown codes are Generic."""
    return _READ_SPELLINGS.get(wire, ErrorCode.GENERIC_ERROR)


def parse(data: str | bytes) -> Frame:
    """Parse one websocket message into a frame.

    Raises:
        FrameError: with ``unique_id`` set when the id could be read, so the sender can
            be answered with a CALLERROR carrying it.
    """
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    if not isinstance(message, list) or len(message) < 2:
        raise FrameError("an OCPP-J message is a JSON array of 3 to 5 elements")
    kind, unique_id = message[0], message[1]
    if not isinstance(unique_id, str) or not unique_id:
        raise FrameError("message id must be a non-empty string")
    if len(unique_id) > MAX_UNIQUE_ID_LENGTH:
        raise FrameError("message id longer than 36 characters")
    is_int = type(kind) is int
    if is_int and kind == MessageType.CALL:
        return _parse_call(message, unique_id)
    if is_int and kind == MessageType.CALLRESULT:
        if len(message) != 3 or not isinstance(message[2], dict):
            raise FrameError(
                "CALLRESULT must be [3, id, {payload}]", unique_id=unique_id, answerable=False
            )
        return CallResult(unique_id, message[2])
    if is_int and kind == MessageType.CALLERROR:
        return _parse_call_error(message, unique_id)
    raise FrameError(
        f"unknown message type {kind!r}",
        unique_id=unique_id,
        code=ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
    )


def _parse_call(message: list[Any], unique_id: str) -> Call:
    if len(message) != 4:
        raise FrameError("CALL must be [2, id, action, {payload}]", unique_id=unique_id)
    action, payload = message[2], message[3]
    if not isinstance(action, str) or not action:
        raise FrameError("action must be a non-empty string", unique_id=unique_id)
    if not isinstance(payload, dict):
        raise FrameError("CALL payload must be a JSON object", unique_id=unique_id)
    return Call(unique_id, action, payload)


def _parse_call_error(message: list[Any], unique_id: str) -> CallError:
    def broken(why: str) -> FrameError:
        return FrameError(why, unique_id=unique_id, answerable=False)

    if len(message) != 5:
        raise broken("CALLERROR must be [4, id, code, description, {details}]")
    code, description, details = message[2], message[3], message[4]
    if not isinstance(code, str) or not isinstance(description, str):
        raise broken("CALLERROR code and description must be strings")
    if not isinstance(details, dict):
        raise broken("CALLERROR details must be a JSON object")
    return CallError(unique_id, code, description, details)


def dump_call(unique_id: str, action: str, payload: Payload) -> str:
    return orjson.dumps([MessageType.CALL, unique_id, action, payload]).decode()


def dump_result(unique_id: str, payload: Payload) -> str:
    return orjson.dumps([MessageType.CALLRESULT, unique_id, payload]).decode()


def dump_error(
    unique_id: str,
    code: ErrorCode,
    description: str,
    version: Version,
    details: Payload | None = None,
) -> str:
    """Build a CALLERROR for a receiver speaking ``version``."""
    return orjson.dumps(
        [
            MessageType.CALLERROR,
            unique_id,
            error_code_for(code, version),
            description[:MAX_ERROR_DESCRIPTION],
            details or {},
        ]
    ).decode()
