"""Remediation plans: what oneha proposes to do for each VM of an incident, as plain data.

A plan is built from live objects (read through the OpenNebula client just before) and is the
one thing that is shown to approvers, stored, executed step by step and audited. Building it is
pure: the same inputs give the same plan, so a test can read it like a table.

Rules (see issue 4 and FACTS.md on `host_error.rb`, which oneha must do better than):
- VM UNKNOWN on a healthy host: refresh the host's monitoring first (the VM may be UNKNOWN only
  because monitoring was stale), and resume exactly that VM if it is still UNKNOWN a cycle later.
- VMs of a host in ERROR: resched when the system datastore is shared; delete-recreate (always
  with approval, state since deploy is lost) when no disk is a persistent image; else wait for
  the host. Optionally fence and/or disable the failed host first.
- VM in a boot/prolog/epilog failure state on a healthy host: recover --retry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from .. import states
from ..objects import HostInfo, VmInfo
from . import guards
from .guards import Expect
from .policy import RoutePolicy, vm_policy

# OpenNebula's one.vm.recover operation codes.
RECOVER_RETRY = 2
RECOVER_DELETE_RECREATE = 4
VM_ACTIONS = ("resume", "resched", "recreate", "retry")
HOST_ACTIONS = ("fence", "disable_host", "refresh_host")


@dataclass(frozen=True, slots=True)
class Step:
    key: str  # unique in the plan; with the plan id it is the action's idempotency key
    action: str  # fence | disable_host | refresh_host | resume | resched | recreate | retry
    reason: str
    vm_id: int | None = None
    vm_name: str = ""
    host_id: int | None = None
    host_name: str = ""
    expect: dict[str, Any] | None = None  # guards.Expect as a dict (VM steps)
    priority: int = 0
    needs_approval: bool = False  # even when the route says auto
    approval_reason: str = ""
    after: tuple[str, ...] = ()  # keys of steps that must have succeeded first
    wait_cycles: int = 0  # monitoring cycles to let pass after `after` before acting

    @property
    def is_vm_step(self) -> bool:
        return self.vm_id is not None


@dataclass(frozen=True, slots=True)
class Skip:
    """A VM the plan leaves alone, and why (shown to the approver like the steps)."""

    vm_id: int
    vm_name: str
    code: str  # opt_out | wait | wont_fit | maintenance | not_failed | other_plan | disallowed
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    plan_id: str
    incident_id: str
    kind: str  # host_error | vm_unknown | vm_failure | mixed | none
    created_at: float
    mode: str  # auto | approval | off: what the route (and the VMs) decided
    mode_reason: str
    steps: tuple[Step, ...] = ()
    skipped: tuple[Skip, ...] = ()
    host_id: int | None = None
    host_name: str = ""
    grace_until: float = 0.0  # no action before this (host must stay in ERROR until then)
    notes: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    # Labels oneha could not read (ONEHA_POLICY=migrate): told to the approver, in the message
    # and in `oneha plans`, never silently read as something else.
    warnings: tuple[str, ...] = ()
    # (vm id, host id): where the capacity check found room for each moved VM. The scheduler
    # picks the real host; readiness uses this to stack a second failure on the first (N+2).
    placements: tuple[tuple[int, int], ...] = ()

    @property
    def vm_steps(self) -> list[Step]:
        return [s for s in self.steps if s.is_vm_step]

    @property
    def vm_ids(self) -> list[int]:
        return [s.vm_id for s in self.vm_steps]  # type: ignore[misc]

    @property
    def needs_approval(self) -> bool:
        return self.mode == "approval" or any(s.needs_approval for s in self.steps)

    def step(self, key: str) -> Step:
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)

    def summary(self) -> list[dict[str, Any]]:
        """The `plan` list of a notification: one line per VM step."""
        return [{"vm_id": s.vm_id, "vm_name": s.vm_name, "action": s.action, "reason": s.reason,
                 "needs_approval": s.needs_approval or self.mode == "approval"}
                for s in self.vm_steps]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Plan":
        d = dict(d)
        d["steps"] = tuple(Step(**{**s, "after": tuple(s.get("after") or ())})
                           for s in d.get("steps", ()))
        d["skipped"] = tuple(Skip(**s) for s in d.get("skipped", ()))
        d["notes"] = tuple(d.get("notes", ()))
        d["warnings"] = tuple(d.get("warnings", ()))
        d["placements"] = tuple(tuple(p) for p in d.get("placements", ()))
        return cls(**d)


@dataclass(frozen=True)
class PlanInput:
    plan_id: str
    incident_id: str
    now: float
    policy: RoutePolicy
    vms: Sequence[VmInfo]  # the incident's VMs, read live (for a host: all VMs on that host)
    hosts: Sequence[HostInfo]  # the whole host pool, read live
    failed_host_id: int | None = None  # set for a host incident
    incident_started_at: float | None = None
    monitoring_interval: float = 60.0
    exclude_vm_ids: frozenset[int] = frozenset()  # already in an earlier plan of the incident
    # Hosts whose DISABLED/OFFLINE state is oneha's own doing (a plan disabled the failed host,
    # or a refresh set it OFFLINE for a moment): not an operator's maintenance.
    own_host_ids: frozenset[int] = frozenset()
    labels: dict[str, str] = field(default_factory=dict)


def build_plan(inp: PlanInput) -> Plan:
    hosts = {h.id: h for h in inp.hosts}
    failed = hosts.get(inp.failed_host_id) if inp.failed_host_id is not None else None
    steps: list[Step] = []
    skipped: list[Skip] = []
    notes: list[str] = []
    if inp.policy.matched:
        notes.append(f"policy override matched: {inp.policy.matched}")

    vms = sorted((v for v in inp.vms if v.id not in inp.exclude_vm_ids),
                 key=lambda v: (-vm_policy(v.labels).priority, v.id))
    on_failed = [v for v in vms if failed is not None and v.host_id == failed.id]
    elsewhere = [v for v in vms if v not in on_failed]

    grace_until = 0.0
    placements: dict[int, int] = {}
    if failed is not None:
        host_steps, host_skips, host_notes = _host_plan(inp, failed, on_failed, hosts, placements)
        steps += host_steps
        skipped += host_skips
        notes += host_notes
        started = inp.incident_started_at if inp.incident_started_at is not None else inp.now
        grace_until = started + inp.policy.grace_cycles * inp.monitoring_interval
    for vm in elsewhere:
        _vm_plan(inp, vm, hosts, steps, skipped)

    warnings = tuple(f"VM {vm.name} ({vm.id}): {vm_policy(vm.labels).note}" for vm in vms
                     if vm_policy(vm.labels).note)

    mode, mode_reason = _mode(inp.policy, steps)
    kinds = {_kind(s) for s in steps if s.is_vm_step}
    kind = "host_error" if failed is not None else (kinds.pop() if len(kinds) == 1 else
                                                    ("mixed" if kinds else "none"))
    return Plan(plan_id=inp.plan_id, incident_id=inp.incident_id, kind=kind, created_at=inp.now,
                mode=mode, mode_reason=mode_reason, steps=tuple(steps), skipped=tuple(skipped),
                host_id=failed.id if failed else None, host_name=failed.name if failed else "",
                grace_until=grace_until, notes=tuple(notes), labels=dict(inp.labels),
                warnings=warnings, placements=tuple(sorted(placements.items())))


def _kind(step: Step) -> str:
    return {"resume": "vm_unknown", "retry": "vm_failure"}.get(step.action, "host_error")


def _mode(policy: RoutePolicy, steps: Sequence[Step]) -> tuple[str, str]:
    if policy.mode == "off":
        return "off", "route policy is off: oneha only reports"
    if policy.mode == "approval":
        return "approval", "route policy requires approval"
    held = [s for s in steps if s.needs_approval]
    if held:
        return "auto", (f"route policy is auto; {len(held)} step(s) still need approval "
                        "(see each step)")
    return "auto", "route policy is auto"


@dataclass(frozen=True, slots=True)
class _Move:
    """A VM lost with its host that oneha would move elsewhere, if it fits there."""

    vm: VmInfo
    action: str  # resched | recreate
    reason: str
    held: bool  # needs approval even when the route says auto
    why: str  # why it is held


def _host_plan(inp: PlanInput, failed: HostInfo, vms: list[VmInfo], hosts: dict[int, HostInfo],
               placements: dict[int, int]) -> tuple[list[Step], list[Skip], list[str]]:
    """The failed host's steps: host steps (fence, disable), then a move per VM that fits."""
    ours = failed.id in inp.own_host_ids
    alone = guards.host_left_alone(failed, by_oneha=ours)
    if not alone:
        return [], [Skip(v.id, v.name, "maintenance", alone.reason) for v in vms], [alone.reason]
    if not failed.is_error and not (ours and failed.in_maintenance):
        return ([], [Skip(v.id, v.name, "not_failed", f"host {failed.name} is back") for v in vms],
                [f"host {failed.name} is {failed.state_label} again: nothing to do"])

    choices = [_host_vm_choice(inp.policy, vm) for vm in vms]
    moves = [c for c in choices if isinstance(c, _Move)]
    skipped = [c for c in choices if isinstance(c, Skip)]
    fits, wont = _capacity([m.vm for m in moves], failed, hosts)
    placements.update(fits)
    skipped += [Skip(vm.id, vm.name, "wont_fit", reason) for vm, reason in wont]
    notes = [f"{len(wont)} VM(s) will not fit on the remaining hosts"] if wont else []
    moving = [m for m in moves if m.vm.id in fits]
    if not moving:
        return [], skipped, notes  # no VM to move: fencing or disabling alone helps nobody
    host_steps = _host_steps(inp.policy, failed)
    before = tuple(s.key for s in host_steps)  # every VM moves only once the host is dealt with
    return host_steps + [_move_step(m, failed, before) for m in moving], skipped, notes


