"""Shadow mode (issue 9): the comparison and the transactionId mapping as pure functions,
and :class:`ShadowMirror` over real loopback websockets against the simulators.

Primary ``legacy``: the shadow is the 2.0.1 :class:`CsmsSim` (it validates everything it
receives), reached through the mirror's own TranslatingSession; the primary's frames are
fed as the 1.6 relay reports them. Primary ``translate``: a real gateway serves a
:class:`ChargerSim` to a CsmsSim, and its observer feeds the mirror, whose shadow is the
1.6 :class:`LegacyCsmsSim`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.config import Settings
from gateway.mappings import load_tables
from gateway.metrics import GatewayMetrics
from gateway.ocppj import Call, CallError, CallResult, Version
from gateway.routing import Route
from gateway.session.bridge import SessionSettings
from gateway.session.links import CsmsLink, Side, TraceEvent
from gateway.session.shadow import (
    MAX_MIRRORED,
    READ_ONLY,
    ShadowMirror,
    compare,
    rewrite_transaction_id,
    started_transaction,
    verdict,
)
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from gateway.sim.legacy_csms import FIRST_TRANSACTION_ID, LegacyCsmsSim
from gateway.sim.wire import CallErrorReceived, JsonObject
from gateway.translate.tables import TranslationTables
from gateway.transport.upstream import Backoff, UpstreamLink

STATION = "CP-SHADOW-1"
NOW = "2024-05-01T12:00:00Z"
STOLEN = "STOLEN-CARD"  # the 2.0.1 CSMS (or the legacy one) says Invalid; the other Accepted


def result(payload: dict[str, Any], unique_id: str = "1") -> CallResult:
    return CallResult(unique_id, payload)


def error(code: str = "InternalError", unique_id: str = "1") -> CallError:
    return CallError(unique_id, code, "", {})


# --- pure helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "answer", "expected"),
    [
        ("BootNotification", result({"status": "Accepted", "interval": 300}), "Accepted"),
        ("BootNotification", result({"status": "Pending", "interval": 10}), "Pending"),
        ("DataTransfer", result({"status": "UnknownVendorId"}), "UnknownVendorId"),
        ("Authorize", result({"idTagInfo": {"status": "Blocked"}}), "Blocked"),
        (
            "StartTransaction",
            result({"transactionId": 7, "idTagInfo": {"status": "Invalid"}}),
            "Invalid",
        ),
        ("StopTransaction", result({}), "none"),
        ("StopTransaction", result({"idTagInfo": {"status": "Accepted"}}), "Accepted"),
        ("Heartbeat", result({"currentTime": NOW}), "CALLRESULT"),
        ("StatusNotification", result({}), "CALLRESULT"),
        ("Authorize", error("SecurityError"), "CALLERROR"),
        ("Heartbeat", error(), "CALLERROR"),
        ("BootNotification", result({}), "none"),
    ],
)
def test_verdict_is_the_meaning_of_an_answer(
    action: str, answer: CallResult | CallError, expected: str
) -> None:
    assert verdict(action, answer) == expected


def test_compare_on_meaning_not_bytes() -> None:
    # Different bytes, same meaning: agree.
    assert compare(
        "BootNotification",
        result({"status": "Accepted", "interval": 300, "currentTime": NOW}),
        result({"status": "Accepted", "interval": 60, "currentTime": "2030-01-01T00:00:00Z"}),
    )
    assert compare(
        "StartTransaction",
        result({"transactionId": 4711, "idTagInfo": {"status": "Accepted"}}),
        result({"transactionId": 1, "idTagInfo": {"status": "Accepted", "parentIdTag": "P"}}),
    )
    assert compare("MeterValues", result({}), result({}))
    assert compare("Heartbeat", error("InternalError"), error("GenericError"))
    # Different meaning: disagree.
    assert not compare(
        "Authorize",
        result({"idTagInfo": {"status": "Accepted"}}),
        result({"idTagInfo": {"status": "Invalid"}}),
    )
    assert not compare("StopTransaction", result({}), result({"idTagInfo": {"status": "Blocked"}}))
    assert not compare("StatusNotification", result({}), error())
    assert not compare(
        "DataTransfer", result({"status": "Accepted"}), result({"status": "Rejected"})
    )


def test_started_transaction_pairs_the_two_ids() -> None:
    primary = result({"transactionId": 4711, "idTagInfo": {"status": "Accepted"}})
    shadow = result({"transactionId": 3, "idTagInfo": {"status": "Invalid"}})
    assert started_transaction(primary, shadow) == (4711, 3)
    assert started_transaction(primary, error()) is None
    assert started_transaction(error(), shadow) is None
    assert started_transaction(primary, result({"transactionId": "3"})) is None
    assert started_transaction(primary, result({"transactionId": True})) is None


def test_rewrite_transaction_id() -> None:
    mapping = {4711: 3}
    stop = Call("9", "StopTransaction", {"transactionId": 4711, "meterStop": 10, "timestamp": NOW})
    rewritten = rewrite_transaction_id(stop, mapping)
    assert rewritten == Call(
        "9", "StopTransaction", {"transactionId": 3, "meterStop": 10, "timestamp": NOW}
    )
    assert stop.payload["transactionId"] == 4711, "the primary's CALL is not changed"
    meter = Call("10", "MeterValues", {"connectorId": 1, "transactionId": 4711, "meterValue": []})
    assert rewrite_transaction_id(meter, mapping) == Call(
        "10", "MeterValues", {"connectorId": 1, "transactionId": 3, "meterValue": []}
    )
    # Outside a transaction, and other actions: unchanged.
    idle = Call("11", "MeterValues", {"connectorId": 0, "meterValue": []})
    assert rewrite_transaction_id(idle, mapping) is idle
    start = Call("12", "StartTransaction", {"transactionId": 4711})
    assert rewrite_transaction_id(start, mapping) is start
    # A transaction the shadow has no id for: not mirrored.
    assert rewrite_transaction_id(Call("13", "StopTransaction", {"transactionId": 5}), {}) is None
    # Not an integer: both CSMSs get to refuse it as it is.
    odd = Call("14", "StopTransaction", {"transactionId": "4711"})
    assert rewrite_transaction_id(odd, mapping) is odd


# --- the mirror ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tables() -> TranslationTables:
    return load_tables()


def comparisons(metrics: GatewayMetrics, action: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "ocpp_gateway_shadow_comparisons_total", {"action": action, "result": outcome}
    )
    return value or 0.0


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Poll: the counters and sims the tests wait on offer no event to wait for."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def upstream_factory(url: str, metrics: GatewayMetrics) -> Callable[[str, Version], CsmsLink]:
    """What the app hands the mirror: an unstarted upstream link per station and version."""

    def connect(station_id: str, version: Version) -> CsmsLink:
        return UpstreamLink(
            url=url,
            station_id=station_id,
            metrics=metrics,
            subprotocol=version,
            backoff=Backoff(0.05, 0.2),
            ping_interval=None,
            open_timeout=2.0,
        )

    return connect


class LegacyPrimary:
    """The frames a legacy (1.6 pass-through) primary reports: the charger's CALL as it
    came in, the 1.6 CSMS's answer as it went out to the charger, and the CSMS side."""

    def __init__(self, mirror: ShadowMirror) -> None:
        self._mirror = mirror
        self._ids = itertools.count(1)

    def _event(self, side: Side, direction: str, frame: list[Any]) -> None:
        self._mirror.observe(TraceEvent(STATION, side, direction, json.dumps(frame)))

    def call(self, action: str, payload: JsonObject) -> str:
        unique_id = f"charger-{next(self._ids)}"
        self._event(Side.CHARGER, "in", [2, unique_id, action, payload])
        self._event(Side.CSMS, "out", [2, unique_id, action, payload])
        return unique_id

    def answer(self, unique_id: str, payload: JsonObject) -> None:
        self._event(Side.CSMS, "in", [3, unique_id, payload])
        self._event(Side.CHARGER, "out", [3, unique_id, payload])

    def exchange(self, action: str, payload: JsonObject, answer: JsonObject) -> str:
        unique_id = self.call(action, payload)
        self.answer(unique_id, answer)
        return unique_id


