"""The incidents and silences API (JSON; every error is `{"error", "detail"}`).

- `GET    /v1/incidents?state=open|all&limit=N`   newest first
- `GET    /v1/incidents/<id>`                     the incident, its objects and its timeline
- `POST   /v1/incidents/<id>/ack`                 `{"by": "...", "comment": "..."}`
- `GET    /v1/silences?all=1`                     active and pending (all: expired too)
- `POST   /v1/silences`                           `{"matchers": ["host=node07"], "author",
                                                  "comment", "ends_at" | "duration", "starts_at"?}`
- `GET    /v1/silences/<id>`
- `DELETE /v1/silences/<id>`                      expire it now
- `GET    /v1/events?limit=N&object=vm:42`        the event log, newest first (what came in:
                                                  hooks, reconciler, Raft monitor, Alertmanager)
- `GET    /v1/raft`                               the front-ends' Raft status at the last poll

Every route needs a login (session cookie, plus the `X-CSRF-Token` header on writes) or
`Authorization: Bearer <token>` (gateway/web/auth.py): reading needs a viewer, acknowledging and
silencing an approver. Writes take only `application/json` bodies. Who acts is the logged-in
user, or the token's name with the `by`/`author` given in the body; it is recorded in the
incident's timeline and the silence. The whole API is described by `/v1/openapi.json`.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from flask import Blueprint, current_app, jsonify, request

from gateway.adapters.store.events import EventStore
from gateway.adapters.store.incidents import IncidentStore
from gateway.adapters.store.raft import RaftStore
from gateway.flows.incident import IncidentFlow
from gateway.domain.incidents import TransitionError
from gateway.domain.model import parse_duration
from gateway.domain.muting import Silence, SilenceError
from gateway.errors import BadInput
from gateway.web.auth import principal
from gateway.web.bodies import json_object

bp = Blueprint("api", __name__)
OBJECT_KEY = re.compile(r"^(host|vm|frontend|alert):[^\s]{1,200}$")  # Event.object_key


T = TypeVar("T")

def _found(value: T | None, missing: str) -> T:
    """`value`, or the API's 404 saying what was not found."""
    if value is None:
        raise BadInput("not_found", missing, 404)
    return value


def _store() -> IncidentStore:
    return IncidentStore(current_app.extensions["oneha"])


def _who(data: dict[str, Any], key: str) -> str:
    """The logged-in user; for a token, its name with the `by`/`author` the caller gave."""
    return principal().actor(str(data.get(key) or ""))


def _limit() -> int:
    raw = request.args.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise BadInput("bad_query", "limit must be an integer from 1 to 1000")
    return int(raw)


def incident_json(inc, timeline=None) -> dict[str, Any]:
    d = inc.to_dict()
    d.pop("event_ids", None)
    d["title"] = inc.title
    if timeline is not None:
        d["timeline"] = [e.to_dict() for e in timeline]
    return d


def silence_json(s: Silence, now: float) -> dict[str, Any]:
    return {**s.to_dict(), "state": s.state(now)}


@bp.get("/v1/incidents")
def list_incidents():
    state = request.args.get("state", "open")
    if state not in ("open", "all"):
        raise BadInput("bad_query", "state must be open or all")
    found = _store().list(open_only=state == "open", limit=_limit())
    return jsonify(incidents=[incident_json(i) for i in found])


@bp.get("/v1/events")
def list_events():
    key = request.args.get("object")
    if key is not None and not OBJECT_KEY.match(key):
        raise BadInput("bad_query", "object must look like host:7, vm:42, frontend:zone0/1 or "
                                    "alert:<fingerprint>")
    events = EventStore.of(current_app.extensions["oneha"]).recent(_limit(), object_key=key)
    return jsonify(events=[e.to_dict(with_xml=False) for e in events])


@bp.get("/v1/incidents/<incident_id>")
def get_incident(incident_id: str):
    store = _store()
    inc = _found(store.get(incident_id), f"no incident {incident_id}")
    return jsonify(incident_json(inc, store.timeline(incident_id)))


@bp.post("/v1/incidents/<incident_id>/ack")
def ack_incident(incident_id: str):
    data = json_object()
    who = _who(data, "by")
    comment = str(data.get("comment") or "").strip()
    try:
        flow = IncidentFlow(current_app.extensions["oneha"])
        inc = flow.transition(incident_id, "acknowledged",
                              comment or "acknowledged through the API", who)
    except KeyError:
        raise BadInput("not_found", f"no incident {incident_id}", 404) from None
    except TransitionError as exc:
        raise BadInput("conflict", str(exc), 409) from None
    return jsonify(incident_json(inc))


@bp.get("/v1/silences")
def list_silences():
    store = _store()
    now = store.rt.clock()
    found = store.list_silences(include_expired=request.args.get("all") in ("1", "true", "yes"))
    return jsonify(silences=[silence_json(s, now) for s in found])


@bp.post("/v1/silences")
def create_silence():
    data = json_object()
    author = _who(data, "author")
    store = _store()
    now = store.rt.clock()
    matchers = data.get("matchers")
    if not isinstance(matchers, list) or not all(isinstance(m, str) for m in matchers):
        raise BadInput("bad_field", 'matchers must be a list of strings like "host=node07"')
    starts_at = _number(data, "starts_at", now)
    if "ends_at" in data and "duration" in data:
        raise BadInput("bad_field", "give ends_at or duration, not both")
    if "duration" in data:
        try:
            ends_at = starts_at + parse_duration(data["duration"])
        except ValueError as exc:
            raise BadInput("bad_field", f"duration: {exc}") from None
    elif "ends_at" in data:
        ends_at = _number(data, "ends_at", None)
    else:
        raise BadInput("missing_field", "ends_at (unix seconds) or duration (e.g. 2h) is required")
    try:
        s = store.add_silence(matchers, ends_at, author, str(data.get("comment") or ""),
                              starts_at=starts_at)
    except SilenceError as exc:
        raise BadInput("bad_silence", str(exc)) from None
    response = jsonify(silence_json(s, now))
    response.status_code = 201
    return response


def _number(data: dict[str, Any], key: str, default: float | None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput("bad_field", f"{key} must be unix seconds (a number)")
    return float(value)


@bp.get("/v1/silences/<silence_id>")
def get_silence(silence_id: str):
    store = _store()
    s = _found(store.get_silence(silence_id), f"no silence {silence_id}")
    return jsonify(silence_json(s, store.rt.clock()))


@bp.delete("/v1/silences/<silence_id>")
def expire_silence(silence_id: str):
    store = _store()
    who = principal().actor(request.args.get("by"))
    try:
        s = store.expire_silence(silence_id, who)
    except KeyError:
        raise BadInput("not_found", f"no silence {silence_id}", 404) from None
    return jsonify(silence_json(s, store.rt.clock()))


@bp.get("/v1/raft")
def raft_status():
    """The last poll of the front-ends (`oneha.raft_check`): leader, servers, findings."""
    snap = RaftStore.of(current_app.extensions["oneha"]).snapshot()
    return jsonify(polled=snap is not None, **(snap or {"at": None, "leader": None,
                                                        "servers": [], "findings": []}))
