"""VM actions, recover operations, the scheduler and failure injection, through pyone."""

import pyone
import pytest

from simulator import HostSpec, VmSpec

from .conftest import client


def _wait_state(sim, vm_id, label, timeout=5):
    def reached():
        vm = sim.vm(vm_id)
        now = vm["state_name"] if vm["state"] != 3 else f"ACTIVE/{vm['lcm_state_name']}"
        return now == label
    sim.wait_for(reached, timeout, message=f"VM {vm_id} {label}")
    return sim.vm(vm_id)


def test_poweroff_and_resume_make_a_new_history_record(sim, one):
    assert one.vm.action("poweroff", 0) == 0
    _wait_state(sim, 0, "POWEROFF")
    off = one.vm.info(0)
    assert (off.PREV_STATE, off.PREV_LCM_STATE) == (3, 18)  # came through SHUTDOWN_POWEROFF
    one.vm.action("resume", 0)
    vm = _wait_state(sim, 0, "ACTIVE/RUNNING")
    h0, h1 = vm["history"]
    assert h0["etime"] and h0["retime"] and h1["seq"] == 1 and h1["hid"] == h0["hid"]
    assert h1["action"] == 11  # RESUME
    info = one.vm.info(0)
    assert (info.PREV_STATE, info.PREV_LCM_STATE) == (3, 20)  # came through BOOT_POWEROFF


def test_wrong_state_and_unsupported_actions(sim, one):
    with pytest.raises(pyone.OneActionException) as err:
        one.vm.action("resume", 1)
    assert str(err.value) == ('[one.vm.action] Error performing action "resume": '
                              "This action is not available for state RUNNING")
    with pytest.raises(pyone.OneActionException, match=r'Action "fly" is not supported'):
        one.vm.action("fly", 1)
    with pytest.raises(pyone.OneActionException, match="for state RUNNING"):
        one.vm.action("release", 1)
    one.vm.action("poweroff", 1)
    _wait_state(sim, 1, "POWEROFF")
    with pytest.raises(pyone.OneActionException, match="for state POWEROFF"):
        one.vm.action("reboot", 1)


def test_reboot_resched_unresched_and_terminate(make_sim):
    sim = make_sim(sched_interval=30)  # keep the scheduler from acting on RESCHED meanwhile
    one = client(sim.endpoints[0], sim.session)
    one.vm.action("resched", 2)
    one.vm.action("reboot", 2)  # rebooting cancels rescheduling
    assert one.vm.info(2).RESCHED == 0 and sim.vm(2)["reboots"] == 1
    one.vm.action("resched", 3)
    one.vm.action("unresched", 3)
    assert one.vm.info(3).RESCHED == 0
    one.vm.action("terminate", 2)
    vm = _wait_state(sim, 2, "DONE")
    assert vm["host_id"] is None and vm["history"][-1]["action"] == 27
    info = one.vm.info(2)
    assert info.ETIME >= info.STIME > 0
    assert 2 not in one.host.info(vm["history"][-1]["hid"]).VMS.ID


