"""The impact report: per VM, the answers people ask after an outage (DESIGN "Impact report").

- downtime: last seen running → running again, measured from OpenNebula's history records;
- memory state lost: yes for every recovery oneha makes from a dead host (recreate, resched of
  an UNKNOWN VM, resume, retry): only a live migration keeps memory, impossible from a dead host;
- connections dropped: yes whenever the memory state is lost;
- data-loss risk: from the disks — persistent on shared storage → only unflushed writes;
  non-persistent or on local (ssh) storage → changes since deploy lost; recreated → back to the
  image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import phrases
from .i18n import SOURCE
from .objects import HistoryRecord, VmInfo

# "none": the VM came back by itself (only its monitoring was stale): it never stopped.
MEMORY_KEEPING_ACTIONS = frozenset({"live_migrate", "none"})


@dataclass(frozen=True, slots=True)
class VmImpact:
    vm_id: int
    vm_name: str
    action: str
    downtime_s: float | None  # None: not running again (yet)
    down_since: float | None
    running_since: float | None
    memory_lost: bool
    connections_dropped: bool
    data_loss_risk: str  # in English; `data_loss` says it as data (phrases.py, per language)
    evidence: str  # where the two times came from
    data_loss: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def last_seen_running(before: VmInfo, failed_at: float | None) -> tuple[float | None, str]:
    """When the VM was last known to run: its last successful monitoring poll (read before any
    action, while it was UNKNOWN), else the end of its running section on the failed host, else
    when the failure was reported. RETIME is only a fallback: OpenNebula closes the section when
    the VM leaves the host (at the recovery), not when the host died."""
    if before.last_poll:
        return float(before.last_poll), "last monitoring poll"
    rec = before.last_history
    if rec is not None and rec.retime:
        return float(rec.retime), f"RETIME of history {rec.seq}"
    if failed_at is not None:
        return float(failed_at), "time the failure was reported"
    return None, "unknown"


def running_again(after: VmInfo, before: VmInfo, observed_at: float | None
                  ) -> tuple[float | None, str]:
    """When it ran again: the RSTIME of the history record opened by the recovery, else the time
    oneha saw it RUNNING."""
    if not after.is_running:
        return None, "not running"
    before_seq = before.last_history.seq if before.last_history else -1
    new: list[HistoryRecord] = [h for h in after.history if h.seq > before_seq and h.rstime]
    if new:
        rec = max(new, key=lambda h: h.seq)
        return float(rec.rstime), f"RSTIME of history {rec.seq} on {rec.host_name}"
    if observed_at is not None:
        return float(observed_at), "time oneha saw it RUNNING"
    return None, "unknown"


def data_loss(vm: VmInfo, action: str) -> dict[str, Any]:
    """The data-loss risk as a phrase: `{"key": "data_loss", "parts": [{"risk": ..., "image",
    "disk_id"}]}`, risk one of recreated | no_disks | shared | local | non_persistent."""
    if action == "recreate":
        parts = [{"risk": "recreated"}]
    elif not vm.disks:
        parts = [{"risk": "no_disks"}]
    else:
        parts = [{"risk": "shared" if d.persistent and not d.on_local_storage
                  else "local" if d.on_local_storage else "non_persistent",
                  "image": d.image or "", "disk_id": d.disk_id} for d in vm.disks]
    return {"key": "data_loss", "parts": parts}


def data_loss_risk(vm: VmInfo, action: str) -> str:
    risk = data_loss(vm, action)
    return phrases.say(SOURCE, risk["key"], risk)


def vm_impact(before: VmInfo, after: VmInfo, action: str, failed_at: float | None,
              observed_running_at: float | None = None) -> VmImpact:
    down, why_down = last_seen_running(before, failed_at)
    up, why_up = running_again(after, before, observed_running_at)
    downtime = max(0.0, up - down) if (down is not None and up is not None) else None
    memory_lost = action not in MEMORY_KEEPING_ACTIONS
    return VmImpact(vm_id=before.id, vm_name=before.name or after.name, action=action,
                    downtime_s=round(downtime, 3) if downtime is not None else None,
                    down_since=down, running_since=up, memory_lost=memory_lost,
                    connections_dropped=memory_lost, data_loss_risk=data_loss_risk(before, action),
                    data_loss=data_loss(before, action),
                    evidence=f"down: {why_down}; up: {why_up}")


def summary(impacts: list[VmImpact]) -> dict[str, Any]:
    known = [i.downtime_s for i in impacts if i.downtime_s is not None]
    return {"vms": len(impacts), "max_downtime_s": max(known) if known else None,
            "total_downtime_s": round(sum(known), 3) if known else None,
            "memory_lost": sum(1 for i in impacts if i.memory_lost)}


Row = dict[str, Any]


def merge_rows(held: list[Row] | None, new: list[Row]) -> list[Row]:
    """An incident's impact rows after another plan reported `new` ones: one row per VM, the
    latest report of a VM replacing its earlier one (a host incident can run several plans —
    its VMs first, then VMs that failed later — and the report covers them all)."""
    rows = {row.get("vm_id"): row for row in held or ()}
    rows.update((row.get("vm_id"), row) for row in new)
    return list(rows.values())
