"""Delivery end to end: a real `oneha worker` process, real Redis, a real SMTP server and a real
HTTP chat receiver. Notifications are queued exactly as the incident engine queues them
(`send_task("oneha.deliver", args=[notification_json])`).

One worker (tests/support/worker.py) serves the whole module, as starting one costs seconds;
every test uses its own notification ids and clears the sinks first.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from gateway.adapters.notifier import url_key
from gateway.adapters.store.notifications import NotificationStore
from gateway.cli import main
from gateway.config import settings_from_dict
from gateway.domain.notifications import Notification, notification_id_for
from gateway.runtime import Runtime
from tests.conftest import SHARED_REDIS
from tests.support.sinks import ChatSink, SmtpSink
from tests.support.worker import (WorkerHandle, celery_client, start_worker, test_config,
                                  wait_until)

SECRET = "s3cretHeaderValue42"


class Stack:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.prefix = f"oneha-test-{uuid.uuid4().hex[:8]}:"
        self.smtp = SmtpSink().start()
        self.chat = ChatSink().start()
        self.mail_url = self.smtp.url(to="ops@example.com")
        self.chat_url = self.chat.url() + f"?+X-Token={SECRET}"
        self.config = test_config(
            self.prefix, SHARED_REDIS,
            receivers=[{"name": "ops", "urls": [self.mail_url, self.chat_url]}],
            notify={"max_attempts": 3, "backoff_base": "50ms", "backoff_max": "200ms",
                    "send_timeout": "5s"})
        self.settings = settings_from_dict(self.config, env={})
        self.store = NotificationStore(Runtime.from_settings(self.settings))
        self.celery = celery_client(self.config)
        self.worker: WorkerHandle | None = None

    def start_worker(self) -> None:
        self.worker = start_worker(self.config, self.tmp, concurrency=2, name="deliver")

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.smtp.stop()
        self.chat.stop()
        client = redis.Redis.from_url(SHARED_REDIS)
        keys = list(client.scan_iter(match=self.prefix + "*", count=1000))
        client.delete(*keys, self.settings.task_queue)

    def enqueue(self, n: Notification) -> None:
        self.celery.send_task("oneha.deliver", args=[n.to_json()])

    def wait_record(self, nid: str, status: str, runs: int = 1, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        rec = None
        while time.monotonic() < deadline:
            assert self.worker.alive, self.worker.log()[-3000:]
            rec = self.store.get(nid)
            if rec and rec["status"] == status and rec["runs"] >= runs:
                return rec
            time.sleep(0.05)
        raise AssertionError(f"{nid} not {status} after {runs} run(s) within {timeout}s: {rec}\n"
                             f"{self.worker.log()[-3000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("deliver"))
    s.start_worker()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def fresh(stack):
    stack.smtp.clear()
    stack.chat.clear()
    return stack


def note(transition: str = "firing", **extra) -> Notification:
    iid = f"inc-{uuid.uuid4().hex[:8]}"
    incident = {"id": iid, "title": "Host node07 is in ERROR — 2 VMs affected",
                "started_at": time.time() - 60,
                "object": {"resource": "HOST", "id": 7, "name": "node07", "state_label": "ERROR"},
                "affected": [{"resource": "VM", "id": 42, "name": "web-1"},
                             {"resource": "VM", "id": 43, "name": "web-2"}],
                "next_step": "waiting for approval", **extra}
    return Notification(notification_id_for(iid, transition, 1, "ops"), "ops", transition,
                        incident, time.time())


def test_one_notification_gives_exactly_one_mail_and_one_chat_message(fresh):
    n = note()
    fresh.enqueue(n)
    rec = fresh.wait_record(n.notification_id, "sent")
    [mail] = fresh.smtp.messages
    [post] = fresh.chat.messages
    assert mail.subject == f"[FIRING] Host node07 is in ERROR — 2 VMs affected " \
                           f"[oneha {n.incident['id']}]"
    assert mail.rcpt_tos == ["ops@example.com"]
    # the text/plain part apprise writes from the HTML part: one field, one item a line
    assert "Object: HOST node07 (#7)" in mail.text.splitlines()
    assert "- VM web-2 (#43)" in mail.text.splitlines()
    assert post.title == "[FIRING] Host node07 is in ERROR — 2 VMs affected"
    assert post.message.splitlines()[1] == "2 affected: web-1, web-2."
    assert post.headers.get("X-Token") == SECRET
    assert sorted((u["state"], u["attempts"]) for u in rec["urls"]) == [("sent", 1), ("sent", 1)]
    assert [a["outcome"] for a in rec["attempts"]] == ["sent", "sent"]


def test_the_same_notification_queued_twice_is_delivered_once(fresh):
    n = note()
    fresh.enqueue(n)
    fresh.enqueue(n)
    rec = fresh.wait_record(n.notification_id, "sent", runs=2)
    assert rec["runs"] == 2
    assert len(fresh.smtp.messages) == 1
    assert len(fresh.chat.attempts) == 1
    assert len(rec["attempts"]) == 2  # one per URL, none from the duplicate


def test_chat_failing_twice_is_retried_and_delivered_once_with_three_attempts(fresh):
    fresh.chat.fail_next(2, status=500)
    n = note()
    fresh.enqueue(n)
    rec = fresh.wait_record(n.notification_id, "sent")
    chat_key, mail_key = url_key(fresh.chat_url), url_key(fresh.mail_url)
    assert [p.status for p in fresh.chat.attempts] == [500, 500, 200]
    assert len(fresh.chat.messages) == 1 and len(fresh.smtp.messages) == 1
    chat_attempts = [a for a in rec["attempts"] if a["url_key"] == chat_key]
    assert [(a["attempt"], a["outcome"]) for a in chat_attempts] == [
        (1, "failed"), (2, "failed"), (3, "sent")]
    assert "error=500" in chat_attempts[0]["error"]
    assert [a["attempt"] for a in rec["attempts"] if a["url_key"] == mail_key] == [1]
    # backoff: the retries waited for their due time (50 ms, then 100 ms)
    assert chat_attempts[1]["at"] - chat_attempts[0]["at"] >= 0.05
    assert chat_attempts[2]["at"] - chat_attempts[1]["at"] >= 0.1


def test_chat_always_failing_is_dead_lettered_after_max_attempts_and_secrets_stay_masked(fresh):
    fresh.chat.fail_next(100, status=503)
    n = note()
    try:
        fresh.enqueue(n)
        rec = fresh.wait_record(n.notification_id, "failed")
        time.sleep(0.5)  # nothing more is tried once dead
        assert [p.status for p in fresh.chat.attempts] == [503, 503, 503]
    finally:
        fresh.chat.clear()
    chat = next(u for u in rec["urls"] if u["url_key"] == url_key(fresh.chat_url))
    assert (chat["state"], chat["attempts"]) == ("dead", 3)
    assert len(fresh.smtp.messages) == 1
    [dead] = [d for d in fresh.store.dead_letters() if d["notification_id"] == n.notification_id]
    assert dead["attempts"] == 3 and dead["receiver"] == "ops"
    assert "error=503" in dead["error"] and dead["reason"] == "failed 3 of 3 attempts"
    assert "X-Token=****" in dead["url"]
    everything = json.dumps(rec) + json.dumps(fresh.store.dead_letters())
    assert SECRET not in everything
    assert SECRET not in fresh.worker.log()
    # what an operator's alert reads: the module's worker may hold others from earlier tests
    from gateway.app import create_app
    metrics = create_app(fresh.settings).test_client().get("/metrics").get_data(as_text=True)
    gauge = next(line for line in metrics.splitlines()
                 if line.startswith("oneha_notifications_dead_letters "))
    assert float(gauge.split()[1]) == len(fresh.store.dead_letters()) >= 1


def test_a_malformed_message_is_rejected_loudly_and_the_worker_keeps_delivering(fresh):
    fresh.celery.send_task("oneha.deliver", args=['{"notification_id": "half"}'])
    n = note()
    fresh.enqueue(n)
    fresh.wait_record(n.notification_id, "sent")
    wait_until(lambda: "notification_rejected reason=notification JSON lacks" in fresh.worker.log(),
               what="the malformed message logged as rejected")
    assert len(fresh.smtp.messages) == 1 and len(fresh.chat.messages) == 1


def test_a_dead_letter_retried_after_the_receiver_recovers_is_delivered_once(fresh):
    fresh.chat.fail_next(3, status=503)
    n = note()
    fresh.enqueue(n)
    fresh.wait_record(n.notification_id, "failed")
    runner = CliRunner()
    cli = ["-c", str(fresh.worker.config_path), "notifications", "retry", n.notification_id]
    res = runner.invoke(main, cli)
    assert res.exit_code == 0, res.output
    assert f"queued {n.notification_id} again for 1 URL(s) of receiver ops" in res.output
    rec = fresh.wait_record(n.notification_id, "sent", runs=4)  # 3 attempts + the retry
    assert [p.status for p in fresh.chat.attempts] == [503, 503, 503, 200]
    assert len(fresh.smtp.messages) == 1  # the delivered URL is not sent again
    chat = next(u for u in rec["urls"] if u["url_key"] == url_key(fresh.chat_url))
    assert (chat["state"], chat["attempts"]) == ("sent", 1)
    assert not [d for d in fresh.store.dead_letters() if d["notification_id"] == n.notification_id]
    res = runner.invoke(main, cli)
    assert res.exit_code == 1 and "no dead letter" in res.output
