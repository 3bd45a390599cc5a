"""A station's 2.0.1 variables over its 1.6 configuration keys: GetVariables, SetVariables.

Layer: translate (sans-I/O). Facts: reference messages.md §2.18, §3.2 (ChangeConfiguration,
GetConfiguration); 2.0.1 B05, B06. Reports (B07, B08) are in ``translate.reports``.

The session does the I/O: it asks these functions which 1.6 keys to read
(:func:`get_variables_plan`), which ChangeConfiguration to send for each SetVariables item
(:func:`set_variable_step`), and turns the charger's answers into 2.0.1 results. Every
variable a station has is a :class:`Variable`: a mapping row placed on a component
instance (the station, an EVSE, a connector), so a GetVariables lookup and a report walk
the same list and cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.ocppj import Payload
from gateway.translate.core import CONNECTOR_STATUS
from gateway.translate.types import status_info
from gateway.translate.variables import (
    Convert,
    DataType,
    DeviceModel,
    InvalidValue,
    Mutability,
    StationFacts,
    Tier,
    VariableMapping,
    max_limit_from_v16,
    value_from_v16,
    value_to_v16,
)

ACTUAL: Final = "Actual"


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One 1.6 configuration key as the charger reported it (GetConfiguration.conf)."""

    key: str
    value: str | None
    readonly: bool


Configuration = Mapping[str, ConfigEntry]  # casefolded key -> entry (1.6 keys: CiString)


def configuration_from(answer: Payload) -> dict[str, ConfigEntry]:
    """The entries of a 1.6 GetConfiguration.conf, by casefolded key, charger order."""
    entries: dict[str, ConfigEntry] = {}
    for item in answer.get("configurationKey", ()):
        entry = ConfigEntry(item["key"], item.get("value"), bool(item["readonly"]))
        entries.setdefault(entry.key.casefold(), entry)
    return entries


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What station and gateway sources read, besides the charger's configuration."""

    # (1.6 connectorId, evseId, connectorId on the EVSE), ascending: the components
    connectors: tuple[tuple[int, int, int], ...] = ()
    boot: Payload = field(default_factory=dict)
    connector_statuses: Mapping[int, str] = field(default_factory=dict)
    connector_errors: Mapping[int, str] = field(default_factory=dict)
    charging_profiles_installed: int = 0
    gateway: Mapping[str, str] = field(default_factory=dict)  # gateway facts by name
    station: StationFacts = field(default_factory=StationFacts)  # from a vendor file


@dataclass(frozen=True, slots=True)
class Variable:
    """A mapping row on one component instance of this station."""

    row: VariableMapping
    evse_id: int | None = None
    connector_id: int | None = None  # on the EVSE (2.0.1)
    legacy_connector: int | None = None  # 1.6 connectorId (0: the station)

    @property
    def key(self) -> str | None:
        return self.row.key_for(self.legacy_connector)

    def component(self) -> Payload:
        component: Payload = {"name": self.row.component}
        if self.row.component_instance is not None:
            component["instance"] = self.row.component_instance
        if self.evse_id is not None:
            evse: Payload = {"id": self.evse_id}
            if self.connector_id is not None:
                evse["connectorId"] = self.connector_id
            component["evse"] = evse
        return component

    def variable(self) -> Payload:
        variable: Payload = {"name": self.row.variable}
        if self.row.variable_instance is not None:
            variable["instance"] = self.row.variable_instance
        return variable


@dataclass(frozen=True, slots=True)
class Reading:
    """A variable's Actual attribute as read: None value with ``present`` = known to
    exist but its value is unavailable (write-only, or unreadable charger value)."""

    present: bool
    value: str | None = None
    mutability: Mutability = Mutability.READ_ONLY
    max_limit: float | None = None
    problem: str | None = None  # why the value is unavailable


_ABSENT: Final = Reading(present=False)


# --- the station's variables -----------------------------------------------------------


