"""IncidentStore on a real Redis with a fake clock: concurrency, replays, escalation, the outbox,
concurrent flushes, remediation's transitions and maintenance."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
import redis

from gateway.adapters.store.incidents import OUTBOX_STALE_AFTER
from gateway.flows.incident import IncidentFlow
from gateway.config import settings_from_dict
from gateway.domain.events import Event
from gateway.runtime import Runtime

T0 = 1_764_000_000.0


class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self):
        return self.t


class Sent(list):
    def __call__(self, name, args, countdown=None):
        self.append((name, args))

    def notifications(self):
        return [json.loads(a[0]) for n, a in self if n == "oneha.deliver"]


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make_store(redis_url, key_prefix, clock):
    def make(send=None, **route):
        settings = settings_from_dict({
            "redis_url": redis_url, "key_prefix": key_prefix,
            "receivers": [{"name": "mail", "urls": ["mailto://127.0.0.1:1?to=a@b.c"]},
                          {"name": "lead", "urls": ["json://127.0.0.1:1/x"]}],
            "route": {"receiver": "mail", "group_wait": "30s", "group_interval": "5m",
                      "repeat_interval": "4h", **route}}, env={})
        rt = Runtime(settings=settings, redis=redis.Redis.from_url(redis_url), clock=clock)
        return IncidentFlow(rt, send=send if send is not None else Sent())
    return make


def ev(resource, oid, status="firing", host="node07", state=None, lcm=None):
    cond = {"HOST": "HOST/ERROR", "VM": "VM/ACTIVE/UNKNOWN"}[resource]
    return Event(event_id=uuid.uuid4().hex, source="test", resource=resource, object_id=str(oid),
                 name=f"{resource.lower()}{oid}", status=status, condition=cond, occurred_at=T0,
                 state=state, lcm_state=lcm, labels={"host": host})


def test_concurrent_workers_build_one_host_incident_with_every_vm(make_store):
    store = make_store()
    events = [ev("VM", i) for i in range(120)]
    events.insert(40, ev("HOST", 7))
    chunks = [events[i::6] for i in range(6)]
    threads = [threading.Thread(target=lambda c=c: [store.apply_event(e) for e in c]) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    host = store.store.open_for("host:7")
    assert len(host.objects) == 121
    assert [i.id for i in store.store.list(open_only=True)] == [host.id]  # VM incidents were absorbed
    assert all(store.store.open_for(f"vm:{i}").id == host.id for i in range(120))


def test_a_replayed_event_changes_nothing(make_store):
    store = make_store()
    e = ev("VM", 1)
    first = store.apply_event(e)
    again = store.apply_event(e)
    assert again.decision.action == "duplicate"
    assert store.store.get(first.decision.incident_id).version == 1
    assert len(store.store.timeline(first.decision.incident_id)) == 3  # event, opened, remediation asked


def test_group_message_waits_for_group_wait_and_two_flushes_send_it_once(make_store, clock):
    sent = Sent()
    store = make_store(sent)
    for i in range(5):
        store.apply_event(ev("VM", i))
    sent.clear()
    clock.t = T0 + 29
    assert not any(r.sent for r in store.flush_due())
    clock.t = T0 + 30
    barrier = threading.Barrier(4)

    def flush():
        barrier.wait()
        store.flush_due()
    threads = [threading.Thread(target=flush) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [n] = sent.notifications()
    assert n["receiver"] == "mail" and n["transition"] == "firing"
    assert n["incident"]["title"].startswith("5 open incidents (host=node07)")


def test_unacknowledged_incident_escalates_to_the_next_receiver_and_ack_stops_it(make_store, clock):
    sent = Sent()
    store = make_store(sent, escalate_after="10m", escalate_to=["lead", "mail"])
    iid = store.apply_event(ev("VM", 1)).decision.incident_id
    clock.t = T0 + 600
    store.flush_due()
    esc = [n for n in sent.notifications() if n["transition"] == "escalated"]
    assert [(n["receiver"], n["notification_id"]) for n in esc] == [("lead", f"{iid}:escalated:0:lead")]
    assert any(e.kind == "escalation" for e in store.store.timeline(iid))
    store.transition(iid, "acknowledged", "mine", "alice")
    sent.clear()
    clock.t = T0 + 1200
    store.flush_due()
    assert [n for n in sent.notifications() if n["transition"] == "escalated"] == []


def test_effects_left_in_the_outbox_by_a_crash_are_sent_later(make_store, clock):
    def crash(name, args, countdown=None):
        raise ConnectionError("worker died before handing the task over")
    store = make_store(crash)
    with pytest.raises(ConnectionError):
        store.apply_event(ev("VM", 1))
    iid = store.store.list()[0].id  # the change itself was committed
    sent = Sent()
    healthy = make_store(sent)
    clock.t = T0 + OUTBOX_STALE_AFTER + 1
    healthy.flush_due()
    assert ("oneha.plan_remediation", [iid]) in sent
    sent.clear()
    healthy.flush_due()
    assert ("oneha.plan_remediation", [iid]) not in sent  # handed over once


def test_remediation_resolving_an_incident_sends_one_resolve_with_impact(make_store, clock):
    sent = Sent()
    store = make_store(sent)
    iid = store.apply_event(ev("HOST", 7)).decision.incident_id
    clock.t = T0 + 30
    store.flush_due()
    store.transition(iid, "remediating", "plan p1 approved", "oneha-remediation")
    store.attach(iid, "impact report: 1 VM(s)", plan_id="p1",
                 impact=[{"vm_id": 1, "vm_name": "a", "downtime_s": 42.0}])
    store.transition(iid, "resolved", "VMs running elsewhere", "oneha-remediation")
    clock.t = T0 + 400
    store.flush_due()
    store.flush_due()
    resolved = [n for n in sent.notifications() if n["transition"] == "resolved"]
    assert len(resolved) == 1 and resolved[0]["incident"]["impact"][0]["downtime_s"] == 42.0
    assert store.store.get(iid).plan_id == "p1"


def test_impact_reports_of_several_plans_add_up_one_row_per_vm(make_store):
    store = make_store(Sent())
    iid = store.apply_event(ev("HOST", 7)).decision.incident_id
    store.attach(iid, "impact report: 2 VM(s)", plan_id="p1",
                 impact=[{"vm_id": 1, "downtime_s": 42.0}, {"vm_id": 2, "downtime_s": 50.0}])
    # a second plan: a VM that failed later, and VM 2 again (retried: its newer report counts)
    store.attach(iid, "impact report: 2 VM(s)", plan_id="p2",
                 impact=[{"vm_id": 3, "downtime_s": 7.0}, {"vm_id": 2, "downtime_s": 55.0}])
    rows = {row["vm_id"]: row["downtime_s"] for row in store.store.get(iid).impact}
    assert rows == {1: 42.0, 2: 55.0, 3: 7.0}


def test_vm_failures_on_a_host_in_maintenance_are_recorded_not_sent(make_store, clock):
    sent = Sent()
    store = make_store(sent)
    d = store.apply_event(ev("HOST", 7, status="resolved", state=4))
    assert d.decision.action == "maintenance"
    iid = store.apply_event(ev("VM", 3)).decision.incident_id
    clock.t = T0 + 30
    store.flush_due()
    assert sent.notifications() == []
    assert any("maintenance" in e.text for e in store.store.timeline(iid) if e.kind == "muted")
    store.apply_event(ev("HOST", 7, status="resolved", state=2))  # enabled again
    iid2 = store.apply_event(ev("VM", 4, host="node07")).decision.incident_id
    assert store.store.get(iid2).labels.get("maintenance") is None


def test_planning_requests_of_a_storm_are_coalesced(make_store):
    sent = Sent()
    store = make_store(sent)
    iid = store.apply_event(ev("HOST", 7)).decision.incident_id
    for i in range(50):
        store.apply_event(ev("VM", i))
    assert sent.count(("oneha.plan_remediation", [iid])) == 1
    assert store.store.r.zcard(store.store.k("outbox")) == 0


def test_the_receiver_an_incident_escalated_to_hears_the_resolve_once(make_store, clock):
    sent = Sent()
    store = make_store(sent, group_interval="1m", escalate_after="5m", escalate_to=["lead"])
    iid = store.apply_event(ev("VM", 1)).decision.incident_id
    clock.t = T0 + 300
    store.flush_due()
    store.apply_event(ev("VM", 1, status="resolved", state=3, lcm=3))
    clock.t = T0 + 400
    store.flush_due()
    store.flush_due()
    resolved = sorted((n["receiver"], n["notification_id"]) for n in sent.notifications()
                      if n["transition"] == "resolved")
    assert [r for r, _ in resolved] == ["lead", "mail"]
    assert (("lead", f"{iid}:resolved:0:lead")) in resolved


def test_resolved_incidents_are_purged_after_the_retention_and_open_ones_never(make_store, clock):
    store = make_store()
    old = store.apply_event(ev("VM", 1, host="node01")).decision.incident_id
    still_open = store.apply_event(ev("VM", 2, host="node02")).decision.incident_id
    store.transition(old, "resolved", "fixed by hand", "test")
    clock.t += 10
    recent = store.apply_event(ev("VM", 3, host="node03")).decision.incident_id
    store.transition(recent, "resolved", "fixed by hand", "test")

    assert store.store.purge_resolved(older_than=clock.t - 5) == [old]
    assert store.store.get(old) is None and store.store.timeline(old) == []
    assert store.store.get(still_open).is_open and store.store.get(recent) is not None
    assert [i.id for i in store.store.list(open_only=False)] == [recent, still_open]
    assert store.store.purge_resolved(older_than=clock.t - 5) == []  # idempotent


def test_silences_ended_before_the_retention_are_purged_the_rest_kept(make_store, clock):
    store = make_store()
    ended_long_ago = store.store.add_silence(["host=a"], ends_at=T0 + 10, author="ann", comment="x")
    expired_by_hand = store.store.add_silence(["host=b"], ends_at=T0 + 3600, author="ann", comment="y")
    store.store.expire_silence(expired_by_hand.id, "bob")  # ends now: T0
    running = store.store.add_silence(["host=c"], ends_at=T0 + 7200, author="ann", comment="z")
    clock.t = T0 + 100
    assert store.store.purge_expired_silences(older_than=T0 + 5) == [expired_by_hand.id]
    assert store.store.purge_expired_silences(older_than=T0 + 50) == [ended_long_ago.id]
    assert [s.id for s in store.store.list_silences(include_expired=True)] == [running.id]
    assert store.store.purge_expired_silences(older_than=T0 + 50) == []  # idempotent


def test_when_a_silence_runs_out_its_incident_is_sent_at_once_not_a_group_interval_later(
        make_store, clock):
    sent = Sent()
    store = make_store(sent)
    store.store.add_silence(["host=node07"], ends_at=T0 + 100, author="ann", comment="rack work")
    iid = store.apply_event(ev("HOST", 7)).decision.incident_id
    clock.t = T0 + 30  # group_wait: muted, so nothing goes out; the group looks again in 5m
    store.flush_due()
    assert sent.notifications() == []
    clock.t = T0 + 99
    store.flush_due()
    assert sent.notifications() == []  # still silenced
    clock.t = T0 + 101  # the silence is over: the next flush (the beat's, 1 s) sends
    store.flush_due()
    [firing] = sent.notifications()
    assert firing["transition"] == "firing" and firing["incident"]["id"] == iid
    store.flush_due()
    assert len(sent.notifications()) == 1  # once


def test_a_silence_ended_by_hand_leaves_no_wake_up_behind(make_store, clock, key_prefix):
    store = make_store(Sent())
    s = store.store.add_silence(["host=node07"], ends_at=T0 + 3600, author="ann", comment="x")
    assert store.store.r.zscore(key_prefix + "due", f"silence|{s.id}") == T0 + 3600
    store.store.expire_silence(s.id, "bob")
    assert store.store.r.zscore(key_prefix + "due", f"silence|{s.id}") is None
