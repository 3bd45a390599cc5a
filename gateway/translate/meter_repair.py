"""Vendor quirk repairs of 1.6 meter values, applied before 1.6 schema validation.

Layer: translate (sans-I/O). Real chargers send numbers where 1.6 wants strings, units
in the wrong case, or energy in kWh labelled Wh. Such a message is not refused: the
rules enabled for the station's vendor/model (``mappings/meter_quirks.toml``) repair
it, and the session counts every rule applied, so an operator sees which chargers
need them.
"""

from __future__ import annotations

from typing import Final

from gateway.ocppj import Payload
from gateway.translate.meter_values import (
    UNITS_V16,
    UNITS_V16_METER_VALUES,
    UnconvertibleSample,
    number_as_text,
)
from gateway.translate.tables import MeterQuirks

_DEFAULT_MEASURAND: Final = "Energy.Active.Import.Register"
_FREQUENCY: Final = "Frequency"

# The request key holding MeterValue elements, and the units its 1.6 schema accepts.
_REPAIRABLE: Final = {"meterValue": UNITS_V16_METER_VALUES, "transactionData": UNITS_V16}
# A unit's schema spelling by casefold; "celcius" becomes the correct spelling, which 1.6
# also accepts (the typo "Celcius" itself is valid, so never rewritten).
_SPELLING: Final = {unit.casefold(): unit for unit in UNITS_V16_METER_VALUES} | {
    "celcius": "Celsius"
}
_HERTZ: Final = frozenset({"hz", "hertz"})


def repair_meter_payload(payload: Payload, quirks: MeterQuirks) -> tuple[Payload, tuple[str, ...]]:
    """Apply the enabled vendor quirks to every sampled value of a 1.6 MeterValues
    (``meterValue``) or StopTransaction (``transactionData``) request.

    Returns the repaired payload, or ``payload`` itself when no rule applied, and the
    rules applied (MeterQuirks field names), one per sample per rule. Anything
    malformed is left as it is, for the schema validator to refuse.
    """
    if not isinstance(payload, dict):
        return payload, ()
    keys = [key for key in _REPAIRABLE if isinstance(payload.get(key), list)]
    if not keys:
        return payload, ()
    key = keys[0]
    units = _REPAIRABLE[key]
    applied: list[str] = []
    repaired = [_repair_element(element, quirks, units, applied) for element in payload[key]]
    if not applied:
        return payload, ()
    return {**payload, key: repaired}, tuple(applied)


def _repair_element(
    element: object, quirks: MeterQuirks, units: frozenset[str], applied: list[str]
) -> object:
    if not isinstance(element, dict) or not isinstance(element.get("sampledValue"), list):
        return element
    before = len(applied)
    samples = element["sampledValue"]
    repaired = [_repair_sample(sample, quirks, units, applied) for sample in samples]
    if len(applied) == before:  # a sample is replaced exactly when a rule applied to it
        return element
    return {**element, "sampledValue": repaired}


def _repair_sample(
    sample: object, quirks: MeterQuirks, units: frozenset[str], applied: list[str]
) -> object:
    """The sample with the enabled rules applied; ``sample`` itself when none applies
    (the usual case, so the copy is made only at the first repair)."""
    if not isinstance(sample, dict):
        return sample
    fixed: dict[str, object] | None = None
    rules: list[str] = []
    value = sample.get("value")
    if quirks.numeric_values and not isinstance(value, bool) and isinstance(value, int | float):
        try:
            text = number_as_text(value)
        except UnconvertibleSample:
            pass
        else:
            fixed = dict(sample)
            fixed["value"] = text
            rules.append("numeric_values")
    measurand = sample.get("measurand", _DEFAULT_MEASURAND)
    unit = sample.get("unit")
    if quirks.unit_spelling and isinstance(unit, str) and unit not in units:
        spelled = _SPELLING.get(unit.casefold())
        if spelled in units:  # "Hertz" is not, in StopTransaction
            fixed = dict(sample) if fixed is None else fixed
            fixed["unit"] = spelled
            rules.append("unit_spelling")
        elif unit.casefold() in _HERTZ and measurand == _FREQUENCY:
            fixed = dict(sample) if fixed is None else fixed
            del fixed["unit"]  # 1.6 Frequency is in Hertz by definition [16 §7.31]
            rules.append("unit_spelling")
    is_energy = isinstance(measurand, str) and measurand.startswith("Energy.")
    current = sample if fixed is None else fixed
    if quirks.energy_kwh_as_wh and is_energy and current.get("unit", "Wh") == "Wh":
        fixed = dict(sample) if fixed is None else fixed
        fixed["unit"] = "kWh"
        rules.append("energy_kwh_as_wh")
    if fixed is None:
        return sample
    applied.extend(rules)
    return fixed