@pytest.fixture
async def strict_csms() -> AsyncIterator[CsmsSim]:
    """The 2.0.1 CSMS: Invalid for the stolen card, Accepted for every other idToken."""

    def token_info(id_token: JsonObject) -> JsonObject:
        return {"status": "Invalid" if id_token["idToken"] == STOLEN else "Accepted"}

    async with CsmsSim(id_token_info=token_info) as sim:
        yield sim
        assert sim.violations == [], "the 2.0.1 CSMS received schema-invalid payloads"
        assert sim.duplicate_connections == []


def sample(value: int) -> list[JsonObject]:
    return [{"timestamp": NOW, "sampledValue": [{"value": str(value)}]}]


class Legacy:
    """A mirror of a legacy primary, running, with the 2.0.1 CsmsSim as its shadow."""

    def __init__(self, csms: CsmsSim, metrics: GatewayMetrics, mirror: ShadowMirror) -> None:
        self.csms, self.metrics, self.mirror = csms, metrics, mirror
        self.primary = LegacyPrimary(mirror)

    def compared(self, action: str, outcome: str) -> float:
        return comparisons(self.metrics, action, outcome)


@pytest.fixture
async def legacy(strict_csms: CsmsSim, tables: TranslationTables) -> AsyncIterator[Legacy]:
    """The charger booted (the StatusNotification before the boot was not mirrored)."""
    metrics = GatewayMetrics()
    mirror = ShadowMirror(
        station_id=STATION,
        primary=Route.LEGACY,
        shadow_url=strict_csms.url,
        metrics=metrics,
        tables=tables,
        settings=SessionSettings(response_timeout=3.0, upstream_wait=3.0, validate_outbound=True),
        connect=upstream_factory(strict_csms.url, metrics),
    )
    shadow = Legacy(strict_csms, metrics, mirror)
    running = asyncio.create_task(mirror.run())
    # Before the charger boots, the shadow's own session knows nothing of it: not mirrored.
    status = {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
    shadow.primary.exchange("StatusNotification", status, {})
    assert mirror.skipped == 1
    boot = {"chargePointVendor": "SimVendor", "chargePointModel": "SimModel"}
    accepted = {"status": "Accepted", "currentTime": NOW, "interval": 300}
    shadow.primary.exchange("BootNotification", boot, accepted)
    await strict_csms.wait_for("BootNotification", station_id=STATION)
    await until(lambda: shadow.compared("BootNotification", "agree") == 1, "boot compared")
    assert strict_csms.received("StatusNotification") == []
    yield shadow
    await mirror.close()
    await asyncio.wait_for(running, 5)
    await strict_csms.wait_disconnected(STATION)


@pytest.mark.integration
async def test_legacy_primary_disagreements_and_refusals(
    legacy: Legacy, caplog: pytest.LogCaptureFixture
) -> None:
    csms, primary, mirror = legacy.csms, legacy.primary, legacy.mirror
    caplog.set_level(logging.WARNING, logger="gateway.session.shadow")

    # The legacy CSMS accepted a card the 2.0.1 CSMS rejects: a disagreement.
    primary.exchange("Authorize", {"idTag": STOLEN}, {"idTagInfo": {"status": "Accepted"}})
    await until(lambda: legacy.compared("Authorize", "disagree") == 1, "authorize compared")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "Authorize" in line and "Accepted" in line and "Invalid" in line for line in warnings
    ), warnings
    assert not any(STOLEN in line for line in warnings), "statuses are logged, never idTags"

    # The primary's answer may come after the shadow's.
    asked = primary.call("Authorize", {"idTag": "GOOD-CARD"})
    await csms.wait_for("Authorize", station_id=STATION, count=2)
    await asyncio.sleep(0.05)
    assert legacy.compared("Authorize", "agree") == 0
    primary.answer(asked, {"idTagInfo": {"status": "Accepted"}})
    await until(lambda: legacy.compared("Authorize", "agree") == 1, "late primary answer")

    # The 2.0.1 CSMS's own requests are refused: read-only, nothing reaches the charger.
    with pytest.raises(CallErrorReceived) as refused:
        await csms.call(
            STATION,
            "RequestStartTransaction",
            {"idToken": {"idToken": "GOOD-CARD", "type": "ISO14443"}, "remoteStartId": 1},
        )
    assert "read-only" in refused.value.description
    assert mirror.refused == 1

    # The shadow session's traffic is not the gateway's: only the comparisons count here.
    assert (
        legacy.metrics.registry.get_sample_value(
            "ocpp_gateway_messages_total",
            {"side": "charger", "direction": "in", "message_type": "call", "action": "Authorize"},
        )
        is None
    )
    assert legacy.compared("Authorize", "shadow_error") == 0


