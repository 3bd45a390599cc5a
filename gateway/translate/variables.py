"""The 2.0.1 device model of a 1.6 charger: one mapping row per variable, and its values.

Layer: translate (sans-I/O). The rows live in ``mappings/device_model.toml`` (and the
vendor files beside it); ``gateway.variable_mappings`` validates them at start-up and
builds the :class:`DeviceModel` values here. Facts: reference config-keys.csv, §2.18.

A row says where a variable's value comes from (a 1.6 configuration key, a constant,
a gateway fact or a station fact), how a 1.6 value reads as a 2.0.1 one and back
(:class:`Convert`), and the characteristics a CSMS sees (2.0.1 §2.51). Values cross
as text both ways; :func:`value_from_v16` and :func:`value_to_v16` are the only
places they are converted, and :func:`value_to_v16` refuses what the characteristics
forbid before the charger sees it.
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


class DataType(StrEnum):
    """2.0.1 DataEnumType (§3.22)."""

    STRING = "string"
    DECIMAL = "decimal"
    INTEGER = "integer"
    DATE_TIME = "dateTime"
    BOOLEAN = "boolean"
    OPTION_LIST = "OptionList"
    SEQUENCE_LIST = "SequenceList"
    MEMBER_LIST = "MemberList"


LIST_TYPES = frozenset({DataType.OPTION_LIST, DataType.SEQUENCE_LIST, DataType.MEMBER_LIST})


class Mutability(StrEnum):
    READ_ONLY = "ReadOnly"
    READ_WRITE = "ReadWrite"
    WRITE_ONLY = "WriteOnly"


class Convert(StrEnum):
    """How a 1.6 configuration value reads as the variable's 2.0.1 value."""

    TEXT = "text"  # copied both ways
    BOOLEAN = "boolean"  # 1.6 free string, 'True' or '1' seen in the field -> 'true'
    INTEGER = "integer"
    DECIMAL = "decimal"
    MEMBERS = "members"  # comma list; items mapped, phase suffixes stripped
    PROFILE_FLAG = "profile_flag"  # SupportedFeatureProfiles lists ``flag``
    KEY_PRESENT = "key_present"  # "true" when the charger has the key at all
    MAX_LIMIT = "max_limit"  # the 1.6 value is the variable's maxLimit
    HEX_PASSWORD = "hex_password"  # AuthorizationKey: 1.6 hex <-> 2.0.1 text (B06.FR.09)
    PHASE_ROTATION = "phase_rotation"  # ConnectorPhaseRotation "0.RST,1.RTS"


# Conversions that derive a value and cannot be written through.
READ_ONLY_CONVERSIONS = frozenset(
    {Convert.PROFILE_FLAG, Convert.KEY_PRESENT, Convert.MAX_LIMIT, Convert.PHASE_ROTATION}
)

GATEWAY_FACTS = frozenset(
    {
        "message_timeout",
        "date_time",
        "bytes_per_message",
        "items_per_message_get_report",
        "items_per_message_set_variables",
    }
)
STATION_FACTS = frozenset(
    {
        "available",
        "availability_state",
        "problem",
        "vendor_name",
        "model",
        "serial_number",
        "supply_phases",
        "connector_type",
        "charging_profiles_installed",
    }
)

CONNECTOR_PLACEHOLDER = "{connector}"
CONFIGURATION_VALUE_LIMIT = 500  # 1.6 ChangeConfiguration value: CiString500


@dataclass(frozen=True, slots=True)
class VariableMapping:
    """One 2.0.1 variable (per tier instance) and where its value comes from."""

    component: str
    variable: str
    data_type: DataType
    mutability: Mutability
    tier: Tier = Tier.STATION
    component_instance: str | None = None
    variable_instance: str | None = None
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values: tuple[str, ...] = ()  # valuesList
    reboot: bool = False
    # Exactly one source (max_limit rows may add ``station`` for the Actual value).
    key: str | None = None
    fixed: str | None = None
    gateway: str | None = None
    station: str | None = None
    convert: Convert = Convert.TEXT
    value_map: Mapping[str, str] = field(default_factory=dict)  # 1.6 item -> 2.0.1
    strip_phase: bool = False
    flag: str | None = None
    fallback: str | None = None
    profile: str = ""
    ref: str = ""

    @property
    def identity(self) -> tuple[str, str | None, str, str | None]:
        return (self.component, self.component_instance, self.variable, self.variable_instance)

    @property
    def writable(self) -> bool:
        return self.mutability is not Mutability.READ_ONLY

    def key_for(self, connector_id: int | None) -> str | None:
        """The 1.6 key of this row on a connector ("MeterPublicKey{connector}")."""
        if self.key is None or CONNECTOR_PLACEHOLDER not in self.key:
            return self.key
        return self.key.replace(CONNECTOR_PLACEHOLDER, str(connector_id or 0))


