"""The 1.6 security extension: security events and certificates (reference §2.16, §2.17).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.
"""

from __future__ import annotations

from typing import Final

from gateway.translate.types import Direction, Route

ROUTES: Final[dict[tuple[Direction, str], Route]] = {}
