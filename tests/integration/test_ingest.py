"""POST /v1/events against a real Redis: accepted, duplicate, conflict, every rejection leaving no
trace, Redis down -> 503, key rotation, health and metrics."""

from __future__ import annotations

import base64
import json
import time

import pytest
import redis

from gateway.adapters.store.events import EventStore
from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.domain import signing
from gateway.domain.events import Event
from gateway.domain.hook_events import content_digest, event_from_hook
from tests.support.auth import auth_section, bearer
from tests.support.samples import b64, host_xml, vm_xml

KEYS = {"fe1": ["old-key", "new-key"], "fe2": ["fe2-key"]}
MAX_BODY = 32 * 1024


def make_settings(redis_url: str, key_prefix: str, **ingest):
    data = {"redis_url": redis_url, "key_prefix": key_prefix,
            "ingest": {"frontends": {n: {"keys": k} for n, k in KEYS.items()},
                       "max_body_bytes": MAX_BODY, **ingest}, "auth": auth_section()}
    return settings_from_dict(data, env={})


def host_event(id=7, state=3, event_id="1" * 32, **over) -> dict:
    body = {"resource": "HOST", "id": id, "name": f"node{id:02d}", "state": state,
            "lcm_state": None, "state_name": "ERROR", "lcm_state_name": None,
            "xml": b64(host_xml(id, f"node{id:02d}", state)), "hook": "oneha-host-error",
            "frontend": "fe1", "sent_at": time.time(), "event_id": event_id}
    body.update(over)
    return body


def vm_event(id=42, state=3, lcm_state=16, event_id="2" * 32, **over) -> dict:
    body = {"resource": "VM", "id": id, "name": f"web-{id}", "state": state,
            "lcm_state": lcm_state, "state_name": "ACTIVE", "lcm_state_name": "UNKNOWN",
            "xml": b64(vm_xml(id, state=state, lcm_state=lcm_state)), "hook": "oneha-vm-unknown",
            "frontend": "fe1", "sent_at": time.time(), "event_id": event_id}
    body.update(over)
    return body


