"""The gate every request passes: who is asking, may they, and is a browser's write genuine.

One `before_request` for the whole app (not per blueprint), so a blueprint added later is behind
the login without knowing about it. In order:

1. Open to everyone: ingest, drills and heartbeats, and the Alertmanager webhook (their own
   HMAC / bearer checks),
   `/healthz`, `/readyz`, `/metrics` (unless `auth.public_metrics` is false), static files, the
   login page, and the approval link's landing page (the link is the credential to *look*).
2. Who: `Authorization: Bearer <token>` (a configured `auth.tokens` digest, or one of the plain
   `api.tokens`, which act as approver) — a wrong token is a 401 even with a session — else the
   session cookie (a logged-in user still in the config with the same password), else nobody.
3. Nobody: a page redirects to `/login?next=…`; the API answers 401. Deciding on the approval
   page is let through only when `auth.link_approval` is on (the name is then "unverified").
4. The role: a view may ask for one with `@requires("admin")`; otherwise reading (GET, HEAD,
   OPTIONS) needs a viewer and anything else an approver. Too low: 403.
5. CSRF: a write carried by the session cookie must echo the session's token (form field
   `csrf_token` or header `X-CSRF-Token`; templates call `csrf_token()`). Bearer calls carry no
   ambient credential, so they need none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from typing import Callable, TypeVar
from urllib.parse import quote

from flask import Flask, current_app, g, redirect, request, session
from flask.sessions import SecureCookieSessionInterface

from gateway.domain.auth import ANONYMOUS, Principal
from gateway.errors import BadInput

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Blueprints with their own authentication (front-end HMAC signatures, Alertmanager's token),
# or none by design (health).
OPEN_BLUEPRINTS = frozenset({"ingest", "alertmanager", "drills", "health"})
# The language switch too: someone not logged in yet reads the login page in their language.
OPEN_ENDPOINTS = frozenset({"static", "login.login", "login.login_post", "console.language"})
LANDING = "approvals.page"  # the approval link's page: looking needs only the link
LINK_DECISION = "approvals.decide_form"  # deciding there: a login, or auth.link_approval
CSRF_FIELD, CSRF_HEADER = "csrf_token", "X-CSRF-Token"
# Requests that never touch a session: the hot ingest path skips parsing and signing cookies.
SESSIONLESS_PATHS = ("/v1/events", "/v1/alertmanager", "/v1/drills", "/v1/heartbeats",
                     "/healthz", "/readyz", "/metrics")

F = TypeVar("F", bound=Callable)


def requires(role: str) -> Callable[[F], F]:
    """Mark a view as needing `role` (e.g. an admin-only configuration page)."""
    def mark(view: F) -> F:
        view.oneha_role = role  # type: ignore[attr-defined]
        return view
    return mark


def principal() -> Principal:
    """Who is asking in this request (the gate set it; `ANONYMOUS` outside a request's gate)."""
    return g.get("principal", ANONYMOUS)


def password_fingerprint(password_hash: str) -> str:
    """Kept in the session: changing a user's password in the config ends their sessions."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def csrf_token() -> str:
    """The session's CSRF token (made on first use): put it in every form as `csrf_token`."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


class _Sessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, skipped on the machine paths (~15 µs of each hook event)."""

    def open_session(self, app, request):
        if request.path.startswith(SESSIONLESS_PATHS):
            return None  # Flask then uses a NullSession, which refuses writes
        return super().open_session(app, request)


def install(app: Flask) -> None:
    settings = app.extensions["oneha"].settings
    auth = settings.auth
    secure = auth.secure_cookies
    if secure is None:
        secure = settings.public_url.startswith("https://")
    # A key of its own, derived from secret_key: a session cookie is never an approval token.
    app.secret_key = hmac.new(settings.secret_key.get_secret_value().encode(),
                              b"oneha flask session", hashlib.sha256).hexdigest()
    app.session_interface = _Sessions()
    app.config.update(SESSION_COOKIE_NAME="oneha_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure,
                      PERMANENT_SESSION_LIFETIME=timedelta(seconds=auth.session_lifetime))
    app.jinja_env.globals.update(csrf_token=csrf_token, current_principal=principal)
    app.before_request(_gate)


def _open(endpoint: str | None) -> bool:
    if endpoint is None:
        return True  # no such route: the 404 (or 405) says nothing worth a login
    if endpoint in OPEN_ENDPOINTS or endpoint == LANDING:
        return True
    if endpoint.split(".", 1)[0] in OPEN_BLUEPRINTS:
        return True
    if endpoint.startswith("metrics."):
        return current_app.extensions["oneha"].settings.auth.public_metrics
    return False


def _from_bearer(header: str) -> Principal:
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise BadInput("unauthorized", "send 'Authorization: Bearer <token>'", 401)
    settings = current_app.extensions["oneha"].settings
    found = settings.auth.token_named_by(given)
    if found is not None:
        return Principal(found.name, found.role, "token")
    for legacy in settings.api.tokens:  # plain tokens of api.tokens: approvers
        if hmac.compare_digest(given.encode(), legacy.get_secret_value().encode()):
            return Principal("api", "approver", "token")
    raise BadInput("unauthorized", "the bearer token is not one oneha knows", 401)


def _from_session() -> Principal:
    name = session.get("user")
    if not name:
        return ANONYMOUS
    auth = current_app.extensions["oneha"].settings.auth
    user = auth.user(name)
    # The cookie is refreshed on every request; the login itself still ends after
    # session_lifetime, so a copied cookie does not live on by being used.
    expired = time.time() - float(session.get("at") or 0) > auth.session_lifetime
    if user is None or expired or session.get("pw") != password_fingerprint(
            user.password_hash.get_secret_value()):
        session.clear()  # removed from the config, the password changed, or too old: logged out
        return ANONYMOUS
    return Principal(user.name, user.role, "session", user.language)


def _needed_role() -> str:
    view = current_app.view_functions.get(request.endpoint or "")
    role = getattr(view, "oneha_role", None)
    if role:
        return role
    return "viewer" if request.method in SAFE_METHODS else "approver"


def _wants_json() -> bool:
    """A machine's path (the API, a Prometheus scrape): a 401, not the login page."""
    return request.path.startswith(("/v1/", "/metrics"))


def _to_login():
    if _wants_json():
        response = current_app.json.response(
            error="unauthorized",
            detail="log in, or send 'Authorization: Bearer <token>' (oneha token add)")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="oneha"'
        return response
    here = request.full_path if request.query_string else request.path
    return redirect("/login?next=" + quote(here, safe="/"), 303)


def _gate():
    endpoint = request.endpoint
    if _open(endpoint):
        g.principal = (_from_session() if endpoint in (LANDING, *OPEN_ENDPOINTS)
                       else ANONYMOUS)
        return None
    header = request.headers.get("Authorization")
    who = _from_bearer(header) if header else _from_session()
    g.principal = who
    if not who.authenticated:
        if endpoint == LINK_DECISION and current_app.extensions["oneha"].settings.auth.link_approval:
            return None  # the approval view checks its own CSRF and marks the name unverified
        return _to_login()
    need = _needed_role()
    if not who.can(need):
        raise BadInput("forbidden", f"this needs the {need} role; {who.name} is a {who.role}", 403)
    if who.via == "session" and request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
        expected = session.get("csrf") or ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise BadInput("csrf", "the form's CSRF token is missing or stale: reload the page "
                                   "and try again", 403)
    return None
