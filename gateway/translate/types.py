"""Values shared by every converter: the context they read and the outcome they return.

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

A converter is a pure function. A request converter turns a received CALL into an
:class:`Outcome`: either a CALL to forward to the other side (whose answer the route's
result converter turns back into the reply), or a reply the gateway gives itself.
Either may add follow-up CALLs the gateway originates (``then``, e.g. a NotifyEvent
carrying a 1.6 errorCode) and state changes as data (``effects``) that the session
applies. Converters never read the clock or generate ids themselves: ``Context`` brings
both, so tests pin them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from gateway.errors import ErrorCode, InvalidPayload
from gateway.ocppj import Payload
from gateway.translate.layout import EvseLayout
from gateway.translate.tables import TranslationTables


class Direction(StrEnum):
    """Who sent the CALL being translated."""

    CHARGER_TO_CSMS = "charger_to_csms"
    CSMS_TO_CHARGER = "csms_to_charger"


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """A CALL the gateway sends to the other side."""

    action: str
    payload: Payload


# --- effects: state changes a converter asks the session to make --------------------


@dataclass(frozen=True, slots=True)
class RegistrationChanged:
    """The CSMS answered a BootNotification (2.0.1 B01/B02)."""

    status: str  # Accepted | Pending | Rejected
    boot: Payload  # the 1.6 BootNotification request, kept as the station record


@dataclass(frozen=True, slots=True)
class ConnectorErrorChanged:
    """The 1.6 errorCode in force on a connector (None: cleared, NoError)."""

    connector_id: int
    error_code: str | None


@dataclass(frozen=True, slots=True)
class AuthorizationSeen:
    """The CSMS's verdict on a 1.6 idTag (2.0.1 IdTokenInfoType), kept for the offline
    authorization policy (the 2.0.1 authorization cache, C10)."""

    id_tag: str
    info: Payload


@dataclass(frozen=True, slots=True)
class BootReasonExpected:
    """The charger's next BootNotification goes up with this 2.0.1 BootReasonEnumType
    (RemoteReset after a Reset it accepted, Triggered after a TriggerMessage): 1.6
    gives no reason, and a CSMS checks it (reference §2.5)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ResetScheduled:
    """A Reset(OnIdle) answered Scheduled (pending): the gateway sends Reset(Soft) to the
    charger once its last transaction has ended (2.0.1 B12.FR.01/03, reference §2.5).
    Not pending: a reset the charger accepted makes a scheduled one moot."""

    pending: bool = True


@dataclass(frozen=True, slots=True)
class MessageTriggered:
    """The charger accepted a TriggerMessage: its next ``message`` (from ``connector_id``,
    None: any connector) answers the CSMS's 2.0.1 ``requested`` trigger, so it goes up
    even if unchanged (StatusNotification) or as the message asked for (MeterValues)."""

    message: str  # the 1.6 action the charger will send
    requested: str  # the 2.0.1 MessageTriggerEnumType the CSMS asked for
    connector_id: int | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationCacheCleared:
    """The charger cleared its authorization cache (ClearCache, 2.0.1 C11): the
    gateway's offline copy of the CSMS's verdicts goes too."""


@dataclass(frozen=True, slots=True)
class ChargingProfileInstalled:
    """The charger accepted a charging profile: kept (2.0.1 form) for GetChargingProfiles."""

    evse_id: int
    profile: Payload  # 2.0.1 ChargingProfileType


@dataclass(frozen=True, slots=True)
class ChargingProfilesCleared:
    """The charger cleared profiles: the kept ones matching these criteria go too
    (None matches anything)."""

    profile_id: int | None = None
    evse_id: int | None = None
    purpose: str | None = None  # 2.0.1 ChargingProfilePurposeEnumType
    stack_level: int | None = None


@dataclass(frozen=True, slots=True)
class RequestInProgress:
    """The charger accepted a firmware update or log upload: its 2.0.1 requestId goes on
    the status notifications that follow (``kind``: "firmware" or "log"); None: the
    last one ended (a final status)."""

    kind: str
    request_id: int | None


@dataclass(frozen=True, slots=True)
class ReservationHeld:
    """The charger accepted a reservation: the gateway watches the connector's status
    and the expiry, to report ReservationStatusUpdate (2.0.1 H01.FR.16/17, H04.FR.01)."""

    reservation_id: int
    connector_id: int  # 1.6 connectorId (0: any connector)
    expires_at: str  # 2.0.1 expiryDateTime


@dataclass(frozen=True, slots=True)
class ReservationEnded:
    """A reservation the CSMS cancelled, or that a transaction used: nothing to report."""

    reservation_id: int


