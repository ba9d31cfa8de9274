"""What people read of an incident: the summary a message carries (keys documented in
`notifications.py`), its story (the timeline told from the opening), and the next step."""

from __future__ import annotations

from typing import Any, Iterable

from . import phrases
from .i18n import SOURCE
from .incidents import ACKNOWLEDGED, REMEDIATING, RESOLVED, Incident, ObjectState, TimelineEntry


def summary(incident: Incident, timeline: Iterable[TimelineEntry] = (), max_objects: int = 50,
            console_url: str | None = None) -> dict[str, Any]:
    """The JSON-able incident summary a `Notification` carries (keys: notifications.py)."""
    p = incident.primary
    affected = sorted(incident.affected, key=_reading_order)
    out: dict[str, Any] = {
        "id": incident.id,
        "title": incident.title,
        "headline": incident.headline,
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
        "next": next_step_of(incident),
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
_NOT_STORY_TEXTS = ("remediation planning requested",)


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
    """What oneha does next, in English (messages phrase `next_step_of` per language)."""
    step = next_step_of(incident)
    return phrases.say(SOURCE, step["key"], step)


def next_step_of(incident: Incident) -> dict[str, Any]:
    """The next step as data: `{"key": ..., **params}` (phrases.py words it)."""
    if incident.state == RESOLVED:
        return {"key": "next_resolved"}
    if incident.state == REMEDIATING:
        return {"key": "next_remediating"}
    if incident.state == ACKNOWLEDGED:
        return {"key": "next_acknowledged", "by": incident.acknowledged_by}
    if incident.labels.get("maintenance") == "true":
        return {"key": "next_maintenance"}
    if incident.primary.resource == "ALERT":
        return {"key": "next_alert", "id": incident.id}
    if incident.primary.resource in ("HOST", "VM"):
        return {"key": "next_plan", "id": incident.id}
    return {"key": "next_person", "id": incident.id}
