"""The 1.6 security extension: security events and certificates (reference §2.16, §2.17,
§3.8).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

Naming as in ``core``: ``<message>_req`` converts a received request, ``<message>_conf``
the other side's answer. A charger sending SecurityEventNotification or SignCertificate
implements the extension; the CSMS's certificate requests reach a charger only when
``StationView.security_extension`` says it does, else the gateway refuses them with
reason code UnsupportedRequest. ISO 15118 certificates (V2G, MO) have no 1.6
counterpart: they go through the Plug & Charge DataTransfer tunnel (``pnc``), which
the charger refuses if it does not implement it (§2.16, §3.8, §6).

GetInstalledCertificateIds and DeleteCertificate may need several charger CALLs (one per
1.6 certificate type; the hash alone does not say which store holds a certificate):
the functions here plan them and merge the answers, ``session.certificates`` sends them.

Certificates are relayed to the charger as they are: the CSMS manages the charger's own
certificates. Caveat (§3.8 architecture note): the charger's TLS peer is the gateway, not
the CSMS, so a CSMSRootCertificate installed this way only lets the charger connect if
the gateway's charger-side server certificate chains to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from gateway.ocppj import Payload
from gateway.translate import pnc
from gateway.translate.types import (
    Context,
    Direction,
    OutboundCall,
    Outcome,
    Route,
    normalise_datetime,
    refused,
)

_NO_EXTENSION: Final = "the OCPP 1.6 charger does not implement the security extension"


def _status_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    """The status alone: identical enums on both sides (§2.16), statusInfo not in 1.6."""
    return Outcome(reply={"status": result["status"]})


# --- SecurityEventNotification (2.0.1 A04; reference §2.17, §3.8) -------------------

# 1.6 white paper name -> 2.0.1 name where they differ (§2.17); others are copied.
SECURITY_EVENT_TYPES: Final[dict[str, str]] = {
    "FailedToAuthenticationAtCentralSystem": "FailedToAuthenticateAtCsms",
    "CentralSystemFailedToAuthentication": "CsmsFailedToAuthenticate",
    "InvalidCentralSystemCertificate": "InvalidCsmsCertificate",
    "InvalidChargePointCertificate": "InvalidChargingStationCertificate",
}


def security_event_notification_req(payload: Payload, ctx: Context) -> Outcome:
    event_type: str = payload["type"]
    forward: Payload = {
        "type": SECURITY_EVENT_TYPES.get(event_type, event_type),
        "timestamp": normalise_datetime(payload["timestamp"]),
    }
    if "techInfo" in payload:
        forward["techInfo"] = payload["techInfo"]
    return Outcome(forward=OutboundCall("SecurityEventNotification", forward))


def security_event_notification_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    return Outcome(reply={})


# --- SignCertificate (2.0.1 A02, A03; reference §3.8) -------------------------------


def sign_certificate_req(payload: Payload, ctx: Context) -> Outcome:
    # 1.6 signs only the Charge Point certificate, for the link to its Central System.
    forward = {"csr": payload["csr"], "certificateType": "ChargingStationCertificate"}
    return Outcome(forward=OutboundCall("SignCertificate", forward))


def sign_certificate_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    return _status_conf(result, request, ctx)


# --- CertificateSigned (2.0.1 A02, A03; reference §3.8) -----------------------------


def certificate_signed_req(payload: Payload, ctx: Context) -> Outcome:
    if payload.get("certificateType") == "V2GCertificate":
        return Outcome(forward=pnc.wrap("CertificateSigned", payload))  # the PnC tunnel
    if not ctx.station.security_extension:
        return refused("Rejected", "UnsupportedRequest", _NO_EXTENSION)
    forward = {"certificateChain": payload["certificateChain"]}
    return Outcome(forward=OutboundCall("CertificateSigned", forward))


def certificate_signed_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    if request.get("certificateType") == "V2GCertificate":
        return pnc.reply_from_tunnel("CertificateSigned", result, "Rejected")
    return _status_conf(result, request, ctx)


# --- InstallCertificate, GetInstalledCertificateIds (2.0.1 M03, M05; §2.16) ---------

# 2.0.1 InstallCertificateUseEnumType / GetCertificateIdUseEnumType -> 1.6
# CertificateUseEnumType (§2.16). The ISO 15118 ones go through the PnC tunnel.
CERTIFICATE_USE_V16: Final[dict[str, str]] = {
    "CSMSRootCertificate": "CentralSystemRootCertificate",
    "ManufacturerRootCertificate": "ManufacturerRootCertificate",
}
CERTIFICATE_USE_V201: Final = {v16: v201 for v201, v16 in CERTIFICATE_USE_V16.items()}
ISO15118_CERTIFICATE_USES: Final = (
    "V2GRootCertificate",
    "MORootCertificate",
    "V2GCertificateChain",
)


def install_certificate_req(payload: Payload, ctx: Context) -> Outcome:
    if payload["certificateType"] in ISO15118_CERTIFICATE_USES:
        return Outcome(forward=pnc.wrap("InstallCertificate", payload))
    if not ctx.station.security_extension:
        return refused("Rejected", "UnsupportedRequest", _NO_EXTENSION)
    certificate_type = CERTIFICATE_USE_V16[payload["certificateType"]]
    forward = {"certificateType": certificate_type, "certificate": payload["certificate"]}
    return Outcome(forward=OutboundCall("InstallCertificate", forward))


def install_certificate_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    if request["certificateType"] in ISO15118_CERTIFICATE_USES:
        return pnc.reply_from_tunnel("InstallCertificate", result, "Rejected")
    return _status_conf(result, request, ctx)


def installed_certificate_queries(payload: Payload, ctx: Context) -> tuple[OutboundCall, ...]:
    """The charger CALLs that answer a GetInstalledCertificateIds, in order: 1.6 asks for
    one certificate type per request (SEC §6.x), so one per 1.6 type asked for (when the
    charger has the security extension), then one tunnelled request for the ISO 15118
    types. No type listed means every type (2.0.1 M03.FR.02)."""
    listed: list[str] = payload.get("certificateType") or [
        *CERTIFICATE_USE_V16,
        *ISO15118_CERTIFICATE_USES,
    ]
    wanted = list(dict.fromkeys(listed))
    queries = []
    if ctx.station.security_extension:
        queries = [
            OutboundCall("GetInstalledCertificateIds", {"certificateType": CERTIFICATE_USE_V16[t]})
            for t in wanted
            if t in CERTIFICATE_USE_V16
        ]
    iso15118 = [t for t in wanted if t in ISO15118_CERTIFICATE_USES]
    if iso15118:
        queries.append(pnc.wrap("GetInstalledCertificateIds", {"certificateType": iso15118}))
    return tuple(queries)


def installed_certificate_ids_response(
    payload: Payload, answers: Sequence[tuple[OutboundCall, Payload]], ctx: Context
) -> Payload:
    """One 2.0.1 GetInstalledCertificateIdsResponse from the charger's answers to
    :func:`installed_certificate_queries`: every hash found, in query order; NotFound
    with the reason when nothing was, because a part could not be asked."""
    chain: list[Payload] = []
    unasked: list[str] = []
    listed: list[str] = payload.get("certificateType", [])
    if not ctx.station.security_extension and (
        not listed or any(t in CERTIFICATE_USE_V16 for t in listed)
    ):
        unasked.append(_NO_EXTENSION)
    for query, answer in answers:
        if query.action == "GetInstalledCertificateIds":
            certificate_type = CERTIFICATE_USE_V201[query.payload["certificateType"]]
            chain.extend(
                {"certificateType": certificate_type, "certificateHashData": _hash_data(entry)}
                for entry in answer.get("certificateHashData", [])
            )
            continue
        refusal = pnc.refusal("GetInstalledCertificateIds", answer)
        if refusal is not None:
            unasked.append(refusal)
            continue
        inner = pnc.answer_in("GetInstalledCertificateIds", answer)
        chain.extend(inner.get("certificateHashDataChain", []))
    if chain:
        return {"status": "Accepted", "certificateHashDataChain": chain}
    if unasked:
        return refused("NotFound", "UnsupportedRequest", "; ".join(unasked)).reply or {}
    return {"status": "NotFound"}


# --- DeleteCertificate (2.0.1 M04; reference §3.8) ----------------------------------

_HASH_FIELDS: Final = ("hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber")


def _hash_data(payload: Payload) -> Payload:
    """CertificateHashDataType, identical in both versions, built field by field."""
    return {key: payload[key] for key in _HASH_FIELDS}


def delete_certificate_attempts(payload: Payload, ctx: Context) -> tuple[OutboundCall, ...]:
    """Where the certificate may be, in the order to try: a hash does not say whether it
    names a 1.6 certificate (security extension) or an ISO 15118 one (PnC tunnel)."""
    forward = {"certificateHashData": _hash_data(payload["certificateHashData"])}
    native = (OutboundCall("DeleteCertificate", forward),) if ctx.station.security_extension else ()
    return (*native, pnc.wrap("DeleteCertificate", forward))


def deletion_reply(attempt: OutboundCall, answer: Payload) -> Payload:
    """The 2.0.1 DeleteCertificateResponse one attempt gave (refusal: Failed + reason;
    DeleteCertificateStatusEnumType has no Rejected)."""
    if attempt.action == "DeleteCertificate":
        return {"status": answer["status"]}
    return pnc.reply_from_tunnel("DeleteCertificate", answer, "Failed").reply or {}


def deletion_settled(reply: Payload) -> bool:
    """Whether an attempt found the certificate (deleted or not): no need to go on."""
    return reply["status"] == "Accepted" or (
        reply["status"] == "Failed" and "statusInfo" not in reply
    )


def deletion_response(replies: Sequence[Payload], ctx: Context) -> Payload:
    """The answer when no attempt settled it: NotFound when one looked and did not find
    it, else the tunnel's refusal, with the missing security extension named too."""
    if any(reply["status"] == "NotFound" for reply in replies):
        return {"status": "NotFound"}
    explanations = [] if ctx.station.security_extension else [_NO_EXTENSION]
    explanations += [r["statusInfo"]["additionalInfo"] for r in replies if "statusInfo" in r]
    return refused("Failed", "UnsupportedRequest", "; ".join(explanations)).reply or {}


ROUTES: Final[dict[tuple[Direction, str], Route]] = {
    (Direction.CHARGER_TO_CSMS, "SecurityEventNotification"): Route(
        "SecurityEventNotification",
        security_event_notification_req,
        security_event_notification_conf,
    ),
    (Direction.CHARGER_TO_CSMS, "SignCertificate"): Route(
        "SignCertificate", sign_certificate_req, sign_certificate_conf
    ),
    (Direction.CSMS_TO_CHARGER, "CertificateSigned"): Route(
        "CertificateSigned",
        certificate_signed_req,
        certificate_signed_conf,
        also=("DataTransfer",),  # V2GCertificate: the ISO 15118 PnC tunnel
    ),
    (Direction.CSMS_TO_CHARGER, "InstallCertificate"): Route(
        "InstallCertificate",
        install_certificate_req,
        install_certificate_conf,
        also=("DataTransfer",),  # V2G and MO roots: the ISO 15118 PnC tunnel
    ),
}
