"""Stage 1, planning: an incident becomes a stored plan, then waits out its grace period.

In order: follow a merged incident to the one it joined; take the incident's planning lock (its
events arrive in bursts); leave out VMs an earlier plan covers; read the hosts and the VMs live;
build the plan (pure, `gateway.domain.remediation.plans`); store it with each VM as it was
before any action (for the impact report); tell the timeline; ask for the first run after the
grace period. Nobody is told yet that a VM will be left alone: that is known only after the
grace period and the storm guard (`grace.py`).

Also here, because planning reads them first and the later stages ask again: OpenNebula's
monitoring interval, which hosts are out of service by oneha's own doing, and how VMs are read.
"""

from __future__ import annotations


from gateway.adapters.store import remediation as rs
from gateway.domain.objects import VmInfo
from gateway.domain.remediation.plans import Plan, PlanInput, build_plan
from gateway.domain.timefmt import utc
from gateway.errors import Permanent, Transient

from .context import RemediationContext
from .ports import PLAN_TASK, RUN_TASK, log

# Above this many VMs one pool read is cheaper than one `vm.info` each.
_POOL_READ_ABOVE = 8
_VM_NOT_FOUND = 0x0400  # OpenNebula's error code for an object that does not exist


class Planner:
    def __init__(self, ctx: RemediationContext):
        self.ctx = ctx
        self._interval: float | None = None  # OpenNebula's, read once per process

    def plan(self, incident_id: str) -> str | None:
        ctx = self.ctx
        inc = ctx.incidents.get(incident_id)
        if inc is None:
            log.info("remediation_not_planned", incident=incident_id, reason="no such incident")
            return None
        if getattr(inc, "merged_into", None):
            ctx.send(PLAN_TASK, [inc.merged_into], 0)
            return None
        if not inc.is_open:
            return None
        with ctx.store.planning_lock(incident_id) as got:
            if not got:  # another worker is planning this incident: look again after it
                ctx.send(PLAN_TASK, [incident_id], 1.0)
                return None
            return self._plan_locked(inc)

    def _plan_locked(self, inc) -> str | None:
        existing = self.ctx.store.plan_ids(inc.id)
        covered = self._covered(existing)
        hosts = self.ctx.one.hosts()
        vm_ids = _objects_of(inc, hosts) - covered
        if existing and not vm_ids:
            return None  # every object of the incident is planned already
        vms = read_vms(self.ctx.one, vm_ids)
        plan = build_plan(PlanInput(
            plan_id=f"{inc.id}.{len(existing) + 1}", incident_id=inc.id,
            now=self.ctx.clock(), policy=self.ctx.cfg.for_labels(inc.labels), vms=vms,
            hosts=hosts, failed_host_id=_failed_host_id(inc),
            incident_started_at=inc.created_at, monitoring_interval=self.monitoring_interval(),
            exclude_vm_ids=frozenset(covered), labels=dict(inc.labels),
            own_host_ids=self.own_hosts(hosts)))
        if not plan.steps and not plan.skipped:
            return None
        return self._save(plan, vms)

    def _covered(self, plan_ids: list[str]) -> set[int]:
        """VMs the incident's earlier plans act on or decided about."""
        covered: set[int] = set()
        for pid in plan_ids:
            p = self.ctx.store.plan(pid)
            if p is not None:
                # A VM that was fine (or another incident's) then may fail later: plan it then.
                covered |= set(p.vm_ids) | {s.vm_id for s in p.skipped
                                            if s.code not in ("other_plan", "not_failed")}
        return covered

    def _save(self, plan: Plan, vms: list[VmInfo]) -> str:
        """Store the plan (once: a retried task finds it there), say so, ask for its first run."""
        ctx = self.ctx
        status, reason = self._initial_status(plan)
        if not ctx.store.save_plan(plan, status, reason, {v.id: v for v in vms}):
            return plan.plan_id
        ctx.store.audit("plan_created", plan.plan_id, plan.incident_id, mode=plan.mode,
                        status=status, reason=reason, steps=[s.key for s in plan.steps],
                        skipped=[(s.vm_id, s.code, s.reason) for s in plan.skipped])
        ctx.timeline(plan.incident_id, f"remediation plan {plan.plan_id}: {len(plan.vm_steps)} "
                                       f"VM action(s), {len(plan.skipped)} left alone; {reason}",
                     plan_id=plan.plan_id)
        ctx.incidents.set_plan(plan.incident_id, plan.plan_id)
        log.info("plan_created", plan=plan.plan_id, incident=plan.incident_id, status=status)
        if status == rs.GRACE:
            ctx.send(RUN_TASK, [plan.plan_id], max(0.0, plan.grace_until - ctx.clock()))
        elif status not in rs.TERMINAL:
            ctx.send(RUN_TASK, [plan.plan_id], 0)
        return plan.plan_id

    def _initial_status(self, plan: Plan) -> tuple[str, str]:
        if plan.mode == "off":
            return rs.OFF, plan.mode_reason
        if plan.grace_until > self.ctx.clock():
            return rs.GRACE, (f"grace period: the host must stay in ERROR until "
                              f"{utc(plan.grace_until)}")
        return rs.GRACE, "grace period over"

    def monitoring_interval(self) -> float:
        cfg = self.ctx.cfg
        if cfg.monitoring_interval is not None:
            return float(cfg.monitoring_interval)
        if self._interval is None:
            try:
                conf = self.ctx.one.system_config()
                self._interval = float(conf.get("MONITORING_INTERVAL_HOST") or 60)
            except (Transient, Permanent, ValueError):
                self._interval = 60.0  # OpenNebula's default
        return self._interval

    def own_hosts(self, hosts) -> frozenset[int]:
        """Of `hosts`, those DISABLED/OFFLINE by oneha itself: a plan disabled them, or a
        refresh set them OFFLINE for a moment. Never an operator's maintenance."""
        candidates = [h for h in hosts if h.in_maintenance]
        if not candidates:  # the usual case, asked before each action: no Redis round trip
            return frozenset()
        marked = self.ctx.incidents.own_hosts()
        return frozenset(h.id for h in candidates
                         if h.id in marked or self.ctx.store.refreshed_at(h.id) is not None)

    def own_mark_ttl(self, action: str) -> float | None:
        """How long a host state oneha caused is oneha's: a disabled host until it is healthy
        again (no expiry), a refresh's OFFLINE for the cycle or two the refresh takes."""
        return None if action == "disable_host" else 2 * self.monitoring_interval() + 30.0