@pytest.mark.integration
async def test_legacy_primary_transaction_ids_are_mapped(legacy: Legacy) -> None:
    csms, primary, mirror = legacy.csms, legacy.primary, legacy.mirror

    # A transaction: the legacy CSMS numbered it 4711, the shadow session its own way.
    start = {"connectorId": 1, "idTag": "GOOD-CARD", "meterStart": 100, "timestamp": NOW}
    primary.exchange(
        "StartTransaction", start, {"transactionId": 4711, "idTagInfo": {"status": "Accepted"}}
    )
    started = await csms.wait_for(
        "TransactionEvent", station_id=STATION, where=lambda p: p["eventType"] == "Started"
    )
    transaction_id = started[0].payload["transactionInfo"]["transactionId"]
    await until(lambda: legacy.compared("StartTransaction", "agree") == 1, "start compared")

    meter = {"connectorId": 1, "transactionId": 4711, "meterValue": sample(150)}
    primary.exchange("MeterValues", meter, {})
    stop = {"transactionId": 4711, "idTag": "GOOD-CARD", "meterStop": 200, "timestamp": NOW}
    primary.exchange("StopTransaction", stop, {"idTagInfo": {"status": "Accepted"}})
    ended = await csms.wait_for(
        "TransactionEvent", station_id=STATION, where=lambda p: p["eventType"] == "Ended"
    )
    await until(lambda: legacy.compared("StopTransaction", "agree") == 1, "stop compared")
    assert legacy.compared("MeterValues", "agree") == 1
    # 4711 was mapped to the shadow's id: one transaction upstream, not a synthetic one.
    events = csms.received("TransactionEvent", station_id=STATION)
    assert {e.payload["transactionInfo"]["transactionId"] for e in events} == {transaction_id}
    assert [e.payload["eventType"] for e in events] == ["Started", "Updated", "Ended"]
    assert ended[0].payload["meterValue"][-1]["sampledValue"][0]["value"] == 200

    # A transaction the shadow never saw start is not mirrored.
    skipped = mirror.skipped
    unknown = {"transactionId": 999, "meterStop": 1, "timestamp": NOW}
    primary.exchange("StopTransaction", unknown, {})
    await until(lambda: mirror.skipped == skipped + 1, "unmapped stop skipped")
    assert len(csms.received("TransactionEvent", station_id=STATION)) == 3
    assert legacy.compared("StopTransaction", "agree") == 1


