"""`oneha.flush_due`: send what is due — group messages (group_wait / group_interval /
repeat_interval), escalations — and re-send effects a crashed worker left in the outbox.

Due times live in a Redis ZSET, so restarting a worker or the beat loses nothing; two runs at once
double nothing (each group is flushed in one optimistic transaction and notification ids are
deterministic). The beat (tasks/beat.py) runs it every `PERIODIC["oneha.flush_due"]` seconds;
`oneha.process_event` also schedules it right after a new group's group_wait.
"""

from __future__ import annotations

import logging

import redis
from celery import shared_task

from gateway.errors import Transient
from tasks.process import FLUSH_DUE_TASK, flow_of

log = logging.getLogger("oneha.housekeeping")

PURGE_TASK = "oneha.purge_incidents"
PERIODIC = {FLUSH_DUE_TASK: 1.0, PURGE_TASK: 3600.0}


@shared_task(name=FLUSH_DUE_TASK, acks_late=True,
             autoretry_for=(Transient, redis.exceptions.ConnectionError,
                            redis.exceptions.TimeoutError),
             retry_backoff=True, retry_backoff_max=10, max_retries=10)
def flush_due() -> dict:
    from tasks.app import runtime
    reports = flow_of(runtime()).flush_due()
    for r in reports:
        log.info("due_flushed member=%s sent=%s reason=%s notifications=%s", r.member, r.sent,
                 r.reason, ",".join(r.notifications))
    return {"flushed": len(reports), "sent": sum(1 for r in reports if r.sent)}


@shared_task(name=PURGE_TASK, acks_late=True,
             autoretry_for=(Transient, redis.exceptions.ConnectionError,
                            redis.exceptions.TimeoutError),
             retry_backoff=True, retry_backoff_max=60, max_retries=5)
def purge_incidents() -> dict:
    """Incidents resolved, and silences ended, longer than `incidents.retention` ago are
    forgotten (idempotent)."""
    from tasks.app import runtime
    rt = runtime()
    store = flow_of(rt).store
    before = rt.clock() - rt.settings.incidents.retention
    gone = store.purge_resolved(before)
    if gone:
        log.info("incidents_purged count=%d first=%s", len(gone), gone[0])
    silences = store.purge_expired_silences(before)
    if silences:
        log.info("silences_purged count=%d first=%s", len(silences), silences[0])
    return {"purged": len(gone), "silences_purged": len(silences)}
