"""Tests for gateway.mappings: loading mappings/*.toml and naming file and entry on errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from ocpp.v16.enums import ChargePointErrorCode
from ocpp.v201.enums import IdTokenEnumType

from gateway.mappings import (
    ERROR_CODES_FILE,
    ID_TOKENS_FILE,
    METER_QUIRKS_FILE,
    MappingError,
    default_mappings_dir,
    load_tables,
)
from gateway.translate.tables import (
    IdTokenRule,
    IdTokenRules,
    MeterQuirks,
    Tier,
    TranslationTables,
    VendorIdTokenRules,
    VendorMeterQuirks,
)
from gateway.variable_mappings import DEVICE_MODEL_FILE, VENDORS_DIR

ERROR_CODES = sorted(code.value for code in ChargePointErrorCode if code.value != "NoError")
TOKEN_TYPES = {t.value for t in IdTokenEnumType}


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    """A writable copy of the shipped mapping files, for breaking one of them."""
    for name in (ERROR_CODES_FILE, ID_TOKENS_FILE, METER_QUIRKS_FILE, DEVICE_MODEL_FILE):
        shutil.copy(default_mappings_dir() / name, tmp_path / name)
    shutil.copytree(default_mappings_dir() / VENDORS_DIR, tmp_path / VENDORS_DIR)
    return tmp_path


def _error_codes_toml(rows: dict[str, dict[str, str]]) -> str:
    return "".join(
        f"[{code}]\n" + "".join(f'{key} = "{value}"\n' for key, value in row.items()) + "\n"
        for code, row in rows.items()
    )


def _shipped_error_rows() -> dict[str, dict[str, str]]:
    tables = load_tables()
    return {
        code: {"component": e.component, "variable": e.variable, "tier": e.tier.value}
        for code, e in tables.error_events.items()
    }


def _load_error(directory: Path) -> str:
    with pytest.raises(MappingError) as caught:
        load_tables(directory)
    return str(caught.value)


# --- the shipped tables -------------------------------------------------------------


def test_shipped_tables_load() -> None:
    """The tables in mappings/ validate and build TranslationTables."""
    tables = load_tables()
    assert isinstance(tables, TranslationTables)
    assert tables.id_tokens.default == "Local"
    assert [rule.token_type for rule in tables.id_tokens.rules] == ["ISO14443", "ISO15693", "eMAID"]
    assert tables.vendor_id_tokens == ()
    assert tables.meter_quirks == MeterQuirks(
        numeric_values=True, unit_spelling=True, energy_kwh_as_wh=False
    )
    assert tables.vendor_meter_quirks == ()


def test_shipped_error_table_has_exactly_the_1_6_error_codes_but_no_error() -> None:
    """Every 1.6 errorCode except NoError has one row, and nothing else has one."""
    assert sorted(load_tables().error_events) == ERROR_CODES


@pytest.mark.parametrize("code", ERROR_CODES)
def test_every_1_6_error_code_has_a_usable_row(code: str) -> None:
    """Each row names a 2.0.1 component and variable (identifierString[50]) and a tier."""
    event = load_tables().error_events[code]
    assert 0 < len(event.component) <= 50
    assert 0 < len(event.variable) <= 50
    assert isinstance(event.tier, Tier)


def test_connector_lock_failure_follows_the_normative_g05_pattern() -> None:
    """G05.FR.02: ConnectorPlugRetentionLock.Problem, reported on the connector."""
    event = load_tables().error_events["ConnectorLockFailure"]
    assert (event.component, event.variable, event.tier) == (
        "ConnectorPlugRetentionLock",
        "Problem",
        Tier.CONNECTOR,
    )


def test_load_tables_reads_a_given_directory(mappings: Path) -> None:
    """A directory with valid copies loads the same tables as the shipped one."""
    assert load_tables(mappings) == load_tables()


# --- broken error_codes.toml --------------------------------------------------------


def test_unknown_error_code_section_names_file_and_section(mappings: Path) -> None:
    """A section that is not a 1.6 ChargePointErrorCode is refused by name."""
    rows = _shipped_error_rows()
    rows["Flux Capacitor"] = {"component": "ChargingStation", "variable": "Problem"}
    (mappings / ERROR_CODES_FILE).write_text(
        _error_codes_toml(rows).replace("[Flux Capacitor]", '["Flux Capacitor"]')
    )
    message = _load_error(mappings)
    assert ERROR_CODES_FILE in message
    assert "[Flux Capacitor]" in message


def test_no_error_section_is_refused(mappings: Path) -> None:
    """NoError clears faults; it has no NotifyEvent row of its own."""
    rows = _shipped_error_rows()
    rows["NoError"] = {"component": "ChargingStation", "variable": "Problem", "tier": "station"}
    (mappings / ERROR_CODES_FILE).write_text(_error_codes_toml(rows))
    message = _load_error(mappings)
    assert ERROR_CODES_FILE in message
    assert "[NoError]" in message


def test_bad_tier_names_file_entry_and_field(mappings: Path) -> None:
    """A tier other than station/evse/connector is refused with its section and field."""
    rows = _shipped_error_rows()
    rows["GroundFailure"]["tier"] = "socket"
    (mappings / ERROR_CODES_FILE).write_text(_error_codes_toml(rows))
    message = _load_error(mappings)
    assert ERROR_CODES_FILE in message
    assert "[GroundFailure] tier" in message


def test_component_name_longer_than_50_is_refused(mappings: Path) -> None:
    """2.0.1 component names are identifierString[50]; a longer one is refused."""
    rows = _shipped_error_rows()
    rows["WeakSignal"]["component"] = "C" * 51
    (mappings / ERROR_CODES_FILE).write_text(_error_codes_toml(rows))
    message = _load_error(mappings)
    assert ERROR_CODES_FILE in message
    assert "[WeakSignal] component" in message


def test_misspelled_key_in_a_row_is_refused(mappings: Path) -> None:
    """Unknown keys are errors, so a typo cannot silently drop a field."""
    rows = _shipped_error_rows()
    rows["OverVoltage"]["varaible"] = rows["OverVoltage"].pop("variable")
    (mappings / ERROR_CODES_FILE).write_text(_error_codes_toml(rows))
    message = _load_error(mappings)
    assert ERROR_CODES_FILE in message
    assert "[OverVoltage] varaible" in message
    assert "[OverVoltage] variable" in message


def test_missing_error_code_row_names_file_and_code(mappings: Path) -> None:
    """Every 1.6 errorCode must have a row; a missing one is named."""
    rows = _shipped_error_rows()
    del rows["WeakSignal"]
    del rows["ReaderFailure"]
    (mappings / ERROR_CODES_FILE).write_text(_error_codes_toml(rows))
    message = _load_error(mappings)
    assert ERROR_CODES_FILE in message
    assert "ReaderFailure, WeakSignal" in message


def test_invalid_toml_in_error_codes_names_the_file_and_line(mappings: Path) -> None:
    """A TOML syntax error is reported with the file and where in it."""
    (mappings / ERROR_CODES_FILE).write_text('[GroundFailure]\ncomponent = "RCD\n')
    message = _load_error(mappings)
    assert ERROR_CODES_FILE in message
    assert "invalid TOML" in message
    assert "line 2" in message


@pytest.mark.parametrize("name", [ERROR_CODES_FILE, ID_TOKENS_FILE, METER_QUIRKS_FILE])
def test_missing_file_is_named(mappings: Path, name: str) -> None:
    """A mapping file that does not exist is reported by path."""
    (mappings / name).unlink()
    message = _load_error(mappings)
    assert name in message
    assert "not found" in message


# --- broken id_tokens.toml ----------------------------------------------------------


def _write_id_tokens(directory: Path, text: str) -> None:
    (directory / ID_TOKENS_FILE).write_text(text)


def test_invalid_regex_names_file_and_rule(mappings: Path) -> None:
    """A rule whose pattern does not compile is refused with its index."""
    _write_id_tokens(
        mappings,
        'default = "Local"\n\n'
        '[[rule]]\npattern = "[0-9]{8}"\ntype = "ISO14443"\n\n'
        '[[rule]]\npattern = "[0-9A-F"\ntype = "ISO15693"\n',
    )
    message = _load_error(mappings)
    assert ID_TOKENS_FILE in message
    assert "rule.1.pattern" in message
    assert "not a regular expression" in message


def test_unknown_token_type_in_a_rule_names_file_and_rule(mappings: Path) -> None:
    """A rule type that is not an IdTokenEnumType is refused with its index and value."""
    _write_id_tokens(
        mappings, 'default = "Local"\n\n[[rule]]\npattern = "[0-9]{8}"\ntype = "RFID"\n'
    )
    message = _load_error(mappings)
    assert ID_TOKENS_FILE in message
    assert "rule.0.type" in message
    assert "'RFID'" in message


def test_unknown_default_token_type_is_refused(mappings: Path) -> None:
    """The default type must be an IdTokenEnumType too (case matters: eMAID, not EMAID)."""
    _write_id_tokens(mappings, 'default = "EMAID"\n')
    message = _load_error(mappings)
    assert ID_TOKENS_FILE in message
    assert "default" in message
    assert "'EMAID'" in message


def test_unknown_token_type_in_a_vendor_override_names_the_vendor_entry(mappings: Path) -> None:
    """A vendor override with an unknown type is refused with its vendor index."""
    _write_id_tokens(
        mappings,
        'default = "Local"\n\n'
        '[[vendor]]\nvendor = "ACME"\ndefault = "ISO14443"\n\n'
        '[[vendor]]\nvendor = "Other"\ndefault = "Badge"\n',
    )
    message = _load_error(mappings)
    assert ID_TOKENS_FILE in message
    assert "vendor.1.default" in message


def test_invalid_toml_in_id_tokens_names_the_file(mappings: Path) -> None:
    """A TOML syntax error in id_tokens.toml is reported with that file."""
    _write_id_tokens(mappings, 'default = "Local"\n[[rule]\n')
    message = _load_error(mappings)
    assert ID_TOKENS_FILE in message
    assert "invalid TOML" in message


# --- vendor overrides ---------------------------------------------------------------


def _rules(default: str) -> IdTokenRules:
    return IdTokenRules(rules=(), default=default)


DEFAULT_RULES = IdTokenRules(
    rules=(IdTokenRule(re.compile("[0-9A-F]{8}"), "ISO14443"),), default="Local"
)
VENDOR_ONLY = _rules("KeyCode")
VENDOR_AND_MODEL = _rules("ISO15693")
OTHER_MODEL = _rules("MacAddress")


@pytest.fixture(params=["model first", "vendor first"])
def tables(request: pytest.FixtureRequest) -> TranslationTables:
    """Tables with a vendor-wide and a vendor+model override, listed in either order."""
    entries = [
        VendorIdTokenRules("ACME", "Wallbox 22", VENDOR_AND_MODEL),
        VendorIdTokenRules("ACME", "Pillar", OTHER_MODEL),
        VendorIdTokenRules("ACME", None, VENDOR_ONLY),
    ]
    if request.param == "vendor first":
        entries.reverse()
    return TranslationTables(
        error_events={}, id_tokens=DEFAULT_RULES, vendor_id_tokens=tuple(entries)
    )


def test_vendor_and_model_override_wins(tables: TranslationTables) -> None:
    """A station matching vendor and model gets that entry's rules."""
    assert tables.id_token_rules_for("ACME", "Wallbox 22") is VENDOR_AND_MODEL


