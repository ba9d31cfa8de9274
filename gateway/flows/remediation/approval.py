"""Stage 3a, approval: a person decides what the policy leaves to people.

In order: `request` creates (or finds) the plan's approval and pages the approvers with a signed
link, as a notice on the incident; `check_token` tells a link's claims and plan, or why it is
refused; a decision comes by link (`decide_by_token`: web page, HTTP API, CLI) or by plan id
(`decide_plan`: the CLI, which may also override the storm guard); `_decide` records the first
decision atomically and asks for `oneha.run_plan` — approved steps run, denied ones are skipped.
"""

from __future__ import annotations

import uuid

from gateway.adapters.store import remediation as rs
from gateway.domain import approvals
from gateway.domain.approvals import ApprovalRefused, Claims
from gateway.domain.remediation.plans import Plan, Step
from gateway.domain.timefmt import utc

from .context import RemediationContext
from .ports import RUN_TASK


def held_for_approval(plan: Plan, step: Step) -> bool:
    """A step that waits for an approver: the whole plan needs one, or this step does."""
    return step.needs_approval or plan.mode == "approval"


class Approvals:
    def __init__(self, ctx: RemediationContext):
        self.ctx = ctx

    def secret(self) -> str:
        return self.ctx.settings.secret_key.get_secret_value()

    # ---- asking ---------------------------------------------------------------------------------

    def request(self, plan: Plan, keep_status: bool = False) -> str:
        """Create (or find) the plan's approval and page the approvers. Safe to repeat: a worker
        that died between the two is replaced by one that re-signs the same claims into the same
        link, and the notification ids make the page go out once."""
        ctx = self.ctx
        approval_id, expires, created = self._approval_of(plan)
        token = approvals.sign(self.secret(), Claims(approval_id, plan.plan_id,
                                                     plan.incident_id, expires))
        held = [s for s in plan.vm_steps if held_for_approval(plan, s)]
        url = f"{ctx.settings.public_url.rstrip('/')}/approvals/{token}"
        if created:
            ctx.store.audit("approval_requested", plan.plan_id, plan.incident_id,
                            approval_id=approval_id, expires_at=expires,
                            vms=[s.vm_id for s in held])
        ctx.incidents.add_notice(
            plan.incident_id, "approval_requested", f"{plan.plan_id}:approval",
            "approval_needed", {"actions": sorted({s.action for s in held}), "count": len(held),
                                "plan": plan.plan_id, "until": utc(expires),
                                "warnings": list(plan.warnings)},
            approval_url=url, plan=plan.summary()[:200])
        if not keep_status:
            ctx.store.set_status_if(plan.plan_id, (rs.GRACE,), rs.AWAITING,
                                    "waiting for an approver")
        return approval_id

    def _approval_of(self, plan: Plan) -> tuple[str, float, bool]:
        """The plan's approval id and expiry, and whether it was created just now."""
        store = self.ctx.store
        approval_id = store.plan_state(plan.plan_id).get("approval_id")
        existing = store.approval(approval_id) if approval_id else None
        if existing is not None:
            return approval_id, float(existing["expires_at"]), False
        approval_id = uuid.uuid4().hex[:16]
        expires = self.ctx.clock() + self.ctx.cfg.approval_ttl
        store.create_approval(approval_id, plan.plan_id, plan.incident_id, expires)
        return approval_id, expires, True

    # ---- deciding -------------------------------------------------------------------------------

    def check_token(self, token: str, incident_id: str | None = None) -> tuple[Claims, Plan]:
        """A token's claims and plan, or ApprovalRefused (forged, expired, used, wrong incident)."""
        store = self.ctx.store
        claims = approvals.verify(self.secret(), token, self.ctx.clock(), incident_id)
        approval = store.approval(claims.approval_id)
        plan = store.plan(claims.plan_id)
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
        store, clock = self.ctx.store, self.ctx.clock
        plan = store.plan(plan_id)
        if plan is None:
            raise ApprovalRefused("unknown", f"no plan {plan_id!r} (see `oneha plans`)")
        state = store.plan_state(plan_id)
        current = store.approval(state["approval_id"]) if state.get("approval_id") else None
        lapsed = current is not None and current.get("status") in ("pending", "expired") and \
            float(current.get("expires_at") or 0) <= clock()
        if (state.get("status") == rs.BLOCKED and current is None) or \
                (lapsed and state.get("status") in (rs.AWAITING, rs.BLOCKED, rs.EXECUTING)):
            # A blocked plan has no link; an expired link does not bind the operator at the
            # console: the decision gets an approval record of its own.
            store.create_approval(uuid.uuid4().hex[:16], plan_id, plan.incident_id,
                                  clock() + self.ctx.cfg.approval_ttl)
            state = store.plan_state(plan_id)
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
        plan = self._record(approval_id, plan_id, decision, approver, via)
        self.ctx.store.audit(f"plan_{decision}", plan_id, plan.incident_id, actor=approver,
                             via=via)
        self.ctx.timeline(plan.incident_id, f"plan {plan_id} {decision} by {approver} ({via})",
                          plan_id=plan_id, actor=approver)
        if decision == "denied":
            return self._deny(plan_id, approver)
        return self._approve(plan, approver, via)

    def _record(self, approval_id: str, plan_id: str, decision: str, approver: str, via: str
                ) -> Plan:
        """The first decision wins (one Lua script); a late or expired one is refused, audited."""
        store = self.ctx.store
        result, who = store.decide(approval_id, decision, approver, via)
        plan = store.plan(plan_id)
        assert plan is not None
        if result == "expired":
            store.audit("approval_refused", plan_id, plan.incident_id, actor=approver,
                        reason="expired", via=via)
            raise ApprovalRefused("expired", "this approval has expired; nothing was done")
        if result != "ok":
            store.audit("approval_refused", plan_id, plan.incident_id, actor=approver,
                        reason=f"already {result}", via=via)
            raise ApprovalRefused("used", f"this approval was already used: plan {result} by "
                                          f"{who or '?'}")
        return plan

    def _deny(self, plan_id: str, approver: str) -> str:
        store = self.ctx.store
        status = store.plan_state(plan_id).get("status")
        if status in (rs.AWAITING, rs.BLOCKED):
            store.set_status(plan_id, rs.DENIED, f"denied by {approver}")
        else:  # auto steps may already run; only the held ones are dropped
            store.set_status(plan_id, status or rs.EXECUTING,
                             f"approval part denied by {approver}", approved="denied")
            self.ctx.send(RUN_TASK, [plan_id], 0)  # skip the held steps and finish the rest
            self.ctx.start_chunks(plan_id)
        return rs.DENIED

    def _approve(self, plan: Plan, approver: str, via: str) -> str:
        store, plan_id = self.ctx.store, plan.plan_id
        was = store.plan_state(plan_id).get("status")
        # Approving a plan the storm guard blocked is a person overriding that guard knowingly;
        # any other approval still meets the storm guard before each action.
        store.set_status(plan_id, rs.EXECUTING, f"approved by {approver} ({via})",
                         approved="yes", approved_by=approver,
                         storm_override="yes" if was == rs.BLOCKED else "no")
        self.ctx.incidents.set_state(plan.incident_id, "remediating",
                                     f"plan {plan_id} approved by {approver}")
        self.ctx.send(RUN_TASK, [plan_id], 0)
        self.ctx.start_chunks(plan_id)
        return rs.EXECUTING
