"""The web console: server-rendered pages of what oneha knows, readable on a phone.

Incidents with their objects, timeline, plans, impact and each receiver's delivery result;
silences (created and expired here too); the Raft view; the event log; the audit trail; the
configuration (secrets masked) with a test message per receiver. Pages speak English or
Brazilian Portuguese (`page_text.py`: the reader's switch, their configured language, their
browser's); times are written in UTC and shown by `static/oneha.js` in the reader's time zone.

Who may do what is the login's business (`auth.py`, one `before_request` for every blueprint:
reading needs a viewer, the silence forms an approver, the configuration page an admin); a
change records the logged-in user's name.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from markupsafe import Markup

from gateway.adapters.notifier import mask_url
from gateway.adapters.store import masked_url
from gateway.adapters.store.events import EventStore
from gateway.adapters.store.incidents import IncidentStore
from gateway.adapters.store.notifications import NotificationStore
from gateway.adapters.store.raft import RaftStore
from gateway.adapters.store.remediation import RemediationStore
from gateway.domain.model import parse_duration
from gateway.domain.incidents import TransitionError
from gateway.domain.muting import SilenceError
from gateway.domain.story import story
from gateway.flows.incident import IncidentFlow
from gateway.domain.timefmt import duration, utc
from gateway.web import page_text
from gateway.web.auth import principal, requires
from gateway.web.page_text import gettext as _

bp = Blueprint("console", __name__)
LANGUAGE_COOKIE_AGE = 365 * 86400


def _rt():
    return current_app.extensions["oneha"]


bp.add_app_template_filter(utc, "when")
bp.add_app_template_filter(duration, "duration")


@bp.record_once
def _pages_speak(state) -> None:
    page_text.install(state.app)


def _actor(typed: str | None) -> str:
    """The name recorded for a change: the logged-in user's (the gate let them in)."""
    return principal().actor(typed) or "console"


@bp.get("/language/<code>")
def language(code: str):
    """The reader's language switch: remembered in a cookie, back to the page they were on."""
    if code not in page_text.LANGUAGES:
        abort(404, description=f"no language {code!r} (known: {', '.join(page_text.LANGUAGES)})")
    target = request.args.get("next", "/")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        target = "/"  # only a page of this site: never an open redirect
    response = redirect(target)
    response.set_cookie(page_text.COOKIE, code, max_age=LANGUAGE_COOKIE_AGE, samesite="Lax",
                        httponly=True, secure=request.scheme == "https")
    return response


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
    # Each message the incident's group sent names its delivery records (composer.sent_entry).
    sent = [nid for e in timeline if e.kind == "notification"
            for nid in (e.data or {}).get("notifications", [])]
    notifications = NotificationStore.of(rt)
    sent += notifications.ids_of_incident(incident_id, found.created_at)  # escalations
    # The story people read (the opening, joins told once, no bookkeeping), and every entry as
    # recorded one click away.
    return render_template("console/incident.html", i=found, plans=plans, timeline=timeline,
                           story=story(timeline, limit=len(timeline) + 1),
                           deliveries=notifications.deliveries(sent))


@bp.post("/incidents/<incident_id>/ack")  # an approver's (the gate's rule for writes)
def acknowledge(incident_id: str):
    """No reminders and no escalation for it: someone is on it (its timeline says who)."""
    try:
        IncidentFlow(_rt()).transition(incident_id, "acknowledged",
                                       request.form.get("comment", "").strip()[:500]
                                       or "acknowledged in the console",
                                       _actor(None))
    except KeyError:
        abort(404, description=f"no incident {incident_id!r}")
    except TransitionError as exc:
        abort(409, description=str(exc))
    return redirect(url_for("console.incident", incident_id=incident_id))


