"""Claims that make periodic work happen once: one beat per tick, one run at a time.

Keys (under the prefix):
  beat:slots    hash  task name -> the last interval slot claimed (floor(redis time / interval))
  beat:claims   hash  task name -> "<beat id> <time>" of that claim (for `oneha beat --status`)
  run:<name>    string a running periodic task's token (SET NX PX; released by its owner only)
  run:stats     hash  "<name>:ran" / "<name>:overlapped" counters (runs, and runs skipped because
                      the previous one was still going: a hint that the interval is too short)

Every beat instance ticks; for each due task it asks Redis to move the task's slot forward. The
move is atomic and only forward, so of N beats exactly one sends the task for a slot, whatever
their start times. Slots are computed from Redis' clock, not the beats' own, so skewed machines
agree on where an interval starts.
"""

from __future__ import annotations

import uuid


from gateway.runtime import Runtime

from . import unavailable_is_transient

CLAIM_SLOT_LUA = """
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > last then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  return 1
end
return 0
"""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ScheduleStore:
    def __init__(self, runtime: Runtime):
        self._rt = runtime
        self._redis = runtime.redis
        self._slots = runtime.key("beat", "slots")
        self._claims = runtime.key("beat", "claims")
        self._claim = self._redis.register_script(CLAIM_SLOT_LUA)
        self._release = self._redis.register_script(RELEASE_LUA)

    @classmethod
    def of(cls, runtime: Runtime) -> "ScheduleStore":
        return runtime.cached("schedule_store", lambda: cls(runtime))

    def now(self) -> float:
        """Redis' clock: the one every beat instance agrees on."""
        with unavailable_is_transient("cannot read Redis' clock"):
            seconds, micros = self._redis.time()
        return seconds + micros / 1e6

    def claim_slot(self, task: str, slot: int, beat_id: str, at: float) -> bool:
        """True for exactly one caller per (task, slot); never for a slot older than the last."""
        with unavailable_is_transient(f"cannot claim {task} slot {slot}"):
            return bool(self._claim(keys=[self._slots, self._claims],
                                    args=[task, slot, f"{beat_id} {at:.3f}"]))

    def claims(self) -> dict[str, tuple[int, str]]:
        """task -> (last slot, "<beat id> <time>")."""
        with unavailable_is_transient("cannot read beat claims"):
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._slots)
                pipe.hgetall(self._claims)
                slots, claims = pipe.execute()
        return {k.decode(): (int(v), claims.get(k, b"").decode()) for k, v in slots.items()}

    def acquire_run(self, name: str, ttl: float) -> str | None:
        """A token when no other run of `name` holds the lock (it expires after `ttl` seconds
        in case its holder dies); None when one is running."""
        token = uuid.uuid4().hex
        with unavailable_is_transient(f"cannot lock {name}"):
            ok = self._redis.set(self._rt.key("run", name), token, nx=True,
                                 px=max(1, int(ttl * 1000)))
            self._redis.hincrby(self._rt.key("run", "stats"),
                                f"{name}:{'ran' if ok else 'overlapped'}", 1)
        return token if ok else None

    def run_stats(self) -> dict[str, int]:
        """`{"oneha.raft_check:ran": 12, "oneha.raft_check:overlapped": 0, ...}`."""
        with unavailable_is_transient("cannot read run counters"):
            raw = self._redis.hgetall(self._rt.key("run", "stats"))
        return {k.decode(): int(v) for k, v in raw.items()}

    def release_run(self, name: str, token: str) -> None:
        # Should Redis be away, the lock expires by itself; the next run only waits for its TTL.
        with unavailable_is_transient(f"cannot unlock {name}"):
            self._release(keys=[self._rt.key("run", name)], args=[token])
