"""The applier on a real Redis: a batch leaves Redis exactly as the same events applied one at a
time would; everything recorded is applied and forgotten, in batches, by one applier; an event
that cannot be applied is kept aside without holding up the rest; a failure of Redis forgets
nothing; a wake-up is queued again after a drain; a due group waits for events heard before it was
due, and not forever."""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid

import pytest
import redis

from gateway.adapters.store.events import EventStore
from gateway.adapters.store.pending import PendingEvents
from gateway.config import settings_from_dict
from gateway.domain import correlation
from gateway.domain.events import Event
from gateway.errors import Transient
from gateway.flows import incident as incident_flow
from gateway.flows.applier import Applier
from gateway.flows.incident import IncidentFlow
from gateway.runtime import Runtime

T0 = 1_764_000_000.0


class Clock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self):
        return self.t


class Sent(list):
    def __call__(self, name, args, countdown=None):
        self.append((name, args))


def make_flow(redis_url: str, prefix: str, clock, **route) -> IncidentFlow:
    settings = settings_from_dict({
        "redis_url": redis_url, "key_prefix": prefix,
        "receivers": [{"name": "mail", "urls": ["mailto://127.0.0.1:1?to=a@b.c"]}],
        "route": {"receiver": "mail", "group_by": ["host"], "group_wait": "30s",
                  "group_interval": "5m", "repeat_interval": "4h", **route}}, env={})
    rt = Runtime(settings=settings, redis=redis.Redis.from_url(redis_url), clock=clock)
    return IncidentFlow(rt, send=Sent())


@pytest.fixture
def prefixes(redis_url):
    made: list[str] = []

    def new() -> str:
        made.append(f"oneha-test-{uuid.uuid4().hex[:8]}:")
        return made[-1]
    yield new
    client = redis.Redis.from_url(redis_url)
    for p in made:
        keys = list(client.scan_iter(match=p + "*", count=1000))
        if keys:
            client.delete(*keys)


# -- events ------------------------------------------------------------------------------------
CONDITIONS = {  # (resource, status) -> (condition, state, lcm_state)
    ("HOST", "firing"): ("HOST/ERROR", 3, None), ("HOST", "resolved"): ("HOST/MONITORED", 2, None),
    ("VM", "firing"): ("VM/ACTIVE/UNKNOWN", 3, 16), ("VM", "resolved"): ("VM/ACTIVE/RUNNING", 3, 3),
}


def ev(resource: str, oid: int, status: str = "firing", host: int = 7, event_id: str = "") -> Event:
    condition, state, lcm = CONDITIONS[(resource, status)]
    return Event(event_id=event_id or uuid.uuid4().hex, source="test", resource=resource,
                 object_id=str(oid), name=f"node{host:02d}" if resource == "HOST" else f"web-{oid}",
                 status=status, condition=condition, occurred_at=T0, state=state, lcm_state=lcm,
                 labels={"host": f"node{host:02d}", "host_id": str(host)})


def storm_script(seed: int) -> list[Event]:
    """Hosts failing and recovering, their VMs going UNKNOWN and RUNNING in any order, lone VM
    failures, and replays of earlier events."""
    rnd = random.Random(seed)
    out: list[Event] = []
    for _ in range(160):
        host = rnd.choice((7, 8, 9))
        kind = rnd.random()
        if kind < 0.12:
            out.append(ev("HOST", host, rnd.choice(("firing", "firing", "resolved")), host))
        elif kind < 0.9:
            vm = host * 100 + rnd.randrange(8)
            out.append(ev("VM", vm, rnd.choice(("firing", "firing", "resolved")), host))
        elif out:
            out.append(rnd.choice(out))  # the same event again (a hook retried)
    return out


