"""Tests for gateway.translate.meter_values: sampled values both ways, signed data,
trigger reasons and vendor repairs (reference messages.md §2.9, §3.1 MeterValues).

Expected outputs are written by hand from the reference. Every 2.0.1 output is validated
against the official 2.0.1 MeterValuesRequest schema, every 1.6 output against the 1.6
MeterValues and StopTransaction schemas.
"""

from __future__ import annotations

import base64
import copy
import importlib.resources
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.v16.enums import Location, Measurand, Phase, ReadingContext
from ocpp.v201.enums import MeasurandEnumType

from gateway.ocppj import Payload, Version
from gateway.schemas import Kind, validate
from gateway.translate.meter_repair import repair_meter_payload
from gateway.translate.meter_values import (
    MeterConversion,
    UnconvertibleSample,
    meter_value_to_v16,
    meter_values_to_v201,
    sampled_value_to_v16,
    sampled_value_to_v201,
    trigger_reason_for,
)
from gateway.translate.tables import MeterQuirks

TS = "2024-05-01T11:59:58Z"  # a charger timestamp (tests/data/README.md convention)
DEFAULT_QUIRKS = MeterQuirks()  # numbers and spellings repaired, energy units trusted
ALL_QUIRKS = MeterQuirks(numeric_values=True, unit_spelling=True, energy_kwh_as_wh=True)
NO_QUIRKS = MeterQuirks(numeric_values=False, unit_spelling=False, energy_kwh_as_wh=False)

# The OCA signed-meter-value JSON a 1.6 charger puts in a SignedData value [SMV §3.2.1].
SIGNED = {
    "signedMeterData": "T0NNRnx7IkZWIjoiMS4wIn18eyJTQSI6IkVDRFNBLXNlY3AyNTZyMS1TSEEyNTYifQ==",
    "signingMethod": "ECDSA-secp256r1-SHA256",
    "encodingMethod": "OCMF",
    "publicKey": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",
}
SIGNED_TEXT = json.dumps(SIGNED)


def _v16_units(schema_file: str, key: str) -> list[str]:
    """The 1.6 UnitOfMeasure enum exactly as a shipped schema spells it."""
    path = importlib.resources.files("ocpp") / "v16" / "schemas" / schema_file
    schema = json.loads(path.read_text(encoding="utf-8"))
    sampled = schema["properties"][key]["items"]["properties"]["sampledValue"]
    units: list[str] = sampled["items"]["properties"]["unit"]["enum"]
    return units


UNITS_METER_VALUES = _v16_units("MeterValues.json", "meterValue")  # with "Hertz"
UNITS_STOP = _v16_units("StopTransaction.json", "transactionData")  # the OCA list


def assert_valid_v201(meter_values: Sequence[Payload]) -> None:
    """A 2.0.1 MeterValueType list validates inside a MeterValuesRequest."""
    payload = {"evseId": 1, "meterValue": list(meter_values)}
    validate(Version.V201, "MeterValues", Kind.REQUEST, payload)


def assert_valid_v16(meter_values: Sequence[Payload]) -> None:
    """A 1.6 MeterValue list validates in MeterValues and in StopTransaction."""
    elements = list(meter_values)
    validate(Version.V16, "MeterValues", Kind.REQUEST, {"connectorId": 1, "meterValue": elements})
    stop = {"transactionId": 1, "timestamp": TS, "meterStop": 0, "transactionData": elements}
    validate(Version.V16, "StopTransaction", Kind.REQUEST, stop)


def assert_valid_v16_input(elements: list[Payload]) -> None:
    """A charger's MeterValue list is valid 1.6 ("Hertz" is a MeterValues unit only)."""
    validate(Version.V16, "MeterValues", Kind.REQUEST, {"connectorId": 1, "meterValue": elements})


def v201(sampled: Payload) -> Payload:
    """sampled_value_to_v201 of a valid 1.6 sample: output schema-checked, input intact."""
    assert_valid_v16_input([{"timestamp": TS, "sampledValue": [sampled]}])
    before = copy.deepcopy(sampled)
    converted = sampled_value_to_v201(sampled)
    assert sampled == before
    assert_valid_v201([{"timestamp": TS, "sampledValue": [converted]}])
    return converted


def v16(sampled: Payload) -> list[Payload]:
    """sampled_value_to_v16 of a valid 2.0.1 sample: output schema-checked, input intact."""
    assert_valid_v201([{"timestamp": TS, "sampledValue": [sampled]}])
    before = copy.deepcopy(sampled)
    converted = sampled_value_to_v16(sampled)
    assert sampled == before
    assert_valid_v16([{"timestamp": TS, "sampledValue": converted}])
    return converted


def convert(*samples: Payload) -> MeterConversion:
    """meter_values_to_v201 of one valid 1.6 element: output schema-checked, input intact."""
    elements = [{"timestamp": TS, "sampledValue": list(samples)}]
    assert_valid_v16_input(elements)
    before = copy.deepcopy(elements)
    result = meter_values_to_v201(elements)
    assert elements == before
    if result.meter_values:
        assert_valid_v201(result.meter_values)
    return result


# --- 1.6 -> 2.0.1: values -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1000", 1000),
        ("12.50", 12.5),
        ("0.001", 0.001),
        ("-3", -3),
        ("+7.0", 7),
        ("1e3", 1000),
        ("1.5E-2", 0.015),
        (".5", 0.5),
        ("0", 0),
        ("230.1", 230.1),
    ],
)
def test_decimal_text_becomes_a_json_number(text: str, number: float) -> None:
    """1.6 value text becomes a 2.0.1 number, an integer when integral (§2.9 value)."""
    converted = v201({"value": text})
    assert converted == {"value": number}
    assert isinstance(converted["value"], int) == isinstance(number, int)


def _decimal_reference(text: str) -> int | float:
    """What a 1.6 decimal means as a JSON number, from Decimal alone (no fast path)."""
    number = Decimal(text)
    if number == number.to_integral_value() and abs(number) < 2**63:
        return int(number)
    return float(number)


