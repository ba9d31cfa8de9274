"""Failed logins, counted in Redis so every gateway process sees the same count.

Keys (under the prefix):
  auth:fail:<sha256(address \\0 name)[:32]>  integer, expires `window` seconds after the first
                                              failure of the window
The address and the name are hashed into the key: what someone typed as a user name (perhaps
a password typed in the wrong field) is never stored.
"""

from __future__ import annotations

import hashlib

from gateway.runtime import Runtime

from . import unavailable_is_transient

# INCR, and start the window on the first failure only (a fixed window: waiting it out works).
_FAIL = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class LoginThrottle:
    def __init__(self, runtime: Runtime, attempts: int, window: float):
        self._redis = runtime.redis
        self._rt = runtime
        self.attempts = attempts
        self.window = window
        self._fail = self._redis.register_script(_FAIL)

    def _key(self, address: str, name: str) -> str:
        digest = hashlib.sha256(f"{address}\0{name}".encode()).hexdigest()[:32]
        return self._rt.key("auth", "fail", digest)

    def blocked_for(self, address: str, name: str) -> float:
        """Seconds until `name` may try again from `address` (0: now)."""
        key = self._key(address, name)
        with unavailable_is_transient("cannot read the failed-login count"):
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                count, ttl = pipe.execute()
        if count is None or int(count) < self.attempts:
            return 0.0
        return max(ttl, 1000) / 1000.0

    def failed(self, address: str, name: str) -> int:
        """Count one failure; the count within the window."""
        with unavailable_is_transient("cannot count a failed login"):
            return int(self._fail(keys=[self._key(address, name)],
                                  args=[int(self.window * 1000)]))

    def succeeded(self, address: str, name: str) -> None:
        with unavailable_is_transient("cannot clear the failed-login count"):
            self._redis.delete(self._key(address, name))
