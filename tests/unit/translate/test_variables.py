"""Tests for gateway.translate.variables: the device model rows and their value conversions.

Facts: reference config-keys.csv (which 1.6 key is which 2.0.1 variable, and how values
convert) and messages.md §2.18. Realistic 1.6 values come from the simulator's
``standard_configuration()``, a charger with every 1.6 key of the reference; the
simulator's own ChangeConfiguration validation tells whether a value the gateway sends
back is one a 1.6 charger accepts.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.mappings import load_tables
from gateway.sim.configuration import ChargerConfiguration, standard_configuration
from gateway.translate.variables import (
    CONFIGURATION_VALUE_LIMIT,
    Convert,
    DataType,
    DeviceModel,
    InvalidValue,
    Mutability,
    StationFacts,
    Tier,
    VariableMapping,
    VendorDeviceModel,
    apply_vendor,
    check_value,
    max_limit_from_v16,
    value_from_v16,
    value_to_v16,
)

_TABLES = load_tables()
ROWS = _TABLES.device_model.variables
# The example vendor file's additions (rows of an identity the default table lacks).
_DEFAULT_IDENTITIES = {row.identity for row in ROWS}
VENDOR_ROWS = tuple(
    row
    for vendor in _TABLES.vendor_device_models
    for row in vendor.variables
    if row.identity not in _DEFAULT_IDENTITIES
)


def _row_id(row: VariableMapping) -> str:
    component = row.component + (f"[{row.component_instance}]" if row.component_instance else "")
    variable = row.variable + (f"[{row.variable_instance}]" if row.variable_instance else "")
    return f"{component}.{variable}"


def _row(component: str, variable: str, instance: str | None = None) -> VariableMapping:
    """The shipped row of this identity."""
    for row in ROWS:
        if (row.component, row.variable, row.variable_instance) == (component, variable, instance):
            return row
    raise LookupError(f"{component}.{variable}")


# Realistic facts for the rows whose value the gateway or the station gives (not a key):
# the gateway's defaults (session.device_model.DeviceModelLimits) and what a 1.6
# BootNotification and StatusNotification carry.
GATEWAY_FACT_VALUES = {
    "message_timeout": "30",
    "date_time": "2024-05-01T12:00:00.000Z",
    "bytes_per_message": "1048576",
    "items_per_message_get_report": "100",
    "items_per_message_set_variables": "100",
}
STATION_FACT_VALUES = {
    "available": "true",
    "availability_state": "Occupied",
    "problem": "false",
    "vendor_name": "ExampleVendor",
    "model": "Example Model",
    "serial_number": "SN-000123",
    "supply_phases": "3",
    "connector_type": "cType2",
    "charging_profiles_installed": "2",
}
# A 2.0.1 BasicAuthPassword a CSMS may set: 16-40 passwordString characters.
PASSWORD = "sim-factory-pass"


@pytest.fixture
def charger() -> ChargerConfiguration:
    return standard_configuration(connectors=2)


def _connector(row: VariableMapping) -> int:
    """The 1.6 connectorId a row is read for: 0 (the station) or connector 1."""
    return 0 if row.tier is Tier.STATION else 1


# --- every shipped row, both directions ----------------------------------------------


def test_the_shipped_table_has_its_86_rows() -> None:
    """The parametrized tests below cover the whole table, not a part of it."""
    assert len(ROWS) == 86
    assert len({row.identity for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_every_row_reads_a_realistic_value_valid_for_its_type(
    row: VariableMapping, charger: ChargerConfiguration
) -> None:
    """The value each row reports from a realistic charger is valid for the row's 2.0.1
    dataType, limits and valuesList (a CSMS can store it and write it back)."""
    if row.fixed is not None:
        value: str | None = row.fixed
    elif row.gateway is not None:
        value = GATEWAY_FACT_VALUES[row.gateway]
    elif row.key is None:
        assert row.station is not None
        value = STATION_FACT_VALUES[row.station]
    else:
        key = row.key_for(1)
        assert key is not None
        assert key in charger, f"the standard charger lacks {key}"
        raw = charger.value(key)
        value = value_from_v16(row, raw, _connector(row))
        if row.convert in (Convert.HEX_PASSWORD, Convert.MAX_LIMIT):
            # By design: a write-only password is never shown, and a max_limit key is the
            # variable's maxLimit, not its Actual value.
            assert value is None
            if row.convert is Convert.MAX_LIMIT:
                assert raw is not None
                assert max_limit_from_v16(row, raw) == float(int(raw))
            return
    assert value is not None, "a realistic charger value must read as a 2.0.1 value"
    check_value(row, value)


@pytest.mark.parametrize("row", [r for r in ROWS if r.writable], ids=_row_id)
def test_every_writable_row_writes_back_a_value_the_charger_accepts(
    row: VariableMapping, charger: ChargerConfiguration
) -> None:
    """A 2.0.1 value read from the realistic charger (or, for the write-only password, one
    a CSMS sets) becomes a 1.6 value the charger's ChangeConfiguration accepts."""
    key = row.key_for(1)
    assert key is not None, "only a 1.6 key can be written"
    if row.convert is Convert.HEX_PASSWORD:
        value = PASSWORD
    else:
        read = value_from_v16(row, charger.value(key), _connector(row))
        assert read is not None
        value = read
    written = value_to_v16(row, value)
    assert charger.is_valid(key, written), f"the charger refuses {key}={written!r}"
    if row.convert is not Convert.HEX_PASSWORD:
        assert value_from_v16(row, written, _connector(row)) == value


