"""Everything a process needs, built once from `Settings`: no module-level clients anywhere."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from .config import Settings
from .redis_urls import is_sentinel, parse_sentinel

# Redis answers in microseconds; one that has not answered in a second is away or frozen. The hook
# sender gives up on a request after 3 s and spools the event, so the gateway must have said 503
# by then: one command waits at most REDIS_TIMEOUT to connect and as long again for its answer.
REDIS_TIMEOUT = 1.0


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    clock: Callable[[], float] = time.time
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Runtime":
        return cls(settings=settings, redis=redis_client(settings.redis_url))

    def key(self, *parts: object) -> str:
        return self.settings.key_prefix + ":".join(str(p) for p in parts)

    def cached(self, name: str, build: Callable[[], object]):
        """Adapters built lazily and kept for the life of the process (one per kind)."""
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]


def redis_client(url: str) -> redis.Redis:
    """A client that fails fast: a broken connection (a Redis restart) is retried once, at once;
    a timeout is not retried (redis-py's default, 10 retries with backoff, held a request ~10 s
    against a frozen Redis). Pooled connections are checked on checkout, so a restart costs no
    failed command; tasks retry what fails with their own backoff.

    With a Sentinel URL the client's pool asks the sentinels where the primary is for each new
    connection, and drops a connection that finds the old primary gone or demoted (redis-py turns
    its READONLY answer into a connection error): after a failover the retry reaches the new one.
    """
    options = dict(socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT,
                   health_check_interval=30,
                   retry=Retry(NoBackoff(), 1,
                               supported_errors=(redis.exceptions.ConnectionError,)))
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    where = parse_sentinel(url)
    sentinels = Sentinel(list(where.sentinels), sentinel_kwargs={
        "socket_timeout": REDIS_TIMEOUT, "socket_connect_timeout": REDIS_TIMEOUT})
    return sentinels.master_for(where.master, db=where.db, username=where.username,
                                password=where.password, **options)
