"""Tests for the 1.6 charger configuration of the ChargerSim (and ChargerSim.reboot)."""

from __future__ import annotations

import asyncio
import base64
import json
from importlib.resources import files
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from gateway.sim import ChargerConfiguration, ChargerSim, ConfigKey, standard_configuration
from gateway.sim.configuration import MEASURANDS, PHASES, meter_public_key
from gateway.sim.wire import JsonObject, default_validator
from tests.sim.test_charger_sim import BOOT_RESPONSE, HandCentral, recv_frame, send_frame

SECRET = b"sim-factory-pass".hex().upper()

#: Every key of the standard charger with its 1.6 readonly flag (connector keys for 2).
STANDARD_KEYS: dict[str, bool] = {
    "AllowOfflineTxForUnknownId": False,
    "AuthorizationCacheEnabled": False,
    "AuthorizeRemoteTxRequests": True,
    "BlinkRepeat": False,
    "ClockAlignedDataInterval": False,
    "ConnectionTimeOut": False,
    "ConnectorPhaseRotation": False,
    "ConnectorPhaseRotationMaxLength": True,
    "GetConfigurationMaxKeys": True,
    "HeartbeatInterval": False,
    "LightIntensity": False,
    "LocalAuthorizeOffline": False,
    "LocalPreAuthorize": False,
    "MaxEnergyOnInvalidId": False,
    "MeterValuesAlignedData": False,
    "MeterValuesAlignedDataMaxLength": True,
    "MeterValuesSampledData": False,
    "MeterValuesSampledDataMaxLength": True,
    "MeterValueSampleInterval": False,
    "MinimumStatusDuration": False,
    "NumberOfConnectors": True,
    "ResetRetries": False,
    "StopTransactionMaxMeterValues": True,
    "StopTransactionOnEVSideDisconnect": False,
    "StopTransactionOnInvalidId": False,
    "StopTxnAlignedData": False,
    "StopTxnAlignedDataMaxLength": True,
    "StopTxnSampledData": False,
    "StopTxnSampledDataMaxLength": True,
    "SupportedFeatureProfiles": True,
    "SupportedFeatureProfilesMaxLength": True,
    "TransactionMessageAttempts": False,
    "TransactionMessageRetryInterval": False,
    "UnlockConnectorOnEVSideDisconnect": False,
    "WebSocketPingInterval": False,
    "LocalAuthListEnabled": False,
    "LocalAuthListMaxLength": True,
    "SendLocalListMaxLength": True,
    "ReserveConnectorZeroSupported": True,
    "ChargeProfileMaxStackLevel": True,
    "ChargingScheduleAllowedChargingRateUnit": True,
    "ChargingScheduleMaxPeriods": True,
    "ConnectorSwitch3to1PhaseSupported": True,
    "MaxChargingProfilesInstalled": True,
    "SupportedFileTransferProtocols": True,
    "AdditionalRootCertificateCheck": True,
    "AuthorizationKey": False,
    "CertificateSignedMaxChainSize": True,
    "CertificateStoreMaxLength": True,
    "CpoName": False,
    "SecurityProfile": False,
    "CentralContractValidationAllowed": False,
    "CertSigningRepeatTimes": False,
    "CertSigningWaitMinimum": False,
    "ContractValidationOffline": False,
    "ISO15118PnCEnabled": False,
    "AlignedDataSignReadings": False,
    "AlignedDataSignUpdatedReadings": False,
    "PublicKeyWithSignedMeterValue": False,
    "SampledDataSignReadings": False,
    "SampledDataSignStartedReadings": False,
    "SampledDataSignUpdatedReadings": False,
    "StartTxnSampledData": False,
    "MeterPublicKey1": True,
    "MeterPublicKey2": True,
    "LedBrightness": False,
    "VendorSerialPrefix": True,
}


def get(config: ChargerConfiguration, keys: list[str] | None = None) -> JsonObject:
    """GetConfiguration through the handler, checked against the 1.6 schemas."""
    request: JsonObject = {} if keys is None else {"key": keys}
    assert default_validator().errors("1.6", "GetConfiguration", "request", request) == []
    answer = config.handlers()["GetConfiguration"](request)
    assert isinstance(answer, dict)
    assert default_validator().errors("1.6", "GetConfiguration", "response", answer) == []
    return answer


