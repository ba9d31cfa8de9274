"""The reconciler's findings: pure, no I/O."""

import pytest

from gateway.domain.objects import HistoryRecord, HostInfo, VmInfo
from gateway.domain.reconcile import FailureMark, Tracked, reconcile

ERROR, MONITORED, INIT, DISABLED = 3, 2, 0, 4


def host(i=7, state=MONITORED):
    return HostInfo(id=i, name=f"node{i:02d}", state=state, cluster_id=0, cluster="default")


def vm(i=42, state=3, lcm=3, host_id=7, seq=0):
    record = HistoryRecord(seq=seq, host_id=host_id, host_name=f"node{host_id:02d}")
    return VmInfo(id=i, name=f"vm{i}", state=state, lcm_state=lcm, uname="alice", gname="users",
                  history=(record,))


def held(key, status="firing", incident="inc1", last_seen=5.0):
    return {key: Tracked(key, incident, status, name=key, last_seen=last_seen)}


def only(plan):
    assert len(plan.findings) == 1, plan.findings
    return plan.findings[0]


def test_a_host_in_error_that_no_incident_holds_is_raised_with_hook_like_labels():
    plan = reconcile([host(state=ERROR)], [], {}, {}, now=100.0)
    d = only(plan)
    assert d.action == "raise" and "no open incident holds it" in d.reason
    e = d.event
    assert (e.source, e.resource, e.object_id, e.status, e.condition) == (
        "reconciler", "HOST", "7", "firing", "HOST/ERROR")
    assert e.labels["host"] == "node07" and e.labels["cluster"] == "default"
    assert "frontend" not in e.labels
    assert "no hook reported it" in e.summary
    assert plan.marks == {"host:7": FailureMark("HOST/3", 100.0)}


@pytest.mark.parametrize("state,lcm,condition", [(3, 16, "VM/ACTIVE/UNKNOWN"),
                                                 (3, 36, "VM/ACTIVE/BOOT_FAILURE"),
                                                 (3, 39, "VM/ACTIVE/PROLOG_FAILURE"),
                                                 (7, 0, "VM/FAILED")])
def test_failing_vms_are_raised(state, lcm, condition):
    e = only(reconcile([host()], [vm(state=state, lcm=lcm)], {}, {}, 1.0)).event
    assert (e.object_key, e.condition, e.status) == ("vm:42", condition, "firing")
    assert e.labels["host"] == "node07" and e.labels["owner"] == "alice"


def test_repeated_passes_give_the_same_event_id_for_the_same_episode():
    first = reconcile([host(state=ERROR)], [], {}, {}, 100.0)
    again = reconcile([host(state=ERROR)], [], {}, first.marks, 160.0)
    assert first.events[0].event_id == again.events[0].event_id
    assert again.marks == first.marks


def test_a_new_failure_of_the_same_vm_is_a_new_episode():
    first = reconcile([host()], [vm(lcm=16)], {}, {}, 100.0)
    healed = reconcile([host()], [vm()], {}, first.marks, 160.0)
    assert healed.marks == {} and healed.forget == ["vm:42"]
    later = reconcile([host()], [vm(lcm=16)], {}, healed.marks, 900.0)
    assert later.events[0].event_id != first.events[0].event_id


def test_a_vm_that_moved_and_failed_on_its_new_host_is_a_new_episode():
    first = reconcile([host(), host(8)], [vm(lcm=16)], {}, {}, 100.0)
    moved = reconcile([host(), host(8)], [vm(lcm=16, host_id=8, seq=1)], {}, first.marks, 130.0)
    assert moved.events[0].event_id != first.events[0].event_id


def test_a_failure_an_open_incident_already_holds_raises_nothing():
    d = only(reconcile([host(state=ERROR)], [], held("host:7"), {}, 1.0))
    assert d.action == "known" and d.event is None and "inc1" in d.reason


def test_a_failing_object_an_incident_holds_as_recovered_is_raised_again():
    d = only(reconcile([host()], [vm(lcm=16)], held("vm:42", status="resolved"), {}, 1.0))
    assert d.action == "raise" and "holds it as recovered" in d.reason


@pytest.mark.parametrize("h,v,key", [(host(), None, "host:7"),
                                     (host(state=DISABLED), None, "host:7"),
                                     (host(), vm(), "vm:42"),
                                     (host(), vm(state=8, lcm=0), "vm:42")])
def test_healthy_or_settled_objects_held_as_failing_are_resolved(h, v, key):
    d = only(reconcile([h], [v] if v else [], held(key), {}, 50.0))
    assert d.action == "resolve" and d.event.status == "resolved"
    assert d.event.object_key == key and d.event.source == "reconciler"


@pytest.mark.parametrize("state,lcm", [(3, 19), (3, 60), (1, 0), (3, 2)])  # BOOT_UNKNOWN, ...
def test_vms_on_their_way_are_neither_raised_nor_resolved(state, lcm):
    d = only(reconcile([host()], [vm(state=state, lcm=lcm)], held("vm:42"), {}, 1.0))
    assert d.action == "wait" and d.event is None


def test_a_host_still_in_init_waits():
    assert only(reconcile([host(state=INIT)], [], held("host:7"), {}, 1.0)).action == "wait"


def test_an_object_gone_from_the_pool_is_resolved_as_gone():
    d = only(reconcile([host()], [], held("vm:42"), {}, 1.0))
    assert d.action == "resolve"
    assert (d.event.condition, d.event.status, d.event.resource) == ("VM/GONE", "resolved", "VM")


def test_other_resources_in_incidents_are_not_the_reconcilers_business():
    assert reconcile([], [], held("frontend:zone0"), {}, 1.0).findings == []


def test_resolved_event_ids_are_stable_until_the_incident_sees_a_new_event():
    a = reconcile([host()], [], held("host:7", last_seen=5.0), {}, 10.0).events[0]
    b = reconcile([host()], [], held("host:7", last_seen=5.0), {}, 70.0).events[0]
    c = reconcile([host()], [], held("host:7", last_seen=66.0), {}, 70.0).events[0]
    assert a.event_id == b.event_id != c.event_id


def test_healthy_objects_nobody_holds_are_left_alone():
    assert reconcile([host()], [vm()], {}, {}, 1.0).findings == []