def test_hold_release_deploy_and_scheduler(make_sim):
    sim = make_sim(hosts=[HostSpec("a", cpu=200, memory_mb=2048), HostSpec("b")],
                   vms=[VmSpec("p1", state="pending", memory_mb=4096),
                        VmSpec("p2", state="hold"),
                        VmSpec("big", state="hold", memory_mb=4096),
                        VmSpec("huge", state="pending", memory_mb=10**6)])  # fits nowhere
    one = client(sim.endpoints[0], sim.session)
    with pytest.raises(pyone.OneActionException, match="for state HOLD"):
        one.vm.action("hold", 1)
    assert one.vm.action("hold", 3) == 3
    assert one.vm.info(3).STATE == 2
    one.vm.action("release", 3)
    assert one.vm.info(3).STATE == 1
    # The scheduler places p1 on the only host with room for 4 GB.
    vm = _wait_state(sim, 0, "ACTIVE/RUNNING")
    assert vm["host_id"] == 1
    assert _wait_state(sim, 1, "HOLD")["host_id"] is None
    one.vm.action("release", 1)
    vm = _wait_state(sim, 1, "ACTIVE/RUNNING")
    with pytest.raises(pyone.OneActionException,
                       match=r"\[one.vm.deploy\] Deploy action is not available for state RUNNING"):
        one.vm.deploy(1, 0)
    one.vm.action("undeploy", 1)
    _wait_state(sim, 1, "UNDEPLOYED")
    with pytest.raises(pyone.OneActionException, match="does not fit in host"):
        one.vm.deploy(2, 0, True)  # enforce capacity: 4 GB do not fit on "a"
    one.vm.deploy(1, 0)
    vm = _wait_state(sim, 1, "ACTIVE/RUNNING")
    assert vm["host_id"] == 0
    assert vm["history"][-1]["hid"] == 0


def test_scheduler_skips_disabled_offline_and_error_hosts(make_sim):
    sim = make_sim(hosts=4, vms=[VmSpec("p", state="hold")])
    one = client(sim.endpoints[0], sim.session)
    one.host.status(0, 1)
    one.host.status(1, 2)
    sim.crash_host(2)
    sim.wait_for(lambda: sim.host(2)["state_name"] == "ERROR", 5)
    one.vm.action("release", 0)
    assert _wait_state(sim, 0, "ACTIVE/RUNNING")["host_id"] == 3
    with pytest.raises(pyone.OneInternalException, match="Wrong status code"):
        one.host.status(0, 7)
    one.host.status(0, 0)  # enable: INIT, then MONITORED at its next cycle
    sim.wait_for(lambda: one.host.info(0).STATE == 2, 5)


def test_host_crash_unknown_and_recovery(sim, one):
    vm_ids = sim.host(1)["vm_ids"]
    sim.crash_host(1)
    sim.wait_for(lambda: one.host.info(1).STATE == 3, 5)
    for vid in vm_ids:
        vm = one.vm.info(vid)
        assert (vm.STATE, vm.LCM_STATE) == (3, 16)
    stale = one.host.info(1).MONITORING.TIMESTAMP
    # resume while the host is dead: BOOT_UNKNOWN fails back to UNKNOWN
    one.vm.action("resume", vm_ids[0])
    sim.wait_for(lambda: one.vm.info(vm_ids[0]).PREV_LCM_STATE == 19, 5)  # via BOOT_UNKNOWN
    _wait_state(sim, vm_ids[0], "ACTIVE/UNKNOWN")
    sim.recover_host(1)
    for vid in vm_ids:
        _wait_state(sim, vid, "ACTIVE/RUNNING")
    assert one.host.info(1).STATE == 2
    assert one.host.info(1).MONITORING.TIMESTAMP >= stale


def test_resched_moves_unknown_vms_only_with_shared_storage(make_sim):
    sim = make_sim(vms=[VmSpec("shared", host="node01"),
                        VmSpec("local", host="node01", system_ds="local")])
    one = client(sim.endpoints[0], sim.session)
    sim.crash_host(0)
    _wait_state(sim, 0, "ACTIVE/UNKNOWN")
    _wait_state(sim, 1, "ACTIVE/UNKNOWN")
    one.vm.action("resched", 0)
    one.vm.action("resched", 1)
    vm = _wait_state(sim, 0, "ACTIVE/RUNNING")
    assert vm["host_id"] != 0 and vm["resched"] == 0
    old, new = vm["history"]
    assert old["hid"] == 0 and old["etime"] > 0 and old["action"] == 1
    assert new["seq"] == 1 and new["hid"] == vm["host_id"] and new["rstime"] >= old["etime"]
    failed = _wait_state(sim, 1, "ACTIVE/PROLOG_MIGRATE_UNKNOWN_FAILURE")
    assert failed["history"][-1]["hid"] != 0
    # retry fails the same way; delete-recreate starts it afresh elsewhere
    one.vm.recover(1, 2)
    _wait_state(sim, 1, "ACTIVE/PROLOG_MIGRATE_UNKNOWN_FAILURE")
    one.vm.recover(1, 4)
    vm = _wait_state(sim, 1, "ACTIVE/RUNNING")
    assert vm["recreations"] == 1 and vm["disk_generations"] == [1]
    assert vm["history"][-2]["action"] == 14  # DELETE_RECREATE closed the failed record