def change(config: ChargerConfiguration, key: str, value: str) -> str:
    """ChangeConfiguration through the handler, checked against the 1.6 schemas; the status."""
    request = {"key": key, "value": value}
    assert default_validator().errors("1.6", "ChangeConfiguration", "request", request) == []
    answer = config.handlers()["ChangeConfiguration"](request)
    assert isinstance(answer, dict)
    assert default_validator().errors("1.6", "ChangeConfiguration", "response", answer) == []
    status: str = answer["status"]
    return status


def listed(answer: JsonObject) -> dict[str, JsonObject]:
    """configurationKey entries by key."""
    return {entry["key"]: entry for entry in answer.get("configurationKey", [])}


# --------------------------------------------------------------------------- GetConfiguration


@pytest.mark.parametrize("connectors", [1, 2, 4])
def test_full_listing_is_valid_and_complete(connectors: int) -> None:
    """GetConfiguration() lists every key once, with 1.6 readonly flags, and no unknownKey."""
    answer = get(standard_configuration(connectors))
    assert set(answer) == {"configurationKey"}
    names = [entry["key"] for entry in answer["configurationKey"]]
    assert len(names) == len(set(names))
    expected = {k: ro for k, ro in STANDARD_KEYS.items() if not k.startswith("MeterPublicKey")}
    expected |= {f"MeterPublicKey{n}": True for n in range(1, connectors + 1)}
    assert {entry["key"]: entry["readonly"] for entry in answer["configurationKey"]} == expected


def test_an_empty_key_list_means_every_key() -> None:
    """key: [] is the same as no key at all."""
    config = standard_configuration()
    assert get(config, []) == get(config)


def test_standard_values_include_the_real_world_quirks() -> None:
    """The documented values (including a capitalised boolean and 1.6-only measurands)."""
    values = {k: e.get("value") for k, e in listed(get(standard_configuration())).items()}
    assert values["SupportedFeatureProfiles"] == (
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
    )
    assert values["ChargingScheduleAllowedChargingRateUnit"] == "Current,Power"
    assert values["MeterValuesSampledData"] == (
        "Energy.Active.Import.Register,Voltage.L1,Temperature"
    )
    assert values["StopTransactionOnInvalidId"] == "True"
    assert values["SecurityProfile"] == "0"
    assert values["NumberOfConnectors"] == "2"
    assert values["ConnectorPhaseRotation"] == "0.RST,1.RST,2.RTS"
    assert values["LedBrightness"] == "80"
    assert values["GetConfigurationMaxKeys"] is not None
    assert int(values["GetConfigurationMaxKeys"]) > 0


