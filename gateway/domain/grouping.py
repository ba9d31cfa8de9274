"""Aggregation groups and their timing: group_wait, group_interval, repeat_interval, escalation.

An incident reaches one or more routes (routing.py); on each, it joins the group named by the
route and the incident's `group_by` label values. A group is told about at most once per
`group_interval` and its first message waits `group_wait` so a storm (a host and its 200 VMs)
becomes one message. `plan_flush` is the pure decision made each time a group is due: send or
not, which transition, why, and when to look again. The store keeps the due times in a Redis
ZSET, so a restart loses nothing and a second worker doubles nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

from . import phrases
from .i18n import SOURCE
from .incidents import FIRING, NOTICE_KINDS, RESOLVED, Incident, Notice
from .muting import Mute
from .routing import RouteMatch


def group_id_for(group_key: str) -> str:
    return "g" + hashlib.sha256(group_key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class GroupState:
    id: str
    key: str  # route id + group_by values, e.g. "root|host=node07"
    route_id: str
    receivers: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    created_at: float
    last_sent_at: float | None = None
    seq: int = 0  # messages sent so far; part of each notification id
    notified: dict[str, str] = field(default_factory=dict)  # incident id -> fingerprint sent
    muted_noted: dict[str, str] = field(default_factory=dict)  # incident id -> mute recorded
    told: dict[str, int] = field(default_factory=dict)  # incident id -> last notice seq told
    last_ids: dict[str, str] = field(default_factory=dict)  # receiver -> last notification id

    @classmethod
    def new(cls, route: RouteMatch, key: str, now: float) -> "GroupState":
        return cls(id=group_id_for(key), key=key, route_id=route.route_id,
                   receivers=tuple(route.receivers), group_wait=route.group_wait,
                   group_interval=route.group_interval, repeat_interval=route.repeat_interval,
                   created_at=now)

    @property
    def first_due(self) -> float:
        return self.created_at + self.group_wait

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GroupState":
        d = dict(d)
        d["receivers"] = tuple(d["receivers"])
        return cls(**d)


def fingerprint(incident: Incident) -> str:
    """What a message said about an incident: open or resolved, and how many objects it had.

    A VM joining a host incident changes it (an update follows at group_interval); a VM
    recovering inside it does not (no chatter while things heal)."""
    return f"{'resolved' if incident.state == RESOLVED else 'open'}:{len(incident.objects)}"


@dataclass(frozen=True, slots=True)
class FlushPlan:
    send: bool
    reason: str
    state: GroupState  # the group after this flush (unchanged when nothing is sent)
    transition: str | None = None  # firing | repeat | resolved | a notice kind
    firing: tuple[Incident, ...] = ()  # open incidents the message lists
    resolved: tuple[Incident, ...] = ()  # incidents the message reports as resolved
    newly_muted: tuple[tuple[Incident, Mute], ...] = ()  # mutes to record in timelines
    next_due: float | None = None  # None: the group is finished (delete it)
    notices: tuple[Notice, ...] = ()  # what remediation asked to tell, told in this message

    @property
    def incidents(self) -> tuple[Incident, ...]:
        return self.firing + self.resolved


def pending_notices(group: GroupState, incident: Incident) -> tuple[Notice, ...]:
    return tuple(n for n in incident.notices if n.seq > group.told.get(incident.id, 0))


@dataclass(frozen=True, slots=True)
class _Look:
    """A due group's members as one flush sees them."""

    base: GroupState  # the group with the mutes noted
    newly_muted: tuple[tuple[Incident, Mute], ...]
    firing: tuple[Incident, ...]  # open and audible
    resolved: tuple[Incident, ...]  # resolved since they were told
    changed: bool
    repeatable: bool  # something still FIRING (not acknowledged nor remediating)
    still_open: bool

    def wait(self, reason: str, next_due: float | None) -> FlushPlan:
        return FlushPlan(False, reason, self.base, newly_muted=self.newly_muted,
                         next_due=next_due)


def _look(group: GroupState, incidents: Sequence[Incident], mutes: dict[str, Mute]) -> _Look:
    newly_muted = tuple((i, mutes[i.id]) for i in incidents
                        if mutes.get(i.id) and group.muted_noted.get(i.id) != mutes[i.id].by)
    muted_noted = {**group.muted_noted, **{i.id: m.by for i, m in newly_muted}}
    # Absorbed by a host incident: its objects are told with the host's message from now on.
    live = [i for i in incidents if i.merged_into is None]
    audible = [i for i in live if not mutes.get(i.id)]
    firing = tuple(i for i in audible if i.is_open)
    resolved = tuple(i for i in audible if i.state == RESOLVED and i.id in group.notified
                     and group.notified[i.id] != fingerprint(i))
    changed = bool(resolved) or any(group.notified.get(i.id) != fingerprint(i) for i in firing)
    return _Look(replace(group, muted_noted=muted_noted), newly_muted, firing, resolved, changed,
                 any(i.state == FIRING for i in firing), any(i.is_open for i in live))


