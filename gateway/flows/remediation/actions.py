"""One step's effect, made exactly once: the part of execution that touches the cloud.

For each step, in order (`Actions.act`): the rate limit and a concurrency slot; the per-VM (or
per-host) lock; a live re-read of the VM; settling an `acting` record a dead worker left (the
live VM says whether its call took effect); the guards again (`recheck`: the VM and its host still
look as planned, the storm guard unless a person overrode it); the action's idempotency key
claimed together with its `acting` record (one Lua script); the call (`call` → `invoke`); the
outcome recorded. The pause and Raft guards (`gate`) are asked once per pass by the executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.domain import states
from gateway.domain.objects import VmInfo
from gateway.domain.remediation import guards
from gateway.domain.remediation.guards import Expect, RaftView
from gateway.domain.remediation.outcomes import NOT_ACTED, StepOutcome
from gateway.domain.remediation.plans import (RECOVER_DELETE_RECREATE, RECOVER_RETRY, Plan,
                                              Step)
from gateway.errors import Permanent, Transient

from .context import RemediationContext
from .planning import Planner, vm_or_none
from .ports import RUN_TASK, Wake

_DISABLE = 1  # one.host.status: DISABLED


@dataclass
class Pass:
    """One executor's pass over a plan (one `oneha.run_plan` task): the lease it holds, what it
    read once, what it did. Never shared between passes, so concurrent passes cannot mix."""

    lease: str
    since: float  # when the lease was last taken or renewed
    storm_override: bool = False  # a person approved the plan the storm guard had blocked
    hosts: dict[int, Any] | None = None  # the host pool, read once per pass
    mine: set[str] = field(default_factory=set)  # step keys of this pass's chunk
    wake_at: float | None = None  # earliest time a step of this chunk becomes ready
    done_now: list[str] = field(default_factory=list)  # "resched VM a (3)", for the timeline


def target(step: Step) -> str:
    if step.vm_id is not None:
        return f"VM {step.vm_name or ''} ({step.vm_id})".replace("  ", " ")
    return f"host {step.host_name or step.host_id}"


class Actions:
    def __init__(self, ctx: RemediationContext, planner: Planner):
        self.ctx = ctx
        self.planner = planner

    # ---- guards asked once per pass -------------------------------------------------------------

    def gate(self) -> guards.Verdict:
        pause = guards.paused(self.ctx.store.paused())
        if not pause:
            return pause
        return self.raft_guard()

    def raft_guard(self) -> guards.Verdict:
        views = []
        refusals = []
        for url, st in self.ctx.one.raft_statuses().items():
            if isinstance(st, Exception):
                views.append(RaftView(url, None))
                if isinstance(st, Permanent):
                    refusals.append(st)
            else:
                views.append(RaftView(url, st.state, st.term))
        if refusals and len(refusals) == len(views):
            raise refusals[0]  # every front-end refuses us (e.g. authentication): not a blip
        return guards.raft(views)

    def _hosts(self, p: Pass) -> dict[int, Any]:
        """The host pool, read once per pass (a pass takes seconds; VMs are re-read each time)."""
        if p.hosts is None:
            p.hosts = {h.id: h for h in self.ctx.one.hosts()}
        return p.hosts

    # ---- one step -------------------------------------------------------------------------------

    def act(self, p: Pass, plan: Plan, step: Step, out: StepOutcome,
            outcomes: dict[str, StepOutcome]) -> StepOutcome | Wake:
        """Limits, lock, live re-read, claim, call, record — for one step."""
        store, cfg = self.ctx.store, self.ctx.cfg
        wait = store.take_rate(cfg.rate_limit_actions, cfg.rate_limit_window)
        if wait:
            store.audit("rate_limited", plan.plan_id, plan.incident_id, step=step.key,
                        wait=round(wait, 3))
            return Wake(RUN_TASK, wait)
        slot = store.take_slot(cfg.concurrency, lease=self.ctx.lease_ttl)
        if slot is None:
            return Wake(RUN_TASK, 0.2)
        try:
            lock_id = step.vm_id if step.vm_id is not None else f"host{step.host_id}"
            with store.vm_lock(lock_id, ttl=self.ctx.lease_ttl) as locked:
                if not locked:
                    return Wake(RUN_TASK, 0.5)
                return self._act_locked(p, plan, step, out, outcomes)
        finally:
            store.release_slot(slot)

    def _act_locked(self, p: Pass, plan: Plan, step: Step, out: StepOutcome,
                    outcomes: dict[str, StepOutcome]) -> StepOutcome | Wake:
        store = self.ctx.store
        attempt = out.attempt
        vm = vm_or_none(self.ctx.one, step.vm_id) if step.is_vm_step else None
        if out.status == "acting":
            settled = self.settle(plan, step, out, vm)
            if settled is not None:
                return settled
            attempt += 1  # the dead claimant's call never took effect: a new attempt
        check = self.recheck(p, step, vm, outcomes)
        if not check:
            return self.ctx.record(
                plan, step, "skipped", check.reason, out, code=check.code, attempt=attempt,
                audit={"what": "action_skipped", "incident_id": plan.incident_id,
                       "step": step.key, "guard": check.code, "reason": check.reason})
        if step.action == "refresh_host":
            # One refresh per host and cycle, whichever plan asks (the refresh itself takes
            # ~0.5 s: OFFLINE, pause, ENABLED).
            done_at = store.note_refresh(step.host_id, 2 * self.planner.monitoring_interval() + 1.0)
            if done_at is not None:
                return self.ctx.record(
                    plan, step, "done", "monitoring refreshed by another plan this cycle",
                    StepOutcome.from_dict({**out.to_dict(), "at": done_at}), attempt=attempt)
        claimed = store.claim(plan.plan_id, step.key, attempt, self.ctx.worker_id,
                              previous=out.to_dict(), detail=check.reason)
        if claimed is None:
            return Wake(RUN_TASK, 0.5)  # another executor got there first
        return self.call(plan, step, attempt, StepOutcome.from_dict(claimed))

    # ---- the guards again, right before the action ----------------------------------------------

    def recheck(self, p: Pass, step: Step, vm: VmInfo | None,
                outcomes: dict[str, StepOutcome]) -> guards.Verdict:
        """The live re-read right before the action. Only a person who approved a plan the
        storm guard blocked overrides that guard; nothing overrides a changed VM or host."""
        if not step.is_vm_step:
            return self._recheck_host_step(step)
        decision = guards.still_as_planned(Expect.from_dict(step.expect or {}), vm)
        if not decision:
            return decision
        hosts = self._hosts(p)
        if step.action in ("resume", "retry"):
            return self._recheck_vm_on_live_host(hosts, vm, decision)
        return self._recheck_vm_off_failed_host(p, hosts, step, outcomes, decision)

    def _recheck_host_step(self, step: Step) -> guards.Verdict:
        host = self.ctx.one.host(step.host_id)
        if step.action == "refresh_host":
            alone = guards.host_left_alone(
                host, by_oneha=self.ctx.store.refreshed_at(host.id) is not None)
            if not alone:
                return alone
            if host.is_error:
                return guards.Verdict(False, f"host {host.name} is in ERROR now: the host's "
                                              "incident handles it", "changed")
            return guards.Verdict(True, f"host {host.name} is {host.state_label}")
        if not host.is_error:
            return guards.Verdict(False, f"host {host.name} is {host.state_label} again",
                                   "changed")
        return guards.Verdict(True, f"host {host.name} still in ERROR")

    def _recheck_vm_on_live_host(self, hosts: dict, vm: VmInfo | None,
                                 decision: guards.Verdict) -> guards.Verdict:
        """resume / retry: the VM stays on its host, which must not have failed meanwhile."""
        host = hosts.get(vm.host_id) if vm is not None else None
        alone = guards.host_left_alone(host, by_oneha=host is not None and
                                       self.ctx.store.refreshed_at(host.id) is not None)
        if not alone:
            return alone
        if host is not None and host.is_error:
            return guards.Verdict(False, f"host {host.name} is in ERROR now: the host's "
                                          "incident plans this VM", "changed")
        return decision

    def _recheck_vm_off_failed_host(self, p: Pass, hosts: dict, step: Step,
                                    outcomes: dict[str, StepOutcome],
                                    decision: guards.Verdict) -> guards.Verdict:
        """resched / recreate: the VM leaves its host, which must still be failed (or disabled
        by this plan), and the cloud must not look partitioned."""
        host = hosts.get(step.host_id)
        disabled_by_us = outcomes.get(f"disable:{step.host_id}", NOT_ACTED).status == "done" \
            or (host is not None and host.id in self.planner.own_hosts([host]))
        alone = guards.host_left_alone(host, by_oneha=disabled_by_us)
        if not alone:
            return alone
        if host is not None and not host.is_error and not (
                disabled_by_us and host.state == states.HOST_DISABLED):
            return guards.Verdict(False, f"host {host.name} is {host.state_label} again: its VMs "
                                          "are not moved away from a live host", "changed")
        if not p.storm_override:
            storm = guards.storm(list(hosts.values()), self.ctx.cfg.storm)
            if not storm:
                return storm
        return decision

    # ---- the call -------------------------------------------------------------------------------

    def call(self, plan: Plan, step: Step, attempt: int, out: StepOutcome,
             action: str | None = None) -> StepOutcome:
        """Make the claimed call and record its outcome (`done` or `failed`). A Transient error
        leaves the `acting` record for the next pass to settle."""
        action = action or step.action
        started = self.ctx.clock()
        if action in ("disable_host", "refresh_host"):
            # Before the call: OpenNebula's hook for the new host state may beat its answer.
            self.ctx.incidents.note_own_action(step.host_id, action, plan.plan_id,
                                               self.planner.own_mark_ttl(action))
        try:
            answer = self._invoke(step, action)
        except Permanent as exc:
            return self._failed(plan, step, attempt, out, action, exc)
        except Transient as exc:
            # Outcome unknown or nobody answered: the `acting` record stays; the next pass
            # settles it by re-reading the VM.
            self.ctx.store.audit("action_uncertain", plan.plan_id, plan.incident_id,
                                 step=step.key, action=action, attempt=attempt, error=str(exc))
            raise
        return self.ctx.record(
            plan, step, "done", f"{action}: {answer}", out, attempt=attempt, action=action,
            acted_at=started,
            audit={"what": "action_done", "incident_id": plan.incident_id, "step": step.key,
                   "action": action, "attempt": attempt, "answer": answer, "vm": step.vm_id,
                   "host": step.host_id})

    def _failed(self, plan: Plan, step: Step, attempt: int, out: StepOutcome, action: str,
                exc: Permanent) -> StepOutcome:
        self.ctx.timeline(plan.incident_id, f"{action} of {target(step)} failed: {exc}",
                          plan_id=plan.plan_id)
        if not step.is_vm_step:  # its VMs stay where they are: people must know now
            self.ctx.incidents.add_notice(
                plan.incident_id, "needs_human", f"{plan.plan_id}:{step.key}", "host_step_failed",
                {"action": action, "host": step.host_name or step.host_id, "error": str(exc)})
        return self.ctx.record(
            plan, step, "failed", str(exc), out, attempt=attempt, action=action,
            audit={"what": "action_failed", "incident_id": plan.incident_id, "step": step.key,
                   "action": action, "attempt": attempt, "error": str(exc)})

    def _invoke(self, step: Step, action: str) -> Any:
        one = self.ctx.one
        if action == "fence":
            if self.ctx.fencer is None:
                raise Permanent("fencing is required by the plan but no fencing command is set")
            result = self.ctx.fencer.fence(step.host_name)
            if not result.ok:
                raise Permanent(f"fencing failed: {result.detail}")
            return result.detail
        if action == "disable_host":
            return one.host_status(step.host_id, _DISABLE)
        if action == "refresh_host":
            one.host_force_update(step.host_id)
            return "monitoring refreshed"
        if action in ("resume", "resched"):
            return one.vm_action(action, step.vm_id)
        if action == "recreate":
            return one.vm_recover(step.vm_id, RECOVER_DELETE_RECREATE)
        if action == "retry":
            return one.vm_recover(step.vm_id, RECOVER_RETRY)
        raise Permanent(f"unknown action {action!r}")

    def settle(self, plan: Plan, step: Step, out: StepOutcome, vm: VmInfo | None
               ) -> StepOutcome | None:
        """An `acting` record whose worker died (or whose call's outcome is unknown): did the
        call take effect? OpenNebula changes a VM's state inside the call, so the live VM says.
        Returns the settled outcome, or None when the call did not happen (act again)."""
        store = self.ctx.store
        if not step.is_vm_step:
            if step.action == "fence":  # never repeated blindly: a person looks
                return self.ctx.record(plan, step, "failed",
                                       "fencing was interrupted; outcome unknown, needs a human",
                                       out)
            return None  # disable/refresh twice is harmless
        still = guards.still_as_planned(Expect.from_dict(step.expect or {}), vm)
        took_effect = not still or (step.action == "resched" and vm is not None and vm.resched)
        store.audit("claim_settled", plan.plan_id, plan.incident_id, step=step.key,
                    attempt=out.attempt, took_effect=took_effect, evidence=still.reason)
        if took_effect:
            return self.ctx.record(plan, step, "done", f"{step.action} took effect before its "
                                   f"worker stopped ({still.reason})", out, action=step.action,
                                   acted_at=out.at or self.ctx.clock(), settled=True)
        return None
