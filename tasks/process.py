"""`oneha.process_event(event_json)`: one recorded event -> its incident (created, joined,
updated or resolved), with the decision and its reason in the incident's timeline.

At-least-once safe: the store makes a replayed event a no-op (event ids are remembered per
incident and an incident's id derives from its first event), and every effect leaves through the
store's outbox to idempotent tasks. A first group of a storm also gets a delayed `oneha.flush_due`
so its message leaves right after group_wait even when the periodic beat is slower.
"""

from __future__ import annotations

import logging

import redis
from celery import current_app, shared_task

from gateway.flows.incident import IncidentFlow
from gateway.domain.events import Event
from gateway.errors import Transient

log = logging.getLogger("oneha.process")

PROCESS_EVENT_TASK = "oneha.process_event"
FLUSH_DUE_TASK = "oneha.flush_due"
# Celery's Redis transport redelivers a delayed message unacknowledged longer than its visibility
# timeout (120 s, tasks/app.py); longer waits are left to the periodic flush.
MAX_FAST_PATH_WAIT = 90.0


def flow_of(rt) -> IncidentFlow:
    return IncidentFlow(rt, send=current_app.send_task)


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
    for gid, due in applied.new_groups:
        wait = max(0.0, due - rt.clock())
        if wait <= MAX_FAST_PATH_WAIT:
            current_app.send_task(FLUSH_DUE_TASK, countdown=wait + 0.05)
    d = applied.decision
    log.info("event_processed event=%s object=%s action=%s incident=%s reason=%s",
             event.event_id, event.object_key, d.action, d.incident_id, d.reason)
    return {"action": d.action, "incident_id": d.incident_id, "reason": d.reason}