@dataclass(frozen=True, slots=True)
class StationFacts:
    """What a vendor file tells about a model the 1.6 charger cannot report itself."""

    supply_phases: int | None = None
    connector_type: str | None = None
    # The model implements the OCPP 1.6 security extension (whitepaper): signed
    # firmware, GetLog, certificates, ExtendedTriggerMessage. None: not stated.
    security_extension: bool | None = None


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """The rows for one station (the default table, or with a vendor file applied)."""

    variables: tuple[VariableMapping, ...]
    vendor_component: str = "OCPP16Config"
    facts: StationFacts = field(default_factory=StationFacts)

    def mapped_keys(self) -> frozenset[str]:
        """1.6 keys (casefolded, placeholders kept) a row reports: these never appear
        under the vendor component."""
        return frozenset(v.key.casefold() for v in self.variables if v.key is not None)


@dataclass(frozen=True, slots=True)
class VendorDeviceModel:
    vendor: str
    model: str | None
    facts: StationFacts
    variables: tuple[VariableMapping, ...]  # replace rows of the same identity, or add


def apply_vendor(base: DeviceModel, vendor: VendorDeviceModel | None) -> DeviceModel:
    """The default rows with a vendor file's rows replacing those of the same identity
    (in place, so report order is kept) and its new rows appended."""
    if vendor is None:
        return base
    overrides = {row.identity: row for row in vendor.variables}
    replaced = tuple(overrides.pop(row.identity, row) for row in base.variables)
    added = tuple(row for row in vendor.variables if row.identity in overrides)
    return DeviceModel(replaced + added, base.vendor_component, vendor.facts)


# --- values ---------------------------------------------------------------------------


class InvalidValue(Exception):
    """A value the variable's characteristics refuse; reason_code is a 2.0.1
    ReasonCode for statusInfo (Appendix 5)."""

    def __init__(self, reason_code: str, info: str) -> None:
        super().__init__(info)
        self.reason_code = reason_code
        self.info = info


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
# ASCII only: str.isdigit and \d accept other scripts' digits, which a 1.6 charger does not.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_PHASE_SUFFIX = re.compile(r"\.(?:L[123](?:-[LN][123]?)?|N)$")
_PASSWORD = re.compile(r"[A-Za-z0-9*\-_=:+|@.]{16,40}")  # 2.0.1 passwordString


def _list_items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def value_from_v16(
    row: VariableMapping, raw: str | None, connector_id: int | None = None
) -> str | None:
    """The 2.0.1 value of a 1.6 configuration value; None when it has none (write-only,
    or a value the 2.0.1 type cannot carry: reported as unknown, never invented)."""
    if row.convert is Convert.KEY_PRESENT:
        return "true"
    if raw is None or row.convert in (Convert.HEX_PASSWORD, Convert.MAX_LIMIT):
        return None
    text = raw.strip()
    match row.convert:
        case Convert.BOOLEAN:
            folded = text.casefold()
            return "true" if folded in _TRUE else "false" if folded in _FALSE else None
        case Convert.INTEGER:
            return str(int(text)) if _INTEGER.fullmatch(text) else None
        case Convert.DECIMAL:
            return _decimal_text(text)
        case Convert.MEMBERS:
            return ",".join(_members_from_v16(row, text))
        case Convert.PROFILE_FLAG:
            listed = {item.casefold() for item in _list_items(text)}
            return "true" if (row.flag or "").casefold() in listed else "false"
        case Convert.PHASE_ROTATION:
            return _phase_rotation(text, connector_id or 0)
        case _:
            return raw


def max_limit_from_v16(row: VariableMapping, raw: str | None) -> float | None:
    """A max_limit row's maxLimit from the charger's value (else the row's own)."""
    if row.convert is Convert.MAX_LIMIT and raw is not None and _INTEGER.fullmatch(raw.strip()):
        return float(int(raw.strip()))
    return row.max_limit


def _decimal_text(text: str) -> str | None:
    return text if _DECIMAL.fullmatch(text) else None


