"""ISO 15118 Plug & Charge for 1.6 chargers: the DataTransfer tunnel (reference §6).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

The OCA application note "Using ISO 15118 Plug & Charge with OCPP 1.6" carries 2.0.1
PnC messages inside DataTransfer with vendorId ``org.openchargealliance.iso15118pnc``:
``messageId`` is the 2.0.1 action and ``data`` the 2.0.1 payload as JSON text, both for
the request and (in DataTransfer.conf ``data``) for its answer. The gateway unwraps what
a charger tunnels into the native 2.0.1 CALL and wraps the answer back, and wraps the
CSMS's ISO 15118 certificate requests the other way, so a 1.6 charger with PnC firmware
looks like a native 2.0.1 PnC station.

The inbound schema check sees only the DataTransfer around a tunnelled message, so the
message inside is validated here against its own 2.0.1 schema, both ways: nothing
invalid goes upstream, and the CSMS never gets an answer its schema rejects.

Whether a charger implements the note is learnt from its answer, not configured: one
that does not answers the tunnel with UnknownVendorId (1.6 §4.3), which the gateway
turns into an honest refusal with reason code UnsupportedRequest.
"""

from __future__ import annotations

from typing import Final

import orjson

from gateway import schemas
from gateway.errors import GatewayError, InvalidPayload
from gateway.ocppj import Payload, Version
from gateway.translate import core
from gateway.translate.types import (
    AuthorizationSeen,
    Context,
    OutboundCall,
    Outcome,
    refused,
)

PNC_VENDOR_ID: Final = "org.openchargealliance.iso15118pnc"

# 2.0.1 messages a PnC charger tunnels to the CSMS (the note's charger-initiated set).
FROM_CHARGER: Final = (
    "Authorize",
    "Get15118EVCertificate",
    "GetCertificateStatus",
    "SignCertificate",
)
# 2.0.1 messages the CSMS's requests go to the charger as, when they concern ISO 15118.
TO_CHARGER: Final = (
    "CertificateSigned",
    "InstallCertificate",
    "DeleteCertificate",
    "GetInstalledCertificateIds",
    "TriggerMessage",
)


def is_tunnelled(payload: Payload) -> bool:
    """Whether a DataTransfer is the ISO 15118 PnC tunnel."""
    return payload.get("vendorId") == PNC_VENDOR_ID


def wrap(action: str, payload: Payload) -> OutboundCall:
    """The DataTransfer carrying a 2.0.1 request to a 1.6 charger."""
    assert action in TO_CHARGER, f"the PnC note defines no {action} to a charger"
    data = orjson.dumps(payload).decode()
    return OutboundCall(
        "DataTransfer", {"vendorId": PNC_VENDOR_ID, "messageId": action, "data": data}
    )


def _inner(action: str, kind: schemas.Kind, data: object, whose: str) -> Payload:
    """The 2.0.1 payload in a tunnel's ``data``, parsed and checked against its schema."""
    if not isinstance(data, str):
        raise InvalidPayload(f"{whose} tunnelled ISO 15118 {action} has no data")
    try:
        inner = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(
            f"{whose} tunnelled ISO 15118 {action}: data is not JSON ({exc})"
        ) from exc
    if not isinstance(inner, dict):
        raise InvalidPayload(f"{whose} tunnelled ISO 15118 {action}: data is not a JSON object")
    try:
        schemas.validate(Version.V201, action, kind, inner)
    except GatewayError as exc:
        raise InvalidPayload(
            f"{whose} tunnelled ISO 15118 {action} is invalid: {exc.description}",
            code=exc.code,
        ) from exc
    return inner


# --- charger -> CSMS: DataTransfer(iso15118pnc) -> the 2.0.1 message ----------------


def data_transfer_from_charger_req(payload: Payload, ctx: Context) -> Outcome:
    if not is_tunnelled(payload):
        return core.data_transfer_from_charger_req(payload, ctx)
    action = payload.get("messageId")
    if action not in FROM_CHARGER:
        # The note defines no other charger-initiated message: a 2.0.1 CSMS could not
        # act on it either, so the charger hears so at once (1.6 §4.3 status).
        return Outcome(reply={"status": "UnknownMessageId"})
    inner = _inner(action, schemas.Kind.REQUEST, payload.get("data"), "the charger's")
    return Outcome(forward=OutboundCall(action, inner))


def data_transfer_from_charger_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    if not is_tunnelled(request):
        return core.data_transfer_from_charger_conf(result, request, ctx)
    reply = {"status": "Accepted", "data": orjson.dumps(result).decode()}
    if request["messageId"] == "Authorize":
        # The contract's verdict feeds the offline authorization cache like any idTag's
        # (2.0.1 C10), keyed by the eMAID the charger will start the transaction with.
        inner = orjson.loads(request["data"])
        seen = AuthorizationSeen(inner["idToken"]["idToken"], result["idTokenInfo"])
        return Outcome(reply=reply, effects=(seen,))
    return Outcome(reply=reply)


# --- CSMS -> charger: the answer inside DataTransfer.conf ---------------------------


def refusal(action: str, result: Payload) -> str | None:
    """Why the charger did not take a tunnelled ``action`` (None: it did, Accepted)."""
    status: str = result["status"]
    if status == "Accepted":
        return None
    explanation = (
        f"the OCPP 1.6 charger answered the ISO 15118 Plug & Charge DataTransfer "
        f"({PNC_VENDOR_ID}, {action}) with {status}"
    )
    if status in ("UnknownVendorId", "UnknownMessageId"):
        explanation += ": it does not implement Plug & Charge over OCPP 1.6"
    return explanation


def reply_from_tunnel(action: str, result: Payload, refusal_status: str) -> Outcome:
    """The 2.0.1 answer a charger gave to a tunnelled ``action``; ``refusal_status`` is
    the status the CSMS gets when the charger did not take the tunnel at all."""
    explanation = refusal(action, result)
    if explanation is not None:
        return refused(refusal_status, "UnsupportedRequest", explanation)
    return Outcome(reply=answer_in(action, result))


def answer_in(action: str, result: Payload) -> Payload:
    """The 2.0.1 response a charger put in an Accepted DataTransfer.conf, checked."""
    return _inner(action, schemas.Kind.RESPONSE, result.get("data"), "the charger's answer to a")
