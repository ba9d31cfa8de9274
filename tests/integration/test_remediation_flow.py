"""The remediation flow against the simulator through pyone, with the real stores on Redis.

Here the tasks run in the test process (a `Driver` plays the queue, honouring countdowns) so each
guard can be shown step by step; `test_remediation_worker.py` runs the same flow on real Celery
workers. Everything else is real: the simulator over XML-RPC, the OpenNebula client, Redis, the
incident store.
"""

from __future__ import annotations

import time

import pytest

from gateway.adapters.opennebula import OpenNebula
from gateway.flows.remediation import RUN_TASK, VERIFY_TASK
from simulator import CloudSpec, DiskSpec, HostSpec, Simulator, VmSpec
from tests.support.remediation import (Driver, crash_and_report, recovers, remediation_config,
                                       shared_vms, touched_vms, vm_actions, wait_state, writes)


@pytest.fixture
def cloud(request):
    spec = request.param if hasattr(request, "param") else CloudSpec()
    with Simulator(spec) as sim:
        yield sim


# ---- tests ------------------------------------------------------------------------------------

THREE_UNKNOWN = CloudSpec(hosts=2, vms=shared_vms(4), frontends=3, monitoring_interval=0.2)


@pytest.mark.parametrize("cloud", [THREE_UNKNOWN], indirect=True)
def test_three_unknown_vms_are_resumed_each_once_and_the_fourth_is_untouched(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto"))
    for vid in (0, 1, 2):
        cloud.freeze_vm(vid)
    wait_state(cloud, d.one, lambda: all(d.one.vm(v).is_unknown for v in (0, 1, 2)), "UNKNOWN")
    incidents = {d.event("VM", vid).decision.incident_id for vid in (0, 1, 2)}
    assert len(incidents) == 3
    d.run_until_idle(timeout=15)
    assert sorted(vm_actions(cloud, "resume")) == [0, 1, 2]
    assert all(d.one.vm(v).is_running for v in (0, 1, 2, 3))
    # one refresh of the host's monitoring (OFFLINE then ENABLED), not one per VM
    assert [e["args"] for e in writes(cloud, "one.host.status")] == [[0, 2], [0, 0]]
    assert sorted(touched_vms(cloud)) == [0, 1, 2]  # VM 3 was RUNNING: untouched
    for iid in incidents:
        (pid,) = d.store.plan_ids(iid)
        assert d.status(pid) == "done"
        assert len(d.rem.impact(pid)) == 1


BIG_HOSTS = [HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in range(1, 5)]
HOST_OF_20 = CloudSpec(hosts=BIG_HOSTS, vms=shared_vms(20), frontends=3, monitoring_interval=0.2)


@pytest.mark.parametrize("cloud", [HOST_OF_20], indirect=True)
def test_host_crash_asks_once_then_recovers_every_vm_once_with_an_impact_report(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="approval"))
    cloud.crash_host(0)
    wait_state(cloud, d.one, lambda: all(v.is_unknown for v in d.one.vms()), "VMs UNKNOWN")
    iid = {d.event("HOST", 0).decision.incident_id for _ in range(3)}.pop()
    d.run_until_idle(timeout=5)
    (pid,) = d.store.plan_ids(iid)
    assert d.status(pid) == "awaiting_approval"
    assert [p["transition"] for p in d.pages] == ["approval_requested"]
    assert touched_vms(cloud) == []  # nothing before the approval
    assert d.rem.decide_plan(pid, "approved", "alice", via="test") == "executing"
    d.run_until_idle(timeout=30)
    assert d.status(pid) == "done"
    assert sorted(vm_actions(cloud, "resched")) == list(range(20))
    assert sorted(touched_vms(cloud)) == list(range(20))
    vms = d.one.vms()
    assert all(v.is_running and v.host_id != 0 for v in vms)
    report = d.rem.impact(pid)
    assert sorted(r["vm_id"] for r in report) == list(range(20))
    assert all(r["downtime_s"] is not None and r["downtime_s"] >= 0 for r in report)
    assert all(r["memory_lost"] and r["connections_dropped"] for r in report)
    inc = d.incidents.get(iid)
    assert inc.plan_id == pid and len(inc.impact) == 20
    done = [r for r in d.store.audit_log(500, plan_id=pid) if r["what"] == "action_done"]
    assert [r["data"]["action"] for r in done] == ["disable_host"] + ["resched"] * 20