@bp.get("/silences")
def silences():
    """The list, a form for a new one; after a change (POST-redirect-GET) what was done."""
    done = ""
    created = _found_silence(request.args.get("created"))
    if created is not None:
        done = Markup(_("Silence %(id)s created; it ends %(at)s.")) % {
            "id": created.id, "at": page_text.moment(created.ends_at)}
    elif _found_silence(request.args.get("expired")) is not None:
        done = _("Silence %(id)s expired.", id=request.args["expired"])
    prefill = {"matchers": request.args.get("matchers", "")[:2000]}
    return _silences_page(done=done, form=prefill)


def _found_silence(silence_id: str | None):
    return IncidentStore(_rt()).get_silence(silence_id[:64]) if silence_id else None


def _silences_page(status: int = 200, done: str = "", problem: str = "", form=None):
    store = IncidentStore(_rt())
    who = principal()
    author = who.name if who.via == "session" else ""
    return render_template("console/silences.html", now=time.time(), done=done,
                           problem=problem, form=form or {}, author=author,
                           silences=store.list_silences(include_expired=True)), status


@bp.post("/silences")  # an approver's (the gate's rule for writes)
def create_silence():
    form = request.form
    matchers = _matchers(form.get("matchers", ""))
    try:
        if not matchers:
            raise SilenceError("give at least one matcher, e.g. host=node07")
        try:
            length = parse_duration(form.get("duration", "").strip())
        except ValueError as exc:
            raise SilenceError(f"duration: {exc}") from None
        if length <= 0:
            raise SilenceError("duration: must be longer than 0")
        author = _actor(form.get("author"))
        store = IncidentStore(_rt())
        now = store.rt.clock()
        s = store.add_silence(matchers, now + length, author, form.get("comment", "")[:500],
                              starts_at=now)
    except SilenceError as exc:
        return _silences_page(400, problem=_("The silence was not created: %(why)s",
                                             why=str(exc)), form=form)
    return redirect(url_for("console.silences", created=s.id))


# A new matcher starts on a new line, or after a comma when `label=`, `label!=`, `label=~` or
# `label!~` follows (a comma inside a regex stays in it: host=~node0[12],node1.*).
_MATCHER_BREAK = re.compile(r"\n|,\s*(?=[A-Za-z_][A-Za-z0-9_]*\s*(?:=|!=|=~|!~))")


def _matchers(text: str) -> list[str]:
    return [m.strip(" \t\r,") for m in _MATCHER_BREAK.split(text) if m.strip(" \t\r,")]


@bp.post("/silences/<silence_id>/expire")
def expire_silence(silence_id: str):
    store = IncidentStore(_rt())
    try:
        store.expire_silence(silence_id, _actor(request.form.get("by")))
    except KeyError:
        abort(404, description=f"no silence {silence_id!r}")
    return redirect(url_for("console.silences", expired=silence_id))


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


@bp.get("/config")
@requires("admin")
def config():
    return _config_page()


def _config_page(results=None):
    settings = _rt().settings
    receivers = [{"name": r.name, "kind": r.kind, "language": r.language,
                  "urls": [mask_url(u.get_secret_value()) for u in r.urls]}
                 for r in settings.receivers]
    gateway = {"public_url": settings.public_url, "redis": masked_url(settings.redis_url),
               "endpoints": [masked_url(e) for e in settings.opennebula.endpoints]}
    return render_template("console/config.html", receivers=receivers, gateway=gateway,
                           results=results)


@bp.post("/config/test/<name>")
@requires("admin")
def send_test(name: str):
    """A test message to every URL of one receiver, now; the page shows each URL's result."""
    from gateway.flows.test_message import send_test as send

    settings = _rt().settings
    receiver = next((r for r in settings.receivers if r.name == name), None)
    if receiver is None:
        abort(404, description=f"no receiver {name!r} in the configuration")
    sent = send([receiver], settings.notify.send_timeout)
    rows = [{"kind": s.kind, "url": s.result.url, "ok": s.result.ok, "status": s.result.status,
             "error": s.result.error, "elapsed": s.result.elapsed} for s in sent]
    return _config_page({"receiver": name, "rows": rows, "total": len(rows),
                         "ok": sum(r["ok"] for r in rows)})
