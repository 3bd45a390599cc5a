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

from gateway.errors import GatewayError
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

# CSMS -> charger routes that exist only in the security extension, with a valid request.
EXTENSION_ONLY: dict[str, Payload] = {
    "CertificateSigned": {"certificateChain": CERT},
    "InstallCertificate": {"certificateType": "CSMSRootCertificate", "certificate": CERT},
}
PNC_VENDOR_ID = "org.openchargealliance.iso15118pnc"


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


def _tunnelled(call: Any) -> Payload:
    """The 2.0.1 payload inside a PnC DataTransfer the gateway sends."""
    assert call.action == "DataTransfer"
    assert call.payload["vendorId"] == PNC_VENDOR_ID
    validate(Version.V16, "DataTransfer", Kind.REQUEST, call.payload)
    inner: Payload = json.loads(call.payload["data"])
    validate(Version.V201, call.payload["messageId"], Kind.REQUEST, inner)
    return inner


def _found(answer_hashes: int) -> Payload:
    return {"status": "Accepted", "certificateHashData": [HASH] * answer_hashes}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    types=st.none() | st.lists(st.sampled_from(CERTIFICATE_ID_USE), min_size=1, max_size=5),
    extension=st.booleans(),
)
def test_any_get_installed_certificate_ids_asks_each_store_once(
    types: list[str] | None, extension: bool, make_context: MakeContext
) -> None:
    """One 1.6 CALL per 1.6 type asked for (with the extension), one tunnelled CALL for
    all ISO 15118 types, none listed meaning all (M03.FR.02); every CALL is schema-valid."""
    received: Payload = {} if types is None else {"certificateType": types}
    validate(Version.V201, "GetInstalledCertificateIds", Kind.REQUEST, received)
    untouched = copy.deepcopy(received)
    ctx = make_context(security_extension=extension)
    queries = security.installed_certificate_queries(received, ctx)
    assert received == untouched
    wanted = list(dict.fromkeys(types or CERTIFICATE_ID_USE))
    native = [t for t in wanted if t in security.CERTIFICATE_USE_V16] if extension else []
    iso15118 = [t for t in wanted if t in security.ISO15118_CERTIFICATE_USES]
    native_calls = [q for q in queries if q.action == "GetInstalledCertificateIds"]
    assert [q.payload for q in native_calls] == [
        {"certificateType": security.CERTIFICATE_USE_V16[t]} for t in native
    ]
    for query in native_calls:
        validate(Version.V16, "GetInstalledCertificateIds", Kind.REQUEST, query.payload)
    tunnelled = [_tunnelled(q) for q in queries if q.action == "DataTransfer"]
    assert tunnelled == ([{"certificateType": iso15118}] if iso15118 else [])
    assert len(queries) == len(native_calls) + len(tunnelled)


def test_installed_certificate_ids_merge_every_store_in_query_order(
    make_context: MakeContext,
) -> None:
    """Hashes from the 1.6 answers get their 2.0.1 type; the tunnel's chain is kept."""
    ctx = make_context(security_extension=True)
    received: Payload = {}
    queries = security.installed_certificate_queries(received, ctx)
    v2g_entry = {"certificateType": "V2GRootCertificate", "certificateHashData": HASH}
    tunnel_answer = {
        "status": "Accepted",
        "data": json.dumps({"status": "Accepted", "certificateHashDataChain": [v2g_entry]}),
    }
    answers = [(queries[0], _found(2)), (queries[1], {"status": "NotFound"})]
    answers.append((queries[2], tunnel_answer))
    reply = security.installed_certificate_ids_response(received, answers, ctx)
    validate(Version.V201, "GetInstalledCertificateIds", Kind.RESPONSE, reply)
    assert reply == {
        "status": "Accepted",
        "certificateHashDataChain": [
            {"certificateType": "CSMSRootCertificate", "certificateHashData": HASH},
            {"certificateType": "CSMSRootCertificate", "certificateHashData": HASH},
            v2g_entry,
        ],
    }


def test_installed_certificate_ids_not_found_says_what_could_not_be_asked(
    make_context: MakeContext,
) -> None:
    """No security extension and a tunnel the charger refuses: NotFound, both reasons."""
    ctx = make_context(security_extension=False)
    received: Payload = {"certificateType": ["CSMSRootCertificate", "V2GRootCertificate"]}
    (query,) = security.installed_certificate_queries(received, ctx)
    reply = security.installed_certificate_ids_response(
        received, [(query, {"status": "UnknownVendorId"})], ctx
    )
    validate(Version.V201, "GetInstalledCertificateIds", Kind.RESPONSE, reply)
    assert reply["status"] == "NotFound"
    assert reply["statusInfo"]["reasonCode"] == "UnsupportedRequest"
    info = reply["statusInfo"]["additionalInfo"]
    assert "security extension" in info and "UnknownVendorId" in info


