"""Firmware and logs: UpdateFirmware, firmware status, GetLog/GetDiagnostics, log status
(reference §2.10, §2.11, §3.1, §3.3, §3.8).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

Naming as in ``core``: ``<message>_req`` converts a received request, ``<message>_conf``
the other side's answer. Which 1.6 message a CSMS request becomes depends on
``StationView.security_extension``:

* UpdateFirmware: a signed firmware (``signature`` and ``signingCertificate``) goes to a
  charger with the security extension as SignedUpdateFirmware, whose schema requires
  both; an unsigned one goes as plain UpdateFirmware to any charger (reference §3.3
  "unsigned or CP without security extension"). A charger doing only signed updates may
  answer that with CALLERROR NotSupported, which reaches the CSMS as such: the gateway
  does not guess, since many chargers implement only part of the extension.
  The signature is never dropped (§3.3): a signed firmware for a charger without the
  extension, or half a signature (one of the two fields), is refused by the gateway.
  Plain 1.6 has no install time and installs once downloaded, so an
  ``installDateTime`` later than ``retrieveDateTime`` is refused too; one no later is
  what the charger does anyway, and is dropped.
* GetLog goes as the extension's GetLog (same shape), else a DiagnosticsLog goes as
  GetDiagnostics and a SecurityLog is refused (§3.3).

The charger's notifications need the ``requestId`` of the CSMS request that started the
update or upload (2.0.1: mandatory unless triggered with nothing ongoing, §2.11, §3.1).
Plain 1.6 ones carry none, and the extension's may omit it: the session keeps the id of
the request the charger accepted (:func:`started_request_id`) in the station record,
forgets it after a final status (:data:`FIRMWARE_FINAL_STATUSES`,
:data:`LOG_FINAL_STATUSES`), and converts with :func:`firmware_status_notification` /
:func:`log_status_notification`. The routes' request converters, which see no such
record, send none.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from gateway.ocppj import Payload
from gateway.translate.types import (
    BootReasonExpected,
    Context,
    Direction,
    Effect,
    OutboundCall,
    Outcome,
    RequestInProgress,
    Route,
    refused,
)

# 1.6 UpdateFirmware.location and GetDiagnostics.location are anyURI, 2.0.1 locations
# any string: a scheme (RFC 3986 §3.1), a colon, then no whitespace.
_URI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


def _copy(payload: Payload, keys: tuple[str, ...]) -> Payload:
    return {key: payload[key] for key in keys if key in payload}


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def started_request_id(result: Payload, request: Payload) -> int | None:
    """The 2.0.1 ``requestId`` of an UpdateFirmware or GetLog request (``request``) whose
    reply (``result``, 2.0.1) says the charger started on it, else None: the id the
    session keeps for the charger's status notifications."""
    if result["status"] in {"Accepted", "AcceptedCanceled"}:
        request_id: int = request["requestId"]
        return request_id
    return None


# --- UpdateFirmware (2.0.1 L01, L02; reference §3.3, §3.8) --------------------------

_FIRMWARE_FIELDS: Final = (
    "location",
    "retrieveDateTime",
    "installDateTime",
    "signingCertificate",
    "signature",
)
_SIGNATURE_FIELDS: Final = ("signingCertificate", "signature")


def update_firmware_req(payload: Payload, ctx: Context) -> Outcome:
    firmware: Payload = payload["firmware"]
    signed = [key for key in _SIGNATURE_FIELDS if key in firmware]
    if signed and not ctx.station.security_extension:
        return refused(
            "Rejected",
            "UnsupportedRequest",
            "the OCPP 1.6 charger does not implement the security extension, so it cannot "
            "verify a signed firmware; the signature is not dropped",
        )
    if len(signed) == len(_SIGNATURE_FIELDS):
        forward = _copy(payload, ("retries", "retryInterval", "requestId"))
        forward["firmware"] = _copy(firmware, _FIRMWARE_FIELDS)
        return Outcome(forward=OutboundCall("SignedUpdateFirmware", forward))
    if signed:
        missing = next(key for key in _SIGNATURE_FIELDS if key not in firmware)
        return refused(
            "Rejected",
            "MissingParam",
            f"OCPP 1.6 SignedUpdateFirmware requires both signingCertificate and "
            f"signature: {missing} is missing",
        )
    return _plain_update_firmware(payload, firmware)


