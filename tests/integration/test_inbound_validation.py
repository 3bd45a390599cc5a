"""``validate_inbound``: what the gateway checks in what it receives, and what it does
when the check is off and a payload cannot be translated (docs/configuration.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gateway.app import Gateway
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.wire import CallErrorReceived

from .helpers import metric

pytestmark = pytest.mark.integration

# Schema-invalid (an unknown property) but readable by the converter.
EXTRA_PROPERTY = {
    "connectorId": 1,
    "status": "Available",
    "errorCode": "NoError",
    "bogus": 1,
}


async def booted_charger(
    gateway: Gateway, chargers: Callable[..., ChargerSim], station: str
) -> ChargerSim:
    charger = chargers(f"ws://127.0.0.1:{gateway.charger_port}/ocpp", station)
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    return charger


async def test_with_inbound_validation_an_unknown_property_is_refused(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    gateway = await make_gateway()  # validate_inbound defaults to on
    charger = await booted_charger(gateway, chargers, "CP-V")
    before = len(csms.messages)
    with pytest.raises(CallErrorReceived) as refused:
        await charger.call("StatusNotification", EXTRA_PROPERTY, validate=False)
    assert refused.value.code == "FormationViolation"
    await charger.heartbeat()
    assert [m.action for m in csms.messages[before:]] == ["Heartbeat"]


async def test_without_inbound_validation_a_readable_payload_is_translated_as_read(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    """The switch is what it says: the unknown property is not checked, and what goes
    up is still a valid 2.0.1 message (the CSMS sim validates it; outbound validation
    is on in these tests)."""
    gateway = await make_gateway(validate_inbound=False)
    charger = await booted_charger(gateway, chargers, "CP-N")
    assert await charger.call("StatusNotification", EXTRA_PROPERTY, validate=False) == {}
    # StatusNotification goes up through the outbox, after the charger's answer.
    sent = await csms.wait_for("StatusNotification", station_id="CP-N")
    assert sent[0].payload["connectorStatus"] == "Available"
    assert "bogus" not in sent[0].payload


async def test_without_inbound_validation_an_unreadable_payload_gets_the_schema_code(
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
) -> None:
    """A payload the converter cannot read is validated only then, so the charger still
    learns which rule it broke; nothing goes up, and the session carries on."""
    gateway = await make_gateway(validate_inbound=False)
    charger = await booted_charger(gateway, chargers, "CP-U")
    bystander = await booted_charger(gateway, chargers, "CP-OK")
    errors = metric(
        gateway,
        "ocpp_gateway_call_errors_total",
        side="charger",
        direction="out",
        code="TypeConstraintViolation",
    )
    before = len(csms.messages)
    with pytest.raises(CallErrorReceived) as refused:
        await charger.call("MeterValues", {"connectorId": 1, "meterValue": "junk"}, validate=False)
    assert refused.value.code == "TypeConstraintViolation"
    assert "meterValue" in refused.value.description
    assert (
        metric(
            gateway,
            "ocpp_gateway_call_errors_total",
            side="charger",
            direction="out",
            code="TypeConstraintViolation",
        )
        == errors + 1
    )
    await charger.heartbeat()
    await bystander.heartbeat()
    assert [(m.station_id, m.action) for m in csms.messages[before:]] == [
        ("CP-U", "Heartbeat"),
        ("CP-OK", "Heartbeat"),
    ]
