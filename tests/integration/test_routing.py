"""Migration in waves (issue 9): 1.6 chargers routed to the 2.0.1 CSMS (translated) or
passed through untouched to the legacy 1.6 CSMS, and moved between them at safe points.

Real peers on both sides: the validating 2.0.1 CSMS sim (``csms``), a validating legacy
1.6 CSMS sim (``legacy``) and 1.6 charger sims; every one of them checks what it receives
against the official schemas (their violations must stay empty).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.routing import Route, RouteRule, bucket
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.legacy_csms import FIRST_TRANSACTION_ID, LegacyCsmsSim
from gateway.sim.wire import utc_now
from gateway.state import RouteState

from .helpers import charger_url_of, metric

pytestmark = pytest.mark.integration

MakeGateway = Callable[..., Awaitable[Gateway]]
MakeCharger = Callable[..., ChargerSim]
MOVED = 1012  # RFC 6455 "service restart"


@pytest.fixture
async def legacy() -> AsyncIterator[LegacyCsmsSim]:
    async with LegacyCsmsSim() as sim:
        yield sim
        assert sim.violations == [], "the legacy CSMS received schema-invalid 1.6 payloads"
        assert sim.duplicate_connections == [], "two connections carried one charger"


async def routed(make_gateway: MakeGateway, legacy: LegacyCsmsSim, **overrides: object) -> Gateway:
    return await make_gateway(legacy_upstream=legacy.url, **overrides)


def charger_for(gateway: Gateway, chargers: MakeCharger, station_id: str) -> ChargerSim:
    return chargers(charger_url_of(gateway), station_id)


def by_route(gateway: Gateway, route: str) -> float:
    return metric(gateway, "ocpp_gateway_chargers_by_route", route=route, shadow="false")


def moves(gateway: Gateway, route: str, when: str) -> float:
    return metric(gateway, "ocpp_gateway_route_moves_total", route=route, when=when)


def station_ids(predicate: Callable[[float], bool], count: int) -> list[str]:
    """Charge point ids whose wave bucket satisfies ``predicate``."""
    found = (f"WAVE-{n}" for n in itertools.count())
    return list(itertools.islice((i for i in found if predicate(bucket(i))), count))


async def start(charger: ChargerSim, id_tag: str = "TAG-1") -> int:
    answer = await charger.start_transaction(1, id_tag, 100, utc_now())
    assert answer["idTagInfo"]["status"] == "Accepted"
    transaction_id = answer["transactionId"]
    assert isinstance(transaction_id, int)
    return transaction_id


async def stop(charger: ChargerSim, transaction_id: int) -> None:
    await charger.stop_transaction(transaction_id, 2100, utc_now(), reason="Local")


async def wait_route(gateway: Gateway, station_id: str, route: str) -> None:
    """Until the charger's connection is served on ``route`` (it reconnects after a move)."""
    for _ in range(200):
        info = {c.station_id: c for c in gateway.fleet.chargers()}.get(station_id)
        if info is not None and info.route == route:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{station_id} is not on route {route}: {gateway.fleet.chargers()}")


# --------------------------------------------------------------------------- routes


