"""Smart charging: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule
(reference §2.8, §3.6).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.
"""

from __future__ import annotations

from typing import Final

from gateway.translate.types import Direction, Route

ROUTES: Final[dict[tuple[Direction, str], Route]] = {}
