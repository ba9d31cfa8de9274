"""Reads through pyone: versions, pools with their filters, object details, errors."""

import pyone
import pytest

from simulator import DiskSpec, HostSpec, VmSpec

from .conftest import client


def test_version_and_config(one):
    assert one.system.version() == "7.4.0"
    config = one.system.config()
    assert config.MONITORING_INTERVAL_HOST == 1  # whole seconds, as oned.conf has them
    assert config.RAFT.ELECTION_TIMEOUT_MS == 300


def test_host_details(make_sim):
    sim = make_sim(hosts=[HostSpec("alpha", cpu=400, memory_mb=8192, cluster="edge"),
                          HostSpec("beta")],
                   vms=[VmSpec("a", host="alpha", cpu=2, memory_mb=2048)])
    one = client(sim.endpoints[0], sim.session)
    host = one.host.info(0)
    assert (host.NAME, host.STATE, host.CLUSTER, host.CLUSTER_ID) == ("alpha", 2, "edge", 100)
    assert host.HOST_SHARE.TOTAL_CPU == 400 and host.HOST_SHARE.TOTAL_MEM == 8192 * 1024
    assert host.HOST_SHARE.CPU_USAGE == 200 and host.HOST_SHARE.MEM_USAGE == 2048 * 1024
    assert host.VMS.ID == [0]
    assert host.MONITORING.TIMESTAMP > 0
    assert [h.NAME for h in one.hostpool.info().HOST] == ["alpha", "beta"]


def test_vm_details(make_sim):
    sim = make_sim(vms=[VmSpec("db", host="node02", cpu=2, memory_mb=4096, system_ds="local",
                               disks=[DiskSpec(persistent=True, datastore="local"),
                                      DiskSpec(persistent=False)],
                               labels={"ONEHA_PRIORITY": "10"})])
    one = client(sim.endpoints[0], sim.session)
    vm = one.vm.info(0)
    assert (vm.NAME, vm.STATE, vm.LCM_STATE, vm.UNAME, vm.GNAME) == \
        ("db", 3, 3, "oneadmin", "oneadmin")
    assert vm.TEMPLATE["CPU"] == "2" and vm.TEMPLATE["MEMORY"] == "4096"
    assert vm.TEMPLATE["TM_MAD_SYSTEM"] == "ssh"
    disks = vm.TEMPLATE["DISK"]
    assert [(d["PERSISTENT"], d["TM_MAD"], d["DATASTORE"]) for d in disks] == \
        [("YES", "ssh", "local_images"), ("NO", "shared", "default")]
    assert vm.TEMPLATE["NIC"]["IP"].startswith("10.0.")
    assert vm.USER_TEMPLATE["ONEHA_PRIORITY"] == "10"
    h = vm.HISTORY_RECORDS.HISTORY[0]
    assert (h.SEQ, h.HOSTNAME, h.HID, h.TM_MAD, h.DS_ID) == (0, "node02", 1, "ssh", 100)
    assert h.STIME > 0 and h.ETIME == 0 and h.RSTIME > 0


def test_vmpool_filters(make_sim):
    sim = make_sim(users={"alice": "secret"},
                   vms=[VmSpec("admin0"), VmSpec("alice1", owner="alice"),
                        VmSpec("admin2"), VmSpec("alice3", owner="alice")])
    admin = client(sim.endpoints[0], sim.session)
    alice = client(sim.endpoints[0], "alice:secret")
    admin.vm.action("terminate-hard", 2)
    sim.wait_for(lambda: sim.vm(2)["state_name"] == "DONE", 5)

    def ids(c, *args):
        return [v.ID for v in c.vmpool.info(*args).VM]

    assert ids(admin, -2, -1, -1, -1) == [0, 1, 3]  # -1: everything but DONE
    assert ids(admin, -2, -1, -1, -2) == [0, 1, 2, 3]  # -2: DONE too
    assert ids(admin, -2, -1, -1, 6) == [2]  # only DONE
    assert ids(admin, -2, 1, 2, -2) == [1, 2]  # id range
    assert ids(admin, -3, -1, -1, -1) == [0]  # mine
    assert ids(admin, 1, -1, -1, -1) == [1, 3]  # alice's (uid 1)
    assert ids(alice, -2, -1, -1, -1) == [1, 3]  # a user sees only what ACLs allow
    assert ids(alice, -1, -1, -1, -1) == [1, 3]
    assert ids(admin, -2, 1, -2, -2) == [1, 2]  # end < -1: a page of 2 from offset 1
    assert ids(admin, -2, 3, -5, -2) == [3]
    with pytest.raises(pyone.OneApiException, match=r"Incorrect state filter 12"):
        admin.vmpool.info(-2, -1, -1, 12)
    with pytest.raises(pyone.OneApiException, match=r"Incorrect filter_flag"):
        admin.vmpool.info(-5, -1, -1, -1)
    with pytest.raises(pyone.OneInternalException, match="JSON query search is not supported"):
        admin.vmpool.info(-2, -1, -1, -1, "VM.NAME=admin0")
    ext = admin.vmpool.infoextended(-2, 0, 0, -1).VM[0]
    assert ext.TEMPLATE["TM_MAD_SYSTEM"] == "shared"  # full VM, unlike the reduced entries
    short = admin.vmpool.info(-2, 0, 0, -1).VM[0]
    assert len(short.HISTORY_RECORDS.HISTORY) == 1