def test_vendor_override_applies_to_other_models(tables: TranslationTables) -> None:
    """A station of that vendor with an unlisted model gets the vendor-wide rules."""
    assert tables.id_token_rules_for("ACME", "Mini") is VENDOR_ONLY
    assert tables.id_token_rules_for("ACME", None) is VENDOR_ONLY


def test_other_vendors_get_the_default_rules(tables: TranslationTables) -> None:
    """A different vendor, or no vendor known yet, gets the default rules."""
    assert tables.id_token_rules_for("Other", "Wallbox 22") is DEFAULT_RULES
    assert tables.id_token_rules_for(None, "Wallbox 22") is DEFAULT_RULES


def test_vendor_and_model_match_ignores_case(tables: TranslationTables) -> None:
    """1.6 CiString fields are case-insensitive, so the match is too."""
    assert tables.id_token_rules_for("acme", "WALLBOX 22") is VENDOR_AND_MODEL
    assert tables.id_token_rules_for("Acme", "mini") is VENDOR_ONLY


def test_model_override_without_vendor_wide_entry_falls_back_to_default() -> None:
    """With only a vendor+model entry, other models of that vendor get the default rules."""
    tables = TranslationTables(
        error_events={},
        id_tokens=DEFAULT_RULES,
        vendor_id_tokens=(VendorIdTokenRules("ACME", "Wallbox 22", VENDOR_AND_MODEL),),
    )
    assert tables.id_token_rules_for("ACME", "Mini") is DEFAULT_RULES
    assert tables.id_token_rules_for("ACME", "Wallbox 22") is VENDOR_AND_MODEL


