"""`/readiness`: if a host failed now, what would oneha do; does each cluster survive losing any
one host (N+1) or two (N+2); and is the alert path alive (heartbeats, refused keys, drills).

Read-only and cheap: it shows what the beat last computed (`oneha.readiness_check`, kept in
Redis), never polls OpenNebula itself — a page load must not cost a pass over every host.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from gateway.adapters.store.readiness import ReadinessStore
from gateway.domain.readiness import Report
from gateway.web import readiness_text

bp = Blueprint("readiness", __name__)
bp.record_once(lambda state: readiness_text.install(state.app))  # _() and its words


@bp.get("/readiness")
def readiness():
    rt = current_app.extensions["oneha"]
    store = ReadinessStore.of(rt)
    raw = store.report()
    report = Report.from_dict(raw) if raw else None
    heartbeats = store.heartbeats()
    bad_keys = store.bad_keys()
    frontends = sorted(set(rt.settings.ingest.frontends) | set(heartbeats))
    findings = {k: v for k, v in store.findings().items() if v.get("firing")}
    return render_template("console/readiness/page.html", report=report, now=rt.clock(),
                           interval=rt.settings.readiness.interval, frontends=frontends,
                           heartbeats=heartbeats, bad_keys=bad_keys,
                           drills=store.recent_drills(10), findings=findings)