async def test_an_unreachable_shadow_counts_shadow_errors_and_recovers(
    tables: TranslationTables,
) -> None:
    """The 2.0.1 CSMS is down at the boot: shadow_error, never a disagreement; once it is
    up, the boot is sent again and mirroring goes on."""
    metrics = GatewayMetrics()
    async with CsmsSim() as csms:
        url = csms.url
        csms.refuse_connections = True  # HTTP 503: down
        mirror = ShadowMirror(
            station_id=STATION,
            primary=Route.LEGACY,
            shadow_url=url,
            metrics=metrics,
            tables=tables,
            settings=SessionSettings(response_timeout=1.0, upstream_wait=0.3),
            connect=upstream_factory(url, metrics),
        )
        primary = LegacyPrimary(mirror)
        running = asyncio.create_task(mirror.run())
        boot = {"chargePointVendor": "SimVendor", "chargePointModel": "SimModel"}
        primary.exchange(
            "BootNotification", boot, {"status": "Accepted", "currentTime": NOW, "interval": 300}
        )
        primary.exchange("Authorize", {"idTag": "GOOD-CARD"}, {"idTagInfo": {"status": "Accepted"}})
        await until(
            lambda: comparisons(metrics, "BootNotification", "shadow_error") == 1, "boot error"
        )
        await until(lambda: comparisons(metrics, "Authorize", "shadow_error") == 1, "auth error")
        assert comparisons(metrics, "Authorize", "disagree") == 0

        csms.refuse_connections = False
        await csms.wait_connected(STATION)
        primary.exchange("Authorize", {"idTag": STOLEN}, {"idTagInfo": {"status": "Accepted"}})
        await until(lambda: comparisons(metrics, "Authorize", "agree") == 1, "recovered")
        assert len(csms.received("BootNotification", station_id=STATION)) == 1
        await mirror.close()
        await asyncio.wait_for(running, 5)
        assert csms.violations == []


