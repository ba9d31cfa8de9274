"""The remediation store on a real Redis: the primitives every guard relies on."""

import threading

import pytest
import redis

from gateway.adapters.store.remediation import RemediationStore


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def store(redis_url, key_prefix):
    clock = Clock()
    s = RemediationStore(redis.Redis.from_url(redis_url), key_prefix, clock)
    s.test_clock = clock
    return s


def test_an_action_is_claimed_by_exactly_one_of_many_racing_workers(store):
    wins = []

    def race(i):
        if store.claim("p1", "vm:7:resched", 1, f"w{i}"):
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(wins) == 1
    # The claim and the `acting` record are one atomic step: no claim without an outcome.
    assert store.outcome("p1", "vm:7:resched")["by"] == f"w{wins[0]}"
    assert store.claim("p1", "vm:7:resched", 2, "w0")  # a retry is a new attempt, a new key


def test_per_vm_lock_is_exclusive_and_released(store):
    with store.vm_lock(7) as first:
        with store.vm_lock(7) as second, store.vm_lock(8) as other:
            assert first and not second and other
    with store.vm_lock(7) as again:
        assert again


def test_rate_limit_is_a_sliding_window_shared_by_all(store):
    assert [store.take_rate(3, window=60) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = store.take_rate(3, window=60)
    assert 59 <= wait <= 60
    store.test_clock.t += 61
    assert store.take_rate(3, window=60) == 0.0


def test_concurrency_slots_are_bounded_and_a_dead_holder_lapses(store):
    a, b = store.take_slot(2, lease=10), store.take_slot(2, lease=10)
    assert a and b and store.take_slot(2, lease=10) is None
    store.release_slot(a)
    assert store.take_slot(2, lease=10) is not None
    store.test_clock.t += 11  # both holders "died": their leases lapse
    assert store.slots_in_use() == 0


def test_an_approval_is_decided_once_and_expires(store):
    store.create_approval("a1", "p1", "i1", expires_at=1100.0)
    assert store.decide("a1", "approved", "alice", "web") == ("ok", "alice")
    assert store.decide("a1", "approved", "mallory", "api") == ("approved", "alice")
    assert store.decide("a1", "denied", "bob", "cli") == ("approved", "alice")
    store.create_approval("a2", "p2", "i1", expires_at=1100.0)
    store.test_clock.t = 1100.0
    assert store.decide("a2", "approved", "alice", "web") == ("expired", "")
    assert store.decide("nope", "approved", "alice", "web") == ("missing", "")


def test_plan_lease_is_held_by_one_owner_until_dropped(store):
    assert store.take_lease("p1", "w1", 5)
    assert not store.take_lease("p1", "w2", 5)
    assert store.take_lease("p1", "w1", 5)  # renewal
    store.drop_lease("p1", "w2")  # not the owner: no effect
    assert not store.take_lease("p1", "w2", 5)
    store.drop_lease("p1", "w1")
    assert store.take_lease("p1", "w2", 5)


def test_pause_switch_and_audit_stream(store):
    assert store.paused() is None
    store.pause("alice", "storage maintenance")
    assert store.paused()["by"] == "alice"
    store.audit("paused", actor="alice", reason="storage maintenance")
    store.audit("action_done", "p1", "i1", step="vm:1:resume", answer=1)
    assert store.resume() and store.paused() is None
    rows = store.audit_log(10)
    assert [r["what"] for r in rows] == ["paused", "action_done"]
    assert rows[1]["data"] == {"answer": 1, "step": "vm:1:resume"}
    assert [r["what"] for r in store.audit_log(10, plan_id="p1")] == ["action_done"]