def test_vendor_overrides_load_from_toml(mappings: Path) -> None:
    """[[vendor]] tables are loaded and chosen by vendor and model."""
    _write_id_tokens(
        mappings,
        'default = "Local"\n\n'
        '[[rule]]\npattern = "[0-9A-Fa-f]{8}"\ntype = "ISO14443"\n\n'
        '[[vendor]]\nvendor = "ACME"\ndefault = "KeyCode"\n\n'
        '[[vendor]]\nvendor = "ACME"\nmodel = "Wallbox 22"\ndefault = "ISO14443"\n'
        'rules = [ { pattern = "[0-9]{10}", type = "ISO15693" } ]\n',
    )
    tables = load_tables(mappings)
    assert tables.id_token_rules_for("acme", "wallbox 22").infer("0123456789") == "ISO15693"
    assert tables.id_token_rules_for("acme", "wallbox 22").infer("DEADBEEF") == "ISO14443"
    assert tables.id_token_rules_for("ACME", "Mini").infer("DEADBEEF") == "KeyCode"
    assert tables.id_token_rules_for("Other", None).infer("DEADBEEF") == "ISO14443"
    assert tables.id_token_rules_for("Other", None).infer("0123456789") == "Local"


# --- rule inference with the shipped table ------------------------------------------


