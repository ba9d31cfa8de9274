"""The story's rules against the simulator, with the real stores on Redis and the remediation run
in-process (`Driver`): oneha's own disable and refresh are never read back as an operator's
maintenance, and a VM label oneha cannot read is a warning people see."""

from __future__ import annotations

import threading
import time

import pytest
import yaml
from click.testing import CliRunner

from gateway.cli import main
from gateway.domain.messages import render
from gateway.domain.notifications import Notification
from simulator import CloudSpec, DiskSpec, HostSpec, VmSpec
from tasks.monitor import run_reconcile
from tests.support.remediation import (Driver, crash_and_report, hook_event, remediation_config,
                                       shared_vms, wait_state)

HOSTS = [HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in range(1, 5)]


@pytest.fixture
def cloud(request):
    from simulator import Simulator
    with Simulator(request.param) as sim:
        yield sim


def delivered(d: Driver) -> list[Notification]:
    """Flush every due group now and return the notifications it handed to `oneha.deliver`."""
    sent: list = []
    d.incidents.store._send = lambda name, args=None, countdown=None, **_: sent.append((name, args))
    d.incidents.flush_due(now=d.rt.clock() + 3600)
    return [Notification.from_json(a[0]) for n, a in sent if n == "oneha.deliver"]


@pytest.mark.parametrize("cloud", [CloudSpec(hosts=HOSTS, vms=shared_vms(5), frontends=1,
                                             monitoring_interval=0.2)], indirect=True)
def test_the_host_oneha_disabled_keeps_its_incident_open_for_hooks_and_the_reconciler(
        cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="approval"))
    iid = crash_and_report(d, cloud)  # every VM of this cloud is on host 0
    d.run_until_idle(timeout=5, stop=lambda: d.plan_status(iid) == "awaiting_approval")
    (pid,) = d.store.plan_ids(iid)
    # Approving runs the disable step first; the drive stops as soon as the host is DISABLED.
    d.rem.decide_plan(pid, "approved", "alice", via="test")
    d.run_until_idle(timeout=10, stop=lambda: d.one.host(0).state == 4)
    assert d.one.host(0).state_label == "DISABLED"
    # OpenNebula's hook for the DISABLED host, and a reconciler pass, while VMs may still be down.
    applied = d.event("HOST", 0)
    assert applied.decision.action == "updated", applied.decision
    assert "oneha did it (disable_host)" in applied.decision.reason
    run_reconcile(d.rt, d.one)
    inc = d.incidents.get(iid)
    assert inc.primary.state_label == "DISABLED (by oneha)"
    assert not any("by an operator" in e.text for e in d.incidents.store.timeline(iid))
    d.run_until_idle(timeout=20, stop=lambda: d.status(pid) == "done")
    inc = d.incidents.get(iid)
    assert inc.state == "resolved" and "run again elsewhere" in inc.title
    assert all(o.state_label == "ACTIVE/RUNNING" and o.host != "node01"
               for o in inc.affected)


@pytest.mark.parametrize("cloud", [CloudSpec(hosts=HOSTS[:2], vms=shared_vms(2), frontends=1,
                                             monitoring_interval=0.2)], indirect=True)
def test_a_refresh_sets_the_host_offline_and_that_is_not_maintenance(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto"))
    cloud.freeze_vm(0)
    wait_state(cloud, d.one, lambda: d.one.vm(0).is_unknown, "VM 0 UNKNOWN")
    iid = d.event("VM", 0).decision.incident_id
    seen = []  # the hook's event for the host while oneha's refresh holds it OFFLINE
    done = threading.Event()

    def watch() -> None:  # as OpenNebula's state hook would see it, during the refresh call
        while not done.is_set() and not seen:
            event = hook_event(d.one, "HOST", 0)
            if event.state == 8:
                seen.append(event)
            time.sleep(0.02)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    d.run_until_idle(timeout=10, stop=lambda: bool(seen))
    done.set()
    watcher.join()
    assert seen, "the refresh never set the host OFFLINE"
    # It arrives: neither maintenance nor an alert.
    applied = d.incidents.apply_event(seen[0])
    assert applied.decision.action == "ignored" and "oneha did it" in applied.decision.reason
    assert d.incidents.store.r.hlen(d.rt.key("inc", "maintenance")) == 0
    d.run_until_idle(timeout=15, stop=lambda: d.plan_status(iid) == "done")
    assert d.incidents.get(iid).state == "resolved"


UNKNOWN_POLICY = CloudSpec(hosts=HOSTS, frontends=1, monitoring_interval=0.2,
                           vms=[VmSpec("web-1", "node01"),
                                VmSpec("web-2", "node01", labels={"ONEHA_POLICY": "migrate"})])


@pytest.mark.parametrize("cloud", [UNKNOWN_POLICY], indirect=True)
def test_an_unknown_policy_value_is_a_warning_on_the_plan_in_the_message_and_in_oneha_plans(
        cloud, key_prefix, tmp_path):
    config = remediation_config(key_prefix, cloud, mode="auto")
    config["receivers"] = [{"name": "oncall", "urls": ["json://127.0.0.1:9/never-called"]}]
    config["route"] = {"group_wait": "0s"}
    d = Driver(config)
    iid = crash_and_report(d, cloud)  # every VM of this cloud is on host 0
    d.run_until_idle(timeout=10, stop=lambda: any(
        p["transition"] == "approval_requested" for p in d.pages))
    (pid,) = d.store.plan_ids(iid)
    warning = "VM web-2 (1): ONEHA_POLICY='migrate' is not a value oneha knows"
    assert any(warning in w for w in d.store.plan(pid).warnings)
    # In the message people get (the composer's, rendered as mail and chat) ...
    (message,) = delivered(d)
    assert message.receiver == "oncall" and message.transition == "firing"  # the alert carries it
    for kind in ("mail", "chat"):
        assert warning in render(message, kind).body
    # ... and in `oneha plans`.
    path = tmp_path / "oneha.yaml"
    path.write_text(yaml.safe_dump(config))
    out = CliRunner().invoke(main, ["-c", str(path), "plans", pid], catch_exceptions=False)
    assert f"WARNING {warning}" in out.output, out.output


LEFT_BEHIND = CloudSpec(
    hosts=HOSTS[:3], frontends=1, monitoring_interval=0.2,
    vms=[VmSpec("plain", "node01"),
         VmSpec("local-pers", "node01", system_ds="local",
                disks=(DiskSpec(persistent=True, datastore="local"),))])


@pytest.mark.parametrize("cloud", [LEFT_BEHIND], indirect=True)
def test_a_vm_nothing_automatic_will_recover_is_named_and_the_incident_stays_firing(
        cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto"))
    iid = crash_and_report(d, cloud)  # every VM of this cloud is on host 0
    d.run_until_idle(timeout=20, stop=lambda: d.plan_status(iid) in ("done", "failed"))
    assert d.one.vm(0).is_running and d.one.vm(1).is_unknown
    (left,) = [p for p in d.pages if p["transition"] == "needs_human"]
    assert "local-pers (1)" in left["text"] and "must wait for its host" in left["text"]
    inc = d.incidents.get(iid)
    # oneha is done, people are not: no RESOLVED while local-pers is down; reminders run again.
    assert inc.state == "firing" and "left to people" in d.incidents.store.timeline(iid)[-1].text
