"""Meter values between OCPP 1.6 and 2.0.1: sampled values, signed data, trigger reasons,
and repairs of known vendor bugs. Facts: reference messages.md §2.9, §3.1 (MeterValues), §4.

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

The versions differ in four ways (§2.9): a 1.6 ``value`` is a decimal string, a 2.0.1
one a JSON number; a 1.6 ``unit`` is an enum, 2.0.1 ``unitOfMeasure`` a free unit with a
power-of-ten multiplier; Temperature and RPM exist only in 1.6, Energy.*.Net and
Energy.Apparent.* only in 2.0.1; 1.6 signs a reading with a second sample (``format:
SignedData``) whose value is the signature, 2.0.1 attaches ``signedMeterValue`` to the
numeric sample itself.

2.0.1 schemas forbid unknown properties, so every sample is built field by field, never
copied. Nothing here mutates its inputs. The message of :class:`UnconvertibleSample` is
one of a few fixed sentences (never a value from the wire), safe for logs and metrics.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from typing import Final

import orjson
from ocpp.v16.enums import Measurand
from ocpp.v201.enums import MeasurandEnumType

from gateway.ocppj import Payload
from gateway.translate.types import normalise_datetime


class UnconvertibleSample(ValueError):
    """A 1.6 sampled value with no 2.0.1 form; str(exc) says why (for a log line and metric).

    Also raised for a 2.0.1 sampled value with no 1.6 form."""


@dataclass(frozen=True, slots=True)
class MeterConversion:
    meter_values: tuple[Payload, ...]  # 2.0.1 MeterValueType list (each has >=1 sampledValue)
    dropped: tuple[str, ...] = ()  # one reason per sample that could not be converted


# --- vocabulary -----------------------------------------------------------------------

# Same enums, same defaults on both sides (§2.9): copied 1:1, and only when present.
_COPIED: Final = ("context", "measurand", "phase", "location")
_DEFAULT_MEASURAND: Final = "Energy.Active.Import.Register"
_DEFAULT_CONTEXT: Final = "Sample.Periodic"
_DEFAULT_LOCATION: Final = "Outlet"
_FREQUENCY: Final = "Frequency"
_SIGNED: Final = "SignedData"

_MEASURANDS_V16: Final[frozenset[str]] = frozenset(m.value for m in Measurand)
_MEASURANDS_V201: Final[frozenset[str]] = frozenset(m.value for m in MeasurandEnumType)

# 1.6 units spelled differently in 2.0.1 (§2.9, trap 8): the official 1.6 schema's typo,
# and mobilityhouse's extra "Hertz" (2.0.1 standard units list: "Hz").
_UNIT_V201: Final = {"Celcius": "Celsius", "Hertz": "Hz"}

# 1.6 UnitOfMeasure as the shipped schemas spell it: StopTransaction.transactionData has
# the OCA list; mobilityhouse's MeterValues schema adds "Hertz" (§2.9).
UNITS_V16: Final = frozenset(
    {"Wh", "kWh", "varh", "kvarh", "W", "kW", "VA", "kVA", "var", "kvar", "A", "V", "K"}
    | {"Celcius", "Celsius", "Fahrenheit", "Percent"}
)
UNITS_V16_METER_VALUES: Final = UNITS_V16 | {"Hertz"}

# 2.0.1 units that 1.6 can spell, as (base unit, power of ten): the k-prefixed pairs let a
# multiplier fold into the unit ({Wh, multiplier 3} is kWh) rather than into the value.
_UNIT_SCALE: Final[dict[str, tuple[str, int]]] = {
    **{unit: (unit, 0) for unit in ("Wh", "varh", "W", "VA", "var")},
    **{f"k{unit}": (unit, 3) for unit in ("Wh", "varh", "W", "VA", "var")},
    **{unit: (unit, 0) for unit in ("A", "V", "K", "Celsius", "Fahrenheit", "Percent")},
}
_SCALED_UNIT: Final = {scale: unit for unit, scale in _UNIT_SCALE.items()}

# SignedMeterValueType, in the order of the OCA application note's JSON [SMV §3.2.1], with
# the 2.0.1 maxLength of each field [S201].
_SIGNED_LIMITS: Final = {
    "signedMeterData": 2500,
    "signingMethod": 50,
    "encodingMethod": 50,
    "publicKey": 2500,
}

# --- numbers ------------------------------------------------------------------------

# What 1.6 calls a decimal: ASCII digits only (Decimal() also takes "NaN", "Infinity",
# "1_000" and non-ASCII digits, none of which a meter means).
_DECIMAL_TEXT: Final = re.compile(
    r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*"
)
_INT64: Final = 2**63  # orjson writes integers up to 64 bits
_SHORT: Final = 18  # characters: any integer this long is below 10**18 < _INT64
_MAX_EXPONENT: Final = 400  # beyond every finite double; bounds the text we write


def _parse_value(text: object) -> int | float:
    """1.6 decimal text as a JSON number: an int when integral (a register reading "1000"
    stays 1000 on the wire, not 1000.0), else the nearest double."""
    if not isinstance(text, str) or not _DECIMAL_TEXT.fullmatch(text):
        raise UnconvertibleSample("value is not a decimal number")
    if len(text) <= _SHORT and "e" not in text and "E" not in text:
        # The usual reading ("123456.78", "16.000"): no exponent and too short to reach
        # 2**63, so int() and float() give what the Decimal route below would, faster.
        whole, _, fraction = text.strip().partition(".")
        if fraction.rstrip("0"):
            return float(text)
        return int(whole) if whole.lstrip("+-") else 0  # ".0", "-.0"
    number = Decimal(text)
    # adjusted() first: int() of "1e999999999" would build a billion-digit integer.
    if number.adjusted() < 19 and number == number.to_integral_value() and abs(number) < _INT64:
        return int(number)
    as_float = float(number)
    if not math.isfinite(as_float):
        raise UnconvertibleSample("value is out of range for a JSON number")
    return as_float


def _decimal(value: object) -> Decimal:
    """A JSON number as the decimal its text showed: repr() is the shortest text that
    reads back as the same double, so 0.1 is 0.1, not 0.1000000000000000055."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnconvertibleSample("value is not a number")
    number = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if not number.is_finite():
        raise UnconvertibleSample("value is out of range for a JSON number")
    return number