def dump(client: redis.Redis, prefix: str) -> dict:
    """Every key under `prefix` and its value, prefix removed (plan-request markers expire)."""
    out = {}
    for raw in client.scan_iter(match=prefix + "*", count=1000):
        key = raw.decode()[len(prefix):]
        if key.startswith("plan-req:"):
            continue
        kind = client.type(raw).decode()
        if kind == "string":
            value = json.loads(client.get(raw))
        elif kind == "hash":
            value = {k.decode(): v.decode() for k, v in client.hgetall(raw).items()}
        elif kind == "set":
            value = sorted(x.decode() for x in client.smembers(raw))
        elif kind == "zset":
            value = [(m.decode(), s) for m, s in client.zrange(raw, 0, -1, withscores=True)]
        elif kind == "list":
            value = [json.loads(x) for x in client.lrange(raw, 0, -1)]
        else:
            continue
        out[key] = value
    return out


@pytest.mark.parametrize("seed", range(6))
def test_a_batch_leaves_redis_as_one_event_at_a_time_does(redis_url, prefixes, seed):
    script = storm_script(seed)
    one, batched = prefixes(), prefixes()
    clock = Clock()
    sequential = make_flow(redis_url, one, clock)
    for e in script:
        sequential.apply_event(e)
    flow = make_flow(redis_url, batched, clock)
    rnd, i = random.Random(seed), 0
    while i < len(script):
        n = rnd.choice((1, 3, 17, 60, 250))
        flow.apply_events([(e, None) for e in script[i:i + n]])
        i += n
    client = redis.Redis.from_url(redis_url)
    expected, got = dump(client, one), dump(client, batched)
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert got[key] == expected[key], key
    # The same tasks were asked for (the batch asks for each once).
    assert {json.dumps(a) for a in flow.store._send} == {json.dumps(a) for a in
                                                           sequential.store._send}


# -- the applier ---------------------------------------------------------------------------------
def record(flow: IncidentFlow, events: list[Event]) -> None:
    store = EventStore.of(flow.rt)
    for e in events:
        assert store.record(e, hashlib.sha256(e.to_json().encode()).hexdigest()).accepted


def host_storm(host: int, vms: int) -> list[Event]:
    return [ev("HOST", host, host=host)] + [ev("VM", host * 1000 + i, host=host)
                                           for i in range(vms)]


def test_everything_recorded_is_applied_in_batches_and_forgotten(redis_url, prefixes):
    flow = make_flow(redis_url, prefixes(), Clock(time.time()))
    record(flow, host_storm(7, 260) + host_storm(8, 40))
    woken: list[float] = []
    drained = Applier(flow, woken.append, batch=100).drain()
    assert (drained.applied, drained.batches, drained.failed, drained.busy) == (302, 4, 0, False)
    pending = flow.pending
    assert pending.waiting() == 0
    assert not flow.rt.redis.exists(pending.wake_key, pending.lease_key)
    assert len(flow.store.open_for("host:7").objects) == 261
    assert len(flow.store.open_for("host:8").objects) == 41
    assert len(woken) >= 1 and all(w > time.time() for w in woken)  # group_wait is ahead


def test_a_new_groups_wait_runs_from_when_the_gateway_heard_the_event(redis_url, prefixes):
    clock = Clock(time.time())
    flow = make_flow(redis_url, prefixes(), clock)
    record(flow, host_storm(7, 3))
    heard = flow.pending.oldest_heard()
    clock.t = heard + 12.0  # the applier was 12 s behind
    woken: list[float] = []
    Applier(flow, woken.append).drain()
    assert woken == [pytest.approx(heard + 30.0, abs=0.01)]  # not now + 30 s


def test_an_event_that_cannot_be_applied_is_kept_aside_and_the_rest_applied(
        redis_url, prefixes, monkeypatch):
    flow = make_flow(redis_url, prefixes(), Clock(time.time()))
    events = host_storm(7, 40)
    poison = events[23]
    decide = correlation.decide

    def picky(event, *args, **kwargs):
        if event.event_id == poison.event_id:
            raise KeyError("a field this version cannot read")
        return decide(event, *args, **kwargs)
    monkeypatch.setattr(incident_flow.correlation, "decide", picky)
    record(flow, events)
    flow.rt.redis.xadd(flow.pending.stream, {"e": b"{not json"})
    drained = Applier(flow, lambda due: None).drain()
    assert (drained.applied, drained.failed) == (40, 2)
    assert flow.pending.waiting() == 0
    assert len(flow.store.open_for("host:7").objects) == 40  # all but the poisoned VM
    failed = {f["e"]: f["error"] for f in flow.pending.failed()}
    assert failed.pop("{not json").startswith("not an Event")
    [(body, error)] = failed.items()
    assert json.loads(body)["event_id"] == poison.event_id and error.startswith("KeyError")


