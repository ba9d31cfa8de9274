"""A real `oneha worker` and its broker: Redis restarts under it and it carries on.

The worker must outlive its Redis: after a restart it reconnects, runs new tasks, and a task
that was running during the outage finishes without taking the worker down.
"""

from __future__ import annotations

import socket

import pytest

from gateway.adapters.store.workers import WorkerRegistry
from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from tests.support.worker import celery_client, test_config, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def silent_opennebula():
    """An XML-RPC endpoint that takes connections and never answers: a call to it hangs (a task
    stays in flight) until the socket is closed, which resets every pending connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server
    server.close()


def _alive_and(worker, text: str, count: int = 1):
    """A condition: `text` is in the worker's log `count` times — failing at once when the worker
    has exited or given up (Celery's "Unrecoverable error" is followed by a warm shutdown that
    waits for the running task: alive, but consuming nothing)."""
    def check():
        log = worker.log()
        if not worker.alive or "Unrecoverable error" in log:
            raise AssertionError(f"the worker gave up (exit code {worker.proc.returncode}):\n"
                                 f"{log[-4000:]}")
        return log.count(text) >= count
    return check


def _ran(worker, task_id: str):
    return _alive_and(worker, f"[{task_id}] succeeded")


def test_the_worker_carries_on_when_redis_restarts_under_a_running_task(
        own_redis, key_prefix, workers, silent_opennebula):
    port = silent_opennebula.getsockname()[1]
    config = test_config(key_prefix, redis_url=own_redis.url,
                         opennebula={"endpoints": [f"http://127.0.0.1:{port}/RPC2"],
                                     "timeout": 60, "retries": 0})
    worker = workers.start(config, concurrency=2)
    sender = celery_client(config)

    # A task in flight (acknowledged late, so unacked) while the other pool slot waits on BRPOP:
    # what a worker looks like in the middle of a remediation.
    stuck = sender.send_task("oneha.reconcile").id
    wait_until(_alive_and(worker, f"oneha.reconcile[{stuck}] received"), 30, what="task running")

    own_redis.stop()  # SIGTERM: redis-server shuts down as `redis-cli shutdown` does
    wait_until(_alive_and(worker, "Connection to broker lost"), 30, what="the loss noticed")
    wait_until(_alive_and(worker, "Cannot connect to"), 30, what="a reconnect attempt")
    own_redis.start()  # same port and, with AOF in deployment, the same queues
    wait_until(_alive_and(worker, "Connected to", 2), 60, what="the worker reconnected")

    after = sender.send_task("oneha.flush_due").id
    wait_until(_ran(worker, after), 60, what="a task sent after the restart ran")
    # This Redis kept nothing (no AOF): the worker reports itself alive again all the same.
    registry = WorkerRegistry(Runtime.from_settings(settings_from_dict(config, env={})))
    wait_until(registry.alive, 30, what="the worker reported alive after the restart")

    # The task that ran through the outage ends now (its OpenNebula call is reset): its late
    # acknowledgement goes to the old, closed broker connection — a connection error, logged,
    # not the end of the worker (the message comes back after the visibility timeout and every
    # task with effects claims them first).
    silent_opennebula.close()
    wait_until(_alive_and(worker, f"oneha.reconcile[{stuck}] ", 2), 30, what="the stuck task ended")
    last = sender.send_task("oneha.flush_due").id
    wait_until(_ran(worker, last), 60, what="the worker still runs tasks")
    assert worker.alive
