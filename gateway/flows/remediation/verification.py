"""Stage 5, verification: follow each acted-on VM until it runs, retry, or hand it to people;
then finish the plan with its impact report.

In order, on every pass (`verify_locked`, every `verify_interval` while something is pending):
read the acted-on VMs live; a VM RUNNING again is recorded `running`; a VM still on its way
within `verify_timeout` is left to get there; one that failed or timed out is retried with
backoff (`guards.next_attempt`) until `max_retries`, then `needs_human` (a notice, the incident
back to firing). When nothing is pending and no approver is awaited, `finish` writes the impact
report, shows each VM as it is now on the incident, and resolves it if every VM runs again.
A permanent refusal by OpenNebula anywhere in the flow ends the plan in `fail_plan`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.adapters.store import remediation as rs
from gateway.domain import impact
from gateway.domain.hook_events import vm_is_failing
from gateway.domain.objects import VmInfo
from gateway.domain.phrases import BY_ONEHA
from gateway.domain.remediation import guards
from gateway.domain.remediation.guards import Expect
from gateway.domain.remediation.outcomes import NOT_ACTED, StepOutcome
from gateway.domain.remediation.plans import Plan, Step
from gateway.errors import Permanent

from .actions import Actions
from .approval import held_for_approval
from .context import RemediationContext
from .planning import live_vms, vm_or_none
from .ports import LEFT_TO_PEOPLE, VERIFY_TASK, Wake


@dataclass(frozen=True)
class _Look:
    """One verification pass's view: the time, the VMs read live and which were read."""

    now: float
    live: dict[int, VmInfo]
    read: frozenset[str]  # keys of the steps whose VM was read
    approved: bool