FIVE_HOSTS = CloudSpec(hosts=[HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536)
                              for i in range(1, 6)],
                       vms=[VmSpec(f"vm{i:02d}", host=f"node{1 + i % 5:02d}") for i in range(10)],
                       frontends=3, monitoring_interval=0.2)


@pytest.mark.parametrize("cloud", [FIVE_HOSTS], indirect=True)
def test_a_partition_of_60_percent_of_hosts_recovers_nothing_and_pages_a_human_once(cloud,
                                                                                   key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto"))
    cloud.partition([0, 1, 2])
    wait_state(cloud, d.one, lambda: sum(h.is_error for h in d.one.hosts()) == 3, "3 in ERROR")
    iids = [d.event("HOST", h).decision.incident_id for h in (0, 1, 2)]
    d.run_until_idle(timeout=5)
    statuses = [d.status(d.store.plan_ids(i)[0]) for i in iids]
    assert statuses == ["blocked"] * 3
    assert touched_vms(cloud) == []
    # One story for the partition: its own incident, naming the guard and the hosts; no host
    # incident is told that its VMs "cannot be recovered".
    assert [p for p in d.pages if p["transition"] == "needs_human"] == []
    storms = [i for i in d.incidents.store.list(open_only=True) if i.key == "cloud:storm"]
    assert len(storms) == 1
    detail = storms[0].primary.detail
    assert "storm guard: 3 of 5 hosts in ERROR (60%)" in detail
    assert "node01, node02, node03" in detail
    # A person may still decide, knowingly, at the console: deny one, approve another.
    denied, approved, untouched = (d.store.plan_ids(i)[0] for i in iids)
    assert d.rem.decide_plan(denied, "denied", "bob", via="cli") == "denied"
    assert d.rem.decide_plan(approved, "approved", "bob", via="cli") == "executing"
    d.run_until_idle(timeout=10, stop=lambda: d.status(approved) == "done")
    host1_vms = sorted(s.vm_id for s in d.store.plan(approved).vm_steps)
    assert sorted(touched_vms(cloud)) == host1_vms == [1, 6]  # only the approved host's VMs
    assert d.status(untouched) == "blocked"


@pytest.mark.parametrize("cloud", [FIVE_HOSTS], indirect=True)
def test_a_host_back_within_the_grace_period_gets_nothing_done_and_resolves(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto", grace_cycles=5,
                                  monitoring_interval=0.4))  # 2 s of grace
    cloud.crash_host(0)
    wait_state(cloud, d.one, lambda: d.one.host(0).is_error, "host 0 ERROR")
    iid = d.event("HOST", 0).decision.incident_id
    d.run_until_idle(timeout=3, stop=lambda: d.plan_status(iid) is not None)
    (pid,) = d.store.plan_ids(iid)
    assert d.status(pid) == "grace"
    cloud.recover_host(0)
    wait_state(cloud, d.one, lambda: d.one.host(0).state == 2, "host 0 MONITORED")
    d.event("HOST", 0)  # the MONITORED hook: the incident engine resolves the incident
    d.run_until_idle(timeout=5)
    assert d.status(pid) == "cancelled"
    assert "came back during the grace period" in d.store.plan_state(pid)["reason"]
    assert touched_vms(cloud) == [] and writes(cloud) == []
    assert d.incidents.get(iid).state == "resolved"


