"""2.0.1 requests a 1.6 charger has nothing for, through a real gateway (reference §6):
monitoring, display messages, customer information, network profiles, firmware
publishing. The CSMS sim validates each answer against the official schema; the test
checks its meaning, and that nothing reached the charger.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.wire import CallErrorReceived
from tests.integration.test_operations import assert_refused

pytestmark = pytest.mark.integration

Payload = dict[str, Any]
CHECKSUM = "0123456789abcdef0123456789abcdef"


def refused(action: str, payload: Payload, status: str, covers: Any) -> Any:
    """A case: ``action`` gets ``status`` with statusInfo UnsupportedRequest."""
    return pytest.param(action, payload, status, id=action, marks=covers)


NETWORK_PROFILE: Payload = {
    "configurationSlot": 1,
    "connectionData": {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": "wss://csms.example.com/ocpp",
        "messageTimeout": 30,
        "securityProfile": 2,
        "ocppInterface": "Wired0",
    },
}
MESSAGE: Payload = {
    "message": {"id": 1, "priority": "InFront", "message": {"format": "UTF8", "content": "Hi"}}
}
PUBLISH: Payload = {
    "location": "https://fw.example.com/fw.bin",
    "checksum": CHECKSUM,
    "requestId": 3,
}

# The covers marks are literal strings: docs/coverage.md reads them from the source.
REFUSED = [
    refused("GetMonitoringReport", {"requestId": 12}, "NotSupported",
            pytest.mark.covers("csms_to_charger:GetMonitoringReport")),
    refused("SetMonitoringBase", {"monitoringBase": "All"}, "NotSupported",
            pytest.mark.covers("csms_to_charger:SetMonitoringBase")),
    refused("SetMonitoringLevel", {"severity": 4}, "Rejected",
            pytest.mark.covers("csms_to_charger:SetMonitoringLevel")),
    refused("SetDisplayMessage", MESSAGE, "Rejected",
            pytest.mark.covers("csms_to_charger:SetDisplayMessage")),
    refused("GetDisplayMessages", {"requestId": 5}, "Unknown",
            pytest.mark.covers("csms_to_charger:GetDisplayMessages")),
    refused("ClearDisplayMessage", {"id": 1}, "Unknown",
            pytest.mark.covers("csms_to_charger:ClearDisplayMessage")),
    refused("CustomerInformation", {"requestId": 9, "report": True, "clear": True}, "Rejected",
            pytest.mark.covers("csms_to_charger:CustomerInformation")),
    refused("SetNetworkProfile", NETWORK_PROFILE, "Rejected",
            pytest.mark.covers("csms_to_charger:SetNetworkProfile")),
    refused("PublishFirmware", PUBLISH, "Rejected",
            pytest.mark.covers("csms_to_charger:PublishFirmware")),
]  # fmt: skip


@pytest.mark.parametrize(("action", "payload", "status"), REFUSED)
async def test_request_without_1_6_counterpart_gets_its_negative_status(
    booted: ChargerSim, csms: CsmsSim, action: str, payload: Payload, status: str
) -> None:
    answer = await csms.call("CP-1", action, payload)
    assert_refused(answer, status, "UnsupportedRequest")
    assert booted.received_calls == []


@pytest.mark.covers(
    "csms_to_charger:SetVariableMonitoring",
    "csms_to_charger:ClearVariableMonitoring",
    "csms_to_charger:UnpublishFirmware",
)
async def test_monitors_are_refused_one_by_one_and_none_exists(
    booted: ChargerSim, csms: CsmsSim
) -> None:
    """Each monitor gets UnsupportedMonitorType for what it was set on (N04); clearing
    finds none (N06); nothing was published to unpublish."""
    monitors = [
        {
            "value": 11000,
            "type": "UpperThreshold",
            "severity": 4,
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "Power"},
        },
        {
            "value": 60,
            "type": "Periodic",
            "severity": 8,
            "component": {"name": "ChargingStation"},
            "variable": {"name": "Temperature"},
        },
    ]
    answer = await csms.call("CP-1", "SetVariableMonitoring", {"setMonitoringData": monitors})
    results = answer["setMonitoringResult"]
    assert [r["status"] for r in results] == ["UnsupportedMonitorType"] * 2
    assert [(r["component"], r["variable"], r["type"]) for r in results] == [
        (m["component"], m["variable"], m["type"]) for m in monitors
    ]
    assert all("id" not in r for r in results)
    cleared = await csms.call("CP-1", "ClearVariableMonitoring", {"id": [1, 2]})
    assert cleared == {
        "clearMonitoringResult": [{"status": "NotFound", "id": 1}, {"status": "NotFound", "id": 2}]
    }
    assert await csms.call("CP-1", "UnpublishFirmware", {"checksum": CHECKSUM}) == {
        "status": "NoFirmware"
    }
    assert booted.received_calls == []


@pytest.mark.covers("csms_to_charger:CostUpdated")
async def test_cost_updated_stays_not_supported(booted: ChargerSim, csms: CsmsSim) -> None:
    """Its empty answer would claim the driver saw a cost no 1.6 charger can show."""
    with pytest.raises(CallErrorReceived) as raised:
        await csms.call("CP-1", "CostUpdated", {"totalCost": 4.2, "transactionId": "tx-1"})
    assert raised.value.code == "NotSupported"
    assert booted.received_calls == []
