"""The web console: read-only, server-rendered views of what oneha knows.

Incidents with their objects, timeline, plans and impact; silences; the Raft view; the event
log; the audit trail. Changing anything goes through the signed approval links, the API or the CLI — the console
itself holds no credentials and changes nothing.
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, render_template

from gateway.adapters.store.events import EventStore
from gateway.adapters.store.incidents import IncidentStore
from gateway.adapters.store.raft import RaftStore
from gateway.adapters.store.remediation import RemediationStore
from gateway.domain.story import story
from gateway.domain.timefmt import duration, utc

bp = Blueprint("console", __name__)


def _rt():
    return current_app.extensions["oneha"]


bp.add_app_template_filter(utc, "when")
bp.add_app_template_filter(duration, "duration")


@bp.get("/")
def incidents():
    store = IncidentStore(_rt())
    open_ = store.list(open_only=True, limit=200)
    recent = [i for i in store.list(open_only=False, limit=200) if not i.is_open][:50]
    return render_template("console/incidents.html", open=open_, recent=recent,
                           paused=RemediationStore.from_runtime(_rt()).paused())


@bp.get("/incidents/<incident_id>")
def incident(incident_id: str):
    rt = _rt()
    store = IncidentStore(rt)
    found = store.get(incident_id)
    if found is None:
        abort(404, description=f"no incident {incident_id!r}")
    remediation = RemediationStore.from_runtime(rt)
    plans = []
    for plan_id in remediation.plan_ids(incident_id):
        plan = remediation.plan(plan_id)
        if plan is not None:
            plans.append({"plan": plan, "state": remediation.plan_state(plan_id),
                          "outcomes": remediation.outcomes(plan_id)})
    timeline = store.timeline(incident_id)
    # The story people read (the opening, joins told once, no bookkeeping), and every entry as
    # recorded one click away.
    return render_template("console/incident.html", i=found, plans=plans, timeline=timeline,
                           story=story(timeline, limit=len(timeline) + 1))


@bp.get("/silences")
def silences():
    store = IncidentStore(_rt())
    return render_template("console/silences.html", now=time.time(),
                           silences=store.list_silences(include_expired=True))


@bp.get("/raft")
def raft():
    return render_template("console/raft.html", snap=RaftStore.of(_rt()).snapshot())


@bp.get("/events")
def events():
    """What came in, newest first, and the incident each object is in now (if open)."""
    rt = _rt()
    found = EventStore.of(rt).recent(200)
    store = IncidentStore(rt)
    open_for = {key: store.open_for(key) for key in {e.object_key for e in found}}
    return render_template("console/events.html", events=found, open_for=open_for)


@bp.get("/audit")
def audit():
    return render_template("console/audit.html",
                           entries=RemediationStore.from_runtime(_rt()).audit_log(count=200))
