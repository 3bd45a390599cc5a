"""What the command modules share: the refusal they raise and how they show times.

Layer: top (used by ``gateway.credentials_cli`` and ``gateway.route_cli``).
"""

from __future__ import annotations

import datetime


class Refused(Exception):
    """A command refuses or fails: one line for stderr, and the exit code (2 for usage
    and configuration, 1 for "not found" and failures). Never holds a password or hash."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def utc_text(epoch: float) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    except (ValueError, OverflowError, OSError):  # NaN or out of range: shown, not fatal
        return "unknown"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
