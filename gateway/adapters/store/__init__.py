"""Redis stores, one per owner; each module owns its key names and TTLs."""

from __future__ import annotations

from contextlib import contextmanager

import redis

from gateway.errors import Transient

# Redis errors that say "not now" rather than "never": callers raise `Transient` (retried; at the
# HTTP edge a 503, so the hook sender spools).
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               redis.exceptions.ReadOnlyError, redis.exceptions.BusyLoadingError,
               redis.exceptions.OutOfMemoryError, redis.exceptions.MasterDownError)


def _refusals_are_unavailability() -> None:
    """Redis refusing us outright — `-DENIED Redis is running in protected mode …` to a client
    from another host — is Redis being unreachable, not a bad command; redis-py would raise a bare
    ResponseError for it (a 500 at the HTTP edge). Its reply parser maps an error's first word
    to a class: add this one (`-MASTERDOWN` has its own class, in UNAVAILABLE)."""
    try:
        from redis._parsers.base import BaseParser
    except ImportError:  # another redis-py layout: such replies stay ResponseErrors
        return
    BaseParser.EXCEPTION_CLASSES.setdefault("DENIED", redis.exceptions.ConnectionError)


_refusals_are_unavailability()


@contextmanager
def unavailable_is_transient(what: str):
    """`what: <redis error>` as a `Transient` (retried) when Redis says "not now"."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise Transient(f"{what}: {exc}") from exc


def redis_cause(exc: BaseException) -> BaseException | None:
    """The Redis error that `exc` comes from (itself, or one in its chain) when Redis being away
    is what failed, else None (an OpenNebula that is away is `Transient` too)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, UNAVAILABLE):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def unreachable(url: str, cause: BaseException) -> str:
    """What a person is told: `Redis at redis://host:6379/0 is unreachable: <reason>`."""
    return f"Redis at {masked_url(url)} is unreachable: {cause}"


def masked_url(url: str) -> str:
    """The URL without its password (`redis://***@host:6379/0`)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
