"""The station record's keeper: converters' effects applied and stored, and the CALLs the
gateway itself sends the charger about the station (a boot request, a scheduled reset).

Layer: session. Converters return state changes as data (``translate.types`` effects);
this is the one place they change the shared :class:`StationState` and reach the store,
so what the charger or the CSMS is told next is on disk first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gateway.errors import GatewayError
from gateway.ocppj import Payload
from gateway.session.calls import OutgoingCalls
from gateway.session.station import StationState
from gateway.state import Change, StateError, Store
from gateway.translate.layout import EvseLayout
from gateway.translate.tables import TranslationTables
from gateway.translate.types import (
    AuthorizationCacheCleared,
    AuthorizationSeen,
    BootReasonExpected,
    ChargingProfileInstalled,
    ChargingProfilesCleared,
    ConnectorErrorChanged,
    Effect,
    MessageTriggered,
    RegistrationChanged,
    RequestInProgress,
    ReservationEnded,
    ReservationHeld,
    ResetScheduled,
)

log = logging.getLogger(__name__)


class StationKeeper:
    def __init__(
        self,
        *,
        state: StationState,
        store: Store,
        layout: EvseLayout,
        to_charger: OutgoingCalls,
        check_charger_answer: Callable[[str, Payload], None],
        on_registered: Callable[[], None],
        tables: TranslationTables,
        on_reservations_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._state = state
        self._store = store
        self._layout = layout
        self._to_charger = to_charger
        self._check_charger_answer = check_charger_answer
        self._on_registered = on_registered
        self._tables = tables
        self._on_reservations_changed = on_reservations_changed
        self._record_dirty = False  # station record changed since it was last stored
        self._authorizations_seen: list[tuple[str, Payload]] = []  # for the cache
        self._authorizations_cleared = False  # ClearCache accepted: empty the cache
        self.boot_wanted = False  # the charger spoke, and no boot is on record
        self._boot_requested = False

    def apply(self, effects: tuple[Effect, ...]) -> None:
        for effect in effects:
            match effect:
                case RegistrationChanged(status=status, boot=boot):
                    self._state.boot, self._state.registration = boot, status
                    self._state.boot_reason = ""  # spent on this boot
                    self._record_dirty = True
                    self.learn_model()
                    self._on_registered()
                case ConnectorErrorChanged(connector_id=connector, error_code=code):
                    self._state.set_connector_error(connector, code)
                    self._record_dirty = True
                case AuthorizationSeen(id_tag=id_tag, info=info):
                    self._authorizations_seen.append((id_tag, info))
                case AuthorizationCacheCleared():
                    self._authorizations_seen.clear()
                    self._authorizations_cleared = True
                case BootReasonExpected(reason=reason):
                    self._state.boot_reason = reason
                    self._record_dirty = True
                case ResetScheduled(pending=pending):
                    self._state.reset_scheduled = pending
                    self._record_dirty = True
                case MessageTriggered(message=message, requested=requested, connector_id=None):
                    # Without a connector, a 1.6 charger answers for each of them.
                    connectors = {0, *self._state.connector_statuses, *self._layout.connectors}
                    for connector in sorted(connectors):
                        self._state.add_trigger(message, connector, requested)
                case MessageTriggered(message=message, requested=requested, connector_id=c):
                    self._state.add_trigger(message, c, requested)
                case ChargingProfileInstalled(evse_id=evse_id, profile=profile):
                    self._state.install_charging_profile(evse_id, profile)
                    self._record_dirty = True
                case ChargingProfilesCleared() as cleared:
                    self._state.clear_charging_profiles(
                        cleared.profile_id, cleared.evse_id, cleared.purpose, cleared.stack_level
                    )
                    self._record_dirty = True
                case ReservationHeld(reservation_id=rid, connector_id=c, expires_at=at):
                    self._state.hold_reservation(rid, c, at)
                    self._record_dirty = True
                    self._on_reservations_changed()
                case ReservationEnded(reservation_id=rid):
                    self._record_dirty |= self._state.end_reservation(rid)
                case RequestInProgress(kind="firmware", request_id=request_id):
                    self._state.firmware_request_id = request_id
                    self._record_dirty = True
                case RequestInProgress(kind=_, request_id=request_id):
                    self._state.log_request_id = request_id
                    self._record_dirty = True

    def changed(self) -> None:
        """The station record changed outside an effect: store it with the next write."""
        self._record_dirty = True

    def learn_model(self) -> None:
        """What the vendor file says of the booted model (the security extension)."""
        view = self._state.view()
        facts = self._tables.device_model_for(view.vendor, view.model).facts
        if facts.security_extension is not None:
            self._state.security_extension = facts.security_extension

    async def store(self) -> None:
        """Write the station record if it changed: before the charger is answered, so
        nothing the charger was told is lost to a disconnect or a restart."""
        station = None
        if self._record_dirty:
            self._record_dirty = False
            station = self._state.record()
        seen, self._authorizations_seen = self._authorizations_seen, []
        cleared, self._authorizations_cleared = self._authorizations_cleared, False
        if station is None and not seen and not cleared:
            return
        # One commit: it joins the store's group commit (a reconnect storm's boots share
        # their fsyncs) and is fenced like every other write of the session.
        change = Change(station=station, authorizations=tuple(seen), clear_authorizations=cleared)
        try:
            await self._store.commit(self._state.station_id, change)
        except StateError:
            log.exception("cannot store the station record or the authorization cache")

    async def reset_when_idle(self, *, busy: bool) -> None:
        """A Reset(OnIdle) answered Scheduled goes to the charger as Reset(Soft) once its
        last transaction has ended (2.0.1 B12.FR.03, reference §2.5)."""
        if not self._state.reset_scheduled or busy:
            return
        # Stored before sending: a charger accepting drops the connection at once to
        # reboot, and its boot must go up as RemoteReset, with no second reset after it.
        self._state.reset_scheduled = False
        self._state.boot_reason = "RemoteReset"
        self._record_dirty = True
        await self.store()
        try:
            result = await self._to_charger.call("Reset", {"type": "Soft"})
            self._check_charger_answer("Reset", result)
        except GatewayError as exc:
            # Unanswered: the charger may be rebooting already; the reason stands.
            log.warning("the scheduled Reset(Soft) failed: %s", exc.description)
            return
        log.info("scheduled reset sent: the charger answered %s", result["status"])
        if result["status"] != "Accepted":
            self._state.boot_reason = ""
            self._record_dirty = True
            await self.store()

    async def request_boot_if_wanted(self) -> None:
        """The charger talks before the gateway knows it is registered (after a gateway
        restart without state, say): ask it for a BootNotification (1.6 §5.17), once."""
        if not self.boot_wanted or self._boot_requested:
            return
        self._boot_requested = True
        try:
            result = await self._to_charger.call(
                "TriggerMessage", {"requestedMessage": "BootNotification"}
            )
        except GatewayError as exc:
            log.warning("the charger did not take TriggerMessage(BootNotification): %s", exc)
            return
        if result.get("status") == "Accepted":
            self._state.boot_reason = "Triggered"  # what the boot goes up with
