"""Stage 4, execution: drive a plan's steps, each an effect made exactly once.

`run` is one pass (one `oneha.run_plan` task) over the plan or one chunk of it; in order:
- take the chunk's lease (one executor per chunk; it lapses when its worker dies, and a long
  pass renews it);
- a plan in grace goes through `grace.py` first, and its other executors are woken once it runs;
- `_execute`: the pause and Raft guards once per pass (`Actions.gate`); then the chunk's steps in
  execution order, each when its approval, its dependencies and its monitoring-cycle wait
  allow (`_may_go`), made by `Actions.act`;
- `_next_after`: what the pass asks for next — run again (a step waits for a dependency, a cycle
  or another executor), or verify (`verification.py`) once every step that may go has gone.
`resume_all` picks up the plans a dead worker left mid-way.
"""

from __future__ import annotations

from gateway.adapters.store import remediation as rs
from gateway.domain.remediation.outcomes import NOT_ACTED, StepOutcome
from gateway.domain.remediation.plans import Plan, Step, execution_order
from gateway.errors import Permanent, Transient

from .actions import Actions, Pass, target
from .approval import held_for_approval
from .context import RemediationContext
from .grace import Grace
from .planning import Planner
from .ports import RUN_TASK, VERIFY_TASK, Wake
from .verification import Verifier


