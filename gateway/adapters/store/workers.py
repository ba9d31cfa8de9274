"""Which workers are alive: each running worker reports itself every `REPORT_EVERY` seconds; one
not heard from for `ALIVE_FOR` seconds is gone (killed, hung, or cut off from Redis).

Key (under the prefix):
  workers:seen   sorted set  worker name (`oneha<pid>@<host>`) -> Redis time of its last report

Times are Redis' clock, so workers and gateways on machines whose clocks differ agree. Read by
`/readyz` (the names) and `/metrics` (`oneha_workers_alive`): events are recorded and queued
with no worker at all, so without this a lone worker that died would fail silently.
"""

from __future__ import annotations

from gateway.runtime import Runtime

from . import unavailable_is_transient

REPORT_EVERY = 5.0  # seconds between a worker's reports
ALIVE_FOR = 15.0  # seconds a report counts: three missed reports and the worker is gone

REPORT_LUA = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
redis.call('ZADD', KEYS[1], t, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - tonumber(ARGV[2]))
return 1
"""

ALIVE_LUA = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
return redis.call('ZRANGEBYSCORE', KEYS[1], t - tonumber(ARGV[1]), '+inf')
"""


class WorkerRegistry:
    def __init__(self, runtime: Runtime):
        self._redis = runtime.redis
        self._key = runtime.key("workers", "seen")
        self._report = self._redis.register_script(REPORT_LUA)
        self._alive = self._redis.register_script(ALIVE_LUA)

    @classmethod
    def of(cls, runtime: Runtime) -> "WorkerRegistry":
        return runtime.cached("worker_registry", lambda: cls(runtime))

    def report(self, name: str) -> None:
        """`name` is alive now (and reports of workers long gone are dropped)."""
        with unavailable_is_transient(f"cannot report worker {name}"):
            self._report(keys=[self._key], args=[name, ALIVE_FOR * 4])

    def gone(self, name: str) -> None:
        """`name` stopped on purpose: it is not alive from now on."""
        with unavailable_is_transient(f"cannot remove worker {name}"):
            self._redis.zrem(self._key, name)

    def alive(self) -> list[str]:
        """Names of the workers that reported in the last `ALIVE_FOR` seconds, sorted."""
        with unavailable_is_transient("cannot read the workers"):
            names = self._alive(keys=[self._key], args=[ALIVE_FOR])
        return sorted(n.decode() for n in names)
