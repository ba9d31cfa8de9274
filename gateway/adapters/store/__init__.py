"""Redis stores, one per owner; each module owns its key names and TTLs."""

from contextlib import contextmanager

import redis

from gateway.errors import Transient

# Redis errors that say "not now" rather than "never": callers raise `Transient` (retried; at the
# HTTP edge a 503, so the hook sender spools).
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               redis.exceptions.ReadOnlyError, redis.exceptions.BusyLoadingError,
               redis.exceptions.OutOfMemoryError)


@contextmanager
def unavailable_is_transient(what: str):
    """`what: <redis error>` as a `Transient` (retried) when Redis says "not now"."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise Transient(f"{what}: {exc}") from exc
