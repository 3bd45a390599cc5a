"""Which validator should sit behind ``gateway.schemas.validate``: a measurement.

Run::

    python -m gateway.schema_candidates [--repeat N] [--run-ms MS] [--json PATH]

Validation, not translation, decides the gateway's speed, so this module builds every
candidate validator for the hot messages, checks that each one agrees with the
``ocpp`` package's reference validator on the samples (the valid ones pass, simple
single-fault mutations fail wherever the reference fails them) and only then times
it: ``time.perf_counter_ns`` over many iterations with the garbage collector off, the
median of ``--repeat`` runs. Exit status 1 if a candidate had to be left out.

Candidates (validation of the parsed dict):

* ``ocpp``: the ``ocpp`` package's own path (``ocpp.messages._validate_payload``:
  jsonschema ``Draft4Validator`` for both versions, no format checker, floats parsed
  as ``Decimal`` for three 1.6 schemas), the reference;
* ``fastjsonschema``: validators compiled from the official files with
  ``use_default=False``, read as draft 4 (see :func:`fastjsonschema_check`), the
  validator the gateway used before this measurement;
* ``pydantic-core``: a strict ``SchemaValidator`` built from the JSON schema by
  :func:`core_schema_for`, ``validate_python`` on the plain dict;
* ``msgspec.convert``: ``msgspec.Struct`` types built from the JSON schema by
  :func:`gateway.schemas.msgspec_type_for` (``forbid_unknown_fields``, ``Meta``
  constraints), ``msgspec.convert(payload, type, strict=True)`` on the plain dict;
* ``gateway``: ``gateway.schemas.validate`` as it is now, with its lookup and error
  mapping (msgspec.convert since this measurement: it was the fastest candidate that
  passes ``tests/unit/test_schema_differential.py``);
* ``hand-written``: plain Python checks for 1.6 MeterValues and StatusNotification
  only, the ceiling.

A second table times parse + validate from the raw frame bytes, because the gateway
parses frames with orjson anyway: ``orjson.loads`` alone, ``orjson.loads`` +
fastjsonschema, ``orjson.loads`` + pydantic-core, pydantic-core ``validate_json`` and
``msgspec.json.decode(raw, type=...)`` (which gives Structs, not the dict the
translators need).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import fastjsonschema
import msgspec
import orjson
from pydantic_core import PydanticCustomError, SchemaValidator
from pydantic_core import core_schema as cs

from gateway import schemas
from gateway.ocppj import Payload, Version
from gateway.schemas import (
    FORMAT_PATTERNS,
    Kind,
    UnsupportedSchema,
    check_keywords,
    decimal_multiple,
    load_schema,
    msgspec_type_for,
)

Check = Callable[[Payload], object]

NOW: Final = "2024-05-01T12:00:00Z"
_DRAFT_04: Final = "http://json-schema.org/draft-04/schema#"


@dataclass(frozen=True)
class Hot:
    """One hot message: what the gateway validates on every charging session."""

    label: str
    version: Version
    action: str
    kind: Kind
    payload: Payload

    @property
    def raw(self) -> bytes:
        return orjson.dumps(self.payload)


def _sampled(value: str, measurand: str, unit: str, phase: str | None = None) -> Payload:
    out: Payload = {"value": value, "location": "Outlet", "measurand": measurand}
    if phase is not None:
        out["phase"] = phase
    out["unit"] = unit
    return out


def _sampled_201(value: float, measurand: str, unit: str, phase: str | None = None) -> Payload:
    out: Payload = {"value": value, "context": "Sample.Periodic", "measurand": measurand}
    if phase is not None:
        out["phase"] = phase
    out["location"] = "Outlet"
    out["unitOfMeasure"] = {"unit": unit}
    return out


# 537 bytes as orjson writes it: connector 1, one sampledValue set of five measurands.
METER_VALUES_16: Final[Payload] = {
    "connectorId": 1,
    "transactionId": 1234567,
    "meterValue": [
        {
            "timestamp": NOW,
            "sampledValue": [
                _sampled("12345678", "Energy.Active.Import.Register", "Wh"),
                _sampled("7360", "Power.Active.Import", "W"),
                _sampled("32", "Current.Import", "A", "L1"),
                _sampled("230", "Voltage", "V", "L1-N"),
                _sampled("32", "Current.Offered", "A"),
            ],
        }
    ],
}

_METER_VALUE_201: Final[Payload] = {
    "timestamp": NOW,
    "sampledValue": [
        _sampled_201(12345.678, "Energy.Active.Import.Register", "kWh"),
        _sampled_201(7360.0, "Power.Active.Import", "W"),
        _sampled_201(32.0, "Current.Import", "A", "L1"),
        _sampled_201(230.1, "Voltage", "V", "L1-N"),
        _sampled_201(32, "Current.Offered", "A"),
    ],
}

V16, V201 = Version.V16, Version.V201
REQUEST, RESPONSE = Kind.REQUEST, Kind.RESPONSE

HOT: Final[tuple[Hot, ...]] = (
    Hot("1.6 MeterValues", V16, "MeterValues", REQUEST, METER_VALUES_16),
    Hot("1.6 StatusNotification", V16, "StatusNotification", REQUEST,
        {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": NOW}),
    Hot("1.6 Heartbeat", V16, "Heartbeat", REQUEST, {}),
    Hot("1.6 StartTransaction", V16, "StartTransaction", REQUEST,
        {"connectorId": 1, "idTag": "04A1B2C3D4E5F6", "meterStart": 12345678,
         "timestamp": NOW}),
    Hot("1.6 StopTransaction", V16, "StopTransaction", REQUEST,
        {"transactionId": 1234567, "idTag": "04A1B2C3D4E5F6", "meterStop": 12360000,
         "timestamp": NOW, "reason": "Local",
         "transactionData": [
             {"timestamp": NOW, "sampledValue": [
                 {"value": "12360000", "context": "Transaction.End",
                  "measurand": "Energy.Active.Import.Register", "location": "Outlet",
                  "unit": "Wh"}]}]}),
    Hot("1.6 BootNotification", V16, "BootNotification", REQUEST,
        {"chargePointVendor": "ACME", "chargePointModel": "Wallbox Pro 22",
         "chargePointSerialNumber": "WB-2024-000123", "firmwareVersion": "1.8.2",
         "iccid": "8931080019071234567", "imsi": "204080123456789",
         "meterType": "EM340", "meterSerialNumber": "EM-99887766"}),
    Hot("2.0.1 TransactionEventRequest", V201, "TransactionEvent", REQUEST,
        {"eventType": "Updated", "timestamp": NOW, "triggerReason": "MeterValuePeriodic",
         "seqNo": 3,
         "transactionInfo": {"transactionId": "1234567", "chargingState": "Charging"},
         "evse": {"id": 1, "connectorId": 1}, "meterValue": [_METER_VALUE_201]}),
    Hot("2.0.1 MeterValuesRequest", V201, "MeterValues", REQUEST,
        {"evseId": 1, "meterValue": [_METER_VALUE_201]}),
    Hot("2.0.1 TransactionEventResponse", V201, "TransactionEvent", RESPONSE,
        {"totalCost": 3.25, "idTokenInfo": {"status": "Accepted"}}),
    Hot("2.0.1 BootNotificationResponse", V201, "BootNotification", RESPONSE,
        {"currentTime": NOW, "interval": 300, "status": "Accepted"}),
)  # fmt: skip


# --- candidates --------------------------------------------------------------------


def official_check(version: Version, action: str, kind: Kind) -> Check:
    """The ``ocpp`` package's validation exactly as its ChargePoint runs it."""
    from ocpp.messages import Call, CallResult, _validate_payload  # noqa: PLC0415

    ocpp_version = "1.6" if version is Version.V16 else "2.0.1"
    if kind is Kind.REQUEST:

        def check_call(payload: Payload) -> None:
            _validate_payload(Call("0", action, payload), ocpp_version)

        return check_call

    def check_result(payload: Payload) -> None:
        _validate_payload(CallResult("0", payload, action), ocpp_version)

    return check_result


