"""Failover readiness: what oneha would do if a host failed now, and whether each cluster
survives losing any one host (N+1) or any two (N+2). Pure: no I/O, no clock but `now`.

There is no second planner here. For each host the live pools are turned into the world right
after that host failed — the host in ERROR, its running VMs UNKNOWN, as OpenNebula's monitor
leaves them — and handed to the remediation's own `build_plan`, with the policy the host's
incident would get (its labels are the hook event's, `hook_events.host_event`). What the plan
moves, holds for approval or leaves alone is the answer, with the planner's own reasons.

"Survives" is about room: a cluster survives the loss of a host when every VM oneha would move
(automatically or after an approval) fits on the hosts that remain. VMs left to people for other
reasons (local disks with persistent images, opted out, ...) are reported per host, with the
reason, but do not make the answer "no": no amount of spare capacity would change them.
N+2 stacks the second failure on the first: the second host's VMs only get the room the first
host's VMs left (`Plan.placements`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, replace
from itertools import combinations
from typing import Any, Callable, Iterable, Mapping, Sequence

from pydantic import Field

from . import states
from .correlation import event_labels
from .hook_events import host_event
from .model import Duration, Strict
from .objects import HostInfo, VmInfo
from .remediation.plans import Plan, PlanInput, build_plan
from .remediation.policy import RoutePolicy

AUTO, APPROVAL, PEOPLE = "auto", "approval", "people"
# When no recovery was measured yet: one action and its verification (resched + boot elsewhere).
DEFAULT_ACTION_SECONDS = 60.0
PolicyFor = Callable[[Mapping[str, str]], RoutePolicy]


@dataclass(frozen=True, slots=True)
class VmOutcome:
    """What would happen to one VM of the failed host."""

    vm_id: int
    vm_name: str
    outcome: str  # auto | approval | people
    action: str  # resched | recreate | "" (left alone)
    code: str  # the plan's skip code (wont_fit, wait, opt_out, ...) or "" for a step
    reason: str  # the planner's words: why it moves, why it waits for an approval, why not


@dataclass(frozen=True, slots=True)
class HostReadiness:
    host_id: int
    host_name: str
    cluster_id: int | None
    cluster: str
    state: str  # the host's state now (MONITORED, ...)
    mode: str  # the route's policy for this host's incident: auto | approval | off
    vms: tuple[VmOutcome, ...] = ()
    seconds: float = 0.0  # estimated time until every recovered VM runs again
    notes: tuple[str, ...] = ()

    def count(self, outcome: str) -> int:
        return sum(1 for v in self.vms if v.outcome == outcome)

    @property
    def wont_fit(self) -> list[VmOutcome]:
        return [v for v in self.vms if v.code == "wont_fit"]

    @property
    def survivable(self) -> bool:
        """Losing this host leaves no VM oneha would move without room."""
        return not self.wont_fit

    @property
    def at_risk(self) -> int:
        """VMs nothing automatic would bring back (left to people)."""
        return self.count(PEOPLE)


@dataclass(frozen=True, slots=True)
class ClusterReadiness:
    cluster_id: int | None
    cluster: str
    hosts: tuple[str, ...]
    survives_one: bool
    survives_two: bool | None  # None: fewer than three hosts (losing two leaves nothing)
    cannot_lose: tuple[tuple[str, int], ...] = ()  # (host, VMs that would not fit)
    cannot_lose_two: tuple[tuple[str, str, int], ...] = ()  # (host, host, VMs without room)

    @property
    def label(self) -> str:
        return self.cluster or (str(self.cluster_id) if self.cluster_id is not None else "-")

    def headline(self) -> str:
        """What the incident says when the answer is no."""
        if self.survives_one:
            return f"cluster {self.label} survives the loss of any one host"
        host, n = max(self.cannot_lose, key=lambda x: x[1])
        more = (f" (and {len(self.cannot_lose) - 1} other host(s))"
                if len(self.cannot_lose) > 1 else "")
        return f"cluster {self.label} can no longer lose {host}: {n} VMs would not fit{more}"


@dataclass(frozen=True)
class Report:
    at: float
    hosts: tuple[HostReadiness, ...]
    clusters: tuple[ClusterReadiness, ...]
    action_seconds: Mapping[str, float] = field(default_factory=dict)  # measured, per action
    measured: bool = False  # False: DEFAULT_ACTION_SECONDS, no recovery measured yet

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "measured": self.measured,
                "action_seconds": dict(self.action_seconds),
                "clusters": [asdict(c) for c in self.clusters],
                "hosts": [{**asdict(h), "survivable": h.survivable, "at_risk": h.at_risk,
                           "auto": h.count(AUTO), "approval": h.count(APPROVAL)}
                          for h in self.hosts]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Report":
        hosts = tuple(HostReadiness(
            **{**{k: v for k, v in h.items()
                  if k not in ("survivable", "at_risk", "auto", "approval")},
               "vms": tuple(VmOutcome(**v) for v in h["vms"]), "notes": tuple(h["notes"])})
            for h in d["hosts"])
        clusters = tuple(ClusterReadiness(
            **{**c, "hosts": tuple(c["hosts"]),
               "cannot_lose": tuple(tuple(x) for x in c["cannot_lose"]),
               "cannot_lose_two": tuple(tuple(x) for x in c["cannot_lose_two"])})
            for c in d["clusters"])
        return cls(at=d["at"], hosts=hosts, clusters=clusters,
                   action_seconds=dict(d.get("action_seconds") or {}),
                   measured=bool(d.get("measured")))


# ---- the hypothetical failure ---------------------------------------------------------------

def failed_world(hosts: Sequence[HostInfo], vms: Sequence[VmInfo], lost: Iterable[int]
                 ) -> tuple[list[HostInfo], list[VmInfo]]:
    """The pools as OpenNebula's monitor would leave them once the `lost` hosts stop answering:
    those hosts in ERROR, their ACTIVE VMs UNKNOWN; everything else as it is now."""
    lost = set(lost)
    hosts_after = [replace(h, state=states.HOST_ERROR) if h.id in lost else h for h in hosts]
    vms_after = [replace(v, lcm_state=states.LCM_UNKNOWN)
                 if v.host_id in lost and v.state == states.VM_ACTIVE else v for v in vms]
    return hosts_after, vms_after


def host_labels(host: HostInfo) -> dict[str, str]:
    """The labels the host's incident would carry (the hook event's), so the route's policy
    override that would apply then applies now."""
    failed = replace(host, state=states.HOST_ERROR)
    event = host_event(failed, "0" * 32, "", "readiness", 0.0, "")
    labels = event_labels(event)
    labels.pop("frontend", None)
    return labels


def plan_loss(host: HostInfo, hosts: Sequence[HostInfo], vms: Sequence[VmInfo],
              policy_for: PolicyFor, now: float, monitoring_interval: float,
              also_lost: Iterable[int] = ()) -> Plan:
    """The remediation's plan for `host`'s failure (with `also_lost` down as well)."""
    labels = host_labels(host)
    hosts_after, vms_after = failed_world(hosts, vms, {host.id, *also_lost})
    on_host = [v for v in vms_after if v.host_id == host.id]
    return build_plan(PlanInput(
        plan_id=f"readiness.{host.id}", incident_id=f"readiness:host:{host.id}", now=now,
        policy=policy_for(labels), vms=on_host, hosts=hosts_after, failed_host_id=host.id,
        incident_started_at=now, monitoring_interval=monitoring_interval, labels=labels))


def outcomes(plan: Plan) -> tuple[VmOutcome, ...]:
    """Each VM of the plan: moved automatically, after an approval, or left to people."""
    notes = {w.split(": ", 1)[0]: w.split(": ", 1)[1] for w in plan.warnings if ": " in w}
    out = []
    for step in plan.vm_steps:
        label = f"VM {step.vm_name} ({step.vm_id})"
        if plan.mode == "off":
            out.append(VmOutcome(step.vm_id, step.vm_name, PEOPLE, "", "off", plan.mode_reason))
            continue
        held = step.needs_approval or plan.mode == "approval"
        why = step.approval_reason or (plan.mode_reason if plan.mode == "approval" else "")
        if label in notes:
            why = notes[label]
        # held: what it waits for is the news (the move itself is the usual one)
        reason = (f"{step.action} after approval: {why}" if held and why
                  else f"{step.action}: {step.reason}")
        out.append(VmOutcome(step.vm_id, step.vm_name, APPROVAL if held else AUTO, step.action,
                             "", reason))
    for skip in plan.skipped:
        if skip.code == "not_failed":
            continue  # powered off, pending...: nothing a host failure changes for it
        out.append(VmOutcome(skip.vm_id, skip.vm_name, PEOPLE, "", skip.code, skip.reason))
    return tuple(sorted(out, key=lambda v: v.vm_id))


def recovery_seconds(plan: Plan, grace_cycles: int, monitoring_interval: float,
                     action_seconds: Mapping[str, float], concurrency: int) -> float:
    """Grace period, then the moves in waves of `concurrency`, each wave as long as its slowest
    action (measured, else DEFAULT_ACTION_SECONDS); an approval's wait is not counted."""
    moves = plan.vm_steps
    if not moves:
        return 0.0
    per = max(action_seconds.get(s.action, DEFAULT_ACTION_SECONDS) for s in moves)
    waves = math.ceil(len(moves) / max(1, concurrency))
    return grace_cycles * monitoring_interval + waves * per


