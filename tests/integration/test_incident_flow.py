"""The incident path end to end with real parts: signed hook events through `POST /v1/events`
(XSD-valid host and VM XML), the real Redis, a real `oneha worker` process, a beat stand-in
sending `oneha.flush_due`, and the real SMTP and chat sinks.

- a host with 200 VMs crashes: one message per receiver naming the host and the 200 VMs, a
  reminder after repeat_interval, one resolve message after recovery;
- a silence made before the crash: nothing sent, everything recorded;
- the worker and the beat are killed and restarted during group_wait: the message is sent once.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from gateway.adapters.store.incidents import IncidentStore
from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from tests.integration.test_ingest import signed_headers
from tests.support.worker import Ticker, start_beat, wait_until
from tests.support.samples import b64, host_xml, vm_xml

GROUP_WAIT = 6.0  # longer than 201 events take to reach ingest here, even on a loaded machine


def hook_body(resource: str, id: int, state: int, lcm_state: int | None = None, host: str = "node07",
              host_id: int = 7) -> bytes:
    if resource == "HOST":
        xml = host_xml(host_id, host, state)
        name, hook = host, "oneha-host"
    else:
        xml = vm_xml(id, state=state, lcm_state=lcm_state, host=host, host_id=host_id)
        name, hook = f"web-{id}", "oneha-vm"
    return json.dumps({
        "resource": resource, "id": id if resource == "VM" else host_id, "name": name,
        "state": state, "lcm_state": lcm_state, "state_name": "", "lcm_state_name": None,
        "xml": b64(xml), "hook": hook, "frontend": "fe1", "sent_at": time.time(),
        "event_id": uuid.uuid4().hex}).encode()


class Stack:
    def __init__(self, config: dict, workers, smtp, chat):
        self.config = config
        self.settings = settings_from_dict(config, env={})
        self.app = create_app(self.settings)
        self.client = self.app.test_client()
        self.store = IncidentStore(Runtime.from_settings(self.settings))
        self.workers = workers
        self.smtp, self.chat = smtp, chat
        self.worker = workers.start(config, concurrency=2)
        self.ticker = Ticker(config, interval=0.25).start()

    def post(self, body: bytes) -> None:
        r = self.client.post("/v1/events", data=body, headers=signed_headers(body, key="k1"))
        assert r.status_code == 202, r.get_json()

    def crash_host(self, vms: range, host="node07", host_id=7) -> None:
        self.post(hook_body("HOST", host_id, 3, host=host, host_id=host_id))
        for vm in vms:
            self.post(hook_body("VM", vm, 3, 16, host=host, host_id=host_id))

    def recover_host(self, vms: range, host="node07", host_id=7) -> None:
        self.post(hook_body("HOST", host_id, 2, host=host, host_id=host_id))
        for vm in vms:
            self.post(hook_body("VM", vm, 3, 3, host=host, host_id=host_id))

    def host_incident(self, host_key="host:7"):
        return self.store.open_for(host_key)

    def wait_objects(self, n: int, host_key="host:7"):
        return wait_until(lambda: (i := self.host_incident(host_key)) and len(i.objects) >= n and i,
                          timeout=60, what=f"{n} objects in the incident of {host_key}")

    def settled(self) -> bool:
        """Nothing queued, nothing in the outbox: every task so far has run."""
        r = self.store.r
        return (r.llen(self.settings.task_queue) == 0
                and r.zcard(self.settings.key_prefix + "outbox") == 0)

    def close(self) -> None:
        self.ticker.stop()
        self.worker.stop()


@pytest.fixture
def stack_config(key_prefix, redis_url, smtp_sink, chat_sink):
    return {
        "redis_url": redis_url, "key_prefix": key_prefix,
        "ingest": {"frontends": {"fe1": {"keys": ["k1"]}}},
        "receivers": [{"name": "ops-mail", "urls": [smtp_sink.url(to="oncall@example.com")]},
                      {"name": "ops-chat", "urls": [chat_sink.url()]}],
        "route": {"group_by": ["host"], "group_wait": f"{GROUP_WAIT}s", "group_interval": "2s",
                  "repeat_interval": "8s"},
        "remediation": {"mode": "off"},
        "raft": {"enabled": False}, "reconciler": {"enabled": False},
    }


@pytest.fixture
def stack(stack_config, workers, smtp_sink, chat_sink):
    s = Stack(stack_config, workers, smtp_sink, chat_sink)
    yield s
    s.close()


def test_host_crash_with_200_vms_is_one_message_per_receiver_then_reminder_then_one_resolve(stack):
    vms = range(1000, 1200)
    started = time.monotonic()
    stack.crash_host(vms)
    mail = stack.smtp.wait_for(1, timeout=GROUP_WAIT + 30)[0]
    chat = stack.chat.wait_for(1, timeout=5)[0]
    first_after = time.monotonic() - started
    inc = stack.wait_objects(201)
    assert "node07" in mail.subject and "200 VMs affected" in mail.subject, mail.subject
    assert "node07" in chat.title and "200 VMs affected" in chat.title, chat.body
    assert inc.id in mail.text
    # Exactly one: every event processed, a few more beat ticks, still one message each.
    wait_until(stack.settled, what="queue and outbox drained")
    time.sleep(1.0)
    assert len(stack.smtp.messages) == 1 and len(stack.chat.messages) == 1
    print(f"\nfirst message {first_after:.2f}s after the first POST (group_wait {GROUP_WAIT}s)")

    # Still firing after repeat_interval: one reminder each.
    reminder = stack.smtp.wait_for(2, timeout=30)[1]
    stack.chat.wait_for(2, timeout=5)
    assert "node07" in reminder.subject

    stack.recover_host(vms)
    wait_until(lambda: stack.store.get(inc.id).state == "resolved", timeout=60,
               what="incident resolved")
    resolved = stack.smtp.wait_for(3, timeout=30)[2]
    stack.chat.wait_for(3, timeout=5)
    assert "recovered" in resolved.subject.lower() or "resolved" in resolved.subject.lower()
    wait_until(stack.settled, what="queue and outbox drained")
    time.sleep(1.0)
    assert len(stack.smtp.messages) == 3 and len(stack.chat.messages) == 3
    texts = [e.text for e in stack.store.timeline(inc.id, limit=10_000)]
    # Two workers: a few VM events may beat the host's; the host incident absorbs those.
    joined = sum(t.startswith("joined:") for t in texts)
    absorbed = sum(int(m.group(1)) for t in texts if (m := re.match(r"absorbed (\d+) open", t)))
    assert joined + absorbed == 200
    assert any("resolved (message 3 of group" in t for t in texts)


def test_silence_made_before_the_crash_sends_nothing_and_records_everything(stack):
    silence = stack.store.add_silence(["host=node08"], ends_at=time.time() + 600,
                                      author="alice", comment="rack 8 rewiring")
    stack.crash_host(range(2000, 2020), host="node08", host_id=8)
    inc = stack.wait_objects(21, "host:8")
    wait_until(lambda: any(e.kind == "muted" for e in stack.store.timeline(inc.id)),
               timeout=GROUP_WAIT + 30, what="the mute recorded in the timeline")
    wait_until(stack.settled, what="queue and outbox drained")
    time.sleep(1.0)
    assert stack.smtp.messages == [] and stack.chat.messages == []
    muted = [e for e in stack.store.timeline(inc.id) if e.kind == "muted"]
    assert len(muted) == 1 and silence.id in muted[0].text and "rack 8 rewiring" in muted[0].text
    assert len(stack.store.get(inc.id).objects) == 21  # recorded in full


def test_worker_and_beat_restarted_during_group_wait_still_send_once(stack, tmp_path):
    stack.ticker.stop()  # the real beat this time
    beat = start_beat(stack.config, tmp_path)
    try:
        stack.crash_host(range(3000, 3010), host="node09", host_id=9)
        stack.wait_objects(11, "host:9")
        beat.kill()
        stack.worker.kill()  # SIGKILL main and pool children: its delayed flush is stranded
        assert stack.smtp.messages == []  # still inside group_wait
        stack.worker = stack.workers.start(stack.config, concurrency=2, name="w2")
        beat = start_beat(stack.config, tmp_path, name="beat2")
        _assert_sent_once(stack)
    finally:
        beat.stop()


def _assert_sent_once(stack):
    mail = stack.smtp.wait_for(1, timeout=GROUP_WAIT + 30)[0]
    stack.chat.wait_for(1, timeout=5)
    assert "node09" in mail.subject and "10 VMs affected" in mail.subject
    wait_until(stack.settled, what="queue and outbox drained")
    time.sleep(1.5)
    assert len(stack.smtp.messages) == 1 and len(stack.chat.messages) == 1