def fastjsonschema_check(version: Version, action: str, kind: Kind) -> Check:
    """fastjsonschema as ``gateway.schemas`` compiled it before, read as draft 4.

    Before this measurement the gateway let each file's ``$schema`` pick the draft, and
    the 2.0.1 files (and 22 of the 1.6 ones) say draft-06, where ``1.0`` is an integer:
    the differential test caught it accepting what the reference refuses. Draft 4 for
    every file is the corrected baseline (and the fallback in ``gateway.schemas``).
    """
    schema = {**load_schema(version, action, kind), "$schema": _DRAFT_04}
    compiled: Check = fastjsonschema.compile(schema, use_default=False)
    return compiled


def gateway_check(version: Version, action: str, kind: Kind) -> Check:
    """Whatever ``gateway.schemas.validate`` uses now, with its lookups and error mapping."""

    validate = schemas.validate

    def check(payload: Payload) -> None:
        validate(version, action, kind, payload)

    return check


# pydantic-core's Rust regex engine spells Python's end-of-text \Z as \z.
_RUST_PATTERNS: Final = {k: v.replace(r"\Z", r"\z") for k, v in FORMAT_PATTERNS.items()}


def _multiple_of(step: float) -> Callable[[float], float]:
    def check(value: float) -> float:
        if not decimal_multiple(value, step):
            raise PydanticCustomError(
                "multiple_of", "Input should be a multiple of {multiple_of}", {"multiple_of": step}
            )
        return value

    return check