def test_lookup_is_case_insensitive_and_answers_use_the_keys_own_spelling() -> None:
    """Known keys in request order with their own spelling; unknown ones as sent."""
    answer = get(
        standard_configuration(),
        ["numberofconnectors", "Bogus", "HEARTBEATINTERVAL", "HeartbeatInterval", "nope"],
    )
    assert answer == {
        "configurationKey": [
            {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        ],
        "unknownKey": ["Bogus", "nope"],
    }


def test_only_non_empty_lists_are_included() -> None:
    """No unknownKey when all are known; no configurationKey when none is."""
    config = standard_configuration()
    assert set(get(config, ["HeartbeatInterval"])) == {"configurationKey"}
    assert get(config, ["Nope", "AlsoNope"]) == {"unknownKey": ["Nope", "AlsoNope"]}


def test_value_accessor_is_case_insensitive() -> None:
    """value() finds any spelling and raises KeyError for unknown keys."""
    config = standard_configuration()
    assert config.value("stoptransactiononinvalidid") == "True"
    assert "HEARTBEATINTERVAL" in config
    assert "Nope" not in config
    with pytest.raises(KeyError):
        config.value("Nope")


# --------------------------------------------------------------------------- write-only


def test_write_only_key_is_listed_without_its_value() -> None:
    """AuthorizationKey is listed (read-write) but its value never leaves the charger."""
    config = standard_configuration()
    assert config.value("AuthorizationKey") == SECRET
    for answer in (get(config), get(config, ["authorizationkey"])):
        assert listed(answer)["AuthorizationKey"] == {"key": "AuthorizationKey", "readonly": False}
        assert SECRET not in json.dumps(answer)
    new_key = "00112233445566778899AABBCCDDEEFF00112233"
    assert change(config, "AuthorizationKey", new_key) == "Accepted"
    assert config.value("AuthorizationKey") == new_key
    assert new_key not in json.dumps(get(config))
    assert new_key not in json.dumps(get(config, ["AuthorizationKey"]))


@pytest.mark.parametrize(
    "value",
    [
        "sim-factory-pass",  # the password itself, not its hex form
        "00112233445566778899AABBCCDDEE",  # 15 bytes
        "00112233445566778899AABBCCDDEEFF0011223344",  # 21 bytes
        "00112233445566778899AABBCCDDEEF",  # odd number of digits
    ],
)
def test_authorization_key_must_be_16_to_20_bytes_in_hex(value: str) -> None:
    """1.6J: the key is set as the hexadecimal form of 16..20 password bytes."""
    config = standard_configuration()
    assert change(config, "AuthorizationKey", value) == "Rejected"
    assert config.value("AuthorizationKey") == SECRET


# --------------------------------------------------------------------------- ChangeConfiguration


@pytest.mark.parametrize(
    ("key", "value", "status"),
    [
        ("HeartbeatInterval", "120", "Accepted"),
        ("heartbeatinterval", "0", "Accepted"),
        ("HeartbeatInterval", "-5", "Rejected"),
        ("HeartbeatInterval", "abc", "Rejected"),
        ("HeartbeatInterval", "1.5", "Rejected"),
        ("HeartbeatInterval", " 60", "Rejected"),
        ("HeartbeatInterval", "", "Rejected"),
        ("LocalPreAuthorize", "TRUE", "Accepted"),
        ("LocalPreAuthorize", "False", "Accepted"),
        ("LocalPreAuthorize", "yes", "Rejected"),
        ("LocalPreAuthorize", "1", "Rejected"),
        ("NumberOfConnectors", "3", "Rejected"),
        ("numberofconnectors", "2", "Rejected"),
        ("GetConfigurationMaxKeys", "50", "Rejected"),
        ("AuthorizeRemoteTxRequests", "false", "Rejected"),
        ("MeterPublicKey1", "oca:base64:asn1:AAAA", "Rejected"),
        ("VendorSerialPrefix", "X", "Rejected"),
        ("NoSuchKey", "1", "NotSupported"),
        ("WebSocketPingInterval", "30", "RebootRequired"),
        ("websocketpinginterval", "-1", "Rejected"),
        ("LightIntensity", "100", "Accepted"),
        ("LightIntensity", "101", "Rejected"),
        ("BlinkRepeat", "5", "Accepted"),
        ("LedBrightness", "20", "Accepted"),
        ("LedBrightness", "-1", "Rejected"),
        ("CpoName", "Another CPO", "Accepted"),
        ("SecurityProfile", "4", "Rejected"),
        ("MeterValuesSampledData", "Energy.Active.Import.Register,Current.Import.L2", "Accepted"),
        ("MeterValuesSampledData", " Voltage.L1-N , SoC ", "Accepted"),
        ("MeterValuesSampledData", "", "Accepted"),
        ("MeterValuesSampledData", "Energy.Active.Net", "Rejected"),
        ("MeterValuesSampledData", "Voltage,,Frequency", "Rejected"),
        ("MeterValuesSampledData", "Voltage.L4", "Rejected"),
        ("MeterValuesSampledData", ",".join(["Voltage"] * 9), "Rejected"),
        ("StartTxnSampledData", "Energy.Active.Import.Register,SoC", "Accepted"),
        ("ConnectorPhaseRotation", "0.RST,1.TSR,2.Unknown", "Accepted"),
        ("ConnectorPhaseRotation", "0.RST,1.XYZ", "Rejected"),
        ("ConnectorPhaseRotation", "0.RST,1.RST,2.RST,3.RST", "Rejected"),
        ("PublicKeyWithSignedMeterValue", "EveryMeterValue", "Accepted"),
        ("PublicKeyWithSignedMeterValue", "Sometimes", "Rejected"),
    ],
)
def test_change_configuration_statuses(key: str, value: str, status: str) -> None:
    """Each status per 1.6 §7.22; a stored change is recorded under the key's own spelling."""
    config = standard_configuration()
    name = config.canonical(key)
    before = None if name is None else config.value(name)
    assert change(config, key, value) == status
    if status in ("Accepted", "RebootRequired"):
        assert name is not None
        assert config.value(key) == value
        assert config.changes == [(name, value)]
    else:
        assert config.changes == []
        if name is not None:
            assert config.value(name) == before


def test_reboot_required_change_is_stored_and_reported() -> None:
    """RebootRequired keys store the value; GetConfiguration shows it."""
    config = standard_configuration()
    assert change(config, "WEBSOCKETPINGINTERVAL", "10") == "RebootRequired"
    assert listed(get(config, ["WebSocketPingInterval"]))["WebSocketPingInterval"]["value"] == "10"
    assert config.changes == [("WebSocketPingInterval", "10")]


def test_security_profile_may_only_be_increased() -> None:
    """Security whitepaper §7.6: the CSMS may raise SecurityProfile but never lower it."""
    config = standard_configuration()
    assert change(config, "SecurityProfile", "1") == "Accepted"
    assert change(config, "SecurityProfile", "0") == "Rejected"
    assert change(config, "SecurityProfile", "2") == "Accepted"
    assert config.value("SecurityProfile") == "2"
    assert config.changes == [("SecurityProfile", "1"), ("SecurityProfile", "2")]


def test_changes_accumulate_in_order() -> None:
    """changes lists every stored change, rejected ones left out."""
    config = standard_configuration()
    change(config, "heartbeatinterval", "120")
    change(config, "NumberOfConnectors", "9")
    change(config, "WebSocketPingInterval", "0")
    change(config, "LocalAuthListEnabled", "FALSE")
    assert config.changes == [
        ("HeartbeatInterval", "120"),
        ("WebSocketPingInterval", "0"),
        ("LocalAuthListEnabled", "FALSE"),
    ]


# --------------------------------------------------------------------------- connectors


@pytest.mark.parametrize(
    ("connectors", "rotation"),
    [(1, "0.RST,1.RST"), (2, "0.RST,1.RST,2.RTS"), (3, "0.RST,1.RST,2.RTS,3.RST")],
)
def test_connector_dependent_keys(connectors: int, rotation: str) -> None:
    """NumberOfConnectors, ConnectorPhaseRotation(MaxLength) and MeterPublicKey<N>."""
    config = standard_configuration(connectors)
    assert config.value("NumberOfConnectors") == str(connectors)
    assert config.value("ConnectorPhaseRotation") == rotation
    assert config.value("ConnectorPhaseRotationMaxLength") == str(connectors + 1)
    for n in range(1, connectors + 1):
        assert config.value(f"MeterPublicKey{n}") == meter_public_key(n)
    assert f"MeterPublicKey{connectors + 1}" not in config
    assert "MeterPublicKey0" not in config


def test_at_least_one_connector() -> None:
    """A charger without connectors is a test bug."""
    with pytest.raises(ValueError, match="connector"):
        standard_configuration(0)


def test_meter_public_keys_are_real_distinct_p256_keys() -> None:
    """oca:base64:asn1:<DER SubjectPublicKeyInfo>, deterministic, within CiString500."""
    keys = [meter_public_key(n) for n in (1, 2)]
    assert keys[0] != keys[1]
    assert keys[0] == meter_public_key(1)
    for key in keys:
        assert len(key) <= 500
        prefix, _, printed = key.rpartition(":")
        assert prefix == "oca:base64:asn1"
        public_key = load_der_public_key(base64.b64decode(printed, validate=True))
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        assert public_key.curve.name == "secp256r1"


def test_measurands_and_phases_match_the_official_1_6_schema() -> None:
    """The CSL validation uses exactly the 1.6 Measurand and Phase enumerations."""
    schema_file = files("ocpp") / "v16" / "schemas" / "MeterValues.json"
    schema: Any = json.loads(schema_file.read_text(encoding="utf-8-sig"))
    sampled = schema["properties"]["meterValue"]["items"]["properties"]["sampledValue"]
    properties = sampled["items"]["properties"]
    assert sorted(MEASURANDS) == sorted(properties["measurand"]["enum"])
    assert sorted(PHASES) == sorted(properties["phase"]["enum"])


# --------------------------------------------------------------------------- custom configurations


def test_a_custom_configuration() -> None:
    """ConfigKey defaults, add/remove (case-insensitive) and set_value."""
    config = ChargerConfiguration(
        {"Mode": ConfigKey("eco"), "Slots": ConfigKey("4", False, "integer")},
        reboot_required={"mode"},
    )
    assert config.keys["Mode"] == ConfigKey("eco", readonly=False, kind="string")
    assert change(config, "MODE", "boost") == "RebootRequired"
    assert change(config, "Slots", "x") == "Rejected"
    config.add("SLOTS", ConfigKey(None, True, "integer"))
    assert list(config.keys) == ["Mode", "SLOTS"]
    assert get(config, ["slots"]) == {"configurationKey": [{"key": "SLOTS", "readonly": True}]}
    config.set_value("slots", "7")
    assert config.value("Slots") == "7"
    config.remove("mode")
    assert get(config, ["Mode"]) == {"unknownKey": ["Mode"]}
    assert config.changes == [("Mode", "boost")]
    with pytest.raises(KeyError):
        config.remove("Mode")


def test_an_empty_configuration_answers_an_empty_object() -> None:
    """No keys at all: GetConfiguration() answers {} (both arrays are optional)."""
    assert get(ChargerConfiguration()) == {}


# --------------------------------------------------------------------------- over the wire


@pytest.mark.integration
async def test_handlers_answer_over_the_wire(central: HandCentral) -> None:
    """A ChargerSim with the configuration handlers answers real 1.6 CALLs."""
    config = standard_configuration()
    async with ChargerSim(central.url, "CP-CFG", handlers=config.handlers()) as sim:
        websocket = await central.accept()
        await send_frame(websocket, [2, "g-1", "GetConfiguration", {"key": ["heartbeatInterval"]}])
        assert await recv_frame(websocket) == [
            3,
            "g-1",
            {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]},
        ]
        change_request = {"key": "HeartbeatInterval", "value": "45"}
        await send_frame(websocket, [2, "c-1", "ChangeConfiguration", change_request])
        assert await recv_frame(websocket) == [3, "c-1", {"status": "Accepted"}]
        ping_request = {"key": "WebSocketPingInterval", "value": "5"}
        await send_frame(websocket, [2, "c-2", "ChangeConfiguration", ping_request])
        assert await recv_frame(websocket) == [3, "c-2", {"status": "RebootRequired"}]
        await send_frame(websocket, [2, "c-3", "ChangeConfiguration", {"key": "X", "value": "1"}])
        assert await recv_frame(websocket) == [3, "c-3", {"status": "NotSupported"}]
        await send_frame(websocket, [2, "g-2", "GetConfiguration", {}])
        answer = await recv_frame(websocket)
    assert answer[:2] == [3, "g-2"]
    assert listed(answer[2])["HeartbeatInterval"]["value"] == "45"
    assert SECRET not in json.dumps(answer)
    assert config.changes == [("HeartbeatInterval", "45"), ("WebSocketPingInterval", "5")]
    assert [name for name, _ in sim.received_calls] == [
        "GetConfiguration",
        "ChangeConfiguration",
        "ChangeConfiguration",
        "ChangeConfiguration",
        "GetConfiguration",
    ]
    assert sim.violations == []


