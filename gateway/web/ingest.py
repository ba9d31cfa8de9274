"""`POST /v1/events`: a state hook's event. Thin: verify, validate, record, answer.

202 `{"event_id", "duplicate"}` only after `EventStore.record` has the event in Redis (claimed,
logged and queued in one script); 4xx `{"error", "detail"}` with nothing recorded; 503 when Redis
cannot be written, so the sender spools and retries.
"""

from __future__ import annotations

from contextlib import contextmanager

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..adapters.store.events import EventStore, IngestCounters
from ..domain import signing
from ..domain.hook_events import content_digest, event_from_hook
from ..domain.json_bodies import parse_json_object
from ..errors import BadInput, Transient
from ..runtime import Runtime

bp = Blueprint("ingest", __name__)


@contextmanager
def counted(counters: IngestCounters):
    """Count why a request was refused (or that Redis was away) and let the error answer."""
    try:
        yield
    except BadInput as exc:
        counters.rejected(exc.error)
        raise
    except RequestEntityTooLarge:
        counters.rejected("too_large")
        raise
    except Transient:
        counters.unavailable()
        raise
    counters.flush()


@bp.post("/v1/events")
def post_event():
    runtime: Runtime = current_app.extensions["oneha"]
    with counted(IngestCounters.of(runtime)):
        event, digest = _validated_event(runtime)
        # A 202 means its signature was verified: the front-end is heard from (`/metrics`).
        result = EventStore.of(runtime).record(event, digest, signed_by=event.frontend)
    if result.conflict:  # counted by the store's script
        raise BadInput("event_id_conflict", f"event_id {event.event_id} replayed with a different "
                                            "body", 409)
    # event_id is 32 hex digits (validated): no escaping needed, and no jsonify on the hot path.
    duplicate = "true" if result.duplicate else "false"
    return Response(f'{{"event_id":"{event.event_id}","duplicate":{duplicate}}}', 202,
                    mimetype="application/json")


def _validated_event(runtime: Runtime):
    settings = runtime.settings.ingest
    body = request.get_data(cache=False)  # werkzeug answers 413 past MAX_CONTENT_LENGTH
    now = runtime.clock()
    frontend = signing.verify(
        frontend=request.headers.get("X-OneHA-Frontend"),
        timestamp=request.headers.get("X-OneHA-Timestamp"),
        signature_header=request.headers.get("X-OneHA-Signature"),
        body=body, keys=_frontend_keys(runtime), now=now, window=settings.timestamp_window)
    event = event_from_hook(parse_json_object(body), frontend, now)
    return event, content_digest(event)


def _frontend_keys(runtime: Runtime) -> dict[str, list[bytes]]:
    return runtime.cached("ingest_frontend_keys", lambda: {
        name: [k.get_secret_value().encode("utf-8") for k in fe.keys]
        for name, fe in runtime.settings.ingest.frontends.items()})
