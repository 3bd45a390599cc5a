"""The 2.0.1 device model of a 1.6 charger: GetVariables, SetVariables, GetBaseReport,
GetReport, answered by reading and changing its configuration keys.

Layer: session. The pure functions of ``translate.device_model`` decide everything;
this module asks the charger (GetConfiguration, ChangeConfiguration) and hands back
the reply and, for reports, the NotifyReport CALLs the bridge sends after it
(2.0.1 B07.FR.04: the report follows the response).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.errors import CallTimeout, GatewayError, PeerUnavailable
from gateway.metrics import GatewayMetrics
from gateway.ocppj import Payload
from gateway.session.calls import OutgoingCalls
from gateway.session.station import StationState
from gateway.session.transactions import Reply
from gateway.state import StateError
from gateway.translate import device_model as dm
from gateway.translate import reports
from gateway.translate.layout import EvseLayout
from gateway.translate.tables import TranslationTables
from gateway.translate.types import Context, OutboundCall
from gateway.translate.variables import DeviceModel

log = logging.getLogger(__name__)

AUTHORIZATION_KEY = "AuthorizationKey"  # its value is the charger's Basic-auth password
# ChangeConfiguration answers after which the charger uses the new value (now or after
# its next reboot).
_APPLIED = frozenset({"Accepted", "RebootRequired"})
NUMBER_OF_CONNECTORS = "NumberOfConnectors"  # 1.6 §9.1.20: how many connectors there are
# Keys the 1.6 security whitepaper (§7) defines: a charger having one implements it.
SECURITY_EXTENSION_KEYS = frozenset(
    key.casefold()
    for key in (
        "SecurityProfile",
        "CpoName",
        "CertificateStoreMaxLength",
        "CertificateSignedMaxChainSize",
        "AdditionalRootCertificateCheck",
    )
)


@dataclass(frozen=True, slots=True)
class DeviceModelLimits:
    """The gateway's own device-model facts (DeviceDataCtrlr, OCPPCommCtrlr)."""

    message_timeout: float = 30.0  # OCPPCommCtrlr.MessageTimeout: the upstream leg's
    report_items: int = 100  # ItemsPerMessage[GetReport]: reportData per NotifyReport
    set_variables_items: int = 100  # ItemsPerMessage[SetVariables]
    bytes_per_message: int = 1048576  # the largest frame the gateway accepts


