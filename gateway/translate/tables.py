"""The mapping tables converters consult, as immutable values.

Layer: translate (sans-I/O). The data itself lives in ``mappings/*.toml``;
``gateway.mappings`` reads and validates it at start-up and builds these values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Tier(StrEnum):
    """Where in the 2.0.1 device model a reported component sits."""

    STATION = "station"
    EVSE = "evse"
    CONNECTOR = "connector"


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """The NotifyEvent component/variable that carries one 1.6 ChargePointErrorCode."""

    component: str
    variable: str
    tier: Tier


@dataclass(frozen=True, slots=True)
class IdTokenRule:
    pattern: re.Pattern[str]
    token_type: str  # IdTokenEnumType value


@dataclass(frozen=True, slots=True)
class IdTokenRules:
    """Ordered rules inferring a 2.0.1 IdTokenEnumType from a 1.6 idTag's form.

    1.6 has no token type; 2.0.1 requires one and real CSMSs check it against the
    token's form (ISO14443 = 4 or 7 byte UID as 8 or 14 hex digits, 2.0.1 §3.43).
    """

    rules: tuple[IdTokenRule, ...]
    default: str

    def infer(self, id_tag: str) -> str:
        for rule in self.rules:
            if rule.pattern.fullmatch(id_tag):
                return rule.token_type
        return self.default


@dataclass(frozen=True, slots=True)
class VendorIdTokenRules:
    """Per-vendor (and optionally model) replacements for the default rules."""

    vendor: str
    model: str | None
    rules: IdTokenRules


@dataclass(frozen=True, slots=True)
class TranslationTables:
    error_events: Mapping[str, ErrorEvent]
    id_tokens: IdTokenRules
    vendor_id_tokens: tuple[VendorIdTokenRules, ...] = field(default_factory=tuple)

    def id_token_rules_for(self, vendor: str | None, model: str | None) -> IdTokenRules:
        """The most specific rules for a station: vendor+model, then vendor, then default."""
        best: IdTokenRules | None = None
        for entry in self.vendor_id_tokens:
            if vendor is None or entry.vendor.casefold() != vendor.casefold():
                continue
            if entry.model is None:
                best = best or entry.rules
            elif model is not None and entry.model.casefold() == model.casefold():
                return entry.rules
        return best or self.id_tokens
