"""The reconciler's memory in Redis: since when it sees each failing object failing.

Keys (under the prefix):
  reconcile:marks  hash  object key -> JSON `FailureMark` (signature, since)
  reconcile:last   string JSON summary of the last pass (time, counts) for the CLI and UI
"""

from __future__ import annotations

import json
from dataclasses import asdict


from gateway.domain.reconcile import FailureMark
from gateway.runtime import Runtime

from . import unavailable_is_transient


class ReconcilerStore:
    def __init__(self, runtime: Runtime):
        self._redis = runtime.redis
        self._marks = runtime.key("reconcile", "marks")
        self._last = runtime.key("reconcile", "last")

    @classmethod
    def of(cls, runtime: Runtime) -> "ReconcilerStore":
        return runtime.cached("reconciler_store", lambda: cls(runtime))

    def marks(self) -> dict[str, FailureMark]:
        with unavailable_is_transient("cannot read the reconciler's memory"):
            raw = self._redis.hgetall(self._marks)
        return {k.decode(): FailureMark(**json.loads(v)) for k, v in raw.items()}

    def save_marks(self, marks: dict[str, FailureMark], forget: list[str]) -> None:
        with unavailable_is_transient("cannot write the reconciler's memory"):
            with self._redis.pipeline(transaction=True) as pipe:
                if marks:
                    pipe.hset(self._marks, mapping={k: json.dumps(asdict(m))
                                                    for k, m in marks.items()})
                if forget:
                    pipe.hdel(self._marks, *forget)
                pipe.execute()

    def save_last(self, summary: dict) -> None:
        with unavailable_is_transient("cannot write the reconciler's summary"):
            self._redis.set(self._last, json.dumps(summary))

    def last(self) -> dict | None:
        with unavailable_is_transient("cannot read the reconciler's summary"):
            raw = self._redis.get(self._last)
        return json.loads(raw) if raw else None