def signed_headers(body: bytes, key: str = "new-key", frontend: str = "fe1",
                   ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {"Content-Type": "application/json", "X-OneHA-Frontend": frontend,
            "X-OneHA-Timestamp": str(ts),
            "X-OneHA-Signature": signing.signature(key.encode(), ts, body)}


def post(client, payload: dict | bytes, **sign):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/v1/events", data=body, headers=signed_headers(body, **sign))


class Traces:
    """What a request left in Redis: keys under the test's prefix and the task queue."""

    def __init__(self, settings):
        self.settings = settings
        self.r = redis.Redis.from_url(settings.redis_url)
        self.metrics_key = settings.key_prefix + "metrics:ingest"

    def keys(self, include_metrics: bool = False) -> set[bytes]:
        keys = set(self.r.scan_iter(match=self.settings.key_prefix + "*", count=1000))
        return keys if include_metrics else keys - {self.metrics_key.encode()}

    def log(self) -> list[Event]:
        return [Event.from_json(f[b"event"])
                for _id, f in self.r.xrange(self.settings.key_prefix + "events:log")]

    def queued(self) -> list[dict]:
        """The task queue's messages (Celery's JSON)."""
        return [json.loads(m) for m in self.r.lrange(self.settings.task_queue, 0, -1)]

    def pending(self) -> list[Event]:
        """The events recorded and waiting for the applier, oldest first."""
        return [Event.from_json(f[b"e"])
                for _id, f in self.r.xrange(self.settings.key_prefix + "events:pending")]

    def wakeups(self) -> list[str]:
        """The task names queued (one `oneha.apply_pending` per wake-up, not one per event)."""
        return [m["headers"]["task"] for m in self.queued()]

    def counters(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.r.hgetall(self.metrics_key).items()}

    def cleanup(self) -> None:
        self.r.delete(self.settings.task_queue)


@pytest.fixture
def settings(redis_url, key_prefix):
    return make_settings(redis_url, key_prefix)


@pytest.fixture
def traces(settings):
    t = Traces(settings)
    yield t
    t.cleanup()


@pytest.fixture
def client(settings):
    return create_app(settings).test_client()


def test_valid_host_event_is_recorded_queued_and_acknowledged(client, traces, settings):
    payload = host_event()
    r = post(client, payload)
    assert r.status_code == 202, r.json
    assert r.json == {"event_id": payload["event_id"], "duplicate": False}
    [event] = traces.log()
    assert (event.object_key, event.status, event.condition, event.frontend) == (
        "host:7", "firing", "HOST/ERROR", "fe1")
    assert traces.pending() == [event]
    assert traces.wakeups() == ["oneha.apply_pending"]
    dedup = settings.key_prefix + "events:dedup:" + payload["event_id"]
    assert 0 < traces.r.ttl(dedup) <= settings.ingest.dedup_ttl
    assert traces.counters() == {"accepted:HOST": 1}


def test_valid_vm_event_is_recorded_with_its_host(client, traces):
    r = post(client, vm_event())
    assert r.status_code == 202 and r.json["duplicate"] is False
    [event] = traces.log()
    assert (event.object_key, event.condition, event.labels["host"]) == (
        "vm:42", "VM/ACTIVE/UNKNOWN", "node07")
    assert event.xml is None  # read once, at ingest: what the tasks need of it travels as fields
    assert event.last_poll == 1764092300  # vm_xml()'s LAST_POLL
    assert traces.pending() == [event]  # what is logged is what the applier gets
    [message] = traces.queued()
    [[why], _kwargs, _embed] = json.loads(base64.b64decode(message["body"]))
    assert (message["headers"]["task"], why) == ("oneha.apply_pending", "ingest")


def test_same_event_twice_is_a_duplicate_and_processed_once(client, traces):
    payload = host_event()
    assert post(client, payload).json["duplicate"] is False
    # A re-sent event (a new sent_at, a new signature timestamp) is still the same event.
    again = post(client, {**payload, "sent_at": payload["sent_at"] + 5}, ts=int(time.time()) + 1)
    assert again.status_code == 202 and again.json == {"event_id": payload["event_id"],
                                                       "duplicate": True}
    assert len(traces.log()) == 1 and len(traces.pending()) == 1 and len(traces.queued()) == 1
    assert traces.counters() == {"accepted:HOST": 1, "duplicate": 1}


def test_same_event_id_with_another_body_is_a_conflict(client, traces):
    assert post(client, host_event()).status_code == 202
    r = post(client, host_event(state=2))  # same event_id, now MONITORED
    assert r.status_code == 409
    assert r.json == {"error": "event_id_conflict",
                      "detail": f"event_id {'1' * 32} replayed with a different body"}
    assert len(traces.log()) == 1 and len(traces.pending()) == 1 and len(traces.queued()) == 1
    assert traces.counters()["rejected:event_id_conflict"] == 1


@pytest.mark.parametrize("key", ["old-key", "new-key"])
def test_both_keys_of_a_rotation_are_accepted(client, traces, key):
    assert post(client, host_event(), key=key).status_code == 202


def test_second_front_end_signs_with_its_own_key(client, traces):
    r = post(client, host_event(frontend="fe2"), key="fe2-key", frontend="fe2")
    assert r.status_code == 202
    assert traces.log()[0].frontend == "fe2"


DTD = "<!DOCTYPE HOST [<!ELEMENT HOST ANY>]><HOST><ID>7</ID></HOST>"
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
          '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
          "<HOST><ID>7</ID><NAME>&lol3;</NAME></HOST>")
