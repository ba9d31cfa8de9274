"""The spine as issue 2 states it, every part real: the hook sender run as oned runs it (a
subprocess, the object's XSD-valid XML base64 on stdin), the Flask app serving
`POST /v1/events` over HTTP, Redis, a `oneha worker` process, a beat stand-in, an SMTP server and
a chat webhook. A host in ERROR and a VM of it in UNKNOWN are one incident: one mail and one chat
message, whatever oned fires twice."""

from __future__ import annotations

import pytest

from gateway.adapters.store.incidents import IncidentStore
from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from tests.hook.support import HookRunner, fixture_b64
from tests.hook.test_sender_gateway import KEY, Gateway
from tests.support.worker import Ticker, wait_until

GROUP_WAIT = 1.0


@pytest.fixture
def spine(redis_url, key_prefix, smtp_sink, chat_sink, workers, tmp_path):
    config = {
        "redis_url": redis_url, "key_prefix": key_prefix,
        "receivers": [{"name": "ops-mail", "urls": [smtp_sink.url(to="oncall@example.com")]},
                      {"name": "ops-chat", "urls": [chat_sink.url()]}],
        "route": {"group_by": ["host"], "group_wait": f"{GROUP_WAIT}s", "group_interval": "1s",
                  "repeat_interval": "1h"},
        "remediation": {"mode": "off"}, "raft": {"enabled": False},
        "reconciler": {"enabled": False}}
    workers.start(config, concurrency=2)
    ticker = Ticker(config, interval=0.25).start()
    with Gateway(redis_url, key_prefix) as gateway:  # the same prefix, so the same task queue
        hook = HookRunner(tmp_path, key=KEY, frontend="fe1")
        hook.configure(urls=gateway.url)
        yield hook, IncidentStore(Runtime.from_settings(settings_from_dict(config, env={})))
    ticker.stop()


def _send(hook: HookRunner, fixture: str) -> None:
    result = hook.run(stdin=fixture_b64(fixture))
    assert result.returncode == 0 and "accepted by" in result.stderr, result.stderr


def test_a_host_and_its_vm_reach_mail_and_chat_once_even_when_oned_fires_twice(
        spine, smtp_sink, chat_sink):
    hook, incidents = spine
    _send(hook, "host-error.xml")  # host 7, node07, ERROR
    _send(hook, "vm-unknown.xml")  # VM 42, web-42, ACTIVE/UNKNOWN on node07
    [mail] = smtp_sink.wait_for(1, timeout=30)
    [chat] = chat_sink.wait_for(1, timeout=10)
    inc = incidents.open_for("host:7")
    assert set(inc.objects) == {"host:7", "vm:42"}  # the VM joined its host's incident

    assert mail.to == "oncall@example.com"
    assert "Host node07 is in ERROR" in mail.subject and "1 VM affected" in mail.subject
    assert inc.id in mail.subject and inc.id in mail.text
    assert "web-42" in mail.text and "ACTIVE/UNKNOWN" in mail.text and "node07" in mail.text
    assert "What oneha will do next" in mail.text
    assert "Host node07 is in ERROR" in chat.title and "web-42" in chat.message

    # oned fires both hooks again (a re-fired hook carries the same event_id): duplicates.
    _send(hook, "host-error.xml")
    _send(hook, "vm-unknown.xml")
    log = hook.log()
    assert log.count("accepted by") == 4
    store = incidents.r
    wait_until(lambda: store.llen(incidents.rt.settings.task_queue) == 0
               and store.zcard(incidents.rt.settings.key_prefix + "outbox") == 0,
               what="queue and outbox drained")
    # group_interval is 1 s: give the grouping several looks to send something it should not.
    with pytest.raises(AssertionError):
        smtp_sink.wait_for(2, timeout=3.0)
    assert len(smtp_sink.messages) == 1 and len(chat_sink.messages) == 1
