"""`POST /v1/drills` and `POST /v1/heartbeats`: what front-ends' senders sign besides events.

Both are signed exactly like `/v1/events` (HMAC of "<timestamp>.<body>" with the front-end's key,
the same headers, the same window). A drill that came back is marked reached and becomes its
DRILL incident (for the drill receiver only); a heartbeat is the front-end's sign of life. A
request signed as a configured front-end whose signature no key matches is remembered (a key
rotated on one side only) before the 401: the dead man's switch turns it into an incident.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from ..adapters.store.readiness import ReadinessStore
from ..domain import drills, signing
from ..domain.json_bodies import parse_json_object
from ..errors import BadInput
from ..flows.drills import DrillFlow
from ..runtime import Runtime

bp = Blueprint("drills", __name__)


def _signed(runtime: Runtime) -> tuple[str, dict]:
    body = request.get_data(cache=False)
    now = runtime.clock()
    keys = runtime.cached("ingest_frontend_keys", lambda: {
        name: [k.get_secret_value().encode("utf-8") for k in fe.keys]
        for name, fe in runtime.settings.ingest.frontends.items()})
    claimed = request.headers.get("X-OneHA-Frontend") or ""
    try:
        frontend = signing.verify(
            frontend=claimed, timestamp=request.headers.get("X-OneHA-Timestamp"),
            signature_header=request.headers.get("X-OneHA-Signature"), body=body, keys=keys,
            now=now, window=runtime.settings.ingest.timestamp_window)
    except BadInput as exc:
        if exc.error == "bad_signature" and claimed in keys:
            ReadinessStore.of(runtime).note_bad_key(claimed, now)
        raise
    payload = parse_json_object(body)
    said = payload.get("frontend")
    if said is not None and said != frontend:
        raise BadInput("frontend_mismatch", f"body says front-end {said!r} but the request was "
                                            f"signed as {frontend!r}")
    return frontend, payload


def _number(payload: dict, key: str) -> float | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput("bad_field", f"field {key!r} must be a number")
    return float(value)


@bp.post("/v1/drills")
def drill_back():
    runtime: Runtime = current_app.extensions["oneha"]
    frontend, payload = _signed(runtime)
    drill_id = payload.get("drill_id")
    if not isinstance(drill_id, str) or not drills.DRILL_ID.match(drill_id):
        raise BadInput("bad_field", "drill_id must be 16 to 32 lowercase hex digits")
    hook = payload.get("hook") if isinstance(payload.get("hook"), str) else ""
    record = DrillFlow(runtime).received(drill_id, frontend, hook[:64], runtime.clock())
    if record is None:
        raise BadInput("unknown_drill", f"no drill {drill_id} was sent (or it expired)", 404)
    return jsonify({"drill_id": drill_id, "reached_by": record["frontend"]}), 202


@bp.post("/v1/heartbeats")
def heartbeat():
    runtime: Runtime = current_app.extensions["oneha"]
    frontend, payload = _signed(runtime)
    spooled = payload.get("spooled", 0)
    if isinstance(spooled, bool) or not isinstance(spooled, int) or spooled < 0:
        raise BadInput("bad_field", "field 'spooled' must be a count (>= 0)")
    now = runtime.clock()
    ReadinessStore.of(runtime).save_heartbeat(frontend, {
        "at": now, "sent_at": _number(payload, "sent_at"), "spooled": spooled,
        "version": str(payload.get("version", ""))[:32]})
    return jsonify({"frontend": frontend, "at": now}), 202