async def test_a_charger_routed_by_id_reaches_the_legacy_csms_byte_for_byte(
    make_gateway: MakeGateway, csms: CsmsSim, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    """OLD-1 has a rule of its own: its frames reach the legacy CSMS exactly as sent, at
    <legacy>/OLD-1 over ocpp1.6, and nothing of it reaches the 2.0.1 CSMS; NEW-1, with no
    rule, is translated as before."""
    gateway = await routed(
        make_gateway, legacy, routes=(RouteRule(route=Route.LEGACY, charger="OLD-1"),)
    )
    old = charger_for(gateway, chargers, "OLD-1")
    new = charger_for(gateway, chargers, "NEW-1")
    await old.connect()
    boot_text = (
        '[2,  "boot-1",  "BootNotification", {"chargePointModel" : "Old Box",'
        '"chargePointVendor":"ACME",   "firmwareVersion":"1.2.3"}]'
    )
    await old.send_raw(boot_text)
    (boot,) = await legacy.wait_for("BootNotification", station_id="OLD-1")
    assert legacy.frames_of("OLD-1") == [boot_text]
    assert boot.message_id == "boot-1"
    assert legacy.connections == [("OLD-1", "/ocpp/OLD-1")]
    answer = json.loads(await old.next_unmatched())
    assert answer[:2] == [3, "boot-1"]
    assert answer[2]["status"] == "Accepted"
    assert answer[2]["interval"] == 300

    # Both directions, a transaction and the CSMS's own CALLs, all on the legacy CSMS.
    assert (await old.authorize("TAG-1"))["idTagInfo"]["status"] == "Accepted"
    transaction_id = await start(old)
    assert transaction_id == FIRST_TRANSACTION_ID
    await stop(old, transaction_id)
    assert await legacy.call("OLD-1", "TriggerMessage", {"requestedMessage": "Heartbeat"}) == {
        "status": "Accepted"
    }
    assert old.calls_of("TriggerMessage") == [{"requestedMessage": "Heartbeat"}]

    await new.connect()
    assert (await new.boot(vendor="ACME", model="New Box"))["status"] == "Accepted"
    await csms.wait_for("BootNotification", station_id="NEW-1")

    assert csms.connection_count("OLD-1") == 0
    assert [m for m in csms.messages if m.station_id == "OLD-1"] == []
    assert [m for m in legacy.messages if m.station_id == "NEW-1"] == []
    assert await gateway.store.get_route_state("OLD-1") == RouteState("OLD-1", "legacy", ())
    assert await gateway.store.get_route_state("NEW-1") == RouteState("NEW-1", "translate", ())
    infos = {info.station_id: info for info in gateway.fleet.chargers()}
    assert (infos["OLD-1"].route, infos["OLD-1"].vendor, infos["OLD-1"].firmware) == (
        "legacy",
        "ACME",
        "1.2.3",
    )
    assert (infos["NEW-1"].route, infos["NEW-1"].model) == ("translate", "New Box")
    assert infos["OLD-1"].last_message_at is not None
    assert by_route(gateway, "legacy") == 1
    assert by_route(gateway, "translate") == 1
    await old.close()
    await legacy.wait_disconnected("OLD-1")
    await gateway.wait_until_gone("OLD-1")
    assert by_route(gateway, "legacy") == 0


async def test_the_legacy_relay_refuses_invalid_1_6_and_forwards_nothing_of_it(
    make_gateway: MakeGateway, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    """validate_inbound: a 1.6 CALL that does not match its schema is answered by the
    gateway with a 1.6 CALLERROR, and the legacy CSMS never sees it."""
    gateway = await routed(make_gateway, legacy, default_route="legacy")
    charger = charger_for(gateway, chargers, "CP-1")
    await charger.connect()
    await charger.boot()
    await charger.send_raw(
        '[2,"bad-1","StatusNotification",'
        '{"connectorId":"one","errorCode":"NoError","status":"Available"}]'
    )
    error = json.loads(await charger.next_unmatched())
    assert error[:3] == [4, "bad-1", "TypeConstraintViolation"]
    assert legacy.received("StatusNotification") == []
    assert [text for text in legacy.frames_of("CP-1") if "bad-1" in text] == []


async def test_a_percentage_wave_routes_the_chargers_below_it(
    make_gateway: MakeGateway, csms: CsmsSim, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    """A wave of 30 %: chargers whose bucket is below 30 go to the legacy CSMS, the others
    follow the default route (translate)."""
    (inside,) = station_ids(lambda b: b < 30, 1)
    (outside,) = station_ids(lambda b: b >= 30, 1)
    wave = RouteRule(route=Route.LEGACY, name="old-fleet", percent=30)
    gateway = await routed(make_gateway, legacy, routes=(wave,))
    for station_id in (inside, outside):
        charger = charger_for(gateway, chargers, station_id)
        await charger.connect()
        assert (await charger.boot())["status"] == "Accepted"
    await legacy.wait_for("BootNotification", station_id=inside)
    await csms.wait_for("BootNotification", station_id=outside)
    assert legacy.connection_count(outside) == 0
    assert csms.connection_count(inside) == 0
    routes = {info.station_id: info.route for info in gateway.fleet.chargers()}
    assert routes == {inside: "legacy", outside: "translate"}


async def test_default_route_legacy(
    make_gateway: MakeGateway, csms: CsmsSim, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    """``--default-route legacy``: a charger no rule names goes to the legacy CSMS; a
    rule can still send one to the 2.0.1 CSMS."""
    gateway = await routed(
        make_gateway,
        legacy,
        default_route="legacy",
        routes=(RouteRule(route=Route.TRANSLATE, pattern="NEW-*"),),
    )
    old = charger_for(gateway, chargers, "ANY-1")
    new = charger_for(gateway, chargers, "NEW-7")
    for charger in (old, new):
        await charger.connect()
        assert (await charger.boot())["status"] == "Accepted"
    await legacy.wait_for("BootNotification", station_id="ANY-1")
    await csms.wait_for("BootNotification", station_id="NEW-7")
    assert gateway.fleet.rules()[1] is Route.LEGACY
    assert csms.connection_count("ANY-1") == 0
    assert legacy.connection_count("NEW-7") == 0


async def test_a_wave_moves_an_idle_charger_now(
    make_gateway: MakeGateway, csms: CsmsSim, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    """No transaction open: the charger is closed at once with 1012 and its reconnection
    lands on the new route; a charger outside the wave is left alone."""
    (inside,) = station_ids(lambda b: b < 20, 1)
    (outside,) = station_ids(lambda b: b >= 20, 1)
    gateway = await routed(make_gateway, legacy)
    moved, stays = charger_for(gateway, chargers, inside), charger_for(gateway, chargers, outside)
    for charger in (moved, stays):
        await charger.connect()
        await charger.boot()

    assert await gateway.fleet.set_wave("first", 20, Route.LEGACY, shadow=False) == 1
    assert await moved.wait_closed() == (MOVED, "moved to route legacy")
    assert moves(gateway, "legacy", "now") == 1
    await moved.connect()
    await moved.heartbeat()
    await legacy.wait_for("Heartbeat", station_id=inside)
    await wait_route(gateway, inside, "legacy")
    assert stays.connected
    await stays.heartbeat()
    await csms.wait_for("Heartbeat", station_id=outside)
    rules, _ = gateway.fleet.rules()
    assert [rule.name for rule in rules] == ["first"]


# --------------------------------------------------------------------------- safe points


async def test_a_legacy_transaction_ends_on_the_legacy_csms_before_the_move(
    make_gateway: MakeGateway, csms: CsmsSim, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    """set_route(translate) while a transaction is open on the legacy CSMS: the charger
    stays there until its StopTransaction reached the legacy CSMS and was answered, then
    it is closed with 1012 and reconnects onto translate. The 2.0.1 CSMS never sees the
    transaction."""
    gateway = await routed(make_gateway, legacy, default_route="legacy")
    charger = charger_for(gateway, chargers, "CP-1")
    await charger.connect()
    await charger.boot()
    transaction_id = await start(charger)
    assert await gateway.store.get_route_state("CP-1") == RouteState(
        "CP-1", "legacy", (transaction_id,)
    )

    change = await gateway.fleet.set_route("CP-1", Route.TRANSLATE, shadow=False)
    assert change.applied == "after_transaction"
    (info,) = gateway.fleet.chargers()
    assert (info.route, info.pending_route) == ("legacy", "translate")
    sample = {"sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register"}]}
    await charger.meter_values(1, [{"timestamp": utc_now(), **sample}], transaction_id)
    await legacy.wait_for("MeterValues", station_id="CP-1")
    await charger.heartbeat()  # between two exchanges, still not a safe point
    assert charger.connected
    assert moves(gateway, "translate", "after_transaction") == 0

    await stop(charger, transaction_id)
    await legacy.wait_for("StopTransaction", station_id="CP-1")
    assert await charger.wait_closed() == (MOVED, "moved to route translate")
    assert moves(gateway, "translate", "after_transaction") == 1
    assert legacy.open_transactions == {}

    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    await csms.wait_for("BootNotification", station_id="CP-1")
    await wait_route(gateway, "CP-1", "translate")
    assert csms.received("TransactionEvent", station_id="CP-1") == []
    assert legacy.connection_count("CP-1") == 1
    assert await gateway.store.get_route_state("CP-1") == RouteState("CP-1", "translate", ())


async def test_a_translated_transaction_ends_on_the_2_0_1_csms_before_the_move(
    make_gateway: MakeGateway, csms: CsmsSim, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    """The other way: a transaction open on the 2.0.1 CSMS; set_route(legacy) waits for
    its TransactionEvent Ended to reach the 2.0.1 CSMS; the legacy CSMS never sees its
    StartTransaction (nor its StopTransaction)."""
    gateway = await routed(make_gateway, legacy)
    charger = charger_for(gateway, chargers, "CP-2")
    await charger.connect()
    await charger.boot()
    transaction_id = await start(charger)
    await csms.wait_for("TransactionEvent", station_id="CP-2")

    change = await gateway.fleet.set_route("CP-2", Route.LEGACY, shadow=False)
    assert change.applied == "after_transaction"
    await charger.heartbeat()
    assert charger.connected

    await stop(charger, transaction_id)
    assert await charger.wait_closed() == (MOVED, "moved to route legacy")
    ended = csms.received(
        "TransactionEvent", station_id="CP-2", where=lambda p: p["eventType"] == "Ended"
    )
    assert len(ended) == 1
    assert await gateway.store.pending_outbox("CP-2") == []
    assert moves(gateway, "legacy", "after_transaction") == 1

    await charger.connect()
    await charger.heartbeat()
    await legacy.wait_for("Heartbeat", station_id="CP-2")
    await wait_route(gateway, "CP-2", "legacy")
    assert legacy.received("StartTransaction", station_id="CP-2") == []
    assert legacy.received("StopTransaction", station_id="CP-2") == []
    # A new transaction now belongs to the legacy CSMS.
    assert await start(charger) == FIRST_TRANSACTION_ID
    assert len(csms.received("TransactionEvent", station_id="CP-2")) == 2


async def test_a_charger_with_an_open_legacy_transaction_reconnects_to_legacy(
    make_gateway: MakeGateway, csms: CsmsSim, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    """The rule changed while the charger was away with a legacy transaction open: its
    reconnection goes back to the legacy CSMS (pinned), and moves once the transaction
    ended there."""
    gateway = await routed(make_gateway, legacy, default_route="legacy")
    charger = charger_for(gateway, chargers, "CP-3")
    await charger.connect()
    await charger.boot()
    transaction_id = await start(charger)
    await charger.close()
    await gateway.wait_until_gone("CP-3")

    change = await gateway.fleet.set_route("CP-3", Route.TRANSLATE, shadow=False)
    assert change.applied == "not_connected"

    await charger.connect()
    await legacy.wait_connected("CP-3", count=2)
    (info,) = gateway.fleet.chargers()
    assert (info.route, info.pending_route) == ("legacy", "translate")
    await charger.heartbeat()
    await legacy.wait_for("Heartbeat", station_id="CP-3")
    assert csms.connection_count("CP-3") == 0

    await stop(charger, transaction_id)
    assert await charger.wait_closed() == (MOVED, "moved to route translate")
    await charger.connect()
    await charger.boot()
    await csms.wait_for("BootNotification", station_id="CP-3")
    assert csms.received("TransactionEvent", station_id="CP-3") == []


async def test_moving_back_before_the_safe_point_cancels_the_move(
    make_gateway: MakeGateway, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    gateway = await routed(make_gateway, legacy, default_route="legacy")
    charger = charger_for(gateway, chargers, "CP-4")
    await charger.connect()
    await charger.boot()
    transaction_id = await start(charger)
    moved = await gateway.fleet.set_route("CP-4", Route.TRANSLATE, shadow=False)
    assert moved.applied == "after_transaction"
    back = await gateway.fleet.clear_route("CP-4")
    assert (back.route, back.applied) == (Route.LEGACY, "unchanged")
    (info,) = gateway.fleet.chargers()
    assert info.pending_route is None
    await stop(charger, transaction_id)
    await charger.heartbeat()
    assert charger.connected


# --------------------------------------------------------------------------- persistence


async def test_the_routing_rules_survive_a_gateway_restart(
    make_gateway: MakeGateway,
    csms: CsmsSim,
    legacy: LegacyCsmsSim,
    chargers: MakeCharger,
    tmp_path: Path,
) -> None:
    state = f"sqlite:///{tmp_path / 'shared.db'}"
    first = await routed(make_gateway, legacy, state=state)
    change = await first.fleet.set_route("CP-9", Route.LEGACY, shadow=False)
    assert change.applied == "not_connected"
    await first.fleet.set_wave("pilot", 12.5, Route.LEGACY, shadow=False)
    await first.stop()

    second = await routed(make_gateway, legacy, state=state)
    rules, default = second.fleet.rules()
    assert default is Route.TRANSLATE
    assert [(rule.charger, rule.name, rule.percent, rule.route) for rule in rules] == [
        ("CP-9", "", None, Route.LEGACY),
        (None, "pilot", 12.5, Route.LEGACY),
    ]
    charger = charger_for(second, chargers, "CP-9")
    await charger.connect()
    await charger.boot()
    await legacy.wait_for("BootNotification", station_id="CP-9")
    assert csms.connection_count("CP-9") == 0


async def test_a_trace_follows_the_frames_of_one_charger(
    make_gateway: MakeGateway, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    gateway = await routed(make_gateway, legacy, default_route="legacy")
    charger = charger_for(gateway, chargers, "CP-5")
    frames = gateway.fleet.trace("CP-5")
    await charger.connect()
    await charger.heartbeat()
    seen = [await anext(frames) for _ in range(4)]
    assert [(str(e.side), e.direction) for e in seen] == [
        ("charger", "in"),
        ("csms", "out"),
        ("csms", "in"),
        ("charger", "out"),
    ]
    assert '"Heartbeat"' in seen[0].text
    await frames.aclose()  # type: ignore[attr-defined]


async def test_a_shadowed_legacy_charger_is_mirrored_to_the_2_0_1_csms(
    make_gateway: MakeGateway, csms: CsmsSim, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    """Shadow mode wired in: the legacy CSMS serves the charger; its traffic is also
    translated to the 2.0.1 CSMS, read-only, and the answers compared."""
    gateway = await routed(
        make_gateway, legacy, routes=(RouteRule(route=Route.LEGACY, shadow=True, charger="SH-1"),)
    )
    charger = charger_for(gateway, chargers, "SH-1")
    await charger.connect()
    assert (await charger.boot())["status"] == "Accepted"
    await legacy.wait_for("BootNotification", station_id="SH-1")
    await csms.wait_for("BootNotification", station_id="SH-1")
    (info,) = gateway.fleet.chargers()
    assert (info.route, info.shadow) == ("legacy", True)
    assert metric(gateway, "ocpp_gateway_chargers_by_route", route="legacy", shadow="true") == 1
    for _ in range(100):
        labels = {"action": "BootNotification", "result": "agree"}
        if metric(gateway, "ocpp_gateway_shadow_comparisons_total", **labels) == 1:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the shadow's BootNotification answer was not compared")


async def test_the_legacy_csms_gets_the_chargers_own_credentials(
    make_gateway: MakeGateway, legacy: LegacyCsmsSim, chargers: MakeCharger
) -> None:
    """Passed through untouched includes the handshake's Basic auth: the 1.6 CSMS keeps
    checking the charger's own password, as before the gateway; a charger without one
    sends none."""
    gateway = await routed(make_gateway, legacy, default_route="legacy")
    url = f"ws://127.0.0.1:{gateway.charger_port}/ocpp"
    with_password = chargers(url, "OLD-1", password="0ld-CSMS-Passw0rd")
    without = chargers(url, "OLD-2")
    await with_password.connect()
    await without.connect()
    assert (await with_password.boot())["status"] == "Accepted"
    assert (await without.boot())["status"] == "Accepted"
    token = base64.b64encode(b"OLD-1:0ld-CSMS-Passw0rd").decode()
    assert legacy.authorizations == {"OLD-1": f"Basic {token}", "OLD-2": None}