def _host_steps(policy: RoutePolicy, failed: HostInfo) -> list[Step]:
    """Fence the failed host (when a fencing command is set), then disable it (after fencing)."""
    steps: list[Step] = []
    if policy.fencing_command:
        steps.append(Step(key=f"fence:{failed.id}", action="fence", host_id=failed.id,
                          host_name=failed.name,
                          reason=f"fence {failed.name} so that it cannot run the VMs any more"))
    if policy.disable_failed_host and policy.allows("disable_host"):
        steps.append(Step(key=f"disable:{failed.id}", action="disable_host", host_id=failed.id,
                          host_name=failed.name, after=tuple(s.key for s in steps),
                          reason=f"disable {failed.name} to keep the scheduler away from it"))
    return steps


def _host_vm_choice(policy: RoutePolicy, vm: VmInfo) -> _Move | Skip:
    """Per VM of the failed host: resched (shared system datastore), delete-recreate (no
    persistent image), or wait for the host."""
    vp = vm_policy(vm.labels)
    if vp.mode == "off":
        return Skip(vm.id, vm.name, "opt_out", "ONEHA_POLICY opts this VM out")
    if vm.state != states.VM_ACTIVE or vm.lcm_state == states.LCM_RUNNING:
        return Skip(vm.id, vm.name, "not_failed", f"{vm.state_label}: not a VM lost with its host")
    held, why = vp.mode == "approval", ("ONEHA_POLICY asks for approval"
                                        if vp.mode == "approval" else "")
    if vm.system_ds_shared and policy.allows("resched"):
        shared_pers = guards.shared_persistent_disks(vm)
        if shared_pers and not policy.fencing_command:
            held, why = True, (f"persistent disk(s) {', '.join(shared_pers)} on shared storage "
                               "and no fencing: a second copy could corrupt them")
        return _Move(vm, "resched", "system datastore is shared: reschedule to another host",
                     held, why)
    if guards.recreatable(vm) and policy.allows("recreate"):
        return _Move(vm, "recreate", "system datastore is local: delete-recreate from its images "
                     "(changes since deploy are lost)", True,
                     "delete-recreate loses the VM's changes since deploy")
    why_wait = ("system datastore is local and a disk is a persistent image"
                if not vm.system_ds_shared else "resched is not an allowed action")
    if vm.system_ds_shared is None:
        why_wait = "OpenNebula did not say whether the system datastore is shared"
    return Skip(vm.id, vm.name, "wait", f"{why_wait}: waits for its host")


