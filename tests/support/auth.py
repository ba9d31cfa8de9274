"""Users and tokens for tests that go through the login gate (gateway/web/auth.py).

`auth_section()` is a config `auth` section with one user and one bearer token per role;
`login(client, role)` logs a Flask test client in and returns the session's CSRF token;
`browser_login(page, url, role)` does the same in Chromium, through the login form.
"""

from __future__ import annotations

import re

from werkzeug.security import generate_password_hash

from gateway.domain.auth import ROLES, token_digest

PASSWORDS = {role: f"{role}-password" for role in ROLES}
TOKENS = {role: f"test-token-{role}" for role in ROLES}
# pbkdf2 with few rounds: the hash format of production, without scrypt's 50 ms per check.
_HASHES = {role: generate_password_hash(PASSWORDS[role], method="pbkdf2:sha256:1000")
           for role in ROLES}


def bearer(role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def auth_section(**overrides) -> dict:
    """Users named after their role (admin, approver, viewer) and tokens test-<role>."""
    return {"users": [{"name": role, "role": role, "password_hash": _HASHES[role]}
                      for role in ROLES],
            "tokens": [{"name": f"test-{role}", "role": role, "sha256": token_digest(TOKENS[role])}
                       for role in ROLES],
            "secure_cookies": False, **overrides}


def csrf_of(html: bytes | str) -> str:
    text = html.decode() if isinstance(html, bytes) else html
    return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)


def login(client, role: str = "admin") -> str:
    """Log a Flask test client in as the user `role`; the session's CSRF token."""
    csrf = csrf_of(client.get("/login").data)
    response = client.post("/login", data={"name": role, "password": PASSWORDS[role],
                                           "csrf_token": csrf, "next": "/"})
    assert response.status_code == 303, response.data[:500]
    return csrf_of(client.get("/login").data)  # a login starts a new session, with a new token


def browser_login(page, base_url: str, role: str = "admin", then: str = "/") -> None:
    """Log in through the login form in Chromium and land on `then`."""
    page.goto(f"{base_url}/login?next={then}")
    page.fill("#name", role)
    page.fill("#password", PASSWORDS[role])
    with page.expect_navigation():
        page.click("#login")