_DECIMAL_TEXTS = st.builds(
    lambda sign, whole, point, fraction, pad: f"{pad}{sign}{whole}{point}{fraction}{pad}",
    st.sampled_from(["", "+", "-"]),
    st.text("0123456789", max_size=20),
    st.sampled_from(["", "."]),
    st.text("0000123456789", max_size=20),
    st.sampled_from(["", " "]),
).filter(lambda text: any(c.isdigit() for c in text) and ("." in text or text.strip("+- ")))


@given(_DECIMAL_TEXTS)
@settings(max_examples=2000, deadline=None)
def test_every_decimal_text_reads_as_its_exact_value(text: str) -> None:
    """Short readings take a fast path (int()/float(), no Decimal); long ones, exponents
    and integral values beyond 2**63 do not. Either way the number is the one the text
    means: an int exactly when integral and within 64 bits, else the nearest double."""
    if not text.strip().lstrip("+-").replace(".", "", 1).isdigit():
        return  # "+." and the like: not a decimal, covered by the refusal tests
    converted = sampled_value_to_v201({"value": text})["value"]
    expected = _decimal_reference(text)
    assert converted == expected
    assert type(converted) is type(expected)


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-inf", "sNaN", "abc", "", "12,5", "1_000", "\u0661\u0662", "0x10"]
)
def test_text_that_is_not_a_finite_decimal_is_unconvertible(text: str) -> None:
    """NaN, infinities, separators and non-ASCII digits are no 1.6 decimal (§2.9 value)."""
    with pytest.raises(UnconvertibleSample, match="not a decimal number"):
        sampled_value_to_v201({"value": text})


def test_decimal_beyond_a_double_is_unconvertible() -> None:
    """1e999 is a decimal, but no JSON number a CSMS can read."""
    with pytest.raises(UnconvertibleSample, match="out of range"):
        sampled_value_to_v201({"value": "1e999"})


def test_every_field_is_carried_over() -> None:
    """context, measurand, phase and location are copied; unit moves into unitOfMeasure;
    format has no 2.0.1 field (schemas forbid unknown properties, trap 20)."""
    sampled = {
        "value": "7.36",
        "context": "Sample.Clock",
        "format": "Raw",
        "measurand": "Power.Active.Import",
        "phase": "L1-N",
        "location": "Outlet",
        "unit": "kW",
    }
    assert v201(sampled) == {
        "value": 7.36,
        "context": "Sample.Clock",
        "measurand": "Power.Active.Import",
        "phase": "L1-N",
        "location": "Outlet",
        "unitOfMeasure": {"unit": "kW"},
    }


def test_absent_fields_stay_absent() -> None:
    """Defaults (Energy.Active.Import.Register, Sample.Periodic, Outlet, Wh) stay implicit."""
    assert v201({"value": "1000"}) == {"value": 1000}


def test_celcius_is_spelled_celsius() -> None:
    """The official 1.6 schema's typo becomes the 2.0.1 standard unit (§2.9, trap 8)."""
    sampled = {"value": "21.5", "measurand": "Voltage", "unit": "Celcius"}
    assert v201(sampled)["unitOfMeasure"] == {"unit": "Celsius"}
    assert v201({**sampled, "unit": "Celsius"})["unitOfMeasure"] == {"unit": "Celsius"}


def test_hertz_is_spelled_hz() -> None:
    """mobilityhouse's 1.6 "Hertz" becomes the standard unit "Hz" (§2.9)."""
    sampled = {"value": "50.01", "measurand": "Frequency", "unit": "Hertz"}
    assert v201(sampled) == {
        "value": 50.01,
        "measurand": "Frequency",
        "unitOfMeasure": {"unit": "Hz"},
    }


def test_frequency_without_a_unit_is_in_hz() -> None:
    """1.6 Frequency has no unit, it is Hertz by definition [16 §7.31]; 2.0.1 says so."""
    sampled = {"value": "49.98", "measurand": "Frequency"}
    assert v201(sampled) == {
        "value": 49.98,
        "measurand": "Frequency",
        "unitOfMeasure": {"unit": "Hz"},
    }


@pytest.mark.parametrize("measurand", ["Temperature", "RPM"])
def test_measurands_missing_from_2_0_1_are_unconvertible(measurand: str) -> None:
    """Temperature and RPM are not in MeasurandEnumType (§2.9, trap 7)."""
    with pytest.raises(UnconvertibleSample) as caught:
        sampled_value_to_v201({"value": "40", "measurand": measurand})
    assert str(caught.value) == f"measurand {measurand} does not exist in OCPP 2.0.1"


@pytest.mark.parametrize(
    "measurand", [m.value for m in Measurand if m.value not in {"Temperature", "RPM"}]
)
def test_every_other_1_6_measurand_converts(measurand: str) -> None:
    """The other 20 measurands are the same in both versions (§2.9)."""
    assert v201({"value": "1", "measurand": measurand})["measurand"] == measurand


# --- 1.6 -> 2.0.1: elements ---------------------------------------------------------


def test_temperature_and_rpm_are_dropped_with_reasons() -> None:
    """The convertible samples go on; each dropped one has its reason (§3.1)."""
    result = convert(
        {"value": "35.5", "measurand": "Temperature", "unit": "Celsius"},
        {"value": "1000"},
        {"value": "1200", "measurand": "RPM"},
    )
    assert result == MeterConversion(
        meter_values=({"timestamp": TS, "sampledValue": [{"value": 1000}]},),
        dropped=(
            "measurand Temperature does not exist in OCPP 2.0.1",
            "measurand RPM does not exist in OCPP 2.0.1",
        ),
    )


