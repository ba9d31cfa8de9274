"""HMAC signatures of hook requests: who sent this body, and is it fresh?

A front-end signs `"<timestamp>.<raw body>"` with HMAC-SHA256 and its shared key and sends
`X-OneHA-Timestamp`, `X-OneHA-Frontend` and `X-OneHA-Signature: sha256=<hex>`. Each front-end may
have several keys valid at once, so a key can be rotated without losing events: add the new key,
move the senders, drop the old one. Every key is tried with a constant-time compare; the timestamp
must be within ±window seconds of the gateway's clock, so a captured request cannot be replayed
later (a replay inside the window carries the same event_id and is deduplicated).

Pure: no Flask, no Redis. Failures raise `BadInput` with status 401 and a reason code as `error`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

from ..errors import BadInput

SCHEME = "sha256="
_FRONTEND = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def signature(key: bytes, timestamp: int | str, body: bytes) -> str:
    """`sha256=<hex>` over `"<timestamp>.<body>"` (what the hook sender puts in the header)."""
    mac = hmac.new(key, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def verify(*, frontend: str | None, timestamp: str | None, signature_header: str | None,
           body: bytes, keys: Mapping[str, Iterable[bytes]], now: float, window: float) -> str:
    """Return the authenticated front-end name, or raise `BadInput(401)` saying what is wrong."""
    if not frontend or not timestamp or not signature_header:
        missing = [name for name, value in (("X-OneHA-Frontend", frontend),
                                            ("X-OneHA-Timestamp", timestamp),
                                            ("X-OneHA-Signature", signature_header)) if not value]
        raise BadInput("unsigned", f"missing header(s): {', '.join(missing)}", 401)
    if not _FRONTEND.match(frontend):
        raise BadInput("bad_signature", "X-OneHA-Frontend must be a front-end name "
                                        "([A-Za-z0-9_.-], at most 64 characters)", 401)
    frontend_keys = keys.get(frontend)
    if not frontend_keys:
        raise BadInput("unknown_frontend",
                       f"front-end {frontend!r} has no key here (ingest.frontends.{frontend}.keys)", 401)
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise BadInput("bad_signature", "X-OneHA-Timestamp must be integer unix seconds", 401)
    if not signature_header.startswith(SCHEME):
        raise BadInput("bad_signature", "X-OneHA-Signature must look like sha256=<64 hex digits>", 401)
    given = signature_header.encode("ascii", "replace")
    # Compare against every key (no early exit), so timing does not tell which key is in use.
    matched = False
    for key in frontend_keys:
        matched |= hmac.compare_digest(signature(key, timestamp, body).encode("ascii"), given)
    if not matched:
        raise BadInput("bad_signature",
                       f"signature does not match any key of front-end {frontend!r}", 401)
    skew = int(timestamp) - now
    if abs(skew) > window:
        when = "in the past" if skew < 0 else "in the future"
        raise BadInput("stale_timestamp",
                       f"timestamp is {abs(skew):.0f}s {when}; accepted window is ±{window:.0f}s "
                       "(check the front-end's clock)", 401)
    return frontend
