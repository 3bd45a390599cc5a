"""A realistic OCPP 1.6 charge point configuration for :class:`~.charger.ChargerSim`.

:class:`ChargerConfiguration` answers GetConfiguration and ChangeConfiguration the way a
real 1.6 charge point does (OCPP 1.6 §5.8, §5.3, §7.22, §9), so a 2.0.1 CSMS can read and
change a 1.6 charger through the gateway (GetVariables, SetVariables, GetBaseReport)::

    config = standard_configuration(connectors=2)
    sim = ChargerSim(url, "CP-1", handlers=config.handlers())
    ...
    assert config.changes == [("HeartbeatInterval", "120")]

Behaviour:

* Keys are CiString50, so lookups are case-insensitive; answers use the key's own
  spelling. Unknown keys in GetConfiguration are echoed in ``unknownKey`` as sent.
* GetConfiguration without keys (or with an empty list) lists every key in definition
  order; with keys it lists the known ones in request order (each once) and includes
  ``configurationKey`` / ``unknownKey`` only when non-empty. The limit advertised in
  GetConfigurationMaxKeys is *not* enforced (1.6 only says a charger MAY limit requests);
  tests check the batching of the gateway on :attr:`.ChargerSim.received_calls`.
* ChangeConfiguration answers NotSupported for an unknown key, Rejected for a readonly
  key or a value invalid for the key's :class:`ConfigKey` (see below), RebootRequired
  (after storing the value) for keys in :attr:`ChargerConfiguration.reboot_required`,
  otherwise Accepted. Every stored change (Accepted or RebootRequired) is appended to
  :attr:`ChargerConfiguration.changes`; values are stored as sent.
* Keys in :attr:`ChargerConfiguration.write_only` (AuthorizationKey) are listed by
  GetConfiguration without a value: a 1.6 charger must never reveal the key (OCPP 1.6
  security whitepaper, 1.6J "Setting the key over OCPP").
* Validation per kind: ``integer`` is an optional sign and ASCII digits within
  ``[minimum, maximum]`` (default minimum 0: every standard integer key is a count, an
  interval, a size or an amount); ``boolean`` is ``true``/``false`` in any case;
  ``csl`` is a comma separated list whose blank-trimmed items are non-empty, match
  ``pattern`` if set, and number at most the value of the companion ``<Key>MaxLength``
  key if the charger has one (an empty string is the empty list); ``string`` matches
  ``pattern`` if set. Keys in :attr:`ChargerConfiguration.increase_only`
  (SecurityProfile: "may only be increased", security whitepaper §7.6) reject a lower
  value.

:func:`standard_configuration` builds a charger supporting every 1.6 feature profile
(Core, FirmwareManagement, LocalAuthListManagement, Reservation, SmartCharging,
RemoteTrigger) with every 1.6 key listed in the project's config-keys reference: the
standard keys of each profile (including the optional ones and the errata keys
SupportedFileTransferProtocols and StopTransactionMaxMeterValues), the security
whitepaper keys, the Plug&Charge application note keys and the signed meter values
application note keys. Readonly flags follow the 1.6 definitions (R keys readonly, RW
keys writable; AuthorizeRemoteTxRequests, which 1.6 lets the charger choose, is
readonly). Deliberate quirks real chargers show, for the gateway to cope with:

* StopTransactionOnInvalidId is ``"True"`` (capitalised boolean);
* MeterValuesSampledData is ``"Energy.Active.Import.Register,Voltage.L1,Temperature"``
  (a phase suffix and Temperature, a measurand 2.0.1 does not have);
* ConnectorPhaseRotation is generated per connector: ``0.RST`` for the grid connection,
  then ``RST`` on odd and ``RTS`` on even connectors (``"0.RST,1.RST,2.RTS"`` for two),
  as installers rotate phases to balance single-phase load;
* MeterPublicKey<N> (readonly, one per connector) holds a real, deterministic P-256
  public key in the ``oca:base64:asn1:<key>`` form of the signed meter values note;
* AuthorizationKey (write-only) holds a factory key: the hex form of 16 bytes; changing
  it requires 16 to 20 bytes in hex (32 to 40 hex digits);
* WebSocketPingInterval needs a reboot (RebootRequired);
* BlinkRepeat and LightIntensity are standard 1.6 keys with no 2.0.1 variable;
* two vendor keys: LedBrightness (read-write percentage, ``"80"``) and
  VendorSerialPrefix (readonly).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, TypeAlias

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.sim.charger import ChargerHandler
from gateway.sim.wire import JsonObject

__all__ = [
    "MEASURANDS",
    "PHASES",
    "SUPPORTED_FEATURE_PROFILES",
    "ChargerConfiguration",
    "ConfigKey",
    "ConfigKind",
    "meter_public_key",
    "standard_configuration",
]

#: How a key's value is validated when ChangeConfiguration writes it.
ConfigKind: TypeAlias = Literal["string", "integer", "boolean", "csl"]

#: The 1.6 Measurand values (MeterValues.req schema).
MEASURANDS: tuple[str, ...] = (
    "Energy.Active.Export.Register",
    "Energy.Active.Import.Register",
    "Energy.Reactive.Export.Register",
    "Energy.Reactive.Import.Register",
    "Energy.Active.Export.Interval",
    "Energy.Active.Import.Interval",
    "Energy.Reactive.Export.Interval",
    "Energy.Reactive.Import.Interval",
    "Power.Active.Export",
    "Power.Active.Import",
    "Power.Offered",
    "Power.Reactive.Export",
    "Power.Reactive.Import",
    "Power.Factor",
    "Current.Import",
    "Current.Export",
    "Current.Offered",
    "Voltage",
    "Frequency",
    "Temperature",
    "SoC",
    "RPM",
)

#: The 1.6 Phase values (MeterValues.req schema), usable as a measurand suffix (§9.1.17).
PHASES: tuple[str, ...] = ("L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1")

#: Every 1.6 feature profile, as the standard charger reports them.
SUPPORTED_FEATURE_PROFILES = (
    "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
)

_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_MEASURAND_ITEM = (
    "(?:"
    + "|".join(re.escape(m) for m in MEASURANDS)
    + ")(?:\\.(?:"
    + "|".join(re.escape(p) for p in PHASES)
    + "))?"
)
_PHASE_ROTATION_ITEM = r"[0-9]+\.(?:NotApplicable|Unknown|RST|RTS|SRT|STR|TRS|TSR)"
_HEX_KEY_16_TO_20_BYTES = r"(?:[0-9A-Fa-f]{2}){16,20}"
_FACTORY_AUTHORIZATION_KEY = b"sim-factory-pass".hex().upper()


@dataclass(slots=True)
class ConfigKey:
    """One configuration key: its value (None: the charger reports none) and its rules.

    ``minimum``/``maximum`` bound ``integer`` values; ``pattern`` is a regular
    expression a ``string`` value, or each item of a ``csl`` value, must match in full.
    """

    value: str | None
    readonly: bool = False
    kind: ConfigKind = "string"
    minimum: int | None = 0
    maximum: int | None = None
    pattern: str | None = None


def _member(names: Iterable[str], name: str) -> bool:
    folded = name.casefold()
    return any(candidate.casefold() == folded for candidate in names)


class ChargerConfiguration:
    """The configuration keys of one 1.6 charge point (see module docstring)."""

    def __init__(
        self,
        keys: Mapping[str, ConfigKey] | None = None,
        *,
        reboot_required: Iterable[str] = (),
        write_only: Iterable[str] = (),
        increase_only: Iterable[str] = (),
    ) -> None:
        self._keys: dict[str, ConfigKey] = {}
        self._names: dict[str, str] = {}
        for name, key in (keys or {}).items():
            self.add(name, key)
        #: Keys whose change is stored and answered RebootRequired.
        self.reboot_required: set[str] = set(reboot_required)
        #: Keys GetConfiguration lists without their value.
        self.write_only: set[str] = set(write_only)
        #: Integer keys whose value may only grow (SecurityProfile).
        self.increase_only: set[str] = set(increase_only)
        #: Every change ChangeConfiguration stored, as (key's own spelling, value sent).
        self.changes: list[tuple[str, str]] = []

    # ---- the keys

    @property
    def keys(self) -> Mapping[str, ConfigKey]:
        """Every key by its own spelling, in definition order (read-only view)."""
        return MappingProxyType(self._keys)

    def add(self, name: str, key: ConfigKey) -> None:
        """Add a key, or replace the key of the same name in any case."""
        existing = self.canonical(name)
        if existing is not None:
            del self._keys[existing]
        self._keys[name] = key
        self._names[name.casefold()] = name

    def remove(self, name: str) -> None:
        """Remove a key (any case); KeyError if unknown."""
        canonical = self._require(name)
        del self._keys[canonical]
        del self._names[canonical.casefold()]

    def canonical(self, name: str) -> str | None:
        """The key's own spelling, or None if the charger does not know it."""
        return self._names.get(name.casefold())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) is not None

    def _require(self, name: str) -> str:
        canonical = self.canonical(name)
        if canonical is None:
            raise KeyError(name)
        return canonical

    def value(self, name: str) -> str | None:
        """The stored value of a key (any case), write-only ones included; KeyError if unknown."""
        return self._keys[self._require(name)].value

    def set_value(self, name: str, value: str | None) -> None:
        """Change a value locally (as the charger itself would): no checks, not in changes."""
        self._keys[self._require(name)].value = value

    # ---- OCPP handlers

    def _entry(self, name: str) -> JsonObject:
        key = self._keys[name]
        entry: JsonObject = {"key": name, "readonly": key.readonly}
        if key.value is not None and not _member(self.write_only, name):
            entry["value"] = key.value
        return entry

    def get_configuration(self, payload: JsonObject) -> JsonObject:
        """Answer a 1.6 GetConfiguration.req payload (GetConfiguration.conf)."""
        requested: list[str] = payload.get("key") or []
        known: list[JsonObject] = []
        unknown: list[str] = []
        if not requested:
            known = [self._entry(name) for name in self._keys]
        else:
            listed: set[str] = set()
            for asked in requested:
                name = self.canonical(asked)
                if name is None:
                    unknown.append(asked)
                elif name not in listed:
                    listed.add(name)
                    known.append(self._entry(name))
        answer: JsonObject = {}
        if known:
            answer["configurationKey"] = known
        if unknown:
            answer["unknownKey"] = unknown
        return answer

    def change_configuration(self, payload: JsonObject) -> JsonObject:
        """Answer a 1.6 ChangeConfiguration.req payload (ChangeConfiguration.conf)."""
        name = self.canonical(payload["key"])
        if name is None:
            return {"status": "NotSupported"}
        key = self._keys[name]
        value: str = payload["value"]
        if key.readonly or not self.is_valid(name, value):
            return {"status": "Rejected"}
        key.value = value
        self.changes.append((name, value))
        if _member(self.reboot_required, name):
            return {"status": "RebootRequired"}
        return {"status": "Accepted"}

    def handlers(self) -> dict[str, ChargerHandler]:
        """GetConfiguration and ChangeConfiguration handlers for ``ChargerSim(handlers=...)``."""
        return {
            "GetConfiguration": self.get_configuration,
            "ChangeConfiguration": self.change_configuration,
        }

    # ---- validation

    def is_valid(self, name: str, value: str) -> bool:
        """Whether ``value`` is acceptable for the (known) key ``name`` (readonly aside)."""
        canonical = self._require(name)
        key = self._keys[canonical]
        if key.kind == "integer":
            return self._valid_integer(canonical, key, value)
        if key.kind == "boolean":
            return value.lower() in ("true", "false")
        if key.kind == "csl":
            return self._valid_csl(canonical, key, value)
        return key.pattern is None or re.fullmatch(key.pattern, value) is not None

    def _valid_integer(self, name: str, key: ConfigKey, value: str) -> bool:
        if _INTEGER.fullmatch(value) is None:
            return False
        number = int(value)
        if key.minimum is not None and number < key.minimum:
            return False
        if key.maximum is not None and number > key.maximum:
            return False
        if _member(self.increase_only, name) and key.value is not None:
            current = key.value.strip()
            if _INTEGER.fullmatch(current) is not None and number < int(current):
                return False
        return True

    def _valid_csl(self, name: str, key: ConfigKey, value: str) -> bool:
        items = [item.strip() for item in value.split(",")] if value.strip() else []
        if any(not item for item in items):
            return False
        if key.pattern is not None and any(re.fullmatch(key.pattern, i) is None for i in items):
            return False
        limit_name = self.canonical(f"{name}MaxLength")
        limit = None if limit_name is None else self._keys[limit_name].value
        return limit is None or _INTEGER.fullmatch(limit) is None or len(items) <= int(limit)


