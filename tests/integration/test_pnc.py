"""ISO 15118 Plug & Charge for 1.6 chargers, end to end (reference §6, the OCA
application note "Using ISO 15118 Plug & Charge with OCPP 1.6").

A 1.6 charger with PnC firmware tunnels 2.0.1 messages in DataTransfer (vendorId
``org.openchargealliance.iso15118pnc``); the CSMS must see a native 2.0.1 PnC station.
The charger side here is :class:`PncFirmware`, a DataTransfer handler that decodes what
the gateway tunnels, validates it against the official 2.0.1 schema (the peer validates
the DataTransfer itself) and answers as scripted; the CSMS sim validates what it gets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.sim.charger import ChargerSim
from gateway.sim.configuration import standard_configuration
from gateway.sim.csms import CsmsSim
from gateway.sim.wire import CallErrorReceived, default_validator
from tests.integration.test_operations import assert_refused

pytestmark = pytest.mark.integration

Payload = dict[str, Any]
MakeCharger = Callable[..., ChargerSim]

PNC = "org.openchargealliance.iso15118pnc"
EMAID = {"idToken": "DEABCC12345678X", "type": "eMAID"}
HASH: Payload = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "0f3ad5c1a5e2f49b0e7a1c9a3b7d2e11",
    "issuerKeyHash": "9c2b7e4d1a0f3e6b5c8d7a6f5e4d3c2b",
    "serialNumber": "5a3f",
}
OCSP: Payload = {**HASH, "responderURL": "http://ocsp.example.com/"}
CHAIN = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUsecc\n-----END CERTIFICATE-----\n"
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBsecc\n-----END CERTIFICATE REQUEST-----\n"


@dataclass
class PncFirmware:
    """The charger's side of the tunnel: ``answers`` maps a 2.0.1 action to its answer."""

    answers: dict[str, Payload]
    received: list[tuple[str, Payload]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def __call__(self, request: Payload) -> Payload:
        if request["vendorId"] != PNC:
            return {"status": "UnknownVendorId"}
        action = request["messageId"]
        inner = json.loads(request["data"])
        self.violations += default_validator().errors("2.0.1", action, "request", inner)
        self.received.append((action, inner))
        if action not in self.answers:
            return {"status": "UnknownMessageId"}
        answer = self.answers[action]
        self.violations += default_validator().errors("2.0.1", action, "response", answer)
        return {"status": "Accepted", "data": json.dumps(answer)}


async def pnc_charger(
    make_charger: MakeCharger, firmware: PncFirmware, **handlers: Any
) -> ChargerSim:
    charger = make_charger("CP-1", handlers={"DataTransfer": firmware, **handlers})
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    return charger


async def tunnel(charger: ChargerSim, action: str, payload: Payload) -> Payload:
    """Send a tunnelled 2.0.1 request as the charger; the 2.0.1 answer inside."""
    answer = await charger.data_transfer(PNC, action, json.dumps(payload))
    assert answer["status"] == "Accepted", answer
    inner: Payload = json.loads(answer["data"])
    return inner


@pytest.mark.covers("charger_to_csms:DataTransfer")
@pytest.mark.usefixtures("gateway")
async def test_charger_pnc_messages_reach_the_csms_as_native_2_0_1(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """Authorize with certificate data, contract installation, OCSP and the SECC's CSR go
    up as the 2.0.1 messages themselves; each CSMS answer comes back inside the tunnel."""
    csms.handlers["Get15118EVCertificate"] = lambda _s, _p: {
        "status": "Accepted",
        "exiResponse": "gBBBBBBBBB==",
    }
    csms.handlers["GetCertificateStatus"] = lambda _s, _p: {
        "status": "Accepted",
        "ocspResult": "MIIBocsp",
    }
    csms.handlers["Authorize"] = lambda _s, _p: {
        "idTokenInfo": {"status": "Accepted"},
        "certificateStatus": "Accepted",
    }
    charger = await pnc_charger(make_charger, PncFirmware({}))
    requests: dict[str, Payload] = {
        "Authorize": {"idToken": EMAID, "iso15118CertificateHashData": [OCSP]},
        "Get15118EVCertificate": {
            "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
            "action": "Install",
            "exiRequest": "gAAAAAAAAA==",
        },
        "GetCertificateStatus": {"ocspRequestData": OCSP},
        "SignCertificate": {"csr": CSR, "certificateType": "V2GCertificate"},
    }
    answers = {action: await tunnel(charger, action, p) for action, p in requests.items()}

    for action, payload in requests.items():
        (message,) = csms.received(action)
        assert message.payload == payload  # unwrapped exactly, nothing added or lost
    assert csms.received("DataTransfer") == []
    assert answers == {
        "Authorize": {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"},
        "Get15118EVCertificate": {"status": "Accepted", "exiResponse": "gBBBBBBBBB=="},
        "GetCertificateStatus": {"status": "Accepted", "ocspResult": "MIIBocsp"},
        "SignCertificate": {"status": "Accepted"},
    }


@pytest.mark.covers("charger_to_csms:DataTransfer")
@pytest.mark.usefixtures("gateway")
async def test_a_broken_tunnelled_message_is_refused_and_nothing_goes_up(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """An invalid 2.0.1 payload inside the tunnel gets a CALLERROR naming the problem;
    the CSMS sees nothing, and the station keeps working."""
    charger = await pnc_charger(make_charger, PncFirmware({}))
    bad = json.dumps({"idToken": {"idToken": "X", "type": "NotAType"}})
    with pytest.raises(CallErrorReceived) as raised:
        await charger.data_transfer(PNC, "Authorize", bad)
    assert raised.value.code == "PropertyConstraintViolation"
    assert "tunnelled ISO 15118 Authorize is invalid" in raised.value.description
    with pytest.raises(CallErrorReceived) as raised:
        await charger.data_transfer(PNC, "Authorize", "{not json")
    assert raised.value.code == "FormationViolation"  # the 1.6 spelling
    assert csms.received("Authorize") == []

    assert await tunnel(charger, "Authorize", {"idToken": EMAID}) == {
        "idTokenInfo": {"status": "Accepted"}
    }


@pytest.mark.covers(
    "csms_to_charger:CertificateSigned",
    "csms_to_charger:InstallCertificate",
    "csms_to_charger:TriggerMessage",
)
async def test_csms_iso15118_requests_reach_the_charger_tunnelled(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """CertificateSigned (V2G), InstallCertificate (V2G root) and TriggerMessage
    (SignV2GCertificate) arrive at the PnC firmware as the CSMS sent them; its 2.0.1
    answers, statusInfo included, reach the CSMS."""
    firmware = PncFirmware(
        {
            "CertificateSigned": {"status": "Accepted"},
            "InstallCertificate": {
                "status": "Failed",
                "statusInfo": {"reasonCode": "OutOfStorage"},
            },
            "TriggerMessage": {"status": "Accepted"},
        }
    )
    await pnc_charger(make_charger, firmware)
    requests: list[tuple[str, Payload]] = [
        ("CertificateSigned", {"certificateChain": CHAIN, "certificateType": "V2GCertificate"}),
        ("InstallCertificate", {"certificateType": "V2GRootCertificate", "certificate": CHAIN}),
        ("TriggerMessage", {"requestedMessage": "SignV2GCertificate"}),
    ]
    answers = [await csms.call("CP-1", action, payload) for action, payload in requests]

    assert firmware.received == requests
    assert firmware.violations == []
    assert answers == [
        {"status": "Accepted"},
        {"status": "Failed", "statusInfo": {"reasonCode": "OutOfStorage"}},
        {"status": "Accepted"},
    ]


@pytest.mark.covers(
    "csms_to_charger:CertificateSigned",
    "csms_to_charger:TriggerMessage",
    "csms_to_charger:GetInstalledCertificateIds",
)
async def test_a_charger_without_pnc_gets_honest_refusals(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """A charger that answers the tunnel UnknownVendorId: each request is refused with
    UnsupportedRequest and the reason, in the status its 2.0.1 enum has."""
    await pnc_charger(
        make_charger, PncFirmware({}), DataTransfer=lambda _p: {"status": "UnknownVendorId"}
    )
    signed = await csms.call(
        "CP-1",
        "CertificateSigned",
        {"certificateChain": CHAIN, "certificateType": "V2GCertificate"},
    )
    assert_refused(signed, "Rejected", "UnsupportedRequest")
    assert "UnknownVendorId" in signed["statusInfo"]["additionalInfo"]
    trigger = await csms.call("CP-1", "TriggerMessage", {"requestedMessage": "SignV2GCertificate"})
    assert_refused(trigger, "NotImplemented", "UnsupportedRequest")
    ids = await csms.call(
        "CP-1", "GetInstalledCertificateIds", {"certificateType": ["V2GRootCertificate"]}
    )
    assert_refused(ids, "NotFound", "UnsupportedRequest")


@pytest.mark.covers("csms_to_charger:GetInstalledCertificateIds")
async def test_get_installed_certificate_ids_asks_every_store_and_merges(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """No type listed means all (M03.FR.02): one 1.6 request per 1.6 type (the security
    extension), one tunnelled request for the ISO 15118 types; one merged answer."""
    v2g = {"certificateType": "V2GRootCertificate", "certificateHashData": HASH}
    firmware = PncFirmware(
        {"GetInstalledCertificateIds": {"status": "Accepted", "certificateHashDataChain": [v2g]}}
    )
    native_asked: list[Payload] = []

    def installed(request: Payload) -> Payload:
        native_asked.append(request)
        if request["certificateType"] == "CentralSystemRootCertificate":
            return {"status": "Accepted", "certificateHashData": [HASH]}
        return {"status": "NotFound"}

    charger = await pnc_charger(
        make_charger,
        firmware,
        GetInstalledCertificateIds=installed,
        **standard_configuration().handlers(),
    )
    # The gateway learns the security extension from the charger's keys (test_message_set).
    read = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}}
    await csms.call("CP-1", "GetVariables", {"getVariableData": [read]})

    answer = await csms.call("CP-1", "GetInstalledCertificateIds", {})

    assert native_asked == [
        {"certificateType": "CentralSystemRootCertificate"},
        {"certificateType": "ManufacturerRootCertificate"},
    ]
    assert firmware.received == [
        (
            "GetInstalledCertificateIds",
            {"certificateType": ["V2GRootCertificate", "MORootCertificate", "V2GCertificateChain"]},
        )
    ]
    assert answer == {
        "status": "Accepted",
        "certificateHashDataChain": [
            {"certificateType": "CSMSRootCertificate", "certificateHashData": HASH},
            v2g,
        ],
    }
    assert [a for a, _ in charger.received_calls].count("DataTransfer") == 1


@pytest.mark.covers("csms_to_charger:DeleteCertificate")
async def test_delete_certificate_looks_behind_the_tunnel_when_not_found(
    make_charger: MakeCharger, csms: CsmsSim
) -> None:
    """The hash does not say which store holds it: the security extension says NotFound,
    the PnC firmware deletes it, the CSMS hears Accepted."""
    firmware = PncFirmware({"DeleteCertificate": {"status": "Accepted"}})
    charger = await pnc_charger(
        make_charger,
        firmware,
        DeleteCertificate=lambda _p: {"status": "NotFound"},
        **standard_configuration().handlers(),
    )
    read = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}}
    await csms.call("CP-1", "GetVariables", {"getVariableData": [read]})

    answer = await csms.call("CP-1", "DeleteCertificate", {"certificateHashData": HASH})

    assert answer == {"status": "Accepted"}
    assert [a for a, _ in charger.received_calls] == [
        "GetConfiguration",
        "DeleteCertificate",
        "DataTransfer",
    ]
    assert firmware.received == [("DeleteCertificate", {"certificateHashData": HASH})]
