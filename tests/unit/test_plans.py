"""Plans read like a table: given live objects and a policy, exactly these steps."""

from gateway.domain.objects import Disk, HistoryRecord, HostInfo, VmInfo
from gateway.domain.remediation.plans import PlanInput, Plan, build_plan, execution_order
from gateway.domain.remediation.policy import RemediationConfig

GB = 1024 * 1024  # KB


def host(hid, state=2, mem_free_gb=64, cluster=0, name=None):
    return HostInfo(id=hid, name=name or f"node{hid:02d}", state=state, cluster_id=cluster,
                    max_mem=128 * GB, mem_usage=128 * GB - mem_free_gb * GB, max_cpu=3200,
                    cpu_usage=0)


def disk(persistent=False, tm="shared", image="img"):
    return Disk(disk_id=0, image_id=1, image=image, persistent=persistent, datastore_id=1,
                datastore="default", tm_mad=tm)


def vm(vid, host_id=1, lcm=16, state=3, shared=True, disks=(None,), mem=1024, labels=None):
    return VmInfo(id=vid, name=f"vm{vid}", state=state, lcm_state=lcm, cpu=1, memory_mb=mem,
                  system_tm_mad="shared" if shared else "ssh",
                  history=(HistoryRecord(seq=0, host_id=host_id, host_name=f"node{host_id:02d}"),),
                  disks=tuple(d or disk() for d in disks), labels=labels or {})


def plan_for(vms, hosts, failed=None, **cfg):
    policy = RemediationConfig.model_validate(cfg).for_labels({})
    return build_plan(PlanInput(plan_id="p1", incident_id="i1", now=1000.0, policy=policy,
                                vms=vms, hosts=hosts, failed_host_id=failed,
                                incident_started_at=990.0, monitoring_interval=10.0))


def test_unknown_vms_on_a_healthy_host_get_one_refresh_then_each_its_own_resume():
    p = plan_for([vm(1), vm(2), vm(3), vm(4, lcm=3)], [host(1), host(2)])
    assert [(s.key, s.action) for s in p.steps] == [
        ("refresh:1", "refresh_host"), ("vm:1:resume", "resume"), ("vm:2:resume", "resume"),
        ("vm:3:resume", "resume")]
    assert all(s.after == ("refresh:1",) and s.wait_cycles == 1 for s in p.vm_steps)
    assert [(s.vm_id, s.code) for s in p.skipped] == [(4, "not_failed")]
    assert p.kind == "vm_unknown" and p.mode == "approval"


def test_vms_of_a_failed_host_are_rescheduled_by_priority_when_the_system_ds_is_shared():
    vms = [vm(1), vm(2, labels={"ONEHA_PRIORITY": "50"}), vm(3, labels={"ONEHA_POLICY": "off"})]
    p = plan_for(vms, [host(1, state=3), host(2)], failed=1, mode="auto")
    assert [(s.vm_id, s.action) for s in execution_order(p.vm_steps)] == [(2, "resched"),
                                                                         (1, "resched")]
    assert [(s.vm_id, s.code) for s in p.skipped] == [(3, "opt_out")]
    assert p.grace_until == 990.0 + 2 * 10.0
    assert p.mode == "auto" and not p.needs_approval


def test_local_system_ds_means_recreate_with_approval_or_wait_for_the_host():
    vms = [vm(1, shared=False), vm(2, shared=False, disks=[disk(persistent=True, tm="ssh")])]
    p = plan_for(vms, [host(1, state=3), host(2)], failed=1, mode="auto")
    (step,) = p.vm_steps
    assert (step.vm_id, step.action, step.needs_approval) == (1, "recreate", True)
    assert [(s.vm_id, s.code) for s in p.skipped] == [(2, "wait")]
    assert p.needs_approval


def test_shared_persistent_disks_need_approval_without_fencing_and_wait_for_it_with():
    vms = [vm(1, disks=[disk(persistent=True)])]
    no_fence = plan_for(vms, [host(1, state=3), host(2)], failed=1, mode="auto")
    assert no_fence.vm_steps[0].needs_approval
    assert "no fencing" in no_fence.vm_steps[0].approval_reason
    fenced = plan_for(vms, [host(1, state=3), host(2)], failed=1, mode="auto",
                      fencing={"command": "/usr/local/bin/fence", "allowlist":
                               ["/usr/local/bin/fence"]}, disable_failed_host=True)
    assert [s.action for s in fenced.steps] == ["fence", "disable_host", "resched"]
    assert fenced.step("vm:1:resched").after == ("fence:1", "disable:1")
    assert not fenced.step("vm:1:resched").needs_approval