def test_installed_certificate_ids_plain_not_found_has_no_reason(
    make_context: MakeContext,
) -> None:
    ctx = make_context(security_extension=True)
    received: Payload = {"certificateType": ["ManufacturerRootCertificate"]}
    (query,) = security.installed_certificate_queries(received, ctx)
    reply = security.installed_certificate_ids_response(
        received, [(query, {"status": "NotFound"})], ctx
    )
    assert reply == {"status": "NotFound"}


def test_installed_certificate_ids_rejects_an_invalid_tunnelled_answer(
    make_context: MakeContext,
) -> None:
    """The CSMS never gets an answer its schema rejects: the charger's is checked."""
    ctx = make_context()
    received: Payload = {"certificateType": ["V2GRootCertificate"]}
    (query,) = security.installed_certificate_queries(received, ctx)
    bad = {"status": "Accepted", "data": json.dumps({"status": "Maybe"})}
    with pytest.raises(GatewayError, match="GetInstalledCertificateIds is invalid"):
        security.installed_certificate_ids_response(received, [(query, bad)], ctx)


@pytest.mark.parametrize("extension", [True, False])
def test_delete_certificate_tries_the_extension_then_the_tunnel(
    extension: bool, make_context: MakeContext
) -> None:
    """The hash is sent as is to each store that may hold it, 1.6 first."""
    ctx = make_context(security_extension=extension)
    received = {"certificateHashData": HASH}
    attempts = security.delete_certificate_attempts(received, ctx)
    expected_actions = ["DeleteCertificate", "DataTransfer"] if extension else ["DataTransfer"]
    assert [a.action for a in attempts] == expected_actions
    if extension:
        assert attempts[0].payload == received
        validate(Version.V16, "DeleteCertificate", Kind.REQUEST, attempts[0].payload)
    assert _tunnelled(attempts[-1]) == received


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        # (the 1.6 DeleteCertificate answer or None when not asked, the tunnel's), the reply
        (({"status": "Accepted"}, None), {"status": "Accepted"}),
        (({"status": "Failed"}, None), {"status": "Failed"}),
        (({"status": "NotFound"}, {"status": "Accepted", "data": '{"status":"Accepted"}'}),
         {"status": "Accepted"}),
        (({"status": "NotFound"}, {"status": "Accepted", "data": '{"status":"NotFound"}'}),
         {"status": "NotFound"}),
        (({"status": "NotFound"}, {"status": "UnknownVendorId"}), {"status": "NotFound"}),
        ((None, {"status": "Accepted", "data": '{"status":"Accepted"}'}), {"status": "Accepted"}),
    ],
)  # fmt: skip
def test_delete_certificate_first_store_that_has_it_answers(
    answers: tuple[Payload | None, Payload | None],
    expected: Payload,
    make_context: MakeContext,
) -> None:
    """Found (deleted or Failed) ends the search; NotFound everywhere is NotFound."""
    native = answers[0]
    ctx = make_context(security_extension=native is not None)
    replies: list[Payload] = []
    reply: Payload | None = None
    for attempt, answer in zip(
        security.delete_certificate_attempts({"certificateHashData": HASH}, ctx),
        [a for a in answers if a is not None],
        strict=False,
    ):
        step = security.deletion_reply(attempt, answer)
        if security.deletion_settled(step):
            reply = step
            break
        replies.append(step)
    if reply is None:
        reply = security.deletion_response(replies, ctx)
    validate(Version.V201, "DeleteCertificate", Kind.RESPONSE, reply)
    assert reply == expected


def test_delete_certificate_nowhere_to_look_fails_with_both_reasons(
    make_context: MakeContext,
) -> None:
    ctx = make_context(security_extension=False)
    (attempt,) = security.delete_certificate_attempts({"certificateHashData": HASH}, ctx)
    step = security.deletion_reply(attempt, {"status": "UnknownVendorId"})
    assert not security.deletion_settled(step)
    reply = security.deletion_response([step], ctx)
    validate(Version.V201, "DeleteCertificate", Kind.RESPONSE, reply)
    assert reply["status"] == "Failed"
    assert reply["statusInfo"]["reasonCode"] == "UnsupportedRequest"
    assert "security extension" in reply["statusInfo"]["additionalInfo"]
    assert "UnknownVendorId" in reply["statusInfo"]["additionalInfo"]


@pytest.mark.parametrize("certificate_type", INSTALL_USE)
def test_every_install_certificate_type_is_forwarded_or_tunnelled(
    certificate_type: str, make_context: MakeContext
) -> None:
    """Mappable types go to the charger renamed; ISO 15118 ones through the PnC tunnel."""
    received = {"certificateType": certificate_type, "certificate": CERT}
    ctx = make_context(security_extension=True)
    outcome = security.install_certificate_req(received, ctx)
    assert outcome.forward is not None
    if certificate_type in security.CERTIFICATE_USE_V16:
        assert outcome.forward.action == "InstallCertificate"
        validate(Version.V16, "InstallCertificate", Kind.REQUEST, outcome.forward.payload)
    else:
        assert certificate_type in security.ISO15118_CERTIFICATE_USES
        assert _tunnelled(outcome.forward) == received


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
