"""The 1.6 security extension: security events and certificates (reference §2.16, §2.17,
§3.8).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

Naming as in ``core``: ``<message>_req`` converts a received request, ``<message>_conf``
the other side's answer. A charger sending SecurityEventNotification or SignCertificate
implements the extension; the CSMS's certificate requests reach a charger only when
``StationView.security_extension`` says it does, else the gateway refuses them with
reason code UnsupportedRequest. ISO 15118 certificates (V2G, MO) have no 1.6
counterpart and are refused with UnsupportedParam (§2.16, §3.8).

Certificates are relayed to the charger as they are: the CSMS manages the charger's own
certificates. Caveat (§3.8 architecture note): the charger's TLS peer is the gateway, not
the CSMS, so a CSMSRootCertificate installed this way only lets the charger connect if
the gateway's charger-side server certificate chains to it.
"""

from __future__ import annotations

from typing import Final

from gateway.ocppj import Payload
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
    if not ctx.station.security_extension:
        return refused("Rejected", "UnsupportedRequest", _NO_EXTENSION)
    if payload.get("certificateType", "ChargingStationCertificate") != (
        "ChargingStationCertificate"
    ):
        return refused(
            "Rejected",
            "UnsupportedParam",
            "an OCPP 1.6 charger has no ISO 15118 (V2G) certificate, only its own "
            "Charge Point certificate",
        )
    forward = {"certificateChain": payload["certificateChain"]}
    return Outcome(forward=OutboundCall("CertificateSigned", forward))


def certificate_signed_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    return _status_conf(result, request, ctx)


# --- InstallCertificate, GetInstalledCertificateIds (2.0.1 M03, M05; §2.16) ---------

# 2.0.1 InstallCertificateUseEnumType / GetCertificateIdUseEnumType -> 1.6
# CertificateUseEnumType (§2.16). V2GRootCertificate, MORootCertificate and
# V2GCertificateChain have no 1.6 counterpart.
CERTIFICATE_USE_V16: Final[dict[str, str]] = {
    "CSMSRootCertificate": "CentralSystemRootCertificate",
    "ManufacturerRootCertificate": "ManufacturerRootCertificate",
}

_NO_ISO15118: Final = (
    "OCPP 1.6 knows only CSMSRootCertificate (CentralSystemRootCertificate) and "
    "ManufacturerRootCertificate, no ISO 15118 certificates"
)


def install_certificate_req(payload: Payload, ctx: Context) -> Outcome:
    if not ctx.station.security_extension:
        return refused("Rejected", "UnsupportedRequest", _NO_EXTENSION)
    certificate_type = CERTIFICATE_USE_V16.get(payload["certificateType"])
    if certificate_type is None:
        return refused("Rejected", "UnsupportedParam", _NO_ISO15118)
    forward = {"certificateType": certificate_type, "certificate": payload["certificate"]}
    return Outcome(forward=OutboundCall("InstallCertificate", forward))


def install_certificate_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    return _status_conf(result, request, ctx)


def _requested_types(payload: Payload) -> list[str]:
    """The 2.0.1 types asked for that 1.6 knows, in order, once each (none listed: all)."""
    listed: list[str] = payload.get("certificateType", list(CERTIFICATE_USE_V16))
    return [t for t in dict.fromkeys(listed) if t in CERTIFICATE_USE_V16]


def get_installed_certificate_ids_req(payload: Payload, ctx: Context) -> Outcome:
    if not ctx.station.security_extension:
        return refused("NotFound", "UnsupportedRequest", _NO_EXTENSION)
    requested = _requested_types(payload)
    if not requested:
        # Honest: a 1.6 charger can hold none of these.
        return refused("NotFound", "UnsupportedParam", _NO_ISO15118)
    if len(requested) > 1:
        # 1.6 takes one certificateType per request, and a route forwards one request.
        return refused(
            "NotFound",
            "TooManyElements",
            "OCPP 1.6 GetInstalledCertificateIds asks for one certificate type at a time: "
            "ask for CSMSRootCertificate and ManufacturerRootCertificate separately",
        )
    forward = {"certificateType": CERTIFICATE_USE_V16[requested[0]]}
    return Outcome(forward=OutboundCall("GetInstalledCertificateIds", forward))


def get_installed_certificate_ids_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    reply: Payload = {"status": result["status"]}
    hashes: list[Payload] = result.get("certificateHashData", [])
    if hashes:
        # The request converter forwarded exactly one type: the 2.0.1 name of each entry.
        certificate_type = _requested_types(request)[0]
        reply["certificateHashDataChain"] = [
            {"certificateType": certificate_type, "certificateHashData": _hash_data(entry)}
            for entry in hashes
        ]
    return Outcome(reply=reply)


# --- DeleteCertificate (2.0.1 M04; reference §3.8) ----------------------------------

_HASH_FIELDS: Final = ("hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber")


def _hash_data(payload: Payload) -> Payload:
    """CertificateHashDataType, identical in both versions, built field by field."""
    return {key: payload[key] for key in _HASH_FIELDS}


def delete_certificate_req(payload: Payload, ctx: Context) -> Outcome:
    if not ctx.station.security_extension:
        # DeleteCertificateStatusEnumType has no Rejected: Failed, and the reason.
        return refused("Failed", "UnsupportedRequest", _NO_EXTENSION)
    forward = {"certificateHashData": _hash_data(payload["certificateHashData"])}
    return Outcome(forward=OutboundCall("DeleteCertificate", forward))


def delete_certificate_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    return _status_conf(result, request, ctx)


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
        "CertificateSigned", certificate_signed_req, certificate_signed_conf
    ),
    (Direction.CSMS_TO_CHARGER, "InstallCertificate"): Route(
        "InstallCertificate", install_certificate_req, install_certificate_conf
    ),
    (Direction.CSMS_TO_CHARGER, "DeleteCertificate"): Route(
        "DeleteCertificate", delete_certificate_req, delete_certificate_conf
    ),
    (Direction.CSMS_TO_CHARGER, "GetInstalledCertificateIds"): Route(
        "GetInstalledCertificateIds",
        get_installed_certificate_ids_req,
        get_installed_certificate_ids_conf,
    ),
}
