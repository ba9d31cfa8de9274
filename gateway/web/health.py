"""`/healthz`: the process answers. `/readyz`: it can also reach Redis (503 when it cannot), and
which workers are alive — none is still ready (events are recorded and queued), with a warning:
nothing is processed until a worker runs."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from ..adapters.store import UNAVAILABLE
from ..adapters.store.workers import ALIVE_FOR, WorkerRegistry
from ..errors import Transient
from .errors import error_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    rt = current_app.extensions["oneha"]
    try:
        rt.redis.ping()
        workers = WorkerRegistry.of(rt).alive()
    except (Transient, *UNAVAILABLE) as exc:
        return error_response(503, "redis_unreachable", f"Redis does not answer: {exc}")
    if not workers:
        return jsonify(status="ready", workers=[], warning=(
            f"no worker has reported in the last {ALIVE_FOR:.0f} s: events are recorded and "
            "queued but nothing processes them; start `oneha worker`"))
    return jsonify(status="ready", workers=workers)