class Verifier:
    def __init__(self, ctx: RemediationContext, actions: Actions):
        self.ctx = ctx
        self.actions = actions

    def verify(self, plan_id: str) -> Wake | None:
        store = self.ctx.store
        plan = store.plan(plan_id)
        if plan is None:
            return None
        if store.plan_state(plan_id).get("status") in rs.TERMINAL:
            return None
        if not store.take_lease(plan_id, self.ctx.worker_id, self.ctx.lease_ttl):
            return Wake(VERIFY_TASK, store.lease_ttl(plan_id) + 0.2)
        try:
            return self.verify_locked(plan)
        except Permanent as exc:
            self.fail_plan(plan, exc)
            return None
        finally:
            store.drop_lease(plan_id, self.ctx.worker_id)

    def verify_locked(self, plan: Plan) -> Wake | None:
        """One pass over the plan's VM steps, under the plan's lease."""
        now = self.ctx.clock()
        outcomes = self.ctx.outcomes(plan.plan_id)
        state = self.ctx.store.plan_state(plan.plan_id)
        to_read = [s for s in plan.vm_steps if _worth_reading(outcomes.get(s.key, NOT_ACTED))]
        look = _Look(now, live_vms(self.ctx.one, [s.vm_id for s in to_read]),
                     frozenset(s.key for s in to_read), state.get("approved") == "yes")
        pending = False
        for step in plan.vm_steps:
            if self._follow(plan, step, outcomes.get(step.key, NOT_ACTED), look):
                pending = True
        if pending:
            return Wake(VERIFY_TASK, self.ctx.cfg.verify_interval)
        held = [s for s in plan.steps if outcomes.get(s.key, NOT_ACTED).status is None]
        if held and state.get("approved") not in ("yes", "denied"):
            return None  # the approver decides the rest; approving runs the plan again
        self.finish(plan)
        return None

    def _follow(self, plan: Plan, step: Step, out: StepOutcome, look: _Look) -> bool:
        """One VM step's progress; True while it is still pending."""
        status = out.status
        if status is None and held_for_approval(plan, step) and not look.approved:
            return False  # waits for an approver, not for us
        if out.pending:
            return True  # not acted yet (the executor is on it)
        if step.key not in look.read:
            return False  # running, needs_human, failed, skipped for a reason
        vm = look.live.get(step.vm_id)
        if vm is not None and vm.is_running:
            self.ctx.record(
                plan, step, "running", f"RUNNING on {vm.host_name}", out, running_at=look.now,
                host_after=vm.host_name or "", action=out.action or "none",
                audit={"what": "vm_running", "incident_id": plan.incident_id, "vm": step.vm_id,
                       "host": vm.host_name})
            return False
        if status == "skipped":
            return False  # was RUNNING at the re-read and is not now: nothing oneha did
        if status == "retry_wait":
            if look.now >= out.not_before:
                self.retry(plan, step, vm_or_none(self.ctx.one, step.vm_id), out)
            return True
        return self._judge(plan, step, out, vm, look.now)

    def _judge(self, plan: Plan, step: Step, out: StepOutcome, vm: VmInfo | None, now: float
               ) -> bool:
        """An action made (or failed) and the VM not running: wait, retry later, or give up."""
        cfg = self.ctx.cfg
        if out.status == "done" and now - out.since(now) < cfg.verify_timeout \
                and not (vm is not None and vm.is_failed):
            return True  # on its way (a FAILURE state or a refused call need not wait)
        decision = guards.next_attempt(out.attempt, cfg.max_retries, cfg.retry_backoff)
        if not decision.retry:
            self.needs_human(plan, step, vm, decision.reason)
            return False
        self.ctx.record(plan, step, "retry_wait", decision.reason, out,
                        not_before=now + decision.delay,
                        audit={"what": "retry_scheduled", "incident_id": plan.incident_id,
                               "vm": step.vm_id, "reason": decision.reason,
                               "state": vm.state_label if vm else "gone"})
        return True

    def retry(self, plan: Plan, step: Step, vm: VmInfo | None, out: StepOutcome) -> None:
        """The next attempt: `recover --retry` a failed VM, the planned action again for a VM
        still as planned, another verify window for one on its way."""
        store, clock = self.ctx.store, self.ctx.clock
        attempt = out.attempt + 1
        if vm is None:
            self.needs_human(plan, step, vm, "the VM disappeared during recovery", why="gone")
            return
        action = _retry_action(step, vm)
        if not action:
            self.ctx.record(plan, step, "done", f"still {vm.state_label}; waiting", out,
                            attempt=attempt, acted_at=clock())
            return
        gate = self.actions.gate()
        if not gate:
            self.ctx.record(plan, step, "retry_wait", gate.reason, out, not_before=clock() + 5)
            return
        with store.vm_lock(step.vm_id, ttl=self.ctx.lease_ttl) as locked:
            if not locked:
                return
            claimed = store.claim(plan.plan_id, step.key, attempt, self.ctx.worker_id,
                                  previous=out.to_dict(), detail=f"retry as {action}")
            if claimed is not None:
                self.actions.call(plan, step, attempt, StepOutcome.from_dict(claimed),
                                  action=action)

    # ---- endings --------------------------------------------------------------------------------

    def needs_human(self, plan: Plan, step: Step, vm: VmInfo | None, reason: str,
                    why: str = "gave_up") -> None:
        """`why`: gave_up (the retries are spent) | gone (the VM disappeared)."""
        self.ctx.store.record(plan.plan_id, step.key, "needs_human", reason)
        self.ctx.store.audit("needs_human", plan.plan_id, plan.incident_id, vm=step.vm_id,
                             reason=reason, state=vm.state_label if vm else "gone")
        self.ctx.incidents.add_notice(
            plan.incident_id, "needs_human", f"{plan.plan_id}:{step.vm_id}", "vm_gave_up",
            {"vm": step.vm_name or "", "id": step.vm_id, "attempts": self.ctx.cfg.max_retries + 1,
             "why": why, "reason": reason})
        self.ctx.incidents.set_state(plan.incident_id, "firing",
                                     f"remediation gave up on VM {step.vm_id}: {reason}")

    def fail_plan(self, plan: Plan, exc: Exception) -> None:
        """OpenNebula refused something the plan cannot go on without (the host is gone, the
        session is not allowed ...): stop, say so, hand over to people. Never retried blindly."""
        reason = f"stopped: {exc}"
        if not self.ctx.store.set_status_if(plan.plan_id, (rs.GRACE, rs.EXECUTING, rs.VERIFYING),
                                            rs.FAILED, reason):
            return
        self.ctx.store.audit("plan_failed", plan.plan_id, plan.incident_id, error=str(exc))
        self.ctx.incidents.add_notice(
            plan.incident_id, "needs_human", f"{plan.plan_id}:failed", "plan_stopped",
            {"plan": plan.plan_id, "error": str(exc)})
        self.ctx.incidents.set_state(plan.incident_id, "firing", reason)

    def finish(self, plan: Plan) -> None:
        """Nothing pending: the plan is done (or failed, if a VM needs a human), its impact
        report saved, the incident shows each VM as it is now."""
        ctx = self.ctx
        outcomes = ctx.outcomes(plan.plan_id)
        before = ctx.store.before(plan.plan_id)
        inc = ctx.incidents.get(plan.incident_id)
        failed_at = float(inc.created_at) if inc is not None else None
        status_of = {s.vm_id: outcomes.get(s.key, NOT_ACTED).status for s in plan.vm_steps}
        live = live_vms(ctx.one, sorted({*status_of, *(s.vm_id for s in plan.skipped)}))
        impacts = _impacts(plan, outcomes, before, live, failed_at)
        humans = [v for v, st in status_of.items() if st == "needs_human"]
        status = rs.FAILED if humans else rs.DONE
        reason = (f"{len(impacts)} VM(s) running again" +
                  (f"; {len(humans)} need a human" if humans else ""))
        if not ctx.store.set_status_if(plan.plan_id, (rs.VERIFYING, rs.EXECUTING), status,
                                       reason):
            return
        rows = [i.to_dict() for i in impacts]
        ctx.store.save_impact(plan.plan_id, rows)
        ctx.store.audit("plan_finished", plan.plan_id, plan.incident_id, status=status,
                        impact=impact.summary(impacts))
        # What people read next shows each VM as it is now (RUNNING on node02), not as it failed.
        ctx.incidents.set_live_vms(plan.incident_id, list(live.values()), rows,
                                   self.host_label(plan, outcomes))
        ctx.timeline(plan.incident_id, f"plan {plan.plan_id} {status}: {reason}",
                     plan_id=plan.plan_id)
        if status == rs.DONE:
            self._resolve_if_all_run(plan, live, reason)

    def _resolve_if_all_run(self, plan: Plan, live: dict[int, VmInfo], reason: str) -> None:
        down = [v for v in live.values() if vm_is_failing(v.state, v.lcm_state)]
        if down or any(s.code in LEFT_TO_PEOPLE for s in plan.skipped):
            # oneha is done, people are not: back to firing, so reminders and escalation run.
            self.ctx.incidents.set_state(plan.incident_id, "firing",
                                         f"remediation done: {reason}; {len(down)} VM(s) still "
                                         "down, left to people")
            return
        # Every VM runs again: that is what people wait for, so the resolve notice (with the
        # impact report attached above) goes out now, even if the host itself stays broken.
        left = (f"; host {plan.host_name} stays out of service until repaired"
                if plan.host_name else "")
        self.ctx.incidents.set_state(plan.incident_id, "resolved",
                                     f"remediation done: {reason}{left}")

    def host_label(self, plan: Plan, outcomes: dict[str, StepOutcome]) -> str:
        """The failed host's state as people should read it now; oneha's own disable says so."""
        if plan.host_id is None:
            return ""
        try:
            host = self.ctx.one.host(plan.host_id)
        except Permanent:
            return "gone"
        ours = outcomes.get(f"disable:{plan.host_id}", NOT_ACTED).status == "done"
        return host.state_label + (BY_ONEHA if ours and host.in_maintenance else "")

    def impact(self, plan_id: str) -> list[dict]:
        return self.ctx.store.impact(plan_id)


def _worth_reading(out: StepOutcome) -> bool:
    """Steps whose VM is read live: acted on, or skipped because it was running already."""
    return out.status in ("done", "retry_wait", "failed") or (
        out.status == "skipped" and out.code == "running")


def _impacts(plan: Plan, outcomes: dict[str, StepOutcome], before: dict[int, VmInfo],
             live: dict[int, VmInfo], failed_at: float | None) -> list[impact.VmImpact]:
    """What recovery cost each VM that runs again (downtime, host, what changed)."""
    out = []
    for step in plan.vm_steps:
        outcome = outcomes.get(step.key, NOT_ACTED)
        vm_before, vm_after = before.get(step.vm_id), live.get(step.vm_id)
        if outcome.status != "running" or vm_before is None or vm_after is None:
            continue
        out.append(impact.vm_impact(vm_before, vm_after, outcome.action or step.action,
                                    failed_at, outcome.running_at or None))
    return out


def _retry_action(step: Step, vm: VmInfo) -> str:
    if vm.is_failed:
        return "retry"
    if guards.still_as_planned(Expect.from_dict(step.expect or {}), vm):
        return step.action
    return ""  # in progress (BOOT, PROLOG...): give it another verify window
