"""Safety guards: each answers "may oneha act now?" with a `Verdict` that carries its reason.

They are evaluated when a plan is made (to tell the approver) and again right before every
action (the world may have changed in between): a guard that says no stops the action, and the
reason goes to the audit log and the incident timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .. import states
from ..backoff import backoff_delay
from ..objects import HostInfo, VmInfo
from .policy import StormConfig

RAFT_LEADER = 3


@dataclass(frozen=True, slots=True)
class Verdict:
    allow: bool
    reason: str
    code: str = "ok"  # machine-readable: storm, no_leader, no_quorum, changed, paused, ...

    def __bool__(self) -> bool:
        return self.allow


OK = Verdict(True, "ok")


def storm(hosts: Sequence[HostInfo], cfg: StormConfig) -> Verdict:
    """Many hosts in ERROR at once is a partition or a monitoring failure: recovering their VMs
    elsewhere would start second copies of VMs that still run. Hosts an operator took out
    (DISABLED/OFFLINE) do not count either way."""
    considered = [h for h in hosts if not h.in_maintenance]
    if not considered:
        return Verdict(True, "no hosts to judge a storm by")
    failed = [h for h in considered if h.is_error]
    pct = 100.0 * len(failed) / len(considered)
    summary = f"{len(failed)} of {len(considered)} hosts in ERROR ({pct:.0f}%)"
    if len(failed) > cfg.max_error_hosts:
        return Verdict(False, f"storm guard: {summary}, more than {cfg.max_error_hosts} hosts; "
                               "looks like a partition or a monitoring failure", "storm")
    # One host alone is the failure oneha exists for, not a partition: in a small cloud one
    # dead host of three is already 33 %, and refusing it would make the guard useless there.
    if len(failed) > 1 and pct > cfg.max_error_percent:
        return Verdict(False, f"storm guard: {summary}, more than {cfg.max_error_percent:g}%; "
                               "looks like a partition or a monitoring failure", "storm")
    return Verdict(True, f"no storm: {summary}")


@dataclass(frozen=True, slots=True)
class RaftView:
    """One front-end's answer to one.zone.raftstatus (state None: unreachable)."""

    endpoint: str
    state: int | None
    term: int | None = None


def raft(views: Sequence[RaftView]) -> Verdict:
    """Writes need one leader and a majority of the zone's servers reachable. A solo front-end
    (state 0, no Raft) is its own leader."""
    if not views:
        return Verdict(False, "no front-end answered one.zone.raftstatus", "no_leader")
    reachable = [v for v in views if v.state is not None]
    if len(views) == 1 and reachable and reachable[0].state == 0:
        return Verdict(True, "single front-end (solo)")
    leaders = [v for v in reachable if v.state == RAFT_LEADER]
    quorum = len(views) // 2 + 1
    if len(reachable) < quorum:
        return Verdict(False, f"no quorum: {len(reachable)} of {len(views)} front-ends reachable, "
                               f"{quorum} needed", "no_quorum")
    if not leaders:
        return Verdict(False, "the front-end Raft cluster has no leader", "no_leader")
    if len({v.term for v in leaders}) == 1 and len(leaders) > 1:
        return Verdict(False, f"{len(leaders)} front-ends claim leadership in the same term",
                        "split_leader")
    leader = max(leaders, key=lambda v: v.term or 0)
    return Verdict(True, f"leader {leader.endpoint}, {len(reachable)}/{len(views)} reachable")


def paused(pause: Mapping[str, str] | None) -> Verdict:
    if pause:
        who = pause.get("by", "?")
        return Verdict(False, f"remediation paused by {who}: {pause.get('reason') or 'no reason'}",
                        "paused")
    return OK


def host_left_alone(host: HostInfo | None, by_oneha: bool = False) -> Verdict:
    """An operator's DISABLED/OFFLINE host is maintenance: nothing of it is touched. A host
    oneha itself disabled (to keep the scheduler away) or briefly set OFFLINE (to refresh its
    monitoring, like `onehost forceupdate`) is not the operator's: `by_oneha`."""
    if host is None:
        return OK
    if host.in_maintenance and not by_oneha:
        return Verdict(False, f"host {host.name} is {host.state_label}: taken out by an operator, "
                               "left alone", "maintenance")
    return OK


@dataclass(frozen=True, slots=True)
class Expect:
    """What the VM must still look like for a planned action to make sense."""

    state: int | None
    lcm_states: tuple[int, ...]
    host_id: int | None

    def to_dict(self) -> dict:
        return {"state": self.state, "lcm_states": list(self.lcm_states), "host_id": self.host_id}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Expect":
        return cls(d.get("state"), tuple(d.get("lcm_states") or ()), d.get("host_id"))


def still_as_planned(expect: Expect, vm: VmInfo | None) -> Verdict:
    """The live re-read right before an action: act only on the state the plan was made for."""
    if vm is None:
        return Verdict(False, "VM no longer exists", "gone")
    if vm.is_running:
        return Verdict(False, f"VM {vm.id} is RUNNING again on {vm.host_name}", "running")
    if vm.state != expect.state or (expect.lcm_states and vm.lcm_state not in expect.lcm_states):
        want = "/".join(states.vm_state_label(expect.state, lcm) for lcm in expect.lcm_states)
        return Verdict(False, f"VM {vm.id} changed: now {vm.state_label}, planned for {want}",
                        "changed")
    if expect.host_id is not None and vm.host_id != expect.host_id:
        return Verdict(False, f"VM {vm.id} moved to host {vm.host_name} since the plan", "changed")
    if vm.locked:
        return Verdict(False, f"VM {vm.id} is locked in OpenNebula", "locked")
    return Verdict(True, f"VM {vm.id} still {vm.state_label} on {vm.host_name}")


def shared_persistent_disks(vm: VmInfo) -> list[str]:
    """Persistent images on shared storage: a second copy of the VM would write them too."""
    return [d.image or f"disk {d.disk_id}" for d in vm.disks
            if d.persistent and not d.on_local_storage]


def recreatable(vm: VmInfo) -> bool:
    """Delete-recreate rebuilds disks from their images: only safe to offer when no disk is a
    persistent image (whose content would be the only copy)."""
    return all(not d.persistent for d in vm.disks)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay: float
    reason: str


def next_attempt(attempts: int, max_retries: int, backoff: float,
                 maximum: float | None = None) -> RetryDecision:
    """After `attempts` failed tries (the first action counts as one): retry with exponential
    backoff, or stop and hand the VM to a human.

    The wait is capped at `maximum`, by default 10 × `backoff`: the VM stays down while oneha
    waits, and `max_retries` may be up to 20, where an uncapped wait would grow to weeks
    (10s · 2**19 is 60 days). With the default three retries (waits of 1×, 2×, 4×) the cap
    never bites."""
    if attempts > max_retries:
        return RetryDecision(False, 0.0, f"gave up after {attempts} attempts; needs a human")
    delay = backoff_delay(attempts, backoff, 10 * backoff if maximum is None else maximum)
    return RetryDecision(True, delay, f"attempt {attempts + 1} of {max_retries + 1} in {delay:g}s")


def hosts_with_room(hosts: Iterable[HostInfo], failed_host_id: int | None,
                    cluster_id: int | None) -> list[HostInfo]:
    """Where recovered VMs may go: monitored hosts of the same cluster, never the failed one
    (no automatic failback to a host that just failed)."""
    return [h for h in hosts if h.state == states.HOST_MONITORED and h.id != failed_host_id
            and (cluster_id is None or h.cluster_id in (None, cluster_id))]