def core_schema_for(schema: Payload) -> cs.CoreSchema:
    """A strict pydantic-core schema accepting what the official JSON ``schema`` accepts.

    Implements the subset of draft 4 the OCPP files use: object (properties, required,
    additionalProperties false), string (enum, maxLength, minLength, format date-time /
    uri), integer, number (minimum, maximum, multipleOf), boolean, array (items,
    minItems, maxItems), untyped (anything) and local ``$ref``. Raises
    UnsupportedSchema on anything else, so no rule is ever dropped silently.
    """
    definitions: dict[str, Payload] = schema.get("definitions", {})
    built: dict[str, cs.CoreSchema] = {}

    def build(node: Payload) -> cs.CoreSchema:
        check_keywords(node)
        ref = node.get("$ref")
        if ref is not None:
            name = ref.removeprefix("#/definitions/")
            if name not in built:
                built[name] = build(definitions[name])
            return built[name]
        kind = node.get("type")
        if "enum" in node:
            return cs.literal_schema(list(node["enum"]))
        if kind == "object":
            required = set(node.get("required", ()))
            properties: dict[str, Payload] = node.get("properties", {})
            fields = {
                name: cs.typed_dict_field(build(sub), required=name in required)
                for name, sub in properties.items()
            }
            for name in sorted(required - properties.keys()):
                fields[name] = cs.typed_dict_field(cs.any_schema(), required=True)
            closed = node.get("additionalProperties") is False
            return cs.typed_dict_schema(
                fields, extra_behavior="forbid" if closed else "allow", strict=True
            )
        if kind == "string":
            return cs.str_schema(
                strict=True,
                max_length=node.get("maxLength"),
                min_length=node.get("minLength"),
                pattern=_RUST_PATTERNS.get(node.get("format", "")),
            )
        if kind == "integer":
            low, high = node.get("minimum"), node.get("maximum")
            return cs.int_schema(
                strict=True,
                ge=None if low is None else int(low),
                le=None if high is None else int(high),
            )
        if kind == "number":
            number = cs.float_schema(strict=True, ge=node.get("minimum"), le=node.get("maximum"))
            if "multipleOf" in node:
                return cs.no_info_after_validator_function(_multiple_of(node["multipleOf"]), number)
            return number
        if kind == "boolean":
            return cs.bool_schema(strict=True)
        if kind == "array":
            return cs.list_schema(
                build(node["items"]),
                min_length=node.get("minItems"),
                max_length=node.get("maxItems"),
                strict=True,
            )
        if kind is None:
            return cs.any_schema()
        raise UnsupportedSchema(f"unsupported type {kind!r}")

    return build(schema)