def station_variables(model: DeviceModel, facts: DeviceFacts) -> list[Variable]:
    """Every variable of the station, in report order: component by component (in the
    table's order of first appearance), each instance by EVSE and connector."""
    evses: dict[int, int] = {}  # evseId -> its first 1.6 connector
    for legacy, evse_id, _ in facts.connectors:
        evses.setdefault(evse_id, legacy)
    placed: list[tuple[tuple[int, int, int, int], Variable]] = []
    first_seen: dict[tuple[str, str | None], int] = {}
    for index, row in enumerate(model.variables):
        order = first_seen.setdefault((row.component, row.component_instance), index)
        if row.tier is Tier.STATION:
            placed.append(((order, 0, 0, index), Variable(row, legacy_connector=0)))
        elif row.tier is Tier.EVSE:
            for evse_id, legacy in evses.items():
                placed.append(((order, evse_id, 0, index), Variable(row, evse_id, None, legacy)))
        else:
            for legacy, evse_id, connector_id in facts.connectors:
                variable = Variable(row, evse_id, connector_id, legacy)
                placed.append(((order, evse_id, connector_id, index), variable))
    placed.sort(key=lambda item: item[0])
    return [variable for _, variable in placed]


def vendor_variable(model: DeviceModel, key: str) -> Variable:
    """A 1.6 key no row maps, under the vendor component: nothing the charger has is
    hidden (reference §6). Its mutability is the charger's readonly flag."""
    row = VariableMapping(
        component=model.vendor_component,
        variable=key,
        data_type=DataType.STRING,
        mutability=Mutability.READ_WRITE,
        key=key,
        profile="Vendor",
    )
    return Variable(row)


def reported_keys(model: DeviceModel, facts: DeviceFacts) -> frozenset[str]:
    """The 1.6 keys (casefolded) a row reports on this station, so not vendor keys.
    "MeterPublicKey{connector}" covers only the station's connectors: MeterPublicKey9
    of a two-connector charger stays visible, under the vendor component."""
    return frozenset(v.key.casefold() for v in station_variables(model, facts) if v.key is not None)


def find_variable(
    model: DeviceModel, facts: DeviceFacts, component: Payload, variable: Payload
) -> Variable | str:
    """The station's variable a 2.0.1 ComponentType/VariableType names, or the
    attributeStatus saying why there is none (UnknownComponent, UnknownVariable)."""
    if component["name"] == model.vendor_component:
        key = variable["name"]
        if "instance" in component or "evse" in component or "instance" in variable:
            return "UnknownVariable"
        if key.casefold() in reported_keys(model, facts):
            return "UnknownVariable"  # reported under its 2.0.1 name, not as a vendor key
        return vendor_variable(model, key)
    evse = component.get("evse")
    address = (
        component.get("instance"),
        None if evse is None else evse["id"],
        None if evse is None else evse.get("connectorId"),
    )
    candidates = [
        v
        for v in station_variables(model, facts)
        if v.row.component == component["name"]
        and (v.row.component_instance, v.evse_id, v.connector_id) == address
    ]
    if not candidates:
        return "UnknownComponent"
    wanted = (variable["name"], variable.get("instance"))
    for candidate in candidates:
        if (candidate.row.variable, candidate.row.variable_instance) == wanted:
            return candidate
    return "UnknownVariable"


# --- reading values ----------------------------------------------------------------------


