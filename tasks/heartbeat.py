"""A worker reports that it is alive while it consumes (`WorkerRegistry`: `/readyz`, `/metrics`).

A step of Celery's consumer: it starts when the worker is connected and consuming, stops while
the worker is cut off from its broker (and so from Redis), and starts again when it reconnects.
A warm shutdown removes the worker at once; a killed or hung worker drops out after
`ALIVE_FOR` seconds without a report.
"""

from __future__ import annotations

import logging

from celery import bootsteps

from gateway.adapters.store.workers import REPORT_EVERY, WorkerRegistry
from gateway.errors import Transient

log = logging.getLogger("oneha.heartbeat")


class Heartbeat(bootsteps.StartStopStep):
    requires = ("celery.worker.consumer.tasks:Tasks",)  # after the task consumer is set up

    def __init__(self, c, **kwargs):
        self.tref = None
        super().__init__(c, **kwargs)

    def start(self, c) -> None:
        registry = WorkerRegistry.of(c.app.oneha_runtime)

        def report() -> None:
            try:
                registry.report(c.hostname)
            except Transient as exc:  # Redis away: the consumer is about to notice and reconnect
                log.warning("worker_report_failed worker=%s reason=%s", c.hostname, exc)

        report()
        self.tref = c.timer.call_repeatedly(REPORT_EVERY, report)

    def stop(self, c) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def shutdown(self, c) -> None:
        self.stop(c)
        try:
            WorkerRegistry.of(c.app.oneha_runtime).gone(c.hostname)
        except Transient as exc:
            log.warning("worker_report_failed worker=%s reason=%s", c.hostname, exc)
