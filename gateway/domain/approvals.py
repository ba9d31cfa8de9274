"""Approval tokens: signed, expiring, bound to one plan of one incident. Pure (no Redis).

`<payload>.<signature>` where payload is base64url JSON {"a": approval id, "p": plan id,
"i": incident id, "e": expiry} and signature is HMAC-SHA256 with the secret key. Single use is
the store's job (it records the first decision atomically); this module refuses what can be
refused without state: forged, tampered, expired, malformed, or shown for the wrong incident.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


class ApprovalRefused(Exception):
    """Why a token or a decision is refused; `code` for programs, the message for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Claims:
    approval_id: str
    plan_id: str
    incident_id: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison of any two texts (`hmac.compare_digest` refuses str that is not
    ASCII, and a form or a cookie may carry anything)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


def _sig(secret: str, payload: str, purpose: str = "approval") -> str:
    mac = hmac.new(secret.encode(), f"{purpose}:{payload}".encode(), hashlib.sha256)
    return _b64(mac.digest())


def sign(secret: str, claims: Claims) -> str:
    payload = _b64(json.dumps({"a": claims.approval_id, "p": claims.plan_id,
                               "i": claims.incident_id, "e": round(claims.expires_at, 3)},
                              separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_sig(secret, payload)}"


def verify(secret: str, token: str, now: float, incident_id: str | None = None) -> Claims:
    """The claims of a genuine, unexpired token — or `ApprovalRefused` saying why not."""
    if not isinstance(token, str) or not token.isascii() or token.count(".") != 1 \
            or len(token) > 2048:  # a genuine token is base64url: ASCII
        raise ApprovalRefused("malformed", "this approval link is malformed (copy the whole link)")
    payload, sig = token.split(".")
    if not _same(sig, _sig(secret, payload)):
        raise ApprovalRefused("forged", "this approval link is not genuine: its signature does "
                                        "not match (tampered, or signed with another key)")
    try:
        data = json.loads(_unb64(payload))
        claims = Claims(str(data["a"]), str(data["p"]), str(data["i"]), float(data["e"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ApprovalRefused("malformed", f"this approval link carries no valid claims ({exc})")
    if now >= claims.expires_at:
        raise ApprovalRefused("expired", "this approval link has expired; oneha will not act on "
                                         "it — ask for a new plan with `oneha plans`")
    if incident_id is not None and incident_id != claims.incident_id:
        raise ApprovalRefused("wrong_incident", f"this approval link is for incident "
                                                f"{claims.incident_id}, not {incident_id}")
    return claims


def csrf_token(secret: str, token: str, nonce: str) -> str:
    """Bound to one approval token and one browser nonce (the cookie): double-submit + HMAC."""
    return f"{nonce}.{_sig(secret, f'{token}:{nonce}', purpose='csrf')}"


def check_csrf(secret: str, token: str, form_value: str | None, cookie_nonce: str | None) -> None:
    if not form_value or not cookie_nonce or "." not in form_value:
        raise ApprovalRefused("csrf", "the form is missing its CSRF token; reload the page")
    nonce = form_value.split(".", 1)[0]
    if not _same(nonce, cookie_nonce) or not _same(form_value, csrf_token(secret, token, nonce)):
        raise ApprovalRefused("csrf", "the form's CSRF token does not match; reload the page")
