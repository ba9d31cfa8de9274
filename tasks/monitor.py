"""`oneha.raft_check` and `oneha.reconcile`: the periodic watchers (run by `oneha beat`).

Both are thin: poll OpenNebula through the HA client, let the domain decide
(`gateway.domain.raft`, `gateway.domain.reconcile`), record the resulting Events through the same
`EventStore` as the hooks (dedup + event log + `oneha.process_event`), so their findings become
incidents and notifications on the normal path. Each holds a run lock: a slow poll (a stalled
front-end costs a timeout) never overlaps the next one. Neither retries: the next tick is the
retry, and a stale tick is dropped (`expires`, see tasks/beat.py).

`run_raft_check(rt)` / `run_reconcile(rt)` do one pass without Celery (the CLI uses them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from celery import shared_task

from gateway.adapters.opennebula import OpenNebula
from gateway.adapters.store.events import EventStore
from gateway.adapters.store.incidents import IncidentStore
from gateway.adapters.store.raft import RaftStore
from gateway.adapters.store.reconciler import ReconcilerStore
from gateway.adapters.store.schedule import ScheduleStore
from gateway.domain import partition, raft, reconcile, states
from gateway.domain.remediation import guards
from gateway.domain.events import Event
from gateway.errors import Permanent, Transient
from gateway.runtime import Runtime

log = logging.getLogger("oneha.monitor")

RAFT_CHECK_TASK = "oneha.raft_check"
RECONCILE_TASK = "oneha.reconcile"
DEFAULT_LOG_RETENTION = 250000  # oned.conf's default RAFT/LOG_RETENTION


def PERIODIC(settings) -> dict[str, float]:  # noqa: N802 - the beat's convention (a dict or this)
    periodic = {}
    if settings.raft.enabled:
        periodic[RAFT_CHECK_TASK] = settings.raft.interval
    if settings.reconciler.enabled:
        periodic[RECONCILE_TASK] = settings.reconciler.interval
    return periodic


@dataclass
class Recorded:
    """What recording a pass's Events did: `new` ones went to the incident engine."""

    new: list[Event] = field(default_factory=list)
    duplicates: int = 0

    def add(self, store: EventStore, events: list[Event]) -> None:
        for e in events:
            result = store.record_finding(e)
            if result.accepted:
                self.new.append(e)
                log.info("event_raised event=%s source=%s object=%s condition=%s status=%s "
                         "summary=%s", e.event_id, e.source, e.object_key, e.condition, e.status,
                         e.summary.splitlines()[0] if e.summary else "")
            else:
                self.duplicates += 1


# ---- Raft -----------------------------------------------------------------------------------

@dataclass
class RaftCheck:
    assessment: raft.Assessment | None
    plan: raft.EventPlan | None
    recorded: Recorded
    skipped: str = ""

    def as_dict(self) -> dict:
        if self.skipped:
            return {"skipped": self.skipped}
        a = self.assessment
        return {"leader": a.leader.endpoint if a.leader else None,
                "findings": {k: f.condition for k, f in a.findings.items()},
                "raised": [f"{e.object_key} {e.condition} {e.status}" for e in self.recorded.new]}


def rules_of(rt: Runtime, one: OpenNebula) -> raft.RaftRules:
    cfg = rt.settings.raft
    return raft.RaftRules(zone_id=cfg.zone_id, lag_threshold=cfg.lag_threshold,
                          log_retention=cfg.log_retention or _log_retention(rt, one),
                          flap_window=cfg.flap_window, flap_count=cfg.flap_count,
                          check_fault_tolerance=cfg.check_fault_tolerance)


def _log_retention(rt: Runtime, one: OpenNebula) -> int:
    """oned.conf's RAFT/LOG_RETENTION; the last value read when no front-end answers now."""
    known = rt.cached("raft_log_retention", dict)
    try:
        value = one.system_config().get("RAFT/LOG_RETENTION", "")
        known["value"] = int(value) if value.strip().isdigit() else DEFAULT_LOG_RETENTION
    except (Transient, Permanent) as exc:
        log.warning("log_retention_unknown reason=%s using=%s", exc,
                    known.get("value", DEFAULT_LOG_RETENTION))
    return known.get("value", DEFAULT_LOG_RETENTION)


def poll_raft(settings, one: OpenNebula) -> tuple[dict, raft.ZoneInfo | None]:
    """Every front-end's raftstatus (configured endpoints, plus the zone pool's when enabled)."""
    cfg = settings.raft
    try:
        zone = one.zone(cfg.zone_id)
    except (Transient, Permanent) as exc:
        log.warning("zone_unreadable zone=%s reason=%s", cfg.zone_id, exc)
        zone = None
    endpoints = list(one.endpoints)
    if zone is not None and cfg.poll_zone_endpoints:
        known = {raft.normalize_endpoint(u) for u in endpoints}
        endpoints += [s.endpoint for s in zone.servers
                      if s.endpoint and raft.normalize_endpoint(s.endpoint) not in known]
    return one.raft_statuses(endpoints), zone


