"""Tests for gateway.translate.device_model: GetVariables, SetVariables and reports over
1.6 configuration keys (pure functions, no network).

Facts: reference messages.md §2.18 (status table), config-keys.csv (which keys have no
2.0.1 counterpart and go under the vendor component), 2.0.1 B05-B08. The charger is the
simulator's ``standard_configuration(connectors=2)``, read the way the session reads it
(GetConfiguration.conf -> ``configuration_from``). Every payload the functions build for
the CSMS is validated against the official 2.0.1 schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pytest

from gateway.mappings import load_tables
from gateway.ocppj import Payload, Version
from gateway.schemas import Kind, validate
from gateway.sim.configuration import ChargerConfiguration, meter_public_key, standard_configuration
from gateway.translate import device_model as dm
from gateway.translate import reports
from gateway.translate.variables import (
    DataType,
    DeviceModel,
    Mutability,
    StationFacts,
    Tier,
    VariableMapping,
)

TABLES = load_tables()
MODEL = TABLES.device_model
EXAMPLE_MODEL = TABLES.device_model_for("ExampleVendor", "Example Model")
GENERATED_AT = "2024-05-01T12:00:00.000Z"

GATEWAY_FACTS = {
    "message_timeout": "30",
    "date_time": GENERATED_AT,
    "bytes_per_message": "1048576",
    "items_per_message_get_report": "100",
    "items_per_message_set_variables": "100",
}
BOOT = {
    "chargePointVendor": "SimVendor",
    "chargePointModel": "Sim 22",
    "chargePointSerialNumber": "SN-0001",
}
# Two 1.6 connectors, each its own EVSE (the default layout, reference §1.1).
TWO_EVSES = ((1, 1, 1), (2, 2, 1))

# The standard charger's keys no row maps: 2.0.1 has no counterpart (config-keys.csv),
# or they are the vendor's own. Reported under OCPP16Config in the charger's order.
UNMAPPED_KEYS = [
    "BlinkRepeat",
    "ConnectorPhaseRotationMaxLength",
    "LightIntensity",
    "MeterValuesAlignedDataMaxLength",
    "MeterValuesSampledDataMaxLength",
    "NumberOfConnectors",
    "StopTransactionMaxMeterValues",
    "StopTxnAlignedDataMaxLength",
    "StopTxnSampledDataMaxLength",
    "SupportedFeatureProfilesMaxLength",
    "LedBrightness",
    "VendorSerialPrefix",
]


def _facts(
    connectors: tuple[tuple[int, int, int], ...] = TWO_EVSES,
    *,
    statuses: Mapping[int, str] | None = None,
    errors: Mapping[int, str] | None = None,
    station: StationFacts | None = None,
    profiles: int = 0,
) -> dm.DeviceFacts:
    return dm.DeviceFacts(
        connectors=connectors,
        boot=dict(BOOT),
        connector_statuses=dict(
            statuses if statuses is not None else {0: "Available", 1: "Available", 2: "Charging"}
        ),
        connector_errors=dict(errors or {}),
        charging_profiles_installed=profiles,
        gateway=dict(GATEWAY_FACTS),
        station=station or StationFacts(),
    )


FACTS = _facts()


def _configuration(charger: ChargerConfiguration | None = None) -> dict[str, dm.ConfigEntry]:
    """The charger's whole configuration, as GetConfiguration without keys reads it."""
    charger = charger or standard_configuration(connectors=2)
    answer = charger.get_configuration({})
    validate(Version.V16, "GetConfiguration", Kind.RESPONSE, answer)
    return dm.configuration_from(answer)


def _charger(**values: str | None) -> ChargerConfiguration:
    """The standard charger with some values changed (None: listed without a value)."""
    charger = standard_configuration(connectors=2)
    for key, value in values.items():
        charger.set_value(key, value)
    return charger


def _without(*keys: str) -> ChargerConfiguration:
    charger = standard_configuration(connectors=2)
    for key in keys:
        charger.remove(key)
    return charger


def _component(name: str, evse: int | None = None, connector: int | None = None) -> Payload:
    component: Payload = {"name": name}
    if evse is not None:
        component["evse"] = {"id": evse}
        if connector is not None:
            component["evse"]["connectorId"] = connector
    return component


def _variable(name: str, instance: str | None = None) -> Payload:
    return {"name": name} if instance is None else {"name": name, "instance": instance}


def _item(
    component: str,
    variable: str,
    *,
    evse: int | None = None,
    connector: int | None = None,
    instance: str | None = None,
    **extra: object,
) -> Payload:
    return {
        "component": _component(component, evse, connector),
        "variable": _variable(variable, instance),
        **extra,
    }


def _where(variables: Iterable[dm.Variable]) -> list[tuple[str, str, int | None, int | None]]:
    return [(v.row.component, v.row.variable, v.evse_id, v.connector_id) for v in variables]


def _tier_rows(model: DeviceModel, tier: Tier) -> list[VariableMapping]:
    return [row for row in model.variables if row.tier is tier]


# --- station_variables -----------------------------------------------------------------


def test_station_variables_place_every_row_on_each_instance() -> None:
    """Station rows once, EVSE rows once per EVSE, connector rows once per connector."""
    variables = dm.station_variables(MODEL, FACTS)
    expected = (
        len(_tier_rows(MODEL, Tier.STATION))
        + 2 * len(_tier_rows(MODEL, Tier.EVSE))
        + 2 * len(_tier_rows(MODEL, Tier.CONNECTOR))
    )
    assert len(variables) == expected == 97
    assert all(v.evse_id is None for v in variables if v.row.tier is Tier.STATION)
    assert all(v.legacy_connector == 0 for v in variables if v.row.tier is Tier.STATION)


