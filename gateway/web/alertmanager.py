"""`POST /v1/alertmanager`: Alertmanager's webhook (v4), authenticated by a bearer token.

Configure a receiver in Alertmanager with
`webhook_configs: [{url: https://gateway/v1/alertmanager, http_config: {authorization:
{credentials: <ingest.alertmanager_token>}}}]`. Each alert is recorded through the same
`EventStore` as hook events (so duplicates and retries are safe), then 202.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, jsonify, request

from ..adapters.store.events import EventStore, IngestCounters
from ..domain.alertmanager import events_from_webhook
from ..domain.hook_events import content_digest
from ..domain.json_bodies import parse_json_object
from ..errors import BadInput
from .ingest import counted
from ..runtime import Runtime

bp = Blueprint("alertmanager", __name__)


@bp.post("/v1/alertmanager")
def post_alerts():
    runtime: Runtime = current_app.extensions["oneha"]
    with counted(IngestCounters.of(runtime)):
        _authenticate(runtime)
        events = events_from_webhook(parse_json_object(request.get_data(cache=False)))
        results = EventStore.of(runtime).record_many([(e, content_digest(e)) for e in events])
    answers = [{"event_id": e.event_id, "duplicate": r.duplicate, "conflict": r.conflict}
               for e, r in zip(events, results)]
    return jsonify(accepted=sum(r.accepted for r in results),
                   duplicates=sum(r.duplicate for r in results), events=answers), 202


def _authenticate(runtime: Runtime) -> None:
    token = runtime.settings.ingest.alertmanager_token
    if token is None:
        raise BadInput("not_enabled", "Alertmanager input is off: set ingest.alertmanager_token "
                                      "in the configuration to enable it", 404)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise BadInput("unauthorized", "send 'Authorization: Bearer <ingest.alertmanager_token>'", 401)
    if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        raise BadInput("unauthorized", "the bearer token does not match ingest.alertmanager_token", 401)
