"""Correlation: what an event does to the incidents — the whole event path is `decide(event,
context, now)`, a pure function from an `Event` and what the repository knows about the object
(the open incident holding it, the open incident of its host, open VM incidents on that host when
a host fails, maintenance, oneha's own host actions) to an `Outcome`: the incidents to save, the
timeline entries to append and a `Decision` saying what happened and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from . import states
from .phrases import BY_ONEHA
from .events import Event
from .incidents import (FIRING, MAX_EVENT_IDS, RESOLVED, Incident, ObjectState, TimelineEntry,
                        incident_id_for)


# -- labels ---------------------------------------------------------------------------------
def index_keys(event: Event) -> tuple[str, ...]:
    """The incident-index entries deciding on `event` reads: its object, and its host's."""
    host = event_labels(event).get("host", "")
    return (event.object_key, f"hostname:{host}") if host else (event.object_key,)


def event_labels(event: Event) -> dict[str, str]:
    """Routing labels of the event's object: what the event carries (a hook's event carries
    everything its XML said, `hook_events.py`), completed with what the event itself names."""
    labels = {str(k): str(v) for k, v in event.labels.items()}
    labels.setdefault("resource", event.resource)
    labels.setdefault("condition", event.condition)
    labels.setdefault("name", event.name)
    labels.setdefault("id", event.object_id)
    if event.frontend:
        labels.setdefault("frontend", event.frontend)
    if event.resource == "HOST":
        labels.setdefault("host", event.name)
        labels.setdefault("host_id", event.object_id)
        if event.state is not None:
            labels.setdefault("state", states.host_state_label(event.state))
    elif event.resource == "VM" and event.state is not None:
        labels.setdefault("state", states.vm_state_label(event.state, event.lcm_state))
    return labels


def is_maintenance(event: Event, labels: dict[str, str]) -> bool:
    """A host an operator disabled or offlined: not a failure (and not remediated)."""
    return event.resource == "HOST" and (
        event.state in states.HOST_OPERATOR_STATES
        or labels.get("maintenance", "").lower() in ("1", "true", "yes"))


# -- deciding -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Context:
    """What the store knows about the event's object, read in the same transaction as the save."""

    holding: Incident | None = None  # the open incident that already holds this object
    host_incident: Incident | None = None  # VM event: the open incident of the VM's host
    vm_incidents_on_host: tuple[Incident, ...] = ()  # host event: open VM incidents to absorb
    host_in_maintenance: bool = False  # the object's host (or the host itself) is in maintenance
    # A host event: oneha itself disabled (or offlined, to refresh) this host, so its DISABLED or
    # OFFLINE state is oneha's remediation at work, not an operator's maintenance.
    own_host_state: str = ""  # oneha's action ("disable_host", "refresh_host") or ""
    # A VM event: LAST_POLL of the latest observation that found this VM healthy (a hook's or
    # the reconciler's), or None. A hook's snapshot polled before it is older news.
    healthy_poll: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # created | joined | merged | updated | resolved | object_resolved | duplicate
    #              | ignored | maintenance
    reason: str
    incident_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    save: tuple[Incident, ...] = ()  # incidents to write (new or changed)
    timeline: dict[str, tuple[TimelineEntry, ...]] = field(default_factory=dict)
    plan_remediation: tuple[str, ...] = ()  # incidents that were created or gained objects
    maintenance: bool | None = None  # host maintenance to set (True) or clear (False)
    forget_own_host_state: bool = False  # the host is healthy: oneha's mark on it is over

    @property
    def changed(self) -> bool:
        return bool(self.save)


def object_state(event: Event, labels: dict[str, str], now: float,
                 previous: ObjectState | None = None) -> ObjectState:
    if event.resource == "HOST":
        label = states.host_state_label(event.state) if event.state is not None else event.condition
    elif event.resource == "VM" and event.state is not None:
        label = states.vm_state_label(event.state, event.lcm_state)
    else:
        label = labels.get("state") or event.condition
    running = event.resource == "VM" and states.vm_is_running(event.state, event.lcm_state)
    seen_running = event.occurred_at if running else (previous.last_seen_running if previous else None)
    if seen_running is None and event.resource == "VM" and states.vm_is_unknown(event.state,
                                                                               event.lcm_state):
        # monitoring last saw it before it went UNKNOWN
        seen_running = float(event.last_poll) if event.last_poll else _last_poll(event.xml)
    return ObjectState(
        key=event.object_key, resource=event.resource, id=event.object_id, name=event.name,
        condition=event.condition, state_label=label, status=event.status,
        first_seen=previous.first_seen if previous else event.occurred_at,
        last_seen=max(event.occurred_at, previous.last_seen if previous else 0.0),
        host=labels.get("host", ""), host_id=labels.get("host_id", ""),
        cluster=labels.get("cluster", labels.get("cluster_id", "")),
        last_seen_running=seen_running, detail=event.summary)


_LAST_POLL = re.compile(r"<LAST_POLL>\s*(\d+)\s*</LAST_POLL>")