def test_an_element_whose_samples_all_drop_is_omitted() -> None:
    """sampledValue has minItems 1 in 2.0.1: an emptied element goes (§3.1)."""
    elements = [
        {"timestamp": TS, "sampledValue": [{"value": "30", "measurand": "Temperature"}]},
        {"timestamp": "2024-05-01T12:00:58Z", "sampledValue": [{"value": "2"}]},
    ]
    result = meter_values_to_v201(elements)
    assert result.meter_values == (
        {"timestamp": "2024-05-01T12:00:58Z", "sampledValue": [{"value": 2}]},
    )
    assert result.dropped == ("measurand Temperature does not exist in OCPP 2.0.1",)


def test_timestamps_are_normalised() -> None:
    """Microseconds and offsets become UTC milliseconds (2.0.1 §2.1.4)."""
    elements = [{"timestamp": "2024-05-01T13:59:58.123456+02:00", "sampledValue": [{"value": "1"}]}]
    result = meter_values_to_v201(elements)
    assert result.meter_values[0]["timestamp"] == "2024-05-01T11:59:58.123Z"


def test_no_elements_give_no_meter_values() -> None:
    """An empty list converts to nothing, with nothing dropped."""
    assert meter_values_to_v201([]) == MeterConversion(meter_values=())


# --- signed data --------------------------------------------------------------------


def test_oca_signed_json_is_merged_into_its_raw_sample() -> None:
    """The SignedData sample's OCA JSON becomes the Raw sample's signedMeterValue, which
    keeps the numeric value 2.0.1 requires (§2.9 "Signed values")."""
    result = convert(
        {"value": "1000", "context": "Transaction.Begin", "unit": "Wh"},
        {"value": SIGNED_TEXT, "context": "Transaction.Begin", "format": "SignedData"},
    )
    assert result == MeterConversion(
        meter_values=(
            {
                "timestamp": TS,
                "sampledValue": [
                    {
                        "value": 1000,
                        "context": "Transaction.Begin",
                        "unitOfMeasure": {"unit": "Wh"},
                        "signedMeterValue": SIGNED,
                    }
                ],
            },
        )
    )


def test_signed_sample_before_its_raw_sample_is_merged_too() -> None:
    """Chargers write the pair in either order."""
    result = convert(
        {
            "value": SIGNED_TEXT,
            "format": "SignedData",
            "measurand": "Energy.Active.Import.Register",
        },
        {"value": "5400"},
    )
    assert result.meter_values[0]["sampledValue"] == [{"value": 5400, "signedMeterValue": SIGNED}]
    assert result.dropped == ()


def test_signature_goes_to_the_raw_sample_of_the_same_measurand_phase_location_context() -> None:
    """A signature belongs to one reading; other measurands and phases stay unsigned."""
    result = convert(
        {"value": "2000"},
        {"value": "16.1", "measurand": "Current.Import", "unit": "A"},
        {"value": "1000", "phase": "L1"},
        {"value": "1000", "location": "EV"},
        {"value": "1000", "context": "Transaction.End"},
        {"value": SIGNED_TEXT, "format": "SignedData"},
    )
    assert result.meter_values[0]["sampledValue"] == [
        {"value": 2000, "signedMeterValue": SIGNED},
        {"value": 16.1, "measurand": "Current.Import", "unitOfMeasure": {"unit": "A"}},
        {"value": 1000, "phase": "L1"},
        {"value": 1000, "location": "EV"},
        {"value": 1000, "context": "Transaction.End"},
    ]


def test_signature_goes_to_the_nearest_raw_sample_of_its_kind_before_it() -> None:
    """Two readings of one kind, only the second signed: the signature follows the
    reading it was written after, so the first stays unsigned."""
    result = convert(
        {"value": "1000"},
        {"value": "1001"},
        {"value": SIGNED_TEXT, "format": "SignedData"},
    )
    assert result.meter_values[0]["sampledValue"] == [
        {"value": 1000},
        {"value": 1001, "signedMeterValue": SIGNED},
    ]


def test_two_signatures_of_one_kind_go_to_two_readings() -> None:
    """A reading carries at most one signature; the second signed sample takes the next."""
    other = {**SIGNED, "signedMeterData": "QUJD"}
    result = convert(
        {"value": SIGNED_TEXT, "format": "SignedData"},
        {"value": json.dumps(other), "format": "SignedData"},
        {"value": "1000"},
        {"value": "1001"},
    )
    assert result.meter_values[0]["sampledValue"] == [
        {"value": 1000, "signedMeterValue": SIGNED},
        {"value": 1001, "signedMeterValue": other},
    ]
    assert result.dropped == ()


def test_lone_signed_sample_is_dropped_with_a_reason() -> None:
    """Without a Raw twin there is no number for the required 2.0.1 value (§2.9 trap)."""
    result = convert(
        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": SIGNED_TEXT, "format": "SignedData"},
    )
    assert result.meter_values[0]["sampledValue"] == [
        {"value": 7.2, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}}
    ]
    assert result.dropped == ("signed sample has no Raw sample to take its value from",)


def test_element_with_only_a_signed_sample_is_omitted() -> None:
    """A signature alone makes no 2.0.1 sample, so its element goes."""
    assert convert({"value": SIGNED_TEXT, "format": "SignedData"}) == MeterConversion(
        meter_values=(), dropped=("signed sample has no Raw sample to take its value from",)
    )


def test_hex_signed_data_is_re_encoded_as_base64() -> None:
    """Older chargers send a hex block [16 §7.49]: signedMeterData is its Base64; the
    method and key are inside the block, so empty (**inferred**, §2.9)."""
    result = convert({"value": "1000"}, {"value": "DEADBEEF01", "format": "SignedData"})
    assert result.meter_values[0]["sampledValue"] == [
        {
            "value": 1000,
            "signedMeterValue": {
                "signedMeterData": "3q2+7wE=",
                "signingMethod": "",
                "encodingMethod": "",
                "publicKey": "",
            },
        }
    ]


def test_hex_ocmf_block_is_recognised_by_its_header() -> None:
    """A hex block starting "OCMF|" is an OCMF record: encodingMethod OCMF."""
    record = b'OCMF|{"FV":"1.0"}|{"SD":"30"}'
    result = convert({"value": "1000"}, {"value": record.hex().upper(), "format": "SignedData"})
    signed = result.meter_values[0]["sampledValue"][0]["signedMeterValue"]
    assert signed == {
        "signedMeterData": base64.b64encode(record).decode(),
        "signingMethod": "",
        "encodingMethod": "OCMF",
        "publicKey": "",
    }