def test_station_variables_keep_each_component_together_in_table_order() -> None:
    """Report order: component by component, in the table's order of first appearance,
    each component's variables in table order."""
    variables = dm.station_variables(MODEL, FACTS)
    blocks = [v.row.component for v in variables]
    contiguous = [name for i, name in enumerate(blocks) if i == 0 or blocks[i - 1] != name]
    first_seen = list(dict.fromkeys(row.component for row in MODEL.variables))
    assert contiguous == first_seen
    assert _where(variables[:4]) == [
        ("AuthCtrlr", "OfflineTxForUnknownIdEnabled", None, None),
        ("AuthCtrlr", "AuthorizeRemoteStart", None, None),
        ("AuthCtrlr", "LocalAuthorizeOffline", None, None),
        ("AuthCtrlr", "LocalPreAuthorize", None, None),
    ]


def test_station_variables_expand_evses_and_connectors_in_order() -> None:
    variables = dm.station_variables(MODEL, FACTS)
    evse = [(v.evse_id, v.row.variable) for v in variables if v.row.component == "EVSE"]
    assert evse == [
        (1, "Available"),
        (1, "AvailabilityState"),
        (1, "Problem"),
        (1, "SupplyPhases"),
        (2, "Available"),
        (2, "AvailabilityState"),
        (2, "Problem"),
        (2, "SupplyPhases"),
    ]
    connector = [
        (v.evse_id, v.connector_id, v.legacy_connector)
        for v in variables
        if v.row.component == "Connector" and v.row.variable == "PhaseRotation"
    ]
    assert connector == [(1, 1, 1), (2, 1, 2)]
    keys = [v.key for v in variables if v.row.component == "FiscalMetering"]
    assert keys == ["MeterPublicKey1", "MeterPublicKey2"]


def test_station_variables_follow_a_shared_evse_layout() -> None:
    """Two 1.6 connectors on EVSE 1, a third on EVSE 2: two EVSE components, three
    Connector components; an EVSE's keys are those of its first 1.6 connector."""
    variables = dm.station_variables(MODEL, _facts(((1, 1, 1), (2, 1, 2), (3, 2, 1))))
    evses = {v.evse_id for v in variables if v.row.component == "EVSE"}
    assert evses == {1, 2}
    connectors = [
        (v.evse_id, v.connector_id, v.legacy_connector)
        for v in variables
        if v.row.component == "Connector" and v.row.variable == "Available"
    ]
    assert connectors == [(1, 1, 1), (1, 2, 2), (2, 1, 3)]
    keys = [(v.evse_id, v.key) for v in variables if v.row.component == "FiscalMetering"]
    assert keys == [(1, "MeterPublicKey1"), (2, "MeterPublicKey3")]


def test_station_variables_order_evses_by_their_2_0_1_id() -> None:
    """With 1.6 connector 2 as EVSE 1, EVSE 1 comes first and reads MeterPublicKey2."""
    variables = dm.station_variables(MODEL, _facts(((1, 2, 1), (2, 1, 1))))
    keys = [(v.evse_id, v.key) for v in variables if v.row.component == "FiscalMetering"]
    assert keys == [(1, "MeterPublicKey2"), (2, "MeterPublicKey1")]


def test_a_station_without_known_connectors_has_station_variables_only() -> None:
    variables = dm.station_variables(MODEL, _facts(()))
    assert len(variables) == len(_tier_rows(MODEL, Tier.STATION))
    assert {v.row.component for v in variables}.isdisjoint({"EVSE", "Connector", "FiscalMetering"})


# --- find_variable -----------------------------------------------------------------------


def test_a_vendor_component_variable_is_the_1_6_key() -> None:
    found = dm.find_variable(MODEL, FACTS, _component("OCPP16Config"), _variable("LedBrightness"))
    assert isinstance(found, dm.Variable)
    assert found.key == "LedBrightness"
    assert found.component() == {"name": "OCPP16Config"}
    assert found.variable() == {"name": "LedBrightness"}


@pytest.mark.parametrize("key", ["HeartbeatInterval", "heartbeatINTERVAL", "MeterPublicKey2"])
def test_a_mapped_key_is_not_a_vendor_variable(key: str) -> None:
    """A key a row reports is found under its 2.0.1 name only (reference §6)."""
    found = dm.find_variable(MODEL, FACTS, _component("OCPP16Config"), _variable(key))
    assert found == "UnknownVariable"


def test_a_connector_key_beyond_the_station_s_connectors_is_a_vendor_variable() -> None:
    """MeterPublicKey17 of a two-connector station has no FiscalMetering component to
    appear on, so it stays reachable under the vendor component: nothing is hidden."""
    found = dm.find_variable(
        MODEL, FACTS, _component("OCPP16Config"), _variable("MeterPublicKey17")
    )
    assert isinstance(found, dm.Variable)
    assert found.key == "MeterPublicKey17"


def test_a_key_resembling_a_connector_key_is_a_vendor_variable() -> None:
    found = dm.find_variable(MODEL, FACTS, _component("OCPP16Config"), _variable("MeterPublicKeyA"))
    assert isinstance(found, dm.Variable)
    assert found.key == "MeterPublicKeyA"


@pytest.mark.parametrize(
    ("component", "variable"),
    [
        ({"name": "OCPP16Config", "instance": "1"}, _variable("LedBrightness")),
        ({"name": "OCPP16Config", "evse": {"id": 1}}, _variable("LedBrightness")),
        (_component("OCPP16Config"), _variable("LedBrightness", "1")),
    ],
)
def test_vendor_variables_have_no_instances(component: Payload, variable: Payload) -> None:
    assert dm.find_variable(MODEL, FACTS, component, variable) == "UnknownVariable"


