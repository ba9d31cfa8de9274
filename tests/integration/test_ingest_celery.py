"""The task message ingest pushes in its Lua script is a real Celery message: byte for byte what
Celery itself pushes, and a real worker process runs the wake-up and finds the exact Events in the
pending stream."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from gateway.adapters.store.events import PROCESS_EVENT_TASK, celery_task_message
from gateway.app import create_app
from gateway.domain.events import Event
from tasks.app import create_celery
from tests.integration.test_ingest import host_event, make_settings, post, vm_event
from tests.support.samples import vm_xml

ROOT = Path(__file__).resolve().parents[2]

# A stand-in for tasks/process.py: registered under the real wake-up's name, it drains the pending
# stream as the applier does and stores what it found.
PROBE_TASKS = textwrap.dedent("""
    import os
    import redis
    from gateway.config import settings_from_dict
    from tasks.app import create_celery

    settings = settings_from_dict({"redis_url": os.environ["PROBE_REDIS"],
                                   "key_prefix": os.environ["PROBE_PREFIX"]}, env={})
    app = create_celery(settings)
    app.conf.include = []  # only this module's task, even once tasks/process.py exists

    @app.task(name="oneha.apply_pending")
    def apply_pending(why):
        r = redis.Redis.from_url(settings.redis_url)
        stream = settings.key_prefix + "events:pending"
        for entry_id, fields in r.xrange(stream):
            r.rpush(settings.key_prefix + "probe:received", fields[b"e"])
            r.xdel(stream, entry_id)
        r.delete(settings.key_prefix + "events:wake")
