"""Pre-serialised OCPP-J frames for the load generator and the stub CSMS.

Layer: bench. Standard library and orjson only.

The bench must measure the target, not itself: a generator that builds and validates
payloads per message would saturate before the gateway does. So every frame is
serialised once, and only the message id is spliced in per call (string concatenation,
no JSON work). Replies are recognised by prefix, and parsed only when the cheap check
fails (an error, or a CALL from the target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

__all__ = [
    "CALLRESULT_PREFIX",
    "MESSAGES",
    "MESSAGE_ID_LENGTH",
    "FrameTemplate",
    "call_template",
    "message_id",
    "not_implemented",
    "peek_call",
]

#: Real chargers mostly use UUIDs as message ids; the bench ids have the same length so
#: the frames are the size a fleet sends.
MESSAGE_ID_LENGTH: Final = 36
_ID_PREFIX: Final = "bench-"
CALLRESULT_PREFIX: Final = '[3,"'
_FIXED_TIME: Final = "2024-05-01T12:00:00.000Z"

#: A realistic 1.6 MeterValues outside a transaction: connector 1, no transactionId,
#: one periodic sample of the usual measurands. With a 36-character message id the
#: frame is 537 bytes, the message DESIGN.md's figures were measured with. Through the
#: gateway it becomes a 2.0.1 MeterValuesRequest for EVSE 1.
_METER_VALUES: Final = {
    "connectorId": 1,
    "meterValue": [
        {
            "timestamp": _FIXED_TIME,
            "sampledValue": [
                {
                    "value": "123456.78",
                    "context": "Sample.Periodic",
                    "measurand": "Energy.Active.Import.Register",
                    "location": "Outlet",
                    "unit": "Wh",
                },
                {"value": "11040.00", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": "16.02", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                {"value": "230.10", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                {"value": "16.000", "measurand": "Current.Offered", "unit": "A"},
            ],
        }
    ],
}

_BOOT: Final = {"chargePointVendor": "BenchCo", "chargePointModel": "LoadGen-1"}

#: The 1.6 requests a bench charger sends, by workload name.
MESSAGES: Final = {
    "meter-values": ("MeterValues", _METER_VALUES),
    "heartbeat": ("Heartbeat", {}),
    "boot": ("BootNotification", _BOOT),
}


@dataclass(frozen=True, slots=True)
class FrameTemplate:
    """A CALL frame with a hole for the message id: ``head + id + tail``."""

    action: str
    head: str
    tail: str

    def frame(self, message_id: str) -> str:
        return self.head + message_id + self.tail

    def size(self) -> int:
        """Bytes on the wire (payload, not websocket framing) with a bench-length id."""
        return len(self.frame("x" * MESSAGE_ID_LENGTH).encode())


def call_template(action: str, payload: object) -> FrameTemplate:
    body = orjson.dumps(payload).decode()
    return FrameTemplate(action, '[2,"', f'","{action}",{body}]')


def message_id(sequence: int) -> str:
    """A unique-per-connection id of :data:`MESSAGE_ID_LENGTH` characters."""
    return f"{_ID_PREFIX}{sequence:030d}"


def not_implemented(message_id_text: str) -> str:
    """A CALLERROR for a CALL the bench peer does not handle (the code is spelt the same
    in 1.6 and 2.0.1)."""
    frame = [4, message_id_text, "NotImplemented", "not handled by the bench peer", {}]
    return orjson.dumps(frame).decode()


def peek_call(text: str) -> tuple[str, str] | None:
    """``(message id, action)`` of a CALL frame, or None when ``text`` is not a CALL.

    The fast path reads the compact form orjson writes (``[2,"id","Action",...``)
    without parsing; anything else (spaces, escapes) falls back to a full parse.
    """
    if text.startswith('[2,"'):
        end = text.find('"', 4)
        if end > 4 and text[end - 1] != "\\" and text.startswith(',"', end + 1):
            action_end = text.find('"', end + 3)
            if action_end > end + 3:
                return text[4:end], text[end + 3 : action_end]
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if (
        isinstance(frame, list)
        and len(frame) >= 3
        and frame[0] == 2
        and isinstance(frame[1], str)
        and isinstance(frame[2], str)
    ):
        return frame[1], frame[2]
    return None
