"""Remediation: plan → (grace) → approval or policy → execute → verify → impact.

`Remediator` holds the whole flow over the real adapters (Redis store, the OpenNebula client,
the incident store), so tests drive it with the simulator and the Celery tasks in
`tasks/remediate.py` stay thin. Every step of a plan is an effect made exactly once:
- one executor per plan chunk at a time (a lease in Redis that lapses when its worker dies);
- before each action: the guards again (pause, Raft leader/quorum, storm), the rate limit and a
  concurrency slot, a per-VM lock, a live re-read of the VM through pyone (act only if it still
  looks as planned), then the action's idempotency key is claimed together with its `acting`
  record (one Lua script);
- an `acting` record whose worker died is settled by re-reading the VM: the action changed it
  (OpenNebula applies state changes inside the call) or it did not run and is made again.

Approvals go through `Remediator.decide_by_token` / `decide_plan` (web page, HTTP API, CLI),
which ask for `oneha.run_plan`. The next task leaves through the injected `send`; what people
must hear is a notice on the incident (`IncidentPort.add_notice`), told in the incident's story.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import structlog

from gateway.adapters import fencing
from gateway.adapters.store import remediation as rs
from gateway.adapters.store.remediation import RemediationStore
from gateway.domain import approvals, impact, partition, states
from gateway.domain.approvals import ApprovalRefused, Claims
from gateway.domain.hook_events import vm_is_failing
from gateway.domain.objects import VmInfo
from gateway.domain.remediation import guards
from gateway.domain.remediation.guards import Expect, RaftView
from gateway.domain.remediation.plans import (RECOVER_DELETE_RECREATE, RECOVER_RETRY, Plan,
                                              PlanInput, Step, build_plan, execution_order)
from gateway.errors import Permanent, Transient

log = structlog.get_logger("oneha.remediation")

PLAN_TASK, RUN_TASK, VERIFY_TASK = "oneha.plan_remediation", "oneha.run_plan", "oneha.verify_plan"
RESUME_TASK = "oneha.resume_plans"
# Why a VM is left to people, by the plan's skip code (the codes of VMs nothing will recover).
LEFT_TO_PEOPLE = {
    "wont_fit": "no remaining host has room",
    "wait": "must wait for its host (its disks cannot move, or resched is not allowed)",
    "opt_out": "opted out by ONEHA_POLICY",
    "disallowed": "the action it needs is not allowed by the policy",
}
_DISABLE = 1  # one.host.status: DISABLED


@dataclass
class Wake:
    """What a pass over a plan asks for next: run again / verify after `delay` seconds."""

    task: str
    delay: float


class Remediator:
    def __init__(self, settings, store: RemediationStore, one,
                 incidents: "IncidentPort | None" = None,
                 send: Callable[[str, list, float], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 fencer: fencing.Fencer | None = None, worker_id: str | None = None):
        self.settings = settings
        self.cfg = settings.remediation
        self.store = store
        self.one = one
        self.incidents = incidents or IncidentPort(None)
        self._send = send or (lambda name, args, delay: None)
        self.clock = clock
        self.fencer = fencer if fencer is not None else fencing.from_config(self.cfg)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._interval: float | None = None
        self._storm_override = False
        self._lease: tuple[str, float] = ("", 0.0)
        self._hosts_cache: dict | None = None
        # Longer than one action can take (timeout × attempts), so a live executor keeps it.
        one_cfg = settings.opennebula
        self.lease_ttl = max(5.0, 3 * one_cfg.timeout * (one_cfg.retries + 1))

    # ==== planning ==============================================================================

    def plan(self, incident_id: str) -> str | None:
        inc = self._incident(incident_id)
        if inc is None:
            log.info("remediation_not_planned", incident=incident_id, reason="no such incident")
            return None
        if getattr(inc, "merged_into", None):
            self._send(PLAN_TASK, [inc.merged_into], 0)
            return None
        if not inc.is_open:
            return None
        with self.store.planning_lock(incident_id) as got:
            if not got:  # another worker is planning this incident: look again after it
                self._send(PLAN_TASK, [incident_id], 1.0)
                return None
            return self._plan_locked(inc)

    def _plan_locked(self, inc) -> str | None:
        incident_id = inc.id
        existing = self.store.plan_ids(incident_id)
        covered: set[int] = set()
        for pid in existing:
            p = self.store.plan(pid)
            if p is not None:
                # A VM that was fine (or another incident's) then may fail later: plan it then.
                covered |= set(p.vm_ids) | {s.vm_id for s in p.skipped
                                            if s.code not in ("other_plan", "not_failed")}
        primary = inc.primary
        failed_host_id = int(primary.id) if primary.resource == "HOST" else None
        hosts = self.one.hosts()
        vm_ids = {int(o.id) for o in inc.objects.values() if o.resource == "VM"}
        if failed_host_id is not None:
            host = next((h for h in hosts if h.id == failed_host_id), None)
            if host is not None:
                vm_ids |= set(host.vm_ids)
        vm_ids -= covered
        if existing and not vm_ids:
            return None  # every object of the incident is planned already
        vms = self._read_vms(vm_ids)
        policy = self.cfg.for_labels(inc.labels)
        plan = build_plan(PlanInput(
            plan_id=f"{incident_id}.{len(existing) + 1}", incident_id=incident_id,
            now=self.clock(), policy=policy, vms=vms, hosts=hosts, failed_host_id=failed_host_id,
            incident_started_at=inc.created_at, monitoring_interval=self.monitoring_interval(),
            exclude_vm_ids=frozenset(covered), labels=dict(inc.labels),
            own_host_ids=self._own_hosts(hosts)))
        if not plan.steps and not plan.skipped:
            return None
        status, reason = self._initial_status(plan)
        if not self.store.save_plan(plan, status, reason, {v.id: v for v in vms}):
            return plan.plan_id
        self.store.audit("plan_created", plan.plan_id, incident_id, mode=plan.mode,
                         status=status, reason=reason, steps=[s.key for s in plan.steps],
                         skipped=[(s.vm_id, s.code, s.reason) for s in plan.skipped])
        self._timeline(incident_id, f"remediation plan {plan.plan_id}: {len(plan.vm_steps)} VM "
                                    f"action(s), {len(plan.skipped)} left alone; {reason}",
                       plan_id=plan.plan_id)
        self.incidents.set_plan(incident_id, plan.plan_id)
        log.info("plan_created", plan=plan.plan_id, incident=incident_id, status=status)
        # Nobody is told that a VM "cannot be recovered" yet: whether anything automatic will
        # happen is known only after the grace period and the storm guard (`_after_grace`).
        if status == rs.GRACE:
            self._send(RUN_TASK, [plan.plan_id], max(0.0, plan.grace_until - self.clock()))
        elif status not in rs.TERMINAL:
            self._send(RUN_TASK, [plan.plan_id], 0)
        return plan.plan_id

    def _initial_status(self, plan: Plan) -> tuple[str, str]:
        if plan.mode == "off":
            return rs.OFF, plan.mode_reason
        if plan.grace_until > self.clock():
            return rs.GRACE, (f"grace period: the host must stay in ERROR until "
                              f"{time.strftime('%H:%M:%S', time.gmtime(plan.grace_until))} UTC")
        return rs.GRACE, "grace period over"

    def _read_vms(self, vm_ids: set[int]) -> list[VmInfo]:
        if not vm_ids:
            return []
        if len(vm_ids) > 8:
            pool = {v.id: v for v in self.one.vms()}
        else:
            pool = {}
        out = []
        for vid in sorted(vm_ids):
            vm = pool.get(vid)
            if vm is None or vm.system_ds_shared is None:
                try:
                    vm = self.one.vm(vid)  # the full document: disks, system datastore
                except Permanent:
                    continue  # gone (terminated) since the event
            out.append(vm)
        return out

    def monitoring_interval(self) -> float:
        if self.cfg.monitoring_interval is not None:
            return float(self.cfg.monitoring_interval)
        if self._interval is None:
            try:
                conf = self.one.system_config()
                self._interval = float(conf.get("MONITORING_INTERVAL_HOST") or 60)
            except (Transient, Permanent, ValueError):
                self._interval = 60.0  # OpenNebula's default
        return self._interval

    # ==== driving a plan ========================================================================

    def run(self, plan_id: str, chunk: int = 0) -> Wake | None:
        """One pass over the plan (or over its `chunk`: the VM steps are split among
        `parallel_executors` tasks); the task re-enqueues itself per the returned `Wake`."""
        plan = self.store.plan(plan_id)
        if plan is None:
            return None
        state = self.store.plan_state(plan_id)
        status = state.get("status")
        if status in rs.TERMINAL or status in (rs.AWAITING, rs.BLOCKED):
            return None
        if chunk and status != rs.EXECUTING:
            return None  # grace, approval and verification are chunk 0's
        lease = plan_id if not chunk else f"{plan_id}#{chunk}"
        if not self.store.take_lease(lease, self.worker_id, self.lease_ttl):
            # Someone else drives it; if they die, their lease lapses and we continue.
            return Wake(RUN_TASK, self.store.lease_ttl(lease) + 0.2)
        self._lease = (lease, self.clock())
        try:
            return self._run_locked(plan, plan_id, status, chunk)
        except Permanent as exc:
            self._fail_plan(plan, exc)
            return None
        finally:
            self.store.drop_lease(lease, self.worker_id)

    def _run_locked(self, plan: Plan, plan_id: str, status: str | None, chunk: int
                    ) -> Wake | None:
        if status == rs.GRACE:
            wake = self._after_grace(plan)
            if wake is not None or self.store.plan_state(plan_id).get("status") != rs.EXECUTING:
                return wake
            self._start_chunks(plan_id)
        status = self.store.plan_state(plan_id).get("status")
        if status == rs.EXECUTING:
            return self._execute(plan, chunk)
        if status == rs.VERIFYING:
            return self._verify(plan)
        return None

    def _renew_lease(self) -> None:
        """A long pass (thousands of VMs) keeps its lease, so nobody takes over a live executor."""
        key, since = self._lease
        if key and self.clock() - since > self.lease_ttl / 3:
            if not self.store.take_lease(key, self.worker_id, self.lease_ttl):
                raise Transient(f"lost the lease of {key}; another executor continues")
            self._lease = (key, self.clock())

    def _fail_plan(self, plan: Plan, exc: Exception) -> None:
        """OpenNebula refused something the plan cannot go on without (the host is gone, the
        session is not allowed ...): stop, say so, hand over to people. Never retried blindly."""
        reason = f"stopped: {exc}"
        if not self.store.set_status_if(plan.plan_id, (rs.GRACE, rs.EXECUTING, rs.VERIFYING),
                                        rs.FAILED, reason):
            return
        self.store.audit("plan_failed", plan.plan_id, plan.incident_id, error=str(exc))
        self.incidents.add_notice(plan.incident_id, "needs_human", f"{plan.plan_id}:failed",
                                  f"Remediation plan {plan.plan_id} {reason}. Nothing more is "
                                  "done automatically: the VMs not running yet need a human.")
        self.incidents.set_state(plan.incident_id, "firing", reason)

    def _start_chunks(self, plan_id: str) -> None:
        for chunk in range(1, self.cfg.parallel_executors):
            self._send(RUN_TASK, [plan_id, chunk], 0)

    def _chunks(self, plan: Plan) -> dict[str, int]:
        """Host steps belong to chunk 0; VM steps are dealt round-robin in execution order, so
        every executor works down the priorities at the same pace (highest first in chunk 0)."""
        out: dict[str, int] = {}
        vm_index = 0
        for step in execution_order(plan.steps):
            if step.is_vm_step:
                out[step.key] = vm_index % self.cfg.parallel_executors
                vm_index += 1
            else:
                out[step.key] = 0
        return out

    def _after_grace(self, plan: Plan) -> Wake | None:
        now = self.clock()
        if plan.grace_until > now:
            return Wake(RUN_TASK, plan.grace_until - now)
        if plan.host_id is not None:
            host = self.one.host(plan.host_id)
            if not host.is_error and host.id not in self._own_hosts([host]):
                self.store.set_status(plan.plan_id, rs.CANCELLED,
                                      f"host {host.name} is {host.state_label} again: it came "
                                      "back during the grace period, nothing done")
                self.store.audit("plan_cancelled", plan.plan_id, plan.incident_id,
                                 reason="host back during grace", host_state=host.state_label)
                self._timeline(plan.incident_id, f"host {host.name} came back during the grace "
                                                 "period: no action taken", plan_id=plan.plan_id)
                return None
        hosts = self.one.hosts()
        storm = guards.storm(hosts, self.cfg.storm)
        if not storm:
            self.store.set_status(plan.plan_id, rs.BLOCKED, storm.reason)
            self.store.audit("plan_blocked", plan.plan_id, plan.incident_id, guard=storm.code,
                             reason=storm.reason)
            self._timeline(plan.incident_id, f"automatic remediation stopped: {storm.reason}; "
                                             f"`oneha approve {plan.plan_id}` overrides it",
                           plan_id=plan.plan_id)
            # One story for the whole partition, however many host plans it blocks.
            self.incidents.record_event(partition.storm_event(hosts, storm.reason, now))
            return None
        self._tell_left_alone(plan)
        if not plan.steps:
            self.store.set_status(plan.plan_id, rs.CANCELLED, "nothing oneha may do")
            return None
        if plan.mode == "approval" or (plan.needs_approval
                                       and not any(not s.needs_approval for s in plan.steps)):
            self._request_approval(plan)
            return None
        if plan.needs_approval:
            self._request_approval(plan, keep_status=True)
        if self.store.set_status_if(plan.plan_id, (rs.GRACE,), rs.EXECUTING, "policy: auto"):
            self.incidents.set_state(plan.incident_id, "remediating",
                                     f"plan {plan.plan_id} runs by policy")
        return None

    def _tell_left_alone(self, plan: Plan) -> None:
        """VMs of the plan that nothing automatic will bring back, by name and real reason: a
        definite decision, made after the grace period and the storm guard."""
        left = [s for s in plan.skipped if s.code in LEFT_TO_PEOPLE]
        if not left:
            return
        by_code: dict[str, list[str]] = {}
        for s in left:
            by_code.setdefault(s.code, []).append(f"{s.vm_name or 'VM'} ({s.vm_id})")
        reasons = "; ".join(f"{LEFT_TO_PEOPLE[code]}: {', '.join(names)}"
                            for code, names in by_code.items())
        example = next((s.reason for s in left if s.code == "wont_fit"), "")
        self.incidents.add_notice(
            plan.incident_id, "needs_human", f"{plan.plan_id}:left",
            f"{len(left)} VM(s) will not be recovered by oneha — {reasons}."
            + (f" ({example})" if example else ""))

    # ---- approvals ----------------------------------------------------------------------------

    def _request_approval(self, plan: Plan, keep_status: bool = False) -> str:
        """Create (or find) the plan's approval and page the approvers. Safe to repeat: a worker
        that died between the two is replaced by one that re-signs the same claims into the same
        link, and the notification ids make the page go out once."""
        state = self.store.plan_state(plan.plan_id)
        approval_id = state.get("approval_id")
        existing = self.store.approval(approval_id) if approval_id else None
        if existing is None:
            approval_id = uuid.uuid4().hex[:16]
            expires = self.clock() + self.cfg.approval_ttl
            self.store.create_approval(approval_id, plan.plan_id, plan.incident_id, expires)
        else:
            expires = float(existing["expires_at"])
        token = approvals.sign(self._secret(), Claims(approval_id, plan.plan_id,
                                                      plan.incident_id, expires))
        held = [s for s in plan.vm_steps if plan.mode == "approval" or s.needs_approval]
        url = f"{self.settings.public_url.rstrip('/')}/approvals/{token}"
        if existing is None:
            self.store.audit("approval_requested", plan.plan_id, plan.incident_id,
                             approval_id=approval_id, expires_at=expires,
                             vms=[s.vm_id for s in held])
        until = time.strftime("%H:%M UTC", time.gmtime(expires))
        self.incidents.add_notice(
            plan.incident_id, "approval_requested", f"{plan.plan_id}:approval",
            f"Approval needed: {', '.join(sorted({s.action for s in held}))} {len(held)} VM(s) "
            f"(plan {plan.plan_id}); the link below is valid until {until}."
            + "".join(f" Warning: {w}." for w in plan.warnings),
            approval_url=url, plan=plan.summary()[:200])
        if not keep_status:
            self.store.set_status_if(plan.plan_id, (rs.GRACE,), rs.AWAITING,
                                     "waiting for an approver")
        return approval_id

    def _secret(self) -> str:
        return self.settings.secret_key.get_secret_value()

    def check_token(self, token: str, incident_id: str | None = None) -> tuple[Claims, Plan]:
        """A token's claims and plan, or ApprovalRefused (forged, expired, used, wrong incident)."""
        claims = approvals.verify(self._secret(), token, self.clock(), incident_id)
        approval = self.store.approval(claims.approval_id)
        plan = self.store.plan(claims.plan_id)
        if approval is None or plan is None or approval.get("plan_id") != claims.plan_id \
                or plan.incident_id != claims.incident_id:
            raise ApprovalRefused("unknown", "this approval link does not match any plan oneha "
                                             "knows (was the data reset?)")
        if approval.get("status") != "pending":
            raise ApprovalRefused("used", f"this approval link was already used: plan "
                                          f"{approval.get('status')} by "
                                          f"{approval.get('decided_by') or '?'}")
        return claims, plan

    def decide_by_token(self, token: str, decision: str, approver: str, via: str,
                        incident_id: str | None = None) -> str:
        claims, _plan = self.check_token(token, incident_id)
        return self._decide(claims.approval_id, claims.plan_id, decision, approver, via)

    def decide_plan(self, plan_id: str, decision: str, approver: str, via: str = "cli") -> str:
        """The CLI path: the operator has the configuration (and Redis), so no token is needed.
        A plan blocked by a guard can be approved only this way — a person taking the decision."""
        plan = self.store.plan(plan_id)
        if plan is None:
            raise ApprovalRefused("unknown", f"no plan {plan_id!r} (see `oneha plans`)")
        state = self.store.plan_state(plan_id)
        current = self.store.approval(state["approval_id"]) if state.get("approval_id") else None
        lapsed = current is not None and current.get("status") in ("pending", "expired") and \
            float(current.get("expires_at") or 0) <= self.clock()
        if (state.get("status") == rs.BLOCKED and current is None) or \
                (lapsed and state.get("status") in (rs.AWAITING, rs.BLOCKED, rs.EXECUTING)):
            # A blocked plan has no link; an expired link does not bind the operator at the
            # console: the decision gets an approval record of its own.
            self.store.create_approval(uuid.uuid4().hex[:16], plan_id, plan.incident_id,
                                       self.clock() + self.cfg.approval_ttl)
            state = self.store.plan_state(plan_id)
        approval_id = state.get("approval_id")
        if not approval_id:
            raise ApprovalRefused("not_pending", f"plan {plan_id} is {state.get('status')}: there "
                                                 "is nothing to approve")
        return self._decide(approval_id, plan_id, decision, approver, via)

    def _decide(self, approval_id: str, plan_id: str, decision: str, approver: str, via: str
                ) -> str:
        if decision not in ("approved", "denied"):
            raise ApprovalRefused("bad_decision", "decision must be approve or deny")
        if not approver.strip():
            raise ApprovalRefused("no_approver", "say who decides (approver identity is recorded)")
        result, who = self.store.decide(approval_id, decision, approver, via)
        plan = self.store.plan(plan_id)
        assert plan is not None
        if result == "expired":
            self.store.audit("approval_refused", plan_id, plan.incident_id, actor=approver,
                             reason="expired", via=via)
            raise ApprovalRefused("expired", "this approval has expired; nothing was done")
        if result != "ok":
            self.store.audit("approval_refused", plan_id, plan.incident_id, actor=approver,
                             reason=f"already {result}", via=via)
            raise ApprovalRefused("used", f"this approval was already used: plan {result} by "
                                          f"{who or '?'}")
        self.store.audit(f"plan_{decision}", plan_id, plan.incident_id, actor=approver, via=via)
        self._timeline(plan.incident_id, f"plan {plan_id} {decision} by {approver} ({via})",
                       plan_id=plan_id, actor=approver)
        if decision == "denied":
            status = self.store.plan_state(plan_id).get("status")
            if status in (rs.AWAITING, rs.BLOCKED):
                self.store.set_status(plan_id, rs.DENIED, f"denied by {approver}")
            else:  # auto steps may already run; only the held ones are dropped
                self.store.set_status(plan_id, status or rs.EXECUTING,
                                      f"approval part denied by {approver}", approved="denied")
                self._send(RUN_TASK, [plan_id], 0)  # skip the held steps and finish the rest
                self._start_chunks(plan_id)
            return rs.DENIED
        was = self.store.plan_state(plan_id).get("status")
        # Approving a plan the storm guard blocked is a person overriding that guard knowingly;
        # any other approval still meets the storm guard before each action.
        self.store.set_status(plan_id, rs.EXECUTING, f"approved by {approver} ({via})",
                              approved="yes", approved_by=approver,
                              storm_override="yes" if was == rs.BLOCKED else "no")
        self.incidents.set_state(plan.incident_id, "remediating",
                                 f"plan {plan_id} approved by {approver}")
        self._send(RUN_TASK, [plan_id], 0)
        self._start_chunks(plan_id)
        return rs.EXECUTING

    # ---- execution ----------------------------------------------------------------------------

    def _execute(self, plan: Plan, chunk: int = 0) -> Wake | None:
        state = self.store.plan_state(plan.plan_id)
        approved = state.get("approved") == "yes"
        denied = state.get("approved") == "denied"
        self._storm_override = state.get("storm_override") == "yes"
        gate = self._gate()
        if not gate:
            if state.get("reason") != f"waiting: {gate.reason}":
                self.store.set_status(plan.plan_id, rs.EXECUTING, f"waiting: {gate.reason}")
                self.store.audit("action_held", plan.plan_id, plan.incident_id, guard=gate.code,
                                 reason=gate.reason)
            return Wake(RUN_TASK, 2.0)
        self._hosts_cache = None  # host states are re-read once per pass
        outcomes = self.store.outcomes(plan.plan_id)
        wake_at: float | None = None
        done_now: list[str] = []
        mine: set[str] = set()
        chunks = self._chunks(plan)
        try:
            for step in execution_order(plan.steps):
                if chunks[step.key] != chunk:
                    continue
                mine.add(step.key)
                out = outcomes.get(step.key) or {}
                if out.get("status") not in (None, "acting"):
                    continue
                if step.needs_approval or plan.mode == "approval":
                    if denied:
                        outcomes[step.key] = self.store.record(
                            plan.plan_id, step.key, "skipped", "approval denied", previous=out)
                        continue
                    if not approved:
                        continue
                deps = [outcomes.get(k) or {} for k in step.after]
                if any(d.get("status") in ("failed", "needs_human") for d in deps):
                    outcomes[step.key] = self.store.record(
                        plan.plan_id, step.key, "skipped",
                        f"{', '.join(step.after)} did not succeed", previous=out)
                    continue
                # A skipped host step (e.g. the host is back) is no blocker: the step's own
                # re-read decides.
                if any(d.get("status") not in ("done", "skipped") for d in deps):
                    continue  # a later pass gets to it
                ready_at = max([float(d.get("at") or 0) for d in deps] or [0.0]) \
                    + step.wait_cycles * self.monitoring_interval()
                if ready_at > self.clock():
                    wake_at = ready_at if wake_at is None else min(wake_at, ready_at)
                    continue
                self._renew_lease()
                result = self._act(plan, step, out, outcomes)
                if isinstance(result, Wake):
                    return result
                outcomes[step.key] = result
                if result.get("status") == "done":
                    done_now.append(f"{result.get('action', step.action)} {_target(step)}")
        finally:
            if done_now:
                self._timeline(plan.incident_id, f"{len(done_now)} action(s): "
                               + "; ".join(done_now[:20]) + (" ..." if len(done_now) > 20 else ""),
                               plan_id=plan.plan_id)
        if mine and len(mine) < len(plan.steps):
            outcomes = self.store.outcomes(plan.plan_id)  # the other executors' progress too
        remaining = [s for s in plan.steps
                     if (outcomes.get(s.key) or {}).get("status") in (None, "acting")]
        waiting_approver = [s for s in remaining
                            if (s.needs_approval or plan.mode == "approval") and not approved]
        if len(remaining) > len(waiting_approver):
            # Steps waiting for a dependency, a monitoring cycle or another executor.
            return Wake(RUN_TASK, max(0.05, (wake_at or self.clock() + 0.2) - self.clock()))
        if remaining:
            self.store.set_status(plan.plan_id, rs.EXECUTING,
                                  "automatic part done; waiting for an approver")
            return Wake(VERIFY_TASK, 0)
        self.store.set_status_if(plan.plan_id, (rs.EXECUTING,), rs.VERIFYING,
                                 "actions made; following the VMs until they run")
        return Wake(VERIFY_TASK, 0)

    def _gate(self) -> guards.Decision:
        pause = guards.paused(self.store.paused())
        if not pause:
            return pause
        return self.raft_guard()

    def raft_guard(self) -> guards.Decision:
        views = []
        refusals = []
        for url, st in self.one.raft_statuses().items():
            if isinstance(st, Exception):
                views.append(RaftView(url, None))
                if isinstance(st, Permanent):
                    refusals.append(st)
            else:
                views.append(RaftView(url, st.state, st.term))
        if refusals and len(refusals) == len(views):
            raise refusals[0]  # every front-end refuses us (e.g. authentication): not a blip
        return guards.raft(views)

    def _hosts(self) -> dict[int, Any]:
        """The host pool, read once per pass (a pass takes seconds; VMs are re-read each time)."""
        if self._hosts_cache is None:
            self._hosts_cache = {h.id: h for h in self.one.hosts()}
        return self._hosts_cache

    def _act(self, plan: Plan, step: Step, out: dict, outcomes: dict) -> dict | Wake:
        """Limits, lock, live re-read, claim, call, record — for one step."""
        attempt = int(out.get("attempt") or 1)
        wait = self.store.take_rate(self.cfg.rate_limit_actions, self.cfg.rate_limit_window)
        if wait:
            self.store.audit("rate_limited", plan.plan_id, plan.incident_id, step=step.key,
                             wait=round(wait, 3))
            return Wake(RUN_TASK, wait)
        slot = self.store.take_slot(self.cfg.concurrency, lease=self.lease_ttl)
        if slot is None:
            return Wake(RUN_TASK, 0.2)
        try:
            lock_id = step.vm_id if step.vm_id is not None else f"host{step.host_id}"
            with self.store.vm_lock(lock_id, ttl=self.lease_ttl) as locked:
                if not locked:
                    return Wake(RUN_TASK, 0.5)
                vm = self._vm_or_none(step.vm_id) if step.is_vm_step else None
                if out.get("status") == "acting":
                    settled = self._settle(plan, step, out, vm)
                    if settled is not None:
                        return settled
                    attempt += 1  # the dead claimant's call never took effect: a new attempt
                check = self._recheck(plan, step, vm, outcomes, self._storm_override)
                if not check:
                    return self.store.record(
                        plan.plan_id, step.key, "skipped", check.reason, previous=out,
                        code=check.code, attempt=attempt,
                        audit={"what": "action_skipped", "incident_id": plan.incident_id,
                               "step": step.key, "guard": check.code, "reason": check.reason})
                if step.action == "refresh_host":
                    # One refresh per host and cycle, whichever plan asks (the refresh itself
                    # takes ~0.5 s: OFFLINE, pause, ENABLED).
                    done_at = self.store.note_refresh(step.host_id,
                                                      2 * self.monitoring_interval() + 1.0)
                    if done_at is not None:
                        return self.store.record(
                            plan.plan_id, step.key, "done", "monitoring refreshed by another "
                            "plan this cycle", previous={**out, "at": done_at}, attempt=attempt)
                claimed = self.store.claim(plan.plan_id, step.key, attempt, self.worker_id,
                                           previous=out, detail=check.reason)
                if claimed is None:
                    return Wake(RUN_TASK, 0.5)  # another executor got there first
                return self._call(plan, step, attempt, claimed)
        finally:
            self.store.release_slot(slot)

    def _recheck(self, plan: Plan, step: Step, vm: VmInfo | None, outcomes: dict,
                 storm_override: bool = False) -> guards.Decision:
        """The live re-read right before the action. Only a person who approved a plan the
        storm guard blocked overrides that guard; nothing overrides a changed VM or host."""
        if not step.is_vm_step:
            host = self.one.host(step.host_id)
            if step.action == "refresh_host":
                alone = guards.host_left_alone(
                    host, by_oneha=self.store.refreshed_at(host.id) is not None)
                if not alone:
                    return alone
                if host.is_error:
                    return guards.Decision(False, f"host {host.name} is in ERROR now: the host's "
                                                  "incident handles it", "changed")
                return guards.Decision(True, f"host {host.name} is {host.state_label}")
            if not host.is_error:
                return guards.Decision(False, f"host {host.name} is {host.state_label} again",
                                       "changed")
            return guards.Decision(True, f"host {host.name} still in ERROR")
        decision = guards.still_as_planned(Expect.from_dict(step.expect or {}), vm)
        if not decision:
            return decision
        hosts = self._hosts()
        if step.action in ("resume", "retry"):
            host = hosts.get(vm.host_id) if vm is not None else None
            alone = guards.host_left_alone(host, by_oneha=host is not None and
                                           self.store.refreshed_at(host.id) is not None)
            if not alone:
                return alone
            if host is not None and host.is_error:
                return guards.Decision(False, f"host {host.name} is in ERROR now: the host's "
                                              "incident plans this VM", "changed")
            return decision
        host = hosts.get(step.host_id)
        disabled_by_us = (outcomes.get(f"disable:{step.host_id}") or {}).get("status") == "done" \
            or (host is not None and host.id in self._own_hosts([host]))
        alone = guards.host_left_alone(host, by_oneha=disabled_by_us)
        if not alone:
            return alone
        if host is not None and not host.is_error and not (
                disabled_by_us and host.state == states.HOST_DISABLED):
            return guards.Decision(False, f"host {host.name} is {host.state_label} again: its VMs "
                                          "are not moved away from a live host", "changed")
        if not storm_override:
            storm = guards.storm(list(hosts.values()), self.cfg.storm)
            if not storm:
                return storm
        return decision

    def _vm_or_none(self, vm_id) -> VmInfo | None:
        try:
            return self.one.vm(vm_id)
        except Permanent as exc:
            if getattr(exc, "code", None) == 0x0400:
                return None
            raise

    def _call(self, plan: Plan, step: Step, attempt: int, out: dict,
              action: str | None = None) -> dict:
        action = action or step.action
        started = self.clock()
        if action in ("disable_host", "refresh_host"):
            # Before the call: OpenNebula's hook for the new host state may beat its answer.
            self.incidents.note_own_action(step.host_id, action, plan.plan_id,
                                           self._own_mark_ttl(action))
        try:
            answer = self._invoke(step, action)
        except Permanent as exc:
            self._timeline(plan.incident_id, f"{action} of {_target(step)} failed: {exc}",
                           plan_id=plan.plan_id)
            if not step.is_vm_step:  # its VMs stay where they are: people must know now
                self.incidents.add_notice(
                    plan.incident_id, "needs_human", f"{plan.plan_id}:{step.key}",
                    f"{action} of {_target(step)} failed, so its VMs are not moved: {exc}")
            return self.store.record(
                plan.plan_id, step.key, "failed", str(exc), previous=out, attempt=attempt,
                action=action,
                audit={"what": "action_failed", "incident_id": plan.incident_id, "step": step.key,
                       "action": action, "attempt": attempt, "error": str(exc)})
        except Transient as exc:
            # Outcome unknown or nobody answered: the `acting` record stays; the next pass
            # settles it by re-reading the VM.
            self.store.audit("action_uncertain", plan.plan_id, plan.incident_id, step=step.key,
                             action=action, attempt=attempt, error=str(exc))
            raise
        return self.store.record(
            plan.plan_id, step.key, "done", f"{action}: {answer}", previous=out,
            attempt=attempt, action=action, acted_at=started,
            audit={"what": "action_done", "incident_id": plan.incident_id, "step": step.key,
                   "action": action, "attempt": attempt, "answer": answer, "vm": step.vm_id,
                   "host": step.host_id})

    def _invoke(self, step: Step, action: str) -> Any:
        if action == "fence":
            if self.fencer is None:
                raise Permanent("fencing is required by the plan but no fencing command is set")
            result = self.fencer.fence(step.host_name)
            if not result.ok:
                raise Permanent(f"fencing failed: {result.detail}")
            return result.detail
        if action == "disable_host":
            return self.one.host_status(step.host_id, _DISABLE)
        if action == "refresh_host":
            self.one.host_force_update(step.host_id)
            return "monitoring refreshed"
        if action in ("resume", "resched"):
            return self.one.vm_action(action, step.vm_id)
        if action == "recreate":
            return self.one.vm_recover(step.vm_id, RECOVER_DELETE_RECREATE)
        if action == "retry":
            return self.one.vm_recover(step.vm_id, RECOVER_RETRY)
        raise Permanent(f"unknown action {action!r}")

    def _settle(self, plan: Plan, step: Step, out: dict, vm: VmInfo | None) -> dict | None:
        """An `acting` record whose worker died (or whose call's outcome is unknown): did the
        call take effect? OpenNebula changes a VM's state inside the call, so the live VM says.
        Returns the settled outcome, or None when the call did not happen (act again)."""
        attempt = int(out.get("attempt") or 1)
        if not step.is_vm_step:
            if step.action == "fence":  # never repeated blindly: a person looks
                return self.store.record(plan.plan_id, step.key, "failed",
                                         "fencing was interrupted; outcome unknown, needs a human",
                                         previous=out)
            return None  # disable/refresh twice is harmless
        still = guards.still_as_planned(Expect.from_dict(step.expect or {}), vm)
        took_effect = not still or (step.action == "resched" and vm is not None and vm.resched)
        self.store.audit("claim_settled", plan.plan_id, plan.incident_id, step=step.key,
                         attempt=attempt, took_effect=took_effect, evidence=still.reason)
        if took_effect:
            return self.store.record(plan.plan_id, step.key, "done",
                                     f"{step.action} took effect before its worker stopped "
                                     f"({still.reason})", previous=out, action=step.action,
                                     acted_at=float(out.get("at") or self.clock()), settled=True)
        return None

    # ---- verification ------------------------------------------------------------------------

    def verify(self, plan_id: str) -> Wake | None:
        plan = self.store.plan(plan_id)
        if plan is None:
            return None
        if self.store.plan_state(plan_id).get("status") in rs.TERMINAL:
            return None
        if not self.store.take_lease(plan_id, self.worker_id, self.lease_ttl):
            return Wake(VERIFY_TASK, self.store.lease_ttl(plan_id) + 0.2)
        try:
            return self._verify(plan)
        except Permanent as exc:
            self._fail_plan(plan, exc)
            return None
        finally:
            self.store.drop_lease(plan_id, self.worker_id)

    def _verify(self, plan: Plan) -> Wake | None:
        now = self.clock()
        outcomes = self.store.outcomes(plan.plan_id)
        state = self.store.plan_state(plan.plan_id)
        approved = state.get("approved") == "yes"
        to_read = [s for s in plan.vm_steps
                   if (outcomes.get(s.key) or {}).get("status") in ("done", "retry_wait", "failed")
                   or ((outcomes.get(s.key) or {}).get("status") == "skipped"
                       and (outcomes.get(s.key) or {}).get("code") == "running")]
        live = self._live_vms([s.vm_id for s in to_read])
        pending = False
        for step in plan.vm_steps:
            out = outcomes.get(step.key) or {}
            status = out.get("status")
            if status is None and (step.needs_approval or plan.mode == "approval") \
                    and not approved:
                continue  # waits for an approver, not for us
            if status in (None, "acting"):
                pending = True  # not acted yet (the executor is on it)
                continue
            if step not in to_read:
                continue  # running, needs_human, failed, skipped for a reason
            vm = live.get(step.vm_id)
            if vm is not None and vm.is_running:
                self.store.record(plan.plan_id, step.key, "running", f"RUNNING on {vm.host_name}",
                                  previous=out, running_at=now, host_after=vm.host_name or "",
                                  action=out.get("action") or "none",
                                  audit={"what": "vm_running", "incident_id": plan.incident_id,
                                         "vm": step.vm_id, "host": vm.host_name})
                continue
            if status == "skipped":
                continue  # was RUNNING at the re-read and is not now: nothing oneha did
            if status == "retry_wait":
                if now >= float(out.get("not_before") or 0):
                    self._retry(plan, step, self._vm_or_none(step.vm_id), out)
                pending = True
                continue
            acted_at = float(out.get("acted_at") or out.get("at") or now)
            if status == "done" and now - acted_at < self.cfg.verify_timeout \
                    and not (vm is not None and vm.is_failed):
                pending = True  # on its way (a FAILURE state or a refused call need not wait)
                continue
            attempts = int(out.get("attempt") or 1)
            decision = guards.next_attempt(attempts, self.cfg.max_retries, self.cfg.retry_backoff)
            if decision.retry:
                self.store.record(plan.plan_id, step.key, "retry_wait", decision.reason,
                                  previous=out, not_before=now + decision.delay,
                                  audit={"what": "retry_scheduled",
                                         "incident_id": plan.incident_id, "vm": step.vm_id,
                                         "reason": decision.reason,
                                         "state": vm.state_label if vm else "gone"})
                pending = True
            else:
                self._needs_human(plan, step, vm, decision.reason)
        if pending:
            return Wake(VERIFY_TASK, self.cfg.verify_interval)
        held = [s for s in plan.steps if (outcomes.get(s.key) or {}).get("status") is None]
        if held and state.get("approved") not in ("yes", "denied"):
            return None  # the approver decides the rest; approving runs the plan again
        self._finish(plan)
        return None

    def _live_vms(self, vm_ids: list[int]) -> dict[int, VmInfo]:
        """Many VMs: one pool read; a few: one `vm.info` each."""
        if not vm_ids:
            return {}
        if len(vm_ids) > 8:
            wanted = set(vm_ids)
            return {v.id: v for v in self.one.vms() if v.id in wanted}
        out = {}
        for vid in vm_ids:
            vm = self._vm_or_none(vid)
            if vm is not None:
                out[vid] = vm
        return out

    def _retry(self, plan: Plan, step: Step, vm: VmInfo | None, out: dict) -> None:
        attempt = int(out.get("attempt") or 1) + 1
        if vm is None:
            self._needs_human(plan, step, vm, "the VM disappeared during recovery")
            return
        if vm.is_failed:
            action = "retry"
        elif guards.still_as_planned(Expect.from_dict(step.expect or {}), vm):
            action = step.action
        else:
            action = ""  # in progress (BOOT, PROLOG...): give it another verify window
        if not action:
            self.store.record(plan.plan_id, step.key, "done", f"still {vm.state_label}; waiting",
                              previous=out, attempt=attempt, acted_at=self.clock())
            return
        gate = self._gate()
        if not gate:
            self.store.record(plan.plan_id, step.key, "retry_wait", gate.reason, previous=out,
                              not_before=self.clock() + 5)
            return
        with self.store.vm_lock(step.vm_id, ttl=self.lease_ttl) as locked:
            if not locked:
                return
            claimed = self.store.claim(plan.plan_id, step.key, attempt, self.worker_id,
                                       previous=out, detail=f"retry as {action}")
            if claimed is not None:
                self._call(plan, step, attempt, claimed, action=action)

    def _needs_human(self, plan: Plan, step: Step, vm: VmInfo | None, reason: str) -> None:
        self.store.record(plan.plan_id, step.key, "needs_human", reason)
        self.store.audit("needs_human", plan.plan_id, plan.incident_id, vm=step.vm_id,
                         reason=reason, state=vm.state_label if vm else "gone")
        self.incidents.add_notice(
            plan.incident_id, "needs_human", f"{plan.plan_id}:{step.vm_id}",
            f"VM {step.vm_name or step.vm_id} ({step.vm_id}) was not recovered after "
            f"{self.cfg.max_retries + 1} attempt(s): {reason}. oneha leaves it alone now.")
        self.incidents.set_state(plan.incident_id, "firing",
                                 f"remediation gave up on VM {step.vm_id}: {reason}")

    def _finish(self, plan: Plan) -> None:
        outcomes = self.store.outcomes(plan.plan_id)
        before = self.store.before(plan.plan_id)
        failed_at = self._failed_at(plan)
        status_of = {s.vm_id: (outcomes.get(s.key) or {}).get("status") for s in plan.vm_steps}
        live = self._live_vms(sorted({*status_of, *(s.vm_id for s in plan.skipped)}))
        impacts = []
        for step in plan.vm_steps:
            out = outcomes.get(step.key) or {}
            vm_before, vm_after = before.get(step.vm_id), live.get(step.vm_id)
            if out.get("status") != "running" or vm_before is None or vm_after is None:
                continue
            impacts.append(impact.vm_impact(vm_before, vm_after, out.get("action") or step.action,
                                            failed_at, float(out.get("running_at") or 0) or None))
        humans = [v for v, st in status_of.items() if st == "needs_human"]
        status = rs.FAILED if humans else rs.DONE
        reason = (f"{len(impacts)} VM(s) running again" +
                  (f"; {len(humans)} need a human" if humans else ""))
        if not self.store.set_status_if(plan.plan_id, (rs.VERIFYING, rs.EXECUTING), status,
                                        reason):
            return
        rows = [i.to_dict() for i in impacts]
        self.store.save_impact(plan.plan_id, rows)
        self.store.audit("plan_finished", plan.plan_id, plan.incident_id, status=status,
                         impact=impact.summary(impacts))
        # What people read next shows each VM as it is now (RUNNING on node02), not as it failed.
        self.incidents.set_live_vms(plan.incident_id, list(live.values()), rows,
                                    self._host_label(plan, outcomes))
        self._timeline(plan.incident_id, f"plan {plan.plan_id} {status}: {reason}",
                       plan_id=plan.plan_id)
        down = [v for v in live.values() if vm_is_failing(v.state, v.lcm_state)]
        if status == rs.DONE and not down and not any(
                s.code in LEFT_TO_PEOPLE for s in plan.skipped):
            # Every VM runs again: that is what people wait for, so the resolve notice (with the
            # impact report attached above) goes out now, even if the host itself stays broken.
            left = (f"; host {plan.host_name} stays out of service until repaired"
                    if plan.host_name else "")
            self.incidents.set_state(plan.incident_id, "resolved",
                                     f"remediation done: {reason}{left}")

    def _host_label(self, plan: Plan, outcomes: dict) -> str:
        """The failed host's state as people should read it now; oneha's own disable says so."""
        if plan.host_id is None:
            return ""
        try:
            host = self.one.host(plan.host_id)
        except Permanent:
            return "gone"
        ours = (outcomes.get(f"disable:{plan.host_id}") or {}).get("status") == "done"
        return host.state_label + (" (by oneha)" if ours and host.in_maintenance else "")

    def _failed_at(self, plan: Plan) -> float | None:
        inc = self._incident(plan.incident_id)
        return float(inc.created_at) if inc is not None else None

    def impact(self, plan_id: str) -> list[dict]:
        return self.store.impact(plan_id)

    # ---- after a restart ---------------------------------------------------------------------

    def resume_all(self) -> list[str]:
        """Plans a dead worker left mid-way: drive them again once their lease lapses."""
        resumed = []
        for pid in self.store.recent_plans(500):
            status = self.store.plan_state(pid).get("status")
            if status in (rs.GRACE, rs.EXECUTING):
                self._send(RUN_TASK, [pid], self.store.lease_ttl(pid))
                if status == rs.EXECUTING:
                    for chunk in range(1, self.cfg.parallel_executors):
                        lease = f"{pid}#{chunk}"
                        self._send(RUN_TASK, [pid, chunk], self.store.lease_ttl(lease))
                resumed.append(pid)
            elif status == rs.VERIFYING:
                self._send(VERIFY_TASK, [pid], self.store.lease_ttl(pid))
                resumed.append(pid)
        return resumed

    # ---- incidents ----------------------------------------------------------------------------

    def _incident(self, incident_id: str):
        return self.incidents.get(incident_id)

    def _timeline(self, incident_id: str, text: str, actor: str = "oneha", **data) -> None:
        self.incidents.add_timeline(incident_id, text, actor, data)

    def _own_hosts(self, hosts) -> frozenset[int]:
        """Of `hosts`, those DISABLED/OFFLINE by oneha itself: a plan disabled them, or a
        refresh set them OFFLINE for a moment. Never an operator's maintenance."""
        marked = self.incidents.own_hosts()
        return frozenset(h.id for h in hosts if h.in_maintenance and (
            h.id in marked or self.store.refreshed_at(h.id) is not None))

    def _own_mark_ttl(self, action: str) -> float | None:
        """How long a host state oneha caused is oneha's: a disabled host until it is healthy
        again (no expiry), a refresh's OFFLINE for the cycle or two the refresh takes."""
        return None if action == "disable_host" else 2 * self.monitoring_interval() + 30.0


