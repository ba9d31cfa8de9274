"""Remediation tasks, thin: each builds the process's `Remediator` (gateway/flows/remediation/)
once and runs one pass; what the pass asks for next is sent as the next task.

Tasks: `oneha.plan_remediation(incident_id)` (enqueued by the incident store whenever an
incident is created or gains objects), `oneha.run_plan(plan_id, chunk=0)`,
`oneha.verify_plan(plan_id)`, `oneha.resume_plans()` (sent at every worker start).
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready

from gateway.errors import Transient
from gateway.flows.remediation import (PLAN_TASK, RESUME_TASK, RUN_TASK, VERIFY_TASK, Remediator,
                                       Wake, build_remediator)


def remediator(app=None) -> Remediator:
    """The process's Remediator (adapters built once per worker process)."""
    from celery import current_app

    from gateway.adapters.opennebula import OpenNebula
    from tasks.app import runtime
    rt = runtime()
    app = app or current_app
    return rt.cached("remediator", lambda: build_remediator(rt, app.send_task, OpenNebula.of(rt)))


def follow_args(wake: Wake, args: list) -> list:
    """The next task's arguments: a run keeps its chunk; verification is per plan."""
    return list(args) if wake.task == RUN_TASK else list(args[:1])


def _follow(wake: Wake | None, task_self) -> None:
    if wake is not None:
        task_self.app.send_task(wake.task, args=follow_args(wake, task_self.request.args),
                                countdown=wake.delay if wake.delay > 0 else None)


@shared_task(name=PLAN_TASK, bind=True, autoretry_for=(Transient,), retry_backoff=2,
             retry_backoff_max=60, max_retries=20)
def plan_remediation(self, incident_id: str) -> str | None:
    return remediator(self.app).plan(incident_id)


@shared_task(name=RUN_TASK, bind=True, autoretry_for=(Transient,), retry_backoff=1,
             retry_backoff_max=30, max_retries=50)
def run_plan(self, plan_id: str, chunk: int = 0) -> None:
    _follow(remediator(self.app).run(plan_id, chunk), self)


@shared_task(name=VERIFY_TASK, bind=True, autoretry_for=(Transient,), retry_backoff=1,
             retry_backoff_max=30, max_retries=50)
def verify_plan(self, plan_id: str) -> None:
    _follow(remediator(self.app).verify(plan_id), self)


@shared_task(name=RESUME_TASK, bind=True)
def resume_plans(self) -> list[str]:
    return remediator(self.app).resume_all()


@worker_ready.connect
def _resume_after_restart(sender=None, **_):
    # A worker that was SIGKILLed mid-plan left a lease and maybe a claim: pick the plans up as
    # soon as the lease lapses instead of waiting for the broker's visibility timeout.
    app = getattr(sender, "app", None)
    if app is not None:
        app.send_task(RESUME_TASK)