Effect = (
    RegistrationChanged
    | ConnectorErrorChanged
    | AuthorizationSeen
    | BootReasonExpected
    | ResetScheduled
    | MessageTriggered
    | AuthorizationCacheCleared
    | ChargingProfileInstalled
    | ChargingProfilesCleared
    | RequestInProgress
    | ReservationHeld
    | ReservationEnded
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do about one received CALL (or one received answer)."""

    forward: OutboundCall | None = None  # to the other side; its answer makes the reply
    reply: Payload | None = None  # the gateway's own answer, when nothing is forwarded
    then: tuple[OutboundCall, ...] = ()  # CSMS-bound CALLs the gateway sends after replying
    effects: tuple[Effect, ...] = ()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StationView:
    """Read-only facts about the station that converters may need."""

    vendor: str | None = None
    model: str | None = None
    connector_errors: Mapping[int, str] = field(default_factory=dict)
    registration: str = ""  # the CSMS's last answer to the boot: Accepted | Pending | ...
    connector_statuses: Mapping[int, str] = field(default_factory=dict)  # last 1.6 status
    # 1.6 connectorId -> whether the open transaction there was authorized (idTagInfo
    # Accepted): 2.0.1 UnlockConnector and Reset(OnIdle) depend on it.
    open_transactions: Mapping[int, bool] = field(default_factory=dict)
    boot_reason: str = "PowerUp"  # what the next BootNotification goes up with
    # The charger implements the OCPP 1.6 security extension (whitepaper: signed
    # firmware, GetLog, certificates, ExtendedTriggerMessage), so those go to it as such.
    security_extension: bool = False
    # 2.0.1 transactionId -> 1.6 transactionId of the open transactions (TxProfile).
    legacy_transaction_ids: Mapping[str, int] = field(default_factory=dict)
    # requestIds of the firmware update and log upload in progress: plain 1.6 status
    # notifications carry none, 2.0.1 wants them (reference §2.10, §2.11).
    firmware_request_id: int | None = None
    log_request_id: int | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a converter may read besides the payload."""

    station_id: str
    tables: TranslationTables
    layout: EvseLayout = field(default_factory=EvseLayout)
    station: StationView = field(default_factory=StationView)
    clock: Callable[[], datetime] = _utc_now
    next_event_id: Callable[[], int] = field(default=lambda: 0)
    # 2.0.1 transactionIds are made by the station, never reused; UUID recommended (E01.FR.08)
    new_transaction_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    # 1.6 Reset type for a 2.0.1 Reset(Immediate): Soft ends transactions first, as
    # B12.FR.04 requires; Hard only as an operator's choice (reference §2.5).
    immediate_reset: str = "Soft"

    def now(self) -> str:
        """The current time as an OCPP dateTime: RFC 3339, UTC, milliseconds (2.0.1 §2.1.4)."""
        return format_datetime(self.clock())


_CONFORMANT_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?Z")


def format_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalise_datetime(text: str) -> str:
    """A received dateTime as 2.0.1 wants it: UTC, "Z", at most 3 fractional digits
    (2.0.1 §2.1.4). 1.6 chargers send microseconds or offsets that strict CSMSs refuse.
    An unreadable value (the schema already accepted it) is passed on unchanged."""
    if _CONFORMANT_DATETIME.fullmatch(text):
        return text  # the common case: unchanged, byte for byte
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:  # OCPP 1.6 §7.x: times are UTC
        moment = moment.replace(tzinfo=UTC)
    try:
        return format_datetime(moment)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is valid RFC 3339, but before year 1 in UTC.
        raise InvalidPayload(
            f"{text!r} is outside the years 1 to 9999 in UTC",
            code=ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        ) from None


ADDITIONAL_INFO_MAX: Final = 512  # 2.0.1 StatusInfoType.additionalInfo


def status_info(reason_code: str, explanation: str) -> Payload:
    """A 2.0.1 StatusInfoType: a StatusInfoReasonType code and a short explanation."""
    return {"reasonCode": reason_code, "additionalInfo": explanation[:ADDITIONAL_INFO_MAX]}


def refused(status: str, reason_code: str, explanation: str) -> Outcome:
    """The gateway's own answer refusing a request with ``status``: nothing is forwarded."""
    return Outcome(reply={"status": status, "statusInfo": status_info(reason_code, explanation)})


RequestConverter = Callable[[Payload, Context], Outcome]
ResultConverter = Callable[[Payload, Payload, Context], Outcome]


@dataclass(frozen=True, slots=True)
class Route:
    """How one received action is translated.

    ``request`` converts the received CALL; when it forwards a CALL to the other side,
    ``result`` converts that side's answer into the reply. ``before_accepted`` handles
    the action while the CSMS has not accepted the station's BootNotification (2.0.1
    B01.FR.08 forbids forwarding it); None means the gateway refuses it with
    SecurityError, as a 2.0.1 CSMS would (B02.FR.09). ``also`` names the other actions
    ``request`` may forward instead of ``target``, for some requests.
    """

    target: str  # the action sent to the other side, for docs and metrics
    request: RequestConverter
    result: ResultConverter
    before_accepted: RequestConverter | None = None
    also: tuple[str, ...] = ()  # other actions request may forward
    note: str = ""  # one line for docs/coverage.md, e.g. what the gateway answers itself