def read_variable(variable: Variable, configuration: Configuration, facts: DeviceFacts) -> Reading:
    """A variable's Actual value from the charger's configuration or the facts."""
    row = variable.row
    if row.fixed is not None:
        return Reading(True, row.fixed)
    if row.gateway is not None:
        value = facts.gateway.get(row.gateway)
        return _ABSENT if value is None else Reading(True, value)
    if row.key is None:
        value = _station_fact(row.station or "", variable, facts)
        return _ABSENT if value is None else Reading(True, value)
    key = variable.key or ""
    entry = configuration.get(key.casefold())
    if entry is None:
        if row.fallback is not None:
            return Reading(True, row.fallback)
        return _ABSENT
    mutability = row.mutability
    if entry.readonly and mutability is Mutability.READ_WRITE:
        mutability = Mutability.READ_ONLY  # the charger's own flag wins (§3.2)
    if row.convert is Convert.MAX_LIMIT:
        actual = None if row.station is None else _station_fact(row.station, variable, facts)
        problem = None if actual is not None else "the 1.6 charger does not report it"
        return Reading(True, actual, mutability, max_limit_from_v16(row, entry.value), problem)
    if row.convert is Convert.HEX_PASSWORD:
        return Reading(True, None, mutability, row.max_limit, "write-only (2.0.1 B06.FR.09)")
    if entry.value is None:
        return Reading(True, "", mutability, row.max_limit)  # a key without a value: B06.FR.13
    value = value_from_v16(row, entry.value, variable.legacy_connector)
    if value is None and row.convert is Convert.PHASE_ROTATION:
        return _ABSENT  # no entry for this connector
    problem = None
    if value is None:
        problem = f"the charger reports {entry.value!r}, not a {row.data_type} value"
    return Reading(True, value, mutability, row.max_limit, problem)


def _station_fact(name: str, variable: Variable, facts: DeviceFacts) -> str | None:
    connectors = _connectors_of(variable, facts)
    match name:
        case "available":
            return "true"
        case "availability_state":
            statuses = [facts.connector_statuses.get(c) for c in connectors]
            known = [CONNECTOR_STATUS[s] for s in statuses if s in CONNECTOR_STATUS]
            return known[0] if len(known) == len(connectors) and known else None
        case "problem":
            return "true" if any(c in facts.connector_errors for c in connectors) else "false"
        case "vendor_name":
            return _text(facts.boot.get("chargePointVendor"))
        case "model":
            return _text(facts.boot.get("chargePointModel"))
        case "serial_number":
            boot = facts.boot
            return _text(boot.get("chargePointSerialNumber", boot.get("chargeBoxSerialNumber")))
        case "supply_phases":
            phases = facts.station.supply_phases
            return None if phases is None else str(phases)
        case "connector_type":
            return facts.station.connector_type
        case "charging_profiles_installed":
            return str(facts.charging_profiles_installed)
    return None


def _connectors_of(variable: Variable, facts: DeviceFacts) -> list[int]:
    """The 1.6 connectors whose state a component reflects: 0 for the station, the
    EVSE's connectors, or the connector itself."""
    if variable.evse_id is None:
        return [0]
    if variable.connector_id is None:
        return [legacy for legacy, evse, _ in facts.connectors if evse == variable.evse_id]
    return [variable.legacy_connector or 0]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


# --- GetVariables (B06) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetVariablesPlan:
    """Each requested item resolved, and the 1.6 keys to read with one GetConfiguration."""

    items: tuple[tuple[Payload, Variable | str], ...]
    keys: tuple[str, ...]


def get_variables_plan(
    request: Payload, model: DeviceModel, facts: DeviceFacts
) -> GetVariablesPlan:
    items: list[tuple[Payload, Variable | str]] = []
    keys: dict[str, str] = {}
    for item in request["getVariableData"]:
        found = find_variable(model, facts, item["component"], item["variable"])
        if isinstance(found, Variable) and item.get("attributeType", ACTUAL) != ACTUAL:
            found = "NotSupportedAttributeType"  # 1.6 keys have an actual value only
        if isinstance(found, Variable) and found.key is not None:
            keys.setdefault(found.key.casefold(), found.key)
        items.append((item, found))
    return GetVariablesPlan(tuple(items), tuple(keys.values()))