def _plain_update_firmware(payload: Payload, firmware: Payload) -> Outcome:
    """An unsigned firmware as 1.6 UpdateFirmware, or the gateway's refusal."""
    location: str = firmware["location"]
    if not _URI.fullmatch(location):
        return refused(
            "Rejected", "InvalidURL", "OCPP 1.6 UpdateFirmware needs the location as a URI"
        )
    retrieve: str = firmware["retrieveDateTime"]
    install: str | None = firmware.get("installDateTime")
    if install is not None:
        install_at, retrieve_at = _moment(install), _moment(retrieve)
        if install_at is None or retrieve_at is None or install_at > retrieve_at:
            return refused(
                "Rejected",
                "UnsupportedParam",
                "OCPP 1.6 UpdateFirmware has no installDateTime: the charger installs as "
                "soon as the firmware is downloaded",
            )
    forward: Payload = {"location": location, "retrieveDate": retrieve}
    forward.update(_copy(payload, ("retries", "retryInterval")))
    return Outcome(forward=OutboundCall("UpdateFirmware", forward))


def update_firmware_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    # SignedUpdateFirmware.conf has the 2.0.1 statuses (§2.16); plain UpdateFirmware.conf
    # is empty, its request accepted (§3.3).
    reply = {"status": result.get("status", "Accepted")}
    request_id = started_request_id(reply, request)
    effects = () if request_id is None else (RequestInProgress("firmware", request_id),)
    return Outcome(reply=reply, effects=effects)


# --- Firmware status (2.0.1 L01.FR.01; reference §2.11, §3.1, §3.8) ------------------

# The last status of an update, after which no update is ongoing (2.0.1 L01, §2.11).
FIRMWARE_FINAL_STATUSES: Final = frozenset(
    {
        "DownloadFailed",
        "InstallationFailed",
        "Installed",
        "InstallVerificationFailed",
        "InvalidSignature",
    }
)


def firmware_status_notification(payload: Payload, request_id: int | None) -> Payload:
    """2.0.1 FirmwareStatusNotificationRequest of a 1.6 FirmwareStatusNotification or
    SignedFirmwareStatusNotification: the status as is (the 2.0.1 enum is the signed
    1.6 one, §2.11), the charger's requestId, else ``request_id`` (None: none)."""
    notification: Payload = {"status": payload["status"]}
    request_id = payload.get("requestId", request_id)
    if request_id is not None:
        notification["requestId"] = request_id
    return notification


# The charger reboots into the new firmware after these: its boot says why (§3.1).
_REBOOTING_STATUSES: Final = frozenset({"Installing", "InstallRebooting"})


def firmware_status_notification_req(payload: Payload, ctx: Context) -> Outcome:
    forward = firmware_status_notification(payload, ctx.station.firmware_request_id)
    effects: tuple[Effect, ...] = ()
    if payload["status"] in _REBOOTING_STATUSES:
        effects = (BootReasonExpected("FirmwareUpdate"),)
    elif payload["status"] in FIRMWARE_FINAL_STATUSES:
        effects = (RequestInProgress("firmware", None),)
    return Outcome(forward=OutboundCall("FirmwareStatusNotification", forward), effects=effects)


def firmware_status_notification_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    return Outcome(reply={})


# --- GetLog (2.0.1 N01; reference §3.3, §3.8) ---------------------------------------


def get_log_req(payload: Payload, ctx: Context) -> Outcome:
    log: Payload = payload["log"]
    if ctx.station.security_extension:
        forward = _copy(payload, ("logType", "requestId", "retries", "retryInterval"))
        forward["log"] = _copy(log, ("remoteLocation", "oldestTimestamp", "latestTimestamp"))
        return Outcome(forward=OutboundCall("GetLog", forward))
    if payload["logType"] != "DiagnosticsLog":
        return refused(
            "Rejected",
            "UnsupportedRequest",
            "the OCPP 1.6 charger does not implement the security extension: it has no "
            "security log to upload",
        )
    location: str = log["remoteLocation"]
    if not _URI.fullmatch(location):
        return refused(
            "Rejected", "InvalidURL", "OCPP 1.6 GetDiagnostics needs the remoteLocation as a URI"
        )
    forward = {"location": location}
    forward.update(_copy(payload, ("retries", "retryInterval")))
    if "oldestTimestamp" in log:
        forward["startTime"] = log["oldestTimestamp"]
    if "latestTimestamp" in log:
        forward["stopTime"] = log["latestTimestamp"]
    return Outcome(forward=OutboundCall("GetDiagnostics", forward))


