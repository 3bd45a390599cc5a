"""Load and validate the device model tables: ``mappings/device_model.toml`` and the
per-vendor/model files in ``mappings/vendors/*.toml``.

Layer: beside ``translate``, like ``gateway.mappings`` (which calls this). Every error
names the file and the entry (``variable[12] (OCPPCommCtrlr.HeartbeatInterval)``), so
``ocpp-gateway check-config`` prints something an operator can act on. The checks go
beyond types: a row must have one source, a conversion that fits its type, a valuesList
where 2.0.1 requires one (§2.51), and standardized names unless it says otherwise, so a
misspelt variable is caught at start-up rather than by a CSMS that cannot find it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from ocpp.v201 import enums as v201_enums
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from gateway.translate.variables import (
    CONNECTOR_PLACEHOLDER,
    GATEWAY_FACTS,
    LIST_TYPES,
    READ_ONLY_CONVERSIONS,
    STATION_FACTS,
    Convert,
    DataType,
    DeviceModel,
    InvalidValue,
    Mutability,
    StationFacts,
    Tier,
    VariableMapping,
    VendorDeviceModel,
    check_value,
)

DEVICE_MODEL_FILE = "device_model.toml"
VENDORS_DIR = "vendors"

_Name = Annotated[str, Field(min_length=1, max_length=50)]  # 2.0.1 identifierString[50]
_DEFAULT_CONVERSIONS = {
    DataType.BOOLEAN: Convert.BOOLEAN,
    DataType.INTEGER: Convert.INTEGER,
    DataType.DECIMAL: Convert.DECIMAL,
    DataType.MEMBER_LIST: Convert.MEMBERS,
    DataType.SEQUENCE_LIST: Convert.MEMBERS,
}
# Data types each conversion may produce.
_CONVERSION_TYPES: Mapping[Convert, frozenset[DataType]] = {
    Convert.TEXT: frozenset({DataType.STRING, DataType.OPTION_LIST, DataType.DATE_TIME}),
    Convert.BOOLEAN: frozenset({DataType.BOOLEAN}),
    Convert.INTEGER: frozenset({DataType.INTEGER}),
    Convert.DECIMAL: frozenset({DataType.DECIMAL}),
    Convert.MEMBERS: frozenset({DataType.MEMBER_LIST, DataType.SEQUENCE_LIST}),
    Convert.PROFILE_FLAG: frozenset({DataType.BOOLEAN}),
    Convert.KEY_PRESENT: frozenset({DataType.BOOLEAN}),
    Convert.MAX_LIMIT: frozenset({DataType.INTEGER}),
    Convert.HEX_PASSWORD: frozenset({DataType.STRING}),
    Convert.PHASE_ROTATION: frozenset({DataType.STRING, DataType.OPTION_LIST}),
}


class DeviceModelError(Exception):
    """A device model file is invalid; the message names the file and the entry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _VariableRow(_Strict):
    component: _Name
    component_instance: _Name | None = None
    tier: Tier = Tier.STATION
    variable: _Name
    variable_instance: _Name | None = None
    type: DataType
    unit: Annotated[str, Field(min_length=1, max_length=16)] | None = None
    min: float | None = None
    max: float | None = None
    values: list[Annotated[str, Field(min_length=1)]] | None = None
    mutability: Mutability
    reboot: StrictBool = False
    standard: StrictBool = True
    profile: str = ""
    ref: str = ""
    note: str = ""
    key: Annotated[str, Field(min_length=1, max_length=50)] | None = None  # 1.6 CiString50
    value: str | None = None
    gateway: str | None = None
    station: str | None = None
    convert: Convert | None = None
    map: dict[str, str] = {}
    strip_phase: StrictBool = False
    flag: str | None = None
    fallback: str | None = None


class _StationFactsRow(_Strict):
    supply_phases: Annotated[int, Field(ge=1, le=3)] | None = None
    connector_type: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    security_extension: StrictBool | None = None


class _DeviceModelFile(_Strict):
    vendor_component: _Name = "OCPP16Config"
    variable: list[_VariableRow]


