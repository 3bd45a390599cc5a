"""The 2.0.1 device model over a 1.6 charger's configuration keys, end to end.

A 2.0.1 CSMS sim reads and changes a 1.6 charger sim's configuration through the real
gateway with GetVariables, SetVariables, GetBaseReport and GetReport. The charger sim
has a realistic configuration (``gateway.sim.configuration``); both peers validate
every payload against the official schemas.
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.cli import main
from gateway.mappings import default_mappings_dir
from gateway.sim.charger import ChargerSim
from gateway.sim.configuration import ChargerConfiguration, ConfigKey, standard_configuration
from gateway.sim.csms import CsmsSim
from tests.integration.helpers import charger_url_of, metric

pytestmark = pytest.mark.integration

Item = dict[str, Any]


def item(component: str, variable: str, **extra: Any) -> Item:
    """A GetVariableData / SetVariableData entry."""
    entry: Item = {"component": {"name": component}, "variable": {"name": variable}}
    for name, value in extra.items():
        if name == "evse":
            entry["component"]["evse"] = value
        elif name == "variable_instance":
            entry["variable"]["instance"] = value
        else:
            entry[name] = value
    return entry


@pytest.fixture
def configuration() -> ChargerConfiguration:
    return standard_configuration(connectors=2)


@pytest.fixture
async def station(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim, configuration: ChargerConfiguration
) -> ChargerSim:
    """A booted 1.6 charger with two connectors, both Available, and real configuration."""
    charger = make_charger("CP-1", handlers=configuration.handlers())
    await charger.connect()
    assert (await charger.boot(vendor="ACME", model="Wallbox"))["status"] == "Accepted"
    await charger.status(1, "Available")
    await charger.status(2, "Available")
    await csms.wait_for("StatusNotification", count=2)
    return charger


def get_configuration_calls(charger: ChargerSim) -> list[dict[str, Any]]:
    return charger.calls_of("GetConfiguration")


# --- GetVariables --------------------------------------------------------------------------


@pytest.mark.covers("GetVariables")
async def test_get_variables_reads_mapped_keys_with_one_get_configuration(
    station: ChargerSim, csms: CsmsSim, configuration: ChargerConfiguration
) -> None:
    configuration.set_value("HeartbeatInterval", "240")
    answer = await csms.call(
        "CP-1",
        "GetVariables",
        {
            "getVariableData": [
                item("OCPPCommCtrlr", "HeartbeatInterval"),
                item("TxCtrlr", "StopTxOnInvalidId"),  # the charger says "True"
                item("SampledDataCtrlr", "TxUpdatedMeasurands"),
                item("SmartChargingCtrlr", "RateUnit"),  # 1.6 "Current,Power"
                item("ReservationCtrlr", "Available"),  # from SupportedFeatureProfiles
                item("FiscalMetering", "PublicKey", evse={"id": 2}),  # MeterPublicKey2
            ]
        },
    )
    results = answer["getVariableResult"]
    assert [r["attributeStatus"] for r in results] == ["Accepted"] * 6
    assert [r["attributeValue"] for r in results[:5]] == [
        "240",
        "true",
        "Energy.Active.Import.Register,Voltage",  # phase suffix and Temperature gone
        "A,W",
        "true",
    ]
    assert results[5]["attributeValue"] == configuration.value("MeterPublicKey2")
    assert results[5]["component"] == {"name": "FiscalMetering", "evse": {"id": 2}}
    calls = get_configuration_calls(station)
    assert len(calls) == 1
    assert sorted(calls[0]["key"]) == sorted(
        [
            "HeartbeatInterval",
            "StopTransactionOnInvalidId",
            "MeterValuesSampledData",
            "ChargingScheduleAllowedChargingRateUnit",
            "SupportedFeatureProfiles",
            "MeterPublicKey2",
        ]
    )


@pytest.mark.covers("GetVariables")
async def test_get_variables_unknown_component_variable_and_attribute_type(
    station: ChargerSim, csms: CsmsSim
) -> None:
    answer = await csms.call(
        "CP-1",
        "GetVariables",
        {
            "getVariableData": [
                item("NoSuchCtrlr", "Enabled"),
                item("OCPPCommCtrlr", "NoSuchVariable"),
                item("OCPPCommCtrlr", "HeartbeatInterval", attributeType="Target"),
                item("EVSE", "AvailabilityState", evse={"id": 9}),  # no such EVSE
                item("SecurityCtrlr", "BasicAuthPassword"),  # write-only: B06.FR.09
            ]
        },
    )
    results = answer["getVariableResult"]
    assert [r["attributeStatus"] for r in results] == [
        "UnknownComponent",
        "UnknownVariable",
        "NotSupportedAttributeType",
        "UnknownComponent",
        "Rejected",
    ]
    assert results[2]["attributeType"] == "Target"
    assert results[4]["attributeStatusInfo"]["reasonCode"] == "WriteOnly"
    assert all("attributeValue" not in r for r in results)


@pytest.mark.covers("GetVariables")
async def test_gateway_variables_are_answered_without_asking_the_charger(
    station: ChargerSim, csms: CsmsSim
) -> None:
    answer = await csms.call(
        "CP-1",
        "GetVariables",
        {
            "getVariableData": [
                item("TxCtrlr", "TxStartPoint"),
                item("TxCtrlr", "TxStopPoint"),
                item("OCPPCommCtrlr", "MessageTimeout", variable_instance="Default"),
                item("EVSE", "AvailabilityState", evse={"id": 1}),
                item("ChargingStation", "VendorName"),
            ]
        },
    )
    values = [r.get("attributeValue") for r in answer["getVariableResult"]]
    # 2.0.1 Table 95, "an OCPP 1.6 compatible transaction" (reference §4.1)
    assert values == ["PowerPathClosed", "EVConnected,Authorized", "5", "Available", "ACME"]
    assert get_configuration_calls(station) == []


@pytest.mark.covers("GetVariables")
async def test_a_key_the_charger_lacks_is_unknown_and_vendor_keys_are_reachable(
    station: ChargerSim, csms: CsmsSim, configuration: ChargerConfiguration
) -> None:
    configuration.remove("MinimumStatusDuration")
    answer = await csms.call(
        "CP-1",
        "GetVariables",
        {
            "getVariableData": [
                item("OCPPCommCtrlr", "MinimumStatusDuration"),
                item("OCPP16Config", "LedBrightness"),  # a proprietary key
                item("OCPP16Config", "HeartbeatInterval"),  # mapped: not a vendor key
            ]
        },
    )
    results = answer["getVariableResult"]
    assert [r["attributeStatus"] for r in results] == [
        "UnknownVariable",
        "Accepted",
        "UnknownVariable",
    ]
    assert results[1]["attributeValue"] == "80"


# --- SetVariables --------------------------------------------------------------------------


@pytest.mark.covers("SetVariables")
async def test_set_variables_one_change_configuration_per_item_with_statuses_mapped(
    station: ChargerSim, csms: CsmsSim, configuration: ChargerConfiguration
) -> None:
    answer = await csms.call(
        "CP-1",
        "SetVariables",
        {
            "setVariableData": [
                item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="120"),
                item("AuthCtrlr", "AuthorizeRemoteStart", attributeValue="false"),  # readonly here
                item("OCPPCommCtrlr", "WebSocketPingInterval", attributeValue="30"),
                item("SampledDataCtrlr", "TxUpdatedMeasurands", attributeValue="Voltage,SoC"),
                item("SecurityCtrlr", "BasicAuthPassword", attributeValue="s3cret-passw0rd-42"),
                item("OCPP16Config", "LedBrightness", attributeValue="40"),
                item("OCPP16Config", "NoSuchKey", attributeValue="1"),
            ]
        },
    )
    statuses = [r["attributeStatus"] for r in answer["setVariableResult"]]
    assert statuses == [
        "Accepted",
        "Rejected",
        "RebootRequired",
        "Accepted",
        "Accepted",
        "Accepted",
        "UnknownVariable",  # 1.6 NotSupported
    ]
    assert configuration.changes == [
        ("HeartbeatInterval", "120"),
        ("WebSocketPingInterval", "30"),
        ("MeterValuesSampledData", "Voltage,SoC"),
        ("AuthorizationKey", b"s3cret-passw0rd-42".hex()),  # 1.6 carries it as hex
        ("LedBrightness", "40"),
    ]
    assert len(station.calls_of("ChangeConfiguration")) == 7


@pytest.mark.covers("SetVariables")
async def test_invalid_values_are_refused_by_the_gateway_before_the_charger_sees_them(
    station: ChargerSim, csms: CsmsSim, configuration: ChargerConfiguration, gateway: Gateway
) -> None:
    answer = await csms.call(
        "CP-1",
        "SetVariables",
        {
            "setVariableData": [
                item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="often"),
                item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="0"),  # minLimit 1
                item("TxCtrlr", "StopTxOnInvalidId", attributeValue="yes"),
                item("SampledDataCtrlr", "TxUpdatedMeasurands", attributeValue="Energy.Active.Net"),
                item("TxCtrlr", "TxStartPoint", attributeValue="EVConnected"),  # ReadOnly
                item("SmartChargingCtrlr", "RateUnit", attributeValue="A"),  # ReadOnly
                item(
                    "OCPPCommCtrlr",
                    "HeartbeatInterval",
                    attributeValue="60",
                    attributeType="MaxSet",
                ),
            ]
        },
    )
    results = answer["setVariableResult"]
    assert [r["attributeStatus"] for r in results] == [
        "Rejected",
        "Rejected",
        "Rejected",
        "Rejected",
        "Rejected",
        "Rejected",
        "NotSupportedAttributeType",
    ]
    reasons = [r.get("attributeStatusInfo", {}).get("reasonCode") for r in results]
    assert reasons == [
        "InvalidValue",
        "ValueTooLow",
        "InvalidValue",
        "InvalidValue",
        "ReadOnly",
        "ReadOnly",
        None,
    ]
    assert station.calls_of("ChangeConfiguration") == []
    assert configuration.changes == []
    counted = {
        reason: metric(
            gateway, "ocpp_gateway_variable_results_total", operation="SetVariables", status=reason
        )
        for reason in ("InvalidValue", "ValueTooLow", "ReadOnly", "NotSupportedAttributeType")
    }
    assert counted == {
        "InvalidValue": 3,
        "ValueTooLow": 1,
        "ReadOnly": 2,
        "NotSupportedAttributeType": 1,
    }


@pytest.mark.covers("SetVariables", "GetVariables")
async def test_set_then_get_reads_back_the_new_value(station: ChargerSim, csms: CsmsSim) -> None:
    data = [item("SmartChargingCtrlr", "Available"), item("OCPPCommCtrlr", "HeartbeatInterval")]
    await csms.call(
        "CP-1",
        "SetVariables",
        {"setVariableData": [item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="77")]},
    )
    answer = await csms.call("CP-1", "GetVariables", {"getVariableData": data})
    assert [r["attributeValue"] for r in answer["getVariableResult"]] == ["true", "77"]


# --- reports -------------------------------------------------------------------------------


def reports(csms: CsmsSim, request_id: int) -> list[dict[str, Any]]:
    return [
        m.payload
        for m in csms.received("NotifyReport", station_id="CP-1")
        if m.payload["requestId"] == request_id
    ]


async def wait_report(csms: CsmsSim, request_id: int) -> list[dict[str, Any]]:
    """Every NotifyReport of a request, once its last one (no tbc) arrived."""
    await csms.wait_for(
        "NotifyReport",
        station_id="CP-1",
        where=lambda p: p["requestId"] == request_id and not p.get("tbc", False),
    )
    return reports(csms, request_id)


def report_data(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [data for message in messages for data in message.get("reportData", [])]


def identity(data: dict[str, Any]) -> tuple[Any, ...]:
    component, variable = data["component"], data["variable"]
    evse = component.get("evse", {})
    return (
        component["name"],
        component.get("instance"),
        evse.get("id"),
        evse.get("connectorId"),
        variable["name"],
        variable.get("instance"),
    )


def by_name(entries: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {identity(data): data for data in entries}


@pytest.mark.covers("GetBaseReport")
async def test_full_inventory_is_complete_ordered_and_real(
    station: ChargerSim, csms: CsmsSim, configuration: ChargerConfiguration
) -> None:
    await station.status(2, "Charging")
    await csms.wait_for("StatusNotification", count=3)
    for n in range(40):  # proprietary keys: more variables than one NotifyReport holds
        configuration.add(f"AcmeSetting{n}", ConfigKey(str(n), readonly=n % 2 == 0))
    answer = await csms.call(
        "CP-1", "GetBaseReport", {"requestId": 7, "reportBase": "FullInventory"}
    )
    assert answer == {"status": "Accepted"}
    messages = await wait_report(csms, 7)

    # seqNo from 0 (B07.FR.10), tbc on all but the last, one report
    assert [m["seqNo"] for m in messages] == list(range(len(messages)))
    assert [m.get("tbc", False) for m in messages] == [True] * (len(messages) - 1) + [False]
    assert len(messages) > 1  # more variables than ItemsPerMessage[GetReport]
    entries = report_data(messages)
    identities = [identity(e) for e in entries]
    assert len(identities) == len(set(identities)), "a variable reported twice"
    table = by_name(entries)

    def actual(*key: Any) -> Any:
        return table[key]["variableAttribute"][0].get("value")

    # Every key the charger has appears somewhere: mapped, or under OCPP16Config.
    assert actual("OCPPCommCtrlr", None, None, None, "HeartbeatInterval", None) == "300"
    assert actual("OCPP16Config", None, None, None, "LedBrightness", None) == "80"
    assert actual("OCPP16Config", None, None, None, "BlinkRepeat", None) == "3"
    acme = [i for i in identities if i[4].startswith("AcmeSetting")]
    assert [i[4] for i in acme] == [f"AcmeSetting{n}" for n in range(40)]  # charger order
    readonly = table[("OCPP16Config", None, None, None, "AcmeSetting0", None)]
    assert readonly["variableAttribute"][0]["mutability"] == "ReadOnly"
    assert actual("TxCtrlr", None, None, None, "StopTxOnInvalidId", None) == "true"
    assert ("OCPP16Config", None, None, None, "HeartbeatInterval", None) not in table
    # Station components from the layout and the statuses seen (B07.FR.08)
    assert actual("ChargingStation", None, None, None, "VendorName", None) == "ACME"
    assert actual("EVSE", None, 1, None, "AvailabilityState", None) == "Available"
    assert actual("EVSE", None, 2, None, "AvailabilityState", None) == "Occupied"
    assert actual("Connector", None, 2, 1, "AvailabilityState", None) == "Occupied"
    assert actual("Connector", None, 1, 1, "PhaseRotation", None) == "RST"
    assert actual("Connector", None, 2, 1, "PhaseRotation", None) == "RTS"
    # Table 95 (reference §4.1), read-only and constant
    start = table[("TxCtrlr", None, None, None, "TxStartPoint", None)]
    assert start["variableAttribute"] == [
        {
            "type": "Actual",
            "value": "PowerPathClosed",
            "mutability": "ReadOnly",
            "persistent": False,
            "constant": True,
        }
    ]
    assert start["variableCharacteristics"]["dataType"] == "MemberList"
    assert "valuesList" in start["variableCharacteristics"]
    # The write-only password is reported without its value
    password = table[("SecurityCtrlr", None, None, None, "BasicAuthPassword", None)]
    assert password["variableAttribute"][0]["mutability"] == "WriteOnly"
    assert "value" not in password["variableAttribute"][0]
    # The charger's readonly flag narrows a ReadWrite row
    remote = table[("AuthCtrlr", None, None, None, "AuthorizeRemoteStart", None)]
    assert remote["variableAttribute"][0]["mutability"] == "ReadOnly"
    # maxLimit from the 1.6 *MaxLength key; Actual value tracked by the gateway
    profiles = table[("SmartChargingCtrlr", None, None, None, "Entries", "ChargingProfiles")]
    assert profiles["variableCharacteristics"]["maxLimit"] == 20
    assert all(e["variableCharacteristics"]["supportsMonitoring"] is False for e in entries)
    # Components come in order: ChargingStation, then EVSE 1 before EVSE 2
    names = [i[0] for i in identities]
    assert names.index("ChargingStation") < names.index("EVSE")
    evses = [i[2] for i in identities if i[0] == "EVSE"]
    assert evses == sorted(evses)


@pytest.mark.covers("GetBaseReport")
async def test_configuration_inventory_reports_only_what_an_operator_can_set(
    station: ChargerSim, csms: CsmsSim
) -> None:
    answer = await csms.call(
        "CP-1", "GetBaseReport", {"requestId": 8, "reportBase": "ConfigurationInventory"}
    )
    assert answer["status"] == "Accepted"
    entries = report_data(await wait_report(csms, 8))
    mutabilities = {e["variableAttribute"][0]["mutability"] for e in entries}
    assert mutabilities == {"ReadWrite", "WriteOnly"}  # B07.FR.07
    names = {identity(e)[4] for e in entries}
    assert {"HeartbeatInterval", "LedBrightness"} <= names
    assert "TxStartPoint" not in names


@pytest.mark.covers("GetBaseReport")
async def test_summary_inventory_reports_component_states(
    station: ChargerSim, csms: CsmsSim
) -> None:
    await station.status(1, "Faulted", error_code="GroundFailure")
    await csms.wait_for("StatusNotification", count=3)
    await csms.call("CP-1", "GetBaseReport", {"requestId": 9, "reportBase": "SummaryInventory"})
    table = by_name(report_data(await wait_report(csms, 9)))
    assert {key[4] for key in table} <= {"AvailabilityState", "Problem"}
    assert (
        table[("Connector", None, 1, 1, "Problem", None)]["variableAttribute"][0]["value"] == "true"
    )
    assert (
        table[("Connector", None, 2, 1, "Problem", None)]["variableAttribute"][0]["value"]
        == "false"
    )
    assert (
        table[("EVSE", None, 1, None, "AvailabilityState", None)]["variableAttribute"][0]["value"]
        == "Faulted"
    )


@pytest.mark.covers("GetReport")
async def test_get_report_filters_by_component_variable_and_criteria(
    station: ChargerSim, csms: CsmsSim
) -> None:
    answer = await csms.call(
        "CP-1",
        "GetReport",
        {
            "requestId": 11,
            "componentVariable": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
                {"component": {"name": "Connector", "evse": {"id": 2, "connectorId": 1}}},
            ],
        },
    )
    assert answer["status"] == "Accepted"
    entries = report_data(await wait_report(csms, 11))
    assert identity(entries[0]) == ("OCPPCommCtrlr", None, None, None, "HeartbeatInterval", None)
    assert {identity(e)[:4] for e in entries[1:]} == {("Connector", None, 2, 1)}
    assert len(entries) > 2

    await station.status(2, "Faulted", error_code="HighTemperature")
    await csms.wait_for("StatusNotification", count=3)
    answer = await csms.call(
        "CP-1", "GetReport", {"requestId": 12, "componentCriteria": ["Problem"]}
    )
    assert answer["status"] == "Accepted"
    components = {identity(e)[:4] for e in report_data(await wait_report(csms, 12))}
    assert components == {("EVSE", None, 2, None), ("Connector", None, 2, 1)}


@pytest.mark.covers("GetReport")
async def test_get_report_with_nothing_matching_is_an_empty_result_set(
    station: ChargerSim, csms: CsmsSim
) -> None:
    answer = await csms.call(
        "CP-1",
        "GetReport",
        {"requestId": 13, "componentVariable": [{"component": {"name": "NoSuchCtrlr"}}]},
    )
    assert answer == {"status": "EmptyResultSet"}  # B08.FR.15
    # A later call is a barrier: a NotifyReport would have been sent before its answer.
    await csms.call("CP-1", "GetVariables", {"getVariableData": [item("TxCtrlr", "TxStartPoint")]})
    assert reports(csms, 13) == []


# --- vendor override files -----------------------------------------------------------------

ACME_OVERRIDE = """
vendor = "ACME"
model = "Wallbox"