@pytest.mark.parametrize(
    ("id_tag", "token_type"),
    [
        ("04A1B2C3", "ISO14443"),  # 4-byte UID
        ("04a1b2c3d4e5f6", "ISO14443"),  # 7-byte UID, lower case
        ("E004010012345678", "ISO15693"),  # 8-byte UID
        ("DE-ABC-C12345678-X", "eMAID"),
        ("DEABCC123456789", "eMAID"),  # no separators, 15 characters, not all hex
        ("04A1B2C", "Local"),  # 7 hex digits: no whole UID
        ("04A1B2C3D4", "Local"),  # 10 hex digits
        ("driver-card-7", "Local"),
        ("", "Local"),
    ],
)
def test_shipped_rules_infer_the_token_type_from_the_whole_tag(
    id_tag: str, token_type: str
) -> None:
    """The first rule matching the whole idTag wins, else the default (id_tokens.toml)."""
    inferred = load_tables().id_tokens.infer(id_tag)
    assert inferred == token_type
    assert inferred in TOKEN_TYPES


# --- meter_quirks.toml --------------------------------------------------------------


def _write_meter_quirks(directory: Path, text: str) -> None:
    (directory / METER_QUIRKS_FILE).write_text(text)


def test_unknown_key_in_meter_quirks_default_names_file_and_key(mappings: Path) -> None:
    """A misspelled flag is an error, not a silently ignored line."""
    _write_meter_quirks(mappings, "[default]\nnumeric_value = true\n")
    message = _load_error(mappings)
    assert METER_QUIRKS_FILE in message
    assert "default.numeric_value" in message


