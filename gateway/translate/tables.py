"""The mapping tables converters consult, as immutable values.

Layer: translate (sans-I/O). The data itself lives in ``mappings/*.toml``;
``gateway.mappings`` reads and validates it at start-up and builds these values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.translate.variables import DeviceModel, Tier, VendorDeviceModel, apply_vendor

__all__ = [
    "ErrorEvent",
    "IdTokenRule",
    "IdTokenRules",
    "MeterQuirks",
    "Tier",
    "TranslationTables",
    "VendorIdTokenRules",
    "VendorMeterQuirks",
]

_T = TypeVar("_T")


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
class MeterQuirks:
    """Known charger bugs in 1.6 meter values, repaired before schema validation.

    Refusing a MeterValues or StopTransaction for a cosmetic fault would lose billing
    data (a charger resends a refused transaction message a few times, then discards
    it), so the gateway normalises these instead, and counts each repair. The field
    names are the rule names: ``gateway.translate.meter_repair.repair_meter_payload``
    reports them, and they label the ``ocpp_gateway_meter_normalisations_total`` metric.
    """

    numeric_values: bool = True  # a JSON number where 1.6 requires a string value
    unit_spelling: bool = True  # "kwh", "celsius": a 1.6 unit in the wrong case or spelling
    energy_kwh_as_wh: bool = False  # Energy.* labelled Wh (or unlabelled) that is really kWh


@dataclass(frozen=True, slots=True)
class VendorMeterQuirks:
    """Per-vendor (and optionally model) replacement for the default meter quirks."""

    vendor: str
    model: str | None
    quirks: MeterQuirks


def _for_station(
    entries: Iterable[tuple[str, str | None, _T]], vendor: str | None, model: str | None
) -> _T | None:
    """The value of the most specific entry: vendor+model, then vendor alone.

    1.6 chargePointVendor/chargePointModel are CiString, so the match ignores case."""
    if vendor is None:
        return None
    vendor_wide: _T | None = None
    for entry_vendor, entry_model, value in entries:
        if entry_vendor.casefold() != vendor.casefold():
            continue
        if entry_model is None:
            if vendor_wide is None:
                vendor_wide = value
        elif model is not None and entry_model.casefold() == model.casefold():
            return value
    return vendor_wide


@dataclass(frozen=True, slots=True)
class TranslationTables:
    error_events: Mapping[str, ErrorEvent]
    id_tokens: IdTokenRules
    vendor_id_tokens: tuple[VendorIdTokenRules, ...] = field(default_factory=tuple)
    meter_quirks: MeterQuirks = field(default_factory=MeterQuirks)
    vendor_meter_quirks: tuple[VendorMeterQuirks, ...] = ()
    device_model: DeviceModel = field(default_factory=lambda: DeviceModel(()))
    vendor_device_models: tuple[VendorDeviceModel, ...] = ()

    def id_token_rules_for(self, vendor: str | None, model: str | None) -> IdTokenRules:
        """The most specific rules for a station: vendor+model, then vendor, then default."""
        entries = ((e.vendor, e.model, e.rules) for e in self.vendor_id_tokens)
        found = _for_station(entries, vendor, model)
        return self.id_tokens if found is None else found

    def meter_quirks_for(self, vendor: str | None, model: str | None) -> MeterQuirks:
        """The most specific quirks for a station: vendor+model, then vendor, then default."""
        entries = ((e.vendor, e.model, e.quirks) for e in self.vendor_meter_quirks)
        found = _for_station(entries, vendor, model)
        return self.meter_quirks if found is None else found

    def device_model_for(self, vendor: str | None, model: str | None) -> DeviceModel:
        """The device model rows for a station: the default table with the most
        specific vendor file (vendor+model, then vendor) applied."""
        entries = ((e.vendor, e.model, e) for e in self.vendor_device_models)
        return apply_vendor(self.device_model, _for_station(entries, vendor, model))
