"""A 1.6J charger through a real gateway to a real (simulated) 2.0.1 CSMS."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim

pytestmark = pytest.mark.integration


async def test_boot_notification_reaches_the_csms_as_a_2_0_1_boot(
    make_charger: Callable[..., ChargerSim], csms: CsmsSim
) -> None:
    """Every 1.6 boot field lands in its 2.0.1 place; the answer comes back as 1.6."""
    charger = make_charger("CP-BOOT")
    await charger.connect()
    reply = await charger.boot(
        vendor="ACME",
        model="Wallbox 22",
        chargePointSerialNumber="SN-1",
        firmwareVersion="4.2.0",
        iccid="8931000000000000001",
        imsi="262010000000001",
        meterType="MT-1",
    )
    (boot,) = await csms.wait_for("BootNotification", station_id="CP-BOOT")
    assert boot.payload == {
        "reason": "PowerUp",
        "chargingStation": {
            "model": "Wallbox 22",
            "vendorName": "ACME",
            "serialNumber": "SN-1",
            "firmwareVersion": "4.2.0",
            "modem": {"iccid": "8931000000000000001", "imsi": "262010000000001"},
        },
    }
    assert reply["status"] == "Accepted"
    assert reply["interval"] == 300