def test_errors(sim, one):
    bad = client(sim.endpoints[0], "oneadmin:wrong")
    with pytest.raises(pyone.OneAuthenticationException,
                       match=r"^\[one.vm.info\] User couldn't be authenticated, aborting call.$"):
        bad.vm.info(0)
    with pytest.raises(pyone.OneAuthenticationException):
        client(sim.endpoints[0], "nobody:x").hostpool.info()
    with pytest.raises(pyone.OneNoExistsException,
                       match=r"^\[one.host.info\] Error getting host \[42\].$"):
        one.host.info(42)
    with pytest.raises(pyone.OneNoExistsException,
                       match=r"^\[one.vm.action\] Error getting virtual machine \[42\].$"):
        one.vm.action("resume", 42)
    with pytest.raises(pyone.OneException, match="Type mismatch"):
        one.vm.info("zero")
    with pytest.raises(pyone.OneException, match="not defined"):
        one.vm.snapshotcreate(0, "x")


def test_authorization(make_sim):
    sim = make_sim(users={"bob": "pw"}, vms=[VmSpec("root-vm"), VmSpec("bob-vm", owner="bob")])
    bob = client(sim.endpoints[0], "bob:pw")
    assert bob.vm.action("poweroff", 1) == 1
    with pytest.raises(pyone.OneAuthorizationException,
                       match=r"^\[one.vm.action\] User \[1\] not authorized to perform action "
                             r"on virtual machine.$"):
        bob.vm.action("poweroff", 0)
    with pytest.raises(pyone.OneAuthorizationException, match="on host"):
        bob.host.status(0, 1)
    with pytest.raises(pyone.OneAuthorizationException, match="on hook"):
        bob.hook.allocate({"NAME": "x", "TYPE": "api", "CALL": "one.vm.action",
                           "COMMAND": "/bin/true"})


def test_pool_entries_are_reduced_like_oneds(make_sim):
    """one.vmpool.info gives VirtualMachine::to_xml_short: disks without PERSISTENT/TM_MAD and
    only the scheduler's/Sunstone's user attributes. Whoever needs labels or disk persistence
    must read one.vm.info or one.vmpool.infoextended, as with a real oned."""
    sim = make_sim(vms=[VmSpec("db", disks=[DiskSpec(persistent=True)],
                               labels={"ONEHA_PRIORITY": "10", "LABELS": "prod",
                                       "USER_PRIORITY": "5"})])
    one = client(sim.endpoints[0], sim.session)
    short = one.vmpool.info(-2, -1, -1, -1).VM[0]
    disk = short.TEMPLATE["DISK"]
    assert disk["CLONE"] == "NO" and "PERSISTENT" not in disk and "TM_MAD" not in disk
    assert dict(short.USER_TEMPLATE) == {"LABELS": "prod", "USER_PRIORITY": "5"}
    assert short.HISTORY_RECORDS.HISTORY[0].TM_MAD == "shared"
    full = one.vmpool.infoextended(-2, -1, -1, -1).VM[0]
    assert full.TEMPLATE["DISK"]["PERSISTENT"] == "YES"
    assert full.USER_TEMPLATE["ONEHA_PRIORITY"] == "10"