def run_raft_check(rt: Runtime, one: OpenNebula | None = None, now: float | None = None
                   ) -> RaftCheck:
    one = one or OpenNebula.of(rt)
    schedule = ScheduleStore.of(rt)
    token = schedule.acquire_run(RAFT_CHECK_TASK, ttl=max(120.0, 3 * rt.settings.raft.interval))
    if token is None:
        return RaftCheck(None, None, Recorded(), skipped="another raft check is running")
    try:
        store = RaftStore.of(rt)
        memory, episodes = store.load()
        statuses, zone = poll_raft(rt.settings, one)
        rules = rules_of(rt, one)
        now = rt.clock() if now is None else now
        a = raft.assess(statuses, zone, rules, memory, now)
        plan = raft.plan_events(episodes, a.findings, now, zone_label=f"zone{rules.zone_id}",
                                healthy_summaries=a.healthy)
        # Episodes first, so a pass that fails half-way is replayed with the same event ids.
        store.save_episodes(plan.episodes)
        recorded = Recorded()
        recorded.add(EventStore.of(rt), plan.firing + plan.resolved)
        store.forget_episodes(plan.ended)
        store.save_poll(a, memory, now)
        return RaftCheck(a, plan, recorded)
    finally:
        schedule.release_run(RAFT_CHECK_TASK, token)


@shared_task(name=RAFT_CHECK_TASK, acks_late=True)
def raft_check() -> dict:
    from tasks.app import runtime
    result = run_raft_check(runtime())
    log.info("raft_checked %s", result.as_dict())
    return result.as_dict()


# ---- reconciler -----------------------------------------------------------------------------

@dataclass
class ReconcilePass:
    plan: reconcile.ReconcilePlan | None
    recorded: Recorded
    hosts: int = 0
    vms: int = 0
    skipped: str = ""

    def as_dict(self) -> dict:
        if self.skipped:
            return {"skipped": self.skipped}
        return {"hosts": self.hosts, "vms": self.vms,
                "raised": self.plan.count("raise"), "resolved": self.plan.count("resolve"),
                "waiting": self.plan.count("wait"), "new_events": len(self.recorded.new)}


def tracked_objects(rt: Runtime) -> dict[str, reconcile.Tracked]:
    """Every object of every open incident, as the incident holds it (firing wins)."""
    tracked: dict[str, reconcile.Tracked] = {}
    for inc in IncidentStore(rt).list(open_only=True, limit=1_000_000):
        if inc.merged_into:
            continue
        for key, obj in inc.objects.items():
            if key in tracked and tracked[key].status == "firing":
                continue
            tracked[key] = reconcile.Tracked(key, inc.id, obj.status, obj.name, obj.last_seen)
    return tracked


def own_host_states(incidents: IncidentStore, hosts, now: float) -> frozenset[str]:
    """Hosts whose DISABLED/OFFLINE state is oneha's own doing. A host oneha disabled that is
    in another state now was enabled again (by a person, or it is healthy): the mark is over."""
    own = incidents.own_actions(now)
    over = [str(h.id) for h in hosts if str(h.id) in own
            and own[str(h.id)].get("action") == "disable_host"
            and h.state not in states.HOST_OPERATOR_STATES]
    incidents.forget_own_actions(over)
    return frozenset(k for k in own if k not in over)


def run_reconcile(rt: Runtime, one: OpenNebula | None = None, now: float | None = None
                  ) -> ReconcilePass:
    one = one or OpenNebula.of(rt)
    schedule = ScheduleStore.of(rt)
    token = schedule.acquire_run(RECONCILE_TASK,
                                 ttl=max(300.0, 3 * rt.settings.reconciler.interval))
    if token is None:
        return ReconcilePass(None, Recorded(), skipped="another reconcile pass is running")
    try:
        hosts, vms = one.hosts(), one.vms()
        store = ReconcilerStore.of(rt)
        now = rt.clock() if now is None else now
        incidents = IncidentStore(rt)
        own = own_host_states(incidents, hosts, now)
        tracked = tracked_objects(rt)
        plan = reconcile.reconcile(hosts, vms, tracked, store.marks(), now, own_hosts=own)
        store.save_marks(plan.marks, plan.forget)  # first: a replayed pass reuses the same ids
        storm = guards.storm(hosts, rt.settings.remediation.storm)
        held = tracked.get(partition.OBJECT_KEY)
        storm_events = partition.reconcile(
            hosts, bool(storm), storm.reason,
            held.incident_id if held is not None and held.status == "firing" else None, now)
        recorded = Recorded()
        recorded.add(EventStore.of(rt), plan.events + storm_events)
        for d in plan.findings:
            if d.action in ("raise", "resolve"):
                log.info("reconciled object=%s action=%s reason=%s", d.object_key, d.action,
                         d.reason)
        result = ReconcilePass(plan, recorded, hosts=len(hosts), vms=len(vms))
        store.save_last({"at": now, **result.as_dict()})
        return result
    finally:
        schedule.release_run(RECONCILE_TASK, token)


@shared_task(name=RECONCILE_TASK, acks_late=True)
def reconcile_pools() -> dict:
    from tasks.app import runtime
    result = run_reconcile(runtime())
    log.info("reconcile_done %s", result.as_dict())
    return result.as_dict()
