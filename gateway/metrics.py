"""Every Prometheus metric the gateway exports, declared in one place.

Layer: edge (imported by session, transport and app; imports nothing from them).

Names follow ``ocpp_gateway_<noun>_<unit>``. Labels are bounded: sides, directions,
outcomes, error codes and *known* OCPP actions only (an action that is not in either
version's schema set is counted as ``"unknown"``), never a station id.

Each :class:`GatewayMetrics` owns its registry, so a test can run two gateways in one
process and read each one's numbers.
"""

from __future__ import annotations

import functools
import time
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from gateway import __version__
from gateway.ocppj import Version
from gateway.schemas import known_actions

_KNOWN_ACTIONS: Final = known_actions(Version.V16) | known_actions(Version.V201)

# Round trips are dominated by the CSMS (tens of ms to seconds); translation by CPU (µs).
_RTT_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_CPU_BUCKETS: Final = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2)
# Store calls: an in-memory or WAL SQLite write takes 0.1-1 ms, a Redis round trip or a
# contended fsync several ms, a stalled disk up to seconds.
_STORE_BUCKETS: Final = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1)


class OutboxHead(Protocol):
    """A station's outbox, as the oldest-entry age gauge sees it."""

    def oldest_enqueued(self) -> float | None:
        """``time.monotonic()`` when the oldest undelivered message was queued (or loaded
        from the store after a restart); None when nothing waits."""
        ...


