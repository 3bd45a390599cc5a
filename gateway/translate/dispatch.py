"""The routing table: (direction, action) -> how to translate it. One literal dict.

Layer: translate (sans-I/O).

The pure converters live in ``translate.core`` (BootNotification, Heartbeat,
StatusNotification, Authorize, DataTransfer; ``translate.pnc`` unwraps the ISO 15118
Plug & Charge tunnel) and ``translate.operations`` (the CSMS's
remote operations: Reset, ChangeAvailability, UnlockConnector, TriggerMessage,
ClearCache). A route forwards ``target``, or one of the actions in ``also`` when the
request needs it (TriggerMessage for a certificate goes as the 1.6 security
extension's ExtendedTriggerMessage).

Actions whose translation depends on the station's transaction state (and, charger to
CSMS, goes through the durable outbox) are handled by the session's transaction desk
(``gateway.session.transactions``) with the pure converters of ``translate.transactions``
and ``translate.remote``; ``SESSION_ROUTES`` names them, and the desk's handler table
must have exactly these keys (a test checks it). The desk is checked first.

2.0.1 requests with no 1.6 counterpart that have a negative answer in their own status
enum (monitoring, display messages, customer information, network profiles, firmware
publishing) get it from ``translate.unsupported``: target ``ANSWERED``, nothing reaches
the charger. A received CALL whose action has no row here is answered by the session:
NotSupported when the action exists in the sender's OCPP version (CostUpdated, say),
NotImplemented when it does not exist at all. ``docs/coverage.md`` is
generated from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.translate import (
    core,
    firmware,
    local_list,
    operations,
    pnc,
    reservations,
    security,
    smart_charging,
    unsupported,
)
from gateway.translate.types import Direction, Route

__all__ = ["ROUTES", "SESSION_ROUTES", "Route", "SessionRoute"]

CHARGER_TO_CSMS: Final = Direction.CHARGER_TO_CSMS
CSMS_TO_CHARGER: Final = Direction.CSMS_TO_CHARGER


ROUTES: Final[dict[tuple[Direction, str], Route]] = {
    (CHARGER_TO_CSMS, "BootNotification"): Route(
        "BootNotification",
        core.boot_notification_req,
        core.boot_notification_conf,
        before_accepted=core.boot_notification_req,
    ),
    (CHARGER_TO_CSMS, "Heartbeat"): Route(
        "Heartbeat",
        core.heartbeat_req,
        core.heartbeat_conf,
        before_accepted=core.heartbeat_local,
    ),
    (CHARGER_TO_CSMS, "StatusNotification"): Route(
        "StatusNotification",
        core.status_notification_req,
        core.status_notification_conf,
    ),
    (CHARGER_TO_CSMS, "Authorize"): Route("Authorize", core.authorize_req, core.authorize_conf),
    (CHARGER_TO_CSMS, "DataTransfer"): Route(
        "DataTransfer",
        pnc.data_transfer_from_charger_req,
        pnc.data_transfer_from_charger_conf,
        also=pnc.FROM_CHARGER,  # ISO 15118 PnC messages unwrapped from the tunnel
    ),
    (CSMS_TO_CHARGER, "DataTransfer"): Route(
        "DataTransfer", core.data_transfer_from_csms_req, core.data_transfer_from_csms_conf
    ),
    (CSMS_TO_CHARGER, "Reset"): Route("Reset", operations.reset_req, operations.reset_conf),
    (CSMS_TO_CHARGER, "ChangeAvailability"): Route(
        "ChangeAvailability",
        operations.change_availability_req,
        operations.change_availability_conf,
    ),
    (CSMS_TO_CHARGER, "UnlockConnector"): Route(
        "UnlockConnector", operations.unlock_connector_req, operations.unlock_connector_conf
    ),
    (CSMS_TO_CHARGER, "TriggerMessage"): Route(
        "TriggerMessage",
        operations.trigger_message_req,
        operations.trigger_message_conf,
        # SignChargingStationCertificate (SEC §6.16); SignV2GCertificate (PnC tunnel)
        also=("ExtendedTriggerMessage", "DataTransfer"),
    ),
    (CSMS_TO_CHARGER, "ClearCache"): Route(
        "ClearCache", operations.clear_cache_req, operations.clear_cache_conf
    ),
    # Each message family's module has its own table (one file per profile).
    **smart_charging.ROUTES,
    **local_list.ROUTES,
    **reservations.ROUTES,
    **firmware.ROUTES,
    **security.ROUTES,
    **unsupported.ROUTES,
}


@dataclass(frozen=True, slots=True)
class SessionRoute:
    """An action the transaction desk handles: what goes to the other side, and how."""

    target: str  # what the other side receives (or "answered by the gateway")
    note: str  # one line for docs/coverage.md


SESSION_ROUTES: Final[dict[tuple[Direction, str], SessionRoute]] = {
    (CHARGER_TO_CSMS, "StartTransaction"): SessionRoute(
        "TransactionEvent", "eventType Started, seqNo 0; outbox before the answer"
    ),
    (CHARGER_TO_CSMS, "MeterValues"): SessionRoute(
        "TransactionEvent / MeterValues",
        "Updated per trigger reason inside a transaction, else MeterValues; outbox",
    ),
    (CHARGER_TO_CSMS, "StopTransaction"): SessionRoute(
        "TransactionEvent", "eventType Ended; unknown ids as a synthetic Started+Ended; outbox"
    ),
    (CHARGER_TO_CSMS, "StatusNotification"): SessionRoute(
        "StatusNotification / TransactionEvent / NotifyEvent",
        "only on a connector status change; charging state changes as Updated; outbox",
    ),
    (CHARGER_TO_CSMS, "SecurityEventNotification"): SessionRoute(
        "SecurityEventNotification",
        "event names renamed (security.py); outbox, queued while offline (A04.FR.02)",
    ),
    (CSMS_TO_CHARGER, "RequestStartTransaction"): SessionRoute(
        "RemoteStartTransaction", "remoteStartId kept for the Started event"
    ),
    (CSMS_TO_CHARGER, "RequestStopTransaction"): SessionRoute(
        "RemoteStopTransaction", "unknown transactionId answered Rejected by the gateway"
    ),
    (CSMS_TO_CHARGER, "GetTransactionStatus"): SessionRoute(
        "answered by the gateway", "from its open transactions and its outbox"
    ),
    (CSMS_TO_CHARGER, "GetChargingProfiles"): SessionRoute(
        "answered by the gateway", "profiles it installed, as ReportChargingProfiles"
    ),
    (CSMS_TO_CHARGER, "GetInstalledCertificateIds"): SessionRoute(
        "GetInstalledCertificateIds / DataTransfer",
        "one per 1.6 certificate type, ISO 15118 types through the PnC tunnel; merged",
    ),
    (CSMS_TO_CHARGER, "DeleteCertificate"): SessionRoute(
        "DeleteCertificate / DataTransfer",
        "security extension first, then the PnC tunnel while not found",
    ),
    (CSMS_TO_CHARGER, "GetVariables"): SessionRoute(
        "GetConfiguration",
        "one GetConfiguration for the mapped keys; gateway variables answered locally",
    ),
    (CSMS_TO_CHARGER, "SetVariables"): SessionRoute(
        "ChangeConfiguration",
        "one per item; values checked against the variable first; read-only refused",
    ),
    (CSMS_TO_CHARGER, "GetBaseReport"): SessionRoute(
        "GetConfiguration",
        "all keys read, answered, then NotifyReport (seqNo, tbc) upstream",
    ),
    (CSMS_TO_CHARGER, "GetReport"): SessionRoute(
        "GetConfiguration",
        "componentVariable and componentCriteria filters; EmptyResultSet when none match",
    ),
}