def test_redis_failing_mid_batch_forgets_nothing(redis_url, prefixes, monkeypatch):
    flow = make_flow(redis_url, prefixes(), Clock(time.time()))
    record(flow, host_storm(7, 30))

    def away(*args, **kwargs):
        raise Transient("Redis unreachable")
    monkeypatch.setattr(flow, "apply_events", away)
    with pytest.raises(Transient):
        Applier(flow, lambda due: None).drain()
    assert flow.pending.waiting() == 31 and not flow.rt.redis.exists(flow.pending.lease_key)
    monkeypatch.undo()
    assert Applier(flow, lambda due: None).drain().applied == 31
    assert len(flow.store.open_for("host:7").objects) == 31


def test_one_applier_at_a_time(redis_url, prefixes):
    flow = make_flow(redis_url, prefixes(), Clock(time.time()))
    record(flow, host_storm(7, 5))
    other = PendingEvents(flow.rt)
    assert other.take_lease()
    drained = Applier(flow, lambda due: None).drain()
    assert drained.busy and drained.applied == 0 and flow.pending.waiting() == 6
    other.release_lease()
    assert Applier(flow, lambda due: None).drain().applied == 6


def test_an_event_recorded_after_a_drain_queues_a_new_wakeup(redis_url, prefixes):
    flow = make_flow(redis_url, prefixes(), Clock(time.time()))
    queue = flow.settings.task_queue
    r = flow.rt.redis
    try:
        record(flow, host_storm(7, 20))
        assert r.llen(queue) == 1  # 21 events, one wake-up
        r.delete(queue)  # as a worker takes it
        Applier(flow, lambda due: None).drain()
        record(flow, [ev("VM", 7999, host=7)])
        assert r.llen(queue) == 1
    finally:
        r.delete(queue)


def test_a_due_group_waits_for_events_heard_before_it_was_due_and_not_forever(
        redis_url, prefixes):
    clock = Clock(time.time())
    flow = make_flow(redis_url, prefixes(), clock, group_wait="1s")
    record(flow, [ev("HOST", 7)])
    Applier(flow, lambda due: None).drain()
    record(flow, [ev("VM", 7001)])  # heard within the group's wait, not applied yet
    clock.t += 1.5
    assert flow.flush_due() == []  # held
    woken: list[float] = []
    Applier(flow, woken.append).drain()
    assert 0.0 in woken  # the applier wakes the held flush after the batch it waited for
    [report] = flow.flush_due()
    assert report.sent and len(report.notifications) == 1
    incident = flow.store.open_for("host:7")
    assert len(incident.objects) == 2  # the first message names both

    record(flow, [ev("HOST", 8, host=8)])
    Applier(flow, lambda due: None).drain()
    record(flow, [ev("VM", 8001, host=8)])  # and then the applier stops for good
    clock.t += 1.5 + incident_flow.MAX_HOLD
    [report] = flow.flush_due()
    assert report.sent  # late, incomplete, but told


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "one-batch"])
def test_a_hook_oned_ran_late_does_not_reopen_a_vm_seen_running_since(redis_url, prefixes,
                                                                         batched):
    from dataclasses import replace

    flow = make_flow(redis_url, prefixes(), Clock(time.time()))
    running = replace(ev("VM", 42, "resolved"), source="hook", last_poll=1_800_000_200)
    late = replace(ev("VM", 42), source="hook", last_poll=1_800_000_100)  # polled before
    new = replace(ev("VM", 42), source="hook", last_poll=1_800_000_200)  # fails after that poll
    events = [running, late, new]
    if batched:
        applied = flow.apply_events([(e, None) for e in events])
    else:
        applied = [flow.apply_event(e) for e in events]
    assert [a.decision.action for a in applied] == ["ignored", "ignored", "created"]
    assert "stale" in applied[1].decision.reason
    assert flow.store.open_for("vm:42").id == applied[2].decision.incident_id