# --------------------------------------------------------------------------- the standard


def meter_public_key(connector_id: int) -> str:
    """The MeterPublicKey<connector_id> value of the standard charger (deterministic)."""
    private_key = ec.derive_private_key(0x5EED0000 + connector_id, ec.SECP256R1())
    der = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "oca:base64:asn1:" + base64.b64encode(der).decode("ascii")


def _phase_rotation(connectors: int) -> str:
    rotations = ["0.RST"]
    rotations += [f"{n}.{'RST' if n % 2 else 'RTS'}" for n in range(1, connectors + 1)]
    return ",".join(rotations)


def standard_configuration(connectors: int = 2) -> ChargerConfiguration:
    """A charger with every 1.6 profile and the keys described in the module docstring."""
    if connectors < 1:
        raise ValueError(f"a charge point has at least one connector, not {connectors}")

    def rw(
        value: str,
        kind: ConfigKind = "string",
        *,
        maximum: int | None = None,
        pattern: str | None = None,
    ) -> ConfigKey:
        return ConfigKey(value, False, kind, maximum=maximum, pattern=pattern)

    def ro(value: str, kind: ConfigKind = "string") -> ConfigKey:
        return ConfigKey(value, True, kind)

    keys: dict[str, ConfigKey] = {
        # Core profile (1.6 §9.1, errata 3.91)
        "AllowOfflineTxForUnknownId": rw("false", "boolean"),
        "AuthorizationCacheEnabled": rw("true", "boolean"),
        "AuthorizeRemoteTxRequests": ro("true", "boolean"),
        "BlinkRepeat": rw("3", "integer"),
        "ClockAlignedDataInterval": rw("900", "integer"),
        "ConnectionTimeOut": rw("60", "integer"),
        "ConnectorPhaseRotation": rw(
            _phase_rotation(connectors), "csl", pattern=_PHASE_ROTATION_ITEM
        ),
        "ConnectorPhaseRotationMaxLength": ro(str(connectors + 1), "integer"),
        "GetConfigurationMaxKeys": ro("20", "integer"),
        "HeartbeatInterval": rw("300", "integer"),
        "LightIntensity": rw("50", "integer", maximum=100),
        "LocalAuthorizeOffline": rw("true", "boolean"),
        "LocalPreAuthorize": rw("false", "boolean"),
        "MaxEnergyOnInvalidId": rw("0", "integer"),
        "MeterValuesAlignedData": rw(
            "Energy.Active.Import.Register", "csl", pattern=_MEASURAND_ITEM
        ),
        "MeterValuesAlignedDataMaxLength": ro("8", "integer"),
        "MeterValuesSampledData": rw(
            "Energy.Active.Import.Register,Voltage.L1,Temperature", "csl", pattern=_MEASURAND_ITEM
        ),
        "MeterValuesSampledDataMaxLength": ro("8", "integer"),
        "MeterValueSampleInterval": rw("60", "integer"),
        "MinimumStatusDuration": rw("0", "integer"),
        "NumberOfConnectors": ro(str(connectors), "integer"),
        "ResetRetries": rw("3", "integer"),
        "StopTransactionMaxMeterValues": ro("100", "integer"),
        "StopTransactionOnEVSideDisconnect": rw("true", "boolean"),
        "StopTransactionOnInvalidId": rw("True", "boolean"),
        "StopTxnAlignedData": rw("Energy.Active.Import.Register", "csl", pattern=_MEASURAND_ITEM),
        "StopTxnAlignedDataMaxLength": ro("8", "integer"),
        "StopTxnSampledData": rw("Energy.Active.Import.Register", "csl", pattern=_MEASURAND_ITEM),
        "StopTxnSampledDataMaxLength": ro("8", "integer"),
        "SupportedFeatureProfiles": ro(SUPPORTED_FEATURE_PROFILES, "csl"),
        "SupportedFeatureProfilesMaxLength": ro("6", "integer"),
        "TransactionMessageAttempts": rw("3", "integer"),
        "TransactionMessageRetryInterval": rw("60", "integer"),
        "UnlockConnectorOnEVSideDisconnect": rw("true", "boolean"),
        "WebSocketPingInterval": rw("60", "integer"),
        # LocalAuthListManagement profile (§9.2)
        "LocalAuthListEnabled": rw("true", "boolean"),
        "LocalAuthListMaxLength": ro("1000", "integer"),
        "SendLocalListMaxLength": ro("100", "integer"),
        # Reservation profile (§9.3)
        "ReserveConnectorZeroSupported": ro("false", "boolean"),
        # SmartCharging profile (§9.4)
        "ChargeProfileMaxStackLevel": ro("10", "integer"),
        "ChargingScheduleAllowedChargingRateUnit": ro("Current,Power", "csl"),
        "ChargingScheduleMaxPeriods": ro("24", "integer"),
        "ConnectorSwitch3to1PhaseSupported": ro("false", "boolean"),
        "MaxChargingProfilesInstalled": ro("20", "integer"),
        # FirmwareManagement profile (errata 3.90, new §9.5.1)
        "SupportedFileTransferProtocols": ro("FTP,FTPS,HTTP,HTTPS", "csl"),
        # Security whitepaper (§7)
        "AdditionalRootCertificateCheck": ro("false", "boolean"),
        "AuthorizationKey": rw(_FACTORY_AUTHORIZATION_KEY, pattern=_HEX_KEY_16_TO_20_BYTES),
        "CertificateSignedMaxChainSize": ro("10000", "integer"),
        "CertificateStoreMaxLength": ro("10", "integer"),
        "CpoName": rw("SimCPO"),
        "SecurityProfile": rw("0", "integer", maximum=3),
        # Plug&Charge application note
        "CentralContractValidationAllowed": rw("false", "boolean"),
        "CertSigningRepeatTimes": rw("3", "integer"),
        "CertSigningWaitMinimum": rw("30", "integer"),
        "ContractValidationOffline": rw("true", "boolean"),
        "ISO15118PnCEnabled": rw("false", "boolean"),
        # Signed meter values application note
        "AlignedDataSignReadings": rw("false", "boolean"),
        "AlignedDataSignUpdatedReadings": rw("false", "boolean"),
        "PublicKeyWithSignedMeterValue": rw(
            "Never", pattern="Never|OncePerTransaction|EveryMeterValue"
        ),
        "SampledDataSignReadings": rw("false", "boolean"),
        "SampledDataSignStartedReadings": rw("false", "boolean"),
        "SampledDataSignUpdatedReadings": rw("false", "boolean"),
        "StartTxnSampledData": rw("Energy.Active.Import.Register", "csl", pattern=_MEASURAND_ITEM),
        **{f"MeterPublicKey{n}": ro(meter_public_key(n)) for n in range(1, connectors + 1)},
        # Vendor-specific keys
        "LedBrightness": rw("80", "integer", maximum=100),
        "VendorSerialPrefix": ro("SIM"),
    }
    return ChargerConfiguration(
        keys,
        reboot_required={"WebSocketPingInterval"},
        write_only={"AuthorizationKey"},
        increase_only={"SecurityProfile"},
    )
