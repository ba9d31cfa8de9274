"""Findings over time become Events: an episode per object, from the poll that first saw its
problem to the poll that no longer does.

Event ids are deterministic per episode and condition, so a poll that runs twice, or that failed
half-way and runs again, records nothing twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..events import Event
from .health import Finding


@dataclass(frozen=True, slots=True)
class Episode:
    """An object's problem from the poll that first saw it to the poll that no longer does.

    Its condition may change on the way (a lagging follower falls out of the retention window);
    each change is a new firing Event of the same episode, so the incident stays one incident.
    """

    object_id: str
    condition: str
    resolved_condition: str
    name: str
    since: float  # first seen
    changed_at: float  # the current condition first seen
    seq: int = 0  # condition changes within the episode

    def firing_id(self) -> str:
        return _event_id("raft", self.object_id, self.since, self.seq, self.condition)

    def resolved_id(self) -> str:
        return _event_id("raft", self.object_id, self.since, "resolved")


@dataclass(frozen=True, slots=True)
class EventPlan:
    """What one poll changes: episodes to save, Events to record, episodes to forget after."""

    episodes: dict[str, Episode]  # every current episode (new, changed and continuing)
    firing: list[Event]  # one per current episode; re-sent every poll (same id: a dedup no-op)
    resolved: list[Event]
    ended: list[str]  # object ids to forget once their resolved Events are recorded


def plan_events(active: dict[str, Episode], findings: dict[str, Finding], now: float,
                zone_label: str = "zone0", healthy_summaries: dict[str, str] | None = None
                ) -> EventPlan:
    """Compare the episodes open so far with this poll's findings."""
    episodes: dict[str, Episode] = {}
    firing: list[Event] = []
    for object_id, f in sorted(findings.items()):
        ep = active.get(object_id)
        if ep is None:
            ep = Episode(object_id, f.condition, f.resolved_condition, f.name, since=now,
                         changed_at=now)
        elif ep.condition != f.condition:
            ep = Episode(object_id, f.condition, f.resolved_condition, f.name, since=ep.since,
                         changed_at=now, seq=ep.seq + 1)
        episodes[object_id] = ep
        firing.append(_event(ep.firing_id(), ep, "firing", f.condition, ep.changed_at, f.summary,
                             f.severity, zone_label, f.server_id, f.state))
    resolved: list[Event] = []
    ended: list[str] = []
    for object_id, ep in sorted(active.items()):
        if object_id in findings:
            continue
        summary = (healthy_summaries or {}).get(object_id) or _resolved_summary(ep)
        resolved.append(_event(ep.resolved_id(), ep, "resolved", ep.resolved_condition, now,
                               summary, "info", zone_label, None, None))
        ended.append(object_id)
    return EventPlan(episodes=episodes, firing=firing, resolved=resolved, ended=ended)


def _resolved_summary(ep: Episode) -> str:
    text = {
        "RAFT/LEADER_ELECTED": "a Raft leader is elected and stable",
        "RAFT/SINGLE_LEADER": "one Raft leader again",
        "RAFT/LEADER_STABLE": "the Raft leader is stable again",
        "RAFT/FAULT_TOLERANT": "the zone has an odd number of front-ends, at least three",
        "RAFT/SERVER_REACHABLE": f"front-end {ep.name} answers again",
        "RAFT/FOLLOWER_IN_SYNC": f"follower {ep.name} caught up with the leader",
        "RAFT/FOLLOWER_RECOVERED": f"follower {ep.name} is back in sync with the leader",
    }
    return text.get(ep.resolved_condition, f"{ep.name}: {ep.condition} is over")


def _event(event_id: str, ep: Episode, status: str, condition: str, at: float, summary: str,
           severity: str, zone_label: str, server_id: int | None, state: int | None) -> Event:
    labels = {"resource": "FRONTEND", "zone": zone_label, "name": ep.name, "severity": severity,
              "condition": condition}
    if "/" in ep.object_id:
        labels["frontend"] = ep.name
    if server_id is not None:
        labels["server_id"] = str(server_id)
    return Event(event_id=event_id, source="raft", resource="FRONTEND", object_id=ep.object_id,
                 name=ep.name, status=status, condition=condition, occurred_at=at, state=state,
                 frontend=labels.get("frontend", ""), summary=summary, labels=labels)


def _event_id(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:32]