XXE = ('<?xml version="1.0"?><!DOCTYPE HOST [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       "<HOST><ID>7</ID><NAME>&xxe;</NAME></HOST>")


def _unsigned(client):
    body = json.dumps(host_event()).encode()
    return client.post("/v1/events", data=body, headers={"Content-Type": "application/json"})


def _raw(body: bytes, **sign):
    return lambda client: post(client, body, **sign)


def _payload(**over):
    return lambda client: post(client, host_event(**over))


def _oversized(client):
    payload = host_event(padding="x" * (MAX_BODY + 1))
    return post(client, payload)


BAD_INPUTS = {
    "unsigned": (_unsigned, 401, "unsigned", "X-OneHA-Signature"),
    "wrong key": (lambda c: post(c, host_event(), key="guessed"), 401, "bad_signature", "fe1"),
    "unknown front-end": (lambda c: post(c, host_event(), frontend="fe9"), 401,
                          "unknown_frontend", "fe9"),
    "stale timestamp": (lambda c: post(c, host_event(), ts=int(time.time()) - 301), 401,
                        "stale_timestamp", "in the past"),
    "future timestamp": (lambda c: post(c, host_event(), ts=int(time.time()) + 301), 401,
                         "stale_timestamp", "in the future"),
    "body over the limit": (_oversized, 413, "request_entity_too_large", "exceeds"),
    "not JSON": (_raw(b"resource=HOST&id=7"), 400, "bad_json", "not valid UTF-8 JSON"),
    "JSON but not an object": (_raw(b"[1, 2]"), 400, "bad_json", "JSON object"),
    "bad base64": (_payload(xml="PEhPU1Q+*not-base64*"), 400, "bad_base64", "base64"),
    "malformed XML": (_payload(xml=b64("<HOST><ID>7</ID><NAME>x</HOST>")), 400, "bad_xml",
                      "not well-formed"),
    "DTD": (_payload(xml=b64(DTD)), 400, "forbidden_xml", "DTD"),
    "billion laughs": (_payload(xml=b64(LAUGHS)), 400, "forbidden_xml", "entities"),
    "XXE": (_payload(xml=b64(XXE)), 400, "forbidden_xml", "external"),
    "unknown resource": (_payload(resource="IMAGE"), 400, "unknown_resource", "HOST, VM"),
    "unknown state": (_payload(state=42), 400, "unknown_state", "not a host state"),
    "removed LCM placeholder": (lambda c: post(c, vm_event(lcm_state=14)), 400, "unknown_state",
                                "14"),
    "id mismatch": (_payload(id=8, xml=b64(host_xml(7))), 400, "id_mismatch", "HOST 7"),
    "XML of another resource": (_payload(xml=b64(vm_xml())), 400, "resource_mismatch", "<VM>"),
    "bad event_id": (_payload(event_id="../../etc"), 400, "bad_field", "event_id"),
    "wrong type": (lambda c: post(c, {**host_event(), "id": "7"}), 400, "bad_field",
                   "'id' must be int"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_refused_clearly_and_leaves_no_trace(client, traces, case):
    send, status, error, words = BAD_INPUTS[case]
    r = send(client)
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.is_json and set(r.json) == {"error", "detail"}
    assert r.json["error"] == error and words in r.json["detail"], r.json
    # Nothing of the event: no dedup key, no log entry, no queued task — only the counter.
    assert traces.keys() == set() and traces.queued() == []
    reason = "too_large" if status == 413 else error
    assert traces.counters() == {f"rejected:{reason}": 1}


def test_json_errors_for_unknown_paths_and_methods(client):
    r = client.get("/v1/nowhere")
    assert r.status_code == 404 and r.json["error"] == "not_found" and r.json["detail"]
    r = client.put("/v1/events")
    assert r.status_code == 405 and r.json["error"] == "method_not_allowed"
    assert {"GET", "POST"} <= set(r.headers["Allow"].split(", "))


def test_health_and_metrics(client, traces):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz").json
    assert ready["status"] == "ready" and ready["workers"] == []  # no worker in this test
    post(client, host_event())
    post(client, host_event())
    post(client, vm_event())
    post(client, host_event(event_id="3" * 32), key="guessed")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'oneha_events_accepted_total{resource="HOST"} 1.0' in text
    assert 'oneha_events_accepted_total{resource="VM"} 1.0' in text
    assert "oneha_events_duplicate_total 1.0" in text
    assert 'oneha_events_rejected_total{reason="bad_signature"} 1.0' in text
    assert "oneha_ingest_unavailable_total 0.0" in text
    assert "oneha_workers_alive 0.0" in text


def test_metrics_show_the_backlog_open_incidents_dead_letters_and_a_pause(client, settings, traces):
    from gateway.flows.incident import IncidentFlow
    from gateway.adapters.store.remediation import RemediationStore

    def gauges():
        text = client.get("/metrics").get_data(as_text=True)
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line.startswith(("oneha_queue", "oneha_inc",
                                                                  "oneha_outbox", "oneha_notif",
                                                                  "oneha_remed"))}

    assert gauges() == {'oneha_queue_messages{queue="events"}': 0.0,
                        'oneha_queue_messages{queue="notify"}': 0.0,
                        'oneha_queue_messages{queue="tasks"}': 0.0, "oneha_incidents_open": 0.0,
                        "oneha_outbox_pending": 0.0, "oneha_notifications_dead_letters": 0.0,
                        "oneha_remediation_paused": 0.0}
    post(client, host_event())
    post(client, vm_event())  # no worker here: both wait to be applied, behind one wake-up
    rt = client.application.extensions["oneha"]
    IncidentFlow(rt, send=lambda *a, **k: None).apply_event(Traces(settings).log()[0])
    RemediationStore.from_runtime(rt).pause("ann", "maintenance window")
    got = gauges()
    assert got['oneha_queue_messages{queue="events"}'] == 2.0
    assert got['oneha_queue_messages{queue="tasks"}'] == 1.0
    assert got["oneha_incidents_open"] == 1.0 and got["oneha_remediation_paused"] == 1.0
    RemediationStore.from_runtime(rt).resume()
    assert gauges()["oneha_remediation_paused"] == 0.0


def test_recent_events_newest_first(client, traces, settings):
    post(client, host_event())
    post(client, vm_event())
    app_runtime = client.application.extensions["oneha"]
    recent = EventStore.of(app_runtime).recent(5)
    assert [e.object_key for e in recent] == ["vm:42", "host:7"]
    assert [e.object_key for e in EventStore.of(app_runtime).recent(1)] == ["vm:42"]


def test_redis_down_answers_503_and_records_after_it_returns(own_redis, key_prefix):
    settings = make_settings(own_redis.url, key_prefix)
    client = create_app(settings).test_client()
    assert post(client, host_event()).status_code == 202
    own_redis.stop()
    r = post(client, vm_event())
    assert r.status_code == 503 and r.json["error"] == "unavailable"
    assert "Redis unreachable" in r.json["detail"]
    assert post(client, host_event(), key="guessed").status_code == 401  # needs no Redis
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["error"] == "redis_unreachable"
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 503

    own_redis.start()  # same port: the sender's retry now goes through, the 503 is counted
    assert post(client, vm_event()).status_code == 202
    t = Traces(settings)
    assert [e.object_key for e in t.log()] == ["vm:42"]  # no AOF here: the first one was lost
    # Counted while Redis was away, added on its return (the restarted Redis lost the rest).
    assert t.counters() == {"accepted:VM": 1, "unavailable": 1, "rejected:bad_signature": 1}


def test_a_redis_restart_between_two_events_costs_the_sender_nothing(own_redis, key_prefix):
    # The store keeps its connections, and a restart kills them and forgets the record script:
    # the next event must still be answered 202, on a new connection, with the script loaded again.
    settings = make_settings(own_redis.url, key_prefix)
    client = create_app(settings).test_client()
    assert post(client, host_event()).status_code == 202
    own_redis.stop()
    own_redis.start()
    r = post(client, vm_event())
    assert r.status_code == 202, r.json
    assert [e.object_key for e in Traces(settings).log()] == ["vm:42"]


def test_events_recorded_from_many_threads_at_once_each_get_their_own_answer(redis_url, key_prefix):
    # Kept connections are shared by the threads of a worker: an answer must never reach another
    # request. Each event is sent twice: one of each pair is accepted, the other is a duplicate.
    from concurrent.futures import ThreadPoolExecutor

    settings = make_settings(redis_url, key_prefix)
    store = EventStore.of(create_app(settings).extensions["oneha"])
    events = [event_from_hook(vm_event(id=i, event_id=f"{i:032x}"), "fe1", time.time())
              for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda e: (e.event_id, store.record(e, content_digest(e))),
                                events + events))
    by_id: dict[str, list[bool]] = {}
    for event_id, result in results:
        assert not result.conflict
        by_id.setdefault(event_id, []).append(result.duplicate)
    assert all(sorted(d) == [False, True] for d in by_id.values()) and len(by_id) == 200
    traces = Traces(settings)
    assert len(traces.log()) == 200 and len(traces.pending()) == 200
    # No worker consumed the wake-up: its marker holds, so 200 events queued one task, not 200.
    assert traces.wakeups() == ["oneha.apply_pending"]


def test_the_record_command_is_packed_as_redis_py_packs_it():
    from gateway.adapters.store.events import _resp_command
    command = ("EVALSHA", "a" * 40, 4, "k:1", "k:2", "", "wé ✓", "x" * 7000, 0, -3, "y" * 20000)
    assert _resp_command(command) == b"".join(redis.Connection().pack_command(*command))


def test_events_are_recorded_in_a_redis_that_wants_a_password_and_a_database(tmp_path, key_prefix):
    # The store's own connections are made from the client's settings: AUTH and SELECT included.
    from tests.support.procs import RedisServer
    server = RedisServer(tmp_path / "redis", password="s3cret pass").start()
    try:
        url = server.url.replace("s3cret pass", "s3cret%20pass").replace("/0", "/3")
        settings = make_settings(url, key_prefix)
        client = create_app(settings).test_client()
        assert post(client, host_event()).status_code == 202
        assert post(client, host_event()).json["duplicate"] is True
        r = redis.Redis(port=server.port, password="s3cret pass", db=3)
        assert r.xlen(key_prefix + "events:log") == 1 and r.llen(settings.task_queue) == 1
        assert redis.Redis(port=server.port, password="s3cret pass", db=0).dbsize() == 0
        unauthenticated = make_settings(url.replace(":s3cret%20pass@", ""), key_prefix)
        r503 = post(create_app(unauthenticated).test_client(), vm_event())
        assert r503.status_code == 503 and "Redis" in r503.json["detail"]
    finally:
        server.stop()


def test_the_event_log_is_read_over_http_and_on_the_command_line(client, settings, tmp_path):
    import yaml
    from click.testing import CliRunner

    from gateway.cli import main
    assert post(client, host_event()).status_code == 202
    assert post(client, vm_event()).status_code == 202
    client.environ_base["HTTP_AUTHORIZATION"] = bearer("viewer")["Authorization"]
    listed = client.get("/v1/events?limit=5").get_json()["events"]
    assert [(e["object_id"], e["condition"], e["source"]) for e in listed] == [
        ("42", "VM/ACTIVE/UNKNOWN", "hook"), ("7", "HOST/ERROR", "hook")]
    assert listed[0]["last_poll"] == 1764092300 and "xml" not in listed[0]
    assert [e["object_id"] for e in client.get("/v1/events?limit=1").get_json()["events"]] == ["42"]
    bad = client.get("/v1/events?limit=0")
    assert bad.status_code == 400 and "limit" in bad.get_json()["detail"]

    config = tmp_path / "oneha.yaml"
    config.write_text(yaml.safe_dump({"redis_url": settings.redis_url,
                                      "key_prefix": settings.key_prefix}))
    text = CliRunner().invoke(main, ["-c", str(config), "events"])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert len(lines) == 2 and "vm:42 web-42" in lines[0] and "HOST/ERROR" in lines[1]
    assert "2" * 32 in lines[0] and "fe1" in lines[0]
    as_json = CliRunner().invoke(main, ["-c", str(config), "events", "--json", "-n", "1"])
    assert [Event.from_json(line).object_key for line in as_json.output.splitlines()] == ["vm:42"]


def test_the_event_log_filtered_by_object_pages_through_the_log(client, settings, traces, tmp_path):
    import yaml
    from click.testing import CliRunner

    from gateway.cli import main
    store = EventStore.of(client.application.extensions["oneha"])
    # host 7's one event is under 2,500 events of other VMs: more than one page of the log
    assert post(client, host_event()).status_code == 202
    events = [event_from_hook(vm_event(id=i, event_id=f"{i:032x}"), "fe1", time.time())
              for i in range(100, 2600)]
    store.record_many([(e, content_digest(e)) for e in events])
    assert [e.object_key for e in store.recent(5, object_key="host:7")] == ["host:7"]
    assert [e.object_key for e in store.recent(5, object_key="host:7", scan=1000)] == []
    assert len(store.recent(3, object_key="vm:2599")) == 1 and store.recent(3, "vm:1") == []
    client.environ_base["HTTP_AUTHORIZATION"] = bearer("viewer")["Authorization"]
    listed = client.get("/v1/events?object=host:7").get_json()["events"]
    assert [(e["object_id"], e["condition"]) for e in listed] == [("7", "HOST/ERROR")]
    bad = client.get("/v1/events?object=rack 7")
    assert bad.status_code == 400 and "host:7" in bad.get_json()["detail"]
    config = tmp_path / "oneha.yaml"
    config.write_text(yaml.safe_dump({"redis_url": settings.redis_url,
                                      "key_prefix": settings.key_prefix}))
    out = CliRunner().invoke(main, ["-c", str(config), "events", "--object", "host:7"]).output
    assert len(out.splitlines()) == 1 and "host:7 node07" in out
    none = CliRunner().invoke(main, ["-c", str(config), "events", "--object", "vm:1"]).output
    assert none.strip() == "no events recorded about vm:1"


def test_the_event_log_command_says_when_redis_is_away(tmp_path):
    from click.testing import CliRunner

    from gateway.cli import main
    config = tmp_path / "oneha.yaml"
    config.write_text("redis_url: redis://127.0.0.1:9/0\n")
    result = CliRunner().invoke(main, ["-c", str(config), "events"])
    assert result.exit_code == 1 and "redis://127.0.0.1:9/0 is unreachable" in result.output
