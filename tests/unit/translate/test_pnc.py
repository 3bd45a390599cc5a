"""Tests for gateway.translate.pnc: the ISO 15118 Plug & Charge DataTransfer tunnel.

The golden pairs in tests/data (DataTransfer/pnc_*, CertificateSigned, InstallCertificate,
TriggerMessage) pin the translations; these pin what a broken tunnel gets: nothing
invalid goes upstream, and the CSMS never gets an answer its schema rejects.
"""

from __future__ import annotations

import json

import pytest

from gateway.errors import ErrorCode, InvalidPayload
from gateway.ocppj import Payload
from gateway.translate import pnc

from .conftest import MakeContext

TOKEN = {"idToken": "DEABCC12345678X", "type": "eMAID"}


def tunnel(message_id: str, data: object) -> Payload:
    payload: Payload = {"vendorId": pnc.PNC_VENDOR_ID, "messageId": message_id}
    if data is not None:
        payload["data"] = data
    return payload


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (None, ErrorCode.FORMAT_VIOLATION, "has no data"),
        ("{not json", ErrorCode.FORMAT_VIOLATION, "not JSON"),
        ('["idToken"]', ErrorCode.FORMAT_VIOLATION, "not a JSON object"),
        ("{}", ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, "Authorize is invalid"),
        (json.dumps({"idToken": {"idToken": "X", "type": "Plate"}}),
         ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "Authorize is invalid"),
    ],
)  # fmt: skip
def test_a_broken_tunnelled_request_is_refused_not_forwarded(
    data: object, code: ErrorCode, words: str, make_context: MakeContext
) -> None:
    """The charger gets a CALLERROR naming the problem, with the schema rule's code."""
    with pytest.raises(InvalidPayload, match=words) as raised:
        pnc.data_transfer_from_charger_req(tunnel("Authorize", data), make_context())
    assert raised.value.code is code


def test_other_vendors_data_transfer_is_plain_data_transfer(make_context: MakeContext) -> None:
    received = {"vendorId": "com.acme", "messageId": "Authorize", "data": "{}"}
    outcome = pnc.data_transfer_from_charger_req(received, make_context())
    assert outcome.forward is not None
    assert outcome.forward.action == "DataTransfer"
    assert outcome.forward.payload == received


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "Accepted"},  # no data
        {"status": "Accepted", "data": "[]"},
        {"status": "Accepted", "data": json.dumps({"status": "Installed"})},
    ],
)
def test_a_broken_tunnelled_answer_never_reaches_the_csms(answer: Payload) -> None:
    with pytest.raises(InvalidPayload, match="the charger's answer to a tunnelled"):
        pnc.reply_from_tunnel("CertificateSigned", answer, "Rejected")


@pytest.mark.parametrize("status", ["Rejected", "UnknownMessageId", "UnknownVendorId"])
def test_a_refused_tunnel_is_an_honest_refusal(status: str) -> None:
    outcome = pnc.reply_from_tunnel("InstallCertificate", {"status": status}, "Rejected")
    assert outcome.forward is None and outcome.reply is not None
    assert outcome.reply["status"] == "Rejected"
    assert outcome.reply["statusInfo"]["reasonCode"] == "UnsupportedRequest"
    assert status in outcome.reply["statusInfo"]["additionalInfo"]
    implements = "does not implement" in outcome.reply["statusInfo"]["additionalInfo"]
    assert implements == (status != "Rejected")


def test_wrap_carries_the_2_0_1_payload_as_json_text() -> None:
    payload = {"certificateType": "V2GRootCertificate", "certificate": "PEM\n"}
    call = pnc.wrap("InstallCertificate", payload)
    assert call.action == "DataTransfer"
    assert call.payload["vendorId"] == pnc.PNC_VENDOR_ID
    assert call.payload["messageId"] == "InstallCertificate"
    assert json.loads(call.payload["data"]) == payload
