import pytest

from gateway.domain.objects import HistoryRecord, HostInfo, VmInfo
from gateway.domain.remediation import guards
from gateway.domain.remediation.guards import Expect, RaftView
from gateway.domain.remediation.policy import StormConfig


def hosts(n, errors, maintenance=0):
    return ([HostInfo(id=i, name=f"h{i}", state=3) for i in range(errors)]
            + [HostInfo(id=100 + i, name=f"m{i}", state=4) for i in range(maintenance)]
            + [HostInfo(id=200 + i, name=f"ok{i}", state=2) for i in range(n - errors)])


@pytest.mark.parametrize("n, errors, allow", [(10, 1, True), (10, 3, True), (10, 4, False),
                                              (10, 6, False), (3, 1, True), (3, 2, False),
                                              (5, 1, True), (2, 1, True)])
def test_storm_guard_stops_automatic_action_on_many_hosts_in_error(n, errors, allow):
    d = guards.storm(hosts(n, errors), StormConfig(max_error_percent=30, max_error_hosts=3))
    assert d.allow is allow
    if not allow:
        assert d.code == "storm" and "partition" in d.reason


def test_operator_maintenance_does_not_count_for_the_storm():
    d = guards.storm(hosts(4, 1, maintenance=10), StormConfig(max_error_percent=30))
    assert d.allow and "1 of 4" in d.reason


@pytest.mark.parametrize("views, code", [
    ([RaftView("a", 3, 5), RaftView("b", 2, 5), RaftView("c", None)], "ok"),
    ([RaftView("a", 2, 5), RaftView("b", 2, 5), RaftView("c", 1, 6)], "no_leader"),
    ([RaftView("a", 3, 5), RaftView("b", None), RaftView("c", None)], "no_quorum"),
    ([RaftView("a", 3, 5), RaftView("b", 3, 5), RaftView("c", 2, 5)], "split_leader"),
    ([RaftView("a", 0, 0)], "ok"),
    ([RaftView("a", None)], "no_quorum"),
    ([], "no_leader"),
])
def test_no_automatic_action_without_a_raft_leader_and_quorum(views, code):
    d = guards.raft(views)
    assert d.code == code and d.allow is (code == "ok")


def _vm(lcm=16, host_id=1, locked=False, state=3):
    return VmInfo(id=9, name="v", state=state, lcm_state=lcm, locked=locked,
                  history=(HistoryRecord(seq=0, host_id=host_id, host_name=f"n{host_id}"),))


@pytest.mark.parametrize("live, code", [
    (_vm(), "ok"), (_vm(lcm=3), "running"), (_vm(lcm=36), "changed"),
    (_vm(host_id=2), "changed"), (_vm(locked=True), "locked"), (None, "gone"),
    (_vm(state=8, lcm=0), "changed"),
])
def test_live_reread_must_still_match_the_plan(live, code):
    d = guards.still_as_planned(Expect(3, (16,), 1), live)
    assert d.code == code and d.allow is (code == "ok")


def test_pause_and_maintenance_say_who_and_why():
    assert guards.paused(None).allow
    d = guards.paused({"by": "alice", "reason": "storage work"})
    assert not d and "alice" in d.reason and "storage work" in d.reason
    off = HostInfo(id=1, name="n1", state=8)
    assert guards.host_left_alone(off).code == "maintenance"
    assert guards.host_left_alone(HostInfo(id=1, name="n1", state=4), by_oneha=True)


def test_bounded_retries_back_off_then_hand_over_to_a_human():
    seen = [guards.next_attempt(a, max_retries=2, backoff=5) for a in (1, 2, 3)]
    assert [(d.retry, d.delay) for d in seen] == [(True, 5), (True, 10), (False, 0.0)]
    assert "needs a human" in seen[-1].reason


def test_remediation_retries_wait_at_most_ten_backoffs_unless_told_otherwise():
    delays = [guards.next_attempt(a, max_retries=20, backoff=10).delay for a in range(1, 8)]
    assert delays == [10, 20, 40, 80, 100, 100, 100]
    assert guards.next_attempt(6, max_retries=20, backoff=10, maximum=1000).delay == 320


def test_no_failback_target_is_the_failed_host_or_an_unhealthy_one():
    pool = [HostInfo(id=1, name="a", state=2, cluster_id=0), HostInfo(id=2, name="b", state=3),
            HostInfo(id=3, name="c", state=2, cluster_id=1), HostInfo(id=4, name="d", state=4)]
    assert [h.id for h in guards.hosts_with_room(pool, failed_host_id=1, cluster_id=1)] == [3]