def pydantic_core_check(version: Version, action: str, kind: Kind) -> Check:
    """A strict pydantic-core ``SchemaValidator`` built from the JSON schema."""
    validator = SchemaValidator(core_schema_for(load_schema(version, action, kind)))
    check: Check = validator.validate_python
    return check


def msgspec_convert_check(version: Version, action: str, kind: Kind) -> Check:
    """``msgspec.convert`` into the Structs of :func:`gateway.schemas.msgspec_type_for`."""
    tp = msgspec_type_for(load_schema(version, action, kind))

    def check(payload: Payload) -> object:
        return msgspec.convert(payload, tp, strict=True)

    return check


# Hand-written checks: 1.6 MeterValues and StatusNotification only, to show the ceiling.

_DATE_TIME: Final = re.compile(FORMAT_PATTERNS["date-time"])
_CONTEXTS: Final = frozenset(
    ("Interruption.Begin", "Interruption.End", "Sample.Clock", "Sample.Periodic",
     "Transaction.Begin", "Transaction.End", "Trigger", "Other"))  # fmt: skip
_FORMATS: Final = frozenset(("Raw", "SignedData"))
_MEASURANDS: Final = frozenset(
    ("Energy.Active.Export.Register", "Energy.Active.Import.Register",
     "Energy.Reactive.Export.Register", "Energy.Reactive.Import.Register",
     "Energy.Active.Export.Interval", "Energy.Active.Import.Interval",
     "Energy.Reactive.Export.Interval", "Energy.Reactive.Import.Interval",
     "Power.Active.Export", "Power.Active.Import", "Power.Offered",
     "Power.Reactive.Export", "Power.Reactive.Import", "Power.Factor", "Current.Import",
     "Current.Export", "Current.Offered", "Voltage", "Frequency", "Temperature", "SoC",
     "RPM"))  # fmt: skip
_PHASES: Final = frozenset(
    ("L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1")
)
_LOCATIONS: Final = frozenset(("Cable", "EV", "Inlet", "Outlet", "Body"))
_UNITS: Final = frozenset(
    ("Wh", "kWh", "varh", "kvarh", "W", "kW", "VA", "kVA", "var", "kvar", "A", "V", "K",
     "Celcius", "Celsius", "Fahrenheit", "Percent", "Hertz"))  # fmt: skip
_SAMPLED_ENUMS: Final = {
    "context": _CONTEXTS, "format": _FORMATS, "measurand": _MEASURANDS, "phase": _PHASES,
    "location": _LOCATIONS, "unit": _UNITS,
}  # fmt: skip
_SAMPLED_KEYS: Final = frozenset(("value", *_SAMPLED_ENUMS))
_ERROR_CODES: Final = frozenset(
    ("ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature",
     "InternalError", "LocalListConflict", "NoError", "OtherError", "OverCurrentFailure",
     "PowerMeterFailure", "PowerSwitchFailure", "ReaderFailure", "ResetFailure",
     "UnderVoltage", "OverVoltage", "WeakSignal"))  # fmt: skip
_STATUSES: Final = frozenset(
    ("Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing",
     "Reserved", "Unavailable", "Faulted"))  # fmt: skip
