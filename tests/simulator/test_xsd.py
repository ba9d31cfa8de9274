"""Every XML document the simulator answers validates against OpenNebula's official XSDs —
for every method and for hosts and VMs in every state the simulator produces."""

import base64

from simulator import DiskSpec, HostSpec, VmSpec, codes
from simulator.rpc import FrontEnd
from simulator.states import HOST_STATES, LCM_STATES, VM_STATES

from .conftest import SCHEMA_OF, recording_client

HOOK_STATE_SCRIPT = "cat > /dev/null"


def _spec():
    hosts = [HostSpec(f"node{i:02d}", cpu=1600, memory_mb=65536) for i in range(1, 6)]
    vms = [VmSpec(f"vm{i:02d}", host=f"node0{i % 3 + 1}",
                  disks=[DiskSpec(persistent=i % 2 == 0, datastore="local" if i == 5 else "shared")],
                  system_ds="local" if i == 5 else "shared",
                  labels={"ONEHA_PRIORITY": str(i), "TEAM": "a&b <c>"})
           for i in range(12)]
    vms.append(VmSpec("boot-fails", state="hold"))  # 12, released once its boot is set to fail
    vms.append(VmSpec("held", state="hold"))
    vms.append(VmSpec("off", host="node04", state="poweroff"))
    vms.append(VmSpec("huge", state="pending", memory_mb=10**6))  # fits nowhere: stays PENDING
    return dict(hosts=hosts, vms=vms, users={"alice": "pw"})


def test_every_answer_in_every_state_validates(make_sim, schemas):
    sim = make_sim(**_spec())
    one, rec = recording_client(sim.endpoints[1], sim.session)
    seen_vm, seen_host = set(), set()

    def snapshot():
        one.hostpool.info()
        one.vmpool.info(-2, -1, -1, -1)
        one.vmpool.infoextended(-2, -1, -1, -2)
        for vm in sim.vms():
            seen_vm.add((vm["state"], vm["lcm_state"]))
            one.vm.info(vm["id"])
        for host in sim.hosts():
            seen_host.add(host["state"])
            one.host.info(host["id"])

    # A hook of each kind, so HOOK documents and HOOKLOG records exist too.
    one.hook.allocate('NAME="h1"\nTYPE=state\nRESOURCE=HOST\nSTATE=ERROR\n'
                      f'COMMAND="{HOOK_STATE_SCRIPT}"\nARGUMENTS="$TEMPLATE"\nARGUMENTS_STDIN=yes')
    one.hook.allocate({"NAME": "h2", "TYPE": "state", "RESOURCE": "VM", "ON": "UNKNOWN",
                       "COMMAND": "/bin/echo", "ARGUMENTS": "$TEMPLATE", "TIMEOUT": "5"})
    one.hook.allocate({"NAME": "h3", "TYPE": "api", "CALL": "one.vm.action",
                       "COMMAND": "/bin/true", "ARGUMENTS": "$API"})
    # INIT lasts until the host's next monitoring cycle: its hook sees the document for sure.
    one.hook.allocate({"NAME": "h4", "TYPE": "state", "RESOURCE": "HOST", "STATE": "INIT",
                       "COMMAND": "/bin/true", "ARGUMENTS": "$TEMPLATE"})
    one.vm.lock(9, 2)  # a LOCK element in vm.info and pool entries
    snapshot()

    # Drive VMs and hosts through many states.
    sim.fail_vm(1, "epilog")
    one.vm.action("terminate", 1)  # -> SHUTDOWN -> EPILOG -> EPILOG_FAILURE
    one.vm.action("poweroff", 2)
    one.vm.action("suspend", 3)
    one.vm.action("stop", 4)
    one.vm.action("undeploy", 6)
    one.vm.action("terminate-hard", 7)  # -> DONE
    sim.fail_vm(12, "boot")
    one.vm.action("release", 12)
    one.host.status(3, 1)  # DISABLED (node04, holds the powered-off VM)
    one.host.status(4, 2)  # OFFLINE
    snapshot()  # in-flight states (SHUTDOWN_POWEROFF, SAVE_*, ...)
    sim.wait_for(lambda: sim.vm(7)["state_name"] == "DONE", 5)
    sim.wait_for(lambda: sim.vm(1)["lcm_state_name"] == "EPILOG_FAILURE", 5)
    sim.wait_for(lambda: sim.vm(12)["lcm_state_name"] == "BOOT_FAILURE", 5)
    sim.crash_host(2)  # node03: VMs 2, 5 (local system DS), 8, 11
    sim.wait_for(lambda: sim.host(2)["state_name"] == "ERROR", 5)
    snapshot()
    sim.wait_for(lambda: sim.vm(5)["lcm_state_name"] == "UNKNOWN", 5)
    one.vm.action("resched", 5)  # local system DS: PROLOG_MIGRATE_UNKNOWN -> ..._FAILURE
    one.vm.action("resched", 11)  # shared: moves to a healthy host
    one.host.status(1, 0)  # node02 enabled again -> INIT until its next cycle
    snapshot()
    sim.wait_for(lambda: sim.vm(5)["lcm_state_name"] == "PROLOG_MIGRATE_UNKNOWN_FAILURE", 5)
    sim.wait_for(lambda: sim.vm(11)["lcm_state_name"] == "RUNNING", 5)
    sim.wait_for(lambda: sim.vm(3)["state_name"] == "SUSPENDED", 5)
    sim.wait_for(lambda: sim.vm(4)["state_name"] == "STOPPED", 5)
    sim.wait_for(lambda: sim.vm(6)["state_name"] == "UNDEPLOYED", 5)
    one.vm.recover(8, 4)  # delete-recreate -> CLEANUP_RESUBMIT -> PENDING -> ...
    snapshot()

    # The rest of the methods.
    one.system.config()
    one.zone.info(0)
    one.zonepool.info()
    for endpoint in sim.endpoints:
        rc, rrec = recording_client(endpoint, sim.session)
        rc.zone.raftstatus()
        rec.answers.extend(rrec.answers)
    assert sim.wait_hooks_idle(10)
    hook_ids = [h.ID for h in one.hookpool.info().HOOK]
    for hid in hook_ids:
        one.hook.info(hid)
    one.vmpool.infoset("0,1,2", False)

    methods = {m for m, _ in rec.answers}
    assert methods == set(SCHEMA_OF), f"not exercised: {set(SCHEMA_OF) - methods}"
    for method, xml in rec.answers:
        schemas.assert_valid(xml, SCHEMA_OF[method])

    # The states we claim to produce were really produced and validated.
    names = {(VM_STATES[s], LCM_STATES[l]) if s == 3 else VM_STATES[s] for s, l in seen_vm}
    for expected in [("ACTIVE", "RUNNING"), ("ACTIVE", "UNKNOWN"), "POWEROFF", "DONE", "PENDING",
                     "HOLD", "SUSPENDED", "STOPPED", "UNDEPLOYED", ("ACTIVE", "BOOT_FAILURE"),
                     ("ACTIVE", "EPILOG_FAILURE"), ("ACTIVE", "PROLOG_MIGRATE_UNKNOWN_FAILURE")]:
        assert expected in names, f"{expected} never seen: {sorted(map(str, names))}"
    host_names = {HOST_STATES[s] for s in seen_host}
    assert {"MONITORED", "ERROR", "DISABLED", "OFFLINE"} <= host_names

    # What hooks received ($TEMPLATE on stdin or argv, $API) validates too.
    execs = sim.hook_executions
    assert execs, "no hook ran"
    log = one.hook.info(hook_ids[1]).HOOKLOG.HOOK_EXECUTION_RECORD
    vm_doc = base64.b64decode(log[0].ARGUMENTS).decode()
    schemas.assert_valid(vm_doc, "vm.xsd")
    api_log = one.hook.info(hook_ids[2]).HOOKLOG.HOOK_EXECUTION_RECORD
    schemas.assert_valid(base64.b64decode(api_log[0].ARGUMENTS).decode(), "api_info.xsd")
    host_log = one.hook.info(hook_ids[0]).HOOKLOG.HOOK_EXECUTION_RECORD
    schemas.assert_valid(base64.b64decode(host_log[0].ARGUMENTS).decode(), "host.xsd")
    init_log = one.hook.info(hook_ids[3]).HOOKLOG.HOOK_EXECUTION_RECORD
    init_doc = base64.b64decode(init_log[0].ARGUMENTS).decode()
    schemas.assert_valid(init_doc, "host.xsd")
    assert "<STATE>0</STATE>" in init_doc