@pytest.mark.integration
async def test_reboot_closes_reconnects_and_boots(central: HandCentral) -> None:
    """reboot() closes with 1000, reconnects to the same URL and returns the boot answer."""
    async with ChargerSim(central.url, "CP-RB", call_timeout=5) as sim:
        first = await central.accept()
        rebooting = asyncio.create_task(sim.reboot(model="M2", firmwareVersion="1.2.3"))
        await first.wait_closed()
        assert first.close_code == 1000
        second = await central.accept()
        assert second.request is not None
        assert second.request.path == "/ocpp16/CP-RB"
        frame = await recv_frame(second)
        assert frame[2:] == [
            "BootNotification",
            {
                "chargePointVendor": "SimVendor",
                "chargePointModel": "M2",
                "firmwareVersion": "1.2.3",
            },
        ]
        await send_frame(second, [3, frame[1], BOOT_RESPONSE])
        assert await rebooting == BOOT_RESPONSE
        assert sim.connected
        # The new connection is live in both directions.
        await send_frame(second, [2, "c-1", "ClearCache", {}])
        assert await recv_frame(second) == [3, "c-1", {"status": "Accepted"}]
    assert sim.violations == []


@pytest.mark.integration
async def test_reboot_after_the_server_dropped_the_connection(central: HandCentral) -> None:
    """reboot() also works when the connection is already gone (defaults of boot())."""
    sim = ChargerSim(central.url, "CP-RB2", call_timeout=5)
    await sim.connect()
    first = await central.accept()
    await first.close(1011, "bye")
    assert await sim.wait_closed() == (1011, "bye")
    rebooting = asyncio.create_task(sim.reboot())
    second = await central.accept()
    frame = await recv_frame(second)
    assert frame[2:] == [
        "BootNotification",
        {"chargePointVendor": "SimVendor", "chargePointModel": "SimModel"},
    ]
    await send_frame(second, [3, frame[1], BOOT_RESPONSE])
    assert await rebooting == BOOT_RESPONSE
    await sim.close()
    assert sim.violations == []