_STATUS_KEYS: Final = frozenset(
    ("connectorId", "errorCode", "info", "status", "timestamp", "vendorId", "vendorErrorCode")
)
_STATUS_LENGTHS: Final = {"info": 50, "vendorId": 255, "vendorErrorCode": 50}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def hand_meter_values_16(payload: Payload) -> None:
    """1.6 MeterValues.req, every rule of MeterValues.json written out by hand."""
    if not isinstance(payload, dict):
        raise ValueError("payload: not an object")
    if "connectorId" not in payload or "meterValue" not in payload:
        raise ValueError("payload: connectorId and meterValue are required")
    if not payload.keys() <= {"connectorId", "transactionId", "meterValue"}:
        raise ValueError("payload: unknown property")
    if not _is_int(payload["connectorId"]):
        raise ValueError("connectorId: not an integer")
    if "transactionId" in payload and not _is_int(payload["transactionId"]):
        raise ValueError("transactionId: not an integer")
    meter_values = payload["meterValue"]
    if not isinstance(meter_values, list) or not meter_values:
        raise ValueError("meterValue: not a non-empty array")
    for mv in meter_values:
        if not isinstance(mv, dict) or mv.keys() != {"timestamp", "sampledValue"}:
            raise ValueError("meterValue[]: needs exactly timestamp and sampledValue")
        ts = mv["timestamp"]
        if not isinstance(ts, str) or _DATE_TIME.match(ts) is None:
            raise ValueError("meterValue[].timestamp: not a date-time")
        sampled = mv["sampledValue"]
        if not isinstance(sampled, list) or not sampled:
            raise ValueError("meterValue[].sampledValue: not a non-empty array")
        for sv in sampled:
            if not isinstance(sv, dict) or "value" not in sv or not sv.keys() <= _SAMPLED_KEYS:
                raise ValueError("sampledValue[]: bad object")
            for key, value in sv.items():
                if key == "value":
                    if not isinstance(value, str):
                        raise ValueError("sampledValue[].value: not a string")
                elif not isinstance(value, str) or value not in _SAMPLED_ENUMS[key]:
                    raise ValueError(f"sampledValue[].{key}: not one of the enum values")


def hand_status_notification_16(payload: Payload) -> None:
    """1.6 StatusNotification.req, every rule of StatusNotification.json by hand."""
    if not isinstance(payload, dict):
        raise ValueError("payload: not an object")
    if "connectorId" not in payload or "errorCode" not in payload or "status" not in payload:
        raise ValueError("payload: connectorId, errorCode and status are required")
    if not payload.keys() <= _STATUS_KEYS:
        raise ValueError("payload: unknown property")
    for key, value in payload.items():
        if key == "connectorId":
            if not _is_int(value):
                raise ValueError("connectorId: not an integer")
        elif key == "errorCode":
            if not isinstance(value, str) or value not in _ERROR_CODES:
                raise ValueError("errorCode: not one of the enum values")
        elif key == "status":
            if not isinstance(value, str) or value not in _STATUSES:
                raise ValueError("status: not one of the enum values")
        elif key == "timestamp":
            if not isinstance(value, str) or _DATE_TIME.match(value) is None:
                raise ValueError("timestamp: not a date-time")
        elif not isinstance(value, str) or len(value) > _STATUS_LENGTHS[key]:
            raise ValueError(f"{key}: not a string of at most {_STATUS_LENGTHS[key]}")


_HAND_WRITTEN: Final[dict[tuple[Version, str, Kind], Check]] = {
    (V16, "MeterValues", REQUEST): hand_meter_values_16,
    (V16, "StatusNotification", REQUEST): hand_status_notification_16,
}


def hand_written_check(version: Version, action: str, kind: Kind) -> Check:
    return _HAND_WRITTEN[(version, action, kind)]


CANDIDATES: Final[dict[str, Callable[[Version, str, Kind], Check]]] = {
    "ocpp": official_check,
    "fastjsonschema": fastjsonschema_check,
    "pydantic-core": pydantic_core_check,
    "msgspec.convert": msgspec_convert_check,
    "gateway": gateway_check,
    "hand-written": hand_written_check,
}


