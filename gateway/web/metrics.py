"""`/metrics` in the Prometheus text format, from counters kept in Redis (all workers agree)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily

from ..adapters.store.events import IngestCounters
from ..errors import Transient
from .errors import error_response

bp = Blueprint("metrics", __name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@bp.get("/metrics")
def metrics():
    try:
        counts = IngestCounters.of(current_app.extensions["oneha"]).snapshot()
    except Transient as exc:
        return error_response(503, "redis_unreachable", str(exc))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(counts))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)


class _Snapshot:
    """A one-shot collector over a counter snapshot (`accepted:HOST`, `rejected:<reason>`, ...)."""

    def __init__(self, counts: dict[str, int]):
        self.counts = counts

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