def action_label(action: str) -> str:
    """Bound the ``action`` label to the actions OCPP defines."""
    return action if action in _KNOWN_ACTIONS else "unknown"


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.build_info = Info("ocpp_gateway_build", "Gateway version.", registry=r)
        self.build_info.info({"version": __version__})
        self.connections = Gauge(
            "ocpp_gateway_connections",
            "Open websocket connections, by side (charger, csms) and OCPP protocol.",
            ["side", "protocol"],
            registry=r,
        )
        self.handshakes = Counter(
            "ocpp_gateway_charger_handshakes_total",
            "Charger connection attempts by outcome: accepted, or the refusal reason "
            "(refused_identity, refused_subprotocol, refused_draining, refused_unauthorized, "
            "refused_certificate, refused_profile, refused_state_unavailable, "
            "refused_capacity, refused_address_limit).",
            ["outcome"],
            registry=r,
        )
        self.limit_breaches = Counter(
            "ocpp_gateway_limit_breaches_total",
            "Abuse limits hit, by limit (connections, connections_per_address, "
            "handshake_timeout, frame_size, message_rate, queued_calls): each refuses or "
            "closes only the offender.",
            ["limit"],
            registry=r,
        )
        self.chargers_by_route = Gauge(
            "ocpp_gateway_chargers_by_route",
            "Connected 1.6 chargers by route (translate: to the 2.0.1 CSMS; legacy: passed "
            "through to the 1.6 CSMS) and whether they are mirrored to the other (shadow).",
            ["route", "shadow"],
            registry=r,
        )
        self.route_moves = Counter(
            "ocpp_gateway_route_moves_total",
            "Chargers moved to another route, by the route they moved to and when "
            "(now, or after_transaction: at the end of the transaction that was open).",
            ["route", "when"],
            registry=r,
        )
        self.shadow_comparisons = Counter(
            "ocpp_gateway_shadow_comparisons_total",
            "Shadow mode: the shadow CSMS's answer compared with the primary's, by 1.6 "
            "action and result (agree, disagree, shadow_error: no usable shadow answer).",
            ["action", "result"],
            registry=r,
        )
        self.replaced = Counter(
            "ocpp_gateway_charger_replacements_total",
            "Charger connections closed because the same station connected again.",
            registry=r,
        )
        self.leases = Gauge(
            "ocpp_gateway_station_leases",
            "Stations this replica holds the lease of (shared store only): one owner per "
            "station across replicas.",
            registry=r,
        )
        self.leases_lost = Counter(
            "ocpp_gateway_station_leases_lost_total",
            "Stations this replica lost to another replica while still connected (a "
            "charger reconnected elsewhere): both sockets closed, writes fenced off.",
            registry=r,
        )
        self.messages = Counter(
            "ocpp_gateway_messages_total",
            "OCPP-J messages by side, direction (in = received by the gateway), "
            "message type (call, result, error) and action.",
            ["side", "direction", "message_type", "action"],
            registry=r,
        )
        self.call_errors = Counter(
            "ocpp_gateway_call_errors_total",
            "CALLERRORs by side, direction and canonical error code.",
            ["side", "direction", "code"],
            registry=r,
        )
        self.invalid_frames = Counter(
            "ocpp_gateway_invalid_frames_total",
            "Received frames that are not OCPP-J, by side.",
            ["side"],
            registry=r,
        )
        self.unmatched_responses = Counter(
            "ocpp_gateway_unmatched_responses_total",
            "CALLRESULT/CALLERRORs whose message id matches no pending CALL, by side.",
            ["side"],
            registry=r,
        )
        self.call_duration = Histogram(
            "ocpp_gateway_call_duration_seconds",
            "Round trip of a CALL the gateway sent, until its answer, by side and action.",
            ["side", "action"],
            buckets=_RTT_BUCKETS,
            registry=r,
        )
        self.call_timeouts = Counter(
            "ocpp_gateway_call_timeouts_total",
            "CALLs the gateway sent that got no answer in time, by side and action.",
            ["side", "action"],
            registry=r,
        )
        self.translation_duration = Histogram(
            "ocpp_gateway_translation_duration_seconds",
            "CPU time to validate and translate one message, by direction.",
            ["direction"],
            buckets=_CPU_BUCKETS,
            registry=r,
        )
        self.upstream_reconnects = Counter(
            "ocpp_gateway_upstream_reconnects_total",
            "Upstream (CSMS) connection attempts after the first, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.held_messages = Counter(
            "ocpp_gateway_held_messages_total",
            "Charger messages the gateway answered itself before the CSMS accepted the "
            "station, by action.",
            ["action"],
            registry=r,
        )

        self.outbox_pending = Gauge(
            "ocpp_gateway_outbox_pending",
            "CSMS-bound messages written to the durable outbox and not yet answered by the "
            "CSMS, over all stations of this process.",
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "ocpp_gateway_outbox_oldest_age_seconds",
            "Age of the oldest undelivered outbox message over all stations of this process "
            "(0 when none); messages loaded from the store after a restart count from then.",
            registry=r,
        )
        # Outboxes with something queued; read at scrape time, never on the hot path.
        self._outbox_heads: set[OutboxHead] = set()
        self.outbox_oldest_age.set_function(self._oldest_outbox_age)
        self.outbox_delivered = Counter(
            "ocpp_gateway_outbox_delivered_total",
            "Outbox messages the CSMS answered, by action and whether they went up flagged "
            "offline (replayed after an outage).",
            ["action", "offline"],
            registry=r,
        )
        self.outbox_discarded = Counter(
            "ocpp_gateway_outbox_discarded_total",
            "Outbox messages given up after the CSMS answered them with CALLERROR on every "
            "attempt (2.0.1 E13 MessageAttempts), by action.",
            ["action"],
            registry=r,
        )
        self.offline_answers = Counter(
            "ocpp_gateway_offline_answers_total",
            "Charger messages the gateway answered itself because the CSMS was unreachable, "
            "by action and the authorization given (none for messages without one).",
            ["action", "authorization"],
            registry=r,
        )
        self.transactions = Counter(
            "ocpp_gateway_transactions_total",
            "Transaction lifecycle events the gateway emitted: started, ended, and "
            "synthetic (reported for a 1.6 transaction id the gateway never saw start).",
            ["event"],
            registry=r,
        )
        self.active_transactions = Gauge(
            "ocpp_gateway_active_transactions",
            "Open transactions of the stations connected to this process.",
            registry=r,
        )
        self.unknown_transactions = Counter(
            "ocpp_gateway_unknown_transactions_total",
            "Charger messages naming a transaction id the gateway does not know, by action.",
            ["action"],
            registry=r,
        )
        self.meter_normalisations = Counter(
            "ocpp_gateway_meter_normalisations_total",
            "Meter sampled values repaired by a vendor quirk rule before validation, by rule.",
            ["rule"],
            registry=r,
        )
        self.meter_samples_dropped = Counter(
            "ocpp_gateway_meter_samples_dropped_total",
            "1.6 sampled values with no 2.0.1 form (Temperature, RPM, unsigned signed data).",
            registry=r,
        )
        self.charger_disconnects = Counter(
            "ocpp_gateway_charger_disconnects_total",
            "Charger connections the gateway closed on purpose, by reason (mirror: the CSMS "
            "was unreachable for longer than offline_grace).",
            ["reason"],
            registry=r,
        )

        self.store_duration = Histogram(
            "ocpp_gateway_store_operation_duration_seconds",
            "Duration of state store calls, by Store method (failed calls included).",
            ["operation"],
            buckets=_STORE_BUCKETS,
            registry=r,
        )

        self.variable_results = Counter(
            "ocpp_gateway_variable_results_total",
            "GetVariables/SetVariables items answered, by operation and attributeStatus "
            "(Rejected with a reason the gateway gave counts as the reasonCode, e.g. "
            "InvalidValue: a value refused before the charger saw it).",
            ["operation", "status"],
            registry=r,
        )
        self.reports = Counter(
            "ocpp_gateway_reports_total",
            "GetBaseReport/GetReport requests answered, by request and status.",
            ["request", "status"],
            registry=r,
        )

        # The per-message metrics' children, memoised: labels() takes a lock and str()s
        # every value on each call, and a translated round trip updates several. The
        # label values are bounded (action_label), so are the caches.
        self.message_counter = functools.cache(self.messages.labels)
        self.call_timer = functools.cache(self.call_duration.labels)
        self.translation_timer = functools.cache(self.translation_duration.labels)
        self.delivery_counter = functools.cache(self.outbox_delivered.labels)

    def watch_outbox(self, head: OutboxHead) -> None:
        """Count ``head`` in the oldest-entry age while it has messages queued."""
        self._outbox_heads.add(head)

    def unwatch_outbox(self, head: OutboxHead) -> None:
        self._outbox_heads.discard(head)

    def _oldest_outbox_age(self) -> float:
        now = time.monotonic()
        oldest = min(
            (t for head in tuple(self._outbox_heads) if (t := head.oldest_enqueued()) is not None),
            default=None,
        )
        return 0.0 if oldest is None else max(0.0, now - oldest)

    def count_message(self, side: str, direction: str, message_type: str, action: str) -> None:
        self.message_counter(side, direction, message_type, action_label(action)).inc()
