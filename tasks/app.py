"""The Celery app, built from Settings. Tasks are thin: they call the domain and the adapters."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from gateway.config import Settings, load_settings
from gateway.redis_urls import is_sentinel, parse_sentinel
from gateway.runtime import Runtime

from .heartbeat import Heartbeat

TASK_MODULES = ["tasks.process", "tasks.notify", "tasks.remediate", "tasks.monitor",
                "tasks.housekeeping", "tasks.readiness"]


def create_celery(settings: Settings, runtime: Runtime | None = None) -> Celery:
    """A Celery app for workers and for senders; `runtime` shares a process's Redis client."""
    broker, transport, options = broker_of(settings.redis_url)
    app = Celery("oneha", broker=broker, include=TASK_MODULES)
    app.conf.update(
        task_acks_late=True,  # every task with effects claims its effect in Redis first
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for Redis as long as it takes
        broker_transport=transport,  # survives a Redis restart or failover (see tasks/broker.py)
        task_default_queue=settings.task_queue,
        # Deliveries and group flushes get a queue of their own, consumed by every worker: a hook
        # storm of hundreds of events must not hold the one grouped message behind it.
        task_queues=[Queue(settings.task_queue, routing_key=settings.task_queue),
                     Queue(settings.notify_queue, routing_key=settings.notify_queue)],
        task_routes={name: {"queue": settings.notify_queue, "routing_key": settings.notify_queue}
                     for name in ("oneha.deliver", "oneha.flush_due")},
        # A whole-worker SIGKILL leaves acked-late messages in `unacked`: restore them quickly
        # (kombu defaults would wait an hour), longer than the longest task we run.
        broker_transport_options={"visibility_timeout": 120, "unacked_restore_throttle": 1,
                                  **options},
        worker_hijack_root_logger=False,
    )
    app.steps["consumer"].add(Heartbeat)  # a worker reports itself alive while it consumes
    app.oneha_runtime = runtime or Runtime.from_settings(settings)  # type: ignore[attr-defined]
    return app


def broker_of(redis_url: str) -> tuple[str, str, dict]:
    """(broker URL, kombu transport, its extra options) for oneha's Redis URL: a Sentinel URL
    becomes kombu's `sentinel://host:port/db;sentinel://...` with the primary's name as an option.
    """
    if not is_sentinel(redis_url):
        return redis_url, "tasks.broker:Transport", {}
    where = parse_sentinel(redis_url)
    return (where.kombu_broker(), "tasks.broker:SentinelTransport",
            {"master_name": where.master,
             "sentinel_kwargs": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}})


_celery: Celery | None = None


def get_celery() -> Celery:
    """The process's Celery app (created from $ONEHA_CONFIG on first use: `celery -A tasks.app`)."""
    global _celery
    if _celery is None:
        _celery = create_celery(load_settings())
        _celery.set_default()
    return _celery


def runtime() -> Runtime:
    from celery import current_app
    rt = getattr(current_app, "oneha_runtime", None)
    if rt is None:
        rt = get_celery().oneha_runtime  # type: ignore[attr-defined]
    return rt