def test_writable_rows_are_exactly_the_keyed_read_write_and_write_only_rows() -> None:
    """The writable test above sees every row a CSMS can set (and nothing else)."""
    writable = [row for row in ROWS if row.writable]
    assert all(row.key is not None for row in writable)
    assert {row.mutability for row in writable} == {Mutability.READ_WRITE, Mutability.WRITE_ONLY}


# --- property: reversible rows round-trip --------------------------------------------

_REVERSIBLE_CONVERSIONS = {
    Convert.TEXT,
    Convert.BOOLEAN,
    Convert.INTEGER,
    Convert.DECIMAL,
    Convert.MEMBERS,
}
REVERSIBLE = [
    row
    for row in (*ROWS, *VENDOR_ROWS)
    if row.key is not None and row.writable and row.convert in _REVERSIBLE_CONVERSIONS
]


def _bound(limit: float | None) -> int | None:
    return None if limit is None else int(limit)


def _valid_values(row: VariableMapping) -> st.SearchStrategy[str]:
    """Values valid for the row's characteristics (2.0.1 §2.51)."""
    match row.data_type:
        case DataType.BOOLEAN:
            return st.sampled_from(["true", "false"])
        case DataType.INTEGER:
            return st.integers(_bound(row.min_limit), _bound(row.max_limit)).map(str)
        case DataType.DECIMAL:
            return st.decimals(
                min_value=None if row.min_limit is None else Decimal(str(row.min_limit)),
                max_value=None if row.max_limit is None else Decimal(str(row.max_limit)),
                allow_nan=False,
                allow_infinity=False,
                places=3,
            ).map(str)
        case DataType.MEMBER_LIST | DataType.SEQUENCE_LIST:
            return st.lists(st.sampled_from(row.values), unique=True).map(",".join)
        case DataType.OPTION_LIST:
            return st.sampled_from(row.values)
        case DataType.STRING:
            longest = CONFIGURATION_VALUE_LIMIT
            if row.max_limit is not None:
                longest = min(longest, int(row.max_limit))
            alphabet = st.characters(blacklist_characters=",")
            return st.text(alphabet, max_size=longest)
    raise AssertionError(f"no strategy for {row.data_type}")


def test_reversible_rows_cover_every_convertible_type() -> None:
    """The property below really sees booleans, integers, decimals, lists and text."""
    assert {row.data_type for row in REVERSIBLE} == {
        DataType.BOOLEAN,
        DataType.INTEGER,
        DataType.DECIMAL,
        DataType.MEMBER_LIST,
        DataType.OPTION_LIST,
        DataType.STRING,
    }