def get_log_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    # GetLog.conf: statuses identical (§2.16). GetDiagnostics.conf has no status: the
    # charger took the request; without fileName it has no diagnostics, which 2.0.1
    # says the same way, by omitting filename (§3.3).
    reply: Payload = {"status": result.get("status", "Accepted")}
    filename = result.get("filename", result.get("fileName"))
    if filename is not None:
        reply["filename"] = filename
    request_id = started_request_id(reply, request)
    effects = () if request_id is None else (RequestInProgress("log", request_id),)
    return Outcome(reply=reply, effects=effects)


# --- Log status (2.0.1 N01; reference §2.10, §3.1, §3.8) ---------------------------

# 1.6 DiagnosticsStatus -> 2.0.1 UploadLogStatusEnumType (§2.10). The security
# extension's LogStatusNotification already uses the 2.0.1 names.
UPLOAD_LOG_STATUS: Final[dict[str, str]] = {
    "Idle": "Idle",
    "Uploaded": "Uploaded",
    "UploadFailed": "UploadFailure",
    "Uploading": "Uploading",
}

# The last status of an upload, after which none is ongoing (2.0.1 names).
LOG_FINAL_STATUSES: Final = frozenset(
    {"BadMessage", "NotSupportedOperation", "PermissionDenied", "Uploaded", "UploadFailure"}
)


def log_status_notification(payload: Payload, request_id: int | None) -> Payload:
    """2.0.1 LogStatusNotificationRequest of a 1.6 DiagnosticsStatusNotification or
    LogStatusNotification: the status in 2.0.1 terms (§2.10), the charger's requestId,
    else ``request_id`` (None: none)."""
    status: str = payload["status"]
    notification: Payload = {"status": UPLOAD_LOG_STATUS.get(status, status)}
    request_id = payload.get("requestId", request_id)
    if request_id is not None:
        notification["requestId"] = request_id
    return notification


def log_status_notification_req(payload: Payload, ctx: Context) -> Outcome:
    forward = log_status_notification(payload, ctx.station.log_request_id)
    effects: tuple[Effect, ...] = ()
    if forward["status"] in LOG_FINAL_STATUSES:
        effects = (RequestInProgress("log", None),)
    return Outcome(forward=OutboundCall("LogStatusNotification", forward), effects=effects)


def log_status_notification_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    return Outcome(reply={})


ROUTES: Final[dict[tuple[Direction, str], Route]] = {
    (Direction.CSMS_TO_CHARGER, "UpdateFirmware"): Route(
        "UpdateFirmware",
        update_firmware_req,
        update_firmware_conf,
        also=("SignedUpdateFirmware",),  # signed firmware, security extension (§3.8)
    ),
    (Direction.CHARGER_TO_CSMS, "FirmwareStatusNotification"): Route(
        "FirmwareStatusNotification",
        firmware_status_notification_req,
        firmware_status_notification_conf,
    ),
    (Direction.CHARGER_TO_CSMS, "SignedFirmwareStatusNotification"): Route(
        "FirmwareStatusNotification",
        firmware_status_notification_req,
        firmware_status_notification_conf,
    ),
    (Direction.CSMS_TO_CHARGER, "GetLog"): Route(
        "GetDiagnostics",
        get_log_req,
        get_log_conf,
        also=("GetLog",),  # security extension (§3.8)
    ),
    (Direction.CHARGER_TO_CSMS, "DiagnosticsStatusNotification"): Route(
        "LogStatusNotification",
        log_status_notification_req,
        log_status_notification_conf,
    ),
    (Direction.CHARGER_TO_CSMS, "LogStatusNotification"): Route(
        "LogStatusNotification",
        log_status_notification_req,
        log_status_notification_conf,
    ),
}
