"""Incidents in Redis: the repository. It keeps; it does not decide.

Keys (all under the key prefix): `inc:<id>` JSON incident, `inc:<id>:timeline` list,
`inc:<id>:escalated` set, `inc:all` zset (created_at), `inc:open` zset (open ids), `inc:index`
hash (object key or `hostname:<name>` → open incident id), `inc:labels` hash (open id → labels
JSON, for inhibition), `inc:vms-on-host:<host>` set, `inc:maintenance` hash (host name → since),
`inc:own-host-state` hash (host id → oneha's own disable/refresh), `inc:healthy-poll` hash (VM
key → LAST_POLL of the latest look that found it healthy: a late hook's older snapshot is stale,
`correlation.is_stale`), `grp:<gid>` hash (`state`
JSON, `touched`), `grp:<gid>:members` set, `due` zset (`group|<gid>`,
`esc|<incident>|<route>|<level>` and `silence|<id>` (its end) → due time), `outbox` zset,
`silences` hash, `plan-req:<incident>` (a planning request's coalescing marker).

Every change runs in `transact(attempt)`: one optimistic transaction (WATCH … MULTI/EXEC,
retried on conflict) in which `attempt(tx)` reads through `Tx` (which watches what it reads),
then writes through `Tx` (queued after MULTI) — so two workers never lose each other's writes.
Effects go through an *outbox*: the task to send is written in the same transaction as the
state change, sent right after commit, then removed; `resend_stale_outbox` re-sends what a
crashed worker left there. What to decide and in which order is `gateway/flows/incident.py`'s.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any, Callable, Iterable, TypeVar

import redis

from gateway.adapters.store.incident_tx import Tx, own_mark_holds, task_message
from gateway.domain import muting
from gateway.domain.incidents import Incident, TimelineEntry
from gateway.errors import Transient
from gateway.runtime import Runtime

log = logging.getLogger("oneha.incidents")

PLAN_REMEDIATION_TASK = "oneha.plan_remediation"
OUTBOX_STALE_AFTER = 30.0  # seconds an effect may sit in the outbox before it is re-sent
# A planning request runs PLAN_COALESCE seconds after it is sent and reads the incident then, so
# it covers every object that joined while its marker (half as long) lived; 200 VMs joining a
# host incident within half a second ask once, and an object joining later asks again.
PLAN_COALESCE = 0.5
MAX_TRIES = 200  # optimistic transaction retries before giving up (Transient: Celery retries)

Send = Callable[..., Any]
T = TypeVar("T")

__all__ = ["IncidentStore", "Tx", "task_message", "OUTBOX_STALE_AFTER", "PLAN_COALESCE"]


class IncidentStore:
    def __init__(self, runtime: Runtime, send: Send | None = None):
        self.rt = runtime
        self.r: redis.Redis = runtime.redis
        self.settings = runtime.settings
        self._send = send

    # -- keys -----------------------------------------------------------------------------
    def k(self, *parts: object) -> str:
        return self.rt.key(*parts)

    def doc(self, incident_id: str) -> str:
        return self.k("inc", incident_id)

    def tl(self, incident_id: str) -> str:
        return self.k("inc", incident_id, "timeline")

    def grp(self, gid: str) -> str:
        return self.k("grp", gid)

    def members(self, gid: str) -> str:
        return self.k("grp", gid, "members")

    def vms_on(self, host: str) -> str:
        return self.k("inc", "vms-on-host", host)

    @property
    def index(self) -> str:
        return self.k("inc", "index")

    # -- reading --------------------------------------------------------------------------
    def get(self, incident_id: str) -> Incident | None:
        raw = self.r.get(self.doc(incident_id))
        return Incident.from_dict(json.loads(raw)) if raw else None

    def timeline(self, incident_id: str, limit: int = 1000) -> list[TimelineEntry]:
        raw = self.r.lrange(self.tl(incident_id), -limit, -1)
        return [TimelineEntry.from_dict(json.loads(x)) for x in raw]

    def list(self, open_only: bool = True, limit: int = 100) -> list[Incident]:
        """Newest first."""
        ids = self.r.zrevrange(self.k("inc", "open" if open_only else "all"), 0, limit - 1)
        docs = self.r.mget([self.doc(i.decode()) for i in ids]) if ids else []
        return [Incident.from_dict(json.loads(d)) for d in docs if d]

    def counts(self) -> dict[str, int]:
        """`open` incidents, and `outbox`: effects (deliveries, plans) not yet handed to the queue
        (the next flush resends them; one that stays means the queue cannot be written)."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.zcard(self.k("inc", "open"))
            pipe.zcard(self.k("outbox"))
            open_, outbox = pipe.execute()
        return {"open": open_, "outbox": outbox}

    def open_for(self, object_key: str) -> Incident | None:
        """The open incident holding `object_key` (its own, or its host's that it joined)."""
        iid = self.r.hget(self.index, object_key)
        return self.get(iid.decode()) if iid else None

    def due_members(self, now: float, limit: int) -> list[tuple[str, float]]:
        """`(member, due time)` of what is due at `now`, earliest first."""
        return [(m.decode(), at) for m, at in self.r.zrangebyscore(
            self.k("due"), "-inf", now, start=0, num=limit, withscores=True)]

    def drop_due(self, *members: str) -> None:
        if members:
            self.r.zrem(self.k("due"), *members)

    def wake_all_groups(self, now: float) -> None:
        due = self.k("due")
        members = [m for m in self.r.zrange(due, 0, -1) if m.startswith(b"group|")]
        if members:
            self.r.zadd(due, {m: now for m in members}, lt=True)

    # -- changing: one optimistic transaction ------------------------------------------------
    def transact(self, attempt: Callable[[Tx], T], what: str, now: float | None = None) -> T:
        """Run `attempt(tx)` until it commits without a conflicting write; then hand over what
        it put in the outbox. `what` names the change in the error after MAX_TRIES conflicts;
        `now` is the transaction's time (default: the runtime's clock at each attempt)."""
        for _ in range(MAX_TRIES):
            with self.r.pipeline() as pipe:
                try:
                    tx = Tx(self, pipe, self.rt.clock() if now is None else now)
                    result = attempt(tx)
                    if tx.aborted:
                        pipe.reset()
                        return result
                    tx.commit()
                except redis.WatchError:
                    continue
            self.drain(tx.outbox)
            return result
        raise Transient(f"{what}: gave up after {MAX_TRIES} write conflicts")

    def add_timeline(self, incident_id: str, entry: TimelineEntry) -> None:
        if not self.r.exists(self.doc(incident_id)):
            raise KeyError(f"no incident {incident_id}")
        self.r.rpush(self.tl(incident_id), json.dumps(entry.to_dict(), separators=(",", ":")))

    # -- outbox ----------------------------------------------------------------------------
    def drain(self, outbox: list[str]) -> list[str]:
        """Send the effects a committed transaction wrote; remove each once it is handed over."""
        if self._send is None or not outbox:
            return []
        sent = []
        for m in outbox:
            task = json.loads(m)
            if task["task"] == PLAN_REMEDIATION_TASK:
                marker = self.k("plan-req", task["args"][0])
                if not self.r.exists(marker):
                    self._send(task["task"], args=task["args"], countdown=PLAN_COALESCE)
                    # After the hand-over: a crash before it leaves the entry for a re-send.
                    self.r.set(marker, "1", px=int(PLAN_COALESCE * 500))
                    sent.append(task["task"])
            else:
                self._send(task["task"], args=task["args"])
                sent.append(task["task"])
            self.r.zrem(self.k("outbox"), m)
        return sent

    def resend_stale_outbox(self, now: float) -> int:
        """Effects a worker committed but died before handing over (receivers are idempotent)."""
        stale = self.r.zrangebyscore(self.k("outbox"), "-inf", now - OUTBOX_STALE_AFTER)
        return len(self.drain([m.decode() for m in stale]))

    def send_now(self, name: str, countdown: float | None = None) -> None:
        """A wake-up that needs no transaction (a repeat is harmless): e.g. flush the due set."""
        if self._send is not None:
            self._send(name, args=[], countdown=countdown)

    # -- oneha's own actions on hosts ------------------------------------------------------
    def note_own_action(self, host_id: int | str, action: str, plan_id: str,
                        ttl: float | None = None) -> None:
        """oneha is about to disable (or offline, to refresh) this host: the state it leaves the
        host in is oneha's doing, never an operator's maintenance — until the host is healthy
        again, or for `ttl` seconds. Written before the call, because OpenNebula's hook for the
        new state may arrive before the call returns."""
        now = self.rt.clock()
        self.r.hset(self.k("inc", "own-host-state"), str(host_id), json.dumps(
            {"action": action, "plan_id": plan_id, "at": now,
             "until": None if ttl is None else now + ttl}))

    def own_actions(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """Host id → oneha's last action on it, for hosts oneha left DISABLED or OFFLINE."""
        now = self.rt.clock() if now is None else now
        marks = {k.decode(): json.loads(v)
                 for k, v in self.r.hgetall(self.k("inc", "own-host-state")).items()}
        return {k: m for k, m in marks.items() if own_mark_holds(m, now)}

    def forget_own_actions(self, host_ids: Iterable[str]) -> None:
        """The hosts are healthy (or an operator took them over): their state is not oneha's."""
        ids = list(host_ids)
        if ids:
            self.r.hdel(self.k("inc", "own-host-state"), *ids)

    def purge_resolved(self, older_than: float, limit: int = 500) -> list[str]:
        """Forget incidents resolved before `older_than` — document, timeline, escalations — so
        Redis keeps `incidents.retention` of history, not all of it. Open ones are never touched;
        a group still naming a purged incident skips it (flush reads members with `if d`)."""
        candidates = [x.decode() for x in self.r.zrangebyscore(self.k("inc", "all"), "-inf",
                                                               older_than)]
        gone: list[str] = []
        for iid in candidates:
            if len(gone) >= limit:
                break
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(self.doc(iid))
                    raw = pipe.get(self.doc(iid))
                    inc = Incident.from_dict(json.loads(raw)) if raw else None
                    if inc is not None and (inc.is_open or
                                            (inc.resolved_at or inc.updated_at) >= older_than):
                        pipe.reset()
                        continue
                    pipe.multi()
                    pipe.delete(self.doc(iid), self.tl(iid), self.k("inc", iid, "escalated"))
                    pipe.zrem(self.k("inc", "all"), iid)
                    pipe.execute()
                    gone.append(iid)
                except redis.WatchError:
                    continue  # changed meanwhile: look again at the next purge
        return gone

    def purge_expired_silences(self, older_than: float) -> list[str]:
        """Forget silences that ended before `older_than` (every flush reads them all). Ids of
        the forgotten; a silence edited meanwhile is kept (HDEL only if the value is unchanged)."""
        gone = []
        for sid, raw in self.r.hgetall(self.k("silences")).items():
            if muting.Silence.from_dict(json.loads(raw)).ends_at < older_than and \
                    self.r.eval(_HDEL_IF_SAME, 1, self.k("silences"), sid, raw):
                gone.append(sid.decode())
        return sorted(gone)

    # -- silences ---------------------------------------------------------------------------
    def silences(self, client=None) -> list[muting.Silence]:
        client = client or self.r
        return [muting.Silence.from_dict(json.loads(v))
                for v in client.hgetall(self.k("silences")).values()]

    def add_silence(self, matchers: list[str], ends_at: float, author: str, comment: str,
                    starts_at: float | None = None) -> muting.Silence:
        """Raises muting.SilenceError with the field at fault."""
        now = self.rt.clock()
        s = muting.new_silence(matchers, now if starts_at is None else starts_at, ends_at, author,
                               comment, now)
        with self.r.pipeline() as pipe:  # the silence and its end's wake-up, or neither
            pipe.hset(self.k("silences"), s.id, json.dumps(s.to_dict()))
            pipe.zadd(self.k("due"), {f"silence|{s.id}": s.ends_at})
            pipe.execute()
        return s

    def list_silences(self, include_expired: bool = False) -> list[muting.Silence]:
        now = self.rt.clock()
        out = [s for s in self.silences() if include_expired or s.state(now) != "expired"]
        return sorted(out, key=lambda s: s.created_at)

    def get_silence(self, silence_id: str) -> muting.Silence | None:
        raw = self.r.hget(self.k("silences"), silence_id)
        return muting.Silence.from_dict(json.loads(raw)) if raw else None

    def expire_silence(self, silence_id: str, actor: str) -> muting.Silence:
        """End a silence now; what it muted is looked at by the next flush. KeyError if none."""
        s = self.get_silence(silence_id)
        if s is None:
            raise KeyError(f"no silence {silence_id}")
        now = self.rt.clock()
        if s.ends_at > now:
            s = replace(s, ends_at=now, starts_at=min(s.starts_at, now), expired_by=actor)
            with self.r.pipeline() as pipe:
                pipe.hset(self.k("silences"), s.id, json.dumps(s.to_dict()))
                pipe.zrem(self.k("due"), f"silence|{s.id}")
                pipe.execute()
            self.wake_all_groups(now)
        return s




_HDEL_IF_SAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
