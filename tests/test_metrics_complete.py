"""Every metric issue 7 asks for exists, with its documented labels; InstrumentedStore.

The names and labels here are a contract: the Grafana dashboard and the alert rules use
them. A fresh :class:`GatewayMetrics` registry is read through public prometheus_client
calls only: a labelled metric is exercised with exactly its documented label names
(``labels()`` refuses any other set), then its sample must be exported.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric

from gateway import __version__
from gateway.metrics import GatewayMetrics
from gateway.state import Change, InstrumentedStore, StateError, StationRecord
from gateway.state.instrumented import OPERATIONS
from gateway.state.sqlite import SqliteStore

STORE_DURATION = "ocpp_gateway_store_operation_duration_seconds"

# (exported name, type, label names): one row per item of the list.
REQUIRED: list[tuple[str, str, tuple[str, ...]]] = [
    # connected chargers and upstream links by protocol
    ("ocpp_gateway_connections", "gauge", ("side", "protocol")),
    # connection attempts and refusals by reason
    ("ocpp_gateway_charger_handshakes_total", "counter", ("outcome",)),
    # messages by action, direction and outcome (message_type: call, result, error)
    ("ocpp_gateway_messages_total", "counter", ("side", "direction", "message_type", "action")),
    ("ocpp_gateway_call_timeouts_total", "counter", ("side", "action")),
    # CALLERRORs by code and side
    ("ocpp_gateway_call_errors_total", "counter", ("side", "direction", "code")),
    # round-trip latency histograms per side
    ("ocpp_gateway_call_duration_seconds", "histogram", ("side", "action")),
    # translation latency
    ("ocpp_gateway_translation_duration_seconds", "histogram", ("direction",)),
    # upstream reconnects
    ("ocpp_gateway_upstream_reconnects_total", "counter", ("outcome",)),
    # outbox depth and oldest-entry age
    ("ocpp_gateway_outbox_pending", "gauge", ()),
    ("ocpp_gateway_outbox_oldest_age_seconds", "gauge", ()),
    # active transactions
    ("ocpp_gateway_active_transactions", "gauge", ()),
    # offline-answered messages
    ("ocpp_gateway_offline_answers_total", "counter", ("action", "authorization")),
    # store operation latency
    (STORE_DURATION, "histogram", ("operation",)),
    # build info
    ("ocpp_gateway_build", "info", ("version",)),
]


def _family(collector: MetricWrapperBase) -> Metric:
    return next(iter(collector.describe()))


def _collector(metrics: GatewayMetrics, family: str) -> MetricWrapperBase:
    """The metric object of ``metrics`` whose family (exposition name sans suffix) is that."""
    found = [
        value
        for value in vars(metrics).values()
        if isinstance(value, MetricWrapperBase) and _family(value).name == family
    ]
    assert len(found) == 1, f"{family}: {len(found)} metrics declare it"
    return found[0]


@pytest.mark.parametrize(("name", "kind", "labels"), REQUIRED, ids=[row[0] for row in REQUIRED])
def test_a_fresh_registry_has_every_required_metric_with_its_labels(
    name: str, kind: str, labels: tuple[str, ...]
) -> None:
    metrics = GatewayMetrics()
    family = name.removesuffix("_total") if kind == "counter" else name
    collector = _collector(metrics, family)
    assert _family(collector).type == kind
    values = {label: "x" for label in labels}
    if kind == "info":  # the labels are the info's keys
        sample, values = f"{name}_info", {"version": __version__}
    else:
        child = collector.labels(**values) if labels else collector
        sample = f"{name}_count" if kind == "histogram" else name
        if kind == "histogram":
            child.observe(0.001)  # type: ignore[attr-defined]
        elif kind == "counter":
            child.inc()  # type: ignore[attr-defined]
    assert metrics.registry.get_sample_value(sample, values) is not None, (name, values)
    assert name.startswith("ocpp_gateway_")
    assert "station_id" not in labels and "station" not in labels


def test_unlabelled_gauges_start_at_zero() -> None:
    metrics = GatewayMetrics()
    for name in (
        "ocpp_gateway_outbox_pending",
        "ocpp_gateway_outbox_oldest_age_seconds",
        "ocpp_gateway_active_transactions",
    ):
        assert metrics.registry.get_sample_value(name) == 0.0, name


class _Head:
    def __init__(self, enqueued: float | None) -> None:
        self.enqueued = enqueued

    def oldest_enqueued(self) -> float | None:
        return self.enqueued


def test_oldest_outbox_age_is_the_oldest_head_of_the_watched_outboxes() -> None:
    metrics = GatewayMetrics()
    age = "ocpp_gateway_outbox_oldest_age_seconds"
    older, newer, empty = _Head(time.monotonic() - 30), _Head(time.monotonic() - 5), _Head(None)
    for head in (older, newer, empty):
        metrics.watch_outbox(head)
    assert (metrics.registry.get_sample_value(age) or 0) >= 30
    metrics.unwatch_outbox(older)
    assert 5 <= (metrics.registry.get_sample_value(age) or 0) < 30
    metrics.unwatch_outbox(newer)
    assert metrics.registry.get_sample_value(age) == 0.0


def _count(metrics: GatewayMetrics, operation: str) -> float | None:
    return metrics.registry.get_sample_value(f"{STORE_DURATION}_count", {"operation": operation})


async def test_instrumented_store_times_each_operation(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    store = InstrumentedStore(SqliteStore(str(tmp_path / "state.db")), metrics.store_duration)
    assert {operation: _count(metrics, operation) for operation in OPERATIONS} == dict.fromkeys(
        OPERATIONS, 0.0
    ), "every operation is exported before its first call"
    await store.open()
    try:
        record = StationRecord("CP-1", {"chargePointVendor": "A", "chargePointModel": "B"}, "")
        await store.ping()
        await store.commit("CP-1", Change(station=record))
        await store.commit("CP-1", Change(station=record))
        assert await store.get_station("CP-1") == record
        assert await store.allocate_legacy_id("CP-1") == 1
        assert await store.open_transactions("CP-1") == []
        assert await store.find_transaction("CP-1", legacy_id=1) is None
        assert await store.pending_outbox("CP-1") == []
        assert await store.get_authorization("CP-1", "TAG") is None
        assert await store.prune(time.time()) == 0
        await store.put_station(record)
    finally:
        await store.close()
    counts = {operation: _count(metrics, operation) for operation in OPERATIONS}
    assert counts == {**dict.fromkeys(OPERATIONS, 1.0), "commit": 2.0}
    total = metrics.registry.get_sample_value(f"{STORE_DURATION}_sum", {"operation": "commit"})
    assert total is not None and total > 0


async def test_instrumented_store_reraises_state_errors_and_still_times_them(
    tmp_path: Path,
) -> None:
    metrics = GatewayMetrics()
    store = InstrumentedStore(SqliteStore(str(tmp_path / "state.db")), metrics.store_duration)
    await store.open()
    await store.close()
    with pytest.raises(StateError, match="closed"):
        await store.get_station("CP-1")
    record = StationRecord("CP-1", {}, "")
    with pytest.raises(StateError):
        await store.commit("CP-1", Change(station=record))
    assert _count(metrics, "get_station") == 1
    assert _count(metrics, "commit") == 1