@pytest.mark.parametrize("row", REVERSIBLE, ids=_row_id)
@given(data=st.data())
def test_a_valid_value_round_trips_through_1_6(row: VariableMapping, data: st.DataObject) -> None:
    """value_from_v16(value_to_v16(v)) == v for every value the characteristics allow."""
    value = data.draw(_valid_values(row), label="value")
    assert value_from_v16(row, value_to_v16(row, value), _connector(row)) == value


# --- conversions, case by case -------------------------------------------------------


def _key_row(
    convert: Convert,
    data_type: DataType,
    *,
    mutability: Mutability = Mutability.READ_WRITE,
    **extra: object,
) -> VariableMapping:
    return VariableMapping(
        component="Test",
        variable="Value",
        data_type=data_type,
        mutability=mutability,
        key="TestKey",
        convert=convert,
        **extra,  # type: ignore[arg-type]
    )


BOOLEAN_ROW = _row("TxCtrlr", "StopTxOnInvalidId")
INTEGER_ROW = _row("OCPPCommCtrlr", "HeartbeatInterval")
MEASURANDS_ROW = _row("SampledDataCtrlr", "TxUpdatedMeasurands")
RATE_UNIT_ROW = _row("SmartChargingCtrlr", "RateUnit")
STATION_ROTATION_ROW = _row("ChargingStation", "PhaseRotation")
CONNECTOR_ROTATION_ROW = _row("Connector", "PhaseRotation")
PASSWORD_ROW = _row("SecurityCtrlr", "BasicAuthPassword")
ORGANIZATION_ROW = _row("SecurityCtrlr", "OrganizationName")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", "true"),
        ("True", "true"),
        ("1", "true"),
        (" TRUE ", "true"),
        ("false", "false"),
        ("FALSE", "false"),
        ("0", "false"),
        ("maybe", None),
        ("", None),
        ("truee", None),
    ],
)
def test_boolean_values_are_normalised(raw: str, expected: str | None) -> None:
    """1.6 booleans are free strings; 'True'/'1' seen in the field read as 'true', and an
    unreadable value as no value rather than a guess (config-keys.csv)."""
    assert value_from_v16(BOOLEAN_ROW, raw) == expected


def test_a_missing_1_6_value_reads_as_no_value() -> None:
    assert value_from_v16(BOOLEAN_ROW, None) is None
    assert value_from_v16(INTEGER_ROW, None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("300", "300"), (" 300 ", "300"), ("+300", "300"), ("-5", "-5"), ("0300", "300")],
)
def test_integers_are_read_without_spaces_or_sign_noise(raw: str, expected: str) -> None:
    assert value_from_v16(INTEGER_ROW, raw) == expected


@pytest.mark.parametrize("raw", ["3 00", "300s", "1.0", "", "0x10", "- 5"])
def test_an_unreadable_integer_reads_as_no_value(raw: str) -> None:
    assert value_from_v16(INTEGER_ROW, raw) is None


def test_decimals_are_read_as_given_when_finite() -> None:
    row = _key_row(Convert.DECIMAL, DataType.DECIMAL)
    assert value_from_v16(row, " 12.50 ") == "12.50"
    assert value_from_v16(row, "NaN") is None
    assert value_from_v16(row, "Infinity") is None
    assert value_from_v16(row, "twelve") is None


def test_measurands_drop_phase_suffixes_unknown_items_and_duplicates() -> None:
    """2.0.1 measurand lists are bare enum values: Voltage.L1 is Voltage; Temperature and
    RPM have no 2.0.1 counterpart; an item listed twice (via two phases) is one."""
    raw = (
        "Energy.Active.Import.Register,Voltage.L1,Voltage.L2,Temperature,RPM,"
        "Current.Import.L1-N,Power.Active.Import.N,Current.Import.L2,Voltage"
    )
    assert value_from_v16(MEASURANDS_ROW, raw) == (
        "Energy.Active.Import.Register,Voltage,Current.Import,Power.Active.Import"
    )


