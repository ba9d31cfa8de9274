"""`/metrics` in the Prometheus text format, from what is kept in Redis (all workers agree):
ingest counters, and gauges an operator alerts on — workers alive (0: nothing is processed), a
task backlog that grows, an outbox that does not drain, dead letters, open incidents,
remediation paused — and what oneha did (deliveries per receiver, remediation actions by
outcome, event-to-message latency), the Raft cluster as last polled and when each front-end was
last heard from (deploy/prometheus/oneha-rules.yml alerts on these)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ..adapters.store import UNAVAILABLE
from ..adapters.store.events import EventStore, IngestCounters
from ..adapters.store.incidents import IncidentStore
from ..adapters.store.notifications import NotificationStore
from ..adapters.store.readiness import ReadinessStore
from ..adapters.store.raft import RaftStore
from ..adapters.store.remediation import RemediationStore
from ..adapters.store.telemetry import Telemetry
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
    registry.register(_Activity(gauges["telemetry"], gauges["raft"]))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)


def _gauges(rt) -> dict:
    return {"backlog": EventStore.of(rt).backlog(), "incidents": IncidentStore(rt).counts(),
            "dead_letters": NotificationStore.of(rt).dead_letter_count(),
            "paused": RemediationStore.from_runtime(rt).paused() is not None,
            "workers": len(WorkerRegistry.of(rt).alive()),
            "telemetry": Telemetry.of(rt).snapshot(), "raft": RaftStore.of(rt).snapshot(),
            "readiness": ReadinessStore.of(rt).report(),
            "heartbeats": ReadinessStore.of(rt).heartbeats(), "now": rt.clock()}


# Events are counted by the record script itself (store/events.py): one round trip per event.
SIGNED_BY_FRONTENDS = ("/v1/heartbeats", "/v1/drills")


@bp.after_app_request
def _frontend_seen(response):
    """A front-end is heard from when the gateway accepts a request it signed (202: signature
    verified, so the name is not spoofed): `oneha_frontend_last_seen_timestamp_seconds`, and
    for an event `oneha_frontend_last_event_timestamp_seconds`."""
    if response.status_code == 202 and request.path in SIGNED_BY_FRONTENDS:
        frontend = request.headers.get("X-OneHA-Frontend", "")
        if frontend:
            Telemetry.of(current_app.extensions["oneha"]).frontend_seen(frontend, event=False)
    return response


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
        yield from _readiness(g.get("readiness"), g.get("heartbeats") or {}, g.get("now", 0.0))


def _readiness(report: dict | None, heartbeats: dict, now: float):
    """The last readiness report (`oneha.readiness_check`) and the front-ends' heartbeats."""
    one = GaugeMetricFamily("oneha_readiness_survives_host_loss", "1 when every VM oneha would "
                            "move still finds room after the loss of any one host of the "
                            "cluster (N+1), 0 when not.", labels=["cluster"])
    two = GaugeMetricFamily("oneha_readiness_survives_two_host_losses", "The same for any two "
                            "hosts (N+2); absent for clusters of fewer than three hosts.",
                            labels=["cluster"])
    risk = GaugeMetricFamily("oneha_readiness_vms_at_risk", "VMs of the host that nothing "
                             "automatic would bring back if it failed now (left to people).",
                             labels=["host"])
    room = GaugeMetricFamily("oneha_readiness_vms_without_room", "VMs of the host oneha would "
                             "move but that would find no room if it failed now.",
                             labels=["host"])
    for c in (report or {}).get("clusters", []):
        name = c.get("cluster") or str(c.get("cluster_id"))
        one.add_metric([name], 1 if c["survives_one"] else 0)
        if c.get("survives_two") is not None:
            two.add_metric([name], 1 if c["survives_two"] else 0)
    for h in (report or {}).get("hosts", []):
        risk.add_metric([h["host_name"]], h.get("at_risk", 0))
        room.add_metric([h["host_name"]],
                        sum(1 for v in h.get("vms", []) if v.get("code") == "wont_fit"))
    yield one
    yield two
    yield risk
    yield room
    if report:
        yield GaugeMetricFamily("oneha_readiness_report_age_seconds", "Seconds since readiness "
                                "was last computed.", value=max(0.0, now - report["at"]))
    age = GaugeMetricFamily("oneha_frontend_heartbeat_age_seconds", "Seconds since the "
                            "front-end's sender last signed a heartbeat (after its --flush).",
                            labels=["frontend"])
    for fe, seen in sorted(heartbeats.items()):
        age.add_metric([fe], max(0.0, now - float(seen.get("at") or 0)))
    yield age


