"""What a failed call to one front-end means: ask another server, or OpenNebula said no.

What fails over to the next server (`Unavailable`): connection errors, timeouts, HTTP errors, and
OpenNebula's "no leader found" / "election mode" / "replicating log" answers. An answer of
OpenNebula itself (no such VM, wrong state, not authorised) is `OneCallError`, a `Permanent`:
asking another server will not help.
"""

from __future__ import annotations

import xmlrpc.client

import pyone
import requests
import urllib3.exceptions

from gateway.errors import Permanent

# Answers that mean "ask again later or elsewhere" (RequestXRPC.cc): the call did not run.
_NOT_NOW_MARKERS = ("no leader found", "election mode", "replicating log")
# The leader could not replicate the record to a majority: it may still be applied later.
_MAYBE_MARKERS = ("error replicating log entry",)

# Error codes by pyone exception class (include/Request.h), so a caller can branch on the code.
_CODES = (
    (pyone.OneAuthenticationException, 0x0100),
    (pyone.OneAuthorizationException, 0x0200),
    (pyone.OneNoExistsException, 0x0400),
    (pyone.OneActionException, 0x0800),
    (pyone.OneApiException, 0x1000),
    (pyone.OneInternalException, 0x2000),
)

# Everything a call through pyone raises when it fails: `unavailable_reason` sorts them.
CALL_FAILURES = (requests.exceptions.RequestException, xmlrpc.client.ProtocolError,
                 xmlrpc.client.ResponseError, OSError, pyone.OneException)


class OneCallError(Permanent):
    """OpenNebula answered and said no. `code` is OpenNebula's error code (0x0400 no such object,
    0x0800 action not allowed in this state, 0x0100/0x0200 authentication/authorisation, ...)."""

    NO_EXISTS = 0x0400
    ACTION = 0x0800
    AUTHENTICATION = 0x0100
    AUTHORIZATION = 0x0200

    def __init__(self, method: str, code: int, message: str, endpoint: str = ""):
        super().__init__(f"{method} failed on {endpoint or '?'} (code {code:#x}): {message}")
        self.method = method
        self.code = code
        self.message = message
        self.endpoint = endpoint


class Unavailable(Exception):
    """This server could not answer now; `maybe_ran` says whether a write may have happened."""

    def __init__(self, endpoint: str, reason: str, maybe_ran: bool):
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason
        self.maybe_ran = maybe_ran


def unavailable_reason(exc: Exception, timeout: float) -> tuple[str, bool] | None:
    """(reason, maybe_ran) when `exc` (one of `CALL_FAILURES`) says the server could not answer
    now; None when it is OpenNebula's own refusal. The order matters: requests' errors are
    OSErrors, and a connect timeout is a ConnectionError."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no answer within {timeout:g}s", True
    if isinstance(exc, requests.exceptions.ConnectionError):
        return _short(exc), _broke_mid_call(exc)
    if isinstance(exc, requests.exceptions.RequestException):
        return _short(exc), True
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return f"HTTP {exc.errcode} {exc.errmsg}", True
    if isinstance(exc, (xmlrpc.client.ResponseError, OSError)):
        return _short(exc), True
    lowered = str(exc).lower()
    if any(marker in lowered for marker in _NOT_NOW_MARKERS + _MAYBE_MARKERS):
        return str(exc), any(marker in lowered for marker in _MAYBE_MARKERS)
    return None


def error_code(exc: pyone.OneException) -> int:
    return next((c for cls, c in _CODES if isinstance(exc, cls)), 0)


def _broke_mid_call(exc: requests.exceptions.ConnectionError) -> bool:
    """Refused/unreachable (never sent) vs aborted after the request went out (may have run)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, urllib3.exceptions.ProtocolError)


def _short(exc: Exception) -> str:
    cause = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", None)  # urllib3's MaxRetryError wraps the real cause
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return "connection refused or unreachable"
    if isinstance(cause, urllib3.exceptions.ProtocolError):
        return f"connection broke mid-call ({cause.args[0] if cause.args else cause})"
    return f"{type(exc).__name__}: {str(exc)[:200]}"
