"""Readiness reads like a table: for each host, what the remediation's planner would do if it
failed now; per cluster, whether any one (or two) hosts can be lost."""

from gateway.domain import readiness
from gateway.domain.objects import Disk, HistoryRecord, HostInfo, VmInfo
from gateway.domain.remediation import plans
from gateway.domain.remediation.policy import RemediationConfig

GB = 1024 * 1024  # KB


def host(hid, mem_gb=8, used_gb=0, state=2, cluster=0, name=None):
    return HostInfo(id=hid, name=name or f"node{hid:02d}", state=state, cluster_id=cluster,
                    cluster=f"c{cluster}", max_mem=mem_gb * GB, mem_usage=used_gb * GB,
                    max_cpu=3200, cpu_usage=0)


def disk(persistent=False, tm="shared"):
    return Disk(disk_id=0, image_id=1, image="img", persistent=persistent, datastore_id=1,
                datastore="default", tm_mad=tm)


def vm(vid, host_id, mem_gb=2, shared=True, disks=None, labels=None, lcm=3, state=3):
    return VmInfo(id=vid, name=f"vm{vid}", state=state, lcm_state=lcm, cpu=1,
                  memory_mb=mem_gb * 1024, system_tm_mad="shared" if shared else "ssh",
                  history=(HistoryRecord(seq=0, host_id=host_id,
                                         host_name=f"node{host_id:02d}"),),
                  disks=tuple(disks or (disk(),)), labels=labels or {})


def assess(hosts, vms, action_seconds=None, **cfg):
    config = RemediationConfig.model_validate({"mode": "auto", **cfg})
    return readiness.assess(readiness.Inputs(
        hosts=hosts, vms=vms, policy_for=config.for_labels, now=1000.0,
        monitoring_interval=10.0, concurrency=2, action_seconds=action_seconds or {}))


def by_host(report):
    return {h.host_name: h for h in report.hosts}


def test_a_cluster_with_room_survives_any_one_host_and_says_how_each_vm_comes_back():
    hosts = [host(1, used_gb=4), host(2, used_gb=2), host(3, used_gb=2)]
    vms = [vm(1, 1), vm(2, 1), vm(3, 2), vm(4, 3)]
    report = assess(hosts, vms)
    (c,) = report.clusters
    assert c.survives_one and c.cannot_lose == ()
    node1 = by_host(report)["node01"]
    assert [(v.vm_id, v.outcome, v.action) for v in node1.vms] == [(1, "auto", "resched"),
                                                                 (2, "auto", "resched")]
    # grace 2 cycles of 10 s, then one wave of two moves at the default action time
    assert node1.seconds == 2 * 10.0 + readiness.DEFAULT_ACTION_SECONDS
    assert c.headline() == "cluster c0 survives the loss of any one host"


def test_vms_beyond_the_remaining_room_make_the_answer_no_and_name_the_host():
    hosts = [host(1, used_gb=8), host(2, used_gb=6), host(3, used_gb=6)]
    vms = [vm(i, 1) for i in range(1, 5)] + [vm(5, 2, mem_gb=6), vm(6, 3, mem_gb=6)]
    report = assess(hosts, vms)
    (c,) = report.clusters
    assert not c.survives_one
    node1 = by_host(report)["node01"]
    assert [v.vm_id for v in node1.wont_fit] == [3, 4]  # two fit (2 GB free on each), two do not
    assert "no remaining host has room" in node1.wont_fit[0].reason
    assert ("node01", 2) in c.cannot_lose
    assert c.headline().startswith("cluster c0 can no longer lose node01: 2 VMs would not fit")


def test_local_disks_and_shared_persistent_disks_without_fencing_are_reported_with_reasons():
    hosts = [host(1), host(2), host(3)]
    vms = [vm(1, 1, shared=False, disks=[disk(persistent=True, tm="ssh")]),
           vm(2, 1, disks=[disk(persistent=True)]),
           vm(3, 1, labels={"ONEHA_POLICY": "off"}),
           vm(4, 1, labels={"ONEHA_POLICY": "migrate"})]
    node1 = by_host(assess(hosts, vms))["node01"]
    got = {v.vm_id: v for v in node1.vms}
    assert (got[1].outcome, got[1].code) == ("people", "wait")
    assert "local and a disk is a persistent image" in got[1].reason
    assert got[2].outcome == "approval" and "no fencing" in got[2].reason
    assert (got[3].outcome, got[3].code) == ("people", "opt_out")
    assert got[4].outcome == "approval" and "'migrate' is not a value oneha knows" in got[4].reason
    assert node1.survivable  # none of them is a question of room


