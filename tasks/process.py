"""Recorded events -> their incidents (created, joined, updated or resolved), with each decision
and its reason in the incident's timeline.

`oneha.apply_pending`: the gateway queues one when events wait and no wake-up is outstanding;
the beat sends one every few seconds in case a wake-up was lost with its worker. It drains the
pending stream in batches (`gateway/flows/applier.py`).
`oneha.process_event(event_json)`: one event per task, as gateways older than this worker queue
them; also how a test hands the flow one event.

At-least-once safe: the store makes a replayed event a no-op (event ids are remembered per
incident and an incident's id derives from its first event), and every effect leaves through the
store's outbox to idempotent tasks. A new group also gets a delayed `oneha.flush_due`, so its
message leaves at the end of its group_wait, not at the beat's next tick.
"""

from __future__ import annotations

import logging

import redis
from celery import current_app, shared_task

from gateway.flows.applier import Applier
from gateway.flows.incident import IncidentFlow
from gateway.domain.events import Event
from gateway.errors import Transient

log = logging.getLogger("oneha.process")

PROCESS_EVENT_TASK = "oneha.process_event"
APPLY_PENDING_TASK = "oneha.apply_pending"
FLUSH_DUE_TASK = "oneha.flush_due"
PERIODIC = {APPLY_PENDING_TASK: 2.0}
# Celery's Redis transport redelivers a delayed message unacknowledged longer than its visibility
# timeout (120 s, tasks/app.py); longer waits are left to the periodic flush.
MAX_FAST_PATH_WAIT = 90.0


def flow_of(rt) -> IncidentFlow:
    return IncidentFlow(rt, send=current_app.send_task)


def wake_groups_at(rt):
    def wake(due: float) -> None:
        wait = max(0.0, due - rt.clock())
        if wait <= MAX_FAST_PATH_WAIT:
            current_app.send_task(FLUSH_DUE_TASK, countdown=wait + 0.01)
    return wake


@shared_task(name=APPLY_PENDING_TASK, acks_late=True,
             autoretry_for=(Transient, redis.exceptions.ConnectionError,
                            redis.exceptions.TimeoutError),
             retry_backoff=True, retry_backoff_max=10, max_retries=5)
def apply_pending(why: str = "") -> dict:
    from tasks.app import runtime
    rt = runtime()
    drained = Applier(flow_of(rt), wake_groups_at(rt)).drain()
    if drained.applied or drained.failed:
        log.info("events_applied", extra={"applied": drained.applied, "batches": drained.batches,
                                          "failed": drained.failed, "actions": drained.actions})
    return {"applied": drained.applied, "batches": drained.batches, "failed": drained.failed,
            "busy": drained.busy}


@shared_task(name=PROCESS_EVENT_TASK, acks_late=True,
             autoretry_for=(Transient, redis.exceptions.ConnectionError,
                            redis.exceptions.TimeoutError),
             retry_backoff=True, retry_backoff_max=30, max_retries=20)
def process_event(event_json: str) -> dict:
    from tasks.app import runtime
    rt = runtime()
    try:
        event = Event.from_json(event_json)
    except (ValueError, TypeError) as exc:  # a bad message is not retried: it would never pass
        log.error("event_rejected reason=%s body=%.200s", exc, event_json)
        return {"action": "rejected", "reason": f"not an Event: {exc}"}
    applied = flow_of(rt).apply_event(event)
    wake = wake_groups_at(rt)
    for _gid, due in applied.new_groups:
        wake(due)
    d = applied.decision
    log.info("event_processed event=%s object=%s action=%s incident=%s reason=%s",
             event.event_id, event.object_key, d.action, d.incident_id, d.reason)
    return {"action": d.action, "incident_id": d.incident_id, "reason": d.reason}