@pytest.mark.parametrize(
    ("component", "variable", "outcome"),
    [
        (_component("OCPPCommController"), _variable("HeartbeatInterval"), "UnknownComponent"),
        (_component("OCPPCommCtrlr"), _variable("HeartBeatInterval"), "UnknownVariable"),
        (_component("DeviceDataCtrlr"), _variable("ItemsPerMessage"), "UnknownVariable"),
        (_component("DeviceDataCtrlr"), _variable("ItemsPerMessage", "Nope"), "UnknownVariable"),
        (_component("OCPPCommCtrlr", evse=1), _variable("HeartbeatInterval"), "UnknownComponent"),
        (
            {"name": "OCPPCommCtrlr", "instance": "Main"},
            _variable("HeartbeatInterval"),
            "UnknownComponent",
        ),
        (_component("EVSE"), _variable("Available"), "UnknownComponent"),
        (_component("EVSE", evse=3), _variable("Available"), "UnknownComponent"),
        (_component("EVSE", evse=0), _variable("Available"), "UnknownComponent"),
        (_component("Connector", evse=1), _variable("Available"), "UnknownComponent"),
        (_component("Connector", evse=1, connector=2), _variable("Available"), "UnknownComponent"),
        (_component("Connector", evse=3, connector=1), _variable("Available"), "UnknownComponent"),
    ],
)
def test_find_variable_says_why_there_is_none(
    component: Payload, variable: Payload, outcome: str
) -> None:
    assert dm.find_variable(MODEL, FACTS, component, variable) == outcome


def test_find_variable_finds_each_tier_instance() -> None:
    station = dm.find_variable(
        MODEL, FACTS, _component("DeviceDataCtrlr"), _variable("ItemsPerMessage", "GetReport")
    )
    assert isinstance(station, dm.Variable)
    assert station.row.gateway == "items_per_message_get_report"
    evse = dm.find_variable(MODEL, FACTS, _component("FiscalMetering", 2), _variable("PublicKey"))
    assert isinstance(evse, dm.Variable)
    assert (evse.evse_id, evse.connector_id, evse.key) == (2, None, "MeterPublicKey2")
    connector = dm.find_variable(
        MODEL, FACTS, _component("Connector", 2, 1), _variable("PhaseRotation")
    )
    assert isinstance(connector, dm.Variable)
    assert (connector.evse_id, connector.connector_id, connector.legacy_connector) == (2, 1, 2)
    assert connector.component() == {"name": "Connector", "evse": {"id": 2, "connectorId": 1}}


# --- GetVariables ------------------------------------------------------------------------


def _get_request(*items: Payload) -> Payload:
    request = {"getVariableData": list(items)}
    validate(Version.V201, "GetVariables", Kind.REQUEST, request)
    return request


def _get(request: Payload, charger: ChargerConfiguration | None = None) -> list[Payload]:
    """The GetVariables results, the charger read as the session reads it: one
    GetConfiguration for the plan's keys."""
    plan = dm.get_variables_plan(request, MODEL, FACTS)
    configuration: dict[str, dm.ConfigEntry] = {}
    if plan.keys:
        charger = charger or standard_configuration(connectors=2)
        answer = charger.get_configuration({"key": list(plan.keys)})
        configuration = dm.configuration_from(answer)
    response = dm.get_variables_response(plan, configuration, FACTS)
    results: list[Payload] = response["getVariableResult"]
    return results


def test_get_variables_plan_reads_each_key_once() -> None:
    """Two variables of one key, and one key asked in two spellings (1.6 keys are
    CiString), make one GetConfiguration key each; keyless variables read none."""
    request = _get_request(
        _item("AlignedDataCtrlr", "Interval"),
        _item("AlignedDataCtrlr", "TxEndedInterval"),
        _item("AuthCacheCtrlr", "Enabled"),
        _item("AuthCacheCtrlr", "Available"),
        _item("OCPP16Config", "LedBrightness"),
        _item("OCPP16Config", "LEDBRIGHTNESS"),
        _item("OCPPCommCtrlr", "MessageTimeout", instance="Default"),
        _item("TxCtrlr", "TxStopPoint"),
        _item("FiscalMetering", "PublicKey", evse=2),
        _item("NoSuchCtrlr", "Enabled"),
    )
    plan = dm.get_variables_plan(request, MODEL, FACTS)
    assert plan.keys == (
        "ClockAlignedDataInterval",
        "AuthorizationCacheEnabled",
        "LedBrightness",
        "MeterPublicKey2",
    )
    assert [item for item, _ in plan.items] == request["getVariableData"]
    assert plan.items[-1][1] == "UnknownComponent"


def test_get_variables_plan_does_not_read_other_attribute_types() -> None:
    """1.6 keys have an actual value only (§2.18)."""
    request = _get_request(_item("OCPPCommCtrlr", "HeartbeatInterval", attributeType="Target"))
    plan = dm.get_variables_plan(request, MODEL, FACTS)
    assert plan.keys == ()
    assert plan.items[0][1] == "NotSupportedAttributeType"


def test_get_variables_answers_each_item_in_request_order() -> None:
    request = _get_request(
        _item("OCPPCommCtrlr", "HeartbeatInterval", attributeType="Actual"),
        _item("TxCtrlr", "StopTxOnInvalidId"),
        _item("SampledDataCtrlr", "TxUpdatedMeasurands"),
        _item("SmartChargingCtrlr", "RateUnit"),
        _item("ChargingStation", "PhaseRotation"),
        _item("Connector", "PhaseRotation", evse=2, connector=1),
        _item("FiscalMetering", "PublicKey", evse=2),
        _item("OCPPCommCtrlr", "MessageTimeout", instance="Default"),
        _item("EVSE", "AvailabilityState", evse=2),
        _item("TxCtrlr", "TxStopPoint"),
        _item("ChargingStation", "SerialNumber"),
        _item("OCPP16Config", "LedBrightness"),
        _item("OCPPCommCtrlr", "HeartbeatInterval", attributeType="Target"),
    )
    results = _get(request)
    assert [(r["component"], r["variable"]) for r in results] == [
        (i["component"], i["variable"]) for i in request["getVariableData"]
    ]
    assert [(r["attributeStatus"], r.get("attributeValue")) for r in results] == [
        ("Accepted", "300"),
        ("Accepted", "true"),  # the charger says "True"
        ("Accepted", "Energy.Active.Import.Register,Voltage"),  # "...,Voltage.L1,Temperature"
        ("Accepted", "A,W"),
        ("Accepted", "RST"),
        ("Accepted", "RTS"),
        ("Accepted", meter_public_key(2)),
        ("Accepted", "30"),
        ("Accepted", "Occupied"),  # connector 2 is Charging
        ("Accepted", "EVConnected,Authorized"),
        ("Accepted", "SN-0001"),
        ("Accepted", "80"),
        ("NotSupportedAttributeType", None),
    ]
    assert results[0]["attributeType"] == "Actual"
    assert results[-1]["attributeType"] == "Target"
    assert "attributeType" not in results[1]
    validate(Version.V201, "GetVariables", Kind.RESPONSE, {"getVariableResult": results})


