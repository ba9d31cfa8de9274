"""Delivery when things go wrong around it: a worker that died mid-send, a receiver removed from
the configuration, Redis away. Real Redis and real receivers; the task's body runs in-process."""

from __future__ import annotations

import time

import pytest

from gateway.adapters.notifier import url_key
from gateway.adapters.store.notifications import NotificationStore
from gateway.config import settings_from_dict
from gateway.domain.notifications import Notification
from gateway.errors import Transient
from gateway.flows.delivery import ORDER_WAIT, deliver_round
from gateway.runtime import Runtime


def setup(redis_url, key_prefix, urls, **notify):
    settings = settings_from_dict({"redis_url": redis_url, "key_prefix": key_prefix,
                                   "receivers": [{"name": "ops", "urls": urls}],
                                   "notify": {"max_attempts": 3, "backoff_base": "50ms",
                                              "backoff_max": "100ms", **notify}}, env={})
    rt = Runtime.from_settings(settings)
    return rt, NotificationStore(rt, claim_ttl=0.3)


def note(iid="inc-1", receiver="ops"):
    return Notification(f"{iid}:firing:1:{receiver}", receiver, "firing",
                        {"id": iid, "title": "VM web-1 is in UNKNOWN"}, time.time())


def test_a_url_claimed_by_a_worker_that_died_is_sent_once_its_claim_expires(
        redis_url, key_prefix, chat_sink):
    rt, store = setup(redis_url, key_prefix, [chat_sink.url()])
    n, key = note(), url_key(chat_sink.url())
    dead_worker = store.claim(n.notification_id, key, time.time(), max_attempts=3)
    assert (dead_worker.state, dead_worker.attempt) == ("claimed", 1)

    rnd = deliver_round(rt, n, store=store)
    assert rnd.done == {key: "another worker is sending it"} and chat_sink.attempts == []
    assert rnd.follow_up_urls == [key] and 0.05 <= rnd.follow_up_in <= 0.3

    time.sleep(rnd.follow_up_in + 0.05)
    rnd = deliver_round(rt, n, only=rnd.follow_up_urls, store=store)
    assert rnd.done == {key: "delivered on attempt 2"} and rnd.status == "sent"
    assert len(chat_sink.wait_for(1)) == 1
    # the dead worker wakes up late and reports a failure: "sent" stays the truth
    store.finish(n, key, [key], dead_worker, "failed", "late", {"url": "x", "error": "late"},
                 time.time(), not_before=time.time())
    assert store.states(n.notification_id, [key]) == {key: "sent"}
    assert deliver_round(rt, n, store=store).done == {key: "already sent"}
    assert len(chat_sink.attempts) == 1


def test_the_last_attempt_lost_with_its_worker_is_dead_lettered_not_retried_for_ever(
        redis_url, key_prefix, chat_sink):
    rt, store = setup(redis_url, key_prefix, [chat_sink.url()], max_attempts=1)
    n, key = note(), url_key(chat_sink.url())
    store.claim(n.notification_id, key, time.time(), max_attempts=1)
    time.sleep(0.35)
    rnd = deliver_round(rt, n, store=store)
    assert rnd.done == {key: "attempts exhausted"} and rnd.status == "failed"
    assert chat_sink.attempts == []
    [dead] = store.dead_letters()
    assert dead["notification_id"] == n.notification_id and dead["attempts"] == 1
    assert "died before recording" in dead["error"]


def test_a_notification_for_a_receiver_no_longer_configured_is_dead_lettered(
        redis_url, key_prefix, chat_sink):
    rt, store = setup(redis_url, key_prefix, [chat_sink.url()])
    n = note(receiver="gone")
    rnd = deliver_round(rt, n, store=store)
    assert rnd.status == "failed"
    [dead] = store.dead_letters()
    assert dead["status"] == "REJECTED" and "receiver 'gone' is not configured" in dead["error"]
    assert store.get(n.notification_id)["status"] == "failed"


def test_redis_away_is_a_transient_error_and_nothing_is_sent(own_redis, key_prefix, chat_sink):
    rt, store = setup(own_redis.url, key_prefix, [chat_sink.url()])
    own_redis.stop(kill=True)
    with pytest.raises(Transient, match="inc-1:firing:1:ops"):
        deliver_round(rt, note(), store=store)
    assert chat_sink.attempts == []


def test_a_failure_left_over_when_max_attempts_is_lowered_is_dead_lettered(
        redis_url, key_prefix, chat_sink):
    rt, store = setup(redis_url, key_prefix, [chat_sink.url()], max_attempts=3)
    n, key = note(), url_key(chat_sink.url())
    chat_sink.fail_next(2)
    deliver_round(rt, n, store=store)
    time.sleep(0.06)
    assert deliver_round(rt, n, store=store).status == "retrying"  # 2 attempts made
    rt2, store2 = setup(redis_url, key_prefix, [chat_sink.url()], max_attempts=2)
    time.sleep(0.11)
    rnd = deliver_round(rt2, n, store=store2)
    assert rnd.done == {key: "attempts exhausted"} and rnd.status == "failed"
    assert [d["notification_id"] for d in store2.dead_letters()] == [n.notification_id]
    assert len(chat_sink.attempts) == 2


def test_a_message_waits_for_the_one_its_receiver_must_read_first(redis_url, key_prefix,
                                                                   chat_sink):
    rt, store = setup(redis_url, key_prefix, [chat_sink.url()])
    firing = note()
    approval = Notification("g1:approval_requested:2:ops", "ops", "approval_requested",
                            {"id": "inc-1", "title": "VM web-1 is in UNKNOWN"}, time.time(),
                            after=firing.notification_id)
    # The approval request was picked up first (two workers): it waits, nothing is sent.
    rnd = deliver_round(rt, approval, store=store)
    assert rnd.status == "waiting" and chat_sink.attempts == [] and rnd.follow_up_in is not None
    assert deliver_round(rt, firing, store=store).status == "sent"
    assert deliver_round(rt, approval, store=store).status == "sent"
    assert [m.title.split("]")[0] + "]" for m in chat_sink.wait_for(2)] == \
        ["[FIRING]", "[APPROVAL NEEDED]"]


def test_a_message_whose_predecessor_never_settles_goes_out_after_the_order_wait(
        redis_url, key_prefix, chat_sink):
    rt, store = setup(redis_url, key_prefix, [chat_sink.url()])
    late = Notification("g1:needs_human:3:ops", "ops", "needs_human",
                        {"id": "inc-1", "title": "VM web-1 is in UNKNOWN"},
                        time.time() - ORDER_WAIT - 1, after="g1:firing:1:ops-never-sent")
    assert deliver_round(rt, late, store=store).status == "sent"