def test_plain_ocmf_text_is_encoded_as_base64() -> None:
    """Some chargers put the OCMF record itself in the value, neither JSON nor hex."""
    record = 'OCMF|{"FV":"1.0"}|{"SD":"30"}'
    result = convert({"value": "1000"}, {"value": record, "format": "SignedData"})
    signed = result.meter_values[0]["sampledValue"][0]["signedMeterValue"]
    assert signed["signedMeterData"] == "T0NNRnx7IkZWIjoiMS4wIn18eyJTRCI6IjMwIn0="
    assert signed["encodingMethod"] == "OCMF"


def test_oca_json_without_signing_method_and_key_gets_empty_ones() -> None:
    """2.1 made signingMethod/publicKey optional; 2.0.1 requires them, so they go empty."""
    text = json.dumps({"signedMeterData": "QUJD", "encodingMethod": "EDL", "extra": 1})
    result = convert({"value": "1"}, {"value": text, "format": "SignedData"})
    assert result.meter_values[0]["sampledValue"][0]["signedMeterValue"] == {
        "signedMeterData": "QUJD",
        "signingMethod": "",
        "encodingMethod": "EDL",
        "publicKey": "",
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('{"signedMeterData": "QUJD"', "signed value is not valid OCA JSON"),
        ('{"signingMethod": "x", "encodingMethod": "OCMF"}', "signed value is not valid OCA JSON"),
        ('{"signedMeterData": 5, "encodingMethod": "OCMF"}', "signed value is not valid OCA JSON"),
        ("not hex at all", "signed value is neither OCA JSON, hex nor OCMF"),
        ("ABC", "signed value is neither OCA JSON, hex nor OCMF"),  # odd number of digits
        ("AB" * 1876, "signed meter value exceeds the OCPP 2.0.1 size limits"),  # 2504 Base64
        (json.dumps({**SIGNED, "signingMethod": "M" * 51}), "exceeds the OCPP 2.0.1 size limits"),
    ],
)
def test_unreadable_signed_data_is_dropped_with_a_reason(value: str, reason: str) -> None:
    """A signature that cannot be read or does not fit 2.0.1 is dropped; the Raw sample stays."""
    result = convert({"value": "1000"}, {"value": value, "format": "SignedData"})
    assert result.meter_values[0]["sampledValue"] == [{"value": 1000}]
    assert len(result.dropped) == 1
    assert reason in result.dropped[0]


def test_signed_sample_alone_is_unconvertible() -> None:
    """sampled_value_to_v201 has no number for a SignedData sample on its own."""
    with pytest.raises(UnconvertibleSample, match="no numeric value"):
        sampled_value_to_v201({"value": SIGNED_TEXT, "format": "SignedData"})


# --- 2.0.1 -> 1.6 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1000, "1000"),
        (12.5, "12.5"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        (-0.0, "0"),
        (1e21, "1" + "0" * 21),
    ],
)
def test_number_becomes_canonical_decimal_text(number: float, text: str) -> None:
    """A 2.0.1 number is written as 1.6 decimal text without an exponent (§2.9 value)."""
    assert v16({"value": number}) == [{"value": text}]


@pytest.mark.parametrize(
    ("unit_of_measure", "value", "expected"),
    [
        ({"unit": "Wh", "multiplier": 3}, 5.5, {"value": "5.5", "unit": "kWh"}),
        ({"unit": "kWh", "multiplier": -3}, 5500, {"value": "5500", "unit": "Wh"}),
        ({"unit": "kWh", "multiplier": 3}, 2, {"value": "2000", "unit": "kWh"}),
        ({"unit": "Wh", "multiplier": -1}, 12345, {"value": "1234.5", "unit": "Wh"}),
        ({"unit": "Wh", "multiplier": 0}, 10, {"value": "10", "unit": "Wh"}),
        ({"multiplier": 3}, 7, {"value": "7", "unit": "kWh"}),  # unit defaults to Wh
        ({}, 7, {"value": "7"}),
    ],
)
def test_multiplier_folds_into_the_unit_or_the_value(
    unit_of_measure: Payload, value: float, expected: Payload
) -> None:
    """{Wh, 3} is kWh; a power with no 1.6 unit scales the value instead (§2.9 unit)."""
    assert v16({"value": value, "unitOfMeasure": unit_of_measure}) == [expected]


def test_multiplier_on_a_unit_without_prefixes_scales_the_value() -> None:
    """16000 mA: 1.6 has no mA, so 16 A."""
    sampled = {
        "value": 16000,
        "measurand": "Current.Import",
        "unitOfMeasure": {"unit": "A", "multiplier": -3},
    }
    assert v16(sampled) == [{"value": "16", "measurand": "Current.Import", "unit": "A"}]


def test_hz_frequency_has_no_1_6_unit_and_celsius_stays() -> None:
    """1.6 Frequency is unitless (Hertz by definition); Celsius is a 1.6 unit too."""
    frequency = {"value": 50, "measurand": "Frequency", "unitOfMeasure": {"unit": "Hz"}}
    assert v16(frequency) == [{"value": "50", "measurand": "Frequency"}]
    celsius = {"value": 21.5, "measurand": "Voltage", "unitOfMeasure": {"unit": "Celsius"}}
    assert v16(celsius) == [{"value": "21.5", "measurand": "Voltage", "unit": "Celsius"}]


def test_fields_are_carried_back_and_custom_data_is_not() -> None:
    """context, measurand, phase, location copied; customData has no 1.6 place."""
    sampled = {
        "value": 230.4,
        "context": "Sample.Periodic",
        "measurand": "Voltage",
        "phase": "L2-N",
        "location": "Inlet",
        "unitOfMeasure": {"unit": "V"},
        "customData": {"vendorId": "ACME"},
    }
    assert v16(sampled) == [
        {
            "value": "230.4",
            "context": "Sample.Periodic",
            "measurand": "Voltage",
            "phase": "L2-N",
            "location": "Inlet",
            "unit": "V",
        }
    ]


