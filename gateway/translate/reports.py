"""GetBaseReport and GetReport: the station's variables as NotifyReport payloads.

Layer: translate (sans-I/O). Facts: 2.0.1 B07, B08; reference messages.md §6 (the
GetBaseReport and GetReport rows). The variables and their values come from
``translate.device_model``, so a report and a GetVariables cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from gateway.ocppj import Payload
from gateway.translate.device_model import (
    ACTUAL,
    Configuration,
    DeviceFacts,
    Reading,
    Variable,
    read_variable,
    reported_keys,
    station_variables,
    vendor_variable,
)
from gateway.translate.variables import DeviceModel, Mutability

# B07: what a SummaryInventory reports: the state of the station's components.
SUMMARY_VARIABLES: Final = frozenset({"AvailabilityState", "Problem", "Tripped", "Overload"})


@dataclass(frozen=True, slots=True)
class ReportEntry:
    variable: Variable
    reading: Reading

    def report_data(self) -> Payload:
        """The 2.0.1 ReportDataType for this variable."""
        row, reading = self.variable.row, self.reading
        attribute: Payload = {"type": ACTUAL}
        if reading.value is not None and reading.mutability is not Mutability.WRITE_ONLY:
            attribute["value"] = reading.value
        attribute["mutability"] = reading.mutability.value
        attribute["persistent"] = row.key is not None  # 1.6 keys survive a reboot
        attribute["constant"] = row.fixed is not None
        characteristics: Payload = {"dataType": row.data_type.value}
        if row.unit is not None:
            characteristics["unit"] = row.unit
        if row.min_limit is not None:
            characteristics["minLimit"] = _json_number(row.min_limit)
        if reading.max_limit is not None:
            characteristics["maxLimit"] = _json_number(reading.max_limit)
        if row.values:
            characteristics["valuesList"] = ",".join(row.values)
        characteristics["supportsMonitoring"] = False  # 1.6 has no monitoring
        return {
            "component": self.variable.component(),
            "variable": self.variable.variable(),
            "variableAttribute": [attribute],
            "variableCharacteristics": characteristics,
        }


def _json_number(number: float) -> int | float:
    return int(number) if number.is_integer() else number


def report_entries(
    model: DeviceModel, facts: DeviceFacts, configuration: Configuration
) -> list[ReportEntry]:
    """Every variable the station has, with its value: mapped rows first, then the 1.6
    keys no row maps under the vendor component, in the charger's order."""
    entries = []
    for variable in station_variables(model, facts):
        reading = read_variable(variable, configuration, facts)
        # A value may be omitted only for WriteOnly (2.0.1 VariableAttributeType): one
        # the gateway cannot know (an unreadable charger value, an Actual the 1.6
        # charger does not report) leaves the variable out rather than invent one.
        known = reading.value is not None or reading.mutability is Mutability.WRITE_ONLY
        if reading.present and known:
            entries.append(ReportEntry(variable, reading))
    reported = reported_keys(model, facts)
    for entry in configuration.values():
        if entry.key.casefold() not in reported:
            mutability = Mutability.READ_ONLY if entry.readonly else Mutability.READ_WRITE
            reading = Reading(True, entry.value, mutability)
            entries.append(ReportEntry(vendor_variable(model, entry.key), reading))
    return entries


def select_base_report(entries: Iterable[ReportEntry], report_base: str) -> list[ReportEntry]:
    """B07: ConfigurationInventory = what an operator can set (B07.FR.07); FullInventory
    = everything (B07.FR.08); SummaryInventory = the components' state variables."""
    if report_base == "ConfigurationInventory":
        return [e for e in entries if e.reading.mutability is not Mutability.READ_ONLY]
    if report_base == "SummaryInventory":
        return [e for e in entries if e.variable.row.variable in SUMMARY_VARIABLES]
    return list(entries)


def select_report(entries: Sequence[ReportEntry], request: Payload) -> list[ReportEntry]:
    """B08: the entries matching every given filter: a componentVariable entry, and a
    componentCriteria (a component is Active/Available/Enabled/Problem when it has that
    variable with the value true)."""
    selected = list(entries)
    wanted = request.get("componentVariable")
    if wanted:
        selected = [e for e in selected if any(_matches(e.variable, w) for w in wanted)]
    criteria = request.get("componentCriteria")
    if criteria:
        flagged = {
            _component_identity(e.variable)
            for e in entries
            if e.variable.row.variable in criteria
            and e.variable.row.variable_instance is None
            and e.reading.value == "true"
        }
        selected = [e for e in selected if _component_identity(e.variable) in flagged]
    return selected


def _component_identity(variable: Variable) -> tuple[str, str | None, int | None, int | None]:
    row = variable.row
    return (row.component, row.component_instance, variable.evse_id, variable.connector_id)


def _matches(variable: Variable, wanted: Payload) -> bool:
    component, row = wanted["component"], variable.row
    if component["name"] != row.component:
        return False
    if "instance" in component and component["instance"] != row.component_instance:
        return False
    evse = component.get("evse")
    if evse is not None:
        if variable.evse_id != evse["id"]:
            return False
        if "connectorId" in evse and variable.connector_id != evse["connectorId"]:
            return False
    wanted_variable = wanted.get("variable")
    if wanted_variable is None:
        return True
    if wanted_variable["name"] != row.variable:
        return False
    return "instance" not in wanted_variable or wanted_variable["instance"] == row.variable_instance


def notify_reports(
    request_id: int, entries: Sequence[ReportEntry], generated_at: str, per_message: int
) -> list[Payload]:
    """NotifyReportRequest payloads: the same requestId (B07.FR.04), seqNo from 0
    (B07.FR.10), ``tbc`` on all but the last. An empty report is one message without
    reportData, so the CSMS still learns it is complete."""
    chunks = [entries[i : i + per_message] for i in range(0, len(entries), per_message)]
    messages = []
    for seq_no, chunk in enumerate(chunks or [()]):
        message: Payload = {"requestId": request_id, "generatedAt": generated_at}
        if seq_no < len(chunks) - 1:
            message["tbc"] = True
        message["seqNo"] = seq_no
        if chunk:
            message["reportData"] = [entry.report_data() for entry in chunk]
        messages.append(message)
    return messages
