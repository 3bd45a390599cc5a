"""The CSMS's remote control of charging: start, stop, and questions about transactions.

Layer: session. RequestStart/StopTransaction are forwarded to the 1.6 charger as
RemoteStart/StopTransaction (reference messages.md §3.2); GetTransactionStatus and
GetChargingProfiles have no 1.6 equivalent and are answered from the gateway's own
state (§6). The transaction desk owns that state; this module only reads it, and asks
the desk to store the station record.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.errors import UnmappedValue
from gateway.ocppj import Payload
from gateway.session.calls import OutgoingCalls
from gateway.session.outbox import OutboxCourier
from gateway.session.station import StationState
from gateway.session.transactions import Reply, TransactionDesk
from gateway.translate import remote
from gateway.translate.types import Context, OutboundCall


class RemoteControl:
    def __init__(
        self,
        *,
        station: StationState,
        desk: TransactionDesk,
        courier: OutboxCourier,
        to_charger: OutgoingCalls,
        context: Callable[[], Context],
        check_charger_answer: Callable[[str, Payload], None],
    ) -> None:
        self._station = station
        self._desk = desk
        self._courier = courier
        self._to_charger = to_charger
        self._context = context
        self._check_charger_answer = check_charger_answer

    async def request_start_transaction(self, request: Payload) -> Reply:
        ctx = self._context()
        try:
            forward = remote.remote_start_transaction_from_request(request, ctx)
        except UnmappedValue as exc:
            code = str(exc.details.get("reasonCode", "UnsupportedParam"))
            return remote.request_start_rejected(exc.description, reason_code=code), ()
        pending: Payload = {
            "remoteStartId": request["remoteStartId"],
            "idToken": request["idToken"],
        }
        if "evseId" in request:
            pending["evseId"] = request["evseId"]
        if "chargingProfile" in request:
            # Without an EVSE the profile is kept under EVSE 0 until the transaction
            # starts somewhere (StationState.take_remote_start moves it there).
            pending["chargingProfileId"] = request["chargingProfile"]["id"]
        # Stored before forwarding: the charger may send StartTransaction before it
        # answers RemoteStartTransaction.
        self._station.add_remote_start(pending)
        await self._desk.save_station()
        result = await self._to_charger.call("RemoteStartTransaction", forward)
        self._check_charger_answer("RemoteStartTransaction", result)
        if result["status"] != "Accepted":
            self._station.drop_remote_start(request["remoteStartId"])
        elif "chargingProfile" in request:
            self._station.install_charging_profile(
                request.get("evseId", 0), request["chargingProfile"]
            )
        await self._desk.save_station()
        return remote.request_start_response(result), ()

    async def request_stop_transaction(self, request: Payload) -> Reply:
        record = next(
            (
                r
                for r in self._desk.open_transactions
                if r.transaction_id == request["transactionId"]
            ),
            None,
        )
        if record is None:  # F03.FR.08: unknown or no longer ongoing
            return remote.request_stop_unknown_transaction(request["transactionId"]), ()
        forward = remote.remote_stop_transaction_from_request(record.legacy_id)
        result = await self._to_charger.call("RemoteStopTransaction", forward)
        self._check_charger_answer("RemoteStopTransaction", result)
        return remote.request_stop_response(result), ()

    async def get_transaction_status(self, request: Payload) -> Reply:
        """Answered from the gateway's own state (E14); the charger's queue is invisible."""
        transaction_id = request.get("transactionId")
        if transaction_id is None:
            return {"messagesInQueue": self._courier.pending_transaction_messages() > 0}, ()
        ongoing = any(r.transaction_id == transaction_id for r in self._desk.open_transactions)
        queued = self._courier.pending(transaction_id) > 0
        return {"ongoingIndicator": ongoing, "messagesInQueue": queued}, ()

    async def get_charging_profiles(self, request: Payload) -> Reply:
        """Answered from the profiles the gateway installed (K09); others are unknown to it."""
        matching = [entry for entry in self._station.charging_profiles if _wanted(entry, request)]
        if not matching:
            return {"status": "NoProfiles"}, ()
        by_evse: dict[int, list[Payload]] = {}
        for entry in matching:
            by_evse.setdefault(entry["evseId"], []).append(entry["chargingProfile"])
        reports = []
        for index, (evse_id, profiles) in enumerate(sorted(by_evse.items())):
            report: Payload = {
                "requestId": request["requestId"],
                "chargingLimitSource": "CSO",
                "evseId": evse_id,
                "chargingProfile": profiles,
            }
            if index < len(by_evse) - 1:
                report["tbc"] = True
            reports.append(OutboundCall("ReportChargingProfiles", report))
        return {"status": "Accepted"}, tuple(reports)


def _wanted(entry: Payload, request: Payload) -> bool:
    """Does an installed profile match GetChargingProfiles' criteria (K09.FR.03)?"""
    if "evseId" in request and entry["evseId"] != request["evseId"]:
        return False
    criteria = request.get("chargingProfile", {})
    profile = entry["chargingProfile"]
    if "CSO" not in criteria.get("chargingLimitSource", ["CSO"]):
        return False
    if "chargingProfileId" in criteria and profile["id"] not in criteria["chargingProfileId"]:
        return False
    for key in ("chargingProfilePurpose", "stackLevel"):
        if key in criteria and profile[key] != criteria[key]:
            return False
    return True