def _scaled(number: Decimal, power: int) -> Decimal:
    """number * 10**power, exactly (Decimal.scaleb rounds to the context's precision)."""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite: _decimal checked
    return Decimal((sign, digits, exponent + power))


def number_as_text(value: int | float) -> str:
    """A JSON number as 1.6 wants a sampled value: plain decimal text, no exponent.
    Raises UnconvertibleSample for NaN, infinities and values too large to write."""
    return _decimal_text(_decimal(value))


def _decimal_text(number: Decimal) -> str:
    """1.6 value text: plain decimal, no exponent, no trailing zeros ("1000", "12.5")."""
    if number.is_zero():
        return "0"
    if abs(number.adjusted()) > _MAX_EXPONENT:
        raise UnconvertibleSample("value is out of range for a JSON number")
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- 1.6 -> 2.0.1 -------------------------------------------------------------------


def _copied(sampled: Payload) -> Payload:
    return {key: sampled[key] for key in _COPIED if key in sampled}


def _check_measurand(sampled: Payload, known: frozenset[str], version: str) -> str:
    """The sample's measurand, if ``version`` has it: Temperature and RPM are not in 2.0.1
    MeasurandEnumType (§2.9, trap 7), Energy.*.Net and Energy.Apparent.* not in 1.6."""
    measurand: str = sampled.get("measurand", _DEFAULT_MEASURAND)
    if measurand not in known:
        # Named only when an enum value of either version, to keep the message bounded.
        named = measurand if measurand in _MEASURANDS_V16 | _MEASURANDS_V201 else "unknown"
        raise UnconvertibleSample(f"measurand {named} does not exist in OCPP {version}")
    return measurand


def sampled_value_to_v201(sampled: Payload) -> Payload:
    """One 1.6 SampledValue as a 2.0.1 SampledValueType (reference §2.9).

    Raises:
        UnconvertibleSample: a measurand 2.0.1 lacks (Temperature, RPM), a value that is
            not a finite decimal, or a SignedData sample: its value is a signature, not a
            number (:func:`meter_values_to_v201` merges it into its Raw twin).
    """
    if sampled.get("format") == _SIGNED:
        raise UnconvertibleSample("signed sample has no numeric value of its own")
    _check_measurand(sampled, _MEASURANDS_V201, "2.0.1")
    converted: Payload = {"value": _parse_value(sampled.get("value")), **_copied(sampled)}
    unit = sampled.get("unit")
    if unit is None and sampled.get("measurand") == _FREQUENCY:
        unit = "Hz"  # 1.6 Frequency is in Hertz by definition [16 §7.31; 16E 3.86]
    if unit is not None:
        converted["unitOfMeasure"] = {"unit": _UNIT_V201.get(unit, unit)}
    return converted


_HEX: Final = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_OCMF: Final = "OCMF|"


