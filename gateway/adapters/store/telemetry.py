"""What oneha did, counted in Redis so that every gateway's `/metrics` agrees whichever worker
did it: deliveries per receiver, remediation actions by outcome, the time from an incident's event
to the message that told a person, and when each front-end was last heard from.

Keys (under the prefix):
  metrics:oneha      hash  `sent:<receiver>`, `failed:<receiver>`, `action:<action>:<outcome>`
  metrics:latency    hash  `<transition>:le:<bound>` (cumulative), `<transition>:sum`,
                           `<transition>:count` — a Prometheus histogram kept by HINCRBY
  metrics:frontends  hash  `event:<front-end>` -> unix time of its last accepted event,
                           `seen:<front-end>` -> of its last accepted signed request (events,
                           heartbeats, drills); Redis' clock

A count is best effort: it never fails the work it counts (Redis away → the count is lost,
the delivery or action itself is retried by its own path).
"""

from __future__ import annotations

import logging

from gateway.runtime import Runtime

from . import UNAVAILABLE

log = logging.getLogger(__name__)

# Seconds from the event to the message: group_wait (30 s by default) is part of it.
LATENCY_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
LATENCY_TRANSITIONS = ("firing", "resolved")  # the ones whose event time the summary carries
ACTION_OUTCOMES = ("done", "failed", "skipped", "needs_human")  # a step's last word
_STEP_PREFIXES = {"fence": "fence", "disable": "disable_host", "refresh": "refresh_host"}

_SEEN_LUA = """
local now = redis.call('TIME')
local t = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
for i = 1, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], t) end
return 1
"""


def action_of_step(step_key: str) -> str:
    """The action of a plan step from its key (`vm:42:resched`, `fence:7`, `disable:7`)."""
    parts = step_key.split(":")
    return parts[-1] if parts[0] == "vm" else _STEP_PREFIXES.get(parts[0], parts[0])


class Telemetry:
    def __init__(self, runtime: Runtime):
        self._redis = runtime.redis
        self._counters = runtime.key("metrics", "oneha")
        self._latency = runtime.key("metrics", "latency")
        self._frontends = runtime.key("metrics", "frontends")
        self._seen = self._redis.register_script(_SEEN_LUA)

    @classmethod
    def of(cls, runtime: Runtime) -> "Telemetry":
        return runtime.cached("telemetry", lambda: cls(runtime))

    @classmethod
    def counters_key(cls, prefix: str) -> str:
        """For stores that add a count inside their own pipeline (remediation's `record`)."""
        return prefix + "metrics:oneha"

    # ---- writes -------------------------------------------------------------------------------

    def delivered(self, receiver: str, ok: bool, transition: str = "",
                  latency: float | None = None) -> None:
        """One attempt to one URL of `receiver`; `latency` (event → this send) when it was the
        message's first success."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hincrby(self._counters, f"{'sent' if ok else 'failed'}:{receiver}", 1)
        if ok and latency is not None and transition in LATENCY_TRANSITIONS:
            self._observe(pipe, transition, max(0.0, latency))
        self._run(pipe, "delivery")

    def frontend_seen(self, frontend: str, event: bool) -> None:
        """`frontend` signed a request the gateway accepted; `event`: it was an event."""
        fields = [f"seen:{frontend}", *([f"event:{frontend}"] if event else [])]
        try:
            self._seen(keys=[self._frontends], args=fields)
        except UNAVAILABLE as exc:
            log.warning("metrics_not_counted what=frontend_seen reason=%s", exc)

    def _observe(self, pipe, transition: str, seconds: float) -> None:
        for bound in LATENCY_BUCKETS:
            if seconds <= bound:
                pipe.hincrby(self._latency, f"{transition}:le:{bound:g}", 1)
        pipe.hincrbyfloat(self._latency, f"{transition}:sum", seconds)
        pipe.hincrby(self._latency, f"{transition}:count", 1)

    def _run(self, pipe, what: str) -> None:
        try:
            pipe.execute()
        except UNAVAILABLE as exc:
            log.warning("metrics_not_counted what=%s reason=%s", what, exc)

    # ---- reads (for /metrics) -----------------------------------------------------------------

    def snapshot(self) -> dict:
        """`{"counters": {field: int}, "latency": {transition: {"buckets": [(bound, n)], "sum",
        "count"}}, "frontends": {"event"|"seen": {name: unix time}}}`; raises what Redis raises (a 503)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self._counters)
        pipe.hgetall(self._latency)
        pipe.hgetall(self._frontends)
        counters, latency, frontends = pipe.execute()
        hist = {}
        raw = {k.decode(): v.decode() for k, v in latency.items()}
        for t in LATENCY_TRANSITIONS:
            hist[t] = {"buckets": [(b, int(raw.get(f"{t}:le:{b:g}", 0))) for b in LATENCY_BUCKETS],
                       "sum": float(raw.get(f"{t}:sum", 0)), "count": int(raw.get(f"{t}:count", 0))}
        fe: dict[str, dict[str, float]] = {"event": {}, "seen": {}}
        for k, v in frontends.items():
            kind, _, name = k.decode().partition(":")
            fe.setdefault(kind, {})[name] = float(v)
        return {"counters": {k.decode(): int(v) for k, v in counters.items()}, "latency": hist,
                "frontends": fe}


def latency_of(incident: dict, transition: str, now: float) -> float | None:
    """Seconds from the event a message tells of (the incident's start for [FIRING], its
    resolution for [RESOLVED]) to `now`; None for other transitions or without that time."""
    field = {"firing": "started_at", "resolved": "resolved_at"}.get(transition)
    at = incident.get(field) if field else None
    return now - float(at) if isinstance(at, (int, float)) else None
