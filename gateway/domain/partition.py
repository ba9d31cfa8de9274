"""The storm guard's finding as an incident of its own: one story for a partition.

When many hosts are in ERROR at once (a partition, a switch, a monitoring failure), the storm
guard stops every automatic action. People must hear that once, with the real reason and what to
check — not once per host, and not as "no room left" for each VM. Remediation records the firing
event when the guard blocks a plan; the reconciler records it too (and the resolved one when the
guard lets actions through again). The event id is the set of hosts in ERROR, so the same
finding recorded twice is one event, and a growing partition updates the same incident.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

from .events import Event
from .objects import HostInfo

OBJECT_ID = "storm"
OBJECT_KEY = f"cloud:{OBJECT_ID}"
_STATE = re.compile(r"^(\d+) of (\d+) hosts in ERROR$")


def storm_event(hosts: Sequence[HostInfo], reason: str, now: float) -> Event:
    failed = sorted((h for h in hosts if h.is_error), key=lambda h: h.id)
    considered = [h for h in hosts if not h.in_maintenance]  # as the guard counts them
    names = ", ".join(h.name for h in failed)
    state = f"{len(failed)} of {len(considered)} hosts in ERROR"  # read back by hosts_in_error
    steps = [
        f"Automatic remediation is stopped: {reason}.",
        f"Hosts in ERROR ({len(failed)}): {names}.",
        "Check first: can the front-end reach these hosts (network, switch, the monitoring "
        "daemon)? Are their VMs still running there? Recovering them elsewhere now could start a "
        "second copy of each VM.",
        "oneha recovers nothing by itself while this lasts. To recover a host's VMs knowingly: "
        "`oneha plans`, then `oneha approve PLAN`.",
    ]
    ids = ",".join(str(h.id) for h in failed)
    return Event(
        event_id=hashlib.sha256(f"storm:{ids}".encode()).hexdigest()[:32], source="remediation",
        resource="CLOUD", object_id=OBJECT_ID, name="storm guard", status="firing",
        condition="STORM/HOSTS_IN_ERROR", occurred_at=now, summary="\n".join(steps),
        labels={"resource": "CLOUD", "name": "storm guard", "severity": "critical",
                "state": state})


def hosts_in_error(state: str) -> dict[str, int]:
    """The counts a storm finding's state label holds (`failed`, `hosts`); {} for another."""
    found = _STATE.match(state)
    return {"failed": int(found[1]), "hosts": int(found[2])} if found else {}


def storm_over_event(incident_id: str, reason: str, now: float) -> Event:
    return Event(
        event_id=hashlib.sha256(f"storm-over:{incident_id}".encode()).hexdigest()[:32],
        source="remediation", resource="CLOUD", object_id=OBJECT_ID, name="storm guard",
        status="resolved", condition="STORM/OVER",
        occurred_at=now, summary=f"The storm is over: {reason}.",
        labels={"resource": "CLOUD", "name": "storm guard"})


def reconcile(hosts: Sequence[HostInfo], guard_allows: bool, reason: str,
              open_incident_id: str | None, now: float) -> list[Event]:
    """The reconciler's pass over the storm guard: its finding while it holds (the same event
    while the same hosts are in ERROR), the end of it once the guard lets actions through."""
    if not guard_allows:
        return [storm_event(hosts, reason, now)]
    if open_incident_id is not None:
        return [storm_over_event(open_incident_id, reason, now)]
    return []
