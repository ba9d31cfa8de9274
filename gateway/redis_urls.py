"""Which Redis a URL names: one server, or a primary found through Redis Sentinel.

    redis://[[user]:password@]host:port/db          one server (also rediss://, unix://)
    redis+sentinel://[[user]:password@]host:port[,host:port...]/<master name>[/db]
    sentinel://...                                   the same

A Sentinel URL lists the sentinels (not the Redis servers) and the name they monitor the primary
under (`sentinel monitor <name> ...`); the password is the Redis servers' (`requirepass`), the
sentinels are asked without one. The store (redis-py) and the broker (kombu) each ask the
sentinels where the primary is, and again after it failed over.

Pure: parsing only, so the configuration can refuse a malformed URL at load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

SENTINEL_SCHEMES = ("redis+sentinel", "sentinel")
PLAIN_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None

    def kombu_broker(self) -> str:
        """kombu's Sentinel transport URL: `sentinel://[:pw@]host:port/db;sentinel://...` (the
        master name travels in the transport options, see `tasks/app.py`)."""
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        return ";".join(f"sentinel://{auth}{host}:{port}/{self.db}"
                        for host, port in self.sentinels)


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def is_sentinel(url: str) -> bool:
    return scheme_of(url) in SENTINEL_SCHEMES


def parse_sentinel(url: str) -> SentinelUrl:
    """The parts of a Sentinel URL; ValueError saying what is wrong with a malformed one."""
    scheme = scheme_of(url)
    if scheme not in SENTINEL_SCHEMES:
        raise ValueError(f"not a Sentinel URL (redis+sentinel://...): {scheme or url!r}")
    rest = url.split("://", 1)[1]
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    hosts, _, path = rest.partition("/")
    username = password = None
    if "@" in hosts:
        auth, hosts = hosts.rsplit("@", 1)
        user, sep, secret = auth.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
    sentinels = tuple(_host_port(h) for h in hosts.split(",") if h.strip())
    if not sentinels:
        raise ValueError("a Sentinel URL names at least one sentinel: "
                         "redis+sentinel://host:26379,host:26379/<master name>")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ValueError("a Sentinel URL names the monitored primary after the sentinels: "
                         "redis+sentinel://host:26379/<master name>[/db]")
    if len(parts) > 2:
        raise ValueError(f"a Sentinel URL's path is /<master name>[/db], not /{path}")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"the database of a Sentinel URL is a number, not {parts[1]!r}")
        db = int(parts[1])
    return SentinelUrl(sentinels, unquote(parts[0]), db, username, password)


def _host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [::1]:26379
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"a sentinel is host:port, not {text!r}")
    if not port:
        return host, DEFAULT_SENTINEL_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"a sentinel's port is a number from 1 to 65535, not {port!r}")
    return host, int(port)


def check(url: str) -> str:
    """`url` when oneha can use it; ValueError naming the schemes it can."""
    scheme = scheme_of(url)
    if scheme in SENTINEL_SCHEMES:
        parse_sentinel(url)
    elif scheme not in PLAIN_SCHEMES:
        raise ValueError(f"redis_url must start with redis://, rediss://, unix:// or "
                         f"redis+sentinel:// (got {scheme + '://' if scheme else repr(url)})")
    return url