def _last_poll(xml: str | None) -> float | None:
    """LAST_POLL of an event that carries the XML but not the field (built by hand, or queued
    by a gateway older than the field), read without parsing the whole document."""
    m = _LAST_POLL.search(xml or "")
    return float(m.group(1)) if m and int(m.group(1)) > 0 else None


def _event_entry(event: Event, now: float) -> TimelineEntry:
    what = f"{event.resource} {event.name} ({event.object_id}) {event.condition}"
    return TimelineEntry(t=now, kind="event", text=f"{event.status}: {what} [{event.source}]",
                         actor=event.source, data={"event_id": event.event_id,
                                                   "occurred_at": event.occurred_at})


def _remember(incident: Incident, event: Event, now: float, **changes: Any) -> Incident:
    ids = (incident.event_ids + (event.event_id,))[-MAX_EVENT_IDS:]
    return replace(incident, event_ids=ids, updated_at=now, version=incident.version + 1, **changes)


def decide(event: Event, ctx: Context, now: float, labels: dict[str, str] | None = None) -> Outcome:
    """The one decision of the event path. Pure: no clock but `now`, no I/O."""
    labels = event_labels(event) if labels is None else labels
    for seen in (ctx.holding, ctx.host_incident):
        if seen is not None and event.event_id in seen.event_ids:
            return Outcome(Decision("duplicate", f"event {event.event_id} was already applied to "
                                    f"{seen.id}", seen.id))
    if ctx.own_host_state and event.resource == "HOST" \
            and event.state in states.HOST_OPERATOR_STATES:
        return _own_host_state(event, ctx, now, labels)
    if is_maintenance(event, labels):
        return _maintenance(event, ctx, now, labels)
    if event.status == RESOLVED:
        return _resolved(event, ctx, now, labels)
    if is_stale(event, ctx):
        return Outcome(Decision("ignored", (
            f"stale: this hook's snapshot of {event.object_key} was polled at "
            f"{event.last_poll}, before the VM was seen healthy (polled at {ctx.healthy_poll}); "
            "oned ran the hook late. The reconciler looks at the VM as it is now")))
    return _firing(event, ctx, now, labels)


def is_stale(event: Event, ctx: Context) -> bool:
    """A hook that oned ran late (hooks queue up in a storm) carries the VM as it was when its
    state changed: an UNKNOWN polled before a later observation saw the VM running again must not
    reopen anything. Only hooks: the reconciler's findings are the pool as it is now (and they
    are the safety net should this ever be wrong). Strictly older: a new failure right after a
    healthy poll carries that same poll."""
    return (event.source == "hook" and event.resource == "VM" and event.last_poll is not None
            and ctx.healthy_poll is not None and event.last_poll < ctx.healthy_poll)


def healthy_poll(event: Event) -> int | None:
    """The LAST_POLL an event records as "seen healthy" (a VM's resolved event), else None."""
    if event.resource == "VM" and event.status == RESOLVED and event.last_poll:
        return int(event.last_poll)
    return None


def _maintenance(event: Event, ctx: Context, now: float, labels: dict[str, str]) -> Outcome:
    why = f"host {event.name} put in maintenance ({labels.get('state', event.condition)}) by an operator"
    if ctx.holding is None:
        return Outcome(Decision("maintenance", f"{why}: not an alert; nothing open"),
                       maintenance=True)
    inc = ctx.holding
    objects = {k: replace(o, status=RESOLVED, last_seen=max(o.last_seen, event.occurred_at))
               if k == event.object_key else o for k, o in inc.objects.items()}
    done = _remember(inc, event, now, objects=objects, state=RESOLVED, resolved_at=now)
    entries = (_event_entry(event, now),
               TimelineEntry(now, "transition", f"{inc.state} → resolved: {why}"))
    return Outcome(Decision("maintenance", f"{why}: incident resolved", inc.id), save=(done,),
                   timeline={inc.id: entries}, maintenance=True)


def _own_host_state(event: Event, ctx: Context, now: float, labels: dict[str, str]) -> Outcome:
    """A host in the state oneha's own remediation put it in: still the failure being handled."""
    label = labels.get("state", event.condition)
    why = (f"host {event.name} is {label} because oneha did it ({ctx.own_host_state}), "
           "not an operator")
    inc = ctx.holding
    if inc is None:
        return Outcome(Decision("ignored", f"{why}: not maintenance and not a new failure"))
    prev = inc.objects[event.object_key]
    obj = replace(prev, state_label=label + BY_ONEHA)  # still firing: the host is not back
    new = _remember(inc, event, now, objects={**inc.objects, event.object_key: obj})
    return Outcome(Decision("updated", f"{why}: the incident stays open", inc.id), save=(new,),
                   timeline={inc.id: (_event_entry(event, now),)})