def test_recover_operations(sim, one):
    sim.fail_vm(0, "boot")
    one.vm.action("poweroff-hard", 0)
    _wait_state(sim, 0, "POWEROFF")
    one.vm.action("resume", 0)
    # BOOT_POWEROFF failing goes back to POWEROFF; use a fresh deploy for BOOT_FAILURE
    _wait_state(sim, 0, "POWEROFF")
    sim.fail_vm(0, "boot")
    one.vm.recover(0, 4)
    _wait_state(sim, 0, "ACTIVE/BOOT_FAILURE")
    one.vm.recover(0, 2)  # retry
    _wait_state(sim, 0, "ACTIVE/RUNNING")

    sim.fail_vm(1, "prolog")
    one.vm.recover(1, 4)
    _wait_state(sim, 1, "ACTIVE/PROLOG_FAILURE")
    one.vm.recover(1, 0)  # failure: stays failed
    assert one.vm.info(1).LCM_STATE == 39
    one.vm.recover(1, 1)  # success: the prolog is declared done, the VM boots
    _wait_state(sim, 1, "ACTIVE/RUNNING")

    sim.freeze_vm(2)
    _wait_state(sim, 2, "ACTIVE/UNKNOWN")
    one.vm.recover(2, 0)  # UNKNOWN -> RUNNING whatever the flag (LifeCycleManager::recover)
    _wait_state(sim, 2, "ACTIVE/RUNNING")

    one.vm.recover(3, 3)  # delete
    _wait_state(sim, 3, "DONE")
    with pytest.raises(pyone.OneActionException,
                       match="Cannot delete-recreate a VM already in DONE state"):
        one.vm.recover(3, 4)
    with pytest.raises(pyone.OneActionException,
                       match=r"Could not perform a recover operation on VM 3, wrong state DONE."):
        one.vm.recover(3, 1)
    with pytest.raises(pyone.OneActionException, match="Wrong recovery operation code"):
        one.vm.recover(4, 9)
    one.vm.recover(4, 5)  # delete-db: immediately DONE
    assert one.vm.info(4).STATE == 6


def test_freeze_and_resume(sim, one):
    sim.freeze_vm(5)
    _wait_state(sim, 5, "ACTIVE/UNKNOWN")
    # stays UNKNOWN over monitoring cycles although its host is fine
    sim.wait_for(lambda: sim.cloud.monitor_cycles >= 3, 5)
    assert one.vm.info(5).LCM_STATE == 16
    one.vm.action("resume", 5)
    _wait_state(sim, 5, "ACTIVE/RUNNING")


def test_epilog_failure_and_partition(sim, one):
    sim.fail_vm(6, "epilog")
    one.vm.action("terminate", 6)
    _wait_state(sim, 6, "ACTIVE/EPILOG_FAILURE")
    one.vm.recover(6, 2)
    _wait_state(sim, 6, "DONE")

    sim.partition([0, 1, 2])
    sim.wait_for(lambda: all(h.STATE == 3 for h in one.hostpool.info().HOST), 5)
    sim.wait_for(lambda: all(v.LCM_STATE == 16 for v in one.vmpool.info(-2, -1, -1, -1).VM), 5)
    sim.heal([0, 1, 2])
    sim.wait_for(lambda: all(v.LCM_STATE == 3 for v in one.vmpool.info(-2, -1, -1, -1).VM), 5)


