"""`oneha.deliver(notification_json, urls=None)`: tell one receiver about one incident transition.

For each apprise URL of the receiver (or only `urls`, the url_keys still to do on a retry):
claim → render for the URL's kind (mail or chat) → send → record. The claim (store
`NotificationStore.claim`, one Lua script) makes the effect exactly-once per notification id and
URL however often the task runs: a URL already sent is skipped, one being sent by another worker
is looked at again when that claim expires, a failed one is retried only when its backoff is due.
Failed URLs — and only those — are retried with exponential backoff (`notify` settings) by a
follow-up message of this same task; when the attempts are spent the URL is dead-lettered
(`oneha notifications failed`). The one gap left is inherent to at-least-once: a worker that
dies after the receiver accepted a message but before recording it sends it again once its claim
expires.

Follow-up messages are delayed at most `MAX_COUNTDOWN` seconds: Celery's Redis transport
redelivers a delayed message still unacknowledged after its visibility timeout (120 s here), so a
longer backoff is reached by a few short hops, each of which just finds the URL not yet due.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis
from celery import shared_task

from gateway.adapters.notifier import Notifier, SendResult, url_key
from gateway.adapters.store.notifications import NotificationStore
from gateway.domain.messages import render
from gateway.domain.notifications import DEAD, FAILED, Notification, outcome_of
from gateway.errors import Transient
from gateway.runtime import Runtime

log = logging.getLogger("oneha.notify")

DELIVER_TASK = "oneha.deliver"
MAX_COUNTDOWN = 60.0
# A message waits for the one its receiver must read before it (`Notification.after`) this long
# at most: a receiver whose other channel is down is told late, not never.
ORDER_WAIT = 30.0
ORDER_POLL = 0.1
TOLD = ("sent", "failed")  # the overall status of a notification whose every URL is settled


@dataclass
class Round:
    """What one run of the task did, per URL key: a value with reasons, logged and returned."""

    notification_id: str
    done: dict[str, str] = field(default_factory=dict)  # url_key -> reason
    follow_up_in: float | None = None  # seconds until the follow-up message, if any
    follow_up_urls: list[str] = field(default_factory=list)
    status: str = ""

    def as_dict(self) -> dict:
        return {"notification_id": self.notification_id, "urls": self.done,
                "follow_up_in": self.follow_up_in, "follow_up_urls": self.follow_up_urls,
                "status": self.status}


def notifier_of(rt: Runtime) -> Notifier:
    return rt.cached("notifier", lambda: Notifier(timeout=rt.settings.notify.send_timeout))


def deliver_round(rt: Runtime, n: Notification, only: list[str] | None = None,
                  notifier: Notifier | None = None,
                  store: NotificationStore | None = None) -> Round:
    """One pass over the receiver's URLs; the caller schedules `round.follow_up_*`."""
    cfg = rt.settings.notify
    store = store or NotificationStore.of(rt)
    notifier = notifier or notifier_of(rt)
    rnd = Round(n.notification_id)
    try:
        receiver = rt.settings.receiver(n.receiver)
    except KeyError:
        reason = f"receiver {n.receiver!r} is not configured (config changed after enqueue?)"
        store.reject(n, reason, rt.clock())
        log.error("notification_rejected id=%s reason=%s", n.notification_id, reason)
        rnd.done["-"], rnd.status = reason, "failed"
        return rnd

    if n.after and store.status(n.after) not in TOLD and rt.clock() - n.created_at < ORDER_WAIT:
        rnd.done["-"] = f"waits for {n.after}: its receiver reads the story in order"
        rnd.follow_up_in, rnd.follow_up_urls, rnd.status = ORDER_POLL, list(only or []), "waiting"
        return rnd
    urls = [u.get_secret_value() for u in receiver.urls]
    keyed = {url_key(u): u for u in urls}
    all_keys = list(keyed)
    todo = [k for k in all_keys if only is None or k in only]
    store.open(n, {k: notifier.masked(u) for k, u in keyed.items()}, rt.clock())
    messages: dict[str, object] = {}
    waits: list[float] = []

    for key in todo:
        url = keyed[key]
        claim = store.claim(n.notification_id, key, rt.clock(), cfg.max_attempts)
        if claim.state in ("sending", "not_due"):
            rnd.done[key] = ("another worker is sending it" if claim.state == "sending"
                             else "retry not due yet")
            waits.append(claim.wait)
            rnd.follow_up_urls.append(key)
            continue
        if claim.state == "exhausted":
            result = SendResult(url=notifier.masked(url), ok=False, status="FAILURE",
                                elapsed=0.0, error="the last attempt's worker died before "
                                                   "recording its outcome")
            rnd.status = store.finish(n, key, all_keys, claim, DEAD, "attempts exhausted",
                                      result.as_dict(), rt.clock())
            rnd.done[key] = "attempts exhausted"
            continue
        if not claim.claimed:  # sent or dead already: nothing to do, by design
            rnd.done[key] = f"already {claim.state}"
            continue

        kind = receiver.kind_of(url)
        try:
            if kind not in messages:
                messages[kind] = render(n, kind)
            result = notifier.send(url, messages[kind])
        except Exception as exc:  # noqa: BLE001 — a rendering bug must not lose the notice
            result = SendResult(url=notifier.masked(url), ok=False, status="RENDER_ERROR",
                                elapsed=0.0, error=f"{type(exc).__name__}: {exc}",
                                permanent=True)
        out = outcome_of(result.ok, result.permanent, claim.attempt, cfg.max_attempts,
                         cfg.backoff_base, cfg.backoff_max)
        now = rt.clock()
        rnd.status = store.finish(n, key, all_keys, claim, out.state, out.reason,
                                  result.as_dict(), now, not_before=now + out.retry_in)
        rnd.done[key] = out.reason
        log_fn = log.info if result.ok else log.warning
        log_fn("notification_%s id=%s url=%s attempt=%d status=%s elapsed=%.3f reason=%s%s",
               out.state, n.notification_id, result.url, claim.attempt, result.status,
               result.elapsed, out.reason, f" error={result.error}" if result.error else "")
        if out.state == FAILED:
            waits.append(out.retry_in)
            rnd.follow_up_urls.append(key)
    if waits:
        rnd.follow_up_in = min(max(min(waits), 0.05), MAX_COUNTDOWN)
    if not rnd.status:
        rnd.status = store.status(n.notification_id)
    return rnd


@shared_task(name=DELIVER_TASK, acks_late=True,
             autoretry_for=(Transient, redis.exceptions.ConnectionError,
                            redis.exceptions.TimeoutError),
             retry_backoff=True, retry_backoff_max=60, max_retries=20)
def deliver(notification_json: str, urls: list[str] | None = None) -> dict:
    from tasks.app import runtime
    rt = runtime()
    try:
        n = Notification.from_json(notification_json)
    except (ValueError, TypeError) as exc:  # not retried: it would never pass; logged loudly
        log.error("notification_rejected reason=%s body=%.300s", exc, notification_json)
        return {"action": "rejected", "reason": f"not a Notification: {exc}"}
    rnd = deliver_round(rt, n, only=urls)
    if rnd.follow_up_in is not None:
        deliver.apply_async(args=[notification_json],
                            kwargs={"urls": rnd.follow_up_urls or urls},
                            countdown=rnd.follow_up_in)
    return rnd.as_dict()

