"""What the Raft monitor remembers between polls, in Redis.

Keys (under the prefix):
  raft:memory     hash   previous_leader, last_leader, elections, known_servers (JSON values),
                         polls (how many polls were saved)
  raft:episodes   hash   object id -> JSON `Episode` (a problem being reported)
  raft:snapshot   string JSON of the last poll (servers, leader, findings) for the UI and CLI
"""

from __future__ import annotations

import json
from dataclasses import asdict


from gateway.domain.raft import Assessment, Episode, LeaderMark, RaftMemory, normalize_endpoint
from gateway.runtime import Runtime

from . import unavailable_is_transient


class RaftStore:
    def __init__(self, runtime: Runtime):
        self._redis = runtime.redis
        self._memory = runtime.key("raft", "memory")
        self._episodes = runtime.key("raft", "episodes")
        self._snapshot = runtime.key("raft", "snapshot")

    @classmethod
    def of(cls, runtime: Runtime) -> "RaftStore":
        return runtime.cached("raft_store", lambda: cls(runtime))

    def load(self) -> tuple[RaftMemory, dict[str, Episode]]:
        with unavailable_is_transient("cannot read the Raft monitor's memory"):
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._memory)
                pipe.hgetall(self._episodes)
                raw_memory, raw_episodes = pipe.execute()
        m = {k.decode(): json.loads(v) for k, v in raw_memory.items()}
        memory = RaftMemory(
            previous_leader=_mark(m.get("previous_leader")),
            last_leader=_mark(m.get("last_leader")),
            elections=tuple(m.get("elections") or ()),
            known_servers={k: (v[0], v[1]) for k, v in (m.get("known_servers") or {}).items()},
        )
        episodes = {k.decode(): Episode(**json.loads(v)) for k, v in raw_episodes.items()}
        return memory, episodes

    def save_episodes(self, episodes: dict[str, Episode]) -> None:
        if episodes:
            self._write(lambda p: p.hset(self._episodes, mapping={
                k: json.dumps(asdict(e)) for k, e in episodes.items()}))

    def forget_episodes(self, object_ids: list[str]) -> None:
        if object_ids:
            self._write(lambda p: p.hdel(self._episodes, *object_ids))

    def save_poll(self, assessment: Assessment, memory: RaftMemory, now: float) -> None:
        """Remember the leader, elections and server names; publish the snapshot."""
        known = dict(memory.known_servers)
        for v in assessment.servers:
            if v.server_id is not None:
                known[normalize_endpoint(v.endpoint)] = (v.server_id, v.name)
        last = assessment.new_leader or memory.last_leader
        fields = {
            "previous_leader": json.dumps(asdict(assessment.new_leader)
                                          if assessment.new_leader else None),
            "last_leader": json.dumps(asdict(last) if last else None),
            "elections": json.dumps(list(assessment.elections)),
            "known_servers": json.dumps(known),
        }
        snapshot = json.dumps(snapshot_of(assessment, now))

        def write(pipe):
            pipe.hset(self._memory, mapping=fields)
            pipe.hincrby(self._memory, "polls", 1)
            pipe.set(self._snapshot, snapshot)
        self._write(write)

    def snapshot(self) -> dict | None:
        """The last poll as `snapshot_of` wrote it, or None before the first poll."""
        with unavailable_is_transient("cannot read the Raft snapshot"):
            raw = self._redis.get(self._snapshot)
        return json.loads(raw) if raw else None

    def polls(self) -> int:
        with unavailable_is_transient("cannot read the Raft monitor's memory"):
            return int(self._redis.hget(self._memory, "polls") or 0)

    def _write(self, fill) -> None:
        with unavailable_is_transient("cannot write the Raft monitor's memory"):
            with self._redis.pipeline(transaction=True) as pipe:
                fill(pipe)
                pipe.execute()


def snapshot_of(a: Assessment, now: float) -> dict:
    """A JSON-able picture of one poll: what `oneha raft` and the web console show."""
    return {
        "at": now,
        "leader": a.leader.server_id if a.leader else None,
        "servers": [
            {"endpoint": v.endpoint, "id": v.server_id, "name": v.name, "state": v.state_name,
             "term": v.status.term if v.status else None,
             "log_index": v.status.log_index if v.status else None,
             "commit": v.status.commit if v.status else None, "lag": v.lag, "error": v.error}
            for v in a.servers],
        "findings": [{"object_id": f.object_id, "condition": f.condition, "severity": f.severity,
                      "summary": f.summary} for f in a.findings.values()],
    }


def _mark(raw: dict | None) -> LeaderMark | None:
    return LeaderMark(**raw) if raw else None