class Executor:
    def __init__(self, ctx: RemediationContext, planner: Planner, grace: Grace, actions: Actions,
                 verifier: Verifier):
        self.ctx = ctx
        self.planner = planner
        self.grace = grace
        self.actions = actions
        self.verifier = verifier

    def run(self, plan_id: str, chunk: int = 0) -> Wake | None:
        """One pass over the plan (or over its `chunk`: the VM steps are split among
        `parallel_executors` tasks); the task re-enqueues itself per the returned `Wake`."""
        store = self.ctx.store
        plan = store.plan(plan_id)
        if plan is None:
            return None
        status = store.plan_state(plan_id).get("status")
        if status in rs.TERMINAL or status in (rs.AWAITING, rs.BLOCKED):
            return None
        if chunk and status != rs.EXECUTING:
            return None  # grace, approval and verification are chunk 0's
        lease = plan_id if not chunk else f"{plan_id}#{chunk}"
        if not store.take_lease(lease, self.ctx.worker_id, self.ctx.lease_ttl):
            # Someone else drives it; if they die, their lease lapses and we continue.
            return Wake(RUN_TASK, store.lease_ttl(lease) + 0.2)
        try:
            return self._run_locked(Pass(lease, self.ctx.clock()), plan, status, chunk)
        except Permanent as exc:
            self.verifier.fail_plan(plan, exc)
            return None
        finally:
            store.drop_lease(lease, self.ctx.worker_id)

    def _run_locked(self, p: Pass, plan: Plan, status: str | None, chunk: int) -> Wake | None:
        state_of = self.ctx.store.plan_state
        if status == rs.GRACE:
            wake = self.grace.after_grace(plan)
            if wake is not None or state_of(plan.plan_id).get("status") != rs.EXECUTING:
                return wake
            self.ctx.start_chunks(plan.plan_id)
        status = state_of(plan.plan_id).get("status")
        if status == rs.EXECUTING:
            return self._execute(p, plan, chunk)
        if status == rs.VERIFYING:
            return self.verifier.verify_locked(plan)
        return None

    def _renew_lease(self, p: Pass) -> None:
        """A long pass (thousands of VMs) keeps its lease, so nobody takes over a live executor."""
        if p.lease and self.ctx.clock() - p.since > self.ctx.lease_ttl / 3:
            if not self.ctx.store.take_lease(p.lease, self.ctx.worker_id, self.ctx.lease_ttl):
                raise Transient(f"lost the lease of {p.lease}; another executor continues")
            p.since = self.ctx.clock()

    def _chunks(self, plan: Plan) -> dict[str, int]:
        """Host steps belong to chunk 0; VM steps are dealt round-robin in execution order, so
        every executor works down the priorities at the same pace (highest first in chunk 0)."""
        out: dict[str, int] = {}
        vm_index = 0
        for step in execution_order(plan.steps):
            if step.is_vm_step:
                out[step.key] = vm_index % self.ctx.cfg.parallel_executors
                vm_index += 1
            else:
                out[step.key] = 0
        return out

    # ---- one pass -------------------------------------------------------------------------------

    def _execute(self, p: Pass, plan: Plan, chunk: int = 0) -> Wake | None:
        state = self.ctx.store.plan_state(plan.plan_id)
        p.storm_override = state.get("storm_override") == "yes"
        gate = self.actions.gate()
        if not gate:
            if state.get("reason") != f"waiting: {gate.reason}":
                self.ctx.store.set_status(plan.plan_id, rs.EXECUTING, f"waiting: {gate.reason}")
                self.ctx.store.audit("action_held", plan.plan_id, plan.incident_id,
                                     guard=gate.code, reason=gate.reason)
            return Wake(RUN_TASK, 2.0)
        outcomes = self.ctx.outcomes(plan.plan_id)
        chunks = self._chunks(plan)
        try:
            for step in execution_order(plan.steps):
                if chunks[step.key] != chunk:
                    continue
                p.mine.add(step.key)
                wake = self._step(p, plan, step, state, outcomes)
                if wake is not None:
                    return wake
        finally:
            self._tell_done(p, plan)
        return self._next_after(p, plan, state, outcomes)

    def _step(self, p: Pass, plan: Plan, step: Step, state: dict,
              outcomes: dict[str, StepOutcome]) -> Wake | None:
        """Act on one step if it may go now; a Wake when the pass must stop (a limit, a lock)."""
        out = outcomes.get(step.key, NOT_ACTED)
        if not out.pending:
            return None  # made, skipped or failed already
        if not self._may_go(p, plan, step, out, state, outcomes):
            return None
        self._renew_lease(p)
        result = self.actions.act(p, plan, step, out, outcomes)
        if isinstance(result, Wake):
            return result
        outcomes[step.key] = result
        if result.status == "done":
            p.done_now.append(f"{result.action or step.action} {target(step)}")
        return None

    def _may_go(self, p: Pass, plan: Plan, step: Step, out: StepOutcome, state: dict,
                outcomes: dict[str, StepOutcome]) -> bool:
        """Its approval given, its dependencies succeeded and their monitoring cycles passed.
        A step that can never go is recorded `skipped` (and `outcomes` updated) here."""
        if held_for_approval(plan, step):
            if state.get("approved") == "denied":
                outcomes[step.key] = self.ctx.record(plan, step, "skipped", "approval denied",
                                                     out)
                return False
            if state.get("approved") != "yes":
                return False
        deps = [outcomes.get(k, NOT_ACTED) for k in step.after]
        if any(d.gave_up for d in deps):
            outcomes[step.key] = self.ctx.record(
                plan, step, "skipped", f"{', '.join(step.after)} did not succeed", out)
            return False
        # A skipped host step (e.g. the host is back) is no blocker: the step's own re-read
        # decides.
        if not all(d.clears_dependents for d in deps):
            return False  # a later pass gets to it
        ready_at = max([d.at for d in deps] or [0.0]) \
            + step.wait_cycles * self.planner.monitoring_interval()
        if ready_at > self.ctx.clock():
            p.wake_at = ready_at if p.wake_at is None else min(p.wake_at, ready_at)
            return False
        return True

    def _tell_done(self, p: Pass, plan: Plan) -> None:
        """One timeline line per pass for what it did (even a pass a Transient error ended)."""
        if p.done_now:
            self.ctx.timeline(plan.incident_id, f"{len(p.done_now)} action(s): "
                              + "; ".join(p.done_now[:20])
                              + (" ..." if len(p.done_now) > 20 else ""), plan_id=plan.plan_id)

    def _next_after(self, p: Pass, plan: Plan, state: dict,
                    outcomes: dict[str, StepOutcome]) -> Wake:
        """Run again while a step waits for a dependency, a cycle or another executor; verify
        once only approver-held steps (or none) remain."""
        ctx = self.ctx
        approved = state.get("approved") == "yes"
        if p.mine and len(p.mine) < len(plan.steps):
            outcomes = ctx.outcomes(plan.plan_id)  # the other executors' progress too
        remaining = [s for s in plan.steps if outcomes.get(s.key, NOT_ACTED).pending]
        waiting_approver = [s for s in remaining if held_for_approval(plan, s) and not approved]
        if len(remaining) > len(waiting_approver):
            return Wake(RUN_TASK, max(0.05, (p.wake_at or ctx.clock() + 0.2) - ctx.clock()))
        if remaining:
            ctx.store.set_status(plan.plan_id, rs.EXECUTING,
                                 "automatic part done; waiting for an approver")
            return Wake(VERIFY_TASK, 0)
        ctx.store.set_status_if(plan.plan_id, (rs.EXECUTING,), rs.VERIFYING,
                                "actions made; following the VMs until they run")
        return Wake(VERIFY_TASK, 0)

    # ---- after a restart ------------------------------------------------------------------------

    def resume_all(self) -> list[str]:
        """Plans a dead worker left mid-way: drive them again once their lease lapses."""
        store, send = self.ctx.store, self.ctx.send
        resumed = []
        for pid in store.recent_plans(500):
            status = store.plan_state(pid).get("status")
            if status in (rs.GRACE, rs.EXECUTING):
                send(RUN_TASK, [pid], store.lease_ttl(pid))
                if status == rs.EXECUTING:
                    for chunk in range(1, self.ctx.cfg.parallel_executors):
                        send(RUN_TASK, [pid, chunk], store.lease_ttl(f"{pid}#{chunk}"))
                resumed.append(pid)
            elif status == rs.VERIFYING:
                send(VERIFY_TASK, [pid], store.lease_ttl(pid))
                resumed.append(pid)
        return resumed