def test_an_unreadable_charger_value_is_rejected_with_a_reason() -> None:
    """A value the 2.0.1 type cannot carry is not invented (reference §2.18)."""
    results = _get(
        _get_request(_item("OCPPCommCtrlr", "HeartbeatInterval")),
        _charger(HeartbeatInterval="often"),
    )
    assert results[0]["attributeStatus"] == "Rejected"
    assert "attributeValue" not in results[0]
    info = results[0]["attributeStatusInfo"]
    assert info["reasonCode"]
    assert "often" in info["additionalInfo"]


def test_an_unreadable_charger_value_answer_is_schema_valid() -> None:
    results = _get(
        _get_request(_item("OCPPCommCtrlr", "HeartbeatInterval")),
        _charger(HeartbeatInterval="often"),
    )
    validate(Version.V201, "GetVariables", Kind.RESPONSE, {"getVariableResult": results})


def test_a_key_the_charger_lacks_is_an_unknown_variable() -> None:
    """B06.FR.07: the key is in unknownKey."""
    request = _get_request(
        _item("AuthCtrlr", "OfflineTxForUnknownIdEnabled"), _item("OCPP16Config", "NoSuchKey")
    )
    results = _get(request, _without("AllowOfflineTxForUnknownId"))
    assert [r["attributeStatus"] for r in results] == ["UnknownVariable", "UnknownVariable"]


def test_the_fallback_answers_when_the_charger_lacks_the_key() -> None:
    request = _get_request(_item("SampledDataCtrlr", "TxStartedMeasurands"))
    results = _get(request, _without("StartTxnSampledData"))
    assert results[0]["attributeStatus"] == "Accepted"
    assert results[0]["attributeValue"] == "Energy.Active.Import.Register"


def test_the_charger_value_wins_over_the_fallback() -> None:
    request = _get_request(_item("SampledDataCtrlr", "TxStartedMeasurands"))
    results = _get(request, _charger(StartTxnSampledData="SoC"))
    assert results[0]["attributeValue"] == "SoC"


def test_a_write_only_variable_is_rejected() -> None:
    """B06.FR.09: the password is never read."""
    results = _get(_get_request(_item("SecurityCtrlr", "BasicAuthPassword")))
    assert results[0]["attributeStatus"] == "Rejected"
    assert results[0]["attributeStatusInfo"]["reasonCode"] == "WriteOnly"
    assert "attributeValue" not in results[0]


def test_station_facts_without_a_source_are_unknown_until_a_vendor_file_gives_them() -> None:
    request = _get_request(_item("EVSE", "SupplyPhases", evse=1))
    assert _get(request)[0]["attributeStatus"] == "UnknownVariable"
    facts = _facts(station=EXAMPLE_MODEL.facts)
    plan = dm.get_variables_plan(request, EXAMPLE_MODEL, facts)
    answer = dm.get_variables_response(plan, {}, facts)
    assert answer["getVariableResult"][0]["attributeValue"] == "3"


def test_a_key_listed_without_a_value_is_accepted_empty() -> None:
    results = _get(_get_request(_item("SecurityCtrlr", "OrganizationName")), _charger(CpoName=None))
    assert results[0]["attributeStatus"] == "Accepted"
    assert results[0]["attributeValue"] == ""


def _every_variable_request(variables: Sequence[dm.Variable]) -> Payload:
    return _get_request(
        *({"component": v.component(), "variable": v.variable()} for v in variables)
    )


# The two rows whose Actual value 1.6 cannot give (convert max_limit, no station fact):
# answered Rejected with the over-long reason code of the bug above.
NO_ACTUAL_VALUE = {("LocalAuthListCtrlr", "Entries"), ("SecurityCtrlr", "CertificateEntries")}


def _every_variable(model: DeviceModel, facts: dm.DeviceFacts) -> list[dm.Variable]:
    vendor = [dm.vendor_variable(model, key) for key in UNMAPPED_KEYS]
    return [*dm.station_variables(model, facts), *vendor]


def test_get_variables_for_every_other_variable_of_the_standard_charger_is_schema_valid() -> None:
    variables = [
        v
        for v in _every_variable(MODEL, FACTS)
        if (v.row.component, v.row.variable) not in NO_ACTUAL_VALUE
    ]
    request = _every_variable_request(variables)
    plan = dm.get_variables_plan(request, MODEL, FACTS)
    response = dm.get_variables_response(plan, _configuration(), FACTS)
    validate(Version.V201, "GetVariables", Kind.RESPONSE, response)
    statuses = [r["attributeStatus"] for r in response["getVariableResult"]]
    assert len(statuses) == len(variables)
    # Only the password is refused; only vendor-file facts are unknown.
    assert statuses.count("Rejected") == 1
    unknown = {
        r["variable"]["name"]
        for r in response["getVariableResult"]
        if r["attributeStatus"] == "UnknownVariable"
    }
    assert unknown == {"SupplyPhases", "ConnectorType"}


def test_get_variables_for_every_variable_of_the_standard_charger_is_schema_valid() -> None:
    variables = _every_variable(MODEL, FACTS)
    plan = dm.get_variables_plan(_every_variable_request(variables), MODEL, FACTS)
    response = dm.get_variables_response(plan, _configuration(), FACTS)
    validate(Version.V201, "GetVariables", Kind.RESPONSE, response)


# --- SetVariables ------------------------------------------------------------------------


def _set_item(component: Payload, variable: Payload, value: str, **extra: object) -> Payload:
    item = {"component": component, "variable": variable, "attributeValue": value, **extra}
    validate(Version.V201, "SetVariables", Kind.REQUEST, {"setVariableData": [item]})
    return item