def _signed_meter_value(value: object) -> Payload:
    """2.0.1 SignedMeterValueType from the value of a 1.6 SignedData sample (§2.9).

    Three forms: the OCA JSON [SMV §3.2.1]; the hex block of 1.6 §7.49 (re-encoded to
    Base64; OCMF is recognised by its header, other formats are vendor-specific, so
    encodingMethod stays empty); plain OCMF text. The signing method and public key of a
    hex or OCMF block are inside it (OCMF "SA"), hence empty (**inferred**, §2.9).
    """
    if not isinstance(value, str):
        raise UnconvertibleSample("signed value is not a string")
    if value.lstrip().startswith("{"):
        signed = _oca_signed(value)
    elif _HEX.fullmatch(value):
        block = bytes.fromhex(value)
        method = "OCMF" if block.startswith(_OCMF.encode()) else ""
        signed = _signed(base64.b64encode(block).decode(), method)
    elif value.startswith(_OCMF):
        signed = _signed(base64.b64encode(value.encode()).decode(), "OCMF")
    else:
        raise UnconvertibleSample("signed value is neither OCA JSON, hex nor OCMF")
    if any(len(signed[key]) > limit for key, limit in _SIGNED_LIMITS.items()):
        raise UnconvertibleSample("signed meter value exceeds the OCPP 2.0.1 size limits")
    return signed


def _signed(data: str, encoding: str) -> Payload:
    return dict(signedMeterData=data, signingMethod="", encodingMethod=encoding, publicKey="")


def _oca_signed(text: str) -> Payload:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or not {"signedMeterData", "encodingMethod"} <= parsed.keys():
        raise UnconvertibleSample("signed value is not valid OCA JSON")
    # signingMethod and publicKey became optional in OCPP 2.1, which [SMV] also covers;
    # 2.0.1 requires all four, so absent ones are sent empty. Other keys are not copied.
    signed = {key: parsed.get(key, "") for key in _SIGNED_LIMITS}
    if not all(isinstance(field, str) for field in signed.values()):
        raise UnconvertibleSample("signed value is not valid OCA JSON")
    return signed


def _sample_key(sampled: Payload) -> tuple[object, ...]:
    """What makes a Raw sample the twin of a signed one, defaults spelled out."""
    measurand = sampled.get("measurand", _DEFAULT_MEASURAND)
    location = sampled.get("location", _DEFAULT_LOCATION)
    return measurand, sampled.get("phase"), location, sampled.get("context", _DEFAULT_CONTEXT)


def _merge_signature(
    converted: list[Payload | None], sampled_values: Sequence[Payload], index: int
) -> None:
    """Attach the signed sample at ``index`` to its Raw twin among ``converted``.

    2.0.1 ``value`` is required even when signed (§2.9 trap), so the number comes from a
    Raw sample of the same measurand/phase/location/context. The nearest one before the
    signature wins, else the first after it: chargers write the pair in either order, and
    one meterValue may hold several such pairs.
    """
    sampled = sampled_values[index]
    _check_measurand(sampled, _MEASURANDS_V201, "2.0.1")
    signature = _signed_meter_value(sampled.get("value"))
    key = _sample_key(sampled)
    for candidate in chain(range(index - 1, -1, -1), range(index + 1, len(converted))):
        target = converted[candidate]
        if target is None or "signedMeterValue" in target:
            continue
        if _sample_key(sampled_values[candidate]) == key:
            converted[candidate] = {**target, "signedMeterValue": signature}
            return
    raise UnconvertibleSample("signed sample has no Raw sample to take its value from")


def _element_samples(sampled_values: Sequence[Payload]) -> tuple[list[Payload], list[str]]:
    converted: list[Payload | None] = []  # one slot per 1.6 sample; None: not emitted
    reasons: dict[int, str] = {}
    for index, sampled in enumerate(sampled_values):
        if sampled.get("format") == _SIGNED:
            converted.append(None)  # merged into its Raw twin below
            continue
        try:
            converted.append(sampled_value_to_v201(sampled))
        except UnconvertibleSample as exc:
            converted.append(None)
            reasons[index] = str(exc)
    for index, sampled in enumerate(sampled_values):
        if sampled.get("format") == _SIGNED:
            try:
                _merge_signature(converted, sampled_values, index)
            except UnconvertibleSample as exc:
                reasons[index] = str(exc)
    samples = [sample for sample in converted if sample is not None]
    return samples, [reasons[index] for index in sorted(reasons)]


def meter_values_to_v201(meter_values: Sequence[Payload]) -> MeterConversion:
    """1.6 MeterValue elements as 2.0.1 MeterValueType (§2.9, §3.1).

    A sample with no 2.0.1 form is dropped and its reason listed, in sample order; an
    element left with no sample is omitted (2.0.1 sampledValue has minItems 1, §3.1).
    """
    converted: list[Payload] = []
    dropped: list[str] = []
    for element in meter_values:
        samples, reasons = _element_samples(element["sampledValue"])
        dropped.extend(reasons)
        if samples:
            timestamp = normalise_datetime(element["timestamp"])
            converted.append({"timestamp": timestamp, "sampledValue": samples})
    return MeterConversion(tuple(converted), tuple(dropped))