[station]
supply_phases = 3
connector_type = "cType2"

[[variable]]
component = "ChargingStatusIndicator"
variable = "Percent"
standard = false
type = "integer"
unit = "Percent"
min = 0
max = 100
mutability = "ReadWrite"
key = "LedBrightness"
profile = "Vendor"
ref = "ACME Wallbox manual"

[[variable]]
component = "OCPPCommCtrlr"
variable = "HeartbeatInterval"
type = "integer"
unit = "s"
min = 1
mutability = "ReadWrite"
reboot = true
key = "HeartbeatInterval"
profile = "Core"
"""


@pytest.mark.covers("GetVariables", "SetVariables")
async def test_a_vendor_override_file_takes_effect_after_check_config_passes(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
    configuration: ChargerConfiguration,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(default_mappings_dir(), mappings, ignore=shutil.ignore_patterns("__*"))
    (mappings / "vendors" / "acme.toml").write_text(ACME_OVERRIDE)
    assert main(["check-config", "--mappings", str(mappings), "--upstream", csms.url]) == 0
    assert "vendor" in capsys.readouterr().out

    gateway = await make_gateway(mappings=str(mappings))
    charger = chargers(charger_url_of(gateway), "CP-1", handlers=configuration.handlers())
    await charger.connect()
    await charger.boot(vendor="ACME", model="Wallbox")
    await charger.status(1, "Available")
    await csms.wait_for("StatusNotification")
    answer = await csms.call(
        "CP-1",
        "GetVariables",
        {
            "getVariableData": [
                item("ChargingStatusIndicator", "Percent"),
                item("OCPP16Config", "LedBrightness"),  # now mapped: no longer a vendor key
                item("Connector", "ConnectorType", evse={"id": 1, "connectorId": 1}),
                item("EVSE", "SupplyPhases", evse={"id": 1}),
            ]
        },
    )
    results = answer["getVariableResult"]
    assert [r["attributeStatus"] for r in results] == [
        "Accepted",
        "UnknownVariable",
        "Accepted",
        "Accepted",
    ]
    assert [r.get("attributeValue") for r in results] == ["80", None, "cType2", "3"]
    answer = await csms.call(
        "CP-1",
        "SetVariables",
        {"setVariableData": [item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="90")]},
    )
    # The charger says Accepted; the vendor file knows the change needs a reboot.
    assert answer["setVariableResult"][0]["attributeStatus"] == "RebootRequired"


def test_check_config_names_the_file_and_entry_of_a_broken_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(default_mappings_dir(), mappings, ignore=shutil.ignore_patterns("__*"))
    broken = ACME_OVERRIDE.replace(
        'variable = "HeartbeatInterval"', 'variable = "HeartBeatInterval"'
    )
    (mappings / "vendors" / "acme.toml").write_text(broken)
    assert (
        main(["check-config", "--mappings", str(mappings), "--upstream", "ws://127.0.0.1:1"]) == 2
    )
    error = capsys.readouterr().err
    assert "acme.toml" in error
    assert "variable[1] (OCPPCommCtrlr.HeartBeatInterval)" in error
    assert "not a standardized variable" in error
