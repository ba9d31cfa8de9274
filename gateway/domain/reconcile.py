"""The reconciler: what the host and VM pools say against what the open incidents say.

Hooks can miss a failure (hook not installed, oned restarted, the sender lost it) and a recovery
(nothing hooks "RUNNING" by default). Each pass compares the pools with the objects of the open
incidents and decides, per object, with a reason:
- `raise`   — a failing object (host ERROR; VM UNKNOWN, *_FAILURE, FAILED) no open incident holds
              as failing: a firing Event (source `reconciler`);
- `resolve` — an object an open incident holds as failing that is healthy again (host MONITORED or
              put in maintenance; VM RUNNING or settled where an operator put it: POWEROFF,
              STOPPED, SUSPENDED, UNDEPLOYED) or gone from the pool: a resolved Event;
- `wait`    — an object on its way (VM BOOT_UNKNOWN, PROLOG_MIGRATE_UNKNOWN, PENDING, a host in
              INIT): neither, until it settles — remediation in flight must not be called done.

Event ids are deterministic per failure episode: the failure's signature (state codes and, for a
VM, its history sequence) plus the time the reconciler first saw it (kept in the store), so
repeated passes dedupe, while the same VM failing again next week is a new event. A hook event for
the same failure has another id; the incident engine merges both by object key into one incident.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from . import states
from .events import Event
from .hook_events import host_event, vm_event, host_is_failing, vm_is_failing
from .objects import HostInfo, VmInfo

# Where an operator (or OpenNebula, on the operator's behalf) leaves a VM: not a failure.
VM_SETTLED_STATES = frozenset({states.VM_STATE_CODES[n] for n in
                               ("STOPPED", "SUSPENDED", "POWEROFF", "UNDEPLOYED", "DONE")})
HOST_HEALTHY_STATES = frozenset({states.HOST_MONITORED}) | states.HOST_OPERATOR_STATES


@dataclass(frozen=True, slots=True)
class Tracked:
    """An object held by an open incident, as the incident knows it."""

    object_key: str  # host:7, vm:42
    incident_id: str
    status: str  # firing | resolved (within the incident)
    name: str = ""
    last_seen: float = 0.0  # time of the incident's last event for the object


@dataclass(frozen=True, slots=True)
class FailureMark:
    """The reconciler's memory of a failing object: its failure and since when it sees it."""

    signature: str
    since: float


@dataclass(frozen=True, slots=True)
class Finding:
    object_key: str
    action: str  # raise | resolve | wait | known
    reason: str
    event: Event | None = None


@dataclass(frozen=True, slots=True)
class ReconcilePlan:
    findings: list[Finding]
    marks: dict[str, FailureMark]  # the memory after this pass (failing objects only)
    forget: list[str] = field(default_factory=list)  # marks of objects no longer failing

    @property
    def events(self) -> list[Event]:
        return [d.event for d in self.findings if d.event is not None]

    def count(self, action: str) -> int:
        return sum(1 for d in self.findings if d.action == action)


def reconcile(hosts: list[HostInfo], vms: list[VmInfo], tracked: dict[str, Tracked],
              marks: dict[str, FailureMark], now: float,
              own_hosts: frozenset[str] = frozenset()) -> ReconcilePlan:
    """`own_hosts`: ids of hosts oneha itself disabled or offlined — that state is oneha's
    remediation of the failure, not a recovery and not an operator's maintenance."""
    findings: list[Finding] = []
    new_marks: dict[str, FailureMark] = {}
    seen: set[str] = set()

    for info, key, failing, signature in _objects(hosts, vms):
        seen.add(key)
        held = tracked.get(key)
        if failing:
            mark = marks.get(key)
            if mark is None or mark.signature != signature:
                mark = FailureMark(signature, now)
            new_marks[key] = mark
            if held is not None and held.status == "firing":
                findings.append(Finding(key, "known", f"incident {held.incident_id} already "
                                                        f"holds it as failing"))
                continue
            event = _failure_event(info, _id("reconciler", key, signature, mark.since), now)
            why = ("no open incident holds it" if held is None else
                   f"incident {held.incident_id} holds it as recovered")
            findings.append(Finding(key, "raise", f"{info.state_label} and {why}", event))
            continue
        if held is None or held.status != "firing":
            continue
        if isinstance(info, HostInfo) and str(info.id) in own_hosts \
                and info.state in states.HOST_OPERATOR_STATES:
            findings.append(Finding(key, "known", f"{info.state_label} by oneha's own "
                                                    f"remediation: still failed"))
            continue
        if _healthy(info):
            event = _recovery_event(info, _id("reconciler", key, "resolved", held.incident_id,
                                              held.last_seen), now)
            findings.append(Finding(key, "resolve", f"{info.state_label} again; incident "
                                                      f"{held.incident_id} holds it as failing",
                                      event))
        else:
            findings.append(Finding(key, "wait", f"{info.state_label}: on its way, not settled"))

    for key, held in sorted(tracked.items()):
        if key in seen or held.status != "firing" or not key.startswith(("host:", "vm:")):
            continue
        event = _gone_event(held, _id("reconciler", key, "gone", held.incident_id,
                                      held.last_seen), now)
        why = (f"no longer in the pool (deleted or DONE); incident {held.incident_id} holds it "
               "as failing")
        findings.append(Finding(key, "resolve", why, event))
    forget = sorted(k for k in marks if k not in new_marks)
    return ReconcilePlan(findings=findings, marks=new_marks, forget=forget)


def _objects(hosts: list[HostInfo], vms: list[VmInfo]):
    for h in hosts:
        yield h, f"host:{h.id}", host_is_failing(h.state), f"HOST/{h.state}"
    for v in vms:
        last = v.last_history
        yield (v, f"vm:{v.id}", vm_is_failing(v.state, v.lcm_state),
               f"VM/{v.state}/{v.lcm_state}/{last.seq if last else ''}")


def _healthy(info: HostInfo | VmInfo) -> bool:
    if isinstance(info, HostInfo):
        return info.state in HOST_HEALTHY_STATES
    return info.is_running or info.state in VM_SETTLED_STATES


def _failure_event(info: HostInfo | VmInfo, event_id: str, now: float) -> Event:
    e = _as_event(info, event_id, now)
    return replace(e, summary=f"{e.summary} (found by the reconciler: no hook reported it)")


def _recovery_event(info: HostInfo | VmInfo, event_id: str, now: float) -> Event:
    e = _as_event(info, event_id, now)
    return replace(e, status="resolved", summary=f"{e.summary} (seen by the reconciler)")


def _as_event(info: HostInfo | VmInfo, event_id: str, now: float) -> Event:
    # The hook path's builder, so labels (routing, inhibition) are the same whoever saw it.
    build = host_event if isinstance(info, HostInfo) else vm_event
    e = build(info, event_id, "", "", now, None)
    labels = {k: v for k, v in e.labels.items() if not (k == "frontend" and not v)}
    return replace(e, source="reconciler", frontend="", labels=labels)


def _gone_event(held: Tracked, event_id: str, now: float) -> Event:
    resource, object_id = held.object_key.split(":", 1)
    resource = resource.upper()
    name = held.name or f"{resource.lower()} {object_id}"
    return Event(event_id=event_id, source="reconciler", resource=resource, object_id=object_id,
                 name=name, status="resolved", condition=f"{resource}/GONE", occurred_at=now,
                 summary=f"{resource.title() if resource == 'HOST' else resource} {name} "
                         f"(#{object_id}) no longer exists (seen by the reconciler)",
                 labels={"resource": resource, "name": name, "id": object_id})


def _id(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:32]
