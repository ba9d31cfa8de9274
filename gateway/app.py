"""`create_app(settings)`: the Flask app, built fresh (no globals), with every blueprint that exists.

`app.extensions["oneha"]` is the `Runtime` (settings, Redis, adapters); `app.extensions["celery"]`
the one Celery client of the web app, which views that send tasks use (ingest needs none: it
queues its task in the same Lua script that records the event).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from celery import Celery
from flask import Flask

from tasks.app import create_celery

from .config import Settings
from .runtime import Runtime
from .web import auth, errors, headers

# Each module exposes `bp`.
BLUEPRINTS = (
    "gateway.web.ingest",  # POST /v1/events
    "gateway.web.alertmanager",  # POST /v1/alertmanager
    "gateway.web.health",  # /healthz, /readyz
    "gateway.web.metrics",  # /metrics
    "gateway.web.api",  # /v1/incidents, /v1/silences, ...
    "gateway.web.approvals",  # approval links
    "gateway.web.login",  # /login, /logout
    "gateway.web.openapi",  # /v1/openapi.json
    "gateway.web.console",  # the web UI
    "gateway.web.drills",  # POST /v1/drills, /v1/heartbeats
    "gateway.web.readiness",  # /readiness
)


def create_app(settings: Settings, runtime: Runtime | None = None) -> Flask:
    # Paths given, not guessed: an editable install seen from another directory can make
    # `gateway` look like a namespace package, where Flask's guess fails.
    here = Path(__file__).resolve().parent
    app = Flask("gateway", root_path=str(here), instance_path=str(here.parent / "instance"))
    # Every body (hook events, API writes, approval forms) within ingest.max_body_bytes: werkzeug
    # answers 413 before reading past it.
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=settings.ingest.max_body_bytes)
    app.extensions["oneha"] = runtime or Runtime.from_settings(settings)
    celery_init_app(app)
    errors.install(app)
    headers.install(app)
    auth.install(app)  # sessions, and the one gate every route (any blueprint) passes
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)
    return app


def celery_init_app(app: Flask) -> Celery:
    """The web app's Celery client (it only sends), sharing the app's runtime."""
    rt: Runtime = app.extensions["oneha"]
    celery = create_celery(rt.settings, rt)
    app.extensions["celery"] = celery
    return celery
