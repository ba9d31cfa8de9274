"""Everything a process needs, built once from `Settings`: no module-level clients anywhere."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import redis

from .config import Settings


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    clock: Callable[[], float] = time.time
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Runtime":
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2,
                                      health_check_interval=30)
        return cls(settings=settings, redis=client)

    def key(self, *parts: object) -> str:
        return self.settings.key_prefix + ":".join(str(p) for p in parts)

    def cached(self, name: str, build: Callable[[], object]):
        """Adapters built lazily and kept for the life of the process (one per kind)."""
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]