class _VendorFile(_Strict):
    vendor: Annotated[str, Field(min_length=1)]
    model: str | None = None
    station: _StationFactsRow = _StationFactsRow()
    variable: list[_VariableRow] = []


def _standard_names() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """Standardized component names, and variable names per component (2.0.1 Part 2
    Appendix, as the ``ocpp`` package lists them; generic variables apply to any)."""

    def names(enum_name: str) -> frozenset[str]:
        enum = getattr(v201_enums, enum_name, None)
        if enum is None:
            return frozenset()
        # "Count[ChargingProfiles]", "Power(MaxLimit)": the name before the qualifiers
        return frozenset(re.split(r"[\[(]", member.value)[0] for member in enum)

    components = names("ControllerComponentName") | names("PhysicalComponentName")
    generic = names("StandardizedVariableName")
    per_component = {
        component: names(f"{component}VariableName") | generic for component in components
    }
    return components, per_component


_COMPONENTS, _VARIABLES = _standard_names()


def load_device_model(root: Path) -> tuple[DeviceModel, tuple[VendorDeviceModel, ...]]:
    """Read, validate and build the default device model and the vendor files.

    Raises:
        DeviceModelError: naming the file and entry at fault.
    """
    path = root / DEVICE_MODEL_FILE
    raw = _read_toml(path)
    try:
        parsed = _DeviceModelFile.model_validate(raw)
    except ValidationError as exc:
        raise DeviceModelError(_describe(path, exc, raw)) from None
    rows = _rows(path, parsed.variable)
    base = DeviceModel(rows, parsed.vendor_component)
    return base, _vendor_files(root / VENDORS_DIR)


def _vendor_files(directory: Path) -> tuple[VendorDeviceModel, ...]:
    if not directory.is_dir():
        return ()
    vendors: list[VendorDeviceModel] = []
    seen: dict[tuple[str, str | None], Path] = {}
    for path in sorted(directory.glob("*.toml")):
        raw = _read_toml(path)
        try:
            parsed = _VendorFile.model_validate(raw)
        except ValidationError as exc:
            raise DeviceModelError(_describe(path, exc, raw)) from None
        # Two files for one station would make the choice depend on file names.
        match = (parsed.vendor.casefold(), parsed.model.casefold() if parsed.model else None)
        if match in seen:
            raise DeviceModelError(f"{path}: same vendor and model as {seen[match]}")
        seen[match] = path
        station = parsed.station
        facts = StationFacts(
            station.supply_phases, station.connector_type, station.security_extension
        )
        vendors.append(
            VendorDeviceModel(parsed.vendor, parsed.model, facts, _rows(path, parsed.variable))
        )
    return tuple(vendors)


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise DeviceModelError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise DeviceModelError(f"{path}: invalid TOML: {exc}") from None


def _describe(path: Path, exc: ValidationError, raw: Mapping[str, object]) -> str:
    """Pydantic's errors, a variable entry named as the cross-checks name it:
    ``variable[3] (TxCtrlr.TxStartPoint): unit: ...``."""
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(part) for part in loc)
        rows = raw.get("variable")
        if len(loc) >= 2 and loc[0] == "variable" and isinstance(loc[1], int):
            entry = rows[loc[1]] if isinstance(rows, list) and loc[1] < len(rows) else {}
            names = entry if isinstance(entry, dict) else {}
            label = f"{names.get('component', '?')}.{names.get('variable', '?')}"
            field = ".".join(str(part) for part in loc[2:])
            where = f"variable[{loc[1]}] ({label})" + (f": {field}" if field else "")
        problems.append(f"{where}: {err['msg']}")
    return f"{path}: {'; '.join(problems)}"


def _rows(path: Path, rows: list[_VariableRow]) -> tuple[VariableMapping, ...]:
    built: list[VariableMapping] = []
    seen: dict[tuple[str, str | None, str, str | None], int] = {}
    for index, row in enumerate(rows):
        where = f"{path}: variable[{index}] ({row.component}.{row.variable})"
        try:
            mapping = _build(row)
        except ValueError as exc:
            raise DeviceModelError(f"{where}: {exc}") from None
        if mapping.identity in seen:
            raise DeviceModelError(f"{where}: same variable as variable[{seen[mapping.identity]}]")
        seen[mapping.identity] = index
        built.append(mapping)
    return tuple(built)


