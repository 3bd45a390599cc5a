"""Tests for gateway.translate.security: the name tables against the reference, and
properties over every schema-valid request (the golden pairs in tests/data pin the
individual rules).

Expected values come from reference messages.md §2.16, §2.17 and §3.8.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ocppj import Payload, Version
from gateway.schemas import Kind, validate
from gateway.translate import security
from gateway.translate.types import Direction

from .conftest import MakeContext


def _enum(version: str, schema: str, name: str) -> list[str]:
    """An enum among the definitions of an official schema file of the ``ocpp`` package."""
    path = importlib.resources.files("ocpp") / version / "schemas" / f"{schema}.json"
    values: list[str] = json.loads(path.read_text())["definitions"][name]["enum"]
    return values


CERTIFICATE_ID_USE = _enum(
    "v201", "GetInstalledCertificateIdsRequest", "GetCertificateIdUseEnumType"
)
INSTALL_USE = _enum("v201", "InstallCertificateRequest", "InstallCertificateUseEnumType")
CERTIFICATE_USE_V16 = _enum("v16", "InstallCertificate", "CertificateUseEnumType")

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
HASH = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "aa",
    "issuerKeyHash": "bb",
    "serialNumber": "1",
}

# CSMS -> charger actions that exist only in the security extension, with a valid request.
EXTENSION_ONLY: dict[str, Payload] = {
    "CertificateSigned": {"certificateChain": CERT},
    "InstallCertificate": {"certificateType": "CSMSRootCertificate", "certificate": CERT},
    "DeleteCertificate": {"certificateHashData": HASH},
    "GetInstalledCertificateIds": {"certificateType": ["CSMSRootCertificate"]},
}


def test_security_event_renames_are_the_reference_table() -> None:
    """§2.17: only the four names with CentralSystem / ChargePoint in them change."""
    assert security.SECURITY_EVENT_TYPES == {
        "FailedToAuthenticationAtCentralSystem": "FailedToAuthenticateAtCsms",
        "CentralSystemFailedToAuthentication": "CsmsFailedToAuthenticate",
        "InvalidCentralSystemCertificate": "InvalidCsmsCertificate",
        "InvalidChargePointCertificate": "InvalidChargingStationCertificate",
    }


def test_certificate_use_table_is_the_reference_table() -> None:
    """§2.16: CSMSRootCertificate is CentralSystemRootCertificate, the manufacturer root
    keeps its name; both 2.0.1 enums contain both, and the 1.6 enum is exactly their image."""
    assert security.CERTIFICATE_USE_V16 == {
        "CSMSRootCertificate": "CentralSystemRootCertificate",
        "ManufacturerRootCertificate": "ManufacturerRootCertificate",
    }
    assert set(security.CERTIFICATE_USE_V16) <= set(INSTALL_USE) & set(CERTIFICATE_ID_USE)
    assert set(security.CERTIFICATE_USE_V16.values()) == set(CERTIFICATE_USE_V16)


@pytest.mark.parametrize("action", sorted(EXTENSION_ONLY))
def test_extension_only_requests_are_refused_without_the_extension(
    action: str, make_context: MakeContext
) -> None:
    """Without the security extension the gateway answers, with UnsupportedRequest."""
    route = security.ROUTES[(Direction.CSMS_TO_CHARGER, action)]
    outcome = route.request(EXTENSION_ONLY[action], make_context(security_extension=False))
    assert outcome.forward is None
    assert outcome.reply is not None
    assert outcome.reply["statusInfo"]["reasonCode"] == "UnsupportedRequest"
    validate(Version.V201, action, Kind.RESPONSE, outcome.reply)


@pytest.mark.parametrize("action", sorted(EXTENSION_ONLY))
def test_extension_only_requests_reach_a_charger_with_the_extension(
    action: str, make_context: MakeContext
) -> None:
    """With the extension each forwards its 1.6 namesake, schema-valid."""
    route = security.ROUTES[(Direction.CSMS_TO_CHARGER, action)]
    outcome = route.request(EXTENSION_ONLY[action], make_context(security_extension=True))
    assert outcome.forward is not None
    assert outcome.forward.action == action
    validate(Version.V16, action, Kind.REQUEST, outcome.forward.payload)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    types=st.none() | st.lists(st.sampled_from(CERTIFICATE_ID_USE), min_size=1, max_size=5),
    extension=st.booleans(),
)
def test_any_get_installed_certificate_ids_asks_one_type_or_is_refused(
    types: list[str] | None, extension: bool, make_context: MakeContext
) -> None:
    """A forward asks for the one mappable type listed; anything else is a valid
    NotFound with a reason, never a partial answer."""
    received: Payload = {} if types is None else {"certificateType": types}
    validate(Version.V201, "GetInstalledCertificateIds", Kind.REQUEST, received)
    untouched = copy.deepcopy(received)
    ctx = make_context(security_extension=extension)
    outcome = security.get_installed_certificate_ids_req(received, ctx)
    assert received == untouched
    mappable = set(types or security.CERTIFICATE_USE_V16) & set(security.CERTIFICATE_USE_V16)
    if outcome.forward is None:
        assert outcome.reply is not None
        assert outcome.reply["status"] == "NotFound"
        assert "statusInfo" in outcome.reply
        validate(Version.V201, "GetInstalledCertificateIds", Kind.RESPONSE, outcome.reply)
        assert not extension or len(mappable) != 1
        return
    assert extension and len(mappable) == 1
    (only,) = mappable
    assert outcome.forward.payload == {"certificateType": security.CERTIFICATE_USE_V16[only]}
    validate(Version.V16, "GetInstalledCertificateIds", Kind.REQUEST, outcome.forward.payload)
    answer = {"status": "Accepted", "certificateHashData": [HASH, HASH]}
    reply: Any = security.get_installed_certificate_ids_conf(answer, received, ctx).reply
    validate(Version.V201, "GetInstalledCertificateIds", Kind.RESPONSE, reply)
    assert [entry["certificateType"] for entry in reply["certificateHashDataChain"]] == [only] * 2


@pytest.mark.parametrize("certificate_type", INSTALL_USE)
def test_every_install_certificate_type_is_forwarded_or_refused(
    certificate_type: str, make_context: MakeContext
) -> None:
    """Mappable types go to the charger renamed; ISO 15118 ones are refused as unsupported."""
    received = {"certificateType": certificate_type, "certificate": CERT}
    ctx = make_context(security_extension=True)
    outcome = security.install_certificate_req(received, ctx)
    if certificate_type in security.CERTIFICATE_USE_V16:
        assert outcome.forward is not None
        validate(Version.V16, "InstallCertificate", Kind.REQUEST, outcome.forward.payload)
    else:
        assert outcome.reply is not None
        assert outcome.reply["statusInfo"]["reasonCode"] == "UnsupportedParam"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event_type=st.text(min_size=1, max_size=50), tech_info=st.none() | st.text(max_size=255))
def test_any_1_6_security_event_gives_a_valid_2_0_1_notification(
    event_type: str, tech_info: str | None, make_context: MakeContext
) -> None:
    """Any schema-valid 1.6 event (type is a free string) goes up schema-valid."""
    received: Payload = {"type": event_type, "timestamp": "2024-05-01T11:59:58.123456+02:00"}
    if tech_info is not None:
        received["techInfo"] = tech_info
    validate(Version.V16, "SecurityEventNotification", Kind.REQUEST, received)
    outcome = security.security_event_notification_req(received, make_context())
    assert outcome.forward is not None
    forwarded = outcome.forward.payload
    validate(Version.V201, "SecurityEventNotification", Kind.REQUEST, forwarded)
    assert forwarded["timestamp"] == "2024-05-01T09:59:58.123Z"
    assert forwarded["type"] == security.SECURITY_EVENT_TYPES.get(event_type, event_type)
    assert forwarded.get("techInfo") == tech_info