def _step(
    item: Payload, model: DeviceModel = MODEL, facts: dm.DeviceFacts = FACTS
) -> dm.ChangeStep | Payload:
    return dm.set_variable_step(item, model, facts)


@pytest.mark.parametrize(
    ("component", "variable", "value", "key", "sent"),
    [
        ("OCPPCommCtrlr", "HeartbeatInterval", "120", "HeartbeatInterval", "120"),
        ("TxCtrlr", "StopTxOnInvalidId", "false", "StopTransactionOnInvalidId", "false"),
        ("AlignedDataCtrlr", "Measurands", "Voltage,SoC", "MeterValuesAlignedData", "Voltage,SoC"),
        ("AlignedDataCtrlr", "TxEndedMeasurands", "", "StopTxnAlignedData", ""),
        ("SecurityCtrlr", "OrganizationName", "Example CPO", "CpoName", "Example CPO"),
        (
            "SecurityCtrlr",
            "BasicAuthPassword",
            "sim-factory-pass",
            "AuthorizationKey",
            "73696d2d666163746f72792d70617373",
        ),
        ("OCPP16Config", "LedBrightness", "55", "LedBrightness", "55"),
    ],
)
def test_set_variable_becomes_one_change_configuration(
    component: str, variable: str, value: str, key: str, sent: str
) -> None:
    step = _step(_set_item(_component(component), _variable(variable), value))
    assert isinstance(step, dm.ChangeStep)
    assert (step.key, step.value) == (key, sent)
    assert standard_configuration(connectors=2).change_configuration(
        {"key": step.key, "value": step.value}
    ) == {"status": "Accepted"}


@pytest.mark.parametrize(
    ("component", "variable", "value", "status", "reason"),
    [
        (_component("NoSuchCtrlr"), _variable("Enabled"), "true", "UnknownComponent", None),
        (_component("OCPPCommCtrlr"), _variable("NoSuchVariable"), "1", "UnknownVariable", None),
        (_component("OCPP16Config"), _variable("HeartbeatInterval"), "1", "UnknownVariable", None),
        (
            _component("AlignedDataCtrlr"),
            _variable("TxEndedInterval"),
            "60",
            "Rejected",
            "ReadOnly",
        ),
        (_component("TxCtrlr"), _variable("TxStartPoint"), "EVConnected", "Rejected", "ReadOnly"),
        (_component("ClockCtrlr"), _variable("DateTime"), GENERATED_AT, "Rejected", "ReadOnly"),
        (_component("Connector", 1, 1), _variable("PhaseRotation"), "RTS", "Rejected", "ReadOnly"),
        (
            _component("OCPPCommCtrlr"),
            _variable("HeartbeatInterval"),
            "0",
            "Rejected",
            "ValueTooLow",
        ),
        (
            _component("OCPPCommCtrlr"),
            _variable("HeartbeatInterval"),
            "soon",
            "Rejected",
            "InvalidValue",
        ),
        (
            _component("AlignedDataCtrlr"),
            _variable("Measurands"),
            "Voltage.L1",
            "Rejected",
            "InvalidValue",
        ),
        (
            _component("SecurityCtrlr"),
            _variable("BasicAuthPassword"),
            "short",
            "Rejected",
            "InvalidValue",
        ),
        (
            _component("SecurityCtrlr"),
            _variable("OrganizationName"),
            "x" * 501,
            "Rejected",
            "ValueTooHigh",
        ),
    ],
)
def test_the_gateway_answers_what_the_charger_must_not_see(
    component: Payload, variable: Payload, value: str, status: str, reason: str | None
) -> None:
    """Unknown, read-only (B05.FR.09) or refused values never reach the charger."""
    item = _set_item(component, variable, value)
    result = _step(item)
    assert not isinstance(result, dm.ChangeStep)
    assert result["attributeStatus"] == status
    assert (result["component"], result["variable"]) == (component, variable)
    if reason is None:
        assert "attributeStatusInfo" not in result
    else:
        assert result["attributeStatusInfo"]["reasonCode"] == reason
    validate(Version.V201, "SetVariables", Kind.RESPONSE, {"setVariableResult": [result]})


def test_set_variable_of_another_attribute_type_is_not_supported() -> None:
    item = _set_item(
        _component("OCPPCommCtrlr"), _variable("HeartbeatInterval"), "60", attributeType="Target"
    )
    result = _step(item)
    assert not isinstance(result, dm.ChangeStep)
    assert result["attributeStatus"] == "NotSupportedAttributeType"
    assert result["attributeType"] == "Target"


def test_a_long_refusal_is_cut_to_the_schema_length() -> None:
    item = _set_item(_component("OCPPCommCtrlr"), _variable("HeartbeatInterval"), "y" * 1000)
    result = _step(item)
    assert not isinstance(result, dm.ChangeStep)
    assert len(result["attributeStatusInfo"]["additionalInfo"]) == 512
    validate(Version.V201, "SetVariables", Kind.RESPONSE, {"setVariableResult": [result]})


@pytest.mark.parametrize(
    ("charger_status", "status"),
    [
        ("Accepted", "Accepted"),
        ("Rejected", "Rejected"),
        ("RebootRequired", "RebootRequired"),
        ("NotSupported", "UnknownVariable"),
    ],
)
def test_the_charger_answer_maps_by_the_status_table(charger_status: str, status: str) -> None:
    """Reference §2.18: ChangeConfiguration.conf status -> SetVariableResult status."""
    item = _set_item(
        _component("OCPPCommCtrlr"), _variable("HeartbeatInterval"), "60", attributeType="Actual"
    )
    step = _step(item)
    assert isinstance(step, dm.ChangeStep)
    result = dm.set_variable_result(item, step, charger_status)
    assert result == {
        "attributeStatus": status,
        "attributeType": "Actual",
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "HeartbeatInterval"},
    }


