"""Every log line about a CALL carries the station id and the OCPP message id, in JSON.

A real gateway between the 1.6 charger sim and the 2.0.1 CSMS sim, with the gateway's
JSON log format on a captured stream: an operator greps one id and gets the whole story.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from gateway.logs import configure_logging
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.wire import CallErrorReceived

pytestmark = pytest.mark.integration


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_refused_charger_call_is_logged_with_station_and_message_id(
    json_log: io.StringIO, booted: ChargerSim
) -> None:
    with pytest.raises(CallErrorReceived):
        await booted.call("GetDiagnosticsPlease", {}, validate=False)
    answered = [e for e in lines(json_log) if "answering charger" in str(e["msg"])]
    assert len(answered) == 1
    entry = answered[0]
    assert entry["station"] == "CP-1"
    assert isinstance(entry["message_id"], str) and entry["message_id"]
    assert "GetDiagnosticsPlease" in str(entry["msg"])


async def test_a_csms_call_is_logged_with_its_message_id(
    json_log: io.StringIO, booted: ChargerSim, csms: CsmsSim
) -> None:
    """A SetVariables item the charger cannot answer is logged under the CSMS's id."""
    booted.handlers.pop("ChangeConfiguration")  # the charger answers NotImplemented
    answer = await csms.call(
        "CP-1",
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "attributeValue": "60",
                }
            ]
        },
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Rejected"
    failed = [e for e in lines(json_log) if "ChangeConfiguration" in str(e["msg"])]
    assert failed, "the failed ChangeConfiguration was not logged"
    ids = {e["message_id"] for e in failed}
    assert len(ids) == 1 and all(e["station"] == "CP-1" for e in failed)
    assert all(str(e["level"]).lower() == "warning" for e in failed)