def test_every_state_code_the_state_machine_uses_renders_valid_xml(sim, schemas):
    """Transient states last a tenth of a second in tests; force each one the state machine can
    produce onto a VM (and each host state onto a host) and read it back through pyone."""
    lcm_states = set(codes.PHASES) | set(codes.FAILURE_OF) | {codes.RUNNING, codes.UNKNOWN}
    vm_states = [(codes.ACTIVE, lcm) for lcm in sorted(lcm_states)] + [
        (st, codes.LCM_INIT) for st in (codes.PENDING, codes.HOLD, codes.STOPPED,
                                        codes.SUSPENDED, codes.DONE, codes.POWEROFF,
                                        codes.UNDEPLOYED)]
    sim.stop()  # nothing may move while we pose; the answers come from a fresh front-end
    fe = FrontEnd(sim.api, 0, 0).start()
    one, rec = recording_client(fe.endpoint, sim.session)
    try:
        vm = sim.cloud.vms[0]
        for state, lcm in vm_states:
            vm.state, vm.lcm_state = state, lcm
            got = one.vm.info(0)
            assert (got.STATE, got.LCM_STATE) == (state, lcm)
            one.vmpool.info(-2, 0, 0, -2)
        host = sim.cloud.hosts[0]
        for state in (codes.H_INIT, codes.H_MONITORED, codes.H_ERROR, codes.H_DISABLED,
                      codes.H_OFFLINE):
            host.state = state
            assert one.host.info(0).STATE == state
    finally:
        fe.stop()
    assert len(rec.answers) == 2 * len(vm_states) + 5
    for method, xml in rec.answers:
        schemas.assert_valid(xml, SCHEMA_OF[method])
