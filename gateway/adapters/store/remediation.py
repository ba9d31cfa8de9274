"""Remediation state in Redis: plans, per-step claims, per-VM locks, limits, approvals, pause,
audit. Only this module knows these key names (all under `<prefix>rem:`).

Exactly-once effects are built from two pieces (STYLE "claim before act"):
- `claim(plan, step, attempt)`: `SET NX` of the action's idempotency key — whoever sets it is the
  only one allowed to call OpenNebula for that attempt; the outcome is recorded after the call.
  A claim with no outcome (the worker died mid-call) is settled by re-reading the live VM, never
  by calling again blindly (see gateway/flows/remediation/actions.py).
- `vm_lock(vm)`: a short lease so two plans (two incidents) never act on one VM at once.
Rate and concurrency limits are Lua scripts (a sliding window and a leased semaphore), so any
number of workers share them.
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, Iterator

import redis

from gateway.domain.objects import Disk, HistoryRecord, Nic, VmInfo
from gateway.domain.remediation.plans import Plan

from .telemetry import ACTION_OUTCOMES, Telemetry, action_of_step

CLAIM_TTL = 30 * 86400  # longer than any plan lives: a claim must outlive retried messages
PLAN_TTL = 90 * 86400
AUDIT_MAXLEN = 100_000

# Plan statuses; terminal ones end the plan's life.
GRACE, AWAITING, BLOCKED, EXECUTING, VERIFYING = ("grace", "awaiting_approval", "blocked",
                                                  "executing", "verifying")
DONE, DENIED, CANCELLED, FAILED, OFF = "done", "denied", "cancelled", "failed", "off"
TERMINAL = frozenset({DONE, DENIED, CANCELLED, FAILED, OFF})

_RATE_LUA = """
-- KEYS[1] window zset; ARGV now, window seconds, limit, member
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tostring(tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1]))}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return {1, '0'}
"""

_SLOT_LUA = """
-- KEYS[1] slots zset (member -> lease expiry); ARGV now, limit, member, lease seconds
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[4]), ARGV[3])
return 1
"""

_DECIDE_LUA = """
-- KEYS[1] approval hash; ARGV decision, by, at, via, now
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', ''} end
if status ~= 'pending' then
  return {status, redis.call('HGET', KEYS[1], 'decided_by') or ''}
end
if tonumber(redis.call('HGET', KEYS[1], 'expires_at')) <= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], 'status', 'expired')
  return {'expired', ''}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'decided_by', ARGV[2], 'decided_at', ARGV[3],
           'via', ARGV[4])
return {'ok', ARGV[2]}
"""

_CLAIM_LUA = """
-- KEYS[1] claim key, KEYS[2] plan steps hash; ARGV claim value, ttl, step key, outcome json
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def vm_to_dict(vm: VmInfo) -> dict[str, Any]:
    return asdict(vm)


def vm_from_dict(d: dict[str, Any]) -> VmInfo:
    d = dict(d)
    d["history"] = tuple(HistoryRecord(**h) for h in d.get("history") or ())
    d["disks"] = tuple(Disk(**x) for x in d.get("disks") or ())
    d["nics"] = tuple(Nic(**x) for x in d.get("nics") or ())
    return VmInfo(**d)