def test_unknown_key_in_a_meter_quirks_vendor_entry_names_the_entry(mappings: Path) -> None:
    """An unknown key in the second [[vendor]] entry is reported with its index."""
    _write_meter_quirks(
        mappings,
        '[[vendor]]\nvendor = "ACME"\nenergy_kwh_as_wh = true\n\n'
        '[[vendor]]\nvendor = "Other"\nkwh_as_wh = true\n',
    )
    message = _load_error(mappings)
    assert METER_QUIRKS_FILE in message
    assert "vendor.1.kwh_as_wh" in message


@pytest.mark.parametrize("value", ['"yes"', "1", '"true"'])
def test_meter_quirk_flag_of_the_wrong_type_names_the_entry_and_flag(
    mappings: Path, value: str
) -> None:
    """Flags are TOML booleans; "yes", 1 or "true" are refused, not coerced."""
    _write_meter_quirks(mappings, f'[[vendor]]\nvendor = "ACME"\nunit_spelling = {value}\n')
    message = _load_error(mappings)
    assert METER_QUIRKS_FILE in message
    assert "vendor.0.unit_spelling" in message


def test_meter_quirks_vendor_entry_needs_a_vendor(mappings: Path) -> None:
    """An entry without a vendor would match no station: refused."""
    _write_meter_quirks(mappings, '[[vendor]]\nmodel = "Wallbox 22"\nnumeric_values = false\n')
    message = _load_error(mappings)
    assert METER_QUIRKS_FILE in message
    assert "vendor.0.vendor" in message


def test_duplicate_meter_quirks_entries_are_refused(mappings: Path) -> None:
    """Two entries for the same vendor and model (ignoring case) would be ambiguous."""
    _write_meter_quirks(
        mappings,
        '[[vendor]]\nvendor = "ACME"\nmodel = "Wallbox 22"\n\n'
        '[[vendor]]\nvendor = "ACME"\n\n'
        '[[vendor]]\nvendor = "acme"\nmodel = "WALLBOX 22"\n',
    )
    message = _load_error(mappings)
    assert METER_QUIRKS_FILE in message
    assert "vendor.2" in message
    assert "vendor.0" in message


def test_invalid_toml_in_meter_quirks_names_the_file(mappings: Path) -> None:
    """A TOML syntax error in meter_quirks.toml is reported with that file."""
    _write_meter_quirks(mappings, "[default\n")
    message = _load_error(mappings)
    assert METER_QUIRKS_FILE in message
    assert "invalid TOML" in message


def test_vendor_meter_quirks_load_and_inherit_unlisted_flags_from_default(
    mappings: Path,
) -> None:
    """A vendor entry changes only the flags it lists; the others come from [default]."""
    _write_meter_quirks(
        mappings,
        "[default]\nnumeric_values = false\n\n"
        '[[vendor]]\nvendor = "ACME"\nmodel = "Wallbox 22"\nenergy_kwh_as_wh = true\n\n'
        '[[vendor]]\nvendor = "ACME"\nunit_spelling = false\n',
    )
    tables = load_tables(mappings)
    assert tables.meter_quirks == MeterQuirks(
        numeric_values=False, unit_spelling=True, energy_kwh_as_wh=False
    )
    assert tables.vendor_meter_quirks == (
        VendorMeterQuirks("ACME", "Wallbox 22", MeterQuirks(False, True, True)),
        VendorMeterQuirks("ACME", None, MeterQuirks(False, False, False)),
    )
    assert tables.meter_quirks_for("acme", "wallbox 22") == MeterQuirks(False, True, True)
    assert tables.meter_quirks_for("ACME", "Mini") == MeterQuirks(False, False, False)
    assert tables.meter_quirks_for("Other", "Wallbox 22") == tables.meter_quirks


