"""`create_app(settings)`: the Flask app, built fresh (no globals), with every blueprint that exists."""

from __future__ import annotations

import importlib
from pathlib import Path

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from .config import Settings
from .runtime import Runtime
from .web import errors

# Each module exposes `bp`.
BLUEPRINTS = (
    "gateway.web.ingest",  # POST /v1/events
    "gateway.web.alertmanager",  # POST /v1/alertmanager
    "gateway.web.health",  # /healthz, /readyz
    "gateway.web.metrics",  # /metrics
    "gateway.web.api",  # /v1/incidents, /v1/silences, ...
    "gateway.web.approvals",  # approval links
    "gateway.web.console",  # the web UI
)


def create_app(settings: Settings, runtime: Runtime | None = None) -> Flask:
    # Paths given, not guessed: an editable install seen from another directory can make
    # `gateway` look like a namespace package, where Flask's guess fails.
    here = Path(__file__).resolve().parent
    app = Flask("gateway", root_path=str(here), instance_path=str(here.parent / "instance"))
    app.config.update(SECRET_KEY=settings.secret_key.get_secret_value(), JSON_SORT_KEYS=False)
    app.session_interface = _Sessions()
    app.extensions["oneha"] = runtime or Runtime.from_settings(settings)
    errors.install(app)
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)
    return app


class _Sessions(SecureCookieSessionInterface):
    """Flask's cookie sessions, with the signing serializer built once per app instead of on every
    request (Flask re-creates it, JSON round trip included, even for API calls with no cookie)."""

    def get_signing_serializer(self, app: Flask):
        cached = getattr(self, "_serializer", None)
        if cached is None or cached[0] != app.secret_key:
            cached = self._serializer = (app.secret_key, super().get_signing_serializer(app))
        return cached[1]
