"""The simulator's clock: callbacks run at their due time on one thread, under the cloud's lock."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from typing import Callable


class Timers:
    """One thread running callbacks at their due time, under the cloud's lock."""

    def __init__(self, lock: threading.RLock):
        self._cond = threading.Condition(lock)
        self._heap: list[tuple[float, int, Callable, tuple]] = []
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sim-timers", daemon=True)
        self.errors: list[BaseException] = []

    def start(self) -> None:
        self._thread.start()

    def call_later(self, delay: float, fn: Callable, *args) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), fn, args))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                due = self._heap[0][0] - time.monotonic()
                if due > 0:
                    self._cond.wait(due)
                    continue
                _, _, fn, args = heapq.heappop(self._heap)
                try:
                    fn(*args)
                except Exception as exc:  # a simulator bug must be visible, not kill the clock
                    self.errors.append(exc)
                    traceback.print_exc()
