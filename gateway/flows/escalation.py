"""Escalation: an incident not acknowledged in time is told to the next receiver of its route.

    start:     a new incident's first escalation clock per route that escalates
    escalate:  load the incident → mute → plan the escalation (pure) → compose → outbox

Part of the incident flow (`gateway/flows/incident.py`), which calls both; kept apart so each
file reads in one sitting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.adapters.store.incident_tx import Tx
from gateway.domain import composer, grouping
from gateway.domain.incidents import Incident, TimelineEntry
from gateway.flows.outcomes import FlushReport

if TYPE_CHECKING:
    from gateway.flows.incident import IncidentFlow

DELIVER_TASK = "oneha.deliver"
TIMELINE_READ = 200  # entries a message's story is told from (`story.story` picks)


def start(flow: "IncidentFlow", tx: Tx, incident: Incident) -> None:
    for route in flow.routes_for(incident.labels):
        if route.escalate_after is not None and route.escalate_to:
            due = grouping.escalation_due(incident.created_at, route.escalate_after, 0)
            tx.due(f"esc|{incident.id}|{route.route_id}|0", due)


def escalate(flow: "IncidentFlow", member: str, now: float) -> FlushReport:
    _, iid, route_id, level_s = member.split("|")
    level = int(level_s)

    def attempt(tx: Tx) -> FlushReport:
        inc = tx.incident(iid)
        route = next((r for r in flow.routes_for(inc.labels) if r.route_id == route_id),
                     None) if inc else None
        if inc is None or route is None:
            plan = grouping.EscalationPlan(False, "incident or route is gone")
        else:
            plan = grouping.plan_escalation(inc, route, level,
                                            flow.mutes(tx, [inc], now)[inc.id], now)
        tx.due(member, None)
        sent: list[str] = []
        if plan.send:
            summary = composer.incident_summary(inc, flow.store.timeline(iid, TIMELINE_READ),
                                                flow.settings.public_url)
            n = composer.escalation_message(inc, summary, level, plan.receiver, plan.reason, now)
            tx.send(DELIVER_TASK, [n.to_json()])
            tx.note_escalated(iid, plan.receiver)
            tx.add_timeline(iid, [TimelineEntry(now, "escalation", plan.reason,
                                                data={"level": level + 1})])
            sent.append(n.notification_id)
        if plan.next_due is not None:
            nxt = level + 1 if plan.send else level
            tx.due(f"esc|{iid}|{route_id}|{nxt}", plan.next_due)
        return FlushReport(member, plan.send, plan.reason, sent)
    return flow.store.transact(attempt, f"escalation {member}", now)