def plan_flush(group: GroupState, incidents: Sequence[Incident], mutes: dict[str, Mute],
               now: float) -> FlushPlan:
    """Decide what a due group sends now. `incidents` are the group's members as stored now.

    The story each receiver reads is in order by construction: the first message is always the
    alert ([FIRING], after group_wait) and carries whatever remediation asked to tell by then
    (the approval link); later notices go out as soon as they are due, but only about incidents
    whose alert was told; the resolve notice comes last."""
    look = _look(group, incidents, mutes)
    if group.last_sent_at is None:
        return _first_message(look, group, now)
    return (_notices(look, group, now) or _changes(look, group, now)
            or _reminder(look, group, now))


def _first_message(look: _Look, group: GroupState, now: float) -> FlushPlan:
    if now < group.first_due:
        return look.wait(f"group_wait: first message at {group.first_due:.3f}", group.first_due)
    if look.firing:
        return _send(look.base, "firing", f"group_wait of {group.group_wait:g}s is over: "
                     f"{len(look.firing)} open incident(s)", look.firing, (), now,
                     look.newly_muted, True)
    if look.still_open:  # only muted ones: look again in case a silence ends
        return look.wait("every open incident is muted", now + group.group_interval)
    return look.wait("resolved before anyone was told: nothing to send", None)


def _notices(look: _Look, group: GroupState, now: float) -> FlushPlan | None:
    """Remediation's news do not wait for group_interval: people act on them."""
    told = tuple(i for i in look.firing if i.id in group.notified)
    notices = tuple(n for i in told for n in pending_notices(group, i))
    if not notices:
        return None
    kind = next(k for k in NOTICE_KINDS if any(n.kind == k for n in notices))
    about = len({i.id for i in told if pending_notices(group, i)})
    return _send(look.base, kind, f"{len(notices)} remediation notice(s) of {about} incident(s)",
                 told, (), now, look.newly_muted, True, notice=True)


def _changes(look: _Look, group: GroupState, now: float) -> FlushPlan | None:
    if not look.changed:
        return None
    change_due = (group.last_sent_at or now) + group.group_interval
    if now < change_due:
        return look.wait(f"group_interval: changes wait until {change_due:.3f}", change_due)
    firing, resolved = look.firing, look.resolved
    what = (f"{len(firing)} open, {len(resolved)} resolved" if firing
            else f"{len(resolved)} resolved, none open")
    return _send(look.base, "firing" if firing else "resolved",
                 f"changed since message {group.seq}: {what}", firing, resolved, now,
                 look.newly_muted, look.still_open)


def _reminder(look: _Look, group: GroupState, now: float) -> FlushPlan:
    repeat_due = (group.last_sent_at or now) + group.repeat_interval
    if look.repeatable and now >= repeat_due:
        return _send(look.base, "repeat", f"still firing after repeat_interval of "
                     f"{group.repeat_interval:g}s", look.firing, (), now, look.newly_muted, True)
    if look.repeatable:
        return look.wait(f"repeat_interval: reminder at {repeat_due:.3f}", repeat_due)
    if look.still_open:  # acknowledged, remediating or muted: nothing to repeat, wait for changes
        return look.wait("open incidents are acknowledged, remediating or muted",
                         now + group.repeat_interval)
    return look.wait("every incident of the group is resolved and told", None)


def _send(group: GroupState, transition: str, reason: str, firing: tuple[Incident, ...],
          resolved: tuple[Incident, ...], now: float,
          newly_muted: tuple[tuple[Incident, Mute], ...], still_open: bool,
          notice: bool = False) -> FlushPlan:
    # Every message tells the notices of the incidents it lists (a first message carries the
    # approval link that was ready within group_wait; a resolve notice closes the story).
    told_now = {i.id: n for i in firing + resolved for n in pending_notices(group, i)[-1:]}
    notices = tuple(n for i in firing + resolved for n in pending_notices(group, i))
    told = {**group.told, **{iid: n.seq for iid, n in told_now.items()}}
    # A notice message describes the incidents it lists as they are now (no later "changed"
    # message repeats that), but keeps the group's timing: other changes wait as they would.
    told_about = {i.id: fingerprint(i) for i in firing}
    notified = {**group.notified, **told_about} if notice else told_about
    state = replace(group, last_sent_at=group.last_sent_at if notice else now,
                    seq=group.seq + 1, notified=notified, told=told)
    # Changes wake the group up by themselves; the next look is for the reminder (or a silence
    # that ended). Nothing open any more: the group is finished.
    next_due = (state.last_sent_at or now) + group.repeat_interval if still_open else None
    if notice:
        next_due = now  # what changed meanwhile is looked at right after
    return FlushPlan(True, reason, state, transition, firing, resolved, newly_muted, next_due,
                     notices)