def test_measurand_items_are_matched_ignoring_case_and_spaces() -> None:
    """1.6 values are CiStrings: the 2.0.1 value uses the valuesList spelling."""
    assert value_from_v16(MEASURANDS_ROW, " voltage , soc ") == "Voltage,SoC"


def test_an_empty_measurand_list_is_an_empty_list() -> None:
    assert value_from_v16(MEASURANDS_ROW, "") == ""
    assert value_from_v16(MEASURANDS_ROW, "Temperature,RPM") == ""


def test_a_measurand_with_a_phase_cannot_be_written() -> None:
    """2.0.1 has no phase in its lists; the charger never sees Voltage.L1."""
    with pytest.raises(InvalidValue) as raised:
        value_to_v16(MEASURANDS_ROW, "Voltage.L1")
    assert raised.value.reason_code == "InvalidValue"


def test_rate_units_are_mapped_both_ways() -> None:
    """1.6 Current/Power are 2.0.1 A/W (errata 3.88), and back when written."""
    assert value_from_v16(RATE_UNIT_ROW, "Current,Power") == "A,W"
    assert value_from_v16(RATE_UNIT_ROW, "Power") == "W"
    assert value_to_v16(RATE_UNIT_ROW, "A") == "Current"
    assert value_to_v16(RATE_UNIT_ROW, "W,A") == "Power,Current"


def test_a_rate_unit_outside_the_values_list_is_refused() -> None:
    with pytest.raises(InvalidValue):
        value_to_v16(RATE_UNIT_ROW, "Current")


@pytest.mark.parametrize(
    ("raw", "connector", "expected"),
    [
        ("0.RST,1.RST,2.RTS", 0, "RST"),
        ("0.RST,1.RST,2.RTS", 1, "RST"),
        ("0.RST,1.RST,2.RTS", 2, "RTS"),
        ("0.RST, 1.NotApplicable, 2.TSR", 1, ""),
        ("0.Unknown,1.RST", 0, ""),
        (" 0 . SRT ", 0, "SRT"),
        ("0.RST,1.RST", 2, None),
        ("", 1, None),
    ],
)
def test_phase_rotation_is_the_entry_of_the_connector(
    raw: str, connector: int, expected: str | None
) -> None:
    """ConnectorPhaseRotation "0.RST,1.RTS": each component reports its own entry;
    NotApplicable/Unknown is the empty string (2.0.1 §2.13.5); no entry, no value."""
    assert value_from_v16(CONNECTOR_ROTATION_ROW, raw, connector) == expected


def test_the_station_phase_rotation_is_entry_0() -> None:
    assert value_from_v16(STATION_ROTATION_ROW, "1.RTS,0.TRS", None) == "TRS"


def test_profile_flag_says_whether_the_profile_is_listed() -> None:
    row = _row("SmartChargingCtrlr", "Available")
    assert value_from_v16(row, "Core,SmartCharging") == "true"
    assert value_from_v16(row, " core , smartcharging ") == "true"
    assert value_from_v16(row, "Core,Reservation") == "false"
    assert value_from_v16(row, "Core,SmartChargingX") == "false"
    assert value_from_v16(row, "") == "false"
    assert value_from_v16(row, None) is None


def test_key_present_is_true_whatever_the_value() -> None:
    """In 1.6 the key's existence means the feature exists (AuthCacheCtrlr.Available)."""
    row = _row("AuthCacheCtrlr", "Available")
    assert value_from_v16(row, "false") == "true"
    assert value_from_v16(row, None) == "true"


def test_max_limit_rows_have_no_actual_value_but_a_max_limit() -> None:
    row = _row("LocalAuthListCtrlr", "Entries")
    assert value_from_v16(row, "1000") is None
    assert max_limit_from_v16(row, "1000") == 1000.0
    assert max_limit_from_v16(row, " 250 ") == 250.0


