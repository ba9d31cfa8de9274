"""Security headers on every response.

- `Content-Security-Policy`: scripts and styles only from this site or inline with this
  response's nonce (templates write `<script nonce="{{ csp_nonce() }}">`, `<style nonce=…>`; no
  `style=` attributes); no plugins; forms post only here; no page of ours inside anyone's frame
  (`frame-ancestors 'none'`, and `X-Frame-Options` for old browsers).
- `X-Content-Type-Options: nosniff`; `Referrer-Policy: same-origin` (a view may set a stricter
  one: the approval page and the login page say `no-referrer`, their URLs hold a credential).
- `Cache-Control: no-store` on whatever a logged-in user or a token was answered: no browser or
  proxy cache keeps incident data (VM names, hosts, owners) after the session.
"""

from __future__ import annotations

import secrets

from flask import Flask, g


def csp_nonce() -> str:
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def _policy() -> str:
    nonce = g.get("csp_nonce")
    own = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    return ("default-src 'self'; "
            f"script-src {own}; "
            f"style-src {own}; "
            "img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


def install(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response):
        h = response.headers
        h.setdefault("Content-Security-Policy", _policy())
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        who = g.get("principal")
        if who is not None and who.authenticated:
            h.setdefault("Cache-Control", "no-store")
        return response
