"""`oneha.readiness_check` and `oneha.drill_check`: knowing before it fails (run by the beat).

Both are thin: the flows (`gateway/flows/readiness.py`, `gateway/flows/drills.py`) read, decide
and record their findings through the `EventStore`, so incidents open and resolve on the normal
path. Neither retries: the next tick is the retry (and a stale tick expires, tasks/beat.py).
"""

from __future__ import annotations

import logging

from celery import shared_task

from gateway.adapters.store import redis_cause
from gateway.errors import Permanent, Transient
from gateway.flows.drills import DRILL_CHECK_TASK, DrillFlow
from gateway.flows.readiness import READINESS_TASK, ReadinessFlow

log = logging.getLogger("oneha.readiness")


def PERIODIC(settings) -> dict[str, float]:  # noqa: N802 - the beat's convention
    periodic = {}
    enabled = settings.readiness.enabled
    if settings.reconciler.enabled if enabled is None else enabled:
        periodic[READINESS_TASK] = settings.readiness.interval
    d = settings.drills
    if d.enabled or (d.heartbeats != "off" and settings.ingest.frontends):
        periodic[DRILL_CHECK_TASK] = d.check_interval or min(d.heartbeat_interval, d.interval)
    return periodic


@shared_task(name=READINESS_TASK, acks_late=True)
def readiness_check() -> dict:
    from tasks.app import runtime
    try:
        checked = ReadinessFlow(runtime()).check()
    except (Transient, Permanent) as exc:
        if redis_cause(exc) is not None:
            raise
        # OpenNebula away or refusing: the last report stays (its age is on /metrics); the
        # next tick tries again. No answer is not a "no": nothing is opened or resolved.
        log.warning("readiness_skipped reason=%s", exc)
        return {"skipped": f"OpenNebula could not be read: {exc}"}
    if checked.skipped:
        return {"skipped": checked.skipped}
    report = checked.report
    result = {"clusters": {c.label: {"n+1": c.survives_one, "n+2": c.survives_two}
                           for c in report.clusters},
              "raised": [f"{e.object_key} {e.status}" for e in checked.raised]}
    log.info("readiness_checked %s", result)
    return result


@shared_task(name=DRILL_CHECK_TASK, acks_late=True)
def drill_check() -> dict:
    from tasks.app import runtime
    switched = DrillFlow(runtime()).check()
    result = {"skipped": switched.skipped,
              "firing": [f.key for f in switched.findings if f.firing],
              "raised": [f"{e.object_key} {e.status}" for e in switched.raised],
              "drill": switched.sent.drill_id if switched.sent else None}
    log.info("drill_checked %s", result)
    return result
