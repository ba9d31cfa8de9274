"""Incidents: one per failing object, VMs of a failed host joined to the host's incident.

The whole event path is `decide(event, context, now)`: a pure function from an `Event` and what
the store knows about the object (the open incident holding it, the open incident of its host,
open VM incidents on that host when a host fails, maintenance) to an `Outcome` — the incidents to
save, the timeline entries to append and a `Decision` saying what happened and why. The store
(`gateway/adapters/store/incidents.py`) loads the context and saves the outcome atomically.

States: firing → acknowledged → remediating → resolved (see `TRANSITIONS`). An incident resolves
when every object in it is healthy again (a later `status=resolved` event or the reconciler),
when an operator puts its host in maintenance, or by `transition(..., "resolved")`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable

from . import states
from .events import Event
from .hook_events import _operator_labels  # the one spelling of ONEHA_* labels
from .objects import VmInfo, XmlError, parse_host, parse_vm

FIRING, ACKNOWLEDGED, REMEDIATING, RESOLVED = "firing", "acknowledged", "remediating", "resolved"
OPEN_STATES = (FIRING, ACKNOWLEDGED, REMEDIATING)
STATES = OPEN_STATES + (RESOLVED,)
TRANSITIONS: dict[str, frozenset[str]] = {
    FIRING: frozenset({ACKNOWLEDGED, REMEDIATING, RESOLVED}),
    ACKNOWLEDGED: frozenset({REMEDIATING, RESOLVED}),
    REMEDIATING: frozenset({FIRING, ACKNOWLEDGED, RESOLVED}),  # FIRING: remediation gave up
    RESOLVED: frozenset(),
}
MAX_EVENT_IDS = 2000  # remembered per incident to make a replayed event a no-op


class TransitionError(ValueError):
    """A state change the incident model does not allow (e.g. acknowledging a resolved incident)."""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    t: float
    kind: str  # event | decision | transition | notification | muted | escalation | remediation
    text: str
    actor: str = "oneha"
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TimelineEntry":
        return cls(t=d["t"], kind=d["kind"], text=d["text"], actor=d.get("actor", "oneha"),
                   data=d.get("data") or {})


@dataclass(frozen=True, slots=True)
class Notice:
    """Something remediation has to tell the people of an incident: an approval request, progress,
    or that a human is needed. It is kept on the incident and told by the incident's groups, in
    order after the alert (`grouping.plan_flush`), never sent on its own."""

    seq: int  # 1, 2, ... per incident: the order people read them in
    kind: str  # one of NOTICE_KINDS
    key: str  # idempotency key (e.g. "<plan id>:approval"): the same notice is kept once
    text: str
    at: float
    approval_url: str = ""
    plan: tuple[dict[str, Any], ...] = ()  # the plan lines an approver decides on

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["plan"] = list(self.plan)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Notice":
        return cls(**{**d, "plan": tuple(d.get("plan") or ())})


# Most important first: a message telling several notices is headed by the first kind present.
NOTICE_KINDS = ("needs_human", "approval_requested", "progress")


@dataclass(frozen=True, slots=True)
class ObjectState:
    """One object of an incident as last seen."""

    key: str  # object_key: host:7, vm:42
    resource: str
    id: str
    name: str
    condition: str
    state_label: str
    status: str  # firing | resolved
    first_seen: float
    last_seen: float
    host: str = ""
    host_id: str = ""
    cluster: str = ""
    last_seen_running: float | None = None
    detail: str = ""  # the event's own explanation (e.g. a Raft finding's recovery steps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    key: str  # the object the incident is about (its primary object)
    state: str
    created_at: float
    updated_at: float
    labels: dict[str, str]  # routing labels of the primary object
    objects: dict[str, ObjectState]  # primary first, then joined objects, by object key
    event_ids: tuple[str, ...] = ()
    resolved_at: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    merged_into: str | None = None  # set when a host incident absorbed this VM incident
    plan_id: str | None = None
    impact: list[dict[str, Any]] | None = None
    severity: str = "critical"
    version: int = 0
    notices: tuple[Notice, ...] = ()

    # -- reading ---------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def primary(self) -> ObjectState:
        return self.objects[self.key]

    @property
    def affected(self) -> list[ObjectState]:
        """Objects other than the primary one (the VMs of a failed host)."""
        return [o for k, o in self.objects.items() if k != self.key]

    @property
    def host_name(self) -> str:
        return self.primary.host

    @property
    def title(self) -> str:
        p = self.primary
        vms = self.affected
        if p.resource == "HOST":
            head = f"Host {p.name} is in {p.state_label}"
            if self.state == RESOLVED and self.impact:
                # Resolved by remediation: the VMs run again; the host may well still be broken
                # (or disabled by oneha), so do not claim it recovered.
                one = len(self.impact) == 1
                return (f"Host {p.name} failed — its {len(self.impact)} VM{'' if one else 's'} "
                        f"run{'s' if one else ''} again elsewhere")
            if self.state == RESOLVED:
                head = f"Host {p.name} recovered (was in {self._first_condition_label()})"
            if vms:
                head += f" — {len(vms)} VM{'s' if len(vms) != 1 else ''} affected"
            return head
        if p.resource == "VM":
            where = f" on host {p.host}" if p.host else ""
            if self.merged_into:
                return f"VM {p.name} ({p.id}) is {p.state_label}{where} — told with host " \
                       f"incident {self.merged_into}"
            if self.state == RESOLVED:
                return f"VM {p.name} ({p.id}) recovered{where}"
            return f"VM {p.name} ({p.id}) is {p.state_label}{where}"
        if p.resource == "CLOUD" and self.state == RESOLVED:
            return "Storm over: oneha's automatic remediation may act again"
        if p.resource == "CLOUD":
            return f"Storm guard stopped automatic remediation: {p.state_label}"
        if self.state == RESOLVED:
            return f"{p.resource.title()} {p.name}: {p.condition} resolved"
        return f"{p.resource.title()} {p.name}: {p.condition}"

    def _first_condition_label(self) -> str:
        return self.labels.get("state", self.primary.condition.split("/")[-1])

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["objects"] = [o.to_dict() for o in self.objects.values()]
        d["event_ids"] = list(self.event_ids)
        d["notices"] = [n.to_dict() for n in self.notices]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Incident":
        d = dict(d)
        d["objects"] = {o["key"]: ObjectState(**o) for o in d["objects"]}
        d["event_ids"] = tuple(d.get("event_ids") or ())
        d["notices"] = tuple(Notice.from_dict(n) for n in d.get("notices") or ())
        return cls(**d)

    def with_notice(self, kind: str, key: str, text: str, now: float, approval_url: str = "",
                    plan: Iterable[dict[str, Any]] = ()) -> "Incident | None":
        """The incident with one more notice; None when a notice with `key` is kept already."""
        if kind not in NOTICE_KINDS:
            raise ValueError(f"notice kind {kind!r} is not one of {', '.join(NOTICE_KINDS)}")
        if any(n.key == key for n in self.notices):
            return None
        notice = Notice(len(self.notices) + 1, kind, key, text, now, approval_url, tuple(plan))
        return replace(self, notices=self.notices + (notice,), updated_at=now,
                       version=self.version + 1)


def incident_id_for(event: Event) -> str:
    """Readable and deterministic: the same first event (processed twice) names the same incident."""
    obj = re.sub(r"[^A-Za-z0-9]+", "-", event.object_id).strip("-") or "x"
    return f"{event.resource.lower()}-{obj}-{event.event_id[:8]}"


# -- labels ---------------------------------------------------------------------------------
def event_labels(event: Event) -> dict[str, str]:
    """Routing labels of the event's object: what the event says, completed from its XML.

    Never fails on odd XML (the ingest already refused unsafe XML): what cannot be read is left
    out, and routing sees a missing label as "".
    """
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
    # Hook events already carry everything (hook_events.py); others may only carry the XML.
    if event.xml and "host" not in labels:
        try:
            info = parse_vm(event.xml) if event.resource == "VM" else (
                parse_host(event.xml) if event.resource == "HOST" else None)
        except XmlError:
            info = None
            labels.setdefault("xml", "unreadable")
        if info is not None:
            for key, value in _operator_labels(info.labels).items():
                labels.setdefault(key, value)
        if event.resource == "VM" and info is not None:
            _set(labels, "host", info.host_name)
            _set(labels, "host_id", info.host_id)
            _set(labels, "cluster_id", info.cluster_id)
            _set(labels, "owner", info.uname)
            _set(labels, "group", info.gname)
        elif info is not None:
            _set(labels, "cluster", info.cluster)
            _set(labels, "cluster_id", info.cluster_id)
    return labels


def _set(labels: dict[str, str], key: str, value: object) -> None:
    if value not in (None, "") and key not in labels:
        labels[key] = str(value)


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
    return _firing(event, ctx, now, labels)


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
    obj = replace(prev, state_label=f"{label} (by oneha)")  # still firing: the host is not back
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


def with_live_vms(incident: Incident, vms: Iterable[VmInfo], now: float,
                  host_label: str = "") -> Incident:
    """The incident with its VMs as they are now: state, host, and recovered when running
    again. VMs the incident did not list yet (a host's VMs no hook reported) are added.
    `host_label`: the failed host's state now ("DISABLED (by oneha)"), for a host incident."""
    objects = dict(incident.objects)
    if host_label and incident.primary.resource == "HOST":
        objects[incident.key] = replace(incident.primary, state_label=host_label)
    for vm in vms:
        key = f"vm:{vm.id}"
        prev = objects.get(key)
        running = states.vm_is_running(vm.state, vm.lcm_state)
        objects[key] = ObjectState(
            key=key, resource="VM", id=str(vm.id), name=vm.name or (prev.name if prev else ""),
            condition=prev.condition if prev else f"VM/{vm.state_label}",
            state_label=vm.state_label, status=RESOLVED if running else FIRING,
            first_seen=prev.first_seen if prev else now, last_seen=now,
            host=vm.host_name or "", host_id="" if vm.host_id is None else str(vm.host_id),
            cluster=prev.cluster if prev else "",
            last_seen_running=now if running else (prev.last_seen_running if prev else None),
            detail=prev.detail if prev else "")
    return replace(incident, objects=objects, updated_at=now, version=incident.version + 1)


# -- operator and remediation transitions -------------------------------------------------------
def transition(incident: Incident, to: str, reason: str, actor: str, now: float) -> tuple[Incident, TimelineEntry]:
    """Move an incident to `to` (acknowledged, remediating, resolved, firing) with a reason."""
    if to not in STATES:
        raise TransitionError(f"unknown incident state {to!r}; one of {', '.join(STATES)}")
    if to == incident.state:
        raise TransitionError(f"incident {incident.id} is already {to}")
    if to not in TRANSITIONS[incident.state]:
        raise TransitionError(f"incident {incident.id} is {incident.state}; it cannot become {to}")
    changes: dict[str, Any] = {"state": to, "updated_at": now, "version": incident.version + 1}
    if to == ACKNOWLEDGED:
        changes.update(acknowledged_by=actor, acknowledged_at=now)
    if to == RESOLVED:
        changes["resolved_at"] = now
    entry = TimelineEntry(now, "transition", f"{incident.state} → {to}: {reason}", actor=actor)
    return replace(incident, **changes), entry


# -- what people read -----------------------------------------------------------------------
def summary(incident: Incident, timeline: Iterable[TimelineEntry] = (), max_objects: int = 50,
            console_url: str | None = None) -> dict[str, Any]:
    """The JSON-able incident summary a `Notification` carries (keys: notifications.py)."""
    p = incident.primary
    affected = sorted(incident.affected, key=_reading_order)
    out: dict[str, Any] = {
        "id": incident.id,
        "title": incident.title,
        "status": incident.state,
        "severity": incident.severity,
        "started_at": incident.created_at,
        "object": {"resource": p.resource, "id": p.id, "name": p.name,
                   "state_label": p.state_label, "cluster": p.cluster, "host": p.host},
        "affected": [{"resource": o.resource, "id": o.id, "name": o.name,
                      "state_label": o.state_label, "host": o.host}
                     for o in affected[:max_objects]],
        "affected_count": len(affected),
        "labels": dict(incident.labels),
        "next_step": next_step(incident),
        "timeline": [{"t": e.t, "text": e.text} for e in story(timeline)],
    }
    if p.resource not in ("HOST", "VM") and p.detail:
        # Front-end and Alertmanager findings explain themselves (what failed, what to do: for
        # a follower beyond the Raft log retention, the manual recovery procedure).
        out["details"] = p.detail.splitlines()
    if incident.resolved_at is not None:
        out["resolved_at"] = incident.resolved_at
    if incident.impact:
        out["impact"] = incident.impact
    if console_url:
        out["console_url"] = console_url
    return out


# Timeline entries that are bookkeeping, not part of the story a person reads.
_NOT_STORY_KINDS = frozenset({"event", "notification", "muted"})
_NOT_STORY_TEXTS = ("remediation planning requested", "remediation plan ")


def story(timeline: Iterable[TimelineEntry], limit: int = 10) -> list[TimelineEntry]:
    """The timeline as a person reads it: from the opening on, raw events and bookkeeping left
    out, VMs joining one after another told as one line, nothing said twice; when it is long,
    the opening and the latest entries."""
    out: list[TimelineEntry] = []
    joined: list[TimelineEntry] = []

    def flush_joined() -> None:
        if len(joined) == 1:
            out.append(joined[0])
        elif joined:
            names = [e.data.get("name") or e.text.split("(")[0].replace("joined: VM", "").strip()
                     for e in joined]
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            out.append(TimelineEntry(joined[0].t, "decision",
                                     f"{len(joined)} VMs of the host joined: {shown}"))
        joined.clear()

    seen: set[str] = set()
    for e in timeline:
        if e.kind in _NOT_STORY_KINDS or e.text.startswith(_NOT_STORY_TEXTS):
            continue
        if e.kind == "decision" and e.text.startswith("joined: "):
            joined.append(e)
            continue
        flush_joined()
        if e.text in seen:
            continue
        seen.add(e.text)
        out.append(e)
    flush_joined()
    return out if len(out) <= limit else [out[0], *out[-(limit - 1):]]


def _reading_order(o: ObjectState) -> tuple:
    return (o.resource, int(o.id) if o.id.isdigit() else 0, o.id)


def next_step(incident: Incident) -> str:
    if incident.state == RESOLVED:
        return "nothing: the incident is resolved"
    if incident.state == REMEDIATING:
        return "oneha is remediating; a message follows when it is verified"
    if incident.state == ACKNOWLEDGED:
        return f"acknowledged by {incident.acknowledged_by}; no reminders until it resolves"
    if incident.labels.get("maintenance") == "true":
        return "host is in maintenance: no action"
    if incident.primary.resource in ("HOST", "VM"):
        return (f"oneha plans a recovery (a message follows when there is a plan to approve or "
                f"news); `oneha ack {incident.id}` stops the reminders")
    return (f"oneha does not remediate this kind of problem: a person acts; `oneha ack "
            f"{incident.id}` stops the reminders")