def _failed_host_id(inc) -> int | None:
    primary = inc.primary
    return int(primary.id) if primary.resource == "HOST" else None


def _objects_of(inc, hosts) -> set[int]:
    """The incident's VMs; for a failed host, also every VM OpenNebula places on it."""
    vm_ids = {int(o.id) for o in inc.objects.values() if o.resource == "VM"}
    failed_host_id = _failed_host_id(inc)
    if failed_host_id is not None:
        host = next((h for h in hosts if h.id == failed_host_id), None)
        if host is not None:
            vm_ids |= set(host.vm_ids)
    return vm_ids


def read_vms(one, vm_ids: set[int]) -> list[VmInfo]:
    """The full documents (disks, system datastore) of the VMs a plan is built from."""
    if not vm_ids:
        return []
    pool = {v.id: v for v in one.vms()} if len(vm_ids) > _POOL_READ_ABOVE else {}
    out = []
    for vid in sorted(vm_ids):
        vm = pool.get(vid)
        if vm is None or vm.system_ds_shared is None:
            try:
                vm = one.vm(vid)  # the full document: disks, system datastore
            except Permanent:
                continue  # gone (terminated) since the event
        out.append(vm)
    return out


def vm_or_none(one, vm_id) -> VmInfo | None:
    """The VM as OpenNebula shows it now; None if it no longer exists."""
    try:
        return one.vm(vm_id)
    except Permanent as exc:
        if getattr(exc, "code", None) == _VM_NOT_FOUND:
            return None
        raise


def live_vms(one, vm_ids: list[int]) -> dict[int, VmInfo]:
    """Many VMs: one pool read; a few: one `vm.info` each."""
    if not vm_ids:
        return {}
    if len(vm_ids) > _POOL_READ_ABOVE:
        wanted = set(vm_ids)
        return {v.id: v for v in one.vms() if v.id in wanted}
    out = {}
    for vid in vm_ids:
        vm = vm_or_none(one, vid)
        if vm is not None:
            out[vid] = vm
    return out
