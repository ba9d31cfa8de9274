"""Incidents, their timelines, aggregation groups, due times and silences in Redis.

`IncidentStore(runtime, send=None)` — `send(task_name, args=[...], countdown=None)` is how effects
leave (Celery's `send_task` in a worker; tests may pass a list's append). Every method that
changes something runs one optimistic transaction (WATCH … MULTI/EXEC, retried on conflict), so
two workers never lose each other's writes, and effects go through an *outbox*: the task to send
is written in the same transaction as the state change, sent right after, then removed;
`flush_due` re-sends what a crashed worker left there. Receivers of those tasks are idempotent
(`oneha.deliver` by `notification_id`, `oneha.plan_remediation` by incident); planning requests
of one incident are coalesced (one per PLAN_COALESCE seconds, sent with that countdown).

Public interface (other parts use these):
- `get(id)`, `timeline(id, limit)`, `list(open_only=True, limit)`, `open_for(object_key)`
- `apply_event(event, now=None) -> Applied` — the event path (`oneha.process_event`)
- `transition(id, to, reason, actor)` — acknowledged / remediating / resolved / firing; wakes
  the incident's groups so a resolve message follows
- `attach(id, reason, actor, plan_id=..., impact=...)` — remediation's plan id / impact report
- `add_timeline(id, TimelineEntry)`
- `flush_due(now=None)` — run every due group / escalation (`oneha.flush_due`)
- silences: `add_silence`, `list_silences`, `get_silence`, `expire_silence`,
  `purge_expired_silences`
- `routes_for(labels)` — the routes labels reach (`oneha routes test`)

Keys (all under the key prefix): `inc:<id>` JSON incident, `inc:<id>:timeline` list, `inc:<id>:escalated` set,
`inc:all` zset (created_at), `inc:open` zset (open ids), `inc:index` hash (object key or
`hostname:<name>` → open incident id), `inc:labels` hash (open id → labels JSON, for inhibition),
`inc:vms-on-host:<host>` set, `inc:maintenance` hash (host name → since), `grp:<gid>` hash
(`state` JSON, `touched`), `grp:<gid>:members` set, `due` zset (`group|<gid>`,
`esc|<incident>|<route>|<level>` and `silence|<id>` (its end) → due time), `outbox` zset,
`silences` hash.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

import redis

from gateway.domain import grouping, incidents as inc_mod, muting
from gateway.domain.events import Event
from gateway.domain.incidents import Incident, TimelineEntry
from gateway.domain.impact import merge_rows
from gateway.domain import composer as compose
from gateway.domain.routing import DEFAULT_INHIBIT_RULES, RouteMatch, match_routes
from gateway.errors import Transient
from gateway.runtime import Runtime

log = logging.getLogger("oneha.incidents")

DELIVER_TASK = "oneha.deliver"
PLAN_REMEDIATION_TASK = "oneha.plan_remediation"
OUTBOX_STALE_AFTER = 30.0  # seconds an effect may sit in the outbox before flush_due re-sends it
# A planning request runs PLAN_COALESCE seconds after it is sent and reads the incident then, so
# it covers every object that joined while its marker (half as long) lived; 200 VMs joining a
# host incident within half a second ask once, and an object joining later asks again.
PLAN_COALESCE = 0.5
FLUSH_DUE_TASK = "oneha.flush_due"
NOTICE_COALESCE = 0.2  # notices added within this time leave in one message
MAX_TRIES = 200  # optimistic transaction retries before giving up (Transient: Celery retries)

Send = Callable[..., Any]


@dataclass
class Applied:
    decision: inc_mod.Decision
    sent: list[str] = field(default_factory=list)  # tasks sent right away
    new_groups: list[tuple[str, float]] = field(default_factory=list)  # (gid, first due)


@dataclass
class FlushReport:
    member: str
    sent: bool
    reason: str
    notifications: list[str] = field(default_factory=list)


class IncidentStore:
    def __init__(self, runtime: Runtime, send: Send | None = None):
        self.rt = runtime
        self.r: redis.Redis = runtime.redis
        self.settings = runtime.settings
        self._send = send

    # -- keys -----------------------------------------------------------------------------
    def _k(self, *parts: object) -> str:
        return self.rt.key(*parts)

    def _doc(self, incident_id: str) -> str:
        return self._k("inc", incident_id)

    def _tl(self, incident_id: str) -> str:
        return self._k("inc", incident_id, "timeline")

    def _grp(self, gid: str) -> str:
        return self._k("grp", gid)

    def _members(self, gid: str) -> str:
        return self._k("grp", gid, "members")

    def _vms_on(self, host: str) -> str:
        return self._k("inc", "vms-on-host", host)

    @property
    def _index(self) -> str:
        return self._k("inc", "index")

    # -- reading --------------------------------------------------------------------------
    def get(self, incident_id: str) -> Incident | None:
        raw = self.r.get(self._doc(incident_id))
        return Incident.from_dict(json.loads(raw)) if raw else None

    def timeline(self, incident_id: str, limit: int = 1000) -> list[TimelineEntry]:
        raw = self.r.lrange(self._tl(incident_id), -limit, -1)
        return [TimelineEntry.from_dict(json.loads(x)) for x in raw]

    def list(self, open_only: bool = True, limit: int = 100) -> list[Incident]:
        """Newest first."""
        ids = self.r.zrevrange(self._k("inc", "open" if open_only else "all"), 0, limit - 1)
        docs = self.r.mget([self._doc(i.decode()) for i in ids]) if ids else []
        return [Incident.from_dict(json.loads(d)) for d in docs if d]

    def counts(self) -> dict[str, int]:
        """`open` incidents, and `outbox`: effects (deliveries, plans) not yet handed to the queue
        (the next flush resends them; one that stays means the queue cannot be written)."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.zcard(self._k("inc", "open"))
            pipe.zcard(self._k("outbox"))
            open_, outbox = pipe.execute()
        return {"open": open_, "outbox": outbox}

    def open_for(self, object_key: str) -> Incident | None:
        """The open incident holding `object_key` (its own, or its host's that it joined)."""
        iid = self.r.hget(self._index, object_key)
        return self.get(iid.decode()) if iid else None

    def routes_for(self, labels: dict[str, str]) -> list[RouteMatch]:
        return match_routes(self.settings.route, labels, [r.name for r in self.settings.receivers])

    @property
    def inhibit_rules(self):
        rules = self.settings.inhibit_rules
        return DEFAULT_INHIBIT_RULES if rules is None else tuple(rules)

    # -- the event path -------------------------------------------------------------------
    def apply_event(self, event: Event, now: float | None = None) -> Applied:
        labels = inc_mod.event_labels(event)
        host = labels.get("host", "")
        for _ in range(MAX_TRIES):
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(self._index, self._k("inc", "maintenance"))
                    t = self.rt.clock() if now is None else now
                    ctx = self._context(pipe, event, host, t)
                    outcome = inc_mod.decide(event, ctx, t, labels)
                    if outcome.decision.action == "duplicate":
                        pipe.reset()
                        return Applied(outcome.decision)
                    if outcome.save:
                        pipe.watch(*[self._doc(i.id) for i in outcome.save])
                    effects = self._write(pipe, outcome.save, outcome.timeline,
                                          outcome.plan_remediation, t, host,
                                          outcome.maintenance)
                    if outcome.forget_own_host_state:
                        pipe.hdel(self._k("inc", "own-host-state"), event.object_id)
                    pipe.execute()
                except redis.WatchError:
                    continue
            applied = Applied(outcome.decision, new_groups=effects.new_groups)
            applied.sent = self._drain(effects.outbox)
            return applied
        raise Transient(f"event {event.event_id} for {event.object_key}: gave up after "
                        f"{MAX_TRIES} write conflicts")

    def _context(self, pipe, event: Event, host: str, now: float) -> inc_mod.Context:
        def load(iid: bytes | None) -> Incident | None:
            if not iid:
                return None
            pipe.watch(self._doc(iid.decode()))
            raw = pipe.get(self._doc(iid.decode()))
            return Incident.from_dict(json.loads(raw)) if raw else None

        holding = load(pipe.hget(self._index, event.object_key))
        host_incident = None
        vm_incidents: tuple[Incident, ...] = ()
        if event.resource == "VM" and host:
            host_incident = load(pipe.hget(self._index, f"hostname:{host}"))
        if event.resource == "HOST" and host:
            pipe.watch(self._vms_on(host))
            vm_incidents = tuple(i for i in (load(x) for x in pipe.smembers(self._vms_on(host)))
                                 if i is not None)
        in_maintenance = bool(host) and pipe.hexists(self._k("inc", "maintenance"), host)
        own = ""
        if event.resource == "HOST":
            pipe.watch(self._k("inc", "own-host-state"))
            raw = pipe.hget(self._k("inc", "own-host-state"), event.object_id)
            mark = json.loads(raw) if raw else None
            own = mark.get("action", "oneha") if mark and _own_mark_holds(mark, now) else ""
        return inc_mod.Context(holding, host_incident, vm_incidents, bool(in_maintenance), own)

    @dataclass
    class _Effects:
        outbox: list[str] = field(default_factory=list)
        new_groups: list[tuple[str, float]] = field(default_factory=list)

    def _write(self, pipe, save: Iterable[Incident], timeline: dict[str, Iterable[TimelineEntry]],
               plan_remediation: Iterable[str], now: float, host: str = "",
               maintenance: bool | None = None) -> "_Effects":
        """Queue (in `pipe`, still watching) every write of a change; caller executes."""
        save = sorted(save, key=lambda i: i.is_open)  # resolved first: open ones re-claim keys
        groups = self._groups_of(pipe, save, now)
        effects = self._Effects()
        extra: dict[str, list[TimelineEntry]] = {}
        for iid in plan_remediation:
            effects.outbox.append(_task(PLAN_REMEDIATION_TASK, [iid]))
            extra.setdefault(iid, []).append(TimelineEntry(now, "remediation",
                                                           "remediation planning requested"))
        pipe.multi()
        for i in save:
            self._put(pipe, i, now)
        for iid, entries in timeline.items():
            self._push(pipe, iid, [*entries, *extra.pop(iid, [])])
        for iid, entries in extra.items():
            self._push(pipe, iid, entries)
        for gid, (state, members, is_new) in groups.items():
            if is_new:
                pipe.hset(self._grp(gid), "state", json.dumps(state.to_dict()))
                pipe.zadd(self._k("due"), {f"group|{gid}": state.first_due})
                effects.new_groups.append((gid, state.first_due))
            elif state.last_sent_at is None:
                pipe.zadd(self._k("due"), {f"group|{gid}": state.first_due}, lt=True)
            else:
                pipe.zadd(self._k("due"), {f"group|{gid}": now}, lt=True)
            pipe.hset(self._grp(gid), "touched", repr(now))
            pipe.sadd(self._members(gid), *members)
        for i in save:
            if i.version == 1 and i.is_open:  # a new incident: escalation clocks start
                for route in self.routes_for(i.labels):
                    if route.escalate_after is not None and route.escalate_to:
                        due = grouping.escalation_due(i.created_at, route.escalate_after, 0)
                        pipe.zadd(self._k("due"), {f"esc|{i.id}|{route.route_id}|0": due})
        if maintenance is True and host:
            pipe.hset(self._k("inc", "maintenance"), host, repr(now))
        elif maintenance is False and host:
            pipe.hdel(self._k("inc", "maintenance"), host)
        if effects.outbox:
            pipe.zadd(self._k("outbox"), {m: now for m in effects.outbox})
        return effects

    def _groups_of(self, pipe, save: Iterable[Incident], now: float
                   ) -> dict[str, tuple[grouping.GroupState, list[str], bool]]:
        """The groups the saved incidents belong to (read while watching, before MULTI)."""
        out: dict[str, tuple[grouping.GroupState, list[str], bool]] = {}
        for i in save:
            if i.merged_into:
                continue  # its host incident speaks for it
            for route in self.routes_for(i.labels):
                key = route.group_key(i.labels, i.id)
                gid = grouping.group_id_for(key)
                if gid in out:
                    out[gid][1].append(i.id)
                    continue
                pipe.watch(self._grp(gid))
                raw = pipe.hget(self._grp(gid), "state")
                if raw:
                    out[gid] = (grouping.GroupState.from_dict(json.loads(raw)), [i.id], False)
                elif i.is_open:
                    out[gid] = (grouping.GroupState.new(route, key, now), [i.id], True)
        return out

    def _put(self, pipe, i: Incident, now: float) -> None:
        pipe.set(self._doc(i.id), json.dumps(i.to_dict(), separators=(",", ":")))
        pipe.zadd(self._k("inc", "all"), {i.id: i.created_at})
        host = i.primary.host
        if i.is_open:
            pipe.zadd(self._k("inc", "open"), {i.id: i.created_at})
            pipe.hset(self._index, mapping={k: i.id for k in i.objects})
            if i.primary.resource == "HOST" and host:
                pipe.hset(self._index, f"hostname:{host}", i.id)
            if i.primary.resource == "VM" and host:
                pipe.sadd(self._vms_on(host), i.id)
            pipe.hset(self._k("inc", "labels"), i.id, json.dumps(i.labels))
        else:
            pipe.zrem(self._k("inc", "open"), i.id)
            pipe.hdel(self._k("inc", "labels"), i.id)
            if i.merged_into is None:
                pipe.hdel(self._index, *i.objects.keys())
                if i.primary.resource == "HOST" and host:
                    pipe.hdel(self._index, f"hostname:{host}")
            if i.primary.resource == "VM" and host:
                pipe.srem(self._vms_on(host), i.id)

    def _push(self, pipe, incident_id: str, entries: Iterable[TimelineEntry]) -> None:
        data = [json.dumps(e.to_dict(), separators=(",", ":")) for e in entries]
        if data:
            pipe.rpush(self._tl(incident_id), *data)

    # -- changes by people and remediation ---------------------------------------------------
    def update(self, incident_id: str, change: Callable[[Incident, float], tuple[Incident, list[TimelineEntry]]]
               ) -> Incident:
        """Apply `change(incident, now) -> (new incident, timeline entries)` atomically."""
        for _ in range(MAX_TRIES):
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(self._doc(incident_id), self._index)
                    raw = pipe.get(self._doc(incident_id))
                    if not raw:
                        raise KeyError(f"no incident {incident_id}")
                    now = self.rt.clock()
                    new, entries = change(Incident.from_dict(json.loads(raw)), now)
                    effects = self._write(pipe, [new], {incident_id: entries}, (), now)
                    pipe.execute()
                except redis.WatchError:
                    continue
            self._drain(effects.outbox)
            return new
        raise Transient(f"incident {incident_id}: gave up after {MAX_TRIES} write conflicts")

    def transition(self, incident_id: str, to: str, reason: str, actor: str) -> Incident:
        """Raises KeyError (no such incident) or incidents.TransitionError (not allowed)."""
        def change(i: Incident, now: float):
            new, entry = inc_mod.transition(i, to, reason, actor, now)
            return new, [entry]
        return self.update(incident_id, change)

    def attach(self, incident_id: str, reason: str, actor: str = "oneha",
               plan_id: str | None = None, impact: list[dict[str, Any]] | None = None) -> Incident:
        """Remediation: record a plan id and/or an impact report (shown with the resolve notice;
        a later report adds its VMs to the earlier ones)."""
        def change(i: Incident, now: float):
            changes: dict[str, Any] = {"updated_at": now, "version": i.version + 1}
            if plan_id is not None:
                changes["plan_id"] = plan_id
            if impact is not None:
                changes["impact"] = merge_rows(i.impact, impact)
            entries = [TimelineEntry(now, "remediation", reason, actor,
                                     {"plan_id": plan_id} if plan_id else {})] if reason else []
            return replace(i, **changes), entries
        return self.update(incident_id, change)

    def set_live_vms(self, incident_id: str, vms: list, impact: list[dict[str, Any]],
                     host_label: str = "") -> Incident:
        """Remediation's last look: each VM as it is now (and the impact report), so the resolve
        notice and the console show "RUNNING on node02", not the state it failed in."""
        def change(i: Incident, now: float):
            new = inc_mod.with_live_vms(i, vms, now, host_label)
            return replace(new, impact=merge_rows(i.impact, impact)), [
                TimelineEntry(now, "remediation", f"impact report: {len(impact)} VM(s)")]
        return self.update(incident_id, change)

    def add_notice(self, incident_id: str, kind: str, key: str, text: str,
                   approval_url: str = "", plan: list[dict[str, Any]] | None = None
                   ) -> Incident | None:
        """Keep something remediation must tell people on the incident (once per `key`); the
        incident's groups tell it after the alert. A VM incident merged into its host's tells it
        there. None when the incident is gone."""
        target = self.get(incident_id)
        if target is not None and target.merged_into:
            incident_id = target.merged_into
        added: list[bool] = []

        def change(i: Incident, now: float):
            new = i.with_notice(kind, key, text, now, approval_url, plan or ())
            added.append(new is not None)
            return (new or i), ([TimelineEntry(now, "remediation", text)] if new else [])
        try:
            inc = self.update(incident_id, change)
        except KeyError:
            return None
        if added and added[-1] and self._send is not None:
            # Told at once (the beat's next tick would do too, up to a second later).
            self._send(FLUSH_DUE_TASK, args=[], countdown=NOTICE_COALESCE)
        return inc

    # -- oneha's own actions on hosts ------------------------------------------------------
    def note_own_action(self, host_id: int | str, action: str, plan_id: str,
                        ttl: float | None = None) -> None:
        """oneha is about to disable (or offline, to refresh) this host: the state it leaves the
        host in is oneha's doing, never an operator's maintenance — until the host is healthy
        again, or for `ttl` seconds. Written before the call, because OpenNebula's hook for the
        new state may arrive before the call returns."""
        now = self.rt.clock()
        self.r.hset(self._k("inc", "own-host-state"), str(host_id), json.dumps(
            {"action": action, "plan_id": plan_id, "at": now,
             "until": None if ttl is None else now + ttl}))

    def own_actions(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """Host id → oneha's last action on it, for hosts oneha left DISABLED or OFFLINE."""
        now = self.rt.clock() if now is None else now
        marks = {k.decode(): json.loads(v)
                 for k, v in self.r.hgetall(self._k("inc", "own-host-state")).items()}
        return {k: m for k, m in marks.items() if _own_mark_holds(m, now)}

    def forget_own_actions(self, host_ids: Iterable[str]) -> None:
        """The hosts are healthy (or an operator took them over): their state is not oneha's."""
        ids = list(host_ids)
        if ids:
            self.r.hdel(self._k("inc", "own-host-state"), *ids)

    def add_timeline(self, incident_id: str, entry: TimelineEntry) -> None:
        if not self.r.exists(self._doc(incident_id)):
            raise KeyError(f"no incident {incident_id}")
        self.r.rpush(self._tl(incident_id), json.dumps(entry.to_dict(), separators=(",", ":")))

    # -- timing: due groups and escalations ------------------------------------------------
    def flush_due(self, now: float | None = None, limit: int = 500) -> list[FlushReport]:
        now = self.rt.clock() if now is None else now
        self.resend_stale_outbox(now)
        reports = []
        due = self.r.zrangebyscore(self._k("due"), "-inf", now, start=0, num=limit)
        ended = [m for m in due if m.startswith(b"silence|")]
        if ended:  # a silence ran out: what it muted is looked at now, not a group_interval later
            self._wake_all_groups(now)
            self.r.zrem(self._k("due"), *ended)
            due = self.r.zrangebyscore(self._k("due"), "-inf", now, start=0, num=limit)
        for member in due:
            m = member.decode()
            if m.startswith("group|"):
                reports.append(self.flush_group(m.split("|", 1)[1], now))
            elif m.startswith("esc|"):
                reports.append(self._escalate(m, now))
            else:
                log.error("unknown due member %r removed", m)
                self.r.zrem(self._k("due"), m)
        return reports

    def flush_group(self, gid: str, now: float | None = None) -> FlushReport:
        member = f"group|{gid}"
        for _ in range(MAX_TRIES):
            with self.r.pipeline() as pipe:
                try:
                    # Not the inhibition sources: a storm rewrites them all the time, and a flush that
                    # misses a just-opened host incident is corrected by the next one.
                    pipe.watch(self._grp(gid), self._members(gid))
                    t = self.rt.clock() if now is None else now
                    raw = pipe.hget(self._grp(gid), "state")
                    if not raw:
                        pipe.multi()
                        pipe.zrem(self._k("due"), member)
                        pipe.execute()
                        return FlushReport(member, False, "group no longer exists")
                    group = grouping.GroupState.from_dict(json.loads(raw))
                    ids = sorted(x.decode() for x in pipe.smembers(self._members(gid)))
                    docs = pipe.mget([self._doc(i) for i in ids]) if ids else []
                    members = [Incident.from_dict(json.loads(d)) for d in docs if d]
                    mutes = self._mutes(pipe, members, t)
                    plan = grouping.plan_flush(group, members, mutes, t)
                    outbox, entries, after = self._plan_effects(pipe, plan, group, t)
                    pipe.multi()
                    done = [i.id for i in members if i.merged_into or (
                        i.state == inc_mod.RESOLVED and (i in plan.resolved
                                                         or i.id not in group.notified))]
                    if plan.next_due is None:
                        pipe.delete(self._grp(gid), self._members(gid))
                        pipe.zrem(self._k("due"), member)
                    else:
                        pipe.hset(self._grp(gid), "state", json.dumps(after.to_dict()))
                        if done:
                            pipe.srem(self._members(gid), *done)
                        pipe.zadd(self._k("due"), {member: plan.next_due})
                    for iid, es in entries.items():
                        self._push(pipe, iid, es)
                    if outbox:
                        pipe.zadd(self._k("outbox"), {m: t for m in outbox})
                    pipe.execute()
                except redis.WatchError:
                    continue
            self._drain(outbox)
            log.info("group_flushed", extra={"group": gid, "sent": plan.send, "reason": plan.reason})
            return FlushReport(member, plan.send, plan.reason, _notification_ids(outbox))
        raise Transient(f"group {gid}: gave up after {MAX_TRIES} write conflicts")

    def _mutes(self, pipe, members: list[Incident], now: float) -> dict[str, muting.Mute]:
        silences = self._silences(pipe)
        sources = [muting.OpenIncident(k.decode(), json.loads(v))
                   for k, v in pipe.hgetall(self._k("inc", "labels")).items()]
        rules = self.inhibit_rules
        return {i.id: muting.mute(i.id, i.labels, now, silences, sources, rules) for i in members}

    def _plan_effects(self, pipe, plan: grouping.FlushPlan, group: grouping.GroupState,
                      now: float) -> tuple[list[str], dict[str, list[TimelineEntry]],
                                           grouping.GroupState]:
        entries: dict[str, list[TimelineEntry]] = {}
        for i, m in plan.newly_muted:
            entries.setdefault(i.id, []).append(
                TimelineEntry(now, "muted", f"recorded, not sent: {m.reason}", data={"by": m.by}))
        if not plan.send:
            return [], entries, plan.state
        public = self.settings.public_url
        summaries = {i.id: compose.incident_summary(i, self.timeline(i.id, 200), public)
                     for i in plan.incidents}
        escalated = {i.id: sorted(x.decode() for x in
                                  pipe.smembers(self._k("inc", i.id, "escalated")))
                     for i in plan.resolved}
        messages, state = compose.group_messages(plan, group, summaries, escalated, now)
        entry = compose.sent_entry(plan, group, now)
        for i in plan.incidents:
            entries.setdefault(i.id, []).append(entry)
        return [_task(DELIVER_TASK, [n.to_json()]) for n in messages], entries, state

    def _escalate(self, member: str, now: float) -> FlushReport:
        _, iid, route_id, level_s = member.split("|")
        level = int(level_s)
        for _ in range(MAX_TRIES):
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(self._doc(iid))
                    raw = pipe.get(self._doc(iid))
                    inc = Incident.from_dict(json.loads(raw)) if raw else None
                    route = next((r for r in self.routes_for(inc.labels) if r.route_id == route_id),
                                 None) if inc else None
                    if inc is None or route is None:
                        plan = grouping.EscalationPlan(False, "incident or route is gone")
                    else:
                        mute = self._mutes(pipe, [inc], now)[inc.id]
                        plan = grouping.plan_escalation(inc, route, level, mute, now)
                    outbox: list[str] = []
                    pipe.multi()
                    pipe.zrem(self._k("due"), member)
                    if plan.send:
                        summary = compose.incident_summary(inc, self.timeline(iid, 200),
                                                           self.settings.public_url)
                        n = compose.escalation_message(inc, summary, level, plan.receiver,
                                                       plan.reason, now)
                        outbox.append(_task(DELIVER_TASK, [n.to_json()]))
                        pipe.zadd(self._k("outbox"), {outbox[0]: now})
                        pipe.sadd(self._k("inc", iid, "escalated"), plan.receiver)
                        self._push(pipe, iid, [TimelineEntry(now, "escalation", plan.reason,
                                                             data={"level": level + 1})])
                    if plan.next_due is not None:
                        nxt = level + 1 if plan.send else level
                        pipe.zadd(self._k("due"), {f"esc|{iid}|{route_id}|{nxt}": plan.next_due})
                    pipe.execute()
                except redis.WatchError:
                    continue
            self._drain(outbox)
            return FlushReport(member, plan.send, plan.reason, _notification_ids(outbox))
        raise Transient(f"escalation {member}: gave up after {MAX_TRIES} write conflicts")

    # -- outbox ----------------------------------------------------------------------------
    def _drain(self, outbox: list[str]) -> list[str]:
        """Send the effects a committed transaction wrote; remove each once it is handed over."""
        if self._send is None or not outbox:
            return []
        sent = []
        for m in outbox:
            task = json.loads(m)
            if task["task"] == PLAN_REMEDIATION_TASK:
                marker = self._k("plan-req", task["args"][0])
                if not self.r.exists(marker):
                    self._send(task["task"], args=task["args"], countdown=PLAN_COALESCE)
                    # After the hand-over: a crash before it leaves the entry for a re-send.
                    self.r.set(marker, "1", px=int(PLAN_COALESCE * 500))
                    sent.append(task["task"])
            else:
                self._send(task["task"], args=task["args"])
                sent.append(task["task"])
            self.r.zrem(self._k("outbox"), m)
        return sent

    def resend_stale_outbox(self, now: float) -> int:
        """Effects a worker committed but died before handing over (receivers are idempotent)."""
        stale = self.r.zrangebyscore(self._k("outbox"), "-inf", now - OUTBOX_STALE_AFTER)
        return len(self._drain([m.decode() for m in stale]))

    def purge_resolved(self, older_than: float, limit: int = 500) -> list[str]:
        """Forget incidents resolved before `older_than` — document, timeline, escalations — so
        Redis keeps `incidents.retention` of history, not all of it. Open ones are never touched;
        a group still naming a purged incident skips it (flush reads members with `if d`)."""
        candidates = [x.decode() for x in self.r.zrangebyscore(self._k("inc", "all"), "-inf",
                                                               older_than)]
        gone: list[str] = []
        for iid in candidates:
            if len(gone) >= limit:
                break
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(self._doc(iid))
                    raw = pipe.get(self._doc(iid))
                    inc = Incident.from_dict(json.loads(raw)) if raw else None
                    if inc is not None and (inc.is_open or
                                            (inc.resolved_at or inc.updated_at) >= older_than):
                        pipe.reset()
                        continue
                    pipe.multi()
                    pipe.delete(self._doc(iid), self._tl(iid), self._k("inc", iid, "escalated"))
                    pipe.zrem(self._k("inc", "all"), iid)
                    pipe.execute()
                    gone.append(iid)
                except redis.WatchError:
                    continue  # changed meanwhile: look again at the next purge
        return gone

    def purge_expired_silences(self, older_than: float) -> list[str]:
        """Forget silences that ended before `older_than` (every flush reads them all). Ids of
        the forgotten; a silence edited meanwhile is kept (HDEL only if the value is unchanged)."""
        gone = []
        for sid, raw in self.r.hgetall(self._k("silences")).items():
            if muting.Silence.from_dict(json.loads(raw)).ends_at < older_than and \
                    self.r.eval(_HDEL_IF_SAME, 1, self._k("silences"), sid, raw):
                gone.append(sid.decode())
        return sorted(gone)

    # -- silences ---------------------------------------------------------------------------
    def _silences(self, client=None) -> list[muting.Silence]:
        client = client or self.r
        return [muting.Silence.from_dict(json.loads(v))
                for v in client.hgetall(self._k("silences")).values()]

    def add_silence(self, matchers: list[str], ends_at: float, author: str, comment: str,
                    starts_at: float | None = None) -> muting.Silence:
        """Raises muting.SilenceError with the field at fault."""
        now = self.rt.clock()
        s = muting.new_silence(matchers, now if starts_at is None else starts_at, ends_at, author,
                               comment, now)
        with self.r.pipeline() as pipe:  # the silence and its end's wake-up, or neither
            pipe.hset(self._k("silences"), s.id, json.dumps(s.to_dict()))
            pipe.zadd(self._k("due"), {f"silence|{s.id}": s.ends_at})
            pipe.execute()
        return s

    def list_silences(self, include_expired: bool = False) -> list[muting.Silence]:
        now = self.rt.clock()
        out = [s for s in self._silences() if include_expired or s.state(now) != "expired"]
        return sorted(out, key=lambda s: s.created_at)

    def get_silence(self, silence_id: str) -> muting.Silence | None:
        raw = self.r.hget(self._k("silences"), silence_id)
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
                pipe.hset(self._k("silences"), s.id, json.dumps(s.to_dict()))
                pipe.zrem(self._k("due"), f"silence|{s.id}")
                pipe.execute()
            self._wake_all_groups(now)
        return s

    def _wake_all_groups(self, now: float) -> None:
        due = self._k("due")
        members = [m for m in self.r.zrange(due, 0, -1) if m.startswith(b"group|")]
        if members:
            self.r.zadd(due, {m: now for m in members}, lt=True)


def _own_mark_holds(mark: dict[str, Any], now: float) -> bool:
    return mark.get("until") is None or float(mark["until"]) > now


_HDEL_IF_SAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


def _task(name: str, args: list[Any]) -> str:
    return json.dumps({"task": name, "args": args}, separators=(",", ":"), sort_keys=True)


def _notification_ids(outbox: list[str]) -> list[str]:
    return [json.loads(json.loads(m)["args"][0])["notification_id"] for m in outbox]
