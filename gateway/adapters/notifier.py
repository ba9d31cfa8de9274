"""Sending one rendered message to one apprise URL. We write no transports: apprise has them.

`Notifier.send(url, message)` never raises for a delivery problem; it returns a `SendResult`
(ok, status, masked URL, masked error text, elapsed, permanent). `result.raise_for_status()`
turns a failure into `DeliveryError` whose `permanent` flag says whether retrying can help:
a URL apprise cannot parse will never work (permanent); a refused connection, an HTTP 500 or a
timeout may pass (transient). Secrets never leave this module unmasked: URLs are shown as
apprise's `url(privacy=True)`, and any secret part of the URL that shows up in an error text is
replaced by `****`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import asdict, dataclass
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import apprise

from gateway.domain.messages import Message
from gateway.errors import OneHAError

log = logging.getLogger(__name__)


class DeliveryError(OneHAError):
    """A message did not reach one URL; `permanent` = retrying cannot help."""

    def __init__(self, message: str, permanent: bool = False, result: "SendResult | None" = None):
        super().__init__(message)
        self.permanent = permanent
        self.result = result


@dataclass(frozen=True)
class SendResult:
    url: str  # masked (apprise privacy URL); safe to log, record and print
    ok: bool
    status: str  # SUCCESS | FAILURE | TIMEOUT | INVALID_URL
    error: str  # masked; "" when ok
    elapsed: float  # seconds
    permanent: bool = False  # a failure that retrying cannot fix

    def raise_for_status(self) -> "SendResult":
        if not self.ok:
            raise DeliveryError(f"{self.url}: {self.error}", permanent=self.permanent, result=self)
        return self

    def as_dict(self) -> dict:
        return asdict(self)


def url_key(url: str) -> str:
    """A stable id of a URL that reveals nothing of it (the delivery record's per-URL key)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


# Query fields whose values are secrets whatever the plugin: apprise's privacy URL keeps custom
# HTTP headers (`+Authorization=...` on json://) and some plugin fields in clear.
_SECRET_FIELDS = {"token", "pass", "password", "secret", "key", "apikey", "api_key", "auth",
                  "authorization", "signature", "access_token", "webhook", "passwd", "pwd"}


def _mask_query(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    fields = [(k, "****" if k.startswith("+") or k.lower().lstrip("+-:") in _SECRET_FIELDS
               else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(fields, safe="*@")))


def _privacy_url(plugin) -> str:
    return _mask_query(plugin.url(privacy=True))


def mask_url(url: str) -> str:
    """apprise's privacy form of `url` with header and token fields hidden too; for a URL apprise
    cannot parse, only its scheme."""
    plugin = apprise.Apprise.instantiate(url, asset=_ASSET)
    if plugin is not None:
        return _privacy_url(plugin)
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme[:20]}://****"


def url_problem(url: str) -> str | None:
    """Why apprise could not send to `url` (None: it understands it). Said without the URL's
    secrets: only its scheme is named."""
    if apprise.Apprise.instantiate(url, asset=_ASSET) is not None:
        return None
    scheme = url.split("://", 1)[0][:20] if "://" in url else ""
    if not scheme:
        return "not a URL (apprise URLs look like mailto://… or json://…)"
    return f"apprise does not understand {scheme}:// URLs (or their fields); see apprise's list"


def _secret_parts(url: str, masked: str) -> list[str]:
    """Pieces of the raw URL that its masked form hides: tokens, passwords, webhook keys."""
    parts = set(re.split(r"[/:@?&=#%+,;\s]", url)) | set(re.split(r"[/:@?&=#+,;\s]", unquote(url)))
    return sorted({p for p in parts if len(p) >= 4 and p not in masked}, key=len, reverse=True)


def scrub(text: str, url: str, masked: str) -> str:
    text = text.replace(url, masked)
    for part in _secret_parts(url, masked):
        text = text.replace(part, "****")
    return text


_ASSET = apprise.AppriseAsset(app_id="oneha", app_desc="OpenNebula HA gateway",
                              storage_mode="memory")


class Notifier:
    """Sends through a fresh apprise object per message: apprise throttles a plugin object to one
    request per `request_rate_per_sec` (5.5 s for most plugins), which would stall every second
    notification to the same URL in a worker process. Parsing a URL costs well under a ms."""

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self._masked: dict[str, str] = {}

    def _load(self, url: str) -> tuple[apprise.Apprise, str] | None:
        plugin = apprise.Apprise.instantiate(url, asset=_ASSET)
        if plugin is None:
            return None
        obj = apprise.Apprise(asset=_ASSET)
        obj.add(plugin)
        return obj, self._masked.setdefault(url, _privacy_url(plugin))

    @staticmethod
    def load_plugins(urls: list[str]) -> None:
        """Have apprise load the plugins of `urls` now, sending nothing: its first look-up of a
        scheme loads its plugin modules (0.3-1.4 s here), which a worker does before its pool
        forks rather than during its first message."""
        for url in urls:
            apprise.Apprise.instantiate(url, asset=_ASSET, suppress_exceptions=True)

    def masked(self, url: str) -> str:
        if url not in self._masked:
            self._masked[url] = mask_url(url)
        return self._masked[url]

    def send(self, url: str, message: Message) -> SendResult:
        loaded = self._load(url)
        if loaded is None:
            return SendResult(url=mask_url(url), ok=False, status="INVALID_URL", elapsed=0.0,
                              error="apprise cannot parse this URL (unknown scheme or bad "
                                    "fields); fix the receiver's URL", permanent=True)
        obj, masked = loaded
        started = time.monotonic()
        # `timeout` bounds the whole call; a send it cuts off may still complete later in
        # apprise's thread, so a TIMEOUT is ambiguous and its retry may deliver twice (rare: the
        # plugins' own connect/read timeouts, cto/rto, normally end a send first).
        try:
            res = obj.notify(body=message.sent_body, title=message.title,
                             notify_type=message.notify_type, body_format=message.body_format,
                             timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 — a plugin bug is a failed delivery, recorded
            elapsed = time.monotonic() - started
            log.warning("notification_send_crashed url=%s error=%s", masked,
                        scrub(repr(exc), url, masked))
            return SendResult(url=masked, ok=False, status="FAILURE", elapsed=round(elapsed, 4),
                              error=scrub(f"{type(exc).__name__}: {exc}", url, masked))
        elapsed = time.monotonic() - started
        results = list(res.results)
        if bool(res):
            return SendResult(url=masked, ok=True, status="SUCCESS", error="",
                              elapsed=round(results[0].elapsed if results else elapsed, 4))
        status = results[0].status.name if results else res.status.name
        logs = [entry.message for r in results for entry in r.logs()] + \
               [entry.message for entry in res.call_logs()]
        error = "; ".join(dict.fromkeys(m.strip() for m in logs if m.strip())) or \
            f"apprise reported {status}"
        return SendResult(url=masked, ok=False, status=status, elapsed=round(elapsed, 4),
                          error=scrub(error, url, masked)[:1000])
