"""The delivery flow: one notification to one receiver, each of its apprise URLs exactly once.

    wait for the message before it → open the record → per URL: claim → render for the URL's
    kind (mail or chat) in the receiver's language → send → record the outcome → say when to
    look again

The claim (`NotificationStore.claim`, one Lua script) makes the effect exactly-once per
notification id and URL however often the task runs: a URL already sent is skipped, one being
sent by another worker is looked at again when that claim expires, a failed one is retried only
when its backoff is due. Failed URLs — and only those — are retried with exponential backoff
(`notify` settings) by a follow-up run; when the attempts are spent the URL is dead-lettered
(`oneha notifications failed`). The one gap left is inherent to at-least-once: a worker that dies
after the receiver accepted a message but before recording it sends it again once its claim
expires.

Order: a notification names the one its receiver must have had before it (`after`, set by the
composer); until that one is settled, this one waits (at most ORDER_WAIT), so [FIRING] is read
before the approval request even when two workers pick both up at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from gateway.adapters.notifier import Notifier, SendResult, url_key
from gateway.adapters.store.notifications import Claim, NotificationStore
from gateway.adapters.store.telemetry import Telemetry, latency_of
from gateway.domain.messages import render
from gateway.domain.notifications import DEAD, FAILED, SENT, Notification, outcome_of
from gateway.runtime import Runtime

log = logging.getLogger("oneha.notify")

# Follow-ups are delayed at most this long: Celery's Redis transport redelivers a delayed message
# still unacknowledged after its visibility timeout (120 s here), so a longer backoff is reached
# by a few short hops, each of which just finds the URL not yet due.
MAX_COUNTDOWN = 60.0
# A message waits for the one its receiver must read before it this long at most: a receiver
# whose other channel is down is told late, not never.
ORDER_WAIT = 30.0
ORDER_POLL = 0.1
TOLD = ("sent", "failed")  # the overall status of a notification whose every URL is settled


@dataclass
class Round:
    """What one run did, per URL key: a value with reasons, logged and returned."""

    notification_id: str
    done: dict[str, str] = field(default_factory=dict)  # url_key -> reason
    follow_up_in: float | None = None  # seconds until the follow-up run, if any
    follow_up_urls: list[str] = field(default_factory=list)
    status: str = ""

    def as_dict(self) -> dict:
        return {"notification_id": self.notification_id, "urls": self.done,
                "follow_up_in": self.follow_up_in, "follow_up_urls": self.follow_up_urls,
                "status": self.status}


def notifier_of(rt: Runtime) -> Notifier:
    return rt.cached("notifier", lambda: Notifier(timeout=rt.settings.notify.send_timeout))


class Delivery:
    """One pass over a notification's URLs (`deliver_round`); holds what the stages share."""

    def __init__(self, rt: Runtime, n: Notification, notifier: Notifier,
                 store: NotificationStore):
        self.rt, self.n, self.notifier, self.store = rt, n, notifier, store
        self.cfg = rt.settings.notify
        self.rnd = Round(n.notification_id)
        self.messages: dict[str, object] = {}  # one rendering per kind
        self.waits: list[float] = []

    def run(self, only: list[str] | None) -> Round:
        try:
            receiver = self.rt.settings.receiver(self.n.receiver)
        except KeyError:
            return self._reject(f"receiver {self.n.receiver!r} is not configured (config "
                                "changed after enqueue?)")
        if self._waits_for_predecessor(only):
            return self.rnd
        keyed = {url_key(u): u for u in (u.get_secret_value() for u in receiver.urls)}
        self.store.open(self.n, {k: self.notifier.masked(u) for k, u in keyed.items()},
                        self.rt.clock())
        for key in [k for k in keyed if only is None or k in only]:
            self._one_url(receiver, keyed, key)
        if self.waits:
            self.rnd.follow_up_in = min(max(min(self.waits), 0.05), MAX_COUNTDOWN)
        if not self.rnd.status:
            self.rnd.status = self.store.status(self.n.notification_id)
        return self.rnd

    def _reject(self, reason: str) -> Round:
        self.store.reject(self.n, reason, self.rt.clock())
        log.error("notification_rejected id=%s reason=%s", self.n.notification_id, reason)
        self.rnd.done["-"], self.rnd.status = reason, "failed"
        return self.rnd

    def _waits_for_predecessor(self, only: list[str] | None) -> bool:
        n = self.n
        if not n.after or self.store.status(n.after) in TOLD \
                or self.rt.clock() - n.created_at >= ORDER_WAIT:
            return False
        self.rnd.done["-"] = f"waits for {n.after}: its receiver reads the story in order"
        self.rnd.follow_up_in, self.rnd.follow_up_urls = ORDER_POLL, list(only or [])
        self.rnd.status = "waiting"
        return True

    def _one_url(self, receiver, keyed: dict[str, str], key: str) -> None:
        url, all_keys = keyed[key], list(keyed)
        claim = self.store.claim(self.n.notification_id, key, self.rt.clock(),
                                 self.cfg.max_attempts)
        if claim.state in ("sending", "not_due"):
            self.rnd.done[key] = ("another worker is sending it" if claim.state == "sending"
                                  else "retry not due yet")
            self.waits.append(claim.wait)
            self.rnd.follow_up_urls.append(key)
        elif claim.state == "exhausted":
            result = SendResult(url=self.notifier.masked(url), ok=False, status="FAILURE",
                                elapsed=0.0, error="the last attempt's worker died before "
                                                   "recording its outcome")
            self.rnd.status = self.store.finish(self.n, key, all_keys, claim, DEAD,
                                                "attempts exhausted", result.as_dict(),
                                                self.rt.clock())
            self.rnd.done[key] = "attempts exhausted"
        elif not claim.claimed:  # sent or dead already: nothing to do, by design
            self.rnd.done[key] = f"already {claim.state}"
        else:
            self._send(receiver.kind_of(url), receiver.language, url, key, all_keys, claim)

    def _send(self, kind: str, language: str, url: str, key: str, all_keys: list[str],
              claim: Claim) -> None:
        try:
            if kind not in self.messages:
                self.messages[kind] = render(self.n, kind, language)
            result = self.notifier.send(url, self.messages[kind])
        except Exception as exc:  # noqa: BLE001 — a rendering bug must not lose the notice
            result = SendResult(url=self.notifier.masked(url), ok=False, status="RENDER_ERROR",
                                elapsed=0.0, error=f"{type(exc).__name__}: {exc}",
                                permanent=True)
        cfg = self.cfg
        out = outcome_of(result.ok, result.permanent, claim.attempt, cfg.max_attempts,
                         cfg.backoff_base, cfg.backoff_max)
        now = self.rt.clock()
        self.rnd.status = self.store.finish(self.n, key, all_keys, claim, out.state, out.reason,
                                            result.as_dict(), now, not_before=now + out.retry_in)
        self.rnd.done[key] = out.reason
        Telemetry.of(self.rt).delivered(  # /metrics: per receiver; event → message time
            self.n.receiver, result.ok, self.n.transition,
            latency_of(self.n.incident, self.n.transition, now) if out.state == SENT else None)
        (log.info if result.ok else log.warning)(
            "notification_%s id=%s url=%s attempt=%d status=%s elapsed=%.3f reason=%s%s",
            out.state, self.n.notification_id, result.url, claim.attempt, result.status,
            result.elapsed, out.reason, f" error={result.error}" if result.error else "")
        if out.state == FAILED:
            self.waits.append(out.retry_in)
            self.rnd.follow_up_urls.append(key)


def deliver_round(rt: Runtime, n: Notification, only: list[str] | None = None,
                  notifier: Notifier | None = None,
                  store: NotificationStore | None = None) -> Round:
    """One pass over the receiver's URLs (or only the url_keys `only`); the caller schedules
    `round.follow_up_*`."""
    return Delivery(rt, n, notifier or notifier_of(rt), store or NotificationStore.of(rt)
                    ).run(only)
