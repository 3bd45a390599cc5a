"""The Store protocol: what must survive a gateway restart.

Layer: state. Implementations wrap their driver's exceptions in :class:`StateError`;
a store failure changes session behaviour, it never becomes a CALLERROR by itself.

Everything a session writes for one received message goes in one :class:`Change`,
which a store applies atomically (one SQLite transaction, one Redis Lua script): a crash
leaves either all of it or none of it, never a transaction without its outbox entry.

Leases keep "one station, one upstream connection, also across replicas" (DESIGN.md):
the replica serving a station's newest connection takes the station's lease and gets a
fencing token; a replica that lost the lease without noticing (a pause, a partition)
still holds an older token, and its fenced commits are refused with :class:`StaleLease`
instead of interleaving with the new owner's writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from gateway.ocppj import Payload


class StateError(Exception):
    """The store could not be opened, read or written."""


def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for StateError messages and logs
    (DESIGN.md: secrets are never logged)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not even a URL (a bad port, say): nothing sensible to keep
        return "<unparsable URL>"
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class StaleLease(StateError):
    """A fenced commit came from a lease holder a newer one has superseded: nothing of
    it was applied. The session that sees it no longer owns the station."""


@dataclass(frozen=True, slots=True)
class StationRecord:
    """What the gateway knows about a station between connections."""

    station_id: str
    boot: Payload  # the last 1.6 BootNotification request ({} when none was seen)
    registration: str  # the CSMS's last answer: Accepted | Pending | Rejected ("" none)
    # 1.6 errorCode raised per connector, so a fault reported before a reconnect or a
    # restart is still cleared upstream when the connector reports NoError.
    connector_errors: Mapping[int, str] = field(default_factory=dict)
    # Last 1.6 status per connector (ChargePointStatus), so a StatusNotification goes
    # upstream only when the 2.0.1 connector status changes, across restarts too.
    connector_statuses: Mapping[int, str] = field(default_factory=dict)
    # RequestStartTransaction requests forwarded and not yet consumed by a
    # StartTransaction: {"remoteStartId", "evseId" (optional), "idToken" (2.0.1)}.
    remote_starts: tuple[Payload, ...] = ()
    # Charging profiles the gateway installed on the charger (2.0.1 form), each
    # {"evseId": int, "chargingProfile": ChargingProfileType}, for GetChargingProfiles.
    charging_profiles: tuple[Payload, ...] = ()
    # 2.0.1 BootReasonEnumType for the charger's next BootNotification ("": PowerUp),
    # e.g. RemoteReset after a Reset it accepted: the boot comes on a new connection.
    boot_reason: str = ""
    # A Reset(OnIdle) answered Scheduled: Reset(Soft) goes to the charger once its
    # last transaction has ended (2.0.1 B12.FR.03), after a restart too.
    reset_scheduled: bool = False
    # requestIds of the firmware update and the log upload the charger accepted last:
    # its plain 1.6 status notifications carry none, 2.0.1 wants them, after reboots too.
    firmware_request_id: int | None = None
    log_request_id: int | None = None
    # Reservations the charger accepted and that are still open:
    # {"reservationId", "connectorId" (1.6), "expiryDateTime"} (2.0.1 H01/H04).
    reservations: tuple[Payload, ...] = ()
    # The charger implements the 1.6 security extension, as learnt from its keys.
    security_extension: bool = False


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """One 1.6 transaction and the 2.0.1 transaction the CSMS sees for it."""

    station_id: str
    transaction_id: str  # 2.0.1 transactionId, gateway-generated (E01.FR.08)
    legacy_id: int  # 1.6 transactionId the charger was given, gateway-allocated
    connector_id: int  # 1.6 connectorId
    evse_id: int  # 2.0.1 EVSE
    next_seq_no: int  # seqNo of the next TransactionEvent for this transaction
    started_at: str  # 1.6 StartTransaction timestamp, as received
    start_key: str  # digest of the StartTransaction request: recognises a re-sent one
    id_token: Payload | None = None  # 2.0.1 IdTokenType that authorised the start
    charging_state: str | None = None  # last chargingState reported upstream
    meter_start: int | None = None  # Wh
    last_meter: Payload | None = None  # last 2.0.1 MeterValueType sent for it
    id_tag_info: Payload | None = None  # 1.6 idTagInfo the charger was given at start
    ended: bool = False
    ended_at: float | None = None  # epoch seconds; ended transactions are pruned later
    stop_key: str | None = None  # digest of the StopTransaction: recognises a re-send
    stop_id_tag_info: Payload | None = None  # 1.6 idTagInfo given in StopTransaction.conf


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A CSMS-bound CALL the gateway has promised to deliver (DESIGN.md: nothing is lost).

    ``position`` is assigned by the store on append and orders delivery per station.
    ``offline`` is stored when the message was appended while the CSMS was unreachable;
    the courier derives it for messages that waited through an outage or a restart
    (2.0.1 E11.FR.07). A TransactionEvent flagged offline goes up with ``offline: true``.
    """

    action: str
    payload: Payload
    transaction_id: str | None = None
    offline: bool = False
    position: int = 0

    def at(self, position: int) -> OutboxMessage:
        """This message, as appended at ``position``: dataclasses.replace without its
        field introspection, since it runs once per message."""
        return OutboxMessage(self.action, self.payload, self.transaction_id, self.offline, position)