class _Activity:
    """What oneha did and saw: from Telemetry's snapshot and the Raft monitor's last poll."""

    def __init__(self, telemetry: dict, raft: dict | None):
        self.t = telemetry
        self.raft = raft

    def collect(self):
        sent = CounterMetricFamily("oneha_notifications_sent", "Messages a receiver's URL "
                                   "accepted, by receiver.", labels=["receiver"])
        failed = CounterMetricFamily("oneha_notifications_failed", "Delivery attempts that "
                                     "failed (retried or dead-lettered), by receiver.",
                                     labels=["receiver"])
        actions = CounterMetricFamily("oneha_remediation_actions", "Remediation steps by action "
                                      "and outcome (done, failed, skipped, needs_human).",
                                      labels=["action", "outcome"])
        for field, n in sorted(self.t["counters"].items()):
            kind, _, rest = field.partition(":")
            if kind == "sent":
                sent.add_metric([rest], n)
            elif kind == "failed":
                failed.add_metric([rest], n)
            elif kind == "action":
                action, _, outcome = rest.rpartition(":")
                actions.add_metric([action, outcome], n)
        yield sent
        yield failed
        yield actions
        latency = HistogramMetricFamily("oneha_event_to_notification_seconds", "From the event "
                                        "(an incident's start or resolution) to the message a "
                                        "receiver accepted; group_wait included.",
                                        labels=["transition"])
        for transition, h in sorted(self.t["latency"].items()):
            buckets = [(f"{b:g}", n) for b, n in h["buckets"]] + [("+Inf", h["count"])]
            latency.add_metric([transition], buckets, h["sum"])
        yield latency
        for kind, help_ in (("event", "an event"),
                            ("seen", "a signed request (event, heartbeat, drill)")):
            family = GaugeMetricFamily(f"oneha_frontend_last_{kind}_timestamp_seconds",
                                       f"When the gateway last accepted {help_} of this "
                                       "front-end (unix time).", labels=["frontend"])
            for frontend, at in sorted(self.t["frontends"].get(kind, {}).items()):
                family.add_metric([frontend], at)
            yield family
        yield from self._raft()

    def _raft(self):
        polled = GaugeMetricFamily("oneha_raft_last_poll_timestamp_seconds", "When the Raft "
                                   "monitor last polled the front-ends (absent: never).")
        leader = GaugeMetricFamily("oneha_raft_leader", "1 when the last poll found a leader.")
        servers = GaugeMetricFamily("oneha_raft_servers", "Front-end servers by Raft state "
                                    "(leader, follower, candidate, error, ...).", labels=["state"])
        lag = GaugeMetricFamily("oneha_raft_follower_lag", "Log records a server is behind the "
                                "leader.", labels=["server"])
        findings = GaugeMetricFamily("oneha_raft_findings", "Open Raft findings by severity.",
                                     labels=["severity"])
        if self.raft:
            polled.add_metric([], float(self.raft.get("at") or 0))
            leader.add_metric([], 1 if self.raft.get("leader") is not None else 0)
            by_state: dict[str, int] = {}
            for srv in self.raft.get("servers", []):
                state = str(srv.get("state") or "unknown").lower()
                by_state[state] = by_state.get(state, 0) + 1
                if srv.get("lag") is not None:
                    lag.add_metric([str(srv.get("name") or srv.get("endpoint"))], srv["lag"])
            for state, n in sorted(by_state.items()):
                servers.add_metric([state], n)
            by_sev: dict[str, int] = {}
            for f in self.raft.get("findings", []):
                by_sev[f.get("severity", "unknown")] = by_sev.get(f.get("severity", "unknown"), 0) + 1
            for sev, n in sorted(by_sev.items()):
                findings.add_metric([sev], n)
        yield from (polled, leader, servers, lag, findings)
