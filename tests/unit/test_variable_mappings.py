"""Tests for gateway.variable_mappings: loading and validating device_model.toml and
mappings/vendors/*.toml.

Every validation rule is broken once, in an otherwise valid file, and the error must
name the file and the entry (``variable[N] (Component.Variable)``) and say which rule:
an operator reads it from ``ocpp-gateway check-config`` and has to find the entry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gateway.mappings import MappingError, default_mappings_dir, load_tables
from gateway.translate.variables import Convert, DataType, Mutability, StationFacts, Tier
from gateway.variable_mappings import (
    DEVICE_MODEL_FILE,
    VENDORS_DIR,
    DeviceModelError,
    load_device_model,
)

Row = dict[str, object]

# A valid first entry, so a broken entry is variable[1], not the first of the file.
HEARTBEAT: Row = {
    "component": "OCPPCommCtrlr",
    "variable": "HeartbeatInterval",
    "type": "integer",
    "unit": "s",
    "min": 1,
    "mutability": "ReadWrite",
    "key": "HeartbeatInterval",
}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings (JSON escapes are TOML basic-string escapes), numbers


def _toml(rows: list[Row], **top: object) -> str:
    text = "".join(f"{key} = {_toml_value(value)}\n" for key, value in top.items())
    for row in rows:
        text += "\n[[variable]]\n"
        text += "".join(f"{key} = {_toml_value(value)}\n" for key, value in row.items())
    return text


def _root(tmp_path: Path, rows: list[Row]) -> Path:
    (tmp_path / DEVICE_MODEL_FILE).write_text(_toml(rows), encoding="utf-8")
    return tmp_path


def _error(root: Path) -> str:
    with pytest.raises(DeviceModelError) as raised:
        load_device_model(root)
    return str(raised.value)


def _row(**fields: object) -> Row:
    """A row: the given fields, in the order given; None leaves a field out."""
    return {key: value for key, value in fields.items() if value is not None}


# Each case: the broken entry (variable[1]), and words of the expected message.
BROKEN: list[tuple[str, Row, str]] = [
    (
        "misspelt-standard-variable",
        _row(
            component="OCPPCommCtrlr",
            variable="HeartBeatInterval",
            type="integer",
            mutability="ReadWrite",
            key="HeartbeatInterval",
        ),
        "'HeartBeatInterval' is not a standardized variable of OCPPCommCtrlr",
    ),
    (
        "unknown-component",
        _row(
            component="OCPPCommController",
            variable="HeartbeatInterval",
            type="integer",
            mutability="ReadWrite",
            key="HeartbeatInterval",
        ),
        "'OCPPCommController' is not a standardized 2.0.1 component",
    ),
    (
        "key-and-value",
        _row(
            component="OCPPCommCtrlr",
            variable="ResetRetries",
            type="integer",
            mutability="ReadOnly",
            key="ResetRetries",
            value="3",
        ),
        "needs exactly one of key, value, gateway, station",
    ),
    (
        "key-and-gateway",
        _row(
            component="OCPPCommCtrlr",
            variable="ResetRetries",
            type="integer",
            mutability="ReadOnly",
            key="ResetRetries",
            gateway="message_timeout",
        ),
        "needs exactly one of key, value, gateway, station",
    ),
    (
        "key-and-station-without-max-limit",
        _row(
            component="SmartChargingCtrlr",
            variable="Entries",
            variable_instance="ChargingProfiles",
            type="integer",
            mutability="ReadOnly",
            key="MaxChargingProfilesInstalled",
            station="charging_profiles_installed",
        ),
        "needs exactly one of key, value, gateway, station",
    ),
    (
        "no-source",
        _row(
            component="OCPPCommCtrlr",
            variable="ResetRetries",
            type="integer",
            mutability="ReadOnly",
        ),
        "needs exactly one of key, value, gateway, station",
    ),
    (
        "convert-not-fitting-type",
        _row(
            component="SecurityCtrlr",
            variable="OrganizationName",
            type="string",
            mutability="ReadWrite",
            key="CpoName",
            convert="boolean",
        ),
        "convert boolean cannot produce a string value",
    ),
    (
        "default-convert-of-the-type",
        _row(
            component="ReservationCtrlr",
            variable="NonEvseSpecific",
            type="boolean",
            mutability="ReadOnly",
            key="ReserveConnectorZeroSupported",
            convert="integer",
        ),
        "convert integer cannot produce a boolean value",
    ),
    (
        "member-list-without-values",
        _row(
            component="AlignedDataCtrlr",
            variable="Measurands",
            type="MemberList",
            mutability="ReadWrite",
            key="MeterValuesAlignedData",
        ),
        "values (valuesList) is required for list types and only for them",
    ),
    (
        "option-list-without-values",
        _row(
            component="OCPPCommCtrlr",
            variable="PublicKeyWithSignedMeterValue",
            type="OptionList",
            mutability="ReadWrite",
            key="PublicKeyWithSignedMeterValue",
        ),
        "values (valuesList) is required for list types and only for them",
    ),
    (
        "values-for-an-integer",
        _row(
            component="OCPPCommCtrlr",
            variable="ResetRetries",
            type="integer",
            values=["1", "2", "3"],
            mutability="ReadWrite",
            key="ResetRetries",
        ),
        "values (valuesList) is required for list types and only for them",
    ),
    (
        "map-without-members",
        _row(
            component="ReservationCtrlr",
            variable="NonEvseSpecific",
            type="boolean",
            mutability="ReadOnly",
            key="ReserveConnectorZeroSupported",
            map={"yes": "true"},
        ),
        "map and strip_phase apply to convert = members only",
    ),
    (
        "strip-phase-without-members",
        _row(
            component="SecurityCtrlr",
            variable="OrganizationName",
            type="string",
            mutability="ReadWrite",
            key="CpoName",
            strip_phase=True,
        ),
        "map and strip_phase apply to convert = members only",
    ),
    (
        "profile-flag-without-flag",
        _row(
            component="SmartChargingCtrlr",
            variable="Available",
            type="boolean",
            mutability="ReadOnly",
            key="SupportedFeatureProfiles",
            convert="profile_flag",
        ),
        "flag is required with convert = profile_flag, and only there",
    ),
    (
        "flag-without-profile-flag",
        _row(
            component="SmartChargingCtrlr",
            variable="Available",
            type="boolean",
            mutability="ReadOnly",
            key="SupportedFeatureProfiles",
            flag="SmartCharging",
        ),
        "flag is required with convert = profile_flag, and only there",
    ),
    (
        "connector-key-at-station-tier",
        _row(
            component="FiscalMetering",
            variable="PublicKey",
            standard=False,
            type="string",
            mutability="ReadOnly",
            key="MeterPublicKey{connector}",
        ),
        "{connector} in a key needs tier evse or connector",
    ),
    (
        "unknown-gateway-fact",
        _row(
            component="DeviceDataCtrlr",
            variable="BytesPerMessage",
            variable_instance="GetReport",
            type="integer",
            mutability="ReadOnly",
            gateway="frame_size",
        ),
        "gateway 'frame_size' is not one of",
    ),
    (
        "unknown-station-fact",
        _row(
            component="ChargingStation",
            variable="Model",
            type="string",
            mutability="ReadOnly",
            station="chargePointModel",
        ),
        "station 'chargePointModel' is not one of",
    ),
    (
        "conversion-without-a-key",
        _row(
            component="DeviceDataCtrlr",
            variable="BytesPerMessage",
            variable_instance="GetReport",
            type="integer",
            mutability="ReadOnly",
            gateway="bytes_per_message",
            convert="integer",
        ),
        "convert, map, strip_phase, flag and fallback need a key",
    ),
    (
        "fallback-without-a-key",
        _row(
            component="TxCtrlr",
            variable="TxStartPoint",
            type="MemberList",
            values=["EVConnected", "PowerPathClosed"],
            mutability="ReadOnly",
            value="PowerPathClosed",
            fallback="EVConnected",
        ),
        "convert, map, strip_phase, flag and fallback need a key",
    ),
    (
        "read-write-without-a-key",
        _row(
            component="TxCtrlr",
            variable="TxStopPoint",
            type="MemberList",
            values=["EVConnected", "Authorized"],
            mutability="ReadWrite",
            value="EVConnected,Authorized",
        ),
        "only a 1.6 key can be written: mutability must be ReadOnly",
    ),
    (
        "write-only-gateway-fact",
        _row(
            component="OCPPCommCtrlr",
            variable="MessageTimeout",
            variable_instance="Default",
            type="integer",
            mutability="WriteOnly",
            gateway="message_timeout",
        ),
        "only a 1.6 key can be written: mutability must be ReadOnly",
    ),
    (
        "key-present-read-write",
        _row(
            component="AuthCacheCtrlr",
            variable="Available",
            type="boolean",
            mutability="ReadWrite",
            key="AuthorizationCacheEnabled",
            convert="key_present",
        ),
        "convert key_present derives its value: mutability must be ReadOnly",
    ),
    (
        "max-limit-read-write",
        _row(
            component="LocalAuthListCtrlr",
            variable="Entries",
            type="integer",
            mutability="ReadWrite",
            key="LocalAuthListMaxLength",
            convert="max_limit",
        ),
        "convert max_limit derives its value: mutability must be ReadOnly",
    ),
    (
        "phase-rotation-read-write",
        _row(
            component="ChargingStation",
            variable="PhaseRotation",
            type="string",
            mutability="ReadWrite",
            key="ConnectorPhaseRotation",
            convert="phase_rotation",
        ),
        "convert phase_rotation derives its value: mutability must be ReadOnly",
    ),
    (
        "hex-password-read-write",
        _row(
            component="SecurityCtrlr",
            variable="BasicAuthPassword",
            type="string",
            mutability="ReadWrite",
            key="AuthorizationKey",
            convert="hex_password",
        ),
        "convert hex_password and mutability WriteOnly go together",
    ),
    (
        "write-only-without-hex-password",
        _row(
            component="SecurityCtrlr",
            variable="OrganizationName",
            type="string",
            mutability="WriteOnly",
            key="CpoName",
        ),
        "convert hex_password and mutability WriteOnly go together",
    ),
    (
        "min-above-max",
        _row(
            component="OCPPCommCtrlr",
            variable="ResetRetries",
            type="integer",
            min=10,
            max=1,
            mutability="ReadWrite",
            key="ResetRetries",
        ),
        "min is above max",
    ),
    (
        "constant-not-an-integer",
        _row(
            component="DeviceDataCtrlr",
            variable="ItemsPerMessage",
            variable_instance="GetReport",
            type="integer",
            mutability="ReadOnly",
            value="many",
        ),
        "value 'many': 'many' is not an integer",
    ),
    (
        "constant-outside-the-values-list",
        _row(
            component="TxCtrlr",
            variable="TxStartPoint",
            type="MemberList",
            values=["EVConnected", "PowerPathClosed"],
            mutability="ReadOnly",
            value="PowerPathClosed,Authorized",
        ),
        "value 'PowerPathClosed,Authorized': Authorized not in the list",
    ),
    (
        "constant-above-max",
        _row(
            component="DeviceDataCtrlr",
            variable="ItemsPerMessage",
            variable_instance="GetReport",
            type="integer",
            max=10,
            mutability="ReadOnly",
            value="100",
        ),
        "value '100': 100 is above the maximum 10",
    ),
    (
        "fallback-invalid",
        _row(
            component="SampledDataCtrlr",
            variable="TxStartedMeasurands",
            type="MemberList",
            values=["Energy.Active.Import.Register", "Voltage"],
            mutability="ReadWrite",
            key="StartTxnSampledData",
            fallback="Energy.Active.Import.Register,Temperature",
        ),
        "Temperature not in the list",
    ),
    (
        "duplicate-identity",
        dict(HEARTBEAT),
        "same variable as variable[0]",
    ),
]


@pytest.mark.parametrize(
    ("row", "message"), [(row, message) for _, row, message in BROKEN], ids=[c[0] for c in BROKEN]
)
def test_a_broken_entry_names_the_file_the_entry_and_the_rule(
    tmp_path: Path, row: Row, message: str
) -> None:
    root = _root(tmp_path, [HEARTBEAT, row])
    error = _error(root)
    entry = f"variable[1] ({row['component']}.{row['variable']})"
    assert error.startswith(f"{root / DEVICE_MODEL_FILE}: {entry}: "), error
    assert message in error


def test_every_broken_entry_is_valid_without_its_fault(tmp_path: Path) -> None:
    """The entries above differ from a valid one by their fault only: the named
    component/variable pairs are real, so the message is about the rule broken."""
    valid = _row(
        component="OCPPCommCtrlr",
        variable="ResetRetries",
        type="integer",
        mutability="ReadWrite",
        key="ResetRetries",
    )
    model, _ = load_device_model(_root(tmp_path, [HEARTBEAT, valid]))
    assert [row.variable for row in model.variables] == ["HeartbeatInterval", "ResetRetries"]


def test_a_misspelt_name_tells_how_to_use_a_non_standard_one(tmp_path: Path) -> None:
    error = _error(_root(tmp_path, [HEARTBEAT, BROKEN[0][1]]))
    assert "standard = false" in error


def test_a_non_standard_name_loads_when_it_says_so(tmp_path: Path) -> None:
    row = _row(
        component="OCPPCommCtrlr",
        variable="HeartBeatInterval",
        standard=False,
        type="integer",
        mutability="ReadWrite",
        key="HeartbeatIntervalAlt",
    )
    model, _ = load_device_model(_root(tmp_path, [HEARTBEAT, row]))
    assert model.variables[1].variable == "HeartBeatInterval"


def test_the_same_variable_on_another_instance_is_not_a_duplicate(tmp_path: Path) -> None:
    rows = [
        _row(
            component="DeviceDataCtrlr",
            variable="ItemsPerMessage",
            variable_instance=instance,
            type="integer",
            mutability="ReadOnly",
            gateway="items_per_message_get_report",
        )
        for instance in ("GetReport", "GetVariables")
    ]
    model, _ = load_device_model(_root(tmp_path, rows))
    assert [row.variable_instance for row in model.variables] == ["GetReport", "GetVariables"]


def test_a_valid_row_builds_its_mapping(tmp_path: Path) -> None:
    row = _row(
        component="SmartChargingCtrlr",
        variable="RateUnit",
        type="MemberList",
        values=["A", "W"],
        mutability="ReadOnly",
        key="ChargingScheduleAllowedChargingRateUnit",
        map={"Current": "A", "Power": "W"},
        profile="SmartCharging",
    )
    model, vendors = load_device_model(_root(tmp_path, [row]))
    assert vendors == ()
    (built,) = model.variables
    assert built.data_type is DataType.MEMBER_LIST
    assert built.convert is Convert.MEMBERS  # the default for a MemberList
    assert built.values == ("A", "W")
    assert built.value_map == {"Current": "A", "Power": "W"}
    assert built.mutability is Mutability.READ_ONLY
    assert built.tier is Tier.STATION


def test_an_empty_constant_counts_as_a_source(tmp_path: Path) -> None:
    row = _row(
        component="SecurityCtrlr",
        variable="OrganizationName",
        type="string",
        mutability="ReadWrite",
        key="CpoName",
        value="",
    )
    assert "needs exactly one of key, value, gateway, station" in _error(
        _root(tmp_path, [HEARTBEAT, row])
    )


# --- file-level errors -----------------------------------------------------------------


def test_an_unknown_field_names_the_file_the_entry_index_and_the_field(tmp_path: Path) -> None:
    root = _root(tmp_path, [HEARTBEAT, {**HEARTBEAT, "variable": "ResetRetries", "colour": "red"}])
    error = _error(root)
    assert error.startswith(f"{root / DEVICE_MODEL_FILE}: ")
    assert "variable[1] (OCPPCommCtrlr.ResetRetries): colour" in error
    assert "Extra inputs are not permitted" in error


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("type", "int", "variable[1] (OCPPCommCtrlr.ResetRetries): type"),
        ("mutability", "Writable", "variable[1] (OCPPCommCtrlr.ResetRetries): mutability"),
        ("tier", "evse_connector", "variable[1] (OCPPCommCtrlr.ResetRetries): tier"),
        ("reboot", "yes", "variable[1] (OCPPCommCtrlr.ResetRetries): reboot"),
        ("key", "K" * 51, "variable[1] (OCPPCommCtrlr.ResetRetries): key"),
        ("convert", "hex", "variable[1] (OCPPCommCtrlr.ResetRetries): convert"),
    ],
)
def test_a_field_of_the_wrong_kind_names_the_entry_and_field(
    tmp_path: Path, field: str, value: object, words: str
) -> None:
    root = _root(tmp_path, [HEARTBEAT, {**HEARTBEAT, "variable": "ResetRetries", field: value}])
    error = _error(root)
    assert error.startswith(f"{root / DEVICE_MODEL_FILE}: ")
    assert words in error


def test_a_file_without_variables_is_refused(tmp_path: Path) -> None:
    (tmp_path / DEVICE_MODEL_FILE).write_text('vendor_component = "OCPP16Config"\n')
    error = _error(tmp_path)
    assert error.startswith(f"{tmp_path / DEVICE_MODEL_FILE}: ")
    assert "variable" in error


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / DEVICE_MODEL_FILE).write_text('[[variable]]\ncomponent = "OCPPCommCtrlr\n')
    error = _error(tmp_path)
    assert error.startswith(f"{tmp_path / DEVICE_MODEL_FILE}: invalid TOML: ")
    assert "line 2" in error


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    assert _error(tmp_path) == f"{tmp_path / DEVICE_MODEL_FILE}: file not found"


def test_the_vendor_component_name_is_read(tmp_path: Path) -> None:
    (tmp_path / DEVICE_MODEL_FILE).write_text(_toml([HEARTBEAT], vendor_component="Legacy16"))
    model, _ = load_device_model(tmp_path)
    assert model.vendor_component == "Legacy16"


def test_load_tables_reports_a_device_model_error_as_a_mapping_error(tmp_path: Path) -> None:
    """check-config and start-up go through load_tables: the message is unchanged."""
    shutil.copytree(default_mappings_dir(), tmp_path / "mappings")
    root = tmp_path / "mappings"
    path = root / DEVICE_MODEL_FILE
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('variable = "HeartbeatInterval"', 'variable = "Heartbeat"', 1))
    with pytest.raises(MappingError) as raised:
        load_tables(root)
    message = str(raised.value)
    assert message.startswith(f"{path}: variable[8] (OCPPCommCtrlr.Heartbeat): ")
    assert "not a standardized variable" in message


# --- vendor files ------------------------------------------------------------------------


def _vendor(root: Path, name: str, text: str) -> Path:
    directory = root / VENDORS_DIR
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_vendor_files_load_with_their_facts_and_rows(tmp_path: Path) -> None:
    root = _root(tmp_path, [HEARTBEAT])
    _vendor(
        root,
        "acme.toml",
        'vendor = "Acme"\nmodel = "X1"\n[station]\nsupply_phases = 1\nconnector_type = "sType2"\n'
        + _toml([{**HEARTBEAT, "reboot": True}]),
    )
    _vendor(root, "acme-any.toml", 'vendor = "Acme"\n')
    _, vendors = load_device_model(root)
    by_model = {vendor.model: vendor for vendor in vendors}
    assert by_model["X1"].facts == StationFacts(supply_phases=1, connector_type="sType2")
    assert [row.reboot for row in by_model["X1"].variables] == [True]
    assert by_model[None].facts == StationFacts()
    assert by_model[None].variables == ()


def test_two_vendor_files_for_one_vendor_and_model_are_refused(tmp_path: Path) -> None:
    """Which file applied would depend on file names; the match ignores case."""
    root = _root(tmp_path, [HEARTBEAT])
    first = _vendor(root, "a.toml", 'vendor = "Acme"\nmodel = "X1"\n')
    second = _vendor(root, "b.toml", 'vendor = "ACME"\nmodel = "x1"\n')
    assert _error(root) == f"{second}: same vendor and model as {first}"


def test_two_vendor_wide_files_for_one_vendor_are_refused(tmp_path: Path) -> None:
    root = _root(tmp_path, [HEARTBEAT])
    first = _vendor(root, "a.toml", 'vendor = "Acme"\n')
    second = _vendor(root, "b.toml", 'vendor = "acme"\n')
    assert _error(root) == f"{second}: same vendor and model as {first}"


@pytest.mark.parametrize(
    ("station", "words"),
    [
        ("supply_phases = 4", "station.supply_phases"),
        ("supply_phases = 0", "station.supply_phases"),
        ('supply_phases = "three"', "station.supply_phases"),
        ('connector_type = ""', "station.connector_type"),
        ('connector_type = "a-connector-type-name-too-long"', "station.connector_type"),
        ("voltage = 230", "station.voltage"),
    ],
)
def test_bad_station_facts_name_the_vendor_file_and_the_fact(
    tmp_path: Path, station: str, words: str
) -> None:
    root = _root(tmp_path, [HEARTBEAT])
    path = _vendor(root, "acme.toml", f'vendor = "Acme"\n[station]\n{station}\n')
    error = _error(root)
    assert error.startswith(f"{path}: ")
    assert words in error


def test_a_vendor_file_without_vendor_is_refused(tmp_path: Path) -> None:
    root = _root(tmp_path, [HEARTBEAT])
    path = _vendor(root, "acme.toml", 'model = "X1"\n')
    error = _error(root)
    assert error.startswith(f"{path}: ")
    assert "vendor" in error


def test_a_broken_vendor_entry_names_the_vendor_file_and_entry(tmp_path: Path) -> None:
    root = _root(tmp_path, [HEARTBEAT])
    path = _vendor(
        root,
        "acme.toml",
        'vendor = "Acme"\n'
        + _toml([{**HEARTBEAT, "variable": "ResetRetries"}, {**HEARTBEAT, "min": 5, "max": 2}]),
    )
    error = _error(root)
    assert error == f"{path}: variable[1] (OCPPCommCtrlr.HeartbeatInterval): min is above max"


def test_invalid_toml_in_a_vendor_file_names_it(tmp_path: Path) -> None:
    root = _root(tmp_path, [HEARTBEAT])
    path = _vendor(root, "acme.toml", "vendor = \n")
    assert _error(root).startswith(f"{path}: invalid TOML: ")


def test_files_beside_the_toml_files_are_ignored(tmp_path: Path) -> None:
    root = _root(tmp_path, [HEARTBEAT])
    _vendor(root, "README.md", "not TOML at all [[")
    _, vendors = load_device_model(root)
    assert vendors == ()


# --- the shipped files -------------------------------------------------------------------


def test_the_shipped_files_load() -> None:
    model, vendors = load_device_model(default_mappings_dir())
    assert len(model.variables) == 86
    assert model.vendor_component == "OCPP16Config"
    assert [(vendor.vendor, vendor.model) for vendor in vendors] == [
        ("ExampleVendor", "Example Model")
    ]
    assert vendors[0].facts == StationFacts(supply_phases=3, connector_type="cType2")


@pytest.mark.parametrize(
    ("vendor", "model"),
    [("ExampleVendor", "Example Model"), ("examplevendor", "EXAMPLE MODEL")],
)
def test_the_example_vendor_file_applies_ignoring_case(vendor: str, model: str) -> None:
    tables = load_tables()
    default = tables.device_model.variables
    applied = tables.device_model_for(vendor, model)
    assert applied.facts == StationFacts(supply_phases=3, connector_type="cType2")
    assert len(applied.variables) == len(default) + 1
    # HeartbeatInterval is replaced in place (reboot = true), Percent is appended.
    index = next(i for i, row in enumerate(default) if row.variable == "HeartbeatInterval")
    assert applied.variables[index].identity == default[index].identity
    assert applied.variables[index].reboot is True
    assert default[index].reboot is False
    assert [row for i, row in enumerate(applied.variables[:-1]) if i != index] == [
        row for i, row in enumerate(default) if i != index
    ]
    added = applied.variables[-1]
    assert (added.component, added.variable, added.key) == (
        "ChargingStatusIndicator",
        "Percent",
        "LedBrightness",
    )
    assert "ledbrightness" in applied.mapped_keys()


@pytest.mark.parametrize(
    ("vendor", "model"), [("ExampleVendor", "Other Model"), ("ExampleVendor", None), (None, None)]
)
def test_the_example_vendor_file_applies_to_its_model_only(
    vendor: str | None, model: str | None
) -> None:
    tables = load_tables()
    assert tables.device_model_for(vendor, model) == tables.device_model
