"""1.6 connectorId <-> 2.0.1 (evseId, connectorId), per the station's EVSE layout.

Layer: translate (sans-I/O).

OCPP 1.6 has one connector level; 2.0.1 has EVSE -> connector, with at most one
transaction per EVSE (E01.FR.14). There is no normative mapping (reference
messages.md §1.1); the default keeps 1.6's one-transaction-per-connector semantics by
making each 1.6 connector n its own EVSE n with connector 1. A CPO whose charger has
two plugs on one power path configures an explicit layout. Connector 0 is the station
itself and never maps to an EVSE here: each message handles it (§1.1 table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.errors import UnmappedValue

# OCPP ids are integers; CSMSs and the state store hold them in 32 bits (EVSE) or 64.
MAX_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class EvseLayout:
    """An explicit connector table, or (empty) the default one EVSE per connector."""

    connectors: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    _reverse: Mapping[tuple[int, int], int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        frozen = MappingProxyType(dict(self.connectors))
        object.__setattr__(self, "connectors", frozen)
        reverse = {target: connector for connector, target in frozen.items()}
        if len(reverse) != len(frozen):
            raise ValueError("two 1.6 connectors map to the same EVSE connector")
        object.__setattr__(self, "_reverse", MappingProxyType(reverse))

    def to_v201(self, connector_id: int) -> tuple[int, int]:
        """The (evseId, connectorId) of 1.6 connector ``connector_id`` (>= 1)."""
        if connector_id < 1:
            raise UnmappedValue(f"connectorId {connector_id} is not an EVSE connector")
        if connector_id > MAX_ID:
            raise UnmappedValue(f"connectorId {connector_id} is beyond any EVSE id (2**31 - 1)")
        if not self.connectors:
            return connector_id, 1
        try:
            return self.connectors[connector_id]
        except KeyError:
            raise UnmappedValue(
                f"connectorId {connector_id} is not in this station's EVSE layout"
            ) from None

    def connectors_of(self, evse_id: int) -> list[int]:
        """The 1.6 connectors of 2.0.1 EVSE ``evse_id``, lowest first (none: no such EVSE)."""
        if not self.connectors:  # the default layout: 1.6 connector n is EVSE n
            return [evse_id] if evse_id >= 1 else []
        return sorted(c for c, (evse, _) in self.connectors.items() if evse == evse_id)

    def to_v16(self, evse_id: int, connector_id: int | None = None) -> int:
        """The 1.6 connectorId for a 2.0.1 EVSE (and connector, default the EVSE's first)."""
        if not self.connectors:
            if evse_id < 1:
                raise UnmappedValue(f"evseId {evse_id} is not an EVSE")
            if connector_id not in (None, 1):
                raise UnmappedValue(f"EVSE {evse_id} has only connector 1")
            return evse_id
        wanted = (evse_id, 1 if connector_id is None else connector_id)
        try:
            return self._reverse[wanted]
        except KeyError:
            raise UnmappedValue(
                f"EVSE {evse_id} connector {wanted[1]} is not in this station's layout"
            ) from None