def test_with_fencing_a_shared_persistent_disk_moves_automatically():
    hosts = [host(1), host(2)]
    vms = [vm(2, 1, disks=[disk(persistent=True)])]
    node1 = by_host(assess(hosts, vms, fencing={"command": "/bin/true",
                                                 "allowlist": ["/bin/true"]}))["node01"]
    assert [(v.outcome, v.action) for v in node1.vms] == [("auto", "resched")]


def test_route_policy_off_leaves_every_vm_to_people_and_approval_holds_them():
    hosts = [host(1), host(2)]
    vms = [vm(1, 1)]
    off = by_host(assess(hosts, vms, overrides=[{"match": {"host": "node01"}, "mode": "off"}]))
    assert [(v.outcome, v.code) for v in off["node01"].vms] == [("people", "off")]
    held = by_host(assess(hosts, vms, mode="approval"))
    assert [v.outcome for v in held["node01"].vms] == ["approval"]


def test_measured_action_times_set_the_estimate():
    hosts = [host(1), host(2)]
    vms = [vm(i, 1, mem_gb=1) for i in range(1, 6)]
    node1 = by_host(assess(hosts, vms, action_seconds={"resched": 12.0}))["node01"]
    assert node1.seconds == 2 * 10.0 + 3 * 12.0  # five moves, two at a time: three waves
    assert readiness.measured_action_seconds([("resched", 10), ("resched", 14),
                                              ("resched", 30), ("recreate", 50)]) == {
        "recreate": 50.0, "resched": 14.0}


def test_n_plus_2_stacks_the_second_failure_on_the_room_the_first_took():
    # 8 GB hosts running one 2 GB VM each: losing two puts 4 GB on the last one (6 GB free).
    ok = assess([host(i, used_gb=2) for i in (1, 2, 3)], [vm(i, i, mem_gb=2) for i in (1, 2, 3)])
    assert ok.clusters[0].survives_one and ok.clusters[0].survives_two
    tight = assess([host(i, used_gb=6) for i in (1, 2, 3)],
                   [vm(i, i, mem_gb=3) for i in (1, 2, 3)] + [vm(10 + i, i, mem_gb=3)
                                                               for i in (1, 2, 3)])
    c = tight.clusters[0]
    assert not c.survives_one
    # One 3 GB VM each (5 GB free): one loss fits; after two, the second VM finds 2 GB left.
    tight2 = assess([host(i, used_gb=3) for i in (1, 2, 3)], [vm(i, i, mem_gb=3) for i in (1, 2, 3)])
    c2 = tight2.clusters[0]
    assert c2.survives_one and c2.survives_two is False
    assert c2.cannot_lose_two == (("node01", "node02", 1), ("node01", "node03", 1),
                                  ("node02", "node03", 1))


def test_clusters_are_judged_apart_and_two_hosts_have_no_n_plus_2():
    hosts = [host(1, cluster=0), host(2, cluster=0), host(3, cluster=1, used_gb=7),
             host(4, cluster=1, used_gb=7)]
    vms = [vm(1, 3, mem_gb=2), vm(2, 4, mem_gb=2)]
    report = assess(hosts, vms)
    c0, c1 = report.clusters
    assert c0.survives_one and c0.survives_two is None
    assert not c1.survives_one and dict(c1.cannot_lose) == {"node03": 1, "node04": 1}


def test_hosts_already_down_or_in_maintenance_are_not_the_next_failure():
    hosts = [host(1), host(2, state=4), host(3, state=3)]
    report = assess(hosts, [vm(1, 1)])
    assert [h.host_name for h in report.hosts] == ["node01"]
    # node02 (DISABLED) and node03 (ERROR) take no VMs: node01's VM has nowhere to go
    assert [v.code for v in report.hosts[0].vms] == ["wont_fit"]


def test_the_planner_is_the_remediations_one_code_path(monkeypatch):
    seen = []
    real = plans._host_vm_choice

    def spy(policy, v):
        seen.append(v.id)
        return real(policy, v)

    monkeypatch.setattr(plans, "_host_vm_choice", spy)
    assess([host(1), host(2)], [vm(7, 1), vm(8, 2)])
    assert sorted(seen) == [7, 8]
    assert readiness.build_plan is plans.build_plan


def test_the_report_survives_json():
    import json
    report = assess([host(1), host(2), host(3)], [vm(1, 1, shared=False,
                                                     disks=[disk(True, "ssh")]), vm(2, 2)])
    back = readiness.Report.from_dict(json.loads(json.dumps(report.to_dict())))
    assert back == report
