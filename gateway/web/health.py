"""`/healthz`: the process answers. `/readyz`: it can also reach Redis (503 when it cannot)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from ..adapters.store import UNAVAILABLE
from .errors import error_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    try:
        current_app.extensions["oneha"].redis.ping()
    except UNAVAILABLE as exc:
        return error_response(503, "redis_unreachable", f"Redis does not answer PING: {exc}")
    return jsonify(status="ready")