""")


def test_message_is_byte_for_byte_what_celery_sends(redis_url, key_prefix):
    settings = make_settings(redis_url, key_prefix)
    app = create_celery(settings)
    r = redis.Redis.from_url(redis_url)
    arg = Event(event_id="a" * 32, source="test", resource="VM", object_id="42", name="web-42",
                status="firing", condition="VM/ACTIVE/UNKNOWN", occurred_at=1.5,
                labels={"team": "wéb"}, xml="<VM><ID>42</ID></VM>").to_json()
    try:
        sent = app.send_task(PROCESS_EVENT_TASK, args=[arg], ignore_result=True)
        [theirs] = r.lrange(settings.task_queue, 0, -1)
        theirs = theirs.decode()
        t = json.loads(theirs)
        # argsrepr is free text for monitoring tools (ours is a short summary of the event).
        ours = celery_task_message(PROCESS_EVENT_TASK, arg, settings.task_queue, task_id=sent.id,
                                   argsrepr=t["headers"]["argsrepr"], arg_is_json=True)
        # Only what is unique per message differs: the delivery tag, and the reply queue of the
        # result backend (which ingest does not use: results are ignored).
        o = json.loads(ours)
        for volatile in ("delivery_tag", "reply_to"):
            ours = ours.replace(f'"{volatile}": {json.dumps(o["properties"][volatile])}',
                                f'"{volatile}": {json.dumps(t["properties"][volatile])}')
        assert ours == theirs
    finally:
        r.delete(settings.task_queue, f"_kombu.binding.{settings.task_queue}",
                 f"_kombu.binding_permanent.{settings.task_queue}")


def test_fast_quoting_of_json_arguments_writes_what_json_dumps_writes():
    event = Event(event_id="b" * 32, source="test", resource="VM", object_id="7", name='a "b" \\ c',
                  status="firing", condition="VM/ACTIVE/UNKNOWN", occurred_at=2.0,
                  labels={"team": "wéb\n", "x": "\t\u2028"}, xml=vm_xml())
    arg = event.to_json()
    fast = json.loads(celery_task_message("t", arg, "q", task_id="i", arg_is_json=True))
    slow = json.loads(celery_task_message("t", arg, "q", task_id="i"))
    assert fast["body"] == slow["body"]
    [[got], _, _] = json.loads(base64.b64decode(fast["body"]))
    assert Event.from_json(got) == event


def test_the_logged_and_queued_form_of_an_event_is_everything_but_its_xml():
    event = Event(event_id="c" * 32, source="hook", resource="VM", object_id="7", name="n",
                  status="firing", condition="VM/ACTIVE/UNKNOWN", occurred_at=3.0, state=3,
                  lcm_state=16, labels={"zz": "last"}, last_poll=1764092300,
                  xml="<VM><ID>7</ID></VM>")
    assert Event.from_json(event.to_json(with_xml=False)) == replace(event, xml=None)
    assert Event.from_json(event.to_json()) == event


def test_an_event_from_a_newer_gateway_is_read_without_the_fields_this_version_lacks():
    event = Event(event_id="d" * 32, source="hook", resource="HOST", object_id="7", name="n",
                  status="firing", condition="HOST/ERROR", occurred_at=3.0, state=3)
    newer = json.loads(event.to_json())
    newer["field_of_the_future"] = {"x": 1}
    assert Event.from_json(json.dumps(newer)) == event


@pytest.fixture
def probe_worker(own_redis, key_prefix, tmp_path):
    (tmp_path / "probe_tasks.py").write_text(PROBE_TASKS)
    env = {**os.environ, "PROBE_REDIS": own_redis.url, "PROBE_PREFIX": key_prefix,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop("ONEHA_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "probe_tasks", "worker", "--pool=solo",
         "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=warning",
         "-Q", make_settings(own_redis.url, key_prefix).task_queue],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _received(r: redis.Redis, key: str, count: int, timeout: float = 30.0) -> list[Event]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = r.lrange(key, 0, -1)
        if len(items) >= count:
            return [Event.from_json(i) for i in items]
        time.sleep(0.05)
    raise AssertionError(f"the worker ran {len(r.lrange(key, 0, -1))} of {count} tasks in {timeout}s")


def test_a_real_worker_runs_the_queued_message_and_gets_the_exact_event(
        own_redis, key_prefix, probe_worker):
    settings = make_settings(own_redis.url, key_prefix)
    client = create_app(settings).test_client()
    r = redis.Redis.from_url(own_redis.url)
    for payload in (host_event(), vm_event(), host_event()):  # the third is a duplicate
        assert post(client, payload).status_code == 202
    logged = [Event.from_json(f[b"event"]) for _id, f in r.xrange(key_prefix + "events:log")]
    got = _received(r, key_prefix + "probe:received", 2)
    assert got == logged  # the log entry and the pending entry are the same event
    assert [e.object_key for e in got] == ["host:7", "vm:42"]
    assert got[1].labels["host"] == "node07" and got[1].last_poll == 1764092300
    assert got[0].xml is None and got[1].xml is None  # read once, at the gateway
    time.sleep(0.3)  # a duplicate must not be queued: give a wrongly queued one time to run
    assert r.llen(key_prefix + "probe:received") == 2 and r.llen(settings.task_queue) == 0
    assert r.xlen(key_prefix + "events:pending") == 0
    assert probe_worker.poll() is None, probe_worker.stdout.read().decode()


def test_queued_messages_carry_fresh_uuid4_ids_as_celery_does():
    import uuid

    ids = set()
    for _ in range(2000):
        m = json.loads(celery_task_message("t", '{"a":1}', "q", arg_is_json=True))
        for value in (m["headers"]["id"], m["properties"]["delivery_tag"]):
            parsed = uuid.UUID(value)
            assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122
            ids.add(value)
        assert m["headers"]["root_id"] == m["properties"]["correlation_id"] == m["headers"]["id"]
    assert len(ids) == 4000


def test_the_web_app_has_one_celery_client_on_its_own_runtime(redis_url, key_prefix):
    """Views that send tasks (the approval links) use the client create_app wired; ingest needs
    none, its message goes out in the Lua script."""
    app = create_app(make_settings(redis_url, key_prefix))
    celery = app.extensions["celery"]
    assert celery.oneha_runtime is app.extensions["oneha"]
    assert celery.conf.task_default_queue == app.extensions["oneha"].settings.task_queue
