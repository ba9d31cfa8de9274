"""Redis stores, one per owner; each module owns its key names and TTLs."""

import redis

# Redis errors that say "not now" rather than "never": callers raise `Transient` (retried; at the
# HTTP edge a 503, so the hook sender spools).
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               redis.exceptions.ReadOnlyError, redis.exceptions.BusyLoadingError,
               redis.exceptions.OutOfMemoryError)
