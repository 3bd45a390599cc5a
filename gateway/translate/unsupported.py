"""2.0.1 requests a 1.6 charger has nothing for, answered honestly by the gateway
(reference §6).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

Monitoring, display messages, customer information, network profiles and Local
Controller firmware publishing have no OCPP 1.6 counterpart. Where the 2.0.1 response
has a status that says "not here", the gateway answers with it and a statusInfo giving
the reason, as a 2.0.1 station without the feature would, and nothing reaches the
charger. The gateway never reports MonitoringCtrlr or DisplayMessageCtrlr as available
(``mappings/device_model.toml`` has neither), so a CSMS has no reason to expect more.

CostUpdated has no negative answer (its response is empty: "received"); accepting and
dropping it would tell the CSMS the driver saw a cost nobody showed, so it stays a
CALLERROR NotSupported (no route), as do the messages only a station sends.
"""

from __future__ import annotations

from typing import Final

from gateway.ocppj import Payload
from gateway.translate.types import Context, Direction, Outcome, Route, refused, status_info

ANSWERED: Final = "answered by the gateway"


def nothing_forwarded_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    raise AssertionError("the gateway answers this request itself; nothing was forwarded")


def _answered(explanation: str, status: str) -> Route:
    """A route whose request the gateway refuses with ``status`` and the reason."""

    def refusal_req(payload: Payload, ctx: Context) -> Outcome:
        return refused(status, "UnsupportedRequest", explanation)

    return Route(ANSWERED, refusal_req, nothing_forwarded_conf, note=f"{status}: {explanation}")


_NO_MONITORING: Final = "an OCPP 1.6 charger has no variable monitoring"
_NO_DISPLAY: Final = "an OCPP 1.6 charger has no display message control"


# --- Monitoring (2.0.1 N02-N06) ------------------------------------------------------


def set_variable_monitoring_req(payload: Payload, ctx: Context) -> Outcome:
    """Each monitor refused as UnsupportedMonitorType, echoing what it was for; an id is
    only returned for an accepted monitor (SetMonitoringResultType.id)."""
    results = [
        {
            "status": "UnsupportedMonitorType",
            "type": item["type"],
            "severity": item["severity"],
            "component": item["component"],
            "variable": item["variable"],
            "statusInfo": status_info("UnsupportedRequest", _NO_MONITORING),
        }
        for item in payload["setMonitoringData"]
    ]
    return Outcome(reply={"setMonitoringResult": results})


def clear_variable_monitoring_req(payload: Payload, ctx: Context) -> Outcome:
    """No monitor was ever set, so none of the ids exists (N06)."""
    results = [{"status": "NotFound", "id": monitor_id} for monitor_id in payload["id"]]
    return Outcome(reply={"clearMonitoringResult": results})


def unpublish_firmware_req(payload: Payload, ctx: Context) -> Outcome:
    """Nothing was published (PublishFirmware is refused); the response has no statusInfo."""
    return Outcome(reply={"status": "NoFirmware"})


ROUTES: Final[dict[tuple[Direction, str], Route]] = {
    (Direction.CSMS_TO_CHARGER, "SetVariableMonitoring"): Route(
        ANSWERED,
        set_variable_monitoring_req,
        nothing_forwarded_conf,
        note="UnsupportedMonitorType for each monitor",
    ),
    (Direction.CSMS_TO_CHARGER, "ClearVariableMonitoring"): Route(
        ANSWERED, clear_variable_monitoring_req, nothing_forwarded_conf, note="NotFound for each id"
    ),
    (Direction.CSMS_TO_CHARGER, "GetMonitoringReport"): _answered(_NO_MONITORING, "NotSupported"),
    (Direction.CSMS_TO_CHARGER, "SetMonitoringBase"): _answered(_NO_MONITORING, "NotSupported"),
    (Direction.CSMS_TO_CHARGER, "SetMonitoringLevel"): _answered(_NO_MONITORING, "Rejected"),
    # Display messages (2.0.1 O01-O06)
    (Direction.CSMS_TO_CHARGER, "SetDisplayMessage"): _answered(_NO_DISPLAY, "Rejected"),
    (Direction.CSMS_TO_CHARGER, "GetDisplayMessages"): _answered(_NO_DISPLAY, "Unknown"),
    (Direction.CSMS_TO_CHARGER, "ClearDisplayMessage"): _answered(_NO_DISPLAY, "Unknown"),
    # Customer information (2.0.1 N09, N10): 1.6 keeps nothing per customer the gateway
    # could report or clear (ClearCache is not per customer).
    (Direction.CSMS_TO_CHARGER, "CustomerInformation"): _answered(
        "an OCPP 1.6 charger can neither report nor clear data per customer", "Rejected"
    ),
    # The connection to the CSMS is the gateway's, configured on the gateway (B09).
    (Direction.CSMS_TO_CHARGER, "SetNetworkProfile"): _answered(
        "the CSMS connection of an OCPP 1.6 charger is the gateway's, configured there",
        "Rejected",
    ),
    # Local Controller firmware publishing (2.0.1 L03, L04): not a charging station's job.
    (Direction.CSMS_TO_CHARGER, "PublishFirmware"): _answered(
        "firmware publishing is a Local Controller function", "Rejected"
    ),
    (Direction.CSMS_TO_CHARGER, "UnpublishFirmware"): Route(
        ANSWERED, unpublish_firmware_req, nothing_forwarded_conf, note="NoFirmware"
    ),
}