@pytest.mark.parametrize(
    ("charger_status", "status"),
    [
        ("Accepted", "RebootRequired"),
        ("RebootRequired", "RebootRequired"),
        ("Rejected", "Rejected"),
        ("NotSupported", "UnknownVariable"),
    ],
)
def test_a_reboot_row_reports_reboot_required_when_accepted(
    charger_status: str, status: str
) -> None:
    """The example vendor's HeartbeatInterval only applies after a reboot."""
    item = _set_item(_component("OCPPCommCtrlr"), _variable("HeartbeatInterval"), "60")
    step = _step(item, EXAMPLE_MODEL)
    assert isinstance(step, dm.ChangeStep)
    assert dm.set_variable_result(item, step, charger_status)["attributeStatus"] == status


def test_a_charger_that_does_not_answer_is_an_internal_error() -> None:
    item = _set_item(_component("OCPPCommCtrlr"), _variable("HeartbeatInterval"), "60")
    result = dm.set_variable_failed(item, "no answer within 30 s")
    assert result["attributeStatus"] == "Rejected"
    assert result["attributeStatusInfo"] == {
        "reasonCode": "InternalError",
        "additionalInfo": "no answer within 30 s",
    }


def test_every_set_variables_result_for_the_standard_charger_is_schema_valid() -> None:
    """Every variable of the station written with the value it has (and with a value no
    variable takes), under every charger answer: each result is schema-valid."""
    configuration = _configuration()
    entries = reports.report_entries(MODEL, FACTS, configuration)
    results: list[Payload] = []
    for entry in entries:
        variable = entry.variable
        value = entry.reading.value
        if value is None:
            value = "sim-factory-pass"
        for attempt in (value, "not a value \u00e9" * 20):
            item = _set_item(variable.component(), variable.variable(), attempt)
            step = _step(item)
            if isinstance(step, dm.ChangeStep):
                results.extend(
                    dm.set_variable_result(item, step, status) for status in dm.SET_VARIABLE_STATUS
                )
                results.append(dm.set_variable_failed(item, "timeout"))
            else:
                results.append(step)
    statuses = {result["attributeStatus"] for result in results}
    assert statuses == {"Accepted", "Rejected", "RebootRequired", "UnknownVariable"}
    validate(Version.V201, "SetVariables", Kind.RESPONSE, {"setVariableResult": results})


# --- reports -----------------------------------------------------------------------------


def _entries(
    model: DeviceModel = MODEL,
    facts: dm.DeviceFacts = FACTS,
    charger: ChargerConfiguration | None = None,
) -> list[reports.ReportEntry]:
    return reports.report_entries(model, facts, _configuration(charger))


def _names(entries: Iterable[reports.ReportEntry]) -> list[tuple[str, str, int | None, int | None]]:
    return _where(entry.variable for entry in entries)


def _entry(
    entries: Iterable[reports.ReportEntry], component: str, variable: str
) -> reports.ReportEntry:
    matching = [
        e
        for e in entries
        if (e.variable.row.component, e.variable.row.variable)
        == (
            component,
            variable,
        )
    ]
    assert len(matching) == 1
    return matching[0]


def test_report_entries_are_the_mapped_variables_then_the_unmapped_keys() -> None:
    entries = _entries()
    vendor = [e for e in entries if e.variable.row.component == "OCPP16Config"]
    assert [e.variable.row.variable for e in vendor] == UNMAPPED_KEYS
    assert entries[-len(vendor) :] == vendor, "vendor keys come last"
    mutability = {e.variable.row.variable: e.reading.mutability for e in vendor}
    assert mutability["LedBrightness"] is Mutability.READ_WRITE
    assert mutability["VendorSerialPrefix"] is Mutability.READ_ONLY
    assert mutability["NumberOfConnectors"] is Mutability.READ_ONLY
    mapped = [e.variable for e in entries if e.variable.row.component != "OCPP16Config"]
    # Every station variable in order, but the vendor-file facts (no vendor file here)
    # and the two Entries whose Actual value a 1.6 charger does not report (a value may
    # be omitted only for WriteOnly variables).
    unknown = {("SupplyPhases", None), ("ConnectorType", None)}
    unknown |= {("Entries", "LocalAuthListCtrlr"), ("CertificateEntries", "SecurityCtrlr")}
    assert mapped == [
        v
        for v in dm.station_variables(MODEL, FACTS)
        if (v.row.variable, None) not in unknown
        and (v.row.variable, v.row.component) not in unknown
    ]


def test_report_entries_leave_out_what_the_charger_lacks() -> None:
    entries = _entries(charger=_without("AllowOfflineTxForUnknownId", "BlinkRepeat"))
    names = {(e.variable.row.component, e.variable.row.variable) for e in entries}
    assert ("AuthCtrlr", "OfflineTxForUnknownIdEnabled") not in names
    assert ("OCPP16Config", "BlinkRepeat") not in names
    assert ("OCPPCommCtrlr", "HeartbeatInterval") in names


def test_the_charger_readonly_flag_makes_a_variable_read_only() -> None:
    """AuthorizeRemoteTxRequests is readonly on the standard charger (§3.2)."""
    entry = _entry(_entries(), "AuthCtrlr", "AuthorizeRemoteStart")
    assert entry.reading.mutability is Mutability.READ_ONLY
    assert entry.report_data()["variableAttribute"][0]["mutability"] == "ReadOnly"


def test_report_data_of_a_key_variable() -> None:
    data = _entry(_entries(), "OCPPCommCtrlr", "HeartbeatInterval").report_data()
    assert data == {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "HeartbeatInterval"},
        "variableAttribute": [
            {
                "type": "Actual",
                "value": "300",
                "mutability": "ReadWrite",
                "persistent": True,
                "constant": False,
            }
        ],
        "variableCharacteristics": {
            "dataType": "integer",
            "unit": "s",
            "minLimit": 1,
            "supportsMonitoring": False,
        },
    }


def test_report_data_of_a_constant() -> None:
    data = _entry(_entries(), "TxCtrlr", "TxStopPoint").report_data()
    assert data["variableAttribute"] == [
        {
            "type": "Actual",
            "value": "EVConnected,Authorized",
            "mutability": "ReadOnly",
            "persistent": False,
            "constant": True,
        }
    ]
    assert data["variableCharacteristics"]["valuesList"] == (
        "ParkingBayOccupancy,EVConnected,Authorized,DataSigned,PowerPathClosed,EnergyTransfer"
    )