def test_plan_says_what_will_not_fit_on_the_remaining_hosts():
    vms = [vm(1, mem=40 * 1024), vm(2, mem=40 * 1024, labels={"ONEHA_PRIORITY": "9"}),
           vm(3, mem=4 * 1024)]
    p = plan_for(vms, [host(1, state=3), host(2, mem_free_gb=50), host(3, state=3)], failed=1)
    assert sorted(p.vm_ids) == [2, 3]  # the higher priority VM takes the room
    (wont,) = [s for s in p.skipped if s.code == "wont_fit"]
    assert wont.vm_id == 1 and "no remaining host has room" in wont.reason


def test_a_host_the_operator_disabled_is_left_alone():
    for state in (4, 8):
        p = plan_for([vm(1)], [host(1, state=state), host(2)], failed=1, mode="auto")
        assert p.steps == () and p.skipped[0].code == "maintenance"
    p = plan_for([vm(1)], [host(1, state=8), host(2)])  # VM incident on an offline host
    assert p.steps == () and p.skipped[0].code == "maintenance"


def test_failure_states_get_recover_retry_and_running_vms_nothing():
    p = plan_for([vm(5, lcm=36), vm(6, lcm=39), vm(7, lcm=3)], [host(1)])
    assert [(s.vm_id, s.action) for s in p.steps] == [(5, "retry"), (6, "retry")]
    assert p.kind == "vm_failure"


def test_off_policy_and_disallowed_actions_are_explained():
    p = plan_for([vm(1)], [host(1)], mode="off")
    assert p.mode == "off" and "only reports" in p.mode_reason
    p = plan_for([vm(1)], [host(1)], allowed_actions=["retry"])
    assert p.steps == () and p.skipped[0].code == "disallowed"


def test_vms_already_planned_are_not_planned_twice_and_plans_round_trip():
    policy = RemediationConfig().for_labels({})
    p = build_plan(PlanInput(plan_id="p2", incident_id="i1", now=1.0, policy=policy,
                             vms=[vm(1), vm(2)], hosts=[host(1)], exclude_vm_ids=frozenset({1})))
    assert p.vm_ids == [2]
    assert Plan.from_dict(p.to_dict()) == p


def test_host_back_in_monitored_means_nothing_to_do():
    p = plan_for([vm(1)], [host(1, state=2), host(2)], failed=1, mode="auto")
    assert p.steps == () and p.skipped[0].code == "not_failed"


def test_no_host_step_without_a_vm_to_move():
    p = plan_for([vm(1, labels={"ONEHA_POLICY": "off"})], [host(1, state=3), host(2)], failed=1,
                 disable_failed_host=True)
    assert p.steps == () and p.skipped[0].code == "opt_out"


def test_a_host_oneha_is_refreshing_is_not_an_operators_maintenance():
    policy = RemediationConfig().for_labels({})
    offline = host(1, state=8)
    inp = dict(plan_id="p", incident_id="i", now=1.0, policy=policy, vms=[vm(1)],
               hosts=[offline, host(2)])
    assert build_plan(PlanInput(**inp)).skipped[0].code == "maintenance"
    plan = build_plan(PlanInput(**inp, own_host_ids=frozenset({1})))
    assert [s.action for s in plan.steps] == ["refresh_host", "resume"]


def test_a_failed_host_oneha_disabled_is_still_failed_for_a_later_plan():
    disabled = host(1, state=4)
    vms = [vm(1, host_id=1)]
    assert plan_for(vms, [disabled, host(2)], failed=1).skipped[0].code == "maintenance"
    policy = RemediationConfig().for_labels({})
    plan = build_plan(PlanInput(plan_id="p", incident_id="i", now=1.0, policy=policy, vms=vms,
                                hosts=[disabled, host(2)], failed_host_id=1,
                                own_host_ids=frozenset({1})))
    assert [s.action for s in plan.vm_steps] == ["resched"] and plan.skipped == ()
