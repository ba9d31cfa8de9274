"""`/metrics` in the Prometheus text format, from what is kept in Redis (all workers agree):
ingest counters, and gauges an operator alerts on — workers alive (0: nothing is processed), a
task backlog that grows, an outbox that does not drain, dead letters, open incidents,
remediation paused."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..adapters.store import UNAVAILABLE
from ..adapters.store.events import EventStore, IngestCounters
from ..adapters.store.incidents import IncidentStore
from ..adapters.store.notifications import NotificationStore
from ..adapters.store.remediation import RemediationStore
from ..adapters.store.workers import ALIVE_FOR, WorkerRegistry
from ..errors import Transient
from .errors import error_response

bp = Blueprint("metrics", __name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@bp.get("/metrics")
def metrics():
    rt = current_app.extensions["oneha"]
    try:
        counts = IngestCounters.of(rt).snapshot()
        gauges = _gauges(rt)
    except Transient as exc:
        return error_response(503, "redis_unreachable", str(exc))
    except UNAVAILABLE as exc:
        return error_response(503, "redis_unreachable", f"cannot read metrics: {exc}")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(counts, gauges))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)


def _gauges(rt) -> dict:
    return {"backlog": EventStore.of(rt).backlog(), "incidents": IncidentStore(rt).counts(),
            "dead_letters": NotificationStore.of(rt).dead_letter_count(),
            "paused": RemediationStore.from_runtime(rt).paused() is not None,
            "workers": len(WorkerRegistry.of(rt).alive())}


class _Snapshot:
    """A one-shot collector over a counter snapshot (`accepted:HOST`, `rejected:<reason>`, ...)."""

    def __init__(self, counts: dict[str, int], gauges: dict):
        self.counts = counts
        self.gauges = gauges

    def collect(self):
        accepted = CounterMetricFamily("oneha_events_accepted", "Events recorded and queued, by resource.",
                                       labels=["resource"])
        rejected = CounterMetricFamily("oneha_events_rejected",
                                       "Requests refused with a 4xx, by reason.", labels=["reason"])
        for field, value in sorted(self.counts.items()):
            kind, _, label = field.partition(":")
            if kind == "accepted":
                accepted.add_metric([label], value)
            elif kind == "rejected":
                rejected.add_metric([label], value)
        yield accepted
        yield CounterMetricFamily("oneha_events_duplicate",
                                  "Events received again with a known event_id (acknowledged, "
                                  "not processed twice).", value=self.counts.get("duplicate", 0))
        yield rejected
        yield CounterMetricFamily("oneha_ingest_unavailable",
                                  "Requests answered 503 because Redis could not be written.",
                                  value=self.counts.get("unavailable", 0))
        g = self.gauges
        yield GaugeMetricFamily("oneha_workers_alive", "Workers that reported in the last "
                                f"{ALIVE_FOR:.0f} s (alert on 0: events queue up unprocessed).",
                                value=g["workers"])
        backlog = GaugeMetricFamily("oneha_queue_messages", "Messages waiting for a worker "
                                    "(events: recorded, not yet applied; tasks: wake-ups and "
                                    "remediation; notify: deliveries).",
                                    labels=["queue"])
        for queue, n in sorted(g["backlog"].items()):
            backlog.add_metric([queue], n)
        yield backlog
        yield GaugeMetricFamily("oneha_incidents_open", "Incidents not resolved.",
                                value=g["incidents"]["open"])
        yield GaugeMetricFamily("oneha_outbox_pending", "Incident effects (deliveries, plans) "
                                "not yet handed to the queue.", value=g["incidents"]["outbox"])
        yield GaugeMetricFamily("oneha_notifications_dead_letters", "Deliveries given up on: "
                                "`oneha notifications failed`.", value=g["dead_letters"])
        yield GaugeMetricFamily("oneha_remediation_paused", "1 while remediation is paused "
                                "(`oneha pause`).", value=int(g["paused"]))
