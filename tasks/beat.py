"""One scheduler for every periodic task, safe to run on several machines at once.

Each task module may expose `PERIODIC`: a dict `{"oneha.task": seconds}` or a function
`settings -> dict` (for intervals from the configuration). `Beat` ticks; at each interval slot of a
task (slot = floor(Redis time / interval)) it asks Redis to claim that slot — an atomic,
forward-only move (`ScheduleStore.claim_slot`) — and only the claimer sends the task. So with any
number of `oneha beat` instances each task is sent once per interval, and when one instance dies
the others go on sending without a hand-over. A message no worker picked up within its interval
(at least `MIN_EXPIRES`) expires rather than piling up behind a stopped worker.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
from typing import Callable

from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from gateway.adapters.store.schedule import ScheduleStore
from gateway.config import Settings
from gateway.errors import Transient
from gateway.runtime import Runtime

log = logging.getLogger("oneha.beat")

Send = Callable[[str, float], object]  # (task name, expires in seconds)
MAX_SLEEP = 1.0  # seconds between ticks at most, so a stop is noticed quickly


def collect_periodic(settings: Settings, modules: list[str] | None = None) -> dict[str, float]:
    """`{task name: interval}` from the `PERIODIC` of every task module."""
    if modules is None:
        from tasks.app import TASK_MODULES
        modules = TASK_MODULES
    periodic: dict[str, float] = {}
    for name in modules:
        declared = getattr(importlib.import_module(name), "PERIODIC", None)
        if declared is None:
            continue
        entries = declared(settings) if callable(declared) else declared
        for task, seconds in entries.items():
            if not seconds or seconds <= 0:
                raise ValueError(f"{name}.PERIODIC[{task!r}] must be a positive number of seconds")
            periodic[task] = float(seconds)
    return periodic


class Beat:
    def __init__(self, runtime: Runtime, periodic: dict[str, float], send: Send,
                 beat_id: str | None = None):
        self.periodic = dict(periodic)
        self.send = send
        self.beat_id = beat_id or f"{socket.gethostname()}:{os.getpid()}"
        self.store = ScheduleStore.of(runtime)
        self._last_slot: dict[str, int] = {}

    def tick(self, now: float | None = None) -> list[str]:
        """Send every task whose new slot this beat claims; the names sent."""
        now = self.store.now() if now is None else now
        sent = []
        for task, interval in sorted(self.periodic.items()):
            slot = int(now // interval)
            if slot <= self._last_slot.get(task, -1):
                continue  # this beat already tried this slot (claimed or lost it)
            self._last_slot[task] = slot
            if self.store.claim_slot(task, slot, self.beat_id, now):
                self.send(task, interval)
                sent.append(task)
                log.debug("beat_sent task=%s slot=%s beat=%s", task, slot, self.beat_id)
        return sent

    def seconds_to_next(self, now: float) -> float:
        if not self.periodic:
            return MAX_SLEEP
        due = min(((now // i) + 1) * i - now for i in self.periodic.values())
        return max(0.01, min(MAX_SLEEP, due))

    def run(self, stop: threading.Event) -> None:
        log.info("beat_started beat=%s tasks=%s", self.beat_id,
                 ", ".join(f"{t}/{i:g}s" for t, i in sorted(self.periodic.items())))
        while not stop.is_set():
            try:
                now = self.store.now()
                self.tick(now)
                wait = self.seconds_to_next(self.store.now())
            except (Transient, OperationalError, RedisError, OSError) as exc:
                # Redis (claims or broker) away: nobody can claim a slot, so nothing runs twice;
                # a slot claimed but not sent is skipped, the next one runs. Try again soon.
                log.warning("beat_tick_failed beat=%s reason=%s", self.beat_id, exc)
                wait = MAX_SLEEP
            stop.wait(wait)
        log.info("beat_stopped beat=%s", self.beat_id)


MIN_EXPIRES = 5.0  # a busy worker may take a moment to pick a short-interval task up


def celery_sender(app) -> Send:
    def send(task: str, interval: float) -> None:
        # Expire rather than pile up behind a stopped worker; a late run is harmless (it looks
        # at the state now), so short intervals get a few seconds of slack.
        app.send_task(task, expires=max(MIN_EXPIRES, interval))
    return send