def _target(step: Step) -> str:
    if step.vm_id is not None:
        return f"VM {step.vm_name or ''} ({step.vm_id})".replace("  ", " ")
    return f"host {step.host_name or step.host_id}"


class IncidentPort:
    """What remediation reads and writes of incidents (over `IncidentStore`), and the one way its
    news reach people: a notice on the incident, told by the incident's story after the alert."""

    def __init__(self, store, clock: Callable[[], float] = time.time,
                 record_event: Callable[[Any], None] | None = None):
        self.store = store
        self.clock = clock
        self._record_event = record_event

    def get(self, incident_id: str):
        return self.store.get(incident_id) if self.store is not None else None

    def set_plan(self, incident_id: str, plan_id: str) -> None:
        if self.store is not None:
            self.store.attach(incident_id, "", plan_id=plan_id)

    def set_live_vms(self, incident_id: str, vms: list[VmInfo], impact_rows: list[dict],
                     host_label: str = "") -> None:
        if self.store is not None:
            self.store.set_live_vms(incident_id, vms, impact_rows, host_label)

    def set_state(self, incident_id: str, to: str, reason: str) -> None:
        from gateway.domain.incidents import TransitionError
        if self.store is None:
            return
        inc = self.store.get(incident_id)
        if inc is None or inc.state == to or not inc.is_open:
            return
        try:
            self.store.transition(incident_id, to, reason, "oneha-remediation")
        except TransitionError as exc:  # e.g. resolved meanwhile: nothing to change
            log.info("incident_transition_skipped", incident=incident_id, to=to, reason=str(exc))

    def add_notice(self, incident_id: str, kind: str, key: str, text: str,
                   approval_url: str = "", plan: list[dict] | None = None) -> None:
        if self.store is None:
            return
        if self.store.add_notice(incident_id, kind, key, text, approval_url, plan) is None:
            log.warning("notice_without_incident", incident=incident_id, kind=kind, text=text)

    def note_own_action(self, host_id: int | None, action: str, plan_id: str,
                        ttl: float | None) -> None:
        if self.store is not None and host_id is not None:
            self.store.note_own_action(host_id, action, plan_id, ttl)

    def own_hosts(self) -> frozenset[int]:
        """Ids of hosts whose DISABLED/OFFLINE state oneha's own actions caused."""
        if self.store is None:
            return frozenset()
        return frozenset(int(k) for k in self.store.own_actions() if k.isdigit())

    def record_event(self, event) -> None:
        """An event of remediation's own (the storm guard's finding) into the incident flow."""
        if self._record_event is not None:
            self._record_event(event)

    def add_timeline(self, incident_id: str, text: str, actor: str, data: dict) -> None:
        from gateway.domain.incidents import TimelineEntry
        if self.store is None:
            return
        try:
            self.store.add_timeline(incident_id, TimelineEntry(self.clock(), "remediation", text,
                                                               actor, data))
        except KeyError:
            log.warning("timeline_without_incident", incident=incident_id, text=text)


def build_remediator(rt, send_task: Callable[..., Any], one=None) -> Remediator:
    """A Remediator over a runtime's adapters. `send_task(name, args=[...], countdown=None)` is
    the queue (Celery's `send_task`); `one` the OpenNebula client (None: decisions only — the
    CLI approves and pauses without calling OpenNebula)."""
    from gateway.adapters.store.events import EventStore
    from gateway.adapters.store.incidents import IncidentStore

    def record(event) -> None:
        EventStore.of(rt).record_finding(event)

    incidents = IncidentPort(IncidentStore(rt, send=send_task), rt.clock, record)

    def send(name: str, args: list, delay: float) -> None:
        send_task(name, args=args, countdown=delay if delay > 0 else None)

    return Remediator(rt.settings, RemediationStore.from_runtime(rt), one, incidents=incidents,
                      send=send, clock=rt.clock)