def test_empty_meter_quirks_file_means_the_built_in_defaults(mappings: Path) -> None:
    """Flags left out of [default] (or no [default] at all) take the documented values."""
    _write_meter_quirks(mappings, "")
    tables = load_tables(mappings)
    assert tables.meter_quirks == MeterQuirks(
        numeric_values=True, unit_spelling=True, energy_kwh_as_wh=False
    )


DEFAULT_QUIRKS = MeterQuirks()
VENDOR_QUIRKS = MeterQuirks(numeric_values=False)
MODEL_QUIRKS = MeterQuirks(energy_kwh_as_wh=True)
OTHER_MODEL_QUIRKS = MeterQuirks(unit_spelling=False)


@pytest.fixture(params=["model first", "vendor first"])
def quirk_tables(request: pytest.FixtureRequest) -> TranslationTables:
    """Tables with vendor-wide and vendor+model meter quirks, listed in either order."""
    entries = [
        VendorMeterQuirks("ACME", "Wallbox 22", MODEL_QUIRKS),
        VendorMeterQuirks("ACME", "Pillar", OTHER_MODEL_QUIRKS),
        VendorMeterQuirks("ACME", None, VENDOR_QUIRKS),
    ]
    if request.param == "vendor first":
        entries.reverse()
    return TranslationTables(
        error_events={},
        id_tokens=DEFAULT_RULES,
        meter_quirks=DEFAULT_QUIRKS,
        vendor_meter_quirks=tuple(entries),
    )


def test_meter_quirks_vendor_and_model_entry_wins(quirk_tables: TranslationTables) -> None:
    """A station matching vendor and model gets that entry, whatever the order."""
    assert quirk_tables.meter_quirks_for("ACME", "Wallbox 22") is MODEL_QUIRKS
    assert quirk_tables.meter_quirks_for("ACME", "Pillar") is OTHER_MODEL_QUIRKS


def test_meter_quirks_vendor_entry_applies_to_other_models(
    quirk_tables: TranslationTables,
) -> None:
    """Another model of that vendor, or an unknown model, gets the vendor-wide entry."""
    assert quirk_tables.meter_quirks_for("ACME", "Mini") is VENDOR_QUIRKS
    assert quirk_tables.meter_quirks_for("ACME", None) is VENDOR_QUIRKS


def test_meter_quirks_match_ignores_case(quirk_tables: TranslationTables) -> None:
    """1.6 chargePointVendor/Model are CiString: case-insensitive."""
    assert quirk_tables.meter_quirks_for("acme", "WALLBOX 22") is MODEL_QUIRKS
    assert quirk_tables.meter_quirks_for("Acme", "mini") is VENDOR_QUIRKS


def test_other_vendors_get_the_default_meter_quirks(quirk_tables: TranslationTables) -> None:
    """A different vendor, or none known yet (before BootNotification), gets [default]."""
    assert quirk_tables.meter_quirks_for("Other", "Wallbox 22") is DEFAULT_QUIRKS
    assert quirk_tables.meter_quirks_for(None, None) is DEFAULT_QUIRKS


def test_meter_quirks_default_to_the_built_in_values_when_not_given() -> None:
    """TranslationTables built without meter quirks (older callers) get the defaults."""
    tables = TranslationTables(error_events={}, id_tokens=DEFAULT_RULES)
    assert tables.meter_quirks_for("ACME", "Wallbox 22") == MeterQuirks(
        numeric_values=True, unit_spelling=True, energy_kwh_as_wh=False
    )
