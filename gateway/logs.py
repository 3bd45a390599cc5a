"""Structured logging: every line carries the station (charge point) id it concerns.

A station session enters ``station_context(station_id)`` once; asyncio tasks copy the context
when they are created, so every task the session starts logs with the same station id.
``configure_logging`` installs one root handler writing either text lines::

    2026-11-21T10:00:00.123Z INFO  gateway.session [CP-001] message text key=value

or one JSON object per line (``fmt="json"``).  Values of ``extra=`` fields whose key mentions
a password, secret, token or authorization are never written; they become ``"***"``, and
passwords embedded in URLs (``wss://user:pw@host``) are masked.

This module must not import anything from the rest of the gateway (it is imported by all of
it); standard library and orjson only.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

import orjson

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "is_secret_key",
    "message_context",
    "message_id_var",
    "redact",
    "redact_url",
    "station_context",
    "station_id_var",
]

station_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ocpp_gateway_station_id", default=None
)
message_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ocpp_gateway_message_id", default=None
)

LOG_LEVELS: Mapping[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
LOG_FORMATS: tuple[str, ...] = ("text", "json")

REDACTED = "***"
_SECRET_MARKERS: tuple[str, ...] = ("password", "secret", "token", "authorization")
_HANDLER_NAME = "ocpp-gateway"
_MAX_DEPTH = 6
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@")
_BARE_VALUE = re.compile(r"[^\s=\"'\\]+")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS: frozenset[str] = frozenset(
    {
        *logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__,
        "message",
        "asctime",
        "taskName",
        "station_id",
        "message_id",
    }
)


@contextmanager
def station_context(station_id: str) -> Iterator[None]:
    """Log with ``station_id`` inside the block (and in every task created inside it)."""
    token = station_id_var.set(station_id)
    try:
        yield
    finally:
        station_id_var.reset(token)


class _MessageContext:
    """A class, not @contextmanager: it is entered for every CALL, and a generator-based
    context manager costs several times more."""

    __slots__ = ("_message_id", "_token")

    def __init__(self, message_id: str) -> None:
        self._message_id = message_id

    def __enter__(self) -> None:
        self._token = message_id_var.set(self._message_id)

    def __exit__(self, *exc_info: object) -> None:
        message_id_var.reset(self._token)


def message_context(message_id: str) -> _MessageContext:
    """Log with the OCPP message id inside the block (and tasks created inside it)."""
    return _MessageContext(message_id)


def redact(value: str) -> str:
    """What to log instead of a secret: always ``"***"`` (not even its length leaks)."""
    del value
    return REDACTED


def redact_url(text: str) -> str:
    """Mask passwords in URLs: ``wss://cp:hunter2@csms/ocpp`` -> ``wss://cp:***@csms/ocpp``."""
    if "@" not in text:
        return text
    return _URL_PASSWORD.sub(rf"\g<head>{REDACTED}@", text)


def is_secret_key(key: object) -> bool:
    """True for keys whose values must never be logged (password/secret/token/authorization)."""
    lowered = str(key).lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def _scrub(value: object, depth: int = 0) -> object:
    """A JSON-friendly copy of ``value`` with secret-keyed values and URL passwords masked."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, int) and not isinstance(value, bool) and not _INT_MIN <= value <= _INT_MAX:
        return str(value)  # orjson only encodes 64-bit integers
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return redact_url(str(value))
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if is_secret_key(key) else _scrub(item, depth + 1)
            for key, item in value.items()
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            item.name: REDACTED
            if is_secret_key(item.name)
            else _scrub(getattr(value, item.name), depth + 1)
            for item in dataclasses.fields(value)
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(item, depth + 1) for item in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return redact_url(str(value))


def _dumps(value: object) -> str:
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # last resort: stringify every value
        if isinstance(value, dict):
            flat = {
                str(key): item if isinstance(item, str) else str(item)
                for key, item in value.items()
            }
            return orjson.dumps(flat).decode()
        return orjson.dumps(str(value)).decode()


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _context_value(
    record: logging.LogRecord, attr: str, var: contextvars.ContextVar[str | None]
) -> str | None:
    value = getattr(record, attr, None)
    if value is None:
        value = var.get()
    return None if value is None else str(value)


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {
        key: REDACTED if is_secret_key(key) else _scrub(value)
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRS and not key.startswith("_")
    }


class _ContextFilter(logging.Filter):
    """Stamps ``station_id``/``message_id`` from the context onto records that lack them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "station_id", None) is None:
            record.station_id = station_id_var.get()
        if getattr(record, "message_id", None) is None:
            record.message_id = message_id_var.get()
        return True


class _GatewayFormatter(logging.Formatter):
    def _exception_text(self, record: logging.LogRecord) -> str | None:
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        parts = [redact_url(record.exc_text)] if record.exc_text else []
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return "\n".join(parts) or None


class TextFormatter(_GatewayFormatter):
    """``<ts> <LEVEL> <logger> [<station>] <msg> key=value ...`` plus any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        station = _context_value(record, "station_id", station_id_var)
        message_id = _context_value(record, "message_id", message_id_var)
        head = f"{_timestamp(record)} {record.levelname:<5} {record.name}"
        if station is not None:
            head += f" [{station}]"
        line = f"{head} {redact_url(record.getMessage())}"
        pairs: dict[str, object] = {}
        if message_id is not None:
            pairs["message_id"] = message_id
        pairs.update(_extras(record))
        for key, value in pairs.items():
            line += f" {key}={self._render(value)}"
        trace = self._exception_text(record)
        return f"{line}\n{trace}" if trace else line

    @staticmethod
    def _render(value: object) -> str:
        if isinstance(value, str) and _BARE_VALUE.fullmatch(value):
            return value
        return _dumps(value)


class JsonFormatter(_GatewayFormatter):
    """One JSON object per record: ts, level, logger, msg, station, message_id, extras, exc."""

    _CORE: frozenset[str] = frozenset(
        {"ts", "level", "logger", "msg", "station", "message_id", "exc", "stack"}
    )

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact_url(record.getMessage()),
            "station": _context_value(record, "station_id", station_id_var),
            "message_id": _context_value(record, "message_id", message_id_var),
        }
        for key, value in _extras(record).items():
            payload[f"extra_{key}" if key in self._CORE else key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc"] = redact_url(record.exc_text)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return _dumps(payload)


def configure_logging(
    *, level: str = "info", fmt: str = "text", stream: TextIO | None = None
) -> None:
    """Point the root logger at ``stream`` (default: stderr) in the given level and format.

    Idempotent: a handler installed by an earlier call is replaced, never stacked; handlers
    that others installed on the root logger are left alone.  ValueError for an unknown
    level or format.
    """
    numeric = LOG_LEVELS.get(level.strip().lower())
    if numeric is None:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
