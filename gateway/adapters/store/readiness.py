"""Readiness and drills in Redis: the last readiness report, each cluster's last answer, drill
results and every front-end's last heartbeat.

Keys (under the prefix):
  readiness:last      string  JSON of the last `readiness.Report` (CLI, console, metrics)
  readiness:clusters  hash    cluster key -> JSON {"survives": bool, "event_id": str, "since": t}
  drill:<id>          string  JSON of one drill: sent, then reached (by which front-end, when)
  drill:recent        list    the newest drill ids, newest first (capped)
  heartbeat:seen      hash    front-end -> JSON {"at": t, "sent_at": t, "spooled": n}
  heartbeat:badkey    hash    front-end -> JSON {"at": t, "count": n} (refused signatures)
  heartbeat:since     string  when the dead man's switch first looked (the clock of "never")
  alertpath:findings  hash    finding key -> JSON {"firing": bool, "episode": str}
"""

from __future__ import annotations

import json
from typing import Any

from redis.exceptions import WatchError

from gateway.runtime import Runtime

from . import unavailable_is_transient

DRILL_TTL = 7 * 86400  # a drill's record is kept a week
RECENT_DRILLS = 50


class ReadinessStore:
    def __init__(self, runtime: Runtime):
        self._redis = runtime.redis
        self._last = runtime.key("readiness", "last")
        self._clusters = runtime.key("readiness", "clusters")
        self._drill = runtime.key("drill")
        self._recent = runtime.key("drill", "recent")
        self._heartbeats = runtime.key("heartbeat", "seen")
        self._bad_keys = runtime.key("heartbeat", "badkey")
        self._since = runtime.key("heartbeat", "since")
        self._findings = runtime.key("alertpath", "findings")

    @classmethod
    def of(cls, runtime: Runtime) -> "ReadinessStore":
        return runtime.cached("readiness_store", lambda: cls(runtime))

    # ---- readiness ------------------------------------------------------------------------
    def save_report(self, report: dict[str, Any]) -> None:
        with unavailable_is_transient("cannot write the readiness report"):
            self._redis.set(self._last, json.dumps(report))

    def report(self) -> dict[str, Any] | None:
        with unavailable_is_transient("cannot read the readiness report"):
            raw = self._redis.get(self._last)
        return json.loads(raw) if raw else None

    def cluster_answers(self) -> dict[str, dict[str, Any]]:
        with unavailable_is_transient("cannot read the readiness answers"):
            raw = self._redis.hgetall(self._clusters)
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def save_cluster_answers(self, answers: dict[str, dict[str, Any]]) -> None:
        if not answers:
            return
        with unavailable_is_transient("cannot write the readiness answers"):
            self._redis.hset(self._clusters, mapping={k: json.dumps(v)
                                                      for k, v in answers.items()})

    # ---- drills ---------------------------------------------------------------------------
    def save_drill(self, drill_id: str, record: dict[str, Any]) -> None:
        with unavailable_is_transient("cannot write the drill"):
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(f"{self._drill}:{drill_id}", json.dumps(record), ex=DRILL_TTL)
                pipe.lrem(self._recent, 0, drill_id)
                pipe.lpush(self._recent, drill_id)
                pipe.ltrim(self._recent, 0, RECENT_DRILLS - 1)
                pipe.execute()

    def update_drill(self, drill_id: str, record: dict[str, Any]) -> None:
        """Rewrite a drill's record (not its place among the recent ones)."""
        with unavailable_is_transient("cannot write the drill"):
            self._redis.set(f"{self._drill}:{drill_id}", json.dumps(record), keepttl=True)

    def mark_reached(self, drill_id: str, reached: dict[str, Any]) -> dict[str, Any] | None:
        """Record that the drill came back through the hook path (the first arrival counts);
        None when no drill of that id was sent (or it expired)."""
        key = f"{self._drill}:{drill_id}"
        with unavailable_is_transient("cannot write the drill"):
            with self._redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        pipe.watch(key)
                        raw = pipe.get(key)
                        if raw is None:
                            pipe.unwatch()
                            return None
                        record = json.loads(raw)
                        if record.get("reached_at"):
                            pipe.unwatch()
                            return record
                        record.update(reached)
                        pipe.multi()
                        pipe.set(key, json.dumps(record), keepttl=True)
                        pipe.execute()
                        return record
                    except WatchError:  # written meanwhile (a second copy arrived): read again
                        continue

    def drill(self, drill_id: str) -> dict[str, Any] | None:
        with unavailable_is_transient("cannot read the drill"):
            raw = self._redis.get(f"{self._drill}:{drill_id}")
        return json.loads(raw) if raw else None

    def recent_drills(self, limit: int = 10) -> list[dict[str, Any]]:
        with unavailable_is_transient("cannot read the drills"):
            ids = [i.decode() for i in self._redis.lrange(self._recent, 0, limit - 1)]
            raws = self._redis.mget([f"{self._drill}:{i}" for i in ids]) if ids else []
        return [json.loads(r) for r in raws if r]

    # ---- heartbeats -----------------------------------------------------------------------
    def save_heartbeat(self, frontend: str, seen: dict[str, Any]) -> None:
        with unavailable_is_transient("cannot record the heartbeat"):
            self._redis.hset(self._heartbeats, frontend, json.dumps(seen))

    def heartbeats(self) -> dict[str, dict[str, Any]]:
        with unavailable_is_transient("cannot read the heartbeats"):
            raw = self._redis.hgetall(self._heartbeats)
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def note_bad_key(self, frontend: str, now: float) -> None:
        """A request signed as `frontend` (a configured one) whose signature no key matches."""
        with unavailable_is_transient("cannot record the refused signature"):
            raw = self._redis.hget(self._bad_keys, frontend)
            count = json.loads(raw).get("count", 0) if raw else 0
            self._redis.hset(self._bad_keys, frontend, json.dumps({"at": now, "count": count + 1}))

    def bad_keys(self) -> dict[str, dict[str, Any]]:
        with unavailable_is_transient("cannot read the refused signatures"):
            raw = self._redis.hgetall(self._bad_keys)
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def watch_started(self, now: float) -> float:
        """When the switch first looked: a front-end never heard from is silent since then."""
        with unavailable_is_transient("cannot read the switch's start"):
            self._redis.set(self._since, repr(now), nx=True)
            return float(self._redis.get(self._since))

    # ---- the dead man's switch's findings -------------------------------------------------
    def findings(self) -> dict[str, dict[str, Any]]:
        with unavailable_is_transient("cannot read the alert path findings"):
            raw = self._redis.hgetall(self._findings)
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def save_findings(self, findings: dict[str, dict[str, Any]]) -> None:
        if not findings:
            return
        with unavailable_is_transient("cannot write the alert path findings"):
            self._redis.hset(self._findings, mapping={k: json.dumps(v)
                                                      for k, v in findings.items()})
