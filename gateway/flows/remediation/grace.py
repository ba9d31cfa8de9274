"""Stage 2, after the grace period: is there still something oneha may do, and who decides it?

In order: wait until the grace period ends; cancel the plan if its host came back meanwhile
(unless oneha itself disabled it); stop at the storm guard (many hosts in ERROR is a partition,
not a failure — one storm incident for the whole partition, a person may override it); tell
people which VMs nothing automatic will recover; then hand the plan to an approver
(`approval.py`) or, by policy, to the executors (`execution.py`).
"""

from __future__ import annotations

from gateway.adapters.store import remediation as rs
from gateway.domain import partition
from gateway.domain.remediation import guards
from gateway.domain.remediation.plans import Plan

from .approval import Approvals
from .context import RemediationContext
from .planning import Planner
from .ports import LEFT_TO_PEOPLE, RUN_TASK, Wake


class Grace:
    def __init__(self, ctx: RemediationContext, planner: Planner, approvals: Approvals):
        self.ctx = ctx
        self.planner = planner
        self.approvals = approvals

    def after_grace(self, plan: Plan) -> Wake | None:
        """Run again when the grace period ends; None once the plan has its next status."""
        now = self.ctx.clock()
        if plan.grace_until > now:
            return Wake(RUN_TASK, plan.grace_until - now)
        if plan.host_id is not None and self._host_came_back(plan):
            return None
        hosts = self.ctx.one.hosts()
        storm = guards.storm(hosts, self.ctx.cfg.storm)
        if not storm:
            self._block(plan, hosts, storm, now)
            return None
        self.tell_left_alone(plan)
        if not plan.steps:
            self.ctx.store.set_status(plan.plan_id, rs.CANCELLED, "nothing oneha may do")
            return None
        self._hand_over(plan)
        return None

    def _host_came_back(self, plan: Plan) -> bool:
        """A host out of ERROR after the grace period cancels its plan; a host oneha disabled
        itself (an earlier plan's step) has not come back."""
        host = self.ctx.one.host(plan.host_id)
        if host.is_error or host.id in self.planner.own_hosts([host]):
            return False
        self.ctx.store.set_status(plan.plan_id, rs.CANCELLED,
                                  f"host {host.name} is {host.state_label} again: it came back "
                                  "during the grace period, nothing done")
        self.ctx.store.audit("plan_cancelled", plan.plan_id, plan.incident_id,
                             reason="host back during grace", host_state=host.state_label)
        self.ctx.timeline(plan.incident_id, f"host {host.name} came back during the grace "
                                            "period: no action taken", plan_id=plan.plan_id)
        return True

    def _block(self, plan: Plan, hosts, storm: guards.Verdict, now: float) -> None:
        self.ctx.store.set_status(plan.plan_id, rs.BLOCKED, storm.reason)
        self.ctx.store.audit("plan_blocked", plan.plan_id, plan.incident_id, guard=storm.code,
                             reason=storm.reason)
        self.ctx.timeline(plan.incident_id, f"automatic remediation stopped: {storm.reason}; "
                                            f"`oneha approve {plan.plan_id}` overrides it",
                          plan_id=plan.plan_id)
        # One story for the whole partition, however many host plans it blocks.
        self.ctx.incidents.record_event(partition.storm_event(hosts, storm.reason, now))

    def _hand_over(self, plan: Plan) -> None:
        """All held for approval: wait for the approver. Some held: ask for them and run the
        others now. None held: run by policy."""
        if plan.mode == "approval" or (plan.needs_approval
                                       and not any(not s.needs_approval for s in plan.steps)):
            self.approvals.request(plan)
            return
        if plan.needs_approval:
            self.approvals.request(plan, keep_status=True)
        if self.ctx.store.set_status_if(plan.plan_id, (rs.GRACE,), rs.EXECUTING, "policy: auto"):
            self.ctx.incidents.set_state(plan.incident_id, "remediating",
                                         f"plan {plan.plan_id} runs by policy")

    def tell_left_alone(self, plan: Plan) -> None:
        """VMs of the plan that nothing automatic will bring back, by name and real reason: a
        definite decision, made after the grace period and the storm guard."""
        left = [s for s in plan.skipped if s.code in LEFT_TO_PEOPLE]
        if not left:
            return
        by_code: dict[str, list[str]] = {}
        for s in left:
            by_code.setdefault(s.code, []).append(f"{s.vm_name or 'VM'} ({s.vm_id})")
        example = next((s.reason for s in left if s.code == "wont_fit"), "")
        self.ctx.incidents.add_notice(
            plan.incident_id, "needs_human", f"{plan.plan_id}:left", "left_alone",
            {"count": len(left), "left": by_code, "example": example})