def test_max_limit_falls_back_to_the_row_limit() -> None:
    """An unreadable or missing charger value leaves the row's own maxLimit."""
    own = _key_row(
        Convert.MAX_LIMIT, DataType.INTEGER, mutability=Mutability.READ_ONLY, max_limit=50.0
    )
    assert max_limit_from_v16(own, "many") == 50.0
    assert max_limit_from_v16(own, None) == 50.0
    assert max_limit_from_v16(_row("LocalAuthListCtrlr", "Entries"), "many") is None
    # Only max_limit rows take their maxLimit from the charger.
    assert max_limit_from_v16(_row("SecurityCtrlr", "MaxCertificateChainSize"), "5") == 10000.0


def test_a_password_is_sent_to_1_6_as_hex() -> None:
    """2.0.1 BasicAuthPassword is the password; 1.6 AuthorizationKey its bytes in hex."""
    assert value_to_v16(PASSWORD_ROW, PASSWORD) == "73696d2d666163746f72792d70617373"
    longest = "Ab0*-_=:+|@." + "x" * 28
    assert len(longest) == 40
    assert bytes.fromhex(value_to_v16(PASSWORD_ROW, longest)).decode() == longest


def test_a_password_is_never_read() -> None:
    assert value_from_v16(PASSWORD_ROW, "73696d2d666163746f72792d70617373") is None