def get_variables_response(
    plan: GetVariablesPlan, configuration: Configuration, facts: DeviceFacts
) -> Payload:
    """One GetVariableResult per requested item, in request order (B06.FR.01)."""
    results = []
    for item, found in plan.items:
        result: Payload = {"component": item["component"], "variable": item["variable"]}
        if "attributeType" in item:
            result["attributeType"] = item["attributeType"]
        if isinstance(found, str):
            result["attributeStatus"] = found
        else:
            reading = read_variable(found, configuration, facts)
            _get_result(result, found, reading)
        results.append(result)
    return {"getVariableResult": results}


def _get_result(result: Payload, variable: Variable, reading: Reading) -> None:
    if not reading.present:
        result["attributeStatus"] = "UnknownVariable"  # the charger lacks the key (B06.FR.07)
    elif variable.row.mutability is Mutability.WRITE_ONLY:
        result["attributeStatus"] = "Rejected"  # B06.FR.09
        result["attributeStatusInfo"] = _info("WriteOnly", "the value is write-only")
    elif reading.value is None:
        result["attributeStatus"] = "Rejected"
        # 2.0.1 reason code list; the ocpp package's "MissingDeviceModelInfo" is 22
        # characters and breaks the schema's 20-character reasonCode.
        result["attributeStatusInfo"] = _info("MissingDevModelInfo", reading.problem or "")
    else:
        result["attributeStatus"] = "Accepted"
        result["attributeValue"] = reading.value


def _info(reason_code: str, text: str) -> Payload:
    return status_info(reason_code, text) if text else {"reasonCode": reason_code}


# --- SetVariables (B05) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeStep:
    """The ChangeConfiguration one SetVariables item becomes."""

    variable: Variable
    key: str
    value: str


def set_variable_step(
    item: Payload, model: DeviceModel, facts: DeviceFacts
) -> ChangeStep | Payload:
    """The ChangeConfiguration for one setVariableData item, or its result when the
    gateway answers it itself (unknown, read-only, or a value the variable refuses:
    the charger never sees an invalid value)."""
    found = find_variable(model, facts, item["component"], item["variable"])
    if isinstance(found, str):
        return _set_result(item, found)
    if item.get("attributeType", ACTUAL) != ACTUAL:
        return _set_result(item, "NotSupportedAttributeType")
    row = found.row
    if row.key is None or not row.writable:
        return _set_result(item, "Rejected", _info("ReadOnly", "the variable is read-only"))
    try:
        value = value_to_v16(row, item["attributeValue"])
    except InvalidValue as exc:
        return _set_result(item, "Rejected", _info(exc.reason_code, exc.info))
    return ChangeStep(found, found.key or row.key, value)


# 1.6 ChangeConfiguration.conf status -> 2.0.1 SetVariableStatusEnumType (§2.18)
SET_VARIABLE_STATUS: Final = {
    "Accepted": "Accepted",
    "Rejected": "Rejected",
    "RebootRequired": "RebootRequired",
    "NotSupported": "UnknownVariable",
}


def set_variable_result(item: Payload, step: ChangeStep, status: str) -> Payload:
    """The SetVariableResult for the charger's ChangeConfiguration answer. A row marked
    ``reboot`` reports RebootRequired even when the charger says Accepted."""
    mapped = SET_VARIABLE_STATUS[status]
    if mapped == "Accepted" and step.variable.row.reboot:
        mapped = "RebootRequired"
    return _set_result(item, mapped)


def set_variable_failed(item: Payload, reason: str) -> Payload:
    """The item's result when the charger did not answer its ChangeConfiguration."""
    return _set_result(item, "Rejected", _info("InternalError", reason))


def _set_result(item: Payload, status: str, info: Payload | None = None) -> Payload:
    result: Payload = {
        "attributeStatus": status,
        "component": item["component"],
        "variable": item["variable"],
    }
    if "attributeType" in item:
        result["attributeType"] = item["attributeType"]
    if info is not None:
        result["attributeStatusInfo"] = info
    return result
