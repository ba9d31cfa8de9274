"""Who may do what: the `auth` configuration section, roles, and API tokens.

People log in with a name and a password (the config keeps only a hash: werkzeug's scrypt,
written by `oneha user add`); machines send `Authorization: Bearer <token>` (the config keeps
the token's SHA-256 — a token is 32 random bytes, so a fast hash is enough, unlike a password).
Every principal has one role; each role can do what the one before it can:

- viewer:   read every page and every `GET` of the API
- approver: also approve/deny plans, acknowledge incidents, create and expire silences
- admin:    everything (configuration pages, test messages)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from .model import Duration, Strict

Role = Literal["viewer", "approver", "admin"]
ROLES: tuple[str, ...] = ("viewer", "approver", "admin")
NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"


def role_allows(have: str, need: str) -> bool:
    """Does a principal of role `have` hold the rights of role `need`?"""
    return ROLES.index(have) >= ROLES.index(need)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh API token, shown once; the config keeps `token_digest` of it."""
    return "oneha_" + secrets.token_urlsafe(32)


class User(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    role: Role
    password_hash: SecretStr  # werkzeug format, e.g. "scrypt:32768:8:1$<salt>$<hex>"
    language: Literal["en", "pt-BR"] | None = None  # pages in this language; None: the browser's

    @field_validator("password_hash")
    @classmethod
    def _werkzeug_format(cls, value: SecretStr) -> SecretStr:
        method, _, rest = value.get_secret_value().partition(":")
        if method not in ("scrypt", "pbkdf2") or rest.count("$") != 2:
            raise ValueError("must be a password hash as `oneha user add` writes it "
                             "(scrypt:… or pbkdf2:…), never the password itself")
        return value


class ApiToken(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    role: Role
    sha256: SecretStr = Field(description="hex SHA-256 of the token (oneha token add prints both)")


class AuthConfig(Strict):
    users: list[User] = Field(default_factory=list)
    tokens: list[ApiToken] = Field(default_factory=list)
    # Deciding on the approval page with the link alone, without a login: the name typed is
    # recorded as "(unverified)". Off by default: the link travels through chat and mail.
    link_approval: bool = False
    # /metrics without a login (Prometheus scrapes it); false: a viewer login or token.
    public_metrics: bool = True
    # The session cookie's Secure flag; unset: on when public_url is https. Set false only for
    # plain-http use on a machine of your own (oneha up, the demo).
    secure_cookies: bool | None = None
    session_lifetime: Duration = Field(default=12 * 3600.0, gt=0)
    # Failed logins allowed per client address and user name within login_window (then 429).
    login_attempts: int = Field(default=5, ge=1, le=1000)
    login_window: Duration = Field(default=900.0, gt=0)

    @model_validator(mode="after")
    def _names_unique(self) -> "AuthConfig":
        for kind, names in (("users", [u.name for u in self.users]),
                            ("tokens", [t.name for t in self.tokens])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"auth.{kind} names must be unique; repeated: {', '.join(dupes)}")
        for t in self.tokens:
            digest = t.sha256.get_secret_value()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"auth.tokens {t.name}: sha256 must be 64 lowercase hex digits "
                                 "(oneha token add writes it)")
        return self

    def user(self, name: str) -> User | None:
        return next((u for u in self.users if u.name == name), None)

    def token_named_by(self, token: str) -> ApiToken | None:
        """The configured token whose digest is `token`'s (constant-time per comparison)."""
        digest = token_digest(token).encode()
        found = None
        for t in self.tokens:
            if hmac.compare_digest(digest, t.sha256.get_secret_value().encode()):
                found = t
        return found


@dataclass(frozen=True)
class Principal:
    """Who is asking: a logged-in user, an API token, or nobody (`anonymous`)."""

    name: str
    role: str | None
    via: Literal["session", "token", "anonymous"]
    language: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.via != "anonymous"

    def can(self, need: str) -> bool:
        return self.role is not None and role_allows(self.role, need)

    def actor(self, typed: str | None = None) -> str:
        """The name recorded for an action: the user's own; a token's name with the name the
        caller gave, if any; a name typed by nobody we know is marked unverified."""
        typed = (typed or "").strip()[:120]
        if self.via == "session":
            return self.name
        if self.via == "token":
            return f"{typed} (token {self.name})" if typed else f"token {self.name}"
        return f"{typed} (unverified)" if typed else ""


ANONYMOUS = Principal("", None, "anonymous")