@pytest.mark.parametrize("cloud", [FIVE_HOSTS], indirect=True)
def test_no_action_without_raft_quorum_and_pause_holds_everything(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto"))
    d.store.pause("ops", "storage work")
    cloud.crash_host(0)
    wait_state(cloud, d.one, lambda: all(d.one.vm(v).is_unknown for v in (0, 5)), "UNKNOWN")
    iid = d.event("HOST", 0).decision.incident_id
    d.run_until_idle(timeout=3.0, stop=lambda: d.plan_status(iid) is not None)
    d.run_until_idle(timeout=1.0)
    (pid,) = d.store.plan_ids(iid)
    assert touched_vms(cloud) == []
    assert "paused by ops" in d.store.plan_state(pid)["reason"]
    d.store.resume()
    leader = cloud.kill_leader()
    follower = next(s["SERVER_ID"] for s in cloud.raft_status()
                    if s["alive"] and s["SERVER_ID"] != leader)
    cloud.kill_server(follower)
    d.run_until_idle(timeout=3.0)
    assert touched_vms(cloud) == []
    held = [r for r in d.store.audit_log(50, plan_id=pid) if r["what"] == "action_held"]
    assert held and held[-1]["data"]["guard"] in ("no_quorum", "no_leader")
    cloud.restart_server(leader)
    cloud.restart_server(follower)
    d.run_until_idle(timeout=20, stop=lambda: d.status(pid) == "done")
    assert sorted(vm_actions(cloud, "resched")) == [0, 5]


LOCAL_AND_PERSISTENT = CloudSpec(
    hosts=[HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in range(1, 4)],
    vms=[VmSpec("shared-pers", host="node01", disks=(DiskSpec(persistent=True),)),
         VmSpec("local-eph", host="node01", system_ds="local",
                disks=(DiskSpec(datastore="local"),)),
         VmSpec("local-pers", host="node01", system_ds="local",
                disks=(DiskSpec(persistent=True, datastore="local"),)),
         VmSpec("optout", host="node01", labels={"ONEHA_POLICY": "off"}),
         VmSpec("plain", host="node01"),
         VmSpec("urgent", host="node01", labels={"ONEHA_PRIORITY": "100"})],
    frontends=1, monitoring_interval=0.2)


@pytest.mark.parametrize("cloud", [LOCAL_AND_PERSISTENT], indirect=True)
def test_auto_policy_acts_only_where_it_is_safe_and_by_priority(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto"))
    iid = crash_and_report(d, cloud)  # every VM of this cloud is on host 0
    d.run_until_idle(timeout=10, stop=lambda: not any(
        d.one.vm(v).is_unknown for v in (4, 5)))
    (pid,) = d.store.plan_ids(iid)
    plan = d.store.plan(pid)
    by_vm = {s.vm_id: s for s in plan.vm_steps}
    assert by_vm[0].needs_approval and "no fencing" in by_vm[0].approval_reason
    assert by_vm[1].action == "recreate" and by_vm[1].needs_approval
    assert {s.vm_id: s.code for s in plan.skipped} == {2: "wait", 3: "opt_out"}
    # Only the safe ones ran automatically, the high-priority VM first.
    assert vm_actions(cloud, "resched") == [5, 4]
    assert [p["transition"] for p in d.pages].count("approval_requested") == 1
    assert [p["transition"] for p in d.pages].count("needs_human") == 1  # local-pers waits
    d.rem.decide_plan(pid, "approved", "carol", via="test")
    d.run_until_idle(timeout=20, stop=lambda: d.status(pid) in ("done", "failed"))
    assert vm_actions(cloud, "resched") == [5, 4, 0]
    assert recovers(cloud, 4) == [1]  # delete-recreate of the ephemeral local VM
    assert d.status(pid) == "done"
    assert sorted(touched_vms(cloud)) == [0, 1, 4, 5]  # 2 waits for its host, 3 opted out


@pytest.mark.parametrize("cloud", [LOCAL_AND_PERSISTENT], indirect=True)
def test_fencing_gates_recovery_of_shared_persistent_disks(cloud, key_prefix, tmp_path):
    fence = tmp_path / "fence"
    fence.write_text("#!/bin/sh\necho fenced $1 >> " + str(tmp_path / "fenced") + "\n")
    fence.chmod(0o755)
    d = Driver(remediation_config(key_prefix, cloud, mode="auto", allowed_actions=["resched"],
                                  fencing={"command": str(fence), "allowlist": [str(fence)]}))
    iid = crash_and_report(d, cloud)  # every VM of this cloud is on host 0
    d.run_until_idle(timeout=20, stop=lambda: d.plan_status(iid) in ("done", "failed"))
    (pid,) = d.store.plan_ids(iid)
    assert (tmp_path / "fenced").read_text() == "fenced node01\n"
    assert sorted(vm_actions(cloud, "resched")) == [0, 4, 5]  # shared persistent disk too
    audit = [r["what"] for r in d.store.audit_log(100, plan_id=pid)]
    assert audit.index("action_done") < len(audit)
    first = next(r for r in d.store.audit_log(100, plan_id=pid) if r["what"] == "action_done")
    assert first["data"]["action"] == "fence"


@pytest.mark.parametrize("cloud", [LOCAL_AND_PERSISTENT], indirect=True)
def test_failed_fencing_recovers_nothing(cloud, key_prefix, tmp_path):
    fence = tmp_path / "fence"
    fence.write_text("#!/bin/sh\necho 'BMC unreachable'; exit 1\n")
    fence.chmod(0o755)
    d = Driver(remediation_config(key_prefix, cloud, mode="auto", allowed_actions=["resched"],
                                  fencing={"command": str(fence), "allowlist": [str(fence)]}))
    iid = crash_and_report(d, cloud)  # every VM of this cloud is on host 0
    d.run_until_idle(timeout=10)
    (pid,) = d.store.plan_ids(iid)
    outcomes = d.store.outcomes(pid)
    assert outcomes["fence:0"]["status"] == "failed" and "BMC unreachable" in \
        outcomes["fence:0"]["detail"]
    assert touched_vms(cloud) == []
    assert all(outcomes[k]["status"] == "skipped" for k in outcomes if k.startswith("vm:"))
    (page,) = [p for p in d.pages if "fence of host" in p["text"]]
    assert page["transition"] == "needs_human" and "BMC unreachable" in page["text"]
    assert d.incidents.get(iid).state != "resolved"  # the VMs are still down


CLOUD_INTERVAL = 0.2
TWO_HOSTS = CloudSpec(hosts=[HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536)
                             for i in range(1, 4)],
                      vms=shared_vms(3), frontends=1, monitoring_interval=CLOUD_INTERVAL)


@pytest.mark.parametrize("cloud", [TWO_HOSTS], indirect=True)
def test_a_failed_recovery_is_retried_with_backoff(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto", max_retries=2))
    cloud.fail_vm(1, "prolog")  # its move to another host fails once
    iid = crash_and_report(d, cloud)
    d.run_until_idle(timeout=20, stop=lambda: d.plan_status(iid) == "done")
    (pid,) = d.store.plan_ids(iid)
    assert sorted(vm_actions(cloud, "resched")) == [0, 1, 2]
    assert recovers(cloud, 2) == [1]  # recover --retry of the failed prolog, once
    assert all(v.is_running for v in d.one.vms())
    assert d.store.outcomes(pid)["vm:1:resched"]["attempt"] == 2


@pytest.mark.parametrize("cloud", [TWO_HOSTS], indirect=True)
def test_bounded_retries_end_with_a_vm_left_to_a_human(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto", max_retries=0))
    cloud.fail_vm(1, "prolog")
    iid = crash_and_report(d, cloud)
    d.run_until_idle(timeout=20, stop=lambda: d.plan_status(iid) == "failed")
    (pid,) = d.store.plan_ids(iid)
    assert d.store.outcomes(pid)["vm:1:resched"]["status"] == "needs_human"
    assert recovers(cloud, 2) == []
    pages = [p for p in d.pages if p["transition"] == "needs_human"]
    assert len(pages) == 1 and "vm01" in pages[0]["text"]
    assert d.incidents.get(iid).state == "firing"  # back to people
    before = len(writes(cloud))
    d.run_plan_once(pid)
    d.run_one(VERIFY_TASK, [pid])
    assert len(writes(cloud)) == before  # left alone


@pytest.mark.parametrize("cloud", [TWO_HOSTS], indirect=True)
def test_retried_tasks_duplicate_events_and_a_repaired_host_cause_no_second_action(cloud,
                                                                                key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto"))
    iid = crash_and_report(d, cloud)
    d.run_until_idle(timeout=20, stop=lambda: d.plan_status(iid) == "done")
    (pid,) = d.store.plan_ids(iid)
    done = len(writes(cloud))
    assert sorted(touched_vms(cloud)) == [0, 1, 2]
    for task in (RUN_TASK, VERIFY_TASK, RUN_TASK):  # a redelivered message runs again
        d.run_one(task, [pid])
    d.run_plan_once(pid)
    d.event("HOST", 0)  # the same hook delivered again
    d.rem.plan(iid)  # and the planning task retried
    cloud.recover_host(0)  # the failed host is repaired: no failback onto it
    time.sleep(3 * CLOUD_INTERVAL)  # a few monitoring cycles of the repaired host
    d.run_until_idle(timeout=2)
    assert len(writes(cloud)) == done and d.store.plan_ids(iid) == [pid]
    assert all(v.host_id != 0 for v in d.one.vms())
    # oneha disabled it before moving its VMs away: it stays out until an operator enables it
    assert d.one.host(0).state == 4


@pytest.mark.parametrize("cloud", [TWO_HOSTS], indirect=True)
def test_the_live_reread_before_acting_skips_what_changed_since_the_plan(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="approval"))
    iid = crash_and_report(d, cloud)
    d.run_until_idle(timeout=3)
    (pid,) = d.store.plan_ids(iid)
    assert d.status(pid) == "awaiting_approval"
    d.one.vm_action("resched", 2)  # an operator moves VM 2 by hand meanwhile
    cloud.wait_for(lambda: d.one.vm(2).is_running, timeout=10)
    d.one.host_status(0, 2)  # and takes the failed host OFFLINE for maintenance
    operator_writes = len(writes(cloud))
    d.rem.decide_plan(pid, "approved", "dave", via="test")
    d.run_until_idle(timeout=10, stop=lambda: d.status(pid) in ("done", "failed"))
    outcomes = d.store.outcomes(pid)
    assert outcomes["vm:2:resched"]["code"] == "running"
    assert outcomes["vm:0:resched"]["code"] == "maintenance"
    assert len(writes(cloud)) == operator_writes  # oneha did nothing after the re-read


SMALL_REST = CloudSpec(hosts=[HostSpec("node01", cpu=800), HostSpec("node02", cpu=300),
                              HostSpec("node03", cpu=300)],
                       vms=shared_vms(7) + [VmSpec("vip", host="node01",
                                                   labels={"ONEHA_PRIORITY": "9"})],
                       frontends=1, monitoring_interval=0.2)


@pytest.mark.parametrize("cloud", [SMALL_REST], indirect=True)
def test_the_plan_names_the_vms_that_will_not_fit_and_moves_only_the_others(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto"))
    iid = crash_and_report(d, cloud)
    d.run_until_idle(timeout=20, stop=lambda: d.plan_status(iid) in ("done", "failed"))
    (pid,) = d.store.plan_ids(iid)
    plan = d.store.plan(pid)
    wont = sorted(s.vm_id for s in plan.skipped if s.code == "wont_fit")
    assert len(plan.vm_steps) == 6 and len(wont) == 2 and 7 not in wont  # the VIP fits first
    assert any("will not fit" in n for n in plan.notes)
    assert vm_actions(cloud, "resched")[0] == 7
    assert sorted(vm_actions(cloud, "resched")) == sorted(plan.vm_ids)
    pages = [p for p in d.pages if p["transition"] == "needs_human"]
    assert len(pages) == 1 and "no remaining host has room" in pages[0]["text"]
    assert all(f"({v})" in pages[0]["text"] for v in wont)  # each one named


@pytest.mark.parametrize("cloud", [LOCAL_AND_PERSISTENT], indirect=True)
def test_denying_the_held_part_of_an_auto_plan_finishes_the_rest(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto"))
    iid = crash_and_report(d, cloud)  # every VM of this cloud is on host 0
    # Bounds, not sleeps: generous for a loaded machine (the loop stops as soon as it may).
    d.run_until_idle(timeout=30, stop=lambda: not any(d.one.vm(v).is_unknown for v in (4, 5)))
    (pid,) = d.store.plan_ids(iid)
    assert d.rem.decide_plan(pid, "denied", "erin", via="test") == "denied"
    d.run_until_idle(timeout=30, stop=lambda: d.status(pid) in ("done", "failed"))
    outcomes = d.store.outcomes(pid)
    assert outcomes["vm:0:resched"]["detail"] == "approval denied"
    assert outcomes["vm:1:recreate"]["detail"] == "approval denied"
    assert sorted(touched_vms(cloud)) == [4, 5] and d.status(pid) == "done"


SIX_VMS = CloudSpec(hosts=[HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in (1, 2, 3)],
                    vms=shared_vms(6), frontends=1, monitoring_interval=0.2)


@pytest.mark.parametrize("cloud", [SIX_VMS], indirect=True)
def test_the_rate_limit_spaces_actions_across_executors(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto", rate_limit_actions=2,
                                  rate_limit_window=1, disable_failed_host=False))
    iid = crash_and_report(d, cloud)
    d.run_until_idle(timeout=20, stop=lambda: d.plan_status(iid) == "done")
    times = sorted(e["t"] for e in writes(cloud, "one.vm.action"))
    assert len(times) == 6
    # never more than 2 actions within any 1 s window
    assert all(times[i + 2] - times[i] >= 0.95 for i in range(len(times) - 2))
    (pid,) = d.store.plan_ids(iid)
    assert any(r["what"] == "rate_limited" for r in d.store.audit_log(200, plan_id=pid))


@pytest.mark.parametrize("cloud", [SIX_VMS], indirect=True)
def test_no_action_while_the_concurrency_slots_are_taken(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto", concurrency=2))
    held = [d.store.take_slot(2, lease=30) for _ in range(2)]  # two calls in flight elsewhere
    assert all(held)
    iid = crash_and_report(d, cloud)
    d.run_until_idle(timeout=3, stop=lambda: d.plan_status(iid) is not None)
    d.run_until_idle(timeout=1.5)
    assert touched_vms(cloud) == [] and writes(cloud) == []
    for slot in held:
        d.store.release_slot(slot)
    d.run_until_idle(timeout=20, stop=lambda: d.plan_status(iid) == "done")
    assert sorted(vm_actions(cloud, "resched")) == list(range(6))


@pytest.mark.parametrize("cloud", [TWO_HOSTS], indirect=True)
def test_a_permanent_refusal_stops_the_plan_and_hands_it_to_people(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="approval"))
    iid = crash_and_report(d, cloud)
    d.run_until_idle(timeout=3, stop=lambda: d.plan_status(iid) == "awaiting_approval")
    (pid,) = d.store.plan_ids(iid)
    # Someone rotated oneha's OpenNebula password meanwhile: every call is refused.
    d.rem = d.remediator(OpenNebula(cloud.endpoints, "oneadmin:rotated", timeout=2, retries=0))
    d.rem.decide_plan(pid, "approved", "frank", via="test")
    d.run_until_idle(timeout=5)
    state = d.store.plan_state(pid)
    assert state["status"] == "failed" and "stopped:" in state["reason"]
    assert any("authenticat" in p["text"].lower() for p in d.pages
               if p["transition"] == "needs_human")
    assert touched_vms(cloud) == []
    assert d.incidents.get(iid).state == "firing"