# --- 2.0.1 -> 1.6 -------------------------------------------------------------------


def _unit_v16(unit_of_measure: Payload | None, measurand: str) -> tuple[str | None, int]:
    """The 1.6 unit, and the power of ten still to apply to the value."""
    if unit_of_measure is None:
        return None, 0
    multiplier: int = unit_of_measure.get("multiplier", 0)
    unit = unit_of_measure.get("unit")
    if unit is None and multiplier and measurand.startswith("Energy."):
        unit = "Wh"  # the schema's default for Energy measurands [S201 UnitOfMeasureType]
    if unit is None or (unit == "Hz" and measurand == _FREQUENCY):
        return None, multiplier  # 1.6 Frequency has no unit: Hertz by definition
    if unit not in _UNIT_SCALE:
        raise UnconvertibleSample("unit has no OCPP 1.6 spelling")
    base, power = _UNIT_SCALE[unit]
    folded = _SCALED_UNIT.get((base, power + multiplier))
    return (folded, 0) if folded is not None else (unit, multiplier)


def sampled_value_to_v16(sampled: Payload) -> list[Payload]:
    """One 2.0.1 SampledValueType as 1.6 SampledValues: the reading, and when signed a
    second sample with format SignedData carrying the OCA JSON [SMV §3.2.1].

    Raises:
        UnconvertibleSample: a 2.0.1-only measurand (Energy.*.Net, Energy.Apparent.*) or
            a unit 1.6 cannot spell.
    """
    measurand = _check_measurand(sampled, _MEASURANDS_V16, "1.6")
    unit, power = _unit_v16(sampled.get("unitOfMeasure"), measurand)
    copied = _copied(sampled)
    raw: Payload = {"value": _decimal_text(_scaled(_decimal(sampled["value"]), power)), **copied}
    if unit is not None:
        raw["unit"] = unit
    if "signedMeterValue" not in sampled:
        return [raw]
    signed = sampled["signedMeterValue"]
    oca = {key: signed[key] for key in _SIGNED_LIMITS if key in signed}
    return [raw, {"value": orjson.dumps(oca).decode(), "format": _SIGNED, **copied}]


def meter_value_to_v16(meter_value: Payload) -> Payload:
    """One 2.0.1 MeterValueType as a 1.6 MeterValue (customData has no 1.6 place).

    Raises:
        UnconvertibleSample: a sample has no 1.6 form (see :func:`sampled_value_to_v16`).
    """
    samples = [
        out for sampled in meter_value["sampledValue"] for out in sampled_value_to_v16(sampled)
    ]
    return {"timestamp": meter_value["timestamp"], "sampledValue": samples}


# --- TransactionEvent triggerReason (§3.1 MeterValues, §4.2 step 2) ------------------

_CONTEXT_TRIGGER: Final = {
    "Sample.Periodic": "MeterValuePeriodic",  # J02.FR.11
    "Sample.Clock": "MeterValueClock",  # J01.FR.22
    "Trigger": "Trigger",  # F06.FR.07
    "Transaction.Begin": "MeterValuePeriodic",  # SignedDataReceived when signed (inferred)
    "Transaction.End": "MeterValuePeriodic",
    "Interruption.Begin": "AbnormalCondition",  # inferred
    "Interruption.End": "AbnormalCondition",
    "Other": "MeterValuePeriodic",
}
_SIGNED_CONTEXTS: Final = frozenset({"Transaction.Begin", "Transaction.End"})

# One event has one triggerReason, so when one element mixes contexts the first of these
# wins (E03.FR.12: the more specific trigger): an interruption is what the CSMS most needs
# to see; a Trigger answers its own TriggerMessage; signed begin/end readings are what
# SignedDataReceived announces; a clock-aligned sample is more specific than periodic.
_TRIGGER_PRECEDENCE: Final = (
    "AbnormalCondition",
    "Trigger",
    "SignedDataReceived",
    "MeterValueClock",
    "MeterValuePeriodic",
)


def _sample_trigger(sampled: Payload) -> str:
    context = sampled.get("context", _DEFAULT_CONTEXT)
    if context in _SIGNED_CONTEXTS and "signedMeterValue" in sampled:
        return "SignedDataReceived"
    return _CONTEXT_TRIGGER.get(context, "MeterValuePeriodic")


def trigger_reason_for(meter_value: Payload) -> str:
    """The TriggerReasonEnumType of a TransactionEvent(Updated) carrying this 2.0.1
    MeterValueType (reference §3.1 MeterValues)."""
    found = {_sample_trigger(sampled) for sampled in meter_value.get("sampledValue", ())}
    return next((reason for reason in _TRIGGER_PRECEDENCE if reason in found), "MeterValuePeriodic")