def _move_step(move: _Move, failed: HostInfo, before: tuple[str, ...]) -> Step:
    vm = move.vm
    return Step(
        key=f"vm:{vm.id}:{move.action}", action=move.action, vm_id=vm.id, vm_name=vm.name,
        host_id=failed.id, host_name=failed.name, reason=move.reason,
        expect=Expect(vm.state, (vm.lcm_state,) if vm.lcm_state is not None else (),
                      failed.id).to_dict(),
        priority=vm_policy(vm.labels).priority, needs_approval=move.held,
        approval_reason=move.why, after=before)


def _capacity(vms: Sequence[VmInfo], failed: HostInfo, hosts: dict[int, HostInfo]
              ) -> tuple[dict[int, int], list[tuple[VmInfo, str]]]:
    """First fit in priority order onto the hosts that remain; what does not fit is named."""
    targets = guards.hosts_with_room(hosts.values(), failed.id, failed.cluster_id)
    free = {h.id: [_free(h.max_mem, h.mem_usage), _free(h.max_cpu, h.cpu_usage)] for h in targets}
    fits: dict[int, int] = {}  # vm id -> the host it fits on
    wont: list[tuple[VmInfo, str]] = []
    for vm in vms:  # already sorted by priority
        mem = (vm.memory_mb or 0) * 1024
        cpu = int(round((vm.cpu or 0) * 100))
        for hid, room in free.items():
            if room[0] is None or (room[0] >= mem and (room[1] is None or room[1] >= cpu)):
                if room[0] is not None:
                    room[0] -= mem
                if room[1] is not None:
                    room[1] -= cpu
                fits[vm.id] = hid
                break
        else:
            most = max((r[0] or 0 for r in free.values()), default=0)
            wont.append((vm, f"needs {vm.memory_mb or 0} MB and {vm.cpu or 0:g} CPU; no remaining "
                             f"host has room (largest free memory {most // 1024} MB)"))
    return fits, wont


