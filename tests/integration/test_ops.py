"""The ops HTTP endpoint of a running gateway: health, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gateway.app import Gateway
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim

from .helpers import http_get, parse_metrics

pytestmark = pytest.mark.integration


def ops_port(gateway: Gateway) -> int:
    port = gateway.ops_port
    assert port is not None, "the gateway fixture enables the ops server"
    return port


def sample(
    metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return metrics.get((name, frozenset(labels.items())))


async def test_healthz_answers_200(gateway: Gateway) -> None:
    """/healthz: the process is alive."""
    assert await http_get(ops_port(gateway), "/healthz") == (200, "ok\n")


async def test_readyz_answers_200_with_the_number_of_connected_chargers(
    gateway: Gateway, booted: ChargerSim
) -> None:
    """/readyz: the store answers and the gateway accepts chargers."""
    status, body = await http_get(ops_port(gateway), "/readyz")
    assert status == 200
    assert body == "ready: 1 chargers connected\n"


async def test_metrics_show_the_open_connections_of_a_connected_charger(
    gateway: Gateway, booted: ChargerSim
) -> None:
    """One 1.6 charger and its upstream are open while the charger is connected."""
    status, body = await http_get(ops_port(gateway), "/metrics")
    assert status == 200
    metrics = parse_metrics(body)
    connections = "ocpp_gateway_connections"
    assert sample(metrics, connections, side="charger", protocol="ocpp1.6") == 1.0
    assert sample(metrics, connections, side="csms", protocol="ocpp2.0.1") == 1.0
    assert sample(metrics, "ocpp_gateway_charger_handshakes_total", outcome="accepted") == 1.0


async def test_metrics_count_a_boot_by_action_on_each_leg(
    gateway: Gateway, booted: ChargerSim
) -> None:
    """The boot's four legs are counted under action BootNotification, with its round trip."""
    metrics = parse_metrics((await http_get(ops_port(gateway), "/metrics"))[1])
    total = "ocpp_gateway_messages_total"
    for side, direction, message_type in [
        ("charger", "in", "call"),
        ("csms", "out", "call"),
        ("csms", "in", "result"),
        ("charger", "out", "result"),
    ]:
        labels = {"side": side, "direction": direction, "message_type": message_type}
        assert sample(metrics, total, **labels, action="BootNotification") == 1.0, labels
    duration = "ocpp_gateway_call_duration_seconds_count"
    assert sample(metrics, duration, side="csms", action="BootNotification") == 1.0
    assert (
        sample(
            metrics, "ocpp_gateway_translation_duration_seconds_count", direction="charger_to_csms"
        )
        == 1.0
    )


async def test_unknown_paths_are_404(gateway: Gateway) -> None:
    """Only /metrics, /healthz and /readyz exist."""
    status, _body = await http_get(ops_port(gateway), "/nothing-here")
    assert status == 404


async def test_a_stopped_gateway_reports_draining(
    make_gateway: Callable[..., Awaitable[Gateway]], csms: CsmsSim
) -> None:
    """Readiness turns false, with the reason, once stop() began."""
    gateway = await make_gateway()
    assert (await gateway.ready())[0] is True
    await gateway.stop()
    assert await gateway.ready() == (False, "draining")