def group_summary(plan: FlushPlan, incident_summaries: dict[str, dict[str, Any]],
                  group: GroupState) -> dict[str, Any]:
    """The incident summary for a group message: the incident's own when it is alone, else one
    that lists every incident of the group (the first stays the `object`)."""
    incidents = plan.incidents
    if len(incidents) == 1:
        out = dict(incident_summaries[incidents[0].id])
    else:
        first = incident_summaries[incidents[0].id]
        affected: list[dict[str, Any]] = []
        count = 0
        for inc in incidents:
            s = incident_summaries[inc.id]
            affected.append({**s["object"], "incident": inc.id, "status": inc.state})
            affected.extend(s.get("affected", []))
            count += 1 + s.get("affected_count", 0)
        values = group.key.split("|", 1)[1] if "|" in group.key else group.key
        if plan.transition == "resolved":
            headline = {"key": "group_resolved", "count": len(incidents), "group": values}
        else:
            headline = {"key": "group_open", "count": len(plan.firing), "group": values,
                        "kinds": _kinds(incidents), "resolved": len(plan.resolved)}
        out = {**first, "title": phrases.say(SOURCE, headline["key"], headline),
               "headline": headline, "affected": affected[:200], "affected_count": count - 1,
               "status": "resolved" if plan.transition == "resolved" else "firing",
               "incidents": [i.id for i in incidents]}
        out["started_at"] = min(i.created_at for i in incidents)
    out["group"] = {"id": group.id, "key": group.key, "seq": plan.state.seq,
                    "transition": plan.transition}
    if plan.notices:
        out.update(notice_fields(plan.notices))
    return out


def notice_fields(notices: Sequence[Notice]) -> dict[str, Any]:
    """What a message shows of remediation's notices: each one's text (and what it says, as
    data, to be phrased per language), and the latest approval link with its plan (an approver
    decides on one plan at a time). The last notice is the next step."""
    out: dict[str, Any] = {"notices": [
        {"kind": n.kind, "text": n.text, **({"code": n.code, "params": n.params} if n.code else {})}
        for n in notices]}
    approvals = [n for n in notices if n.kind == "approval_requested" and n.approval_url]
    if approvals:
        out["approval_url"] = approvals[-1].approval_url
        out["plan"] = list(approvals[-1].plan)
    out["next_step"] = notices[-1].text
    out["next"] = {**notices[-1].params, "key": notices[-1].code} if notices[-1].code else {}
    return out


def _kinds(incidents: Sequence[Incident]) -> list[list[Any]]:
    """`[[count, "HOST ERROR"], ...]`, the most frequent first."""
    counts: dict[str, int] = {}
    for i in incidents:
        label = f"{i.primary.resource} {i.primary.state_label}"
        counts[label] = counts.get(label, 0) + 1
    return [[n, label] for label, n in sorted(counts.items(), key=lambda kv: -kv[1])]


# -- escalation -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EscalationPlan:
    send: bool
    reason: str
    receiver: str | None = None
    next_due: float | None = None  # the next level's due time, if there is one


def escalation_due(created_at: float, escalate_after: float, level: int) -> float:
    return created_at + escalate_after * (level + 1)


def plan_escalation(incident: Incident, route: RouteMatch, level: int, mute: Mute,
                    now: float) -> EscalationPlan:
    """Unacknowledged after `escalate_after` × (level + 1): tell `escalate_to[level]`."""
    if route.escalate_after is None or level >= len(route.escalate_to):
        return EscalationPlan(False, "no (further) escalation configured on this route")
    due = escalation_due(incident.created_at, route.escalate_after, level)
    if now < due:
        return EscalationPlan(False, f"not yet: escalation level {level} at {due:.3f}",
                              next_due=due)
    if incident.state != FIRING:
        return EscalationPlan(False, f"incident is {incident.state}: no escalation")
    if mute:
        return EscalationPlan(False, f"muted ({mute.reason}): no escalation")
    following = (escalation_due(incident.created_at, route.escalate_after, level + 1)
                 if level + 1 < len(route.escalate_to) else None)
    return EscalationPlan(True, f"unacknowledged for {now - incident.created_at:.0f}s "
                          f"(escalate_after {route.escalate_after:g}s): escalating to "
                          f"{route.escalate_to[level]}", route.escalate_to[level], following)