class RemediationStore:
    def __init__(self, client: redis.Redis, prefix: str, clock=time.time):
        self.r = client
        self.p = prefix + "rem:"
        self._metrics = Telemetry.counters_key(prefix)
        self.clock = clock
        self._rate = self.r.register_script(_RATE_LUA)
        self._slot = self.r.register_script(_SLOT_LUA)
        self._decide = self.r.register_script(_DECIDE_LUA)
        self._release = self.r.register_script(_RELEASE_LUA)
        self._claim = self.r.register_script(_CLAIM_LUA)

    @classmethod
    def from_runtime(cls, rt) -> "RemediationStore":
        return cls(rt.redis, rt.settings.key_prefix, rt.clock)

    def k(self, *parts: object) -> str:
        return self.p + ":".join(str(x) for x in parts)

    # ---- plans ------------------------------------------------------------------------------

    def save_plan(self, plan: Plan, status: str, reason: str, vms: dict[int, VmInfo]) -> bool:
        """Store a new plan with its VMs' state before any action (for the impact report).
        False if a plan with this id exists already (a retried planning task)."""
        if not self.r.set(self.k("plan", plan.plan_id), json.dumps(plan.to_dict()), nx=True,
                          ex=PLAN_TTL):
            return False
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.k("plan", plan.plan_id, "state"), mapping={
            "status": status, "reason": reason, "updated_at": self.clock(),
            "incident_id": plan.incident_id})
        if vms:
            pipe.hset(self.k("plan", plan.plan_id, "before"),
                      mapping={str(i): json.dumps(vm_to_dict(v)) for i, v in vms.items()})
        pipe.rpush(self.k("incident", plan.incident_id, "plans"), plan.plan_id)
        pipe.zadd(self.k("plans"), {plan.plan_id: plan.created_at})
        for key in ("state", "before"):
            pipe.expire(self.k("plan", plan.plan_id, key), PLAN_TTL)
        pipe.execute()
        return True

    def plan(self, plan_id: str) -> Plan | None:
        raw = self.r.get(self.k("plan", plan_id))
        return Plan.from_dict(json.loads(raw)) if raw else None

    def plan_state(self, plan_id: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in
                self.r.hgetall(self.k("plan", plan_id, "state")).items()}

    def set_status(self, plan_id: str, status: str, reason: str = "", **extra: Any) -> None:
        self.r.hset(self.k("plan", plan_id, "state"),
                    mapping={"status": status, "reason": reason, "updated_at": self.clock(),
                             **{k: str(v) for k, v in extra.items()}})

    def set_status_if(self, plan_id: str, expected: tuple[str, ...], status: str,
                      reason: str = "", **extra: Any) -> bool:
        """Compare-and-set of the plan status (two workers may race to start or finish it)."""
        key = self.k("plan", plan_id, "state")
        with self.r.pipeline() as pipe:
            try:
                pipe.watch(key)
                current = pipe.hget(key, "status")
                if current is None or current.decode() not in expected:
                    pipe.unwatch()
                    return False
                pipe.multi()
                pipe.hset(key, mapping={"status": status, "reason": reason,
                                        "updated_at": self.clock(),
                                        **{k: str(v) for k, v in extra.items()}})
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def plan_ids(self, incident_id: str) -> list[str]:
        return [x.decode() for x in self.r.lrange(self.k("incident", incident_id, "plans"), 0, -1)]

    def recent_plans(self, limit: int = 50) -> list[str]:
        return [x.decode() for x in self.r.zrevrange(self.k("plans"), 0, limit - 1)]

    def before(self, plan_id: str) -> dict[int, VmInfo]:
        raw = self.r.hgetall(self.k("plan", plan_id, "before"))
        return {int(k): vm_from_dict(json.loads(v)) for k, v in raw.items()}

    def save_impact(self, plan_id: str, rows: list[dict]) -> None:
        self.r.set(self.k("plan", plan_id, "impact"), json.dumps(rows), ex=PLAN_TTL)

    def impact(self, plan_id: str) -> list[dict]:
        raw = self.r.get(self.k("plan", plan_id, "impact"))
        return json.loads(raw) if raw else []

    @contextmanager
    def planning_lock(self, incident_id: str, ttl: float = 60.0) -> Iterator[bool]:
        """One planner per incident at a time (events of one incident arrive in bursts)."""
        with self._lease(self.k("planning", incident_id), ttl) as got:
            yield got

    # ---- per-step claims and outcomes ---------------------------------------------------------

    def claim(self, plan_id: str, step_key: str, attempt: int, by: str,
              previous: dict[str, Any] | None = None, detail: str = "") -> dict[str, Any] | None:
        """Claim one attempt of an action and mark the step `acting` in the same atomic step,
        so a claim never exists without its outcome record. None: someone claimed it before."""
        value = {**(previous or {}), "status": "acting", "detail": detail, "at": self.clock(),
                 "attempt": attempt, "by": by}
        ok = self._claim(keys=[self.k("claim", plan_id, step_key, attempt),
                               self.k("plan", plan_id, "steps")],
                         args=[json.dumps({"by": by, "at": self.clock()}), CLAIM_TTL, step_key,
                               json.dumps(value)])
        return value if int(ok) else None

    def outcome(self, plan_id: str, step_key: str) -> dict[str, Any] | None:
        raw = self.r.hget(self.k("plan", plan_id, "steps"), step_key)
        return json.loads(raw) if raw else None

    def outcomes(self, plan_id: str) -> dict[str, dict[str, Any]]:
        return {k.decode(): json.loads(v)
                for k, v in self.r.hgetall(self.k("plan", plan_id, "steps")).items()}

    def record(self, plan_id: str, step_key: str, status: str, detail: str = "",
               previous: dict[str, Any] | None = None, audit: dict[str, Any] | None = None,
               **extra: Any) -> dict[str, Any]:
        """status: acting | done | skipped | failed | retry_wait | running | needs_human.
        `previous` (the outcome the caller holds) saves a read; `audit` adds an audit entry in
        the same round trip."""
        if previous is None:
            previous = self.outcome(plan_id, step_key) or {}
        value = {**previous, **extra, "status": status, "detail": detail, "at": self.clock()}
        key = self.k("plan", plan_id, "steps")
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(key, step_key, json.dumps(value))
        pipe.expire(key, PLAN_TTL)
        if audit is not None:
            self._xadd(pipe, audit.pop("what"), plan_id, audit.pop("incident_id", ""),
                       audit.pop("actor", "oneha"), audit)
        if status in ACTION_OUTCOMES and previous.get("status") != status:  # /metrics
            pipe.hincrby(self._metrics, f"action:{action_of_step(step_key)}:{status}", 1)
        pipe.execute()
        return value

    # ---- locks, rate, concurrency, leases ---------------------------------------------------

    @contextmanager
    def vm_lock(self, vm_id: int, ttl: float = 30.0) -> Iterator[bool]:
        with self._lease(self.k("lock", "vm", vm_id), ttl) as got:
            yield got

    @contextmanager
    def _lease(self, key: str, ttl: float) -> Iterator[bool]:
        token = uuid.uuid4().hex
        got = bool(self.r.set(key, token, nx=True, px=int(ttl * 1000)))
        try:
            yield got
        finally:
            if got:
                self._release(keys=[key], args=[token])

    def note_refresh(self, host_id: int, ttl: float) -> float | None:
        """Refresh a host's monitoring once per cycle, whichever plan asks: None if this caller
        should do it, else when it was done."""
        key = self.k("refreshed", host_id)
        if self.r.set(key, self.clock(), nx=True, px=max(1, int(ttl * 1000))):
            return None
        raw = self.r.get(key)
        return float(raw) if raw else None

    def refreshed_at(self, host_id: int) -> float | None:
        """When oneha last refreshed the host's monitoring, if within the current window."""
        raw = self.r.get(self.k("refreshed", host_id))
        return float(raw) if raw else None

    def take_rate(self, limit: int, window: float = 60.0) -> float:
        """0 when an action may go now (and it is counted); else seconds to wait."""
        ok, wait = self._rate(keys=[self.k("rate")],
                              args=[self.clock(), window, limit, uuid.uuid4().hex])
        return 0.0 if int(ok) else max(0.01, float(wait))

    def take_slot(self, limit: int, lease: float = 60.0) -> str | None:
        """A concurrency slot (released by `release_slot`, or by lease expiry if we die)."""
        member = uuid.uuid4().hex
        if int(self._slot(keys=[self.k("slots")], args=[self.clock(), limit, member, lease])):
            return member
        return None

    def release_slot(self, member: str) -> None:
        self.r.zrem(self.k("slots"), member)

    def slots_in_use(self) -> int:
        self.r.zremrangebyscore(self.k("slots"), "-inf", self.clock())
        return int(self.r.zcard(self.k("slots")))

    def take_lease(self, plan_id: str, owner: str, ttl: float) -> bool:
        """The right to drive a plan; renewed while working, lapses when the worker dies."""
        key = self.k("lease", plan_id)
        if self.r.set(key, owner, nx=True, px=int(ttl * 1000)):
            return True
        if self.r.get(key) == owner.encode():
            self.r.pexpire(key, int(ttl * 1000))
            return True
        return False

    def drop_lease(self, plan_id: str, owner: str) -> None:
        self._release(keys=[self.k("lease", plan_id)], args=[owner])

    def lease_ttl(self, plan_id: str) -> float:
        ms = self.r.pttl(self.k("lease", plan_id))
        return max(0.0, ms / 1000.0) if ms and ms > 0 else 0.0

    # ---- approvals --------------------------------------------------------------------------

    def create_approval(self, approval_id: str, plan_id: str, incident_id: str,
                        expires_at: float) -> None:
        key = self.k("approval", approval_id)
        self.r.hset(key, mapping={"plan_id": plan_id, "incident_id": incident_id,
                                  "expires_at": expires_at, "status": "pending",
                                  "created_at": self.clock()})
        self.r.expire(key, PLAN_TTL)
        self.r.hset(self.k("plan", plan_id, "state"), "approval_id", approval_id)

    def approval(self, approval_id: str) -> dict[str, str] | None:
        raw = self.r.hgetall(self.k("approval", approval_id))
        return {k.decode(): v.decode() for k, v in raw.items()} or None

    def decide(self, approval_id: str, decision: str, by: str, via: str) -> tuple[str, str]:
        """Atomically record the first decision: ("ok", by) or (current status, who decided)."""
        status, who = self._decide(keys=[self.k("approval", approval_id)],
                                   args=[decision, by, self.clock(), via, self.clock()])
        return status.decode() if isinstance(status, bytes) else status, \
            who.decode() if isinstance(who, bytes) else who

    # ---- pause ------------------------------------------------------------------------------

    def pause(self, by: str, reason: str) -> None:
        self.r.hset(self.k("paused"), mapping={"by": by, "reason": reason, "at": self.clock()})

    def resume(self) -> bool:
        return bool(self.r.delete(self.k("paused")))

    def paused(self) -> dict[str, str] | None:
        raw = self.r.hgetall(self.k("paused"))
        return {k.decode(): v.decode() for k, v in raw.items()} or None

    # ---- audit ------------------------------------------------------------------------------

    def audit(self, what: str, plan_id: str = "", incident_id: str = "", actor: str = "oneha",
              **data: Any) -> None:
        self._xadd(self.r, what, plan_id, incident_id, actor, data)

    def _xadd(self, client, what: str, plan_id: str, incident_id: str, actor: str,
              data: dict[str, Any]) -> None:
        client.xadd(self.k("audit"), {"t": repr(self.clock()), "what": what, "plan": plan_id,
                                      "incident": incident_id, "actor": actor,
                                      "data": json.dumps(data, default=str, sort_keys=True)},
                    maxlen=AUDIT_MAXLEN, approximate=True)

    def audit_log(self, count: int = 100, plan_id: str | None = None) -> list[dict[str, Any]]:
        rows = []
        for entry_id, fields in self.r.xrevrange(self.k("audit"), count=count * (10 if plan_id else 1)):
            row = {k.decode(): v.decode() for k, v in fields.items()}
            if plan_id and row.get("plan") != plan_id:
                continue
            row["id"] = entry_id.decode()
            row["data"] = json.loads(row.get("data") or "{}")
            row["t"] = float(row["t"])
            rows.append(row)
            if len(rows) >= count:
                break
        return list(reversed(rows))
