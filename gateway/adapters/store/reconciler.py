"""The reconciler's memory in Redis: since when it sees each failing object failing.

Keys (under the prefix):
  reconcile:marks  hash  object key -> JSON `FailureMark` (signature, since)
  reconcile:last   string JSON summary of the last pass (time, counts) for the CLI and UI
"""

from __future__ import annotations

import json
from dataclasses import asdict


from gateway.domain.reconcile import FailureMark
from gateway.errors import Transient
from gateway.runtime import Runtime

from . import UNAVAILABLE as _UNAVAILABLE


class ReconcilerStore:
    def __init__(self, runtime: Runtime):
        self._redis = runtime.redis
        self._marks = runtime.key("reconcile", "marks")
        self._last = runtime.key("reconcile", "last")

    @classmethod
    def of(cls, runtime: Runtime) -> "ReconcilerStore":
        return runtime.cached("reconciler_store", lambda: cls(runtime))

    def marks(self) -> dict[str, FailureMark]:
        try:
            raw = self._redis.hgetall(self._marks)
        except _UNAVAILABLE as exc:
            raise Transient(f"cannot read the reconciler's memory: {exc}") from exc
        return {k.decode(): FailureMark(**json.loads(v)) for k, v in raw.items()}

    def save_marks(self, marks: dict[str, FailureMark], forget: list[str]) -> None:
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                if marks:
                    pipe.hset(self._marks, mapping={k: json.dumps(asdict(m))
                                                    for k, m in marks.items()})
                if forget:
                    pipe.hdel(self._marks, *forget)
                pipe.execute()
        except _UNAVAILABLE as exc:
            raise Transient(f"cannot write the reconciler's memory: {exc}") from exc

    def save_last(self, summary: dict) -> None:
        try:
            self._redis.set(self._last, json.dumps(summary))
        except _UNAVAILABLE as exc:
            raise Transient(f"cannot write the reconciler's summary: {exc}") from exc

    def last(self) -> dict | None:
        try:
            raw = self._redis.get(self._last)
        except _UNAVAILABLE as exc:
            raise Transient(f"cannot read the reconciler's summary: {exc}") from exc
        return json.loads(raw) if raw else None