def test_report_data_of_a_max_limit_variable_carries_the_charger_limit() -> None:
    entries = _entries(facts=_facts(profiles=2))
    names = {(e.variable.row.component, e.variable.row.variable) for e in entries}
    assert ("LocalAuthListCtrlr", "Entries") not in names  # Actual unknown: left out
    profiles = _entry(entries, "SmartChargingCtrlr", "Entries").report_data()
    assert profiles["variableCharacteristics"]["maxLimit"] == 20
    assert profiles["variableAttribute"][0]["value"] == "2"


def test_report_data_of_a_connector_variable_names_its_evse_and_connector() -> None:
    entries = [
        e
        for e in _entries()
        if (e.variable.row.component, e.variable.row.variable) == ("Connector", "PhaseRotation")
    ]
    assert [e.report_data()["component"] for e in entries] == [
        {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
        {"name": "Connector", "evse": {"id": 2, "connectorId": 1}},
    ]
    assert [e.reading.value for e in entries] == ["RST", "RTS"]


def test_report_data_of_the_password_has_no_value() -> None:
    data = _entry(_entries(), "SecurityCtrlr", "BasicAuthPassword").report_data()
    assert "value" not in data["variableAttribute"][0]
    assert data["variableAttribute"][0]["mutability"] == "WriteOnly"


def test_report_data_of_the_password_keeps_its_max_length() -> None:
    data = _entry(_entries(), "SecurityCtrlr", "BasicAuthPassword").report_data()
    assert data["variableCharacteristics"]["maxLimit"] == 40


def test_only_write_only_attributes_are_reported_without_a_value() -> None:
    for entry in _entries():
        attribute = entry.report_data()["variableAttribute"][0]
        if "value" not in attribute:
            assert attribute["mutability"] == "WriteOnly", _names([entry])


def test_configuration_inventory_is_what_an_operator_can_set() -> None:
    """B07.FR.07: ReadWrite and WriteOnly variables, the charger's readonly flag applied."""
    selected = reports.select_base_report(_entries(), "ConfigurationInventory")
    assert all(e.reading.mutability is not Mutability.READ_ONLY for e in selected)
    names = {(e.variable.row.component, e.variable.row.variable) for e in selected}
    assert ("OCPPCommCtrlr", "HeartbeatInterval") in names
    assert ("SecurityCtrlr", "BasicAuthPassword") in names
    assert ("OCPP16Config", "LedBrightness") in names
    assert ("AuthCtrlr", "AuthorizeRemoteStart") not in names
    assert ("OCPP16Config", "NumberOfConnectors") not in names
    writable = [e for e in _entries() if e.reading.mutability is not Mutability.READ_ONLY]
    assert selected == writable


def test_full_inventory_is_everything() -> None:
    entries = _entries()
    assert reports.select_base_report(entries, "FullInventory") == entries


def test_summary_inventory_is_the_components_state() -> None:
    selected = reports.select_base_report(_entries(), "SummaryInventory")
    assert _names(selected) == [
        ("ChargingStation", "AvailabilityState", None, None),
        ("ChargingStation", "Problem", None, None),
        ("EVSE", "AvailabilityState", 1, None),
        ("EVSE", "Problem", 1, None),
        ("EVSE", "AvailabilityState", 2, None),
        ("EVSE", "Problem", 2, None),
        ("Connector", "AvailabilityState", 1, 1),
        ("Connector", "Problem", 1, 1),
        ("Connector", "AvailabilityState", 2, 1),
        ("Connector", "Problem", 2, 1),
    ]


def _report_request(**fields: object) -> Payload:
    request = {"requestId": 5, **fields}
    validate(Version.V201, "GetReport", Kind.REQUEST, request)
    return request


def _wanted(component: Payload, variable: Payload | None = None) -> Payload:
    return (
        {"component": component}
        if variable is None
        else {
            "component": component,
            "variable": variable,
        }
    )


def test_get_report_by_component_and_evse() -> None:
    request = _report_request(componentVariable=[_wanted(_component("EVSE", evse=2))])
    assert _names(reports.select_report(_entries(), request)) == [
        ("EVSE", "Available", 2, None),
        ("EVSE", "AvailabilityState", 2, None),
        ("EVSE", "Problem", 2, None),
    ]


def test_get_report_by_component_without_evse_covers_every_instance() -> None:
    request = _report_request(
        componentVariable=[_wanted(_component("Connector"), _variable("PhaseRotation"))]
    )
    assert _names(reports.select_report(_entries(), request)) == [
        ("Connector", "PhaseRotation", 1, 1),
        ("Connector", "PhaseRotation", 2, 1),
    ]


def test_get_report_by_connector() -> None:
    entries = _entries()
    one = _report_request(componentVariable=[_wanted(_component("Connector", 2, 1))])
    assert {
        (e.variable.evse_id, e.variable.connector_id) for e in reports.select_report(entries, one)
    } == {(2, 1)}
    none = _report_request(componentVariable=[_wanted(_component("Connector", 2, 2))])
    assert reports.select_report(entries, none) == []


def test_get_report_by_variable_with_and_without_instance() -> None:
    entries = _entries()
    every = _report_request(
        componentVariable=[_wanted(_component("DeviceDataCtrlr"), _variable("ItemsPerMessage"))]
    )
    assert [e.variable.row.variable_instance for e in reports.select_report(entries, every)] == [
        "GetVariables",
        "GetReport",
        "SetVariables",
    ]
    one = _report_request(
        componentVariable=[
            _wanted(_component("DeviceDataCtrlr"), _variable("ItemsPerMessage", "GetReport"))
        ]
    )
    selected = reports.select_report(entries, one)
    assert [e.variable.row.variable_instance for e in selected] == ["GetReport"]


def test_get_report_with_a_component_instance_the_station_lacks_is_empty() -> None:
    request = _report_request(
        componentVariable=[_wanted({"name": "OCPPCommCtrlr", "instance": "Backup"})]
    )
    assert reports.select_report(_entries(), request) == []


def test_get_report_with_several_component_variables_keeps_report_order() -> None:
    request = _report_request(
        componentVariable=[
            _wanted(_component("OCPP16Config"), _variable("LedBrightness")),
            _wanted(_component("OCPPCommCtrlr"), _variable("HeartbeatInterval")),
        ]
    )
    assert _names(reports.select_report(_entries(), request)) == [
        ("OCPPCommCtrlr", "HeartbeatInterval", None, None),
        ("OCPP16Config", "LedBrightness", None, None),
    ]


def test_component_criteria_problem_selects_the_faulty_components() -> None:
    """B08: a component with Problem true; connector 2 reports an error."""
    entries = _entries(facts=_facts(errors={2: "GroundFailure"}))
    request = _report_request(componentCriteria=["Problem"])
    selected = reports.select_report(entries, request)
    assert {(e.variable.row.component, e.variable.evse_id) for e in selected} == {
        ("EVSE", 2),
        ("Connector", 2),
    }
    # EVSE 2: Available, AvailabilityState, Problem; Connector 2 also PhaseRotation.
    assert len(selected) == 3 + 4


def test_component_criteria_enabled_selects_components_with_enabled_true() -> None:
    entries = _entries(charger=_charger(AuthorizationCacheEnabled="false"))
    enabled = reports.select_report(entries, _report_request(componentCriteria=["Enabled"]))
    assert {e.variable.row.component for e in enabled} == {"LocalAuthListCtrlr"}
    available = reports.select_report(entries, _report_request(componentCriteria=["Available"]))
    assert {e.variable.row.component for e in available} == {
        "AuthCacheCtrlr",  # the key exists
        "LocalAuthListCtrlr",
        "ReservationCtrlr",
        "SmartChargingCtrlr",
        "ChargingStation",
        "EVSE",
        "Connector",
    }


def test_component_criteria_look_at_the_variable_without_instance() -> None:
    """An Enabled variable of some instance does not make the component Enabled."""

    def enabled(component: str, instance: str | None) -> VariableMapping:
        return VariableMapping(
            component=component,
            variable="Enabled",
            variable_instance=instance,
            data_type=DataType.BOOLEAN,
            mutability=Mutability.READ_ONLY,
            fixed="true",
        )

    model = DeviceModel((enabled("AlignedDataCtrlr", None), enabled("SampledDataCtrlr", "Extra")))
    entries = reports.report_entries(model, FACTS, {})
    selected = reports.select_report(entries, _report_request(componentCriteria=["Enabled"]))
    assert _names(selected) == [("AlignedDataCtrlr", "Enabled", None, None)]


def test_component_criteria_and_component_variable_both_apply() -> None:
    entries = _entries(facts=_facts(errors={2: "GroundFailure"}))
    request = _report_request(
        componentCriteria=["Problem"],
        componentVariable=[_wanted(_component("EVSE"), _variable("AvailabilityState"))],
    )
    assert _names(reports.select_report(entries, request)) == [
        ("EVSE", "AvailabilityState", 2, None)
    ]
    nothing = _report_request(componentCriteria=["Active"])
    assert reports.select_report(entries, nothing) == []


def _notify(entries: Sequence[reports.ReportEntry], per_message: int) -> list[Payload]:
    messages = reports.notify_reports(42, entries, GENERATED_AT, per_message)
    for message in messages:
        validate(Version.V201, "NotifyReport", Kind.REQUEST, message)
    return messages


def test_notify_reports_split_the_report() -> None:
    """B07.FR.04/10: one requestId, seqNo from 0, tbc on all but the last."""
    entries = _entries()[:5]
    messages = _notify(entries, 2)
    assert [(m["seqNo"], m.get("tbc"), len(m["reportData"])) for m in messages] == [
        (0, True, 2),
        (1, True, 2),
        (2, None, 1),
    ]
    assert all(m["requestId"] == 42 and m["generatedAt"] == GENERATED_AT for m in messages)
    assert [d for m in messages for d in m["reportData"]] == [e.report_data() for e in entries]


def test_notify_reports_of_an_exact_multiple_end_without_tbc() -> None:
    messages = _notify(_entries()[:4], 2)
    assert [m.get("tbc") for m in messages] == [True, None]


def test_notify_reports_fitting_one_message() -> None:
    messages = _notify(_entries()[:3], 100)
    assert len(messages) == 1
    assert "tbc" not in messages[0]


def test_an_empty_report_is_one_message_without_report_data() -> None:
    assert _notify([], 10) == [{"requestId": 42, "generatedAt": GENERATED_AT, "seqNo": 0}]


@pytest.mark.parametrize(
    "report_base", ["ConfigurationInventory", "FullInventory", "SummaryInventory"]
)
@pytest.mark.parametrize("vendor_file", [False, True], ids=["default", "example-vendor"])
def test_every_notify_report_of_the_standard_charger_is_schema_valid(
    report_base: str, vendor_file: bool
) -> None:
    model = EXAMPLE_MODEL if vendor_file else MODEL
    facts = _facts(station=model.facts, errors={1: "OverCurrentFailure"}, profiles=1)
    entries = reports.select_base_report(_entries(model, facts), report_base)
    assert entries
    for per_message in (1, 7, 1000):
        messages = _notify(entries, per_message)
        assert sum(len(m["reportData"]) for m in messages) == len(entries)


def test_the_example_vendor_report_has_its_facts_and_its_variable() -> None:
    facts = _facts(station=EXAMPLE_MODEL.facts)
    entries = _entries(EXAMPLE_MODEL, facts)
    connector_type = [
        e.reading.value for e in entries if e.variable.row.variable == "ConnectorType"
    ]
    assert connector_type == ["cType2", "cType2"]
    percent = _entry(entries, "ChargingStatusIndicator", "Percent")
    assert percent.reading.value == "80"
    assert "LedBrightness" not in [
        e.variable.row.variable for e in entries if e.variable.row.component == "OCPP16Config"
    ]