# --- equivalence before timing -----------------------------------------------------


def _rejects(check: Check, payload: Payload) -> bool:
    try:
        check(payload)
    except Exception:  # every candidate raises its own exception type
        return True
    return False


def _mutations(hot: Hot) -> list[tuple[str, Payload]]:
    """A few invalid variants of a hot sample, each wrong in one place."""
    schema = load_schema(hot.version, hot.action, hot.kind)
    out: list[tuple[str, Payload]] = [("extra property", {**hot.payload, "unknownProp": 1})]
    for name in schema.get("required", ())[:1]:
        out.append((f"{name} missing", {k: v for k, v in hot.payload.items() if k != name}))
    for name, value in hot.payload.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            out.append((f"{name} as a string", {**hot.payload, name: str(value)}))
            out.append((f"{name} as 1.0", {**hot.payload, name: float(value)}))
            break
    for name, value in hot.payload.items():
        if isinstance(value, list):
            out.append((f"{name} empty", {**hot.payload, name: []}))
            nested = copy.deepcopy(hot.payload)
            nested[name][0]["unknownProp"] = 1
            out.append((f"{name}[0] extra property", nested))
            break
    if "timestamp" in hot.payload:
        out.append(("timestamp not a date-time", {**hot.payload, "timestamp": "today"}))
    return out


def equivalence_problems(name: str, check: Check, hot: Hot, official: Check) -> list[str]:
    """How ``check`` disagrees with the reference on ``hot`` and its mutations."""
    problems: list[str] = []
    if _rejects(check, copy.deepcopy(hot.payload)):
        problems.append(f"{name} rejects the valid {hot.label}")
    for what, mutated in _mutations(hot):
        if _rejects(official, mutated) and not _rejects(check, mutated):
            problems.append(f"{name} accepts {hot.label} with {what}")
    return problems


# --- timing -------------------------------------------------------------------------


def _run(fn: Callable[[Any], object], arg: object, number: int) -> int:
    started = time.perf_counter_ns()
    for _ in range(number):
        fn(arg)
    return time.perf_counter_ns() - started


Timed = dict[str, tuple[Callable[[Any], object], object]]


def time_us(candidates: Timed, *, repeat: int, run_ns: int) -> dict[str, float]:
    """Median µs per call of each candidate, gc disabled.

    Each candidate runs ``repeat`` times for about ``run_ns``; the runs go round-robin
    over the candidates, so a burst of load from elsewhere on the machine hits them all
    alike instead of skewing one column.
    """
    numbers: dict[str, int] = {}
    for name, (fn, arg) in candidates.items():
        fn(arg)  # warm up caches and lazy compilation
        once = max(_run(fn, arg, 10) // 10, 1)
        numbers[name] = max(run_ns // once, 5)
    runs: dict[str, list[float]] = {name: [] for name in candidates}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for name, (fn, arg) in candidates.items():
                runs[name].append(_run(fn, arg, numbers[name]) / numbers[name])
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: statistics.median(values) / 1000 for name, values in runs.items()}


@dataclass
class Results:
    validate_us: dict[str, dict[str, float]] = field(default_factory=dict)
    decode_us: dict[str, dict[str, float]] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)


def measure(repeat: int, run_ns: int, *, out: Callable[[str], object] = print) -> Results:
    results = Results()
    for hot in HOT:
        results.sizes[hot.label] = len(hot.raw)
        official = official_check(hot.version, hot.action, hot.kind)
        timed: Timed = {}
        for name, factory in CANDIDATES.items():
            if name == "hand-written" and (hot.version, hot.action, hot.kind) not in _HAND_WRITTEN:
                continue
            check = factory(hot.version, hot.action, hot.kind)
            problems = [] if name == "ocpp" else equivalence_problems(name, check, hot, official)
            if problems:
                results.excluded.extend(problems)
                continue
            timed[name] = (check, hot.payload)
        results.validate_us[hot.label] = time_us(timed, repeat=repeat, run_ns=run_ns)
        results.decode_us[hot.label] = time_us(_decoders(hot), repeat=repeat, run_ns=run_ns)
        out(f"  measured {hot.label}")
    return results