def test_signed_meter_value_becomes_a_second_signed_data_sample() -> None:
    """2.0.1 signedMeterValue becomes a 1.6 SignedData sample carrying the OCA JSON."""
    sampled = {"value": 1000, "context": "Transaction.End", "signedMeterValue": SIGNED}
    converted = v16(sampled)
    assert converted[0] == {"value": "1000", "context": "Transaction.End"}
    assert converted[1]["format"] == "SignedData"
    assert converted[1]["context"] == "Transaction.End"
    assert json.loads(converted[1]["value"]) == SIGNED
    assert set(converted[1]) == {"value", "format", "context"}


@pytest.mark.parametrize(
    "sampled",
    [
        {"value": 1, "unitOfMeasure": {"unit": "Ohm"}},
        {"value": 1, "unitOfMeasure": {"unit": "kVAh"}},
        {"value": 1, "measurand": "Voltage", "unitOfMeasure": {"unit": "Hz"}},
    ],
)
def test_unit_with_no_1_6_spelling_is_unconvertible(sampled: Payload) -> None:
    """2.0.1 units outside the 1.6 enum have no 1.6 form (§2.9 unit)."""
    with pytest.raises(UnconvertibleSample, match=r"unit has no OCPP 1\.6 spelling"):
        sampled_value_to_v16(sampled)


@pytest.mark.parametrize(
    "measurand",
    sorted({m.value for m in MeasurandEnumType} - {m.value for m in Measurand}),
)
def test_2_0_1_only_measurands_are_unconvertible(measurand: str) -> None:
    """Energy.*.Net and Energy.Apparent.* are not in the 1.6 Measurand enum."""
    with pytest.raises(UnconvertibleSample) as caught:
        sampled_value_to_v16({"value": 1, "measurand": measurand})
    assert str(caught.value) == f"measurand {measurand} does not exist in OCPP 1.6"


