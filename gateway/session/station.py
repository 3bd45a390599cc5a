"""What the session knows about its station, kept in memory and written as one record.

Layer: session. The bridge (registration, faults) and the transaction desk (statuses,
remote starts, installed profiles) both change it; :meth:`StationState.record` is what
goes into a :class:`~gateway.state.Change`, so a write always carries the latest view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.ocppj import Payload
from gateway.state import StationRecord
from gateway.translate.types import StationView

# A forwarded RequestStartTransaction the charger never acted on must not match a
# much later StartTransaction; bound the list so a chatty CSMS cannot grow it.
MAX_REMOTE_STARTS = 16
MAX_TRIGGERS = 16  # TriggerMessages accepted and not yet answered by the charger


@dataclass(slots=True)
class StationState:
    station_id: str
    boot: Payload = field(default_factory=dict)  # {}: no boot on record
    registration: str = ""  # the CSMS's last answer to the boot
    connector_errors: dict[int, str] = field(default_factory=dict)
    connector_statuses: dict[int, str] = field(default_factory=dict)
    remote_starts: list[Payload] = field(default_factory=list)
    charging_profiles: list[Payload] = field(default_factory=list)
    boot_reason: str = ""  # BootReasonEnumType of the next boot; "": PowerUp
    reset_scheduled: bool = False  # Reset(Soft) once the last transaction ends
    # The 1.6 security extension: from the vendor file, or seen in the charger's keys.
    security_extension: bool = False
    firmware_request_id: int | None = None
    log_request_id: int | None = None
    reservations: list[Payload] = field(default_factory=list)
    # (1.6 action, 1.6 connectorId or None: any, 2.0.1 requestedMessage): in memory
    # only, a trigger is answered within seconds or not at all.
    triggers: list[tuple[str, int | None, str]] = field(default_factory=list)

    def load(self, record: StationRecord) -> None:
        """Take over the stored record (in place: the session's parts share this object)."""
        self.boot = dict(record.boot)
        self.registration = record.registration
        self.connector_errors = dict(record.connector_errors)
        self.connector_statuses = dict(record.connector_statuses)
        self.remote_starts = list(record.remote_starts)
        self.charging_profiles = list(record.charging_profiles)
        self.boot_reason = record.boot_reason
        self.reset_scheduled = record.reset_scheduled
        self.firmware_request_id = record.firmware_request_id
        self.log_request_id = record.log_request_id
        self.reservations = list(record.reservations)
        self.security_extension = record.security_extension

    @property
    def registered(self) -> bool:
        return self.registration == "Accepted"

    def record(self) -> StationRecord:
        return StationRecord(
            station_id=self.station_id,
            boot=self.boot,
            registration=self.registration,
            connector_errors=dict(self.connector_errors),
            connector_statuses=dict(self.connector_statuses),
            remote_starts=tuple(self.remote_starts),
            charging_profiles=tuple(self.charging_profiles),
            boot_reason=self.boot_reason,
            reset_scheduled=self.reset_scheduled,
            firmware_request_id=self.firmware_request_id,
            log_request_id=self.log_request_id,
            reservations=tuple(self.reservations),
            security_extension=self.security_extension,
        )

    def view(
        self,
        open_transactions: Mapping[int, bool] | None = None,
        legacy_transaction_ids: Mapping[str, int] | None = None,
    ) -> StationView:
        """What converters may know of the station: who made it, its registration, the
        state of its connectors. (Open transactions are the desk's; the bridge passes
        them in.)"""
        return StationView(
            open_transactions={} if open_transactions is None else open_transactions,
            legacy_transaction_ids={} if legacy_transaction_ids is None else legacy_transaction_ids,
            vendor=self.boot.get("chargePointVendor"),
            model=self.boot.get("chargePointModel"),
            connector_errors=dict(self.connector_errors),
            registration=self.registration,
            connector_statuses=dict(self.connector_statuses),
            boot_reason=self.boot_reason or "PowerUp",
            security_extension=self.security_extension,
            firmware_request_id=self.firmware_request_id,
            log_request_id=self.log_request_id,
        )

    def set_connector_error(self, connector_id: int, error_code: str | None) -> None:
        """The 1.6 errorCode in force on a connector (None: cleared by NoError)."""
        if error_code is None:
            self.connector_errors.pop(connector_id, None)
        else:
            self.connector_errors[connector_id] = error_code

    def add_trigger(self, message: str, connector_id: int | None, requested: str) -> None:
        """The charger accepted a TriggerMessage for ``message`` (1.6 action)."""
        self.triggers.append((message, connector_id, requested))
        del self.triggers[:-MAX_TRIGGERS]

    def take_trigger(self, message: str, connector_id: int) -> str | None:
        """The 2.0.1 requestedMessage a received ``message`` answers, removed; None when
        the charger sent it on its own."""
        for index, (action, connector, requested) in enumerate(self.triggers):
            if action == message and connector in (None, connector_id):
                del self.triggers[index]
                return requested
        return None

    def install_charging_profile(self, evse_id: int, profile: Payload) -> None:
        """A profile the charger accepted replaces one with the same id, or with the same
        purpose and stackLevel on the same EVSE (2.0.1 K01.FR.05/FR.06, 1.6 §5.16.2)."""

        def replaced(entry: Payload) -> bool:
            kept = entry["chargingProfile"]
            same_slot = (
                entry["evseId"] == evse_id
                and kept["chargingProfilePurpose"] == profile["chargingProfilePurpose"]
                and kept["stackLevel"] == profile["stackLevel"]
            )
            return bool(kept["id"] == profile["id"] or same_slot)

        self.charging_profiles = [e for e in self.charging_profiles if not replaced(e)]
        self.charging_profiles.append({"evseId": evse_id, "chargingProfile": profile})

    def clear_charging_profiles(
        self,
        profile_id: int | None,
        evse_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> None:
        """Forget the kept profiles a ClearChargingProfile matched (None: any)."""

        def matches(entry: Payload) -> bool:
            kept = entry["chargingProfile"]
            return (
                (profile_id is None or kept["id"] == profile_id)
                and (evse_id is None or entry["evseId"] == evse_id)
                and (purpose is None or kept["chargingProfilePurpose"] == purpose)
                and (stack_level is None or kept["stackLevel"] == stack_level)
            )

        self.charging_profiles = [e for e in self.charging_profiles if not matches(e)]

    def hold_reservation(self, reservation_id: int, connector_id: int, expires_at: str) -> None:
        """A new reservation with an id in use replaces the old one (2.0.1 H01.FR.02)."""
        self.end_reservation(reservation_id)
        self.reservations.append(
            {"reservationId": reservation_id, "connectorId": connector_id,
             "expiryDateTime": expires_at}
        )  # fmt: skip

    def end_reservation(self, reservation_id: int) -> bool:
        """Forget a reservation; whether it was held."""
        kept = [r for r in self.reservations if r["reservationId"] != reservation_id]
        ended = len(kept) != len(self.reservations)
        self.reservations = kept
        return ended

    def add_remote_start(self, remote_start: Payload) -> None:
        self.remote_starts.append(remote_start)
        del self.remote_starts[:-MAX_REMOTE_STARTS]

    def take_remote_start(self, evse_id: int, id_tag: str) -> Payload | None:
        """The oldest pending remote start for this EVSE (or any EVSE) and idTag, removed.
        idTags compare case-insensitively (1.6 IdToken is a CiString)."""
        for index, pending in enumerate(self.remote_starts):
            wanted_evse = pending.get("evseId")
            token = pending["idToken"]["idToken"]
            if wanted_evse in (None, evse_id) and token.casefold() == id_tag.casefold():
                profile_id = pending.get("chargingProfileId")
                if wanted_evse is None and profile_id is not None:
                    self._move_profile(profile_id, evse_id)
                return self.remote_starts.pop(index)
        return None

    def _move_profile(self, profile_id: int, evse_id: int) -> None:
        """A remote start's TxProfile, kept under EVSE 0, belongs to the EVSE its
        transaction started on (2.0.1 K01.FR.16: no TxProfile on EVSE 0), and ends with it."""
        for entry in self.charging_profiles:
            if entry["evseId"] == 0 and entry["chargingProfile"]["id"] == profile_id:
                entry["evseId"] = evse_id

    def drop_remote_start(self, remote_start_id: int) -> None:
        self.remote_starts = [
            pending
            for pending in self.remote_starts
            if pending.get("remoteStartId") != remote_start_id
        ]
