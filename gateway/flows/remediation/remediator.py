"""`Remediator`: the one object callers hold — the Celery tasks, the approval views, the CLI and
the tests — wiring the stages over one `RemediationContext`; and `build_remediator`, which makes
one over a runtime's adapters."""

from __future__ import annotations

import time
from typing import Any, Callable

from gateway.adapters import fencing
from gateway.adapters.store.remediation import RemediationStore
from gateway.domain.approvals import Claims
from gateway.domain.remediation.plans import Plan

from .actions import Actions
from .approval import Approvals
from .context import RemediationContext, Send
from .execution import Executor
from .grace import Grace
from .planning import Planner
from .ports import IncidentPort, Wake
from .verification import Verifier


class Remediator:
    """plan → (grace, storm guard) → approval or policy → execute → verify → impact."""

    def __init__(self, settings, store: RemediationStore, one,
                 incidents: IncidentPort | None = None, send: Send | None = None,
                 clock: Callable[[], float] = time.time,
                 fencer: fencing.Fencer | None = None, worker_id: str | None = None):
        self.ctx = ctx = RemediationContext.build(settings, store, one, incidents, send, clock,
                                                  fencer, worker_id)
        self.planner = Planner(ctx)
        self.approvals = Approvals(ctx)
        self.actions = Actions(ctx, self.planner)
        self.verifier = Verifier(ctx, self.actions)
        self.executor = Executor(ctx, self.planner, Grace(ctx, self.planner, self.approvals),
                                 self.actions, self.verifier)

    # ---- what callers read (approval views and CLI: plans, pause, audit; live VMs) -------------

    @property
    def store(self) -> RemediationStore:
        return self.ctx.store

    @property
    def one(self):
        return self.ctx.one

    # ---- the flow -------------------------------------------------------------------------------

    def plan(self, incident_id: str) -> str | None:
        return self.planner.plan(incident_id)

    def run(self, plan_id: str, chunk: int = 0) -> Wake | None:
        return self.executor.run(plan_id, chunk)

    def verify(self, plan_id: str) -> Wake | None:
        return self.verifier.verify(plan_id)

    def resume_all(self) -> list[str]:
        return self.executor.resume_all()

    def impact(self, plan_id: str) -> list[dict]:
        return self.verifier.impact(plan_id)

    # ---- people's decisions ---------------------------------------------------------------------

    def check_token(self, token: str, incident_id: str | None = None) -> tuple[Claims, Plan]:
        return self.approvals.check_token(token, incident_id)

    def decide_by_token(self, token: str, decision: str, approver: str, via: str,
                        incident_id: str | None = None) -> str:
        return self.approvals.decide_by_token(token, decision, approver, via, incident_id)

    def decide_plan(self, plan_id: str, decision: str, approver: str, via: str = "cli") -> str:
        return self.approvals.decide_plan(plan_id, decision, approver, via)


def build_remediator(rt, send_task: Callable[..., Any], one=None) -> Remediator:
    """A Remediator over a runtime's adapters. `send_task(name, args=[...], countdown=None)` is
    the queue (Celery's `send_task`); `one` the OpenNebula client (None: decisions only — the
    CLI approves and pauses without calling OpenNebula)."""
    from gateway.adapters.store.events import EventStore
    from gateway.flows.incident import IncidentFlow

    def record(event) -> None:
        EventStore.of(rt).record_finding(event)

    incidents = IncidentPort(IncidentFlow(rt, send=send_task), rt.clock, record)

    def send(name: str, args: list, delay: float) -> None:
        send_task(name, args=args, countdown=delay if delay > 0 else None)

    return Remediator(rt.settings, RemediationStore.from_runtime(rt), one, incidents=incidents,
                      send=send, clock=rt.clock)