def _resolved(event: Event, ctx: Context, now: float, labels: dict[str, str]) -> Outcome:
    clear = False if event.resource == "HOST" else None  # a healthy host leaves maintenance
    forget = bool(ctx.own_host_state) and event.resource == "HOST"
    inc = ctx.holding
    if inc is None:
        return Outcome(Decision("ignored", f"{event.object_key} is healthy and has no open incident"),
                       maintenance=clear, forget_own_host_state=forget)
    prev = inc.objects.get(event.object_key)
    obj = object_state(event, labels, now, prev)
    objects = dict(inc.objects)
    objects[event.object_key] = obj
    entries = [_event_entry(event, now)]
    still = [o for o in objects.values() if o.status == FIRING]
    if still:
        names = ", ".join(f"{o.resource} {o.name}" for o in still[:5])
        more = f" and {len(still) - 5} more" if len(still) > 5 else ""
        entries.append(TimelineEntry(now, "decision", f"{event.resource} {event.name} is healthy; "
                                     f"incident stays open: {names}{more} still failing"))
        new = _remember(inc, event, now, objects=objects)
        return Outcome(Decision("object_resolved", f"{event.object_key} healthy, {len(still)} "
                                f"object(s) still failing", inc.id), save=(new,),
                       timeline={inc.id: tuple(entries)}, maintenance=clear,
                       forget_own_host_state=forget)
    entries.append(TimelineEntry(now, "transition", f"{inc.state} → resolved: every object is "
                                 "healthy again"))
    new = _remember(inc, event, now, objects=objects, state=RESOLVED, resolved_at=now)
    return Outcome(Decision("resolved", f"{event.object_key} healthy; all objects recovered", inc.id),
                   save=(new,), timeline={inc.id: tuple(entries)}, maintenance=clear,
                   forget_own_host_state=forget)


def _firing(event: Event, ctx: Context, now: float, labels: dict[str, str]) -> Outcome:
    if ctx.holding is not None:
        inc = ctx.holding
        prev = inc.objects.get(event.object_key)
        obj = object_state(event, labels, now, prev)
        objects = dict(inc.objects)
        objects[event.object_key] = obj
        new = _remember(inc, event, now, objects=objects)
        again = prev is not None and prev.status == RESOLVED
        why = (f"{event.object_key} failed again ({obj.state_label})" if again
               else f"{event.object_key} still failing ({obj.state_label})")
        return Outcome(Decision("updated", why, inc.id), save=(new,),
                       timeline={inc.id: (_event_entry(event, now),)},
                       plan_remediation=(inc.id,) if again else ())
    if event.resource == "VM" and ctx.host_incident is not None:
        host_inc = ctx.host_incident
        objects = dict(host_inc.objects)
        objects[event.object_key] = object_state(event, labels, now)
        new = _remember(host_inc, event, now, objects=objects)
        why = (f"VM {event.name} ({event.object_id}) runs on host {labels.get('host')} whose "
               f"incident {host_inc.id} is open")
        entries = (_event_entry(event, now), TimelineEntry(now, "decision", f"joined: {why}",
                                                            data={"name": event.name}))
        return Outcome(Decision("joined", why, host_inc.id), save=(new,),
                       timeline={host_inc.id: entries}, plan_remediation=(host_inc.id,))
    return _create(event, ctx, now, labels)


def _create(event: Event, ctx: Context, now: float, labels: dict[str, str]) -> Outcome:
    inc_labels = dict(labels)
    if ctx.host_in_maintenance:
        inc_labels["maintenance"] = "true"
    primary = object_state(event, labels, now)
    objects = {primary.key: primary}
    inc = Incident(id=incident_id_for(event), key=event.object_key, state=FIRING, created_at=now,
                   updated_at=now, labels=inc_labels, objects=objects,
                   event_ids=(event.event_id,), severity=labels.get("severity", "critical"),
                   version=1)
    entries = [_event_entry(event, now),
               TimelineEntry(now, "transition", f"opened: {event.resource} {event.name} "
                             f"{primary.state_label}")]
    if ctx.host_in_maintenance:
        entries.append(TimelineEntry(now, "decision", f"host {labels.get('host')} is in "
                                     "maintenance: recorded, not alerted"))
    timeline: dict[str, tuple[TimelineEntry, ...]] = {}
    save: list[Incident] = []
    merged = [v for v in ctx.vm_incidents_on_host if v.is_open] if event.resource == "HOST" else []
    for vm_inc in merged:
        for k, o in vm_inc.objects.items():
            objects.setdefault(k, o)
        save.append(replace(vm_inc, state=RESOLVED, resolved_at=now, merged_into=inc.id,
                            updated_at=now, version=vm_inc.version + 1))
        timeline[vm_inc.id] = (TimelineEntry(now, "transition", f"{vm_inc.state} → resolved: "
                                             f"merged into host incident {inc.id}"),)
    if merged:
        entries.append(TimelineEntry(now, "decision", f"absorbed {len(merged)} open VM "
                                     f"incident(s) of host {event.name}: "
                                     f"{', '.join(v.id for v in merged[:10])}"))
    inc = replace(inc, objects=objects)
    timeline[inc.id] = tuple(entries)
    why = f"new failure of {event.object_key} ({primary.state_label})"
    if merged:
        why += f", absorbing {len(merged)} VM incident(s)"
    return Outcome(Decision("merged" if merged else "created", why, inc.id),
                   save=(inc, *save), timeline=timeline, plan_remediation=(inc.id,))