def _members_from_v16(row: VariableMapping, text: str) -> list[str]:
    """1.6 items in 2.0.1 terms: mapped, phase suffixes stripped ("Voltage.L1" is the
    measurand Voltage: 2.0.1 lists are bare enum values), duplicates and items with no
    2.0.1 counterpart (Temperature, RPM) dropped."""
    folded_values = {value.casefold(): value for value in row.values}
    members: list[str] = []
    for listed in _list_items(text):
        bare = _PHASE_SUFFIX.sub("", listed) if row.strip_phase else listed
        item = row.value_map.get(bare, bare)
        known = folded_values.get(item.casefold()) if row.values else item
        if known is not None and known not in members:
            members.append(known)
    return members


def _phase_rotation(text: str, connector_id: int) -> str | None:
    for entry in _list_items(text):
        index, _, rotation = entry.partition(".")
        if index.strip() == str(connector_id):
            rotation = rotation.strip()
            # 2.0.1 §2.13.5: an empty string means not applicable or not known.
            return "" if rotation in ("NotApplicable", "Unknown") else rotation
    return None


def check_value(row: VariableMapping, value: str) -> None:
    """Raise InvalidValue unless ``value`` fits the variable's characteristics: its
    dataType, limits and valuesList (2.0.1 §2.51, B05: the station refuses it)."""
    match row.data_type:
        case DataType.BOOLEAN:
            if value not in ("true", "false"):
                raise InvalidValue("InvalidValue", f"{value!r} is not a boolean (true or false)")
        case DataType.INTEGER:
            if not _INTEGER.fullmatch(value):
                raise InvalidValue("InvalidValue", f"{value!r} is not an integer")
            _check_range(row, int(value))
        case DataType.DECIMAL:
            if _decimal_text(value) is None:
                raise InvalidValue("InvalidValue", f"{value!r} is not a decimal")
            _check_range(row, float(value))
        case DataType.DATE_TIME:
            if not _DATE_TIME.fullmatch(value):
                raise InvalidValue("InvalidValue", f"{value!r} is not an RFC 3339 dateTime")
        case DataType.OPTION_LIST:
            if value not in row.values:
                raise InvalidValue("InvalidValue", f"{value!r} is not one of {list(row.values)}")
        case DataType.MEMBER_LIST | DataType.SEQUENCE_LIST:
            items = [item.strip() for item in value.split(",")] if value else []  # "": none
            unknown = [item for item in items if item not in row.values]
            if unknown:
                raise InvalidValue(
                    "InvalidValue", f"{', '.join(unknown)} not in the list {list(row.values)}"
                )
            if len(set(items)) != len(items):
                raise InvalidValue("InvalidValue", "an item is listed twice")
        case DataType.STRING:
            if row.max_limit is not None and len(value) > row.max_limit:
                raise InvalidValue("ValueTooHigh", f"longer than {row.max_limit:g} characters")


def _check_range(row: VariableMapping, number: float) -> None:
    if row.min_limit is not None and number < row.min_limit:
        raise InvalidValue("ValueTooLow", f"{number:g} is below the minimum {row.min_limit:g}")
    if row.max_limit is not None and number > row.max_limit:
        raise InvalidValue("ValueTooHigh", f"{number:g} is above the maximum {row.max_limit:g}")


def value_to_v16(row: VariableMapping, value: str) -> str:
    """The 1.6 configuration value for a 2.0.1 value a CSMS sets; checked first.

    Raises:
        InvalidValue: the value breaks the variable's characteristics, or 1.6 cannot
            carry it.
    """
    if row.convert is Convert.HEX_PASSWORD:
        # 2.0.1 §2.2.1: the password itself, 16-40 passwordString characters; 1.6
        # security whitepaper §7.2: its bytes as hexadecimal.
        if not _PASSWORD.fullmatch(value):
            raise InvalidValue("InvalidValue", "a password of 16 to 40 passwordString characters")
        return value.encode().hex()
    check_value(row, value)
    converted = value
    if row.convert is Convert.MEMBERS:
        inverse = {target: source for source, target in row.value_map.items()}
        converted = ",".join(inverse.get(item.strip(), item.strip()) for item in value.split(","))
    if len(converted) > CONFIGURATION_VALUE_LIMIT:
        raise InvalidValue("ValueTooHigh", "OCPP 1.6 configuration values hold 500 characters")
    return converted