@pytest.mark.parametrize(
    "password",
    [
        "short-password1",
        "x" * 41,
        "with space in it!",
        "semicolon;is;not;allowed",
        "pässwordpässword",
    ],
)
def test_a_password_outside_the_password_string_rules_is_refused(password: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        value_to_v16(PASSWORD_ROW, password)
    assert raised.value.reason_code == "InvalidValue"


@pytest.mark.parametrize(
    ("row", "value", "reason"),
    [
        (INTEGER_ROW, "0", "ValueTooLow"),
        (INTEGER_ROW, "-1", "ValueTooLow"),
        (INTEGER_ROW, "ten", "InvalidValue"),
        (INTEGER_ROW, "1.5", "InvalidValue"),
        (_row("SecurityCtrlr", "MaxCertificateChainSize"), "10001", "ValueTooHigh"),
        (BOOLEAN_ROW, "True", "InvalidValue"),
        (BOOLEAN_ROW, "1", "InvalidValue"),
        (_row("OCPPCommCtrlr", "PublicKeyWithSignedMeterValue"), "never", "InvalidValue"),
        (MEASURANDS_ROW, "Voltage,Voltage", "InvalidValue"),
        (MEASURANDS_ROW, "Voltage,Temperature", "InvalidValue"),
        (
            _key_row(Convert.DECIMAL, DataType.DECIMAL, min_limit=0.0, max_limit=100.0),
            "100.5",
            "ValueTooHigh",
        ),
        (
            _key_row(Convert.DECIMAL, DataType.DECIMAL, min_limit=0.0, max_limit=100.0),
            "-0.1",
            "ValueTooLow",
        ),
        (_key_row(Convert.DECIMAL, DataType.DECIMAL), "NaN", "InvalidValue"),
        (_key_row(Convert.TEXT, DataType.STRING, max_limit=5.0), "toolong", "ValueTooHigh"),
    ],
)
def test_check_value_gives_the_reason_code(row: VariableMapping, value: str, reason: str) -> None:
    """The 2.0.1 ReasonCode a refused SetVariables value gets (Appendix 5)."""
    with pytest.raises(InvalidValue) as raised:
        check_value(row, value)
    assert raised.value.reason_code == reason
    assert raised.value.info


@pytest.mark.parametrize(
    ("row", "value"),
    [
        (INTEGER_ROW, "1"),
        (_row("SecurityCtrlr", "MaxCertificateChainSize"), "10000"),
        (MEASURANDS_ROW, ""),
        (MEASURANDS_ROW, "Voltage, SoC"),
        (_key_row(Convert.TEXT, DataType.STRING, max_limit=5.0), "short"),
        (_key_row(Convert.DECIMAL, DataType.DECIMAL, min_limit=0.0, max_limit=100.0), "100"),
    ],
)
def test_check_value_accepts_values_at_the_limits(row: VariableMapping, value: str) -> None:
    check_value(row, value)


_DECIMAL_ROW = _key_row(Convert.DECIMAL, DataType.DECIMAL)


@pytest.mark.parametrize(
    ("row", "value"),
    [
        (INTEGER_ROW, "\u0661\u0662\u0663"),  # Arabic-Indic 123
        (INTEGER_ROW, "\uff11\uff12"),  # fullwidth 12
        (_DECIMAL_ROW, "1_000"),
        (_DECIMAL_ROW, " 1.5"),
    ],
)
def test_only_ascii_numbers_are_integers_and_decimals(row: VariableMapping, value: str) -> None:
    """2.0.1 integer and decimal values are plain ASCII numbers (§2.1.4), and a 1.6
    configuration value is printable ASCII: anything else is refused, not forwarded."""
    with pytest.raises(InvalidValue) as raised:
        value_to_v16(row, value)
    assert raised.value.reason_code == "InvalidValue"


def test_a_1_6_value_holds_at_most_500_characters() -> None:
    """ChangeConfiguration.value is CiString500 in 1.6; a longer 2.0.1 value (SetVariables
    allows 1000) is refused before the charger sees it."""
    assert value_to_v16(ORGANIZATION_ROW, "a" * 500) == "a" * 500
    with pytest.raises(InvalidValue) as raised:
        value_to_v16(ORGANIZATION_ROW, "a" * 501)
    assert raised.value.reason_code == "ValueTooHigh"


def test_value_to_v16_checks_the_characteristics_first() -> None:
    with pytest.raises(InvalidValue) as raised:
        value_to_v16(INTEGER_ROW, "0")
    assert raised.value.reason_code == "ValueTooLow"


# --- rows and vendor files -----------------------------------------------------------


def test_key_for_fills_in_the_connector() -> None:
    row = _row("FiscalMetering", "PublicKey")
    assert row.key_for(2) == "MeterPublicKey2"
    assert row.key_for(None) == "MeterPublicKey0"
    assert INTEGER_ROW.key_for(2) == "HeartbeatInterval"


def test_mapped_keys_are_casefolded_with_placeholders() -> None:
    keys = _TABLES.device_model.mapped_keys()
    assert "heartbeatinterval" in keys
    assert "meterpublickey{connector}" in keys
    assert "ledbrightness" not in keys


def _plain(
    variable: str, *, key: str | None = None, instance: str | None = None, reboot: bool = False
) -> VariableMapping:
    return VariableMapping(
        component="OCPPCommCtrlr",
        variable=variable,
        variable_instance=instance,
        data_type=DataType.INTEGER,
        mutability=Mutability.READ_WRITE,
        key=key or variable,
        reboot=reboot,
    )


def test_apply_vendor_replaces_in_place_appends_and_takes_the_facts() -> None:
    base = DeviceModel((_plain("A"), _plain("B"), _plain("C")), vendor_component="Vendor16")
    replacement = _plain("B", reboot=True, key="VendorB")
    added = _plain("D")
    facts = StationFacts(supply_phases=1, connector_type="sType2")
    vendor = VendorDeviceModel("V", None, facts, (added, replacement))
    applied = apply_vendor(base, vendor)
    assert [row.variable for row in applied.variables] == ["A", "B", "C", "D"]
    assert applied.variables[1] is replacement
    assert applied.variables[3] is added
    assert applied.facts == facts
    assert applied.vendor_component == "Vendor16"
    assert base.variables[1].key == "B", "the default rows are not changed"


def test_apply_vendor_tells_instances_apart() -> None:
    """Identity includes the variable instance: a vendor row for another instance adds."""
    base = DeviceModel((_plain("A", instance="One"),))
    other = _plain("A", instance="Two")
    applied = apply_vendor(base, VendorDeviceModel("V", None, StationFacts(), (other,)))
    assert [row.variable_instance for row in applied.variables] == ["One", "Two"]


def test_no_vendor_file_leaves_the_default() -> None:
    base = DeviceModel((_plain("A"),))
    assert apply_vendor(base, None) is base
