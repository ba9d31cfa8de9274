"""The readiness flow: live pools → the remediation's plans for each possible host loss →
the report (CLI, console, metrics) → an incident per cluster that can no longer lose a host.

In order: read the hosts and the VMs through the leader-aware client (reads only: any healthy
front-end, a follower is fine); read them the way the remediation's planner does
(`planning.read_vms`: full documents, disks and system datastore); take OpenNebula's monitoring
interval as the planner does; take the measured action times of recent plans; assess (pure,
`gateway.domain.readiness`, which calls the remediation's `build_plan`); save the report; then,
per cluster, record a finding through the same `EventStore` as the hooks and the reconciler — a
firing event while the cluster cannot lose some host, a resolved one when it can again — so the
incident opens, is told and resolves on the normal incident path (`IncidentFlow`, run by the
worker). A CLUSTER incident has no VMs of its own: remediation plans nothing for it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from gateway.adapters.opennebula import OpenNebula
from gateway.adapters.store.events import EventStore
from gateway.adapters.store.readiness import ReadinessStore
from gateway.adapters.store.remediation import RemediationStore
from gateway.adapters.store.schedule import ScheduleStore
from gateway.domain import readiness, states
from gateway.domain.events import Event
from gateway.domain.readiness import ClusterReadiness, Report
from gateway.runtime import Runtime

from .remediation.context import RemediationContext
from .remediation.planning import Planner, read_vms

log = logging.getLogger("oneha.readiness")

READINESS_TASK = "oneha.readiness_check"
CONDITION = "READINESS/CANNOT_LOSE_HOST"
MEASURED_PLANS = 50  # recent plans whose recoveries time the estimate


@dataclass
class Checked:
    report: Report | None
    raised: list[Event] = field(default_factory=list)
    skipped: str = ""


class ReadinessFlow:
    def __init__(self, runtime: Runtime, one: OpenNebula | None = None):
        self.rt = runtime
        self.one = one or OpenNebula.of(runtime)
        self.store = ReadinessStore.of(runtime)
        self.remediation = RemediationStore.from_runtime(runtime)

    # ---- compute ----------------------------------------------------------------------------
    def compute(self, now: float | None = None) -> Report:
        """The report from the pools as they are now; nothing is written."""
        settings = self.rt.settings
        hosts = self.one.hosts()
        on_hosts = {vid for h in hosts if h.state == states.HOST_MONITORED for vid in h.vm_ids}
        vms = read_vms(self.one, on_hosts)
        planner = Planner(RemediationContext.build(settings, self.remediation, self.one))
        return readiness.assess(readiness.Inputs(
            hosts=hosts, vms=vms, policy_for=settings.remediation.for_labels,
            now=self.rt.clock() if now is None else now,
            monitoring_interval=planner.monitoring_interval(),
            concurrency=settings.remediation.concurrency,
            action_seconds=readiness.measured_action_seconds(self._samples())))

    def _samples(self):
        """(action, seconds from the call to the VM running again) of recent recoveries."""
        for plan_id in self.remediation.recent_plans(MEASURED_PLANS):
            plan = self.remediation.plan(plan_id)
            if plan is None:
                continue
            for key, rec in self.remediation.outcomes(plan_id).items():
                acted, running = rec.get("acted_at"), rec.get("running_at")
                if acted and running and key.startswith("vm:"):
                    yield key.rsplit(":", 1)[-1], float(running) - float(acted)

    # ---- the periodic check -----------------------------------------------------------------
    def check(self, now: float | None = None) -> Checked:
        """Compute, save, and record each cluster's finding (once per change)."""
        schedule = ScheduleStore.of(self.rt)
        token = schedule.acquire_run(READINESS_TASK, ttl=300.0)
        if token is None:
            return Checked(None, skipped="another readiness check is running")
        try:
            report = self.compute(now)
            self.store.save_report(report.to_dict())
            raised = self._record(report)
            return Checked(report, raised)
        finally:
            schedule.release_run(READINESS_TASK, token)

    def _record(self, report: Report) -> list[Event]:
        before = self.store.cluster_answers()
        answers, events = {}, []
        for c in report.clusters:
            key = cluster_key(c)
            held = before.get(key, {})
            if not c.survives_one:
                event = cannot_lose_event(c, report.at)
                events.append(event)
                answers[key] = {"survives": False, "event_id": event.event_id,
                                "since": held.get("since") if not held.get("survives", True)
                                else report.at}
            elif held and not held.get("survives", True):
                events.append(can_lose_again_event(c, held.get("event_id", ""), report.at))
                answers[key] = {"survives": True, "event_id": "", "since": report.at}
            elif not held:
                answers[key] = {"survives": True, "event_id": "", "since": report.at}
        # The answers first: a pass that fails half-way is replayed with the same event ids.
        self.store.save_cluster_answers(answers)
        store = EventStore.of(self.rt)
        raised = []
        for event in events:
            if store.record_finding(event).accepted:
                raised.append(event)
                log.info("readiness_finding object=%s status=%s summary=%s", event.object_key,
                         event.status, event.summary.splitlines()[0])
        return raised

    def last(self) -> Report | None:
        raw = self.store.report()
        return Report.from_dict(raw) if raw else None


def cluster_key(c: ClusterReadiness) -> str:
    return str(c.cluster_id) if c.cluster_id is not None else "none"


def _labels(c: ClusterReadiness) -> dict[str, str]:
    labels = {"resource": "CLUSTER", "name": c.label, "cluster": c.label,
              "severity": "warning", "readiness": "n+1"}
    if c.cluster_id is not None:
        labels["cluster_id"] = str(c.cluster_id)
    return labels


def cannot_lose_event(c: ClusterReadiness, now: float) -> Event:
    """One event per set of hosts the cluster cannot lose: the same set again is a duplicate,
    a changed set updates the same incident."""
    hosts = ",".join(sorted(h for h, _ in c.cannot_lose))
    lines = [c.headline() + "."]
    lines += [f"Losing {h} now: {n} VM(s) would find no room on the remaining hosts."
              for h, n in c.cannot_lose]
    lines.append("Free or add capacity in the cluster (or lower what its VMs reserve); "
                 "`oneha readiness` shows each host's VMs and why.")
    labels = _labels(c)
    worst = sorted(c.cannot_lose, key=lambda x: -x[1])
    more = f", +{len(worst) - 3} hosts" if len(worst) > 3 else ""
    # What people read first ("CLUSTER default (#0) is in N+1 LOST: node03 12 VMs without room")
    labels["state"] = ("N+1 LOST: " + ", ".join(f"{h} {n} VMs without room" for h, n in worst[:3])
                       + more)
    return Event(
        event_id=hashlib.sha256(f"readiness:{cluster_key(c)}:{hosts}".encode()).hexdigest()[:32],
        source="readiness", resource="CLUSTER", object_id=cluster_key(c),
        name=c.label, status="firing", condition=CONDITION, occurred_at=now,
        summary="\n".join(lines), labels=labels)


def can_lose_again_event(c: ClusterReadiness, firing_event_id: str, now: float) -> Event:
    labels = _labels(c)
    labels["state"] = "N+1"
    return Event(
        event_id=hashlib.sha256(f"readiness-ok:{cluster_key(c)}:{firing_event_id}".encode()
                                ).hexdigest()[:32],
        source="readiness", resource="CLUSTER", object_id=cluster_key(c),
        name=c.label, status="resolved", condition="READINESS/OK", occurred_at=now,
        summary=c.headline() + " again.", labels=labels)