def test_meter_value_to_v16_flattens_its_samples() -> None:
    """One 2.0.1 element is one 1.6 element; a signed sample adds its SignedData twin."""
    meter_value = {
        "timestamp": TS,
        "sampledValue": [
            {"value": 1000, "signedMeterValue": SIGNED},
            {"value": 7.4, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
        ],
        "customData": {"vendorId": "ACME"},
    }
    before = copy.deepcopy(meter_value)
    converted = meter_value_to_v16(meter_value)
    assert meter_value == before
    assert_valid_v16([converted])
    assert converted == {
        "timestamp": TS,
        "sampledValue": [
            {"value": "1000"},
            {"value": orjson.dumps(SIGNED).decode(), "format": "SignedData"},
            {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
        ],
    }


# --- trigger reasons (§3.1 MeterValues) ---------------------------------------------


def _element(*samples: Payload) -> Payload:
    return {"timestamp": TS, "sampledValue": list(samples)}


@pytest.mark.parametrize(
    ("context", "reason"),
    [
        (None, "MeterValuePeriodic"),
        ("Sample.Periodic", "MeterValuePeriodic"),
        ("Sample.Clock", "MeterValueClock"),
        ("Trigger", "Trigger"),
        ("Transaction.Begin", "MeterValuePeriodic"),
        ("Transaction.End", "MeterValuePeriodic"),
        ("Interruption.Begin", "AbnormalCondition"),
        ("Interruption.End", "AbnormalCondition"),
        ("Other", "MeterValuePeriodic"),
    ],
)
def test_trigger_reason_follows_the_reading_context(context: str | None, reason: str) -> None:
    """Sample.Periodic (the default) -> MeterValuePeriodic (J02.FR.11), and so on (§3.1)."""
    sampled: Payload = {"value": 1} if context is None else {"value": 1, "context": context}
    assert trigger_reason_for(_element(sampled)) == reason


@pytest.mark.parametrize("context", ["Transaction.Begin", "Transaction.End"])
def test_signed_transaction_readings_are_signed_data_received(context: str) -> None:
    """A signed begin/end reading is what SignedDataReceived announces (§3.1, inferred)."""
    sampled = {"value": 1, "context": context, "signedMeterValue": SIGNED}
    assert trigger_reason_for(_element(sampled)) == "SignedDataReceived"


def test_signed_periodic_reading_stays_periodic() -> None:
    """Only Transaction.Begin/End readings announce their signature."""
    sampled = {"value": 1, "signedMeterValue": SIGNED}
    assert trigger_reason_for(_element(sampled)) == "MeterValuePeriodic"


@pytest.mark.parametrize(
    ("contexts", "reason"),
    [
        (["Sample.Periodic", "Interruption.Begin", "Trigger"], "AbnormalCondition"),
        (["Sample.Clock", "Trigger"], "Trigger"),
        (["Sample.Clock", "Sample.Periodic"], "MeterValueClock"),
        (["Other", "Transaction.End"], "MeterValuePeriodic"),
    ],
)
def test_most_specific_context_wins(contexts: list[str], reason: str) -> None:
    """Interruption > Trigger > signed begin/end > Clock > periodic (E03.FR.12)."""
    element = _element(*({"value": 1, "context": c} for c in contexts))
    assert trigger_reason_for(element) == reason


def test_signed_data_outranks_clock_but_not_trigger() -> None:
    """SignedDataReceived sits between Trigger and MeterValueClock."""
    signed = {"value": 1, "context": "Transaction.End", "signedMeterValue": SIGNED}
    clock = {"value": 2, "context": "Sample.Clock"}
    trigger = {"value": 3, "context": "Trigger"}
    assert trigger_reason_for(_element(clock, signed)) == "SignedDataReceived"
    assert trigger_reason_for(_element(signed, trigger)) == "Trigger"


# --- vendor repairs -----------------------------------------------------------------


def _meter_values(*samples: Payload) -> Payload:
    return {"connectorId": 1, "transactionId": 17, "meterValue": [_element(*samples)]}


def repair(
    payload: Payload, quirks: MeterQuirks = DEFAULT_QUIRKS
) -> tuple[Payload, tuple[str, ...]]:
    """repair_meter_payload (default: the default quirks), checking it leaves its input alone."""
    before = copy.deepcopy(payload)
    result = repair_meter_payload(payload, quirks)
    assert payload == before
    return result


def test_numeric_values_are_stringified_and_counted_per_sample() -> None:
    """A JSON number where 1.6 requires a string becomes decimal text, one count each."""
    payload = _meter_values(
        {"value": 1000},
        {"value": 12.5, "unit": "kW", "measurand": "Power.Active.Import"},
        {"value": "3"},
    )
    repaired, rules = repair(payload)
    assert rules == ("numeric_values", "numeric_values")
    assert repaired == _meter_values(
        {"value": "1000"},
        {"value": "12.5", "unit": "kW", "measurand": "Power.Active.Import"},
        {"value": "3"},
    )
    validate(Version.V16, "MeterValues", Kind.REQUEST, repaired)


@pytest.mark.parametrize(
    ("unit", "spelled"),
    [
        ("kwh", "kWh"),
        ("KWH", "kWh"),
        ("wh", "Wh"),
        ("celsius", "Celsius"),
        ("CELCIUS", "Celsius"),
        ("percent", "Percent"),
        ("kvarh", "kvarh"),
    ],
)
def test_unit_spelling_is_rewritten_to_the_schema_spelling(unit: str, spelled: str) -> None:
    """Case variants of a 1.6 unit become the schema's spelling; valid units stay."""
    sampled = {"value": "1", "measurand": "Current.Import", "unit": unit}
    repaired, rules = repair(_meter_values(sampled))
    assert repaired["meterValue"][0]["sampledValue"] == [{**sampled, "unit": spelled}]
    assert rules == (() if unit == spelled else ("unit_spelling",))
    validate(Version.V16, "MeterValues", Kind.REQUEST, repaired)


@pytest.mark.parametrize("unit", UNITS_METER_VALUES)
def test_every_meter_values_unit_is_left_alone(unit: str) -> None:
    """Celcius (the schema's typo) and Hertz are valid in MeterValues: nothing to repair."""
    payload = _meter_values({"value": "1", "measurand": "Voltage", "unit": unit})
    assert repair(payload) == (payload, ()) and repair(payload)[0] is payload


@pytest.mark.parametrize("unit", UNITS_STOP)
def test_upper_case_of_every_stop_transaction_unit_is_repaired_to_a_valid_unit(unit: str) -> None:
    """Every 1.6 unit, shouted, comes back as a unit the schema accepts."""
    sampled = {"value": "1", "measurand": "Voltage", "unit": unit.upper()}
    stop = {
        "transactionId": 1,
        "timestamp": TS,
        "meterStop": 0,
        "transactionData": [_element(sampled)],
    }
    repaired, rules = repair(stop)
    validate(Version.V16, "StopTransaction", Kind.REQUEST, repaired)
    assert rules == (() if unit.upper() == unit else ("unit_spelling",))


@pytest.mark.parametrize(("unit", "spelled"), [("Hz", None), ("hz", None), ("HERTZ", "Hertz")])
def test_hz_on_frequency_is_removed(unit: str, spelled: str | None) -> None:
    """1.6 Frequency is Hertz by definition [16 §7.31]: "Hz" goes; a case variant of
    MeterValues' own "Hertz" is respelled."""
    payload = _meter_values({"value": "50", "measurand": "Frequency", "unit": unit})
    repaired, rules = repair(payload)
    expected = {"value": "50", "measurand": "Frequency"}
    if spelled is not None:
        expected["unit"] = spelled
    assert repaired["meterValue"][0]["sampledValue"] == [expected]
    assert rules == ("unit_spelling",)
    validate(Version.V16, "MeterValues", Kind.REQUEST, repaired)


def test_hertz_is_removed_from_stop_transaction_where_the_schema_lacks_it() -> None:
    """StopTransaction's unit enum has no Hertz, MeterValues' has (mobilityhouse)."""
    sampled = {"value": "50", "measurand": "Frequency", "unit": "Hertz"}
    stop = {
        "transactionId": 1,
        "timestamp": TS,
        "meterStop": 0,
        "transactionData": [_element(sampled)],
    }
    repaired, rules = repair(stop)
    assert repaired["transactionData"][0]["sampledValue"] == [
        {"value": "50", "measurand": "Frequency"}
    ]
    assert rules == ("unit_spelling",)
    validate(Version.V16, "StopTransaction", Kind.REQUEST, repaired)


def test_unknown_unit_is_left_for_the_validator() -> None:
    """A unit that is no 1.6 unit in any case is not guessed at."""
    payload = _meter_values(
        {"value": "1", "unit": "kWhr"}, {"value": "2", "measurand": "Voltage", "unit": "Hz"}
    )
    repaired, rules = repair(payload)
    assert repaired is payload
    assert rules == ()


def test_energy_labelled_wh_or_unlabelled_is_relabelled_kwh() -> None:
    """energy_kwh_as_wh: Energy.* samples in "Wh" (or the Wh default) are really kWh."""
    payload = _meter_values(
        {"value": "12.5"},
        {"value": "3.25", "measurand": "Energy.Active.Export.Register", "unit": "Wh"},
        {"value": "1.5", "measurand": "Energy.Reactive.Import.Interval", "unit": "kvarh"},
        {"value": "7.1", "measurand": "Power.Active.Import", "unit": "W"},
        {"value": "2", "unit": "kWh"},
    )
    quirks = MeterQuirks(numeric_values=False, unit_spelling=False, energy_kwh_as_wh=True)
    repaired, rules = repair(payload, quirks)
    assert rules == ("energy_kwh_as_wh", "energy_kwh_as_wh")
    assert repaired["meterValue"][0]["sampledValue"] == [
        {"value": "12.5", "unit": "kWh"},
        {"value": "3.25", "measurand": "Energy.Active.Export.Register", "unit": "kWh"},
        {"value": "1.5", "measurand": "Energy.Reactive.Import.Interval", "unit": "kvarh"},
        {"value": "7.1", "measurand": "Power.Active.Import", "unit": "W"},
        {"value": "2", "unit": "kWh"},
    ]


def test_rules_are_counted_per_sample_per_rule_in_order() -> None:
    """One sample may need several rules; each is reported once for it."""
    payload = _meter_values({"value": 1000}, {"value": 5, "unit": "wh"})
    repaired, rules = repair(payload, ALL_QUIRKS)
    assert rules == (
        "numeric_values",
        "energy_kwh_as_wh",
        "numeric_values",
        "unit_spelling",
        "energy_kwh_as_wh",
    )
    assert repaired["meterValue"][0]["sampledValue"] == [
        {"value": "1000", "unit": "kWh"},
        {"value": "5", "unit": "kWh"},
    ]


def test_disabled_quirks_repair_nothing() -> None:
    """With every flag off the payload is returned as it is, invalid or not."""
    payload = _meter_values({"value": 1000, "unit": "kwh"})
    repaired, rules = repair(payload, NO_QUIRKS)
    assert repaired is payload
    assert rules == ()


def test_valid_payload_is_returned_as_the_very_same_object() -> None:
    """Nothing applied: no copy, so callers can tell by identity."""
    payload = _meter_values({"value": "1000"}, {"value": "50", "measurand": "Frequency"})
    repaired, rules = repair(payload)
    assert repaired is payload
    assert rules == ()


def test_untouched_elements_are_shared_not_copied() -> None:
    """Only the elements that changed are rebuilt."""
    payload = {"connectorId": 1, "meterValue": [_element({"value": "1"}), _element({"value": 2})]}
    repaired, _ = repair(payload, MeterQuirks(numeric_values=True, unit_spelling=False))
    assert repaired["meterValue"][0] is payload["meterValue"][0]
    assert repaired["meterValue"][1] == _element({"value": "2"})


def test_stop_transaction_data_is_repaired() -> None:
    """StopTransaction carries meter values under transactionData."""
    stop = {
        "transactionId": 1,
        "timestamp": TS,
        "meterStop": 10,
        "transactionData": [_element({"value": 10})],
    }
    repaired, rules = repair(stop, ALL_QUIRKS)
    assert repaired == {**stop, "transactionData": [_element({"value": "10", "unit": "kWh"})]}
    assert rules == ("numeric_values", "energy_kwh_as_wh")


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "meterValue",
        {},
        {"connectorId": 1},
        {"meterValue": "x"},
        {"meterValue": [5, {"timestamp": TS}, {"sampledValue": "x"}, {"sampledValue": [7, None]}]},
        {"meterValue": [{"sampledValue": [{"value": True, "measurand": "Voltage"}]}]},
        {"meterValue": [{"sampledValue": [{"unit": 5, "measurand": "Voltage"}]}]},
        {"meterValue": [{"sampledValue": [{"measurand": 3, "value": "1"}]}]},
    ],
)
def test_malformed_payloads_are_left_for_the_validator(payload: Any) -> None:
    """Repair never raises on odd shapes; it leaves them for schema validation."""
    quirks = MeterQuirks(numeric_values=True, unit_spelling=True, energy_kwh_as_wh=True)
    repaired, rules = repair(payload, quirks)
    assert repaired is payload
    assert rules == ()