@pytest.mark.integration
async def test_a_start_answered_by_the_shadow_session_itself_is_still_mapped(
    tables: TranslationTables,
) -> None:
    """The 2.0.1 CSMS is unreachable when the transaction starts and stops: the shadow
    session answers both from its offline policy (shadow_error, not a verdict), but the
    transaction is open there, so the stop is mapped to it, and both events go up to the
    same transaction once the CSMS is back."""
    metrics = GatewayMetrics()
    async with CsmsSim() as csms:
        mirror = ShadowMirror(
            station_id=STATION,
            primary=Route.LEGACY,
            shadow_url=csms.url,
            metrics=metrics,
            tables=tables,
            settings=SessionSettings(response_timeout=0.5, upstream_wait=0.5),
            connect=upstream_factory(csms.url, metrics),
        )
        primary = LegacyPrimary(mirror)
        running = asyncio.create_task(mirror.run())
        boot = {"chargePointVendor": "SimVendor", "chargePointModel": "SimModel"}
        accepted = {"status": "Accepted", "currentTime": NOW, "interval": 300}
        primary.exchange("BootNotification", boot, accepted)
        await until(lambda: comparisons(metrics, "BootNotification", "agree") == 1, "booted")

        csms.refuse_connections = True
        await csms.drop(STATION)
        start = {"connectorId": 1, "idTag": "GOOD-CARD", "meterStart": 0, "timestamp": NOW}
        answer = {"transactionId": 77, "idTagInfo": {"status": "Accepted"}}
        primary.exchange("StartTransaction", start, answer)
        stop = {"transactionId": 77, "meterStop": 10, "timestamp": NOW, "idTag": "GOOD-CARD"}
        primary.exchange("StopTransaction", stop, {"idTagInfo": {"status": "Accepted"}})
        await until(
            lambda: comparisons(metrics, "StopTransaction", "shadow_error") == 1, "stop error"
        )
        assert comparisons(metrics, "StartTransaction", "shadow_error") == 1
        assert mirror.skipped == 0, "the stop was mapped, not skipped"

        csms.refuse_connections = False
        await csms.wait_for(
            "TransactionEvent", station_id=STATION, where=lambda p: p["eventType"] == "Ended"
        )
        events = csms.received("TransactionEvent", station_id=STATION)
        assert [e.payload["eventType"] for e in events] == ["Started", "Ended"]
        assert len({e.payload["transactionInfo"]["transactionId"] for e in events}) == 1
        await mirror.close()
        await asyncio.wait_for(running, 5)
        assert csms.violations == []


def test_a_slow_shadow_never_holds_the_primary_back(tables: TranslationTables) -> None:
    """observe() is synchronous and bounded: past MAX_MIRRORED waiting CALLs, the rest
    are dropped and counted as shadow_error (here run() never even started)."""
    metrics = GatewayMetrics()

    def never(_station_id: str, _version: Version) -> CsmsLink:
        raise AssertionError("run() was not started")

    mirror = ShadowMirror(
        station_id=STATION,
        primary=Route.TRANSLATE,
        shadow_url="ws://user:secret@127.0.0.1:1/ocpp",
        metrics=metrics,
        tables=tables,
        settings=SessionSettings(),
        connect=never,
    )
    for n in range(MAX_MIRRORED + 5):
        frame = [2, str(n), "Heartbeat", {}]
        mirror.observe(TraceEvent(STATION, Side.CHARGER, "in", json.dumps(frame)))
    mirror.observe(TraceEvent(STATION, Side.CHARGER, "in", "not json"))
    mirror.observe(TraceEvent(STATION, Side.CHARGER, "out", "[3]"))
    assert mirror.dropped == 5
    assert comparisons(metrics, "Heartbeat", "shadow_error") == 5