@dataclass(frozen=True, slots=True)
class Change:
    """What one received message changes, applied atomically by :meth:`Store.commit`."""

    station: StationRecord | None = None  # replaces the station record
    transactions: tuple[TransactionRecord, ...] = ()  # upserted by transaction_id
    append: tuple[OutboxMessage, ...] = ()  # appended in this order; positions assigned
    delivered: tuple[int, ...] = ()  # outbox positions the CSMS answered: removed
    # Authorization cache (2.0.1 C10): idToken string -> last idTokenInfo from the CSMS.
    authorizations: tuple[tuple[str, Payload], ...] = ()
    # ClearCache (2.0.1 C11): the station's cache entries are removed first.
    clear_authorizations: bool = False

    def and_delivered(self, position: int) -> Change:
        """This change, also removing outbox entry ``position`` (see OutboxMessage.at)."""
        return Change(
            self.station,
            self.transactions,
            self.append,
            (*self.delivered, position),
            self.authorizations,
            self.clear_authorizations,
        )


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A charger's Basic-auth password, as KDF hashes only (``gateway.security.passwords``).

    A login is accepted when the password matches one of ``password_hashes`` or, during a
    rotation, one of ``previous_hashes``: the charger may reconnect with its old password
    before it applies the new one, or the answer to ChangeConfiguration(AuthorizationKey)
    may be lost, and neither may lock it out. The first login with a current password
    drops the previous ones. Several current hashes let one key be accepted in both
    forms chargers use on the wire (1.6J §7: the raw key bytes; some send its hex text).
    """

    station_id: str
    password_hashes: tuple[str, ...]
    previous_hashes: tuple[str, ...] = ()
    updated_at: float = 0.0  # epoch seconds


@dataclass(frozen=True, slots=True)
class RouteState:
    """Where a 1.6 station's traffic went last, and the transactions still open there
    (issue 9: a station moves between CSMSs only when no transaction is open, so a
    transaction ends on the CSMS that started it). Translated transactions are in the
    station's TransactionRecords; the legacy CSMS's transactionIds are kept here."""

    station_id: str
    route: str  # "translate" | "legacy"
    legacy_transactions: tuple[int, ...] = ()  # started on the legacy CSMS, not stopped


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StateError when the store is unreachable (for /readyz)."""
        ...

    async def get_station(self, station_id: str) -> StationRecord | None: ...

    async def put_station(self, record: StationRecord) -> None: ...

    async def commit(
        self, station_id: str, change: Change, *, fence: int | None = None
    ) -> tuple[int, ...]:
        """Apply ``change`` atomically; return the positions given to ``change.append``.

        With ``fence`` (a token from :meth:`acquire_lease`), raise :class:`StaleLease` and
        apply nothing unless it is the newest token issued for the station: a newer one
        means someone else owns it now. The check and the writes are one atomic step.
        A lease that lapsed without anyone taking over does not fence its holder out: no
        newer writer exists. An empty change writes nothing and is not checked.
        """
        ...

    async def allocate_legacy_id(self, station_id: str) -> int:
        """The next 1.6 transactionId for the station: 1, 2, 3...; never returned twice,
        across restarts, even if the transaction using it is never committed."""
        ...

    async def open_transactions(self, station_id: str) -> list[TransactionRecord]:
        """Transactions of the station not ended, oldest first."""
        ...

    async def find_transaction(
        self, station_id: str, *, legacy_id: int | None = None, transaction_id: str | None = None
    ) -> TransactionRecord | None:
        """A transaction (open or ended, unless pruned) by either of its ids."""
        ...

    async def pending_outbox(self, station_id: str) -> list[OutboxMessage]:
        """Undelivered messages of the station, in position order."""
        ...

    async def get_authorization(self, station_id: str, id_token: str) -> Payload | None:
        """The cached idTokenInfo for an idToken string (case-insensitive, as 1.6 idTags)."""
        ...

    async def prune(self, ended_before: float) -> int:
        """Forget transactions ended before that epoch time; return how many."""
        ...

    # --- leases (DESIGN.md: one station, one upstream connection, across replicas) ---

    async def acquire_lease(self, station_id: str, owner: str, ttl: float) -> int:
        """Take the station's lease for ``owner`` for ``ttl`` seconds, whoever holds it
        (the newest connection becomes owner), and return a new fencing token: greater
        than every token issued for the station before, across restarts and expiries."""
        ...

    async def renew_lease(self, station_id: str, owner: str, token: int, ttl: float) -> bool:
        """Extend the lease to ``ttl`` seconds from now if (``owner``, ``token``) holds it.

        False when it was released or another acquire took it since (also one after it
        lapsed); a lease that lapsed and that nobody took is taken back.
        """
        ...

    async def release_lease(self, station_id: str, owner: str, token: int) -> None:
        """Drop the lease if (``owner``, ``token``) still holds it; otherwise do nothing,
        so a stale holder cannot release its successor's lease."""
        ...

    async def lease_holder(self, station_id: str) -> tuple[str, int] | None:
        """The current (owner, token), or None when the lease is released or lapsed."""
        ...

    # --- charger credentials (security profiles 1 and 2; docs/security.md) ---

    async def get_credential(self, station_id: str) -> CredentialRecord | None:
        """The station's stored password hashes, or None."""
        ...

    async def put_credential(self, record: CredentialRecord) -> None:
        """Create or replace the station's record."""
        ...

    async def delete_credential(self, station_id: str) -> bool:
        """Revoke: forget the station's record; False when there was none."""
        ...

    async def list_credentials(self) -> list[CredentialRecord]:
        """Every stored record, by station id."""
        ...

    # --- migration routing (issue 9; docs/migration.md) ---

    async def get_route_state(self, station_id: str) -> RouteState | None: ...

    async def put_route_state(self, state: RouteState) -> None: ...

    async def get_routing_document(self) -> tuple[str, int] | None:
        """The routing rules the admin API stored (JSON text) and their version."""
        ...

    async def put_routing_document(self, text: str, expected_version: int) -> int | None:
        """Store ``text`` if the stored version is still ``expected_version`` (0: none
        stored yet); return the new version, or None when another writer got there first
        (compare-and-set: two replicas' admin changes never silently overwrite)."""
        ...
