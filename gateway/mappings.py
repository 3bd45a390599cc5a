"""Load and validate the mapping tables in ``mappings/*.toml`` at start-up.

Layer: beside ``translate``; reads files, validates them with pydantic, and builds the
immutable :class:`~gateway.translate.tables.TranslationTables` that converters use.
Every error names the file and the entry, so ``ocpp-gateway check-config`` can print
something an operator can act on.

The files, all required:

* ``error_codes.toml``: 1.6 ChargePointErrorCode -> 2.0.1 NotifyEvent component/variable;
* ``id_tokens.toml``: rules inferring a 2.0.1 IdTokenEnumType from a 1.6 idTag;
* ``meter_quirks.toml``: which vendor meter-value bugs are repaired, per vendor/model;
* ``device_model.toml`` and ``vendors/*.toml``: 1.6 configuration keys as 2.0.1
  components and variables (loaded by ``gateway.variable_mappings``).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from ocpp.v16.enums import ChargePointErrorCode
from ocpp.v201.enums import IdTokenEnumType
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from gateway.translate.tables import (
    ErrorEvent,
    IdTokenRule,
    IdTokenRules,
    MeterQuirks,
    Tier,
    TranslationTables,
    VendorIdTokenRules,
    VendorMeterQuirks,
)
from gateway.variable_mappings import DeviceModelError, load_device_model

ERROR_CODES_FILE = "error_codes.toml"
ID_TOKENS_FILE = "id_tokens.toml"
METER_QUIRKS_FILE = "meter_quirks.toml"

_TOKEN_TYPES = frozenset(t.value for t in IdTokenEnumType)
_Name = Annotated[str, Field(min_length=1, max_length=50)]  # 2.0.1 identifierString[50]


class MappingError(Exception):
    """A mapping file is missing, unreadable or invalid; the message names file and entry."""


def _token_type(value: str) -> str:
    if value not in _TOKEN_TYPES:
        raise ValueError(f"{value!r} is not an IdTokenEnumType ({sorted(_TOKEN_TYPES)})")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ErrorEventRow(_Strict):
    component: _Name
    variable: _Name
    tier: Literal["station", "evse", "connector"]


class _TokenRuleRow(_Strict):
    pattern: str
    type: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _token_type(value)


class _VendorRow(_Strict):
    vendor: Annotated[str, Field(min_length=1)]
    model: str | None = None
    default: str
    rules: list[_TokenRuleRow] = []

    @field_validator("default")
    @classmethod
    def _known_default(cls, value: str) -> str:
        return _token_type(value)


class _IdTokensFile(_Strict):
    default: str
    rule: list[_TokenRuleRow] = []
    vendor: list[_VendorRow] = []

    @field_validator("default")
    @classmethod
    def _known_default(cls, value: str) -> str:
        return _token_type(value)


_BUILT_IN_QUIRKS = MeterQuirks()


class _QuirkFlags(_Strict):
    # StrictBool: TOML has real booleans, so "yes" or 1 is a mistake, not a spelling.
    numeric_values: StrictBool = _BUILT_IN_QUIRKS.numeric_values
    unit_spelling: StrictBool = _BUILT_IN_QUIRKS.unit_spelling
    energy_kwh_as_wh: StrictBool = _BUILT_IN_QUIRKS.energy_kwh_as_wh


class _VendorQuirksRow(_Strict):
    vendor: Annotated[str, Field(min_length=1)]
    model: str | None = None
    # None: not listed, so the [default] value applies.
    numeric_values: StrictBool | None = None
    unit_spelling: StrictBool | None = None
    energy_kwh_as_wh: StrictBool | None = None


class _MeterQuirksFile(_Strict):
    default: _QuirkFlags = _QuirkFlags()
    vendor: list[_VendorQuirksRow] = []


def default_mappings_dir() -> Path:
    """The tables shipped with the package (``mappings/`` in the repository)."""
    return Path(str(importlib.resources.files("gateway._mappings")))


def load_tables(directory: Path | None = None) -> TranslationTables:
    """Read, validate and build the translation tables.

    Raises:
        MappingError: naming the file and entry at fault.
    """
    root = directory or default_mappings_dir()
    errors_raw = _read_toml(root / ERROR_CODES_FILE)
    tokens_raw = _read_toml(root / ID_TOKENS_FILE)
    quirks_raw = _read_toml(root / METER_QUIRKS_FILE)
    id_tokens, vendor_id_tokens = _token_rules(root / ID_TOKENS_FILE, tokens_raw)
    meter_quirks, vendor_meter_quirks = _meter_quirks(root / METER_QUIRKS_FILE, quirks_raw)
    try:
        device_model, vendor_device_models = load_device_model(root)
    except DeviceModelError as exc:
        raise MappingError(str(exc)) from None
    return TranslationTables(
        error_events=_error_events(root / ERROR_CODES_FILE, errors_raw),
        id_tokens=id_tokens,
        vendor_id_tokens=vendor_id_tokens,
        meter_quirks=meter_quirks,
        vendor_meter_quirks=vendor_meter_quirks,
        device_model=device_model,
        vendor_device_models=vendor_device_models,
    )


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise MappingError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: invalid TOML: {exc}") from None


def _describe(path: Path, exc: ValidationError, prefix: str = "") -> MappingError:
    problems = "; ".join(
        f"{prefix}{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
    return MappingError(f"{path}: {problems}")


def _error_events(path: Path, raw: Mapping[str, object]) -> Mapping[str, ErrorEvent]:
    known = {code.value for code in ChargePointErrorCode} - {"NoError"}
    table: dict[str, ErrorEvent] = {}
    for code, row in raw.items():
        if code not in known:
            raise MappingError(f"{path}: [{code}] is not an OCPP 1.6 ChargePointErrorCode")
        try:
            parsed = _ErrorEventRow.model_validate(row)
        except ValidationError as exc:
            raise _describe(path, exc, prefix=f"[{code}] ") from None
        table[code] = ErrorEvent(parsed.component, parsed.variable, Tier(parsed.tier))
    missing = known - table.keys()
    if missing:
        raise MappingError(f"{path}: no entry for errorCode(s) {', '.join(sorted(missing))}")
    return table


def _rules(rows: list[_TokenRuleRow], default: str) -> IdTokenRules:
    return IdTokenRules(
        rules=tuple(IdTokenRule(re.compile(r.pattern), r.type) for r in rows), default=default
    )


def _token_rules(
    path: Path, raw: Mapping[str, object]
) -> tuple[IdTokenRules, tuple[VendorIdTokenRules, ...]]:
    try:
        parsed = _IdTokensFile.model_validate(raw)
    except ValidationError as exc:
        raise _describe(path, exc) from None
    vendors = tuple(
        VendorIdTokenRules(v.vendor, v.model, _rules(v.rules, v.default)) for v in parsed.vendor
    )
    return _rules(parsed.rule, parsed.default), vendors


def _meter_quirks(
    path: Path, raw: Mapping[str, object]
) -> tuple[MeterQuirks, tuple[VendorMeterQuirks, ...]]:
    try:
        parsed = _MeterQuirksFile.model_validate(raw)
    except ValidationError as exc:
        raise _describe(path, exc) from None
    default = MeterQuirks(**parsed.default.model_dump())
    vendors: list[VendorMeterQuirks] = []
    seen: dict[tuple[str, str | None], int] = {}
    for index, row in enumerate(parsed.vendor):
        # Two entries for one station would make the choice depend on their order.
        key = (row.vendor.casefold(), row.model.casefold() if row.model is not None else None)
        if key in seen:
            raise MappingError(
                f"{path}: vendor.{index}: same vendor and model as vendor.{seen[key]}"
            )
        seen[key] = index
        listed = row.model_dump(exclude={"vendor", "model"}, exclude_none=True)
        quirks = dataclasses.replace(default, **listed)
        vendors.append(VendorMeterQuirks(row.vendor, row.model, quirks))
    return default, tuple(vendors)