def _decoders(hot: Hot) -> Timed:
    raw = hot.raw
    schema = load_schema(hot.version, hot.action, hot.kind)
    compiled = fastjsonschema_check(hot.version, hot.action, hot.kind)
    core = SchemaValidator(core_schema_for(schema))
    decoder = msgspec.json.Decoder(msgspec_type_for(schema), strict=True)
    loads = orjson.loads

    def orjson_fastjsonschema(data: bytes) -> object:
        return compiled(loads(data))

    def orjson_pydantic(data: bytes) -> object:
        return core.validate_python(loads(data))

    return {
        "orjson.loads": (loads, raw),
        "orjson+fastjsonschema": (orjson_fastjsonschema, raw),
        "orjson+pydantic-core": (orjson_pydantic, raw),
        "pydantic validate_json": (core.validate_json, raw),
        "msgspec.json.decode": (decoder.decode, raw),
    }


# --- report -------------------------------------------------------------------------


def _table(
    title: str, rows: dict[str, dict[str, float]], base: str, sizes: dict[str, int]
) -> list[str]:
    columns: list[str] = []
    for row in rows.values():
        columns.extend(c for c in row if c not in columns)
    width = max(len(label) for label in rows) + 8
    lines = [title, ""]
    head = f"{'message (bytes)':<{width}}" + "".join(f"{c:>23} " for c in columns)
    lines += [head, "-" * len(head)]
    totals = dict.fromkeys(columns, 0.0)
    complete = dict.fromkeys(columns, True)
    for label, row in rows.items():
        cells = []
        for column in columns:
            if column not in row:
                cells.append(f"{'-':>23} ")
                complete[column] = False
                continue
            totals[column] += row[column]
            ratio = f"{row[base] / row[column]:>7.2f}x" if base in row else "    n/a "
            cells.append(f"{row[column]:>10.2f} µs {ratio} ")
        lines.append(f"{f'{label} ({sizes[label]})':<{width}}" + "".join(cells))
    lines.append("-" * len(head))
    cells = []
    for column in columns:
        if not complete[column] or not complete[base]:
            cells.append(f"{'(not all messages)':>23} ")
        else:
            cells.append(f"{totals[column]:>10.2f} µs {totals[base] / totals[column]:>7.2f}x ")
    lines.append(f"{'sum over the hot messages':<{width}}" + "".join(cells))
    lines.append(f"(x = {base} time / candidate time: above 1 is faster than {base})")
    return lines


def report(results: Results) -> str:
    lines = _table(
        "Validation of the parsed dict, µs per validation (median)",
        results.validate_us,
        "fastjsonschema",
        results.sizes,
    )
    lines.append("")
    lines += _table(
        "Parse + validate from the frame bytes, µs per message (median)",
        results.decode_us,
        "orjson+fastjsonschema",
        results.sizes,
    )
    if results.excluded:
        lines += ["", "Left out (disagree with the reference before timing):"]
        lines += [f"  {problem}" for problem in results.excluded]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.schema_candidates")
    parser.add_argument("--repeat", type=int, default=11, help="timed runs per cell (median)")
    parser.add_argument("--run-ms", type=float, default=20.0, help="length of one timed run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, repeat {args.repeat}, ~{args.run_ms} ms per run")
    results = measure(args.repeat, int(args.run_ms * 1_000_000))
    print()
    print(report(results))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "unit": "microseconds per call, median",
                    "repeat": args.repeat,
                    "sizes": results.sizes,
                    "validate": results.validate_us,
                    "parse_and_validate": results.decode_us,
                    "excluded": results.excluded,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 1 if results.excluded else 0


if __name__ == "__main__":
    raise SystemExit(main())