def test_live_migration(sim, one):
    src = sim.vm(7)["host_id"]
    dst = (src + 1) % 3
    one.vm.migrate(7, dst, True)
    vm = _wait_state(sim, 7, "ACTIVE/RUNNING")
    assert one.vm.info(7).PREV_LCM_STATE == 4  # came through MIGRATE
    assert vm["host_id"] == dst and vm["history"][-2]["action"] == 2
    with pytest.raises(pyone.OneActionException, match="already running on host"):
        one.vm.migrate(7, dst, True)


def test_locked_vm_refuses_actions_at_or_above_the_lock_level(sim, one):
    assert one.vm.lock(8, 3) == 8  # ADMIN: resched/recover blocked, poweroff allowed
    info = one.vm.info(8)
    assert info.LOCK.LOCKED == 3 and info.LOCK.OWNER == 0
    assert one.vmpool.info(-2, 8, 8, -1).VM[0].LOCK.LOCKED == 3
    with pytest.raises(pyone.OneAuthorizationException) as err:
        one.vm.action("resched", 8)
    assert str(err.value) == "[one.vm.action] User [0] : VM is locked. [8]."
    with pytest.raises(pyone.OneAuthorizationException, match="VM is locked"):
        one.vm.recover(8, 4)
    one.vm.action("poweroff", 8)
    _wait_state(sim, 8, "POWEROFF")
    one.vm.lock(8, 4)  # ALL: everything blocked
    with pytest.raises(pyone.OneAuthorizationException, match="VM is locked"):
        one.vm.action("resume", 8)
    with pytest.raises(pyone.OneActionException, match="Wrong lock level specified"):
        one.vm.lock(8, 7)
    assert one.vm.unlock(8) == 8
    assert one.vm.info(8).LOCK is None
    one.vm.action("resume", 8)
    _wait_state(sim, 8, "ACTIVE/RUNNING")


@pytest.mark.parametrize("action, parked, via", [
    ("stop", "STOPPED", 22),  # back through PROLOG_RESUME -> BOOT_STOPPED
    ("undeploy", "UNDEPLOYED", 32),  # PROLOG_UNDEPLOY -> BOOT_UNDEPLOY
    ("suspend", "SUSPENDED", 21),  # BOOT_SUSPENDED, same host
])
def test_park_and_resume(sim, one, action, parked, via):
    host = sim.vm(9)["host_id"]
    one.vm.action(action, 9)
    vm = _wait_state(sim, 9, parked)
    assert (vm["host_id"] is None) is (parked != "SUSPENDED")
    one.vm.action("resume", 9)
    vm = _wait_state(sim, 9, "ACTIVE/RUNNING")
    assert one.vm.info(9).PREV_LCM_STATE == via
    if parked == "SUSPENDED":
        assert vm["host_id"] == host and len(vm["history"]) == 1
    else:
        assert len(vm["history"]) == 2 and vm["history"][0]["etime"] > 0


def test_terminate_powered_off_and_pending(sim, one):
    one.vm.action("poweroff-hard", 0)
    _wait_state(sim, 0, "POWEROFF")
    one.vm.action("terminate", 0)
    assert _wait_state(sim, 0, "DONE")["history"][-1]["eetime"] > 0
    one.vm.action("terminate", 0)  # DONE: nothing to do, no error (DispatchManager::terminate)


def test_failed_migration_leaves_the_vm_where_it_was(make_sim):
    sim = make_sim(boot_time=1.5)  # time to break the source host mid-migration
    one = client(sim.endpoints[0], sim.session)
    src = sim.vm(7)["host_id"]
    one.vm.migrate(7, (src + 1) % 3, False)  # cold: SAVE_MIGRATE on the source first
    sim.crash_host(src)
    vm = _wait_state(sim, 7, "ACTIVE/UNKNOWN")
    assert vm["host_id"] == src and len(vm["history"]) == 1
    assert vm["history"][0]["etime"] == 0  # its record is open again
