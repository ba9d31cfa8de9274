"""The one composer: a group flush's (or an escalation's) decision → the notifications to send.

Every message of an incident's story leaves from here, and from here only: the group flush
(`grouping.plan_flush`) decides *what* is told and when; this module decides *to whom* and
*in which order*. Each notification names the one its receiver must have had before it
(`Notification.after`): the delivery task waits for that one, so two messages queued a moment
apart can never overtake each other — [FIRING] is read first, the resolve notice last.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable

from . import grouping, story
from .incidents import Incident, TimelineEntry
from .notifications import Notification, notification_id_for


def incident_summary(incident: Incident, timeline: Iterable[TimelineEntry], public_url: str
                     ) -> dict[str, Any]:
    return story.summary(incident, timeline, console_url=console_url(public_url, incident.id))


def console_url(public_url: str, incident_id: str) -> str:
    return f"{public_url.rstrip('/')}/incidents/{incident_id}"


def group_messages(plan: grouping.FlushPlan, group: grouping.GroupState,
                   summaries: dict[str, dict[str, Any]],
                   escalated_to: dict[str, list[str]], now: float
                   ) -> tuple[list[Notification], grouping.GroupState]:
    """The notifications of a flush that sends, and the group state that remembers them.
    `escalated_to`: per resolved incident, the receivers it was escalated to (they hear that
    it is over, once, unless they are the group's own receivers)."""
    summary = grouping.group_summary(plan, summaries, group)
    state = plan.state
    last_ids = dict(state.last_ids)
    out: list[Notification] = []
    for receiver in state.receivers:
        n = Notification(
            notification_id=notification_id_for(group.id, plan.transition or "firing", state.seq,
                                                 receiver),
            receiver=receiver, transition=plan.transition or "firing", incident=summary,
            created_at=now, after=last_ids.get(receiver, ""))
        last_ids[receiver] = n.notification_id
        out.append(n)
    for i in plan.resolved:
        for receiver in escalated_to.get(i.id, ()):
            if receiver not in state.receivers:
                out.append(Notification(notification_id_for(i.id, "resolved", 0, receiver),
                                        receiver, "resolved", summaries[i.id], now))
    return out, replace(state, last_ids=last_ids)


def escalation_message(incident: Incident, summary: dict[str, Any], level: int, receiver: str,
                       reason: str, now: float) -> Notification:
    summary = {**summary, "escalation": {"level": level + 1, "reason": reason}}
    return Notification(notification_id_for(incident.id, "escalated", level, receiver), receiver,
                        "escalated", summary, now)


def sent_entry(plan: grouping.FlushPlan, group: grouping.GroupState, now: float
               ) -> TimelineEntry:
    """The timeline line each incident of a sent message gets (the console's delivery story)."""
    receivers = ", ".join(plan.state.receivers) or "(no receiver)"
    transition = plan.transition or "firing"
    return TimelineEntry(now, "notification",
                         f"told {receivers}: {plan.transition} (message {plan.state.seq} of "
                         f"group {group.key})",
                         data={"group": group.id, "seq": plan.state.seq,
                               "transition": plan.transition,
                               # the delivery records of these messages (the console shows them)
                               "notifications": [
                                   notification_id_for(group.id, transition, plan.state.seq, r)
                                   for r in plan.state.receivers]})
