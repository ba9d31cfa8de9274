"""`/login` and `/logout`: a name and a password from `auth.users`, a session cookie after.

Failed attempts are counted per client address and name in Redis (`store/logins.py`): after
`auth.login_attempts` within `auth.login_window` the answer is 429 until the window ends, and a
right password does not help meanwhile. An unknown name costs the same hash as a known one, so
the time taken does not say which names exist. The form carries the session's CSRF token
(login CSRF: nobody's page can log you in as someone else).
"""

from __future__ import annotations

import hmac
import math
import time

from flask import (Blueprint, current_app, make_response, redirect, render_template, request,
                   session)
from werkzeug.security import check_password_hash, generate_password_hash

from gateway.adapters.store.logins import LoginThrottle
from gateway.web import auth_text, page_text
from gateway.web.auth import CSRF_FIELD, csrf_token, password_fingerprint, principal, requires

bp = Blueprint("login", __name__)
bp.record_once(lambda state: auth_text.install(state.app))  # _() in the login page
_ = page_text.gettext  # the page's language: the switch, the user's, the browser's

# Checked when the name is unknown, so both paths cost one scrypt.
_DUMMY_HASH = generate_password_hash("not a password of anyone")


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never `//evil.example` or `https://…` (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target \
            or any(ord(c) < 33 or c == "\x7f" for c in target):  # browsers drop tabs: "/\t/x"
        return "/"
    return target


def _throttle() -> LoginThrottle:
    rt = current_app.extensions["oneha"]
    auth = rt.settings.auth
    return rt.cached("login_throttle",
                     lambda: LoginThrottle(rt, auth.login_attempts, auth.login_window))


def _page(status: int = 200, error: str = "", name: str = ""):
    response = make_response(render_template(
        "auth/login.html", error=error, name=name,
        next=_safe_next(request.values.get("next")), who=principal(),
        no_users=not current_app.extensions["oneha"].settings.auth.users), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # `next` may hold an approval link
    return response


@bp.get("/login")
def login():
    return _page()


@bp.post("/login")
def login_post():
    expected = session.get("csrf") or ""
    given = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return _page(403, _("The form was stale: try again."))
    name = request.form.get("name", "").strip()[:64]
    password = request.form.get("password", "")
    address = request.remote_addr or "?"
    throttle = _throttle()
    wait = throttle.blocked_for(address, name)
    if wait:
        response = _page(429, _("Too many failed attempts: try again in %(minutes)s min.",
                                minutes=math.ceil(wait / 60)), name)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    user = current_app.extensions["oneha"].settings.auth.user(name)
    stored = user.password_hash.get_secret_value() if user else _DUMMY_HASH
    if not check_password_hash(stored, password) or user is None:
        throttle.failed(address, name)
        return _page(401, _("Wrong name or password."), name)
    throttle.succeeded(address, name)
    session.clear()  # a new session: nothing from before the login carries over
    session.permanent = True
    session.update(user=user.name, pw=password_fingerprint(stored), at=int(time.time()))
    csrf_token()
    return redirect(_safe_next(request.form.get("next")), 303)


@bp.post("/logout")
@requires("viewer")  # any logged-in user (the CSRF check keeps others' pages from it)
def logout():
    session.clear()
    return redirect("/login", 303)