# --- properties ---------------------------------------------------------------------

CONTEXTS = [c.value for c in ReadingContext]
PHASES = [p.value for p in Phase]
LOCATIONS = [loc.value for loc in Location]
MEASURANDS_BOTH = sorted({m.value for m in Measurand} & {m.value for m in MeasurandEnumType})
# Units in the 1.6 enum and the 2.0.1 standard list (§2.9 unit).
UNITS_BOTH = sorted(set(UNITS_STOP) - {"Celcius"})

# Decimals of at most 13 significant digits: each survives a trip through a double, so
# its text comes back (up to trailing zeros) and a JSON number made from it is exact.
decimals = st.decimals(
    min_value=-(10**9), max_value=10**9, places=4, allow_nan=False, allow_infinity=False
)
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
plain_text = st.text(st.characters(codec="utf-8"), max_size=50)
base64_text = st.binary(max_size=200).map(lambda raw: base64.b64encode(raw).decode())
signed_values = st.fixed_dictionaries(
    {
        "signedMeterData": base64_text,
        "signingMethod": plain_text,
        "encodingMethod": plain_text,
        "publicKey": base64_text,
    }
)


def json_number(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def canonical(number: Decimal) -> str:
    """Decimal text as 1.6 output writes it: no exponent, no trailing zeros, no -0."""
    return "0" if number.is_zero() else format(number.normalize(), "f")


def _json(value: object) -> bytes:
    """Exact comparison: 1 and 1.0 differ, as they do on the wire."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _optional_fields(draw: st.DrawFn) -> Payload:
    fields: Payload = {}
    for key, values in (("context", CONTEXTS), ("phase", PHASES), ("location", LOCATIONS)):
        if draw(st.booleans()):
            fields[key] = draw(st.sampled_from(values))
    return fields


@st.composite
def v201_samples(draw: st.DrawFn) -> Payload:
    """A 2.0.1 SampledValueType that 1.6 can represent (no 2.0.1-only measurand or unit,
    multiplier 0, Frequency always in Hz). Half have only a value (and maybe a signature),
    so one element often holds several readings of the same kind, signed or not."""
    sampled: Payload = {"value": json_number(draw(decimals))}
    plain = draw(st.booleans())
    if not plain:
        sampled.update(_optional_fields(draw))
    measurand = None if plain else draw(st.none() | st.sampled_from(MEASURANDS_BOTH))
    if measurand is not None:
        sampled["measurand"] = measurand
    units = st.none() if plain else st.none() | st.sampled_from(UNITS_BOTH)
    unit = "Hz" if measurand == "Frequency" else draw(units)
    if unit is not None:
        sampled["unitOfMeasure"] = {"unit": unit}
    if draw(st.booleans()):
        sampled["signedMeterValue"] = draw(signed_values)
    return sampled


@settings(deadline=None)
@given(timestamp=timestamps, samples=st.lists(v201_samples(), min_size=1, max_size=6))
def test_2_0_1_meter_value_survives_a_trip_through_1_6(
    timestamp: str, samples: list[Payload]
) -> None:
    """meter_values_to_v201([meter_value_to_v16(mv)]) gives mv back, numbers exactly."""
    meter_value = {"timestamp": timestamp, "sampledValue": samples}
    assert_valid_v201([meter_value])
    legacy = meter_value_to_v16(meter_value)
    assert_valid_v16([legacy])
    back = meter_values_to_v201([legacy])
    assert back.dropped == ()
    assert _json(back.meter_values) == _json([meter_value])


@st.composite
def v16_raw_samples(draw: st.DrawFn) -> tuple[Payload, Payload]:
    """A 1.6 Raw SampledValue with a convertible measurand, and what it becomes after a
    trip through 2.0.1: canonical value text, "Raw" implicit, Celcius -> Celsius, Hertz
    (Frequency's implied unit) implicit."""
    number = draw(decimals)
    text = draw(st.sampled_from([format(number, "f"), str(number), format(number, "E")]))
    sampled: Payload = {"value": text, **_optional_fields(draw)}
    expected: Payload = {**sampled, "value": canonical(number)}
    if draw(st.booleans()):
        sampled["format"] = "Raw"
    measurand = draw(st.none() | st.sampled_from(MEASURANDS_BOTH))
    if measurand is not None:
        sampled["measurand"] = expected["measurand"] = measurand
    units = [u for u in UNITS_METER_VALUES if u != "Hertz" or measurand == "Frequency"]
    unit = draw(st.none() | st.sampled_from(units))
    if unit is not None:
        sampled["unit"] = unit
        if unit != "Hertz":
            expected["unit"] = "Celsius" if unit == "Celcius" else unit
    return sampled, expected


@settings(deadline=None)
@given(timestamp=timestamps, pairs=st.lists(v16_raw_samples(), min_size=1, max_size=6))
def test_1_6_meter_value_survives_a_trip_through_2_0_1(
    timestamp: str, pairs: list[tuple[Payload, Payload]]
) -> None:
    """1.6 -> 2.0.1 -> 1.6 keeps every sample up to the documented normalisations, and the
    2.0.1 form is schema-valid."""
    element = {"timestamp": timestamp, "sampledValue": [sampled for sampled, _ in pairs]}
    assert_valid_v16_input([element])
    converted = meter_values_to_v201([element])
    assert converted.dropped == ()
    assert_valid_v201(converted.meter_values)
    (meter_value,) = converted.meter_values
    back = meter_value_to_v16(meter_value)
    assert_valid_v16([back])
    assert back == {"timestamp": timestamp, "sampledValue": [expected for _, expected in pairs]}


@st.composite
def quirky_payloads(draw: st.DrawFn) -> tuple[Payload, MeterQuirks, int, int]:
    """A valid 1.6 MeterValues or StopTransaction payload, damaged only in ways the drawn
    quirks repair: numbers for strings, unit case, "Hz" on Frequency. Also returns how
    many values and units were damaged."""
    quirks = MeterQuirks(
        numeric_values=draw(st.booleans()),
        unit_spelling=draw(st.booleans()),
        energy_kwh_as_wh=draw(st.booleans()),
    )
    key, units = draw(
        st.sampled_from([("meterValue", UNITS_METER_VALUES), ("transactionData", UNITS_STOP)])
    )
    numbers = spellings = 0
    elements = []
    for _ in range(draw(st.integers(1, 3))):
        samples = []
        for _ in range(draw(st.integers(1, 4))):
            number = draw(decimals)
            sampled: Payload = {"value": canonical(number), **_optional_fields(draw)}
            measurand = draw(st.none() | st.sampled_from([m.value for m in Measurand]))
            if measurand is not None:
                sampled["measurand"] = measurand
            unit = draw(st.none() | st.sampled_from(units))
            if unit is not None:
                sampled["unit"] = unit
            if quirks.numeric_values and draw(st.booleans()):
                sampled["value"] = json_number(number)
                numbers += 1
            if quirks.unit_spelling and measurand == "Frequency" and draw(st.booleans()):
                sampled["unit"] = "Hz"
                spellings += 1
            elif quirks.unit_spelling and unit is not None and draw(st.booleans()):
                damaged = draw(st.sampled_from([unit.lower(), unit.upper(), unit.swapcase()]))
                spellings += damaged not in units
                sampled["unit"] = damaged
            samples.append(sampled)
        elements.append({"timestamp": draw(timestamps), "sampledValue": samples})
    if key == "meterValue":
        payload: Payload = {"connectorId": 1, "meterValue": elements}
    else:
        payload = {"transactionId": 1, "timestamp": TS, "meterStop": 0, "transactionData": elements}
    return payload, quirks, numbers, spellings


@settings(deadline=None)
@given(quirky_payloads())
def test_repaired_payload_is_valid_and_repair_is_idempotent(
    case: tuple[Payload, MeterQuirks, int, int],
) -> None:
    """What the quirks damaged they repair, counting each repair; a second pass finds
    nothing left to do."""
    payload, quirks, numbers, spellings = case
    action = "MeterValues" if "meterValue" in payload else "StopTransaction"
    repaired, rules = repair(payload, quirks)
    validate(Version.V16, action, Kind.REQUEST, repaired)
    assert rules.count("numeric_values") == numbers
    assert rules.count("unit_spelling") == spellings
    assert (repaired is payload) == (rules == ())
    again, more = repair(repaired, quirks)
    assert again is repaired
    assert more == ()