def measured_action_seconds(samples: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Median seconds from an action to the VM running again, per action."""
    by_action: dict[str, list[float]] = {}
    for action, seconds in samples:
        if seconds >= 0:
            by_action.setdefault(action, []).append(seconds)
    return {a: round(statistics.median(v), 1) for a, v in sorted(by_action.items())}


# ---- the whole cloud ------------------------------------------------------------------------

@dataclass(frozen=True)
class Inputs:
    hosts: Sequence[HostInfo]
    vms: Sequence[VmInfo]
    policy_for: PolicyFor
    now: float
    monitoring_interval: float = 60.0
    concurrency: int = 8
    action_seconds: Mapping[str, float] = field(default_factory=dict)


def assess(inp: Inputs) -> Report:
    """Every host that may fail (MONITORED: a host already in ERROR or taken out by an operator
    is not the next failure) and every cluster."""
    candidates = [h for h in sorted(inp.hosts, key=lambda h: h.id)
                  if h.state == states.HOST_MONITORED]
    results: list[HostReadiness] = []
    plans: dict[int, Plan] = {}
    for host in candidates:
        plan = plan_loss(host, inp.hosts, inp.vms, inp.policy_for, inp.now,
                         inp.monitoring_interval)
        plans[host.id] = plan
        policy = inp.policy_for(host_labels(host))
        results.append(HostReadiness(
            host_id=host.id, host_name=host.name, cluster_id=host.cluster_id,
            cluster=host.cluster or "", state=host.state_label, mode=plan.mode,
            vms=outcomes(plan),
            seconds=recovery_seconds(plan, policy.grace_cycles, inp.monitoring_interval,
                                     inp.action_seconds, inp.concurrency),
            notes=plan.notes))
    clusters = _clusters(inp, candidates, results)
    return Report(at=inp.now, hosts=tuple(results), clusters=clusters,
                  action_seconds=dict(inp.action_seconds), measured=bool(inp.action_seconds))


def _clusters(inp: Inputs, candidates: list[HostInfo], results: list[HostReadiness]
              ) -> tuple[ClusterReadiness, ...]:
    by_cluster: dict[int | None, list[HostInfo]] = {}
    for h in candidates:
        by_cluster.setdefault(h.cluster_id, []).append(h)
    found = {r.host_id: r for r in results}
    out = []
    for cid, members in sorted(by_cluster.items(), key=lambda x: (x[0] is None, x[0] or 0)):
        cannot = tuple((h.name, len(found[h.id].wont_fit)) for h in members
                       if not found[h.id].survivable)
        pairs = (tuple(_pair_loss(inp, a, b) for a, b in combinations(members, 2))
                 if len(members) >= 3 else ())
        bad_pairs = tuple(p for p in pairs if p[2])
        out.append(ClusterReadiness(
            cluster_id=cid, cluster=members[0].cluster or "", hosts=tuple(h.name for h in members),
            survives_one=not cannot,
            survives_two=None if len(members) < 3 else not bad_pairs,
            cannot_lose=cannot, cannot_lose_two=bad_pairs))
    return tuple(out)


def _pair_loss(inp: Inputs, a: HostInfo, b: HostInfo) -> tuple[str, str, int]:
    """Lose `a`, then `b`: b's VMs get what is left once a's VMs took their room."""
    first = plan_loss(a, inp.hosts, inp.vms, inp.policy_for, inp.now, inp.monitoring_interval,
                      also_lost=(b.id,))
    taken = _room_taken(first, inp.vms)
    hosts_after = [replace(h, mem_usage=(h.mem_usage or 0) + taken[h.id][0],
                           cpu_usage=(h.cpu_usage or 0) + taken[h.id][1])
                   if h.id in taken else h for h in inp.hosts]
    second = plan_loss(b, hosts_after, inp.vms, inp.policy_for, inp.now,
                       inp.monitoring_interval, also_lost=(a.id,))
    lost = sum(1 for s in (*first.skipped, *second.skipped) if s.code == "wont_fit")
    return a.name, b.name, lost


def _room_taken(plan: Plan, vms: Sequence[VmInfo]) -> dict[int, tuple[int, int]]:
    """Memory (KB) and CPU (x100) the plan's moves take on each target host."""
    by_id = {v.id: v for v in vms}
    taken: dict[int, tuple[int, int]] = {}
    for vm_id, host_id in plan.placements:
        vm = by_id.get(vm_id)
        if vm is None:
            continue
        mem, cpu = taken.get(host_id, (0, 0))
        taken[host_id] = (mem + (vm.memory_mb or 0) * 1024,
                          cpu + int(round((vm.cpu or 0) * 100)))
    return taken


class ReadinessConfig(Strict):
    """`readiness:` in the YAML: the beat recomputes readiness this often."""

    # None: as the reconciler — both read the whole host and VM pools, so a gateway that is
    # not to poll OpenNebula (reconciler.enabled: false) does not poll it for readiness either.
    enabled: bool | None = None
    interval: Duration = Field(default=300.0, gt=0)
