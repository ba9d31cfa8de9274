"""`oneha approve|deny|pause|resume|plans|audit` against real Redis and a plan made on the
simulator."""

import time

import pytest
import yaml
from click.testing import CliRunner

from gateway.cli import main
from simulator import CloudSpec, HostSpec, Simulator
from tests.support.remediation import (Driver, remediation_config,
                                                     shared_vms, vm_actions)

CLOUD = CloudSpec(hosts=[HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in range(1, 6)],
                  vms=shared_vms(2) + shared_vms(2, host="node02", prefix="b"), frontends=1,
                  monitoring_interval=0.2)


@pytest.fixture
def setup(key_prefix, tmp_path):
    with Simulator(CLOUD) as sim:
        config = remediation_config(key_prefix, sim, mode="approval", approval_ttl=1)
        path = tmp_path / "oneha.yaml"
        path.write_text(yaml.safe_dump(config))
        d = Driver(config)
        sim.crash_host(0)
        sim.crash_host(1)
        sim.wait_for(lambda: all(v.is_unknown for v in d.one.vms()), timeout=10)
        iids = [d.event("HOST", h).decision.incident_id for h in (0, 1)]
        d.run_until_idle(timeout=3)
        runner = CliRunner()

        def oneha(*args):
            return runner.invoke(main, ["-c", str(path), *args], catch_exceptions=False)

        yield sim, d, iids, oneha


def test_plans_approve_once_deny_and_audit(setup):
    sim, d, (inc0, inc1), oneha = setup
    pid0, pid1 = d.store.plan_ids(inc0)[0], d.store.plan_ids(inc1)[0]
    out = oneha("plans").output
    assert pid0 in out and pid1 in out and "awaiting_approval" in out
    detail = oneha("plans", pid0).output
    assert "vm:0:resched" in detail and "pending" in detail
    time.sleep(1.1)  # the e-mailed link has expired; the operator at the console may still act
    r = oneha("approve", inc0, "--as", "bob")  # an incident id names its latest plan
    assert r.exit_code == 0 and "approved by bob; plan is now executing" in r.output
    r = oneha("approve", pid0, "--as", "mallory")
    assert r.exit_code != 0 and "refused (used)" in r.output and "by bob" in r.output
    r = oneha("deny", pid1, "--as", "carol")
    assert r.exit_code == 0 and "denied by carol" in r.output
    d.run_plan_once(pid0)
    d.run_plan_once(pid1)
    assert sorted(vm_actions(sim, "resched")) == [0, 1]
    assert d.store.plan_state(pid1)["status"] == "denied"
    r = oneha("approve", "nope")
    assert r.exit_code != 0 and "no plan or incident 'nope'" in r.output
    audit = oneha("audit", "--plan", pid0).output
    assert "plan_approved" in audit and "bob" in audit and "action_done" in audit
    assert "approval_refused" in audit and "mallory" in audit


def test_pause_holds_approved_plans_until_resume(setup):
    sim, d, (inc0, _), oneha = setup
    pid0 = d.store.plan_ids(inc0)[0]
    assert "paused by ops" in oneha("pause", "-m", "SAN firmware", "--as", "ops").output
    assert "PAUSED by ops: SAN firmware" in oneha("plans").output
    oneha("approve", pid0, "--as", "bob")
    d.run_plan_once(pid0)
    assert vm_actions(sim, "resched") == []
    assert "paused by ops" in d.store.plan_state(pid0)["reason"]
    assert "remediation resumed" in oneha("resume", "--as", "ops").output
    d.run_plan_once(pid0)
    assert sorted(vm_actions(sim, "resched")) == [0, 1]
