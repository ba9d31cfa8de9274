"""`oneha.deliver(notification_json, urls=None)`: tell one receiver about one incident transition.
Thin: the flow is `gateway/flows/delivery.py`; this task parses, runs one round, and schedules
the follow-up run it asks for (failed URLs' backoff, or waiting for the message before it).
"""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from celery.signals import worker_init

from gateway.adapters.notifier import Notifier
from gateway.domain import messages
from gateway.domain.notifications import Notification
from gateway.errors import Transient
from gateway.flows.delivery import deliver_round

log = logging.getLogger("oneha.notify")

DELIVER_TASK = "oneha.deliver"


@worker_init.connect
def warm_up(**_kwargs) -> None:
    """Once per worker, before the pool forks (its processes inherit it): the message templates
    compiled and the receivers' apprise plugins loaded. Measured: a pool process's first delivery
    took 1.35-1.5 s of a storm's 2.5 s per-host p99 (bench/alertmanager.py), the others 0.2 s."""
    from tasks.app import runtime
    settings = runtime().settings
    messages.compile_templates()
    Notifier.load_plugins([url for r in settings.receivers for url in r.urls])


@shared_task(name=DELIVER_TASK, acks_late=True,
             autoretry_for=(Transient, redis.exceptions.ConnectionError,
                            redis.exceptions.TimeoutError),
             retry_backoff=True, retry_backoff_max=60, max_retries=20)
def deliver(notification_json: str, urls: list[str] | None = None) -> dict:
    from tasks.app import runtime
    rt = runtime()
    try:
        n = Notification.from_json(notification_json)
    except (ValueError, TypeError) as exc:  # not retried: it would never pass; logged loudly
        log.error("notification_rejected reason=%s body=%.300s", exc, notification_json)
        return {"action": "rejected", "reason": f"not a Notification: {exc}"}
    rnd = deliver_round(rt, n, only=urls)
    if rnd.follow_up_in is not None:
        deliver.apply_async(args=[notification_json],
                            kwargs={"urls": rnd.follow_up_urls or urls},
                            countdown=rnd.follow_up_in)
    return rnd.as_dict()

