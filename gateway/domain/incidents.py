"""Incidents: the model. One incident per failing object, VMs of a failed host joined to the
host's incident (`correlation.py` decides which); what people read of it is `story.py`.

States: firing → acknowledged → remediating → resolved (see `TRANSITIONS`). An incident resolves
when every object in it is healthy again (a later `status=resolved` event or the reconciler),
when an operator puts its host in maintenance, or by `transition(..., "resolved")` — remediation
does so when every VM of a failed host runs again.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Iterable

from . import partition, phrases, states
from .events import Event
from .i18n import SOURCE
from .objects import VmInfo

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
    text: str  # in English: the timeline's line, and what a message says without a `code`
    at: float
    approval_url: str = ""
    plan: tuple[dict[str, Any], ...] = ()  # the plan lines an approver decides on
    code: str = ""  # what it says, as data (phrases.py words it per language): approval_needed...
    params: dict[str, Any] = field(default_factory=dict)

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
        # Not dataclasses.asdict: its deep copy is most of the cost of saving a host incident
        # with hundreds of VMs, once per event; every field here is a JSON value already.
        return {name: getattr(self, name) for name in _OBJECT_FIELDS}


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
        """One line in English, as recorded and listed; messages phrase `headline` per language."""
        return phrases.say(SOURCE, self.headline["key"], self.headline)

    @property
    def headline(self) -> dict[str, Any]:
        """What the title says, as data: `{"key": <shape>, **params}` (phrases.py words it)."""
        p = self.primary
        vms = len(self.affected)
        if p.resource == "HOST":
            if self.state == RESOLVED and self.impact:
                # Resolved by remediation: the VMs run again; the host may well still be broken
                # (or disabled by oneha), so do not claim it recovered.
                return {"key": "host_vms_run_again", "host": p.name, "vms": len(self.impact)}
            if self.state == RESOLVED:
                return {"key": "host_recovered", "host": p.name,
                        "was": self._first_condition_label(), "vms": vms}
            return {"key": "host_failed", "host": p.name, "state": p.state_label, "vms": vms}
        if p.resource == "VM":
            vm = {"vm": p.name, "id": p.id, "host": p.host}
            if self.merged_into:
                return {"key": "vm_merged", **vm, "state": p.state_label, "into": self.merged_into}
            if self.state == RESOLVED:
                return {"key": "vm_recovered", **vm}
            return {"key": "vm_failed", **vm, "state": p.state_label}
        if p.resource == "ALERT":
            said = p.detail.splitlines()[0] if p.detail else ""
            shown = said or f"{p.name} is firing"
            return {"key": "alert", "said": said, "name": p.name,
                    "resolved": self.state == RESOLVED,
                    "host": p.host if p.host and p.host not in shown else ""}
        if p.resource == "CLOUD" and self.state == RESOLVED:
            return {"key": "storm_over"}
        if p.resource == "CLOUD":
            return {"key": "storm_guard", "state": p.state_label,
                    **partition.hosts_in_error(p.state_label)}
        return {"key": "finding", "resource": p.resource, "name": p.name,
                "condition": p.condition, "resolved": self.state == RESOLVED}

    def _first_condition_label(self) -> str:
        return self.labels.get("state", self.primary.condition.split("/")[-1])

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in _INCIDENT_FIELDS}  # shallow, see ObjectState
        d["labels"] = dict(self.labels)
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
                    plan: Iterable[dict[str, Any]] = (), code: str = "",
                    params: dict[str, Any] | None = None) -> "Incident | None":
        """The incident with one more notice; None when a notice with `key` is kept already."""
        if kind not in NOTICE_KINDS:
            raise ValueError(f"notice kind {kind!r} is not one of {', '.join(NOTICE_KINDS)}")
        if any(n.key == key for n in self.notices):
            return None
        notice = Notice(len(self.notices) + 1, kind, key, text, now, approval_url, tuple(plan),
                        code, dict(params or {}))
        return replace(self, notices=self.notices + (notice,), updated_at=now,
                       version=self.version + 1)


def incident_id_for(event: Event) -> str:
    """Readable and deterministic: the same first event (processed twice) names the same incident."""
    obj = re.sub(r"[^A-Za-z0-9]+", "-", event.object_id).strip("-") or "x"
    return f"{event.resource.lower()}-{obj}-{event.event_id[:8]}"


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


_OBJECT_FIELDS = tuple(f.name for f in fields(ObjectState))
_INCIDENT_FIELDS = tuple(f.name for f in fields(Incident))