def _free(total: int | None, used: int | None) -> int | None:
    if total is None:
        return None  # unknown capacity: do not invent a limit
    return total - (used or 0)


def _vm_plan(inp: PlanInput, vm: VmInfo, hosts: dict[int, HostInfo], steps: list[Step],
             skipped: list[Skip]) -> None:
    policy = inp.policy
    vp = vm_policy(vm.labels)
    host = hosts.get(vm.host_id) if vm.host_id is not None else None
    if vp.mode == "off":
        skipped.append(Skip(vm.id, vm.name, "opt_out", "ONEHA_POLICY opts this VM out"))
        return
    if vm.is_running or not (vm.is_unknown or vm.is_failed):
        skipped.append(Skip(vm.id, vm.name, "not_failed", f"{vm.state_label}: nothing to do"))
        return
    alone = guards.host_left_alone(host, by_oneha=host is not None
                                   and host.id in inp.own_host_ids)
    if not alone:
        skipped.append(Skip(vm.id, vm.name, "maintenance", alone.reason))
        return
    if host is not None and host.is_error:
        skipped.append(Skip(vm.id, vm.name, "other_plan",
                            f"host {host.name} is in ERROR: the host's incident plans this VM"))
        return
    held = vp.mode == "approval"
    why = "ONEHA_POLICY asks for approval" if held else ""
    expect = Expect(vm.state, (vm.lcm_state,), vm.host_id).to_dict()
    if vm.is_unknown:
        if not policy.allows("resume"):
            skipped.append(Skip(vm.id, vm.name, "disallowed", "resume is not an allowed action"))
            return
        after: tuple[str, ...] = ()
        cycles = 0
        if host is not None and policy.allows("refresh_host"):
            key = f"refresh:{host.id}"
            if not any(s.key == key for s in steps):
                steps.append(Step(key=key, action="refresh_host", host_id=host.id,
                                  host_name=host.name,
                                  reason=f"refresh {host.name}'s monitoring: the VM may be UNKNOWN "
                                         "only because monitoring is stale"))
            after, cycles = (key,), 1
        steps.append(Step(key=f"vm:{vm.id}:resume", action="resume", vm_id=vm.id,
                          vm_name=vm.name, host_id=vm.host_id, host_name=vm.host_name or "",
                          reason="still UNKNOWN after a monitoring cycle on a healthy host: "
                                 "resume exactly this VM",
                          expect=expect, priority=vp.priority, needs_approval=held,
                          approval_reason=why, after=after, wait_cycles=cycles))
        return
    if not policy.allows("retry"):
        skipped.append(Skip(vm.id, vm.name, "disallowed", "retry is not an allowed action"))
        return
    steps.append(Step(key=f"vm:{vm.id}:retry", action="retry", vm_id=vm.id, vm_name=vm.name,
                      host_id=vm.host_id, host_name=vm.host_name or "",
                      reason=f"{states.LCM_STATES.get(vm.lcm_state, vm.lcm_state)}: recover "
                             "--retry of the failed operation",
                      expect=expect, priority=vp.priority, needs_approval=held,
                      approval_reason=why))


def execution_order(steps: Iterable[Step]) -> list[Step]:
    """Host steps first (fence, disable, refresh), then VMs by priority (higher first)."""
    rank = {"fence": 0, "disable_host": 1, "refresh_host": 2}
    return sorted(steps, key=lambda s: (rank.get(s.action, 3), -s.priority, s.vm_id or 0))