class DeviceModelDesk:
    def __init__(
        self,
        *,
        station: StationState,
        tables: TranslationTables,
        layout: EvseLayout,
        to_charger: OutgoingCalls,
        context: Callable[[], Context],
        check_charger_answer: Callable[[str, Payload], None],
        limits: DeviceModelLimits,
        metrics: GatewayMetrics,
        on_learnt: Callable[[], None] = lambda: None,
        on_authorization_key: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._station = station
        self._tables = tables
        self._layout = layout
        self._to_charger = to_charger
        self._context = context
        self._check_charger_answer = check_charger_answer
        self._limits = limits
        self._metrics = metrics
        self._on_learnt = on_learnt
        self._on_authorization_key = on_authorization_key

    # --- handlers (SESSION_ROUTES) --------------------------------------------------

    async def get_variables(self, request: Payload) -> Reply:
        model, facts = self._model(), self._facts()
        plan = dm.get_variables_plan(request, model, facts)
        configuration: dm.Configuration = {}
        if plan.keys:  # one GetConfiguration for every key asked for (reference §3.2)
            configuration = await self._read_configuration(list(plan.keys))
        response = dm.get_variables_response(plan, configuration, facts)
        self._count("GetVariables", response["getVariableResult"])
        return response, ()

    async def set_variables(self, request: Payload) -> Reply:
        """One ChangeConfiguration per item, in request order: 1.6 changes one key per
        request (reference §3.2); one result per item, same order (B05.FR.01)."""
        model, facts = self._model(), self._facts()
        results = []
        for item in request["setVariableData"]:
            step = dm.set_variable_step(item, model, facts)
            if not isinstance(step, dm.ChangeStep):
                results.append(step)
                continue
            try:
                answer = await self._to_charger.call(
                    "ChangeConfiguration", {"key": step.key, "value": step.value}
                )
                self._check_charger_answer("ChangeConfiguration", answer)
            except GatewayError as exc:
                log.warning("ChangeConfiguration %s failed: %s", step.key, exc.description)
                if isinstance(exc, CallTimeout | PeerUnavailable):
                    await self._new_authorization_key(step)  # it may have been applied
                results.append(dm.set_variable_failed(item, exc.description))
                continue
            if answer["status"] in _APPLIED:
                await self._new_authorization_key(step)
            results.append(dm.set_variable_result(item, step, answer["status"]))
        self._count("SetVariables", results)
        return {"setVariableResult": results}, ()

    async def get_base_report(self, request: Payload) -> Reply:
        entries = await self._report_entries()
        selected = reports.select_base_report(entries, request["reportBase"])
        self._metrics.reports.labels("GetBaseReport", "Accepted").inc()
        return self._report(request["requestId"], selected)

    async def get_report(self, request: Payload) -> Reply:
        entries = await self._report_entries()
        selected = reports.select_report(entries, request)
        status = "Accepted" if selected else "EmptyResultSet"  # nothing matches: B08.FR.15
        self._metrics.reports.labels("GetReport", status).inc()
        if not selected:
            return {"status": status}, ()
        return self._report(request["requestId"], selected)

    # --- helpers --------------------------------------------------------------------

    async def _new_authorization_key(self, step: dm.ChangeStep) -> None:
        """The charger's Basic-auth password changes with its AuthorizationKey."""
        if step.key != AUTHORIZATION_KEY or self._on_authorization_key is None:
            return
        try:
            await self._on_authorization_key(step.value)
        except (StateError, ValueError):
            # The CSMS is told the key was set (it was); the charger may be refused on
            # its next connection until an operator runs `ocpp-gateway credentials rotate`.
            log.exception("cannot store the charger's new AuthorizationKey as its password")

    def _count(self, operation: str, results: list[Payload]) -> None:
        for result in results:
            status = result["attributeStatus"]
            if status == "Rejected" and "attributeStatusInfo" in result:
                status = result["attributeStatusInfo"]["reasonCode"]
            self._metrics.variable_results.labels(operation, status).inc()

    def _report(self, request_id: int, entries: list[reports.ReportEntry]) -> Reply:
        generated_at = self._context().now()
        messages = reports.notify_reports(
            request_id, entries, generated_at, self._limits.report_items
        )
        calls = tuple(OutboundCall("NotifyReport", message) for message in messages)
        return {"status": "Accepted"}, calls

    async def _report_entries(self) -> list[reports.ReportEntry]:
        """The whole configuration, read before answering: whether the report is empty
        depends on it (B08), and the CSMS gets the response before the first report."""
        configuration = await self._read_configuration(None)
        model = self._model()
        return reports.report_entries(model, self._facts(configuration), configuration)

    async def _read_configuration(self, keys: list[str] | None) -> dict[str, dm.ConfigEntry]:
        request: Payload = {} if keys is None else {"key": keys}
        answer = await self._to_charger.call("GetConfiguration", request)
        self._check_charger_answer("GetConfiguration", answer)
        configuration = dm.configuration_from(answer)
        learnt = not configuration.keys().isdisjoint(SECURITY_EXTENSION_KEYS)
        if learnt and not self._station.security_extension:
            self._station.security_extension = True  # a key only that extension defines
            self._on_learnt()  # kept with the station record
        return configuration

    def _model(self) -> DeviceModel:
        view = self._station.view()
        return self._tables.device_model_for(view.vendor, view.model)

    def _facts(self, configuration: dm.Configuration | None = None) -> dm.DeviceFacts:
        station = self._station
        ctx = self._context()
        return dm.DeviceFacts(
            connectors=self._connectors(configuration or {}),
            boot=station.boot,
            connector_statuses=dict(station.connector_statuses),
            connector_errors=dict(station.connector_errors),
            charging_profiles_installed=len(station.charging_profiles),
            gateway={
                "message_timeout": str(round(self._limits.message_timeout)),
                "date_time": ctx.now(),
                "bytes_per_message": str(self._limits.bytes_per_message),
                "items_per_message_get_report": str(self._limits.report_items),
                "items_per_message_set_variables": str(self._limits.set_variables_items),
            },
            station=self._model().facts,
        )

    def _connectors(self, configuration: dm.Configuration) -> tuple[tuple[int, int, int], ...]:
        """The station's connectors as EVSE components: the explicit layout, else every
        connector the charger reported a status for or counts in NumberOfConnectors."""
        if self._layout.connectors:
            return tuple(
                (legacy, evse, connector)
                for legacy, (evse, connector) in sorted(self._layout.connectors.items())
            )
        known = {c for c in self._station.connector_statuses if c > 0}
        entry = configuration.get(NUMBER_OF_CONNECTORS.casefold())
        if entry is not None and entry.value is not None and entry.value.strip().isdigit():
            known.update(range(1, int(entry.value.strip()) + 1))
        return tuple((c, *self._layout.to_v201(c)) for c in sorted(known))