def _build(row: _VariableRow) -> VariableMapping:
    _check_names(row)
    sources = [
        name for name in ("key", "value", "gateway", "station") if getattr(row, name) is not None
    ]
    convert = row.convert or _DEFAULT_CONVERSIONS.get(row.type, Convert.TEXT)
    if sources == ["key", "station"] and convert is Convert.MAX_LIMIT:
        pass  # the 1.6 value is the maxLimit, the station fact the Actual value
    elif len(sources) != 1:
        raise ValueError("needs exactly one of key, value, gateway, station")
    key_only = (row.convert, row.flag, row.fallback)
    if row.key is None and (row.map or row.strip_phase or any(f is not None for f in key_only)):
        raise ValueError("convert, map, strip_phase, flag and fallback need a key")
    if row.gateway is not None and row.gateway not in GATEWAY_FACTS:
        raise ValueError(f"gateway {row.gateway!r} is not one of {sorted(GATEWAY_FACTS)}")
    if row.station is not None and row.station not in STATION_FACTS:
        raise ValueError(f"station {row.station!r} is not one of {sorted(STATION_FACTS)}")
    if row.type not in _CONVERSION_TYPES[convert]:
        raise ValueError(f"convert {convert} cannot produce a {row.type} value")
    if (row.map or row.strip_phase) and convert is not Convert.MEMBERS:
        raise ValueError("map and strip_phase apply to convert = members only")
    if (row.flag is None) == (convert is Convert.PROFILE_FLAG):
        raise ValueError("flag is required with convert = profile_flag, and only there")
    if row.key is not None and CONNECTOR_PLACEHOLDER in row.key and row.tier is Tier.STATION:
        raise ValueError(f"{CONNECTOR_PLACEHOLDER} in a key needs tier evse or connector")
    _check_mutability(row, convert)
    if (row.values is not None) != (row.type in LIST_TYPES):
        raise ValueError("values (valuesList) is required for list types and only for them")
    if row.min is not None and row.max is not None and row.min > row.max:
        raise ValueError("min is above max")
    mapping = VariableMapping(
        component=row.component,
        variable=row.variable,
        data_type=row.type,
        mutability=row.mutability,
        tier=row.tier,
        component_instance=row.component_instance,
        variable_instance=row.variable_instance,
        unit=row.unit,
        min_limit=row.min,
        max_limit=row.max,
        values=tuple(row.values or ()),
        reboot=row.reboot,
        key=row.key,
        fixed=row.value,
        gateway=row.gateway,
        station=row.station,
        convert=convert,
        value_map=dict(row.map),
        strip_phase=row.strip_phase,
        flag=row.flag,
        fallback=row.fallback,
        profile=row.profile,
        ref=row.ref,
    )
    for constant in (row.value, row.fallback):
        if constant is not None:
            try:
                check_value(mapping, constant)
            except InvalidValue as exc:
                raise ValueError(f"value {constant!r}: {exc.info}") from None
    return mapping


def _check_names(row: _VariableRow) -> None:
    if not row.standard:
        return
    hint = "(set standard = false for a name from outside 2.0.1 Part 2)"
    if row.component not in _COMPONENTS:
        raise ValueError(f"{row.component!r} is not a standardized 2.0.1 component {hint}")
    if row.variable not in _VARIABLES[row.component]:
        raise ValueError(
            f"{row.variable!r} is not a standardized variable of {row.component} {hint}"
        )


def _check_mutability(row: _VariableRow, convert: Convert) -> None:
    if row.key is None and row.mutability is not Mutability.READ_ONLY:
        raise ValueError("only a 1.6 key can be written: mutability must be ReadOnly")
    if convert in READ_ONLY_CONVERSIONS and row.mutability is not Mutability.READ_ONLY:
        raise ValueError(f"convert {convert} derives its value: mutability must be ReadOnly")
    if (convert is Convert.HEX_PASSWORD) != (row.mutability is Mutability.WRITE_ONLY):
        raise ValueError("convert hex_password and mutability WriteOnly go together")