async def test_a_failing_shadow_never_fails_the_primary(tables: TranslationTables) -> None:
    """run() catches everything; afterwards each charger CALL counts as shadow_error."""
    metrics = GatewayMetrics()

    def broken(_station_id: str, _version: Version) -> CsmsLink:
        raise RuntimeError("no link today")

    mirror = ShadowMirror(
        station_id=STATION,
        primary=Route.TRANSLATE,
        shadow_url="ws://127.0.0.1:1/ocpp",
        metrics=metrics,
        tables=tables,
        settings=SessionSettings(),
        connect=broken,
    )
    mirror.observe(TraceEvent(STATION, Side.CHARGER, "in", json.dumps([2, "1", "Heartbeat", {}])))
    await asyncio.wait_for(mirror.run(), 5)  # returns, does not raise
    mirror.observe(TraceEvent(STATION, Side.CHARGER, "in", json.dumps([2, "2", "Heartbeat", {}])))
    assert comparisons(metrics, "Heartbeat", "shadow_error") == 2
    await mirror.close()


# --- primary translate: a real gateway, the legacy CSMS as the shadow ----------------


@pytest.mark.integration
async def test_translate_primary_is_mirrored_to_the_legacy_csms(
    strict_csms: CsmsSim, tables: TranslationTables, tmp_path: Path
) -> None:
    csms = strict_csms
    metrics = GatewayMetrics()  # the gateway's: the mirror counts where the gateway does
    async with LegacyCsmsSim(rejected_tags={"OLD-CARD"}) as legacy:
        mirror = ShadowMirror(
            station_id=STATION,
            primary=Route.TRANSLATE,
            shadow_url=legacy.url,
            metrics=metrics,
            tables=tables,
            settings=SessionSettings(response_timeout=3.0, upstream_wait=3.0),
            connect=upstream_factory(legacy.url, metrics),
        )

        def observer(event: TraceEvent) -> None:
            if event.station_id == STATION:
                mirror.observe(event)

        settings = Settings(
            listen="127.0.0.1:0",
            upstream=csms.url,
            state="memory://",
            validate_outbound=True,
            response_timeout=3.0,
            upstream_wait=3.0,
            backoff_initial=0.05,
            backoff_max=0.2,
            ping_interval=0,
        )
        gateway = Gateway(settings, metrics=metrics, observer=observer)
        await gateway.start()
        running = asyncio.create_task(mirror.run())
        try:
            url = f"ws://127.0.0.1:{gateway.charger_port}/ocpp"
            async with ChargerSim(url, STATION) as charger:
                assert (await charger.boot())["status"] == "Accepted"
                # Accepted by the 2.0.1 CSMS, refused by the legacy one.
                assert (await charger.authorize("OLD-CARD"))["idTagInfo"]["status"] == "Accepted"
                started = await charger.start_transaction(1, "GOOD-CARD", 0, NOW)
                primary_id = started["transactionId"]
                assert primary_id != FIRST_TRANSACTION_ID
                await charger.meter_values(1, sample(50), transaction_id=primary_id)
                await charger.stop_transaction(primary_id, 100, NOW, idTag="GOOD-CARD")
                await until(
                    lambda: comparisons(metrics, "StopTransaction", "agree") == 1, "stop compared"
                )
                assert comparisons(metrics, "BootNotification", "agree") == 1
                assert comparisons(metrics, "Authorize", "disagree") == 1
                assert comparisons(metrics, "StartTransaction", "agree") == 1
                assert comparisons(metrics, "MeterValues", "agree") == 1
                # The legacy CSMS got the charger's messages, with its own transactionId.
                stops = legacy.received("StopTransaction", station_id=STATION)
                assert [s.payload["transactionId"] for s in stops] == [FIRST_TRANSACTION_ID]
                meters = legacy.received("MeterValues", station_id=STATION)
                assert [m.payload["transactionId"] for m in meters] == [FIRST_TRANSACTION_ID]
                assert legacy.open_transactions == {}

                # The legacy CSMS's own requests are refused, and the charger never sees them.
                with pytest.raises(CallErrorReceived) as refused:
                    await legacy.call(STATION, "RemoteStopTransaction", {"transactionId": 1000})
                assert refused.value.description == READ_ONLY
                assert refused.value.code == "SecurityError"
                assert charger.calls_of("RemoteStopTransaction") == []
                assert mirror.refused == 1
        finally:
            await mirror.close()
            await asyncio.wait_for(running, 5)
            await gateway.stop()
        assert legacy.violations == [], "the legacy CSMS received schema-invalid payloads"
